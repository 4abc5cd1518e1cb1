"""Curator pages of the classifiers curators teach by example: list and create, one classifier
(examples, versions, the test-part figures, train, apply), adding examples from any list of
artworks (search results, a label page, a collection, pasted ids e.g. of a map selection)."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from archive.models import Classifier, Collection, Label
from workers.classifiers import curating

from .. import browse, classifiers as work, collecting
from ..models_state import active_model
from ..permissions import curator_required
from .errors import bad_request

SVG_W, SVG_H, PAD = 320, 240, 32
CURVE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
THUMBS = 20
REVIEW_LIMIT = 12


def _classifier(pk: int) -> Classifier:
    return get_object_or_404(Classifier.objects.select_related("label", "applied_version__model"), pk=pk)


@curator_required
def classifier_list(request):
    if request.method == "POST":
        try:
            precision = float(request.POST.get("target_precision") or 0.9)
            classes = request.POST.get("classes", "").strip()
            classifier = curating.create_classifier(
                request.POST.get("name", ""), description=request.POST.get("description", ""),
                target_precision=precision, classes=curating.split_class_text(classes) if classes else None, user=request.user,
            )
        except ValueError as exc:
            return bad_request(request, str(exc))
        what = "examples of each class" if classifier.multiclass else "positive and negative examples"
        messages.success(request, f"Created “{classifier.label.name}”: add {what}.")
        return redirect("explorer:classifier", pk=classifier.pk)
    rows = [work.describe(c, versions=False) for c in Classifier.objects.select_related("label", "applied_version__model")]
    return render(request, "explorer/classifier_list.html", {"classifiers": rows})


def pr_curve_svg(points: list[dict]) -> dict:
    """Polyline coordinates of a precision-recall curve for an inline SVG (no script needed)."""
    w, h = SVG_W - 2 * PAD, SVG_H - 2 * PAD
    coords = " ".join(f"{PAD + p['recall'] * w:.1f},{PAD + (1 - p['precision']) * h:.1f}" for p in points)  # in threshold order
    return {"points": coords, "width": SVG_W, "height": SVG_H, "pad": PAD, "right": SVG_W - PAD, "bottom": SVG_H - PAD}


def class_curves_svg(metrics: dict) -> dict:
    """One polyline per class (one-vs-rest precision-recall on the test part), with its colour."""
    frame = pr_curve_svg([])
    frame["lines"] = [
        {"name": name, "colour": CURVE_COLOURS[i % len(CURVE_COLOURS)], "points": pr_curve_svg(metrics["pr_curves"][name])["points"],
         "average_precision": metrics["classes"][name]["average_precision"]}
        for i, name in enumerate(metrics.get("class_names", [])) if name in metrics.get("pr_curves", {})
    ]
    return frame


def confusion_rows(metrics: dict) -> list[dict]:
    names = metrics.get("class_names", [])
    return [{"name": name, "cells": metrics["confusion"][i]} for i, name in enumerate(names)]


@curator_required
def classifier_detail(request, pk: int):
    classifier = _classifier(pk)
    info = work.describe(classifier)
    version = classifier.versions.select_related("model").order_by("-number").first()
    shown = work.describe_version(version, full=True) if version else None
    examples = classifier.examples.select_related("artwork").order_by("-created_at")
    context = {
        "classifier": classifier, "info": info, "version": shown,
        "collections": collecting.visible_collections(request.user)[:100],
        "model": active_model(),
    }
    metrics = shown["metrics"] if shown else {}
    if classifier.multiclass:
        context["class_grids"] = [
            (c, [e.artwork for e in examples.filter(klass_id=c["id"])[:THUMBS]]) for c in info["classes"]
        ]
        if shown and shown["multiclass"] and metrics.get("pr_curves"):
            context["curves"] = class_curves_svg(metrics)
            context["confusion_rows"] = confusion_rows(metrics)
            # In class order (the stored JSON's own key order is the database's, not the classes').
            context["class_rows"] = [
                {"name": n, "examples": metrics["examples"].get(n, 0), **metrics["classes"][n]} for n in metrics["class_names"]
            ]
    else:
        context["curve"] = pr_curve_svg(metrics["pr_curve"]) if metrics.get("pr_curve") else None
        context["positives"] = [e.artwork for e in examples.filter(positive=True)[:THUMBS]]
        context["negatives"] = [e.artwork for e in examples.filter(positive=False)[:THUMBS]]
    return render(request, "explorer/classifier_detail.html", context)


def _ids_from(request) -> list[int]:
    """Artwork ids of a request: ticked/hidden ``artwork`` values, pasted ``ids``, the top 200 of
    a label (``from_label``) or a collection (``from_collection``)."""
    ids = curating.parse_ids(request.POST.getlist("artwork") + [request.POST.get("ids", "")])
    if ids:
        return ids
    if request.POST.get("from_label"):
        label = get_object_or_404(Label, slug=request.POST["from_label"])
        model = active_model()
        return [a.pk for a, _, _ in browse.label_page(label, model_id=model.pk if model else None, limit=200).items]
    if request.POST.get("from_collection"):
        collection = get_object_or_404(Collection, slug=request.POST["from_collection"])
        if not collection.is_public and not collecting.can_edit(collection, request.user):
            raise Http404
        return list(collection.items.values_list("artwork_id", flat=True))
    return []


@require_POST
@curator_required
def classifier_examples(request, pk: int | None = None):
    """Add the artworks of any list as positive (``positive=1``) or negative examples, or as
    examples of a class (``klass``, or ``classifier=<id>:<class id>``), or remove them."""
    raw = str(pk or request.POST.get("classifier", ""))
    raw, _, class_part = raw.partition(":")
    if not raw.isdigit():
        return bad_request(request, "choose a classifier")
    classifier = _classifier(int(raw))
    try:
        ids = _ids_from(request)
        if not ids:
            raise ValueError("no artworks given: tick some, paste ids, or choose a label or a collection")
        action = request.POST.get("positive", "1")
        if action == "remove":
            n = curating.remove_examples(classifier, ids)
            messages.success(request, f"Removed {n} example{'s' if n != 1 else ''}.")
        elif classifier.multiclass:
            if action in ("0", "false", "no"):
                raise ValueError(f"“{classifier.label.name}” has classes, not a negative side: choose the class these artworks belong to")
            klass = curating.find_class(classifier, request.POST.get("klass") or class_part)
            counts = curating.add_examples(classifier, ids, klass=klass, user=request.user)
            messages.success(
                request, f"Examples of “{klass.label.name}” for “{classifier.label.name}”: "
                f"{counts['added']} added, {counts['changed']} changed, {counts['unchanged']} unchanged.",
            )
        else:
            positive = action not in ("0", "false", "no")
            counts = curating.add_examples(classifier, ids, positive, user=request.user)
            messages.success(
                request, f"{'Positive' if positive else 'Negative'} examples for “{classifier.label.name}”: "
                f"{counts['added']} added, {counts['changed']} changed, {counts['unchanged']} unchanged.",
            )
    except ValueError as exc:
        return bad_request(request, str(exc))
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("explorer:classifier", pk=classifier.pk)


@require_POST
@curator_required
def classifier_train(request, pk: int):
    classifier = _classifier(pk)
    try:
        job = work.train(classifier, apply=request.POST.get("apply") == "1", user=request.user)
    except ValueError as exc:
        return bad_request(request, str(exc))
    messages.success(request, f"Training started as job #{job.pk}.")
    return redirect("explorer:classifier", pk=classifier.pk)


@require_POST
@curator_required
def classifier_apply(request, pk: int):
    classifier = _classifier(pk)
    number = request.POST.get("version", "")
    try:
        job = work.apply(classifier, int(number) if number.isdigit() else None, user=request.user)
    except ValueError as exc:
        return bad_request(request, str(exc))
    messages.success(request, f"Applying version {job.params['version']} to the archive as job #{job.pk}.")
    return redirect("explorer:classifier", pk=classifier.pk)


@curator_required
def classifier_review(request, pk: int):
    """Label more: the artworks the newest trained version is least sure about, and its most
    confident positives, each answered with yes / no (keyboard: y / n / s)."""
    from archive.models import Artwork, ClassifierVersion
    from workers.classifiers.active import suggestions

    classifier = _classifier(pk)
    version = (
        classifier.versions.select_related("model").filter(state=ClassifierVersion.State.READY, model__state="active")
        .order_by("-number").first()
    )
    if version is None:
        return bad_request(request, "train the classifier under the active model first: suggestions come from it")
    found = suggestions(version, limit=REVIEW_LIMIT)
    artworks = Artwork.objects.in_bulk([row[0] for rows in found.values() for row in rows])
    info = work.describe(classifier, versions=False)
    if version.class_ids:
        # A version's class order; the classes as they are now (a class added later has no key here).
        by_id = {c["id"]: c for c in info["classes"]}
        names = [by_id[c]["name"] if c in by_id else "?" for c in version.class_ids]
        rows = {key: [(artworks[i], p, names[k]) for i, p, k in found[key] if i in artworks] for key in found}
        sections = [("Least sure", rows["uncertain"]), ("Most confident", rows["confident"])]
    else:
        sections = [
            ("Least sure", [(artworks[i], p, None) for i, p in found["uncertain"] if i in artworks]),
            ("Most confident positives", [(artworks[i], p, None) for i, p in found["confident"] if i in artworks]),
        ]
    return render(request, "explorer/classifier_review.html", {
        "classifier": classifier, "info": info, "version": version, "sections": sections,
    })
