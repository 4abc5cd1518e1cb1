"""Curator-trained classifiers on the small real archive (40 AIC paintings, 20 culturecraft
crops, embedded with the untrained test-tiny model): examples, training as a job, the test-part
figures, applying to the archive as label rows, decisions winning, versions, pages and the API."""
import numpy as np
import pytest
from django.test import Client

from archive import label_counts
from archive.models import ArtworkLabel, ClassifierVersion, EmbeddingModel, Job, LabelCount, LabelDecision
from workers import jobs
from workers.classifiers import train_stage
from workers.classifiers.fit import fit
from workers.classifiers.curating import add_examples, create_classifier, example_counts

pytestmark = pytest.mark.django_db


def _groups(archive):
    cc = [a.pk for a in archive["artworks"] if a.source == "culturecraft"]
    aic = [a.pk for a in archive["artworks"] if a.source == "aic"]
    return cc, aic


def _classifier(archive, user=None, **kwargs):
    cc, aic = _groups(archive)
    classifier = create_classifier("Culturecraft detail", user=user, **kwargs)
    add_examples(classifier, cc, True, user=user)
    add_examples(classifier, aic, False, user=user)
    return classifier


def _train(classifier, **params) -> ClassifierVersion:
    job = train_stage.start({"classifier_id": classifier.pk, **params})
    return train_stage.run_job(job)


def _apply(version) -> Job:
    job = jobs.launch("apply_classifier", {"version_id": version.pk}, mode="all", batch_size=25, enqueue=False)
    for batch_id in job.batches.order_by("seq").values_list("pk", flat=True):
        jobs.run_batch(batch_id)
    job.refresh_from_db()
    return job


def test_training_separates_a_visually_distinct_group(archive):
    classifier = _classifier(archive)
    assert example_counts(classifier) == {"positive": 20, "negative": 40}
    version = _train(classifier)
    job = Job.objects.get(pk=version.job_id)
    assert version.state == "ready" and job.state == "done", (version.message, job.message)
    assert job.kind == "train_classifier" and job.message.startswith("version 1: test part: precision")
    m = version.metrics
    assert m["split"] == {"train": 48, "validation": 6, "test": 6, "seed": 0}
    assert np.array(m["confusion"]).sum() == 6 and m["untrained_model"] is True
    # Above chance even with random weights (colour and texture): the test part is 2 crops and 4
    # paintings, so one split is noisy; over five seeded splits the test-part average precision
    # is well above the positive share (1/3), which is what ranking at random gives on average.
    assert 0 <= m["average_precision"] <= 1 and 0 <= m["accuracy"] <= 1
    cc, aic = _groups(archive)
    ids = cc + aic
    y = np.array([1] * len(cc) + [0] * len(aic))
    order = [archive["artworks"].index(next(a for a in archive["artworks"] if a.pk == i)) for i in ids]
    precisions = [fit(archive["matrix"][order], y, seed=seed).metrics["average_precision"] for seed in range(5)]
    assert np.mean(precisions) > 0.6, precisions
    assert len(version.weights) == archive["model"].dim and 0 < version.threshold < 1
    # Deterministic for a seed: a second version from the same examples is the same model.
    again = _train(classifier)
    assert again.number == 2 and again.weights == version.weights and again.metrics == version.metrics


