"""Curator workspace: label decisions, prompt labels, collections."""
from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from archive.models import Artwork, Collection, Label
from archive.models.labels import TRAINED_GROUP

from .. import browse, collecting, label_suggest, prompt_labels
from ..forms import CollectionForm, PromptLabelForm, first_error
from ..models_state import active_model, untrained_notice
from ..permissions import curator_required
from .errors import bad_request


@require_POST
@curator_required
def decide(request, pk: int):
    artwork = get_object_or_404(Artwork, pk=pk)
    label_id = request.POST.get("label", "")
    if label_id.isascii() and label_id.isdigit() and len(label_id) <= 18:
        label = get_object_or_404(Label, pk=int(label_id))
    else:  # the type-ahead box without script sends what the curator typed: a label's name or slug
        label = label_suggest.resolve(label_id, include_drafts=True) if label_id.strip() else None
        if label is None:
            return bad_request(request, "label must be a label id, or the name of an existing label")
    decision = request.POST.get("decision", "")
    try:
        browse.decide(artwork, label, decision, request.user)
    except ValueError as exc:
        return bad_request(request, str(exc))
    if request.headers.get("accept", "").startswith("application/json"):
        return JsonResponse({"artwork": artwork.pk, "label": label.pk, "decision": decision})
    verb = {"rejected": "Rejected", "accepted": "Accepted", "added": "Added", "clear": "Cleared the decision on"}[decision]
    messages.success(request, f"{verb} “{label.name}”.")
    return redirect(reverse("explorer:artwork", args=[artwork.pk]) + "#labels")


@curator_required
def prompt_label_new(request):
    if request.method == "POST":
        form = PromptLabelForm(request.POST)
        try:
            if not form.is_valid():
                raise ValueError(first_error(form))
            label = prompt_labels.create_prompt_label(
                form.cleaned_data["name"], form.cleaned_data["prompt"], request.user, group=form.cleaned_data["group"],
            )
        except ValueError as exc:
            shown = {k: v.replace("\x00", "") for k, v in request.POST.items()}
            return render(request, "explorer/prompt_label_new.html", {"error": str(exc), "form": shown}, status=400)
        return redirect("explorer:prompt_label_review", slug=label.slug)
    drafts = Label.objects.filter(published=False).exclude(group=TRAINED_GROUP).order_by("-created_at")[:50]
    return render(request, "explorer/prompt_label_new.html", {"drafts": drafts, "form": {}})


@curator_required
def prompt_label_review(request, slug: str):
    label = get_object_or_404(Label, slug=slug)
    model = active_model()
    error = ""
    if request.method == "POST":
        if request.POST.get("action") == "publish":
            raw = request.POST.get("threshold", "").strip()
            try:
                threshold = float(raw) if raw else None
            except ValueError:
                threshold = float("nan")
            if threshold is not None and not -1.0 <= threshold <= 1.0:  # also refuses nan and inf
                return bad_request(request, "threshold must be a number from -1 to 1 (a cosine score)")
            try:
                excluded = set(collecting.parse_ids(request.POST.getlist("exclude")))
            except ValueError as exc:
                return bad_request(request, str(exc))
            job = prompt_labels.publish(label, threshold=threshold, user=request.user)
            for artwork in Artwork.objects.filter(pk__in=excluded):
                browse.decide(artwork, label, "rejected", request.user)
            if job is None:
                messages.success(request, f"Published “{label.name}”. Nothing is embedded yet: the label job scores it later.")
            else:
                messages.success(request, format_html(
                    "Published “{}”. <a href=\"{}\">Job #{}</a> scores it over the whole archive; this page fills in as it runs.",
                    label.name, reverse("explorer:job", args=[job.pk]), job.pk,
                ))
            return redirect("explorer:label", slug=label.slug)
        if request.POST.get("action") == "delete" and not label.published:
            if not prompt_labels.may_delete_draft(label, request.user):
                owner = label.created_by.get_username() if label.created_by_id else "nobody"
                return render(request, "403.html", {"message": f"This draft belongs to {owner}: only they or an operator can delete it."},
                              status=403)
            label.delete()
            messages.success(request, "Draft label deleted.")
            return redirect("explorer:prompt_label_new")
    try:
        scores = prompt_labels.score_label(label)
    except Exception as exc:  # no model, weights missing: explain, never 500
        scores, error = [], f"Could not score this label: {exc}"
    found = Artwork.objects.in_bulk([a for a, _ in scores])
    return render(
        request,
        "explorer/prompt_label_review.html",
        {"label": label, "results": [(found[a], s) for a, s in scores if a in found], "error": error,
         "may_delete": prompt_labels.may_delete_draft(label, request.user),
         "model": model, "untrained_notice": untrained_notice(model)},
    )


