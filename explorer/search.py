"""Search: by meaning (CLIP text embedding, kNN), by metadata (PostgreSQL full text on
``Artwork.search_document``), by the text read in the images (OCR, ``ArtworkText.document``, at a
lower weight) and by filters, fused with reciprocal rank fusion; and search by image."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import F, Q
from django.db.models.functions import Length
from PIL import Image, ImageOps

from archive import substring, vectors
from archive.models import Artwork, ArtworkText, EmbeddingModel

from .label_suggest import resolve as resolve_label
from .models_state import HIDDEN_COLUMNS, active_model, display_artworks
from .similar import nearest_artworks, nearest_in

log = logging.getLogger(__name__)

RRF_K = 60
CANDIDATES = 100  # per ranking (RRF input)
MAX_QUERY_CHARS = 500


def clean_text(value, limit: int = 255) -> str:
    """A user-supplied string without NUL/control characters (PostgreSQL rejects NUL), trimmed."""
    text = "".join(ch for ch in str(value or "") if ch >= " " or ch in "\t\n")
    return text.strip()[:limit]


class BadSearch(ValueError):
    """A search parameter that cannot be used (message is shown to the user)."""


def word_prefix_tsquery(text: str, config: str = "simple") -> str:
    """Every word of a text as a prefix, as tsquery text ("van gog" gives ``'van':* & 'gog':*``,
    which finds "Vincent van Gogh" and "Gogh, Vincent van"). PostgreSQL splits the text into
    words exactly as it split the indexed document (``to_tsvector`` with the same configuration);
    each word is quoted, so any input makes a valid query. Built before the search runs, so the
    planner sees a constant and can estimate how many artworks match."""
    with connection.cursor() as cursor:
        cursor.execute(
            r"""SELECT string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''':*', ' & ')"""
            r""" FROM unnest(to_tsvector(%s::regconfig, %s))""",
            [config, text],
        )
        return cursor.fetchone()[0] or ""


def creator_query(text: str) -> SearchQuery | None:
    """The creator filter: word prefixes on the creator alone, served by the GIN index
    artwork_creator_words (any PostgreSQL; substrings of makers are matched by the search text
    itself where pg_trgm is available, :mod:`archive.substring`)."""
    if not re.search(r"\w", text):
        return None
    tsquery = word_prefix_tsquery(text)
    return SearchQuery(tsquery, search_type="raw", config="simple") if tsquery else None


@dataclass
class Filters:
    creator: str = ""
    year_from: int | None = None
    year_to: int | None = None
    label: str = ""  # label slug
    institution: str = ""
    classification: str = ""

    @classmethod
    def from_params(cls, params) -> "Filters":
        """Filters from a query string (validated by :class:`explorer.forms.FilterForm`)."""
        from .forms import FilterForm, first_error

        form = FilterForm(params)
        if not form.is_valid():
            raise BadSearch(first_error(form))
        data = form.cleaned_data
        return cls(
            creator=data["creator"], year_from=data["year_from"], year_to=data["year_to"], label=data["label"],
            institution=data["institution"], classification=data["classification"],
        )

    def __bool__(self) -> bool:
        return any(getattr(self, f) not in ("", None) for f in self.__dataclass_fields__)

    def apply(self, qs, model: EmbeddingModel | None = None, *, include_drafts: bool = False):
        """Narrow an Artwork queryset. The label filter keeps the artworks the label is shown on
        (machine rows at or above its effective threshold, not rejected, plus curator-added or
        accepted ones); only published labels unless ``include_drafts`` (curators)."""
        if self.creator:
            query = creator_query(self.creator)
            if query is not None:
                qs = qs.annotate(_creator_words=SearchVector("creator", config="simple")).filter(_creator_words=query)
        if self.year_from is not None:
            qs = qs.filter(Q(year_end__gte=self.year_from) | Q(year_end__isnull=True, year_start__gte=self.year_from))
        if self.year_to is not None:
            qs = qs.filter(year_start__lte=self.year_to)
        if self.institution:
            qs = qs.filter(institution=self.institution)
        if self.classification:
            qs = qs.filter(classification__iexact=self.classification)
        if self.label:
            qs = self._apply_label(qs, model, include_drafts)
        return qs

    def _apply_label(self, qs, model, include_drafts: bool):
        from archive.models import LabelDecision

        from .browse import thresholds

        label = resolve_label(self.label, include_drafts=include_drafts)
        if label is None:
            return qs.none()
        # Conditions on curator decisions only where there are some: a plain semi-join on the
        # label's rows lets PostgreSQL drive the query from the (label, model, -score) index.
        decisions = LabelDecision.objects.filter(label=label)
        curated = decisions.filter(decision__in=["added", "accepted"])
        rejected = decisions.filter(decision="rejected")
        shown = Q(pk__in=curated.values("artwork_id")) if curated.exists() else None
        if model is not None:
            rows = label.artwork_labels.filter(model=model)
            threshold = thresholds([label], model.pk)[label.pk]
            if threshold is not None:
                rows = rows.filter(score__gte=threshold)
            machine = Q(pk__in=rows.values("artwork_id"))
            shown = machine if shown is None else shown | machine
        if shown is None:
            return qs.none()
        qs = qs.filter(shown)
        return qs.exclude(pk__in=rejected.values("artwork_id")) if rejected.exists() else qs



@dataclass
class SearchResult:
    artworks: list  # [(artwork, score)]
    total: int
    model: EmbeddingModel | None = None
    notices: list[str] = field(default_factory=list)
    used_meaning: bool = False
    used_metadata: bool = False
    copies: dict = field(default_factory=dict)  # artwork id -> near-copy score (search by image)
    total_capped: bool = False  # more than COUNT_CAP matched; total says COUNT_CAP
    used_text: bool = False  # the text read in the images matched
    text_matches: set = field(default_factory=set)  # ids of the artworks whose image text matched


def rrf(rankings: list[list[int]], k: int = RRF_K, weights: list[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each list contributes weight / (k + rank) to its items (weight 1
    unless ``weights`` gives one per list)."""
    scores: dict[int, float] = {}
    for index, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[index]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def base_queryset():
    return Artwork.objects.exclude(status=Artwork.Status.DUPLICATE)


def _embedder_for(model: EmbeddingModel):
    from workers.ml.registry import get_embedder

    return get_embedder(model.key)


def meaning_ranking(q: str, model: EmbeddingModel, notices: list[str], within=None, filters: Filters | None = None) -> list[int]:
    """Artwork ids nearest to the text's embedding, best first; with ``within`` (a filtered
    queryset) only among those artworks (:func:`explorer.similar.nearest_in`)."""
    try:
        embedder = _embedder_for(model)
        query = embedder.embed_texts([q])[0]
    except Exception as exc:  # WeightsMissing and friends: say so, fall back to metadata
        log.warning("text embedding unavailable: %s", exc)
        notices.append(f"Search by meaning is unavailable ({exc.__class__.__name__}: {str(exc)[:200]}); showing metadata matches only.")
        return []
    if within is not None:
        return [a for a, _ in nearest_in(model, query, within, limit=CANDIDATES, filters=filters)]
    return [a for a, _ in nearest_artworks(model, query, limit=CANDIDATES, ef_search=CANDIDATES)]


FTS_MATCH_CAP = 1000  # matches ranked per query; bounds the cost of very common words


def metadata_ranking(q: str, qs) -> list[int]:
    """Artwork ids matching ``q`` in the catalogue text, best ``ts_rank`` first.

    The GIN index finds the matches; at most FTS_MATCH_CAP of them are ranked (a word found in
    100,000 titles would otherwise cost a rank computation per title)."""
    query = SearchQuery(q, search_type="websearch", config="english")
    # Unordered: ordered by id, PostgreSQL would walk the primary key checking every row's text
    # against the query (and join a filter in id order) instead of reading the GIN index.
    matches = qs.filter(search_document=query).order_by().values("id")[:FTS_MATCH_CAP]
    ranked = list(
        Artwork.objects.filter(id__in=matches)
        .annotate(rank=SearchRank(F("search_document"), query))
        .order_by("-rank", "id")
        .values_list("id", flat=True)[:CANDIDATES]
    )
    if len(ranked) < CANDIDATES:
        ranked += substring_ranking(q, qs, exclude=set(ranked), limit=CANDIDATES - len(ranked))
    return ranked


def substring_ranking(q: str, qs, *, exclude: set[int], limit: int) -> list[int]:
    """Artworks whose title or maker contains ``q`` as a substring (pg_trgm indexes; none without
    them), after the whole-word matches: shortest titles first, where the text is most of it."""
    found = substring.matches(qs, q)
    if found is None:
        return []
    rows = found.order_by().values("id")[:FTS_MATCH_CAP]
    ids = (Artwork.objects.filter(id__in=rows).annotate(_length=Length("title"))
           .order_by("_length", "id").values_list("id", flat=True)[: limit + len(exclude)])
    return [a for a in ids if a not in exclude][:limit]


def text_query(q: str) -> SearchQuery:
    """The query on the text read in images: the words as written (configuration ``simple``, no
    stemming: the text may be in any language), websearch syntax like the metadata search."""
    return SearchQuery(q, search_type="websearch", config="simple")


def text_ranking(q: str, qs) -> list[int]:
    """Artwork ids (within ``qs``) whose image holds the words of ``q``, best ``ts_rank`` first.
    The GIN index artwork_text_gin finds the matches; at most FTS_MATCH_CAP are ranked."""
    query = text_query(q)
    matches = ArtworkText.objects.filter(document=query).order_by().values("id")[:FTS_MATCH_CAP]
    return list(
        ArtworkText.objects.filter(id__in=matches, artwork_id__in=qs.order_by().values("id"))
        .annotate(rank=SearchRank(F("document"), query))
        .order_by("-rank", "artwork_id")
        .values_list("artwork_id", flat=True)[:CANDIDATES]
    )


COUNT_CAP = 10_000  # filter-only results are counted up to this many ("10,000+")


def search(
    q: str = "", filters: Filters | None = None, *, offset: int = 0, limit: int = 48, include_drafts: bool = False
) -> SearchResult:
    """Free text by meaning and by metadata, fused, within the filters; or filters alone."""
    q = clean_text(q, 10_000)
    if len(q) > MAX_QUERY_CHARS:
        raise BadSearch(f"the query is too long ({len(q)} characters; at most {MAX_QUERY_CHARS})")
    filters = filters or Filters()
    model = active_model()
    notices: list[str] = []
    qs = filters.apply(base_queryset(), model, include_drafts=include_drafts)
    result = SearchResult([], 0, model=model, notices=notices)
    # Only the label filter empties the queryset (a label that is missing, or that nothing can show
    # without a model): name a missing one, looked up only then.
    if filters.label and qs.query.is_empty() and resolve_label(filters.label, include_drafts=include_drafts) is None:
        notices.append(f"There is no label “{filters.label}”, so nothing matches the label filter.")
    if not q:
        ids = list(qs.order_by("id").values_list("id", flat=True)[offset : offset + limit])
        found = display_artworks(ids)
        result.artworks = [(found[a], None) for a in ids if a in found]
        result.total = qs.order_by()[: COUNT_CAP + 1].count()
        result.total_capped = result.total > COUNT_CAP
        result.total = min(result.total, COUNT_CAP)
        return result
    rankings = []
    if model is None:
        notices.append("No embedding model is active yet, so search by meaning is off; showing metadata matches only.")
    else:
        # With filters the nearest works are searched among the filtered artworks themselves, so a
        # selective filter still gets its full candidate list (not what survives of the global top).
        meaning = meaning_ranking(q, model, notices, within=qs if filters else None, filters=filters)
        if meaning:
            rankings.append(meaning)
            result.used_meaning = True
    metadata = metadata_ranking(q, qs)
    rankings.append(metadata)
    result.used_metadata = True
    weights = [1.0] * len(rankings)
    # The text in the images ranks below the catalogue: the same rank there weighs less.
    in_images = text_ranking(q, qs)
    if in_images:
        rankings.append(in_images)
        weights.append(settings.OCR_SEARCH_WEIGHT)
        result.used_text = True
        result.text_matches = set(in_images)
    fused = rrf(rankings, weights=weights)
    result.total = len(fused)
    window = fused[offset : offset + limit]
    found = display_artworks(a for a, _ in window)
    result.artworks = [(found[a], s) for a, s in window if a in found]
    return result


# --- search by image -------------------------------------------------------------------------

QUERY_SIZE = 256  # the workers embed the 256 px derivative; match it
# Perceptual hashes of artworks (64 bits as a 64-d 0/1 vector, HNSW index artwork_phash_hnsw).
PHASH_SPACE = vectors.VectorSpace(table="archive_artwork", model_column="status", vector_column="phash_bits")


def phash_neighbours(image: Image.Image, limit: int = 10) -> list[int]:
    """Artworks whose perceptual hash is nearest to the image's or its mirror's (ingest hashes the
    128 px derivative, so the query is hashed at that size too)."""
    from archive.images import phash_bits, phash_int

    small = image.copy()
    small.thumbnail((128, 128))
    out: list[int] = []
    for im in (small, ImageOps.mirror(small)):
        rows = vectors.nearest(PHASH_SPACE, Artwork.Status.OK.value, phash_bits(phash_int(im)), dim=64, limit=limit, metric="l2")
        out += [int(r[0]) for r in rows if int(r[0]) not in out]
    return out


def prepare_query_image(data) -> Image.Image:
    """Open an uploaded image safely (RGB, 256 px long side) through the upload guard
    (:mod:`explorer.uploads`): size, declared pixels and decode memory are checked on the header,
    before anything is decoded. A refusal is :class:`BadSearch` with an HTTP ``status``."""
    from archive.images import to_rgb

    from . import uploads

    raw = data.read() if hasattr(data, "read") else data
    if not raw:
        raise BadSearch("the uploaded file is empty")
    if len(raw) > uploads.max_bytes():
        raise _refused(uploads.UploadRejected("too_large", uploads.too_large_message(), 413))
    try:
        im, _size = uploads.open_checked(raw, want=QUERY_SIZE)
        im.load()
        im = ImageOps.exif_transpose(im)
        im = to_rgb(im)
    except uploads.UploadRejected as exc:
        raise _refused(exc) from None
    except Exception as exc:
        raise BadSearch(f"not a usable image ({exc.__class__.__name__})") from None
    im = im.convert("RGB")
    im.thumbnail((QUERY_SIZE, QUERY_SIZE))
    return im


def _refused(exc) -> BadSearch:
    error = BadSearch(f"not a usable image: {exc.message}")
    error.status = 400 if exc.code in ("empty", "not_an_image") else exc.status  # 413: over a limit
    error.code = exc.code
    return error


def search_by_image(image: Image.Image, *, limit: int = 24, verify: int = 40) -> SearchResult:
    """Artworks that look like ``image``.

    Test-time augmentation: the image and its mirror are both embedded and each artwork keeps its
    best similarity. The ``verify`` best candidates are then checked for being near-copies of the
    query (crop, mirror, recolouring, rotation, rescan: geometric verification with local
    features, :mod:`explorer.copy_detect`); verified copies rank first."""
    from .copy_detect import COPY_THRESHOLD, candidate_features, query_features
    from .copy_detect import verify as verify_copy

    model = active_model()
    notices: list[str] = []
    result = SearchResult([], 0, model=model, notices=notices)
    if model is None:
        notices.append("No embedding model is active yet, so search by image is unavailable.")
        return result
    try:
        embedder = _embedder_for(model)
        queries = embedder.embed_images([image, ImageOps.mirror(image)])
    except Exception as exc:
        notices.append(f"Search by image is unavailable ({exc.__class__.__name__}: {str(exc)[:200]}).")
        return result
    best: dict[int, float] = {}
    for query in np.asarray(queries):
        for artwork_id, similarity in nearest_artworks(model, query, limit=max(limit, verify)):
            best[artwork_id] = max(best.get(artwork_id, -2.0), similarity)
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    # Candidates for the copy check: the best by embedding, plus the nearest perceptual hashes
    # (grayscale by construction, so recoloured copies are caught whatever the model).
    candidates = [a for a, _ in ranked[:verify]]
    for artwork_id in phash_neighbours(image):
        if artwork_id not in candidates:
            candidates.append(artwork_id)
    found = base_queryset().defer(*HIDDEN_COLUMNS).in_bulk(set(candidates) | {a for a, _ in ranked})
    copies: dict[int, float] = {}  # artwork id -> RANSAC inliers of the verified copy
    query_feats = query_features(image)
    for artwork_id in candidates:
        artwork = found.get(artwork_id)
        if artwork is None or not artwork.has_image:
            continue
        try:
            candidate = candidate_features(artwork.sha256)
        except OSError:
            continue
        score = verify_copy(query_feats, candidate)
        if score >= COPY_THRESHOLD:
            copies[artwork_id] = score
    for artwork_id in copies:
        best.setdefault(artwork_id, -1.0)
    ranked = list(best.items())
    ordered = sorted(ranked, key=lambda kv: (kv[0] not in copies, -copies.get(kv[0], 0.0), -kv[1]))[:limit]
    result.artworks = [(found[a], s) for a, s in ordered if a in found]
    result.copies = copies
    result.total = len(result.artworks)
    return result