def test_bad_inputs_get_clear_messages(archive):
    cc, aic = _groups(archive)
    classifier = create_classifier("Too few")
    version = _train(classifier)
    assert version.state == "failed" and "no examples yet" in version.message
    assert Job.objects.get(pk=version.job_id).state == "failed"
    add_examples(classifier, cc[:5], True)
    add_examples(classifier, aic[:30], False)
    version = _train(classifier)
    assert version.message.startswith("too few examples: 5 positive and 30 negative; add at least 10 of each")
    single = create_classifier("One class")
    add_examples(single, cc, True)
    assert "all 20 examples are positive: add negative examples" in _train(single).message
    # A model without embeddings of the examples.
    other = EmbeddingModel.objects.create(key="no-vectors", arch="none", dim=8, state="retired")
    version = _train(_classifier(archive), model_id=other.pk)
    assert version.state == "failed" and "none of the 60 examples has an embedding under model no-vectors" in version.message
    with pytest.raises(ValueError, match="no artwork with id 987654321"):
        add_examples(single, [987654321], True)
    with pytest.raises(ValueError, match="needs a name"):
        create_classifier("  ")
    with pytest.raises(ValueError, match="existing classifier"):
        train_stage.start({"classifier_id": 987654321})
    refused = jobs.launch("apply_classifier", {"version_id": version.pk}, enqueue=False)
    assert refused.state == "failed" and "is not trained" in refused.message


def test_apply_writes_label_rows_that_decisions_and_relabelling_respect(archive):
    from workers.labeling.store import write_top_k

    model = archive["model"]
    classifier = _classifier(archive)
    version = _train(classifier)
    job = _apply(version)
    assert job.state == "done" and job.done == len(archive["artworks"]), job.message
    label = classifier.label
    label.refresh_from_db()
    classifier.refresh_from_db()
    assert label.published and label.group == "trained" and label.threshold == version.threshold
    assert classifier.applied_version_id == version.pk
    rows = ArtworkLabel.objects.filter(label=label, model=model)
    assert rows.exists() and set(rows.values_list("rank", flat=True)) == {0}
    shown = set(rows.filter(score__gte=version.threshold).values_list("artwork_id", flat=True))
    cc, _ = _groups(archive)
    from workers.classifiers.applying import score

    p = score(version, archive["matrix"])
    is_cc = np.array([a.pk in set(cc) for a in archive["artworks"]])
    assert p[is_cc].mean() > p[~is_cc].mean()  # the crops score higher than the paintings
    assert shown == {a.pk for a, q in zip(archive["artworks"], p) if q >= version.threshold}
    assert LabelCount.objects.get(label=label, model=model).count == len(shown)
    # The label page lists them, like any label; a rejection hides one and the count follows.
    html = Client().get(f"/labels/{label.slug}/").content.decode()
    first = sorted(shown)[0]
    assert f'href="/artworks/{first}/"' in html
    LabelDecision.objects.create(artwork_id=first, label=label, decision="rejected")
    label_counts.refresh(model.pk, [label.pk])
    assert f'href="/artworks/{first}/"' not in Client().get(f"/labels/{label.slug}/").content.decode()
    assert LabelCount.objects.get(label=label, model=model).count == len(shown) - 1
    # The vocabulary's label stage rewriting these artworks' top-k leaves the classifier's rows.
    ids = np.asarray(sorted(shown), dtype=np.int64)
    vocab = [l.pk for l in archive["labels"]]
    write_top_k(model.pk, ids, np.asarray(vocab, dtype=np.int64), np.zeros((len(ids), 1), dtype=np.int64),
                np.full((len(ids), 1), 0.5, dtype=np.float32))
    assert set(rows.filter(score__gte=version.threshold).values_list("artwork_id", flat=True)) == shown
    assert LabelCount.objects.get(label=label, model=model).count == len(shown) - 1
    # So does a reset of the whole model's top-k rows (the label job's mode "reset").
    from workers.labeling.store import delete_rows

    delete_rows(model.pk)
    assert set(rows.filter(score__gte=version.threshold).values_list("artwork_id", flat=True)) == shown
    assert LabelCount.objects.get(label=label, model=model).count == len(shown) - 1
    assert not ArtworkLabel.objects.filter(model=model, rank__gt=0).exists()