# --- collections --------------------------------------------------------------------------------

def collection_list(request):
    collections = collecting.visible_collections(request.user).order_by("-updated_at")
    return render(request, "explorer/collection_list.html", {"collections": collections})


def _visible(request, slug) -> Collection:
    collection = get_object_or_404(Collection, slug=slug)
    if not collection.is_public and collection.owner_id != getattr(request.user, "pk", None) and not request.user.is_staff:
        raise Http404("No such collection")
    return collection


def collection_detail(request, slug: str):
    collection = _visible(request, slug)
    editable = collecting.can_edit(collection, request.user)
    if request.method == "POST":
        if not editable:
            raise PermissionDenied
        action = request.POST.get("action")
        if action == "remove":
            try:
                ids = collecting.parse_ids(request.POST.getlist("artwork"))
            except ValueError as exc:
                return bad_request(request, str(exc))
            collection.items.filter(artwork_id__in=ids).delete()
        elif action == "update":
            form = CollectionForm(request.POST)
            if not form.is_valid():
                return bad_request(request, first_error(form))
            collection.title = form.cleaned_data["title"] or collection.title
            collection.description = form.cleaned_data["description"]
            collection.is_public = form.cleaned_data["is_public"]
            collection.save()
        elif action == "delete":
            collection.delete()
            messages.success(request, "Collection deleted.")
            return redirect("explorer:collections")
        return redirect("explorer:collection", slug=collection.slug)
    return render(
        request,
        "explorer/collection_detail.html",
        {"collection": collection, "page": collecting.page_of(collection, request.GET.get("page")), "editable": editable},
    )


@require_POST
@curator_required
def collection_save(request):
    """Save artworks (from search results, a label page or a map selection) to a new or existing collection."""
    form = CollectionForm(request.POST)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    try:
        ids = collecting.parse_ids(request.POST.getlist("artwork") or request.POST.get("artworks", ""))
    except ValueError as exc:
        return bad_request(request, str(exc))
    label_slug = form.cleaned_data["from_label"]
    if label_slug and not ids:
        label = get_object_or_404(Label, slug=label_slug)
        model = active_model()
        page = browse.label_page(label, model_id=model.pk if model else None, limit=200)
        ids = [artwork.pk for artwork, _, _ in page.items]
    if not ids:
        return bad_request(request, "nothing to save: select some artworks")
    target = form.cleaned_data["collection"]
    if target:
        collection = get_object_or_404(Collection, slug=target)
        if not collecting.can_edit(collection, request.user):
            raise PermissionDenied
        n = collecting.add_items(collection, ids)
    else:
        try:
            collection = collecting.create_collection(
                form.cleaned_data["title"], request.user, ids, description=form.cleaned_data["description"],
                is_public=form.cleaned_data["is_public"],
            )
        except ValueError as exc:
            return bad_request(request, str(exc))
        n = collection.items.count()
    messages.success(request, f"Saved {n} artworks to “{collection.title}”.")
    return redirect("explorer:collection", slug=collection.slug)


def collection_export(request, slug: str, fmt: str):
    collection = _visible(request, slug)
    base = request.build_absolute_uri("/").rstrip("/")
    if fmt == "csv":
        response = HttpResponse(collecting.export_csv(collection, base), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{collection.slug}.csv"'
        return response
    if fmt == "json":
        data = collecting.export_json(collection, base)
    elif fmt == "iiif.json":
        data = collecting.export_iiif(collection, base)
    else:
        raise Http404("unknown export format")
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json")
    if fmt == "iiif.json":
        response["Content-Type"] = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
        response["Access-Control-Allow-Origin"] = "*"
    response["Content-Disposition"] = f'inline; filename="{collection.slug}.{fmt}"'
    return response
