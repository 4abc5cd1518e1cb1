"""The ``score_label`` job: a label a curator published, scored over the whole archive on a worker.

Publishing a prompt label (explorer) launches this job on the label queue and returns at once.
It runs over every non-retired model that has embeddings (the active one, and a model being
embedded for a switch), in batches of artworks like the other stages, so it has progress,
pause/resume/cancel and recovery: each batch reads its artworks' embeddings per model and enters
the label into their stored top-k where it ranks (:func:`.curator.apply_to_chunk`). The first
batch on a worker embeds the label's prompt ensemble for each model (cached per (label, model)).
At the end the label's score statistics are stored per model (over the same sample the
vocabulary's statistics use).
"""
from __future__ import annotations

from django.db.models import Exists, OuterRef

from archive.models import ArtworkEmbedding, EmbeddingModel, Label
from workers.ml.clip import WeightsMissing
from workers.jobs import BatchResult, Stage, StopJob

from .curator import apply_to_chunk, top_k
from .stats import store_sampled_stats
from .store import load_embeddings
from .text import label_vector


def scoring_models():
    """Models a published label is scored under: not retired, with embeddings."""
    return (
        EmbeddingModel.objects.exclude(state=EmbeddingModel.State.RETIRED)
        .filter(Exists(ArtworkEmbedding.objects.filter(model=OuterRef("pk"))))
        .order_by("pk")
    )


def prepare(params: dict) -> dict:
    try:
        label = Label.objects.get(pk=int(params["label_id"]))
    except (KeyError, ValueError, Label.DoesNotExist):
        raise ValueError(f"score_label needs the id of an existing label (got {params.get('label_id')!r})") from None
    models = list(scoring_models())
    if not models:
        raise ValueError("no embedding model has embeddings yet: embed the archive first (manage.py embed)")
    return {
        **params,
        "label_id": label.pk,
        "label": label.slug,
        "model_ids": [m.pk for m in models],
        "models": [m.key for m in models],
        "top_k": int(params.get("top_k") or top_k()),
        "untrained": any(m.untrained for m in models),
    }


def candidates(params: dict):
    return ArtworkEmbedding.objects.filter(model_id__in=params["model_ids"]).values_list("artwork_id", flat=True)


def completed(params: dict):
    return ArtworkEmbedding.objects.none().values_list("artwork_id", flat=True)  # always scores everything


def reset(params: dict) -> None:
    """Nothing to delete first: each batch replaces the label's rows of its artworks."""


def process(artwork_ids: list[int], params: dict) -> BatchResult:
    label = Label.objects.get(pk=params["label_id"])
    for model in EmbeddingModel.objects.filter(pk__in=params["model_ids"]).order_by("pk"):
        try:
            vec = label_vector(label, model)
        except WeightsMissing as exc:
            raise StopJob(str(exc)) from exc
        ids, matrix = load_embeddings(model.pk, artwork_ids)
        if len(ids):
            apply_to_chunk(label, model, vec, ids, matrix, int(params["top_k"]))
    return BatchResult(done=list(artwork_ids))


def finish(job) -> None:
    label = Label.objects.get(pk=job.params["label_id"])
    for model in EmbeddingModel.objects.filter(pk__in=job.params["model_ids"]):
        store_sampled_stats(model, label)


STAGE = Stage(
    kind="score_label",
    queue="label",
    description="Score a new label over the archive",
    launchable=False,
    batch_size=2000,
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
    finish=finish,
)