def test_versions_are_kept_and_an_older_one_can_be_applied_again(archive):
    classifier = _classifier(archive)
    first = _train(classifier)
    classifier.seed = 7
    classifier.save()
    second = _train(classifier)
    assert second.number == 2 and second.seed == 7
    _apply(second)
    classifier.refresh_from_db()
    assert classifier.applied_version_id == second.pk
    _apply(first)  # roll back
    classifier.refresh_from_db()
    classifier.label.refresh_from_db()
    assert classifier.applied_version_id == first.pk and classifier.label.threshold == first.threshold
    assert ClassifierVersion.objects.filter(classifier=classifier).count() == 2


def _run(job):
    for batch_id in job.batches.order_by("seq").values_list("pk", flat=True):
        jobs.run_batch(batch_id)
    job.refresh_from_db()
    return job


def test_curator_pages_examples_from_any_list_train_and_apply(curator_client, archive, curator):
    from archive.models import Classifier, Collection

    cc, aic = _groups(archive)
    r = curator_client.post("/curate/classifiers/", {"name": "Crops", "target_precision": "0.8"})
    assert r.status_code == 302
    classifier = Classifier.objects.get(label__name="Crops")
    assert r["Location"] == f"/curate/classifiers/{classifier.pk}/" and classifier.target_precision == 0.8
    assert classifier.label.group == "trained" and not classifier.label.published
    # From search results: the search page's buttons submit its ticked artworks here.
    search = curator_client.get("/search/?q=portrait").content.decode()
    assert 'formaction="/curate/classifiers/examples/"' in search and f'<option value="{classifier.pk}">Crops</option>' in search
    r = curator_client.post("/curate/classifiers/examples/", {
        "classifier": classifier.pk, "artwork": cc[:12], "positive": "1", "next": "/search/?q=portrait", "title": "",
    })
    assert r.status_code == 302 and r["Location"] == "/search/?q=portrait"
    # Pasted ids (a map selection), a collection, a label's top 200.
    curator_client.post(f"/curate/classifiers/{classifier.pk}/examples/", {"ids": " ".join(map(str, cc[12:])), "positive": "1"})
    collection = Collection.objects.create(title="Paintings", slug="paintings-cls", owner=curator)
    for i, pk in enumerate(aic[:30]):
        collection.items.create(artwork_id=pk, position=i)
    curator_client.post(f"/curate/classifiers/{classifier.pk}/examples/", {"from_collection": collection.slug, "positive": "0"})
    curator_client.post(f"/curate/classifiers/{classifier.pk}/examples/", {"ids": " ".join(map(str, aic[30:])), "positive": "0"})
    assert example_counts(classifier) == {"positive": 20, "negative": 40}
    label_page = curator_client.get(f"/labels/{archive['labels'][0].slug}/").content.decode()
    assert "Add to a classifier" in label_page
    assert curator_client.post(f"/curate/classifiers/{classifier.pk}/examples/", {"ids": "12 x", "positive": "1"}).status_code == 400
    assert curator_client.post(f"/curate/classifiers/{classifier.pk}/examples/", {"positive": "1"}).status_code == 400
    page = curator_client.get(f"/curate/classifiers/{classifier.pk}/").content.decode()
    assert "20 positive, 40 negative" in page and "enough to train" in page
    # Train (a job on the label queue), read the figures.
    r = curator_client.post(f"/curate/classifiers/{classifier.pk}/train/")
    assert r.status_code == 302
    job = Job.objects.get(kind="train_classifier", params__classifier_id=classifier.pk)
    assert job.state == "queued" and job.created_by == curator
    _run(job)
    assert job.state == "done", job.message
    page = curator_client.get(f"/curate/classifiers/{classifier.pk}/").content.decode()
    assert 'id="confusion"' in page and 'id="per-class"' in page and "<polyline points=" in page and "random weights" in page
    # Apply; the label is then shown like any other, marked as trained by curators.
    r = curator_client.post(f"/curate/classifiers/{classifier.pk}/apply/", {"version": "1"})
    assert r.status_code == 302
    job = _run(Job.objects.get(kind="apply_classifier", params__classifier_id=classifier.pk))
    assert job.state == "done", job.message
    labels = Client().get("/labels/?group=trained").content.decode()
    assert f"/labels/{classifier.label.slug}/" in labels
    assert "applied" in curator_client.get(f"/curate/classifiers/{classifier.pk}/").content.decode()
    label_page = curator_client.get(f"/labels/{classifier.label.slug}/").content.decode()
    assert "trained by curators" in label_page and f'href="/curate/classifiers/{classifier.pk}/#metrics"' in label_page
    classifier.label.refresh_from_db()
    row = ArtworkLabel.objects.filter(label=classifier.label, score__gte=classifier.label.threshold).order_by("-score").first()
    artwork_page = Client().get(f"/artworks/{row.artwork_id}/").content.decode()
    assert f"/labels/{classifier.label.slug}/" in artwork_page and "trained by curators" in artwork_page
    assert curator_client.post(f"/curate/classifiers/{classifier.pk}/apply/", {"version": "9"}).status_code == 400


def test_pages_and_api_are_for_curators_only(client, archive, visitor):
    classifier = create_classifier("Private")
    for url in ("/curate/classifiers/", f"/curate/classifiers/{classifier.pk}/"):
        assert client.get(url).status_code == 302
    assert client.get("/api/v1/classifiers/").status_code in (401, 403)
    client.force_login(visitor)
    assert client.get(f"/curate/classifiers/{classifier.pk}/").status_code == 403
    assert client.post(f"/curate/classifiers/{classifier.pk}/train/").status_code == 403
    assert client.get("/api/v1/classifiers/").status_code == 403
    assert client.post(f"/api/v1/classifiers/{classifier.pk}/examples/", {"artwork_ids": [1]}, content_type="application/json").status_code == 403


def test_api_create_examples_train_metrics_apply(curator_client, archive):
    cc, aic = _groups(archive)
    r = curator_client.post("/api/v1/classifiers/", {"name": "API crops", "seed": 3}, content_type="application/json")
    assert r.status_code == 201, r.content
    cid = r.json()["id"]
    assert r.json()["examples"] == {"positive": 0, "negative": 0} and not r.json()["ready_to_train"]
    r = curator_client.post(f"/api/v1/classifiers/{cid}/examples/", {"artwork_ids": cc, "positive": True}, content_type="application/json")
    assert r.json()["added"] == 20
    r = curator_client.post(f"/api/v1/classifiers/{cid}/examples/", {"artwork_ids": aic, "positive": False}, content_type="application/json")
    assert r.json()["examples"] == {"positive": 20, "negative": 40}
    r = curator_client.post(f"/api/v1/classifiers/{cid}/examples/", {"artwork_ids": [987654321]}, content_type="application/json")
    assert r.status_code == 400 and "987654321" in r.content.decode()
    assert curator_client.get(f"/api/v1/classifiers/{cid}/metrics/").status_code == 400  # not trained yet
    r = curator_client.post(f"/api/v1/classifiers/{cid}/train/", {"apply": True}, content_type="application/json")
    assert r.status_code == 202 and r.json()["kind"] == "train_classifier"
    _run(Job.objects.get(pk=r.json()["id"]))
    metrics = curator_client.get(f"/api/v1/classifiers/{cid}/metrics/").json()
    assert metrics["state"] == "ready" and metrics["seed"] == 3
    assert set(metrics["metrics"]) >= {"confusion", "classes", "pr_curve", "threshold", "C", "split"}
    # apply=True started the apply job when training ended.
    applied = Job.objects.get(kind="apply_classifier", params__classifier_id=cid)
    _run(applied)
    detail = curator_client.get(f"/api/v1/classifiers/{cid}/").json()
    assert detail["applied_version"]["number"] == 1 and detail["published"]
    r = curator_client.post(f"/api/v1/classifiers/{cid}/apply/", {}, content_type="application/json")
    assert r.status_code == 202 and r.json()["kind"] == "apply_classifier"
    schema = curator_client.get("/api/v1/schema/").content.decode()
    for path in ("/api/v1/classifiers/", "/api/v1/classifiers/{id}/examples/", "/api/v1/classifiers/{id}/train/",
                 "/api/v1/classifiers/{id}/metrics/", "/api/v1/classifiers/{id}/apply/"):
        assert path in schema


def test_a_model_switch_retrains_the_applied_classifiers_on_the_new_model(archive):
    from archive import vectors
    from workers.classifiers.model_switch import retrain_after_label

    old = archive["model"]
    classifier = _classifier(archive)
    _apply(_train(classifier))
    new = EmbeddingModel.objects.create(key="tiny-b", arch="test", dim=old.dim, state="embedding", untrained=True)
    rng = np.random.default_rng(5)
    matrix = archive["matrix"] + rng.normal(scale=0.01, size=archive["matrix"].shape).astype(np.float32)
    vectors.copy_rows("archive_artworkembedding", ["artwork_id", "model_id", "vector", "created_at"],
                      [(a.pk, new.pk, matrix[i], "now") for i, a in enumerate(archive["artworks"])])
    label_job = Job.objects.create(kind="label", params={"model_id": new.pk, "model": new.key}, state="done")
    line = retrain_after_label(label_job)
    assert line.startswith("classifiers retrained on tiny-b: 1 ready (applied by job #"), line
    version = classifier.versions.get(model=new)
    assert version.state == "ready" and version.number == 2 and version.metrics["model"] == "tiny-b"
    _run(Job.objects.get(kind="apply_classifier", params__version_id=version.pk))
    assert ArtworkLabel.objects.filter(label=classifier.label, model=new).exists()
    assert ArtworkLabel.objects.filter(label=classifier.label, model=old).exists()  # kept for switching back
    classifier.refresh_from_db()
    assert classifier.applied_version_id == version.pk
    assert retrain_after_label(label_job) is None  # already on that model


def test_label_more_suggests_uncertain_and_confident_artworks_that_are_not_examples(curator_client, archive):
    from workers.classifiers.active import suggestions
    from workers.classifiers.applying import score

    cc, aic = _groups(archive)
    classifier = create_classifier("Active")
    add_examples(classifier, cc[:14], True)
    add_examples(classifier, aic[:26], False)
    version = _train(classifier)
    assert version.state == "ready", version.message
    found = suggestions(version, limit=5)
    examples = set(cc[:14] + aic[:26])
    rest = [a for a in archive["artworks"] if a.pk not in examples]
    p = dict(zip([a.pk for a in rest], score(version, archive["matrix"][[archive["artworks"].index(a) for a in rest]]).tolist()))
    logit = lambda q: np.log(q / (1 - q))  # noqa: E731
    distance = {i: abs(logit(q) - logit(version.threshold)) for i, q in p.items()}
    assert [i for i, _ in found["uncertain"]] == sorted(distance, key=distance.get)[:5]
    assert [i for i, _ in found["confident"]] == [i for i in sorted(p, key=p.get, reverse=True)[:5] if p[i] >= version.threshold]
    assert not examples & {i for rows in found.values() for i, _ in rows}
    page = curator_client.get(f"/curate/classifiers/{classifier.pk}/review/").content.decode()
    assert "Least sure" in page and f'data-id="{found["uncertain"][0][0]}"' in page and "classifier-review.js" in page
    # Answering one makes it an example; it is not suggested again.
    first = found["uncertain"][0][0]
    r = curator_client.post(f"/curate/classifiers/{classifier.pk}/examples/", {
        "artwork": first, "positive": "0", "next": f"/curate/classifiers/{classifier.pk}/review/"})
    assert r.status_code == 302 and r["Location"].endswith("/review/")
    assert first not in {i for rows in suggestions(version, limit=5).values() for i, _ in rows}
    untrained = create_classifier("Untrained")
    assert curator_client.get(f"/curate/classifiers/{untrained.pk}/review/").status_code == 400
