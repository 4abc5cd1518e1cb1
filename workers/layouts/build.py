"""The layout job: build a map from the active model's embeddings, or place new artworks on an
existing one, then name its regions and export its files. The dashboard, the pipeline and the
``build_map`` command call :func:`request` then :func:`send` (or :func:`run_job` in this process);
the stage (:mod:`workers.layouts.stage`) runs :func:`run`; tests and the benchmark call the
functions below.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from archive import colour, vectors
from archive.images import derivative_relpath
from archive.models import EmbeddingModel, Job, JobBatch, Layout, LayoutPoint, Region
from workers import jobs

from . import export, fit as fitting, place, regions, store
from .reduce import VectorSet, apply_reducer, fit_reducer, load_vectors

log = logging.getLogger(__name__)
BUILD_STEPS = 6
PLACE_STEPS = 4
MAP_LOCK_SPACE = 0x6D6170  # first key of the advisory locks that serialise jobs per map ("map")


def model_max_points() -> int:
    return int(getattr(settings, "MAP_MODEL_MAX_POINTS", 200_000))


def active_model() -> EmbeddingModel | None:
    return EmbeddingModel.objects.filter(state=EmbeddingModel.State.ACTIVE).first()


def describe_subset(subset: dict) -> tuple[str, str]:
    """(slug part, human name) of a subset."""
    if subset.get("faces"):
        return "faces", "Painted faces"
    if subset.get("label"):
        return f"label-{subset['label']}", f"Label “{subset['label']}”"
    if subset.get("collection"):
        return f"collection-{subset['collection']}", f"Collection “{subset['collection']}”"
    return "", "Whole archive"


def parse_subset(text: str | None) -> dict:
    """``None``/"all" | "label:SLUG" | "collection:SLUG" | "faces" -> subset dict."""
    if not text or text == "all":
        return {}
    if text == "faces":
        return {"faces": True}
    kind, _, value = text.partition(":")
    if kind in ("label", "collection") and value:
        return {kind: value}
    raise ValueError(f"unknown subset {text!r}: use all, faces, label:SLUG or collection:SLUG")


def layout_slug(method: str, subset: dict) -> str:
    part, _ = describe_subset(subset)
    return slugify(f"{method}-{part}" if part else method)[:255]


def model_for(subset: dict) -> EmbeddingModel | None:
    """The embedding model whose vectors make the map (None for a face map: Face vectors)."""
    if subset.get("faces"):
        return None
    model = active_model()
    if model is None:
        raise ValueError("no active embedding model: run `embed` first (a map is made from embeddings)")
    return model


def labels_model_id(layout: Layout) -> int | None:
    """The embedding model whose machine labels name the map's regions and feed its label filter:
    the layout's own model, or for a face map the model that was active when it was built."""
    return layout.model_id or layout.params.get("label_model_id")


def model_path(slug: str):
    """The fitted model of a map, under MAP_MODEL_ROOT (never under MEDIA_ROOT: it holds the
    training vectors)."""
    return store.model_path(slug)


# --- job entry ---------------------------------------------------------------------------------

def request(method: str = "umap", subset: dict | None = None, *, seed: int | None = None, params: dict | None = None,
            rebuild: bool = False, user=None) -> Job:
    """Create the layout Job (queued) with its one batch; run it with :func:`run_job` here or send
    it to the maps queue with :func:`send`. A layout job is a one-batch stage
    (:mod:`workers.layouts.stage`): the same leases, heartbeat and recovery as every other kind.

    ``seed``/``params`` None keep the map's stored ones (0 and the defaults for a new map); given
    and different from the stored ones, they make the job a rebuild (a placement run never changes
    what a map says it was made with)."""
    if method not in Layout.Method.values:
        raise ValueError(f"unknown method {method!r}: use umap or tsne")
    fitting.check_params(method, params)
    subset = subset or {}
    with transaction.atomic():
        job = jobs.create_job(
            Job.Kind.LAYOUT,
            {"method": method, "subset": subset, "seed": seed, "params": params, "rebuild": rebuild,
             "slug": layout_slug(method, subset)},
            user=user,
        )
        _batch_of(job)
    return job


def _batch_of(job: Job) -> JobBatch:
    """The job's one batch (made here for a job queued by a version without layout batches)."""
    batch, _ = JobBatch.objects.get_or_create(job=job, seq=0)
    return batch


def send(job: Job) -> int:
    """Send the layout job's batch to the maps queue (after the current transaction commits)."""
    return jobs.enqueue_batches(job, [_batch_of(job).pk])


def run_job(job_id: int, on_step=None) -> Layout | None:
    """Run a layout job in this process, through the job kernel like a worker would (lease,
    heartbeat, outcome recorded with the batch). ``on_step(job, message)`` is called after each
    step (the command's progress bar). Returns the map, or None when none was made."""
    job = Job.objects.get(pk=job_id)
    if job.is_final:
        return None
    batch = _batch_of(job)
    jobs.run_batch(batch.pk, options={"on_step": on_step})
    layout_id = (JobBatch.objects.values_list("summary", flat=True).get(pk=batch.pk) or {}).get("layout_id")
    return Layout.objects.filter(pk=layout_id).first() if layout_id else None


def run(job: Job, on_step=None) -> tuple[Layout | None, str]:
    """Build or update the layout ``job`` asks for (the work of its one batch). Returns the map and
    what was done; raises when it cannot be made (the map, if any, keeps serving its last export)."""
    token = _on_step.set(on_step)
    try:
        return _run(job)
    finally:
        _on_step.reset(token)


def _run(job: Job) -> tuple[Layout | None, str]:
    p = job.params
    layout = None
    try:
        subset = p.get("subset") or {}
        model = model_for(subset)
        layout = get_layout(p["method"], subset, model, seed=p.get("seed") or 0, params=p.get("params") or {})
        with one_job_per_map(layout):
            layout.refresh_from_db()  # another job may have changed it while this one waited
            Layout.objects.filter(pk=layout.pk).update(job=job)
            seed, params, changed = wanted_settings(layout, p)
            label_model = model if model is not None else active_model()
            stale = layout.model_id != (model.pk if model else None)
            if subset.get("faces") and layout.point_count:
                stale = stale or labels_model_id(layout) != (label_model.pk if label_model else None)
            if p.get("rebuild") or stale or changed or layout.state != Layout.State.READY or not layout.point_count:
                n = build(layout, job=job, model=model, seed=seed, params=params, label_model=label_model)
                message = f"built {layout.get_method_display()} map “{layout.name}” of {n} points"
                if changed and not p.get("rebuild"):
                    message += f" (rebuilt: seed {seed}, parameters {params or 'default'})"
            else:
                n = place_new(layout, job=job)
                message = f"placed {n} new points on “{layout.name}”" if n else f"“{layout.name}” is up to date"
        return layout, message
    except Exception as exc:
        if layout is not None and not layout.export_version and not isinstance(exc, jobs.JobCancelled):
            Layout.objects.filter(pk=layout.pk).update(state=Layout.State.FAILED)
        raise


@contextmanager
def one_job_per_map(layout: Layout):
    """Run one layout job at a time per map; a second one waits here (a PostgreSQL session advisory
    lock on the layout id). Two placement runs at once would both add the same new points (an
    embed job's automatic placement and an operator's build_map, say)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [MAP_LOCK_SPACE, layout.pk])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [MAP_LOCK_SPACE, layout.pk])


def wanted_settings(layout: Layout, p: dict) -> tuple[int, dict, bool]:
    """(seed, requested parameters, whether they differ from the built map's) for a job's params.
    None means "keep the map's"; a map not built yet has nothing to differ from."""
    stored_seed, stored_params = layout.seed, layout.params.get("requested") or {}
    seed = stored_seed if p.get("seed") is None else int(p["seed"])
    params = stored_params if p.get("params") is None else dict(p["params"])
    built = layout.state == Layout.State.READY and layout.point_count > 0
    return seed, params, built and (seed != stored_seed or params != stored_params)


def get_layout(method: str, subset: dict, model: EmbeddingModel | None, *, seed: int = 0, params: dict | None = None) -> Layout:
    """The layout of ``method`` and ``subset``, created (with ``seed``/``params``) if new. An
    existing layout keeps its seed and parameters: only a build changes them."""
    slug = layout_slug(method, subset)
    _, what = describe_subset(subset)
    layout, _ = Layout.objects.get_or_create(
        slug=slug,
        defaults={"name": f"{what} ({dict(Layout.Method.choices)[method]})", "method": method, "model": model,
                  "subset": subset, "seed": seed, "params": {"requested": params or {}}},
    )
    return layout


_on_step: ContextVar = ContextVar("map_on_step", default=None)


def _step(job: Job | None, message: str) -> None:
    if job is not None:
        jobs.check_cancelled(job)
        jobs.record_progress(job, done=1, message=message)
        callback = _on_step.get()
        if callback is not None:
            callback(job, message)  # a progress bar shows the step: no log line on top of it
            return
    log.info(message)


# --- full build --------------------------------------------------------------------------------

def build(layout: Layout, *, job: Job | None = None, model: EmbeddingModel | None = None, vectorset: VectorSet | None = None,
          seed: int | None = None, params: dict | None = None, label_model: EmbeddingModel | None = None) -> int:
    """Fit ``layout`` from scratch on all its vectors; replaces its points, regions and model.
    ``seed``/``params`` (default: the layout's) are stored on it with the new points.
    ``label_model`` names the regions (default ``model``; a face map passes the active model)."""
    seed = layout.seed if seed is None else seed
    requested = (layout.params.get("requested") or {}) if params is None else params
    label_model = label_model or model
    timings: dict[str, float] = {}
    if job is not None:
        jobs.set_total(job, BUILD_STEPS)
    t = time.perf_counter()
    vs = vectorset or load_vectors(layout.subset, model.pk if model else None)
    timings["load_s"] = time.perf_counter() - t
    input_dim = int(vs.X.shape[1]) if vs.X.ndim == 2 else 0
    if len(vs) < 4:
        raise ValueError(f"{len(vs)} points have vectors in this subset; a map needs at least 4 (run `embed` first)")
    _step(job, f"loaded {len(vs)} vectors of width {vs.X.shape[1]}")

    t = time.perf_counter()
    reducer = fit_reducer(vs.X, seed=seed)
    Y = apply_reducer(reducer, vs.X)
    timings["reduce_s"] = time.perf_counter() - t
    _step(job, f"reduced to {Y.shape[1]} dimensions (PCA); fitting {layout.get_method_display()}")

    t = time.perf_counter()
    fitted, coords, used = fitting.fit(layout.method, Y, seed=seed, params=requested)
    timings["fit_s"] = time.perf_counter() - t
    keep_model = len(vs) <= model_max_points()
    path = model_path(layout.slug)
    if keep_model:
        fitting.save_model(path, {"method": layout.method, "reducer": reducer, "model": fitted, "n": len(vs),
                                  "model_id": model.pk if model else None})
    elif path.exists():
        path.unlink()
    del fitted
    _step(job, f"fitted {layout.get_method_display()} in {timings['fit_s']:.0f}s")

    info = {"requested": requested, "used": used, "pca_dims": int(Y.shape[1]), "input_dim": input_dim,
            "placement": "model" if keep_model else "knn", "untrained": bool(model and model.untrained)}
    if layout.subset.get("faces"):
        info["label_model_id"] = label_model.pk if label_model else None
        info["face_model"] = layout.subset.get("face_model") or _face_model_of(int(vs.keys[0]))
    del Y
    save_layout(layout, vs.keys, vs.artwork_ids, coords, model=model, params=info, timings=timings, job=job, seed=seed,
                label_model_id=label_model.pk if label_model else None)
    return len(vs)


def save_layout(layout: Layout, keys: np.ndarray, artwork_ids: np.ndarray, coords: np.ndarray, *, model: EmbeddingModel | None,
                params: dict | None = None, timings: dict | None = None, job: Job | None = None, seed: int | None = None,
                label_model_id: int | None = None) -> None:
    """Store fitted coordinates as the layout's points (in Z-order), cluster and name its regions,
    and export a new version. Also the entry for layouts whose coordinates come from elsewhere
    (the benchmark and browser test use it with synthetic coordinates). ``seed`` (default: the
    layout's) seeds the clustering and is stored; ``label_model_id`` (default ``model``'s) names
    the regions."""
    timings = dict(timings or {})
    seed = layout.seed if seed is None else seed
    if label_model_id is None and model is not None:
        label_model_id = model.pk
    faces = bool(layout.subset.get("faces"))
    t = time.perf_counter()
    order = export.morton_order(coords[:, 0], coords[:, 1])
    vs = VectorSet(keys[order], artwork_ids[order], np.empty((0, 0), np.float32))
    coords = np.ascontiguousarray(coords[order], dtype=np.float32)
    centres = regions.cluster_levels(coords, seed=seed)
    assignments = [regions.assign(coords, c) for c in centres]
    ks = [len(c) for c in centres]
    names, source = regions.name_regions(vs.artwork_ids, assignments, ks, label_model_id)
    timings["regions_s"] = time.perf_counter() - t
    _step(job, f"named {sum(ks)} regions at {len(ks)} zoom levels (from {source})")

    t = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM archive_layoutpoint WHERE layout_id = %s", [layout.pk])
        Region.objects.filter(layout=layout).delete()
        _write_points(layout, vs, coords, assignments[-1], faces=faces, incremental=False)
        Region.objects.bulk_create([
            Region(layout=layout, level=level, cluster=c, name=names[level][c].name, x=float(centres[level][c, 0]),
                   y=float(centres[level][c, 1]), size=int((assignments[level] == c).sum()), top_labels=names[level][c].top)
            for level in range(len(ks)) for c in range(ks[level])
        ])
        timings["save_s"] = time.perf_counter() - t
        Layout.objects.filter(pk=layout.pk).update(
            model=model, point_count=len(vs), seed=seed,
            params={**layout.params, **(params or {}), "region_levels": ks, "region_names_from": source,
                    "regions_named_at": len(vs),
                    "timings": {k: round(v, 2) for k, v in timings.items()},
                    **({"face_model": (params or {}).get("face_model") or layout.subset.get("face_model")} if faces else {})},
        )
    layout.refresh_from_db()
    # Fresh planner statistics before the export's queries join the new points: planned against
    # the counts from before a bulk write (autovacuum analyses a while later), the label count
    # took a nested loop over every point per label row (still running after 9 minutes at 100,000
    # points).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE archive_layoutpoint")
    _step(job, f"saved {len(vs)} points")
    export_layout(layout, rebuilt=True)
    _step(job, f"exported version {layout.export_version}")


def _write_points(layout, vs: VectorSet, coords: np.ndarray, clusters: np.ndarray, *, faces: bool, incremental: bool) -> None:
    rows = (
        (layout.pk, int(a), int(k) if faces else None, float(x), float(y), int(c), incremental)
        for a, k, (x, y), c in zip(vs.artwork_ids.tolist(), vs.keys.tolist(), coords.tolist(), clusters.tolist())
    )
    vectors.copy_rows("archive_layoutpoint", ["layout_id", "artwork_id", "face_id", "x", "y", "cluster", "placed_incrementally"], rows)


# --- incremental placement ---------------------------------------------------------------------

def place_new(layout: Layout, *, job: Job | None = None) -> int:
    """Give coordinates to points of the layout's subset that are not on it yet; existing points keep theirs."""
    if job is not None:
        jobs.set_total(job, PLACE_STEPS)
    faces = bool(layout.subset.get("faces"))
    existing = place.existing_keys(layout, faces=faces)
    vs = load_vectors(layout.subset, layout.model_id, exclude_keys=existing)
    if not len(vs):
        if job is not None:
            jobs.set_total(job, 1)
        _step(job, "no new points to place")
        return 0
    _step(job, f"{len(vs)} new points to place")
    payload = fitting.load_model(model_path(layout.slug)) if layout.params.get("placement") == "model" else None
    if payload is not None:
        coords = place.place_with_model(payload, vs.X)
        how = "model"
    else:
        coords = place.place_by_neighbours(layout, vs, faces=faces)
        how = "knn"
    _step(job, f"placed {len(vs)} points ({'model transform' if how == 'model' else 'nearest-neighbour interpolation'})")
    centres = _region_centres(layout)
    fine = regions.assign(coords, centres[-1]) if centres else np.zeros(len(vs), np.int32)
    with transaction.atomic():
        _write_points(layout, vs, coords, fine, faces=faces, incremental=True)
        Layout.objects.filter(pk=layout.pk).update(point_count=layout.point_count + len(vs))
    layout.refresh_from_db()
    _step(job, f"saved {len(vs)} points")
    rename = names_stale(layout)
    export_layout(layout, rename=rename)
    _step(job, f"exported version {layout.export_version}" + ("; regions renamed (the map grew)" if rename else ""))
    return len(vs)


def _face_model_of(face_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT model FROM archive_face WHERE id = %s", [face_id])
        row = cursor.fetchone()
    return row[0] if row else ""


RENAME_GROWTH = 0.1  # regions are renamed once placement has grown a map by this share since naming


def names_stale(layout: Layout) -> bool:
    """Whether enough points were placed since the regions were named to name them again."""
    named_at = layout.params.get("regions_named_at")
    if named_at is None:  # a map built before the count was recorded: its fitted points
        named_at = LayoutPoint.objects.filter(layout=layout, placed_incrementally=False).count()
    return bool(named_at) and layout.point_count >= int(named_at) * (1 + RENAME_GROWTH)


def _region_centres(layout: Layout) -> list[np.ndarray]:
    levels: dict[int, list] = {}
    for level, cluster, x, y in Region.objects.filter(layout=layout).order_by("level", "cluster").values_list("level", "cluster", "x", "y"):
        levels.setdefault(level, []).append((x, y))
    return [np.asarray(levels[k], dtype=np.float32) for k in sorted(levels)]


# --- export ------------------------------------------------------------------------------------

def read_points(layout: Layout) -> export.PointTable:
    """The layout's points in export order (LayoutPoint id order: Z-order, then appended ones),
    with each artwork's dominant colour: the largest colour of its stored palette
    (:class:`~archive.models.ArtworkPalette` of the current method), CIELAB to sRGB."""
    aw, xs, ys, years, classes, thumbs, labs = [], [], [], [], [], [], []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.artwork_id, p.x, p.y, a.year_start, a.classification, a.sha256, a.status, f.crop, "
            "(pal.colours->0->'lab'->>0)::float8, (pal.colours->0->'lab'->>1)::float8, (pal.colours->0->'lab'->>2)::float8 "
            "FROM archive_layoutpoint p JOIN archive_artwork a ON a.id = p.artwork_id "
            "LEFT JOIN archive_face f ON f.id = p.face_id "
            "LEFT JOIN archive_artworkpalette pal ON pal.artwork_id = p.artwork_id AND pal.method = %s "
            "WHERE p.layout_id = %s ORDER BY p.id",
            [colour.METHOD, layout.pk],
        )
        while True:
            rows = cursor.fetchmany(50_000)
            if not rows:
                break
            for a, x, y, year, cls, sha, status, crop, lab_l, lab_a, lab_b in rows:
                aw.append(a)
                xs.append(x)
                ys.append(y)
                years.append(export.YEAR_NONE if year is None else year)
                classes.append(cls or "")
                labs.append((np.nan, 0.0, 0.0) if lab_l is None else (lab_l, lab_a or 0.0, lab_b or 0.0))
                if crop:
                    thumbs.append(crop)
                elif sha and status in ("ok", "duplicate"):
                    thumbs.append(derivative_relpath(sha, 128))
                else:
                    thumbs.append("")
    x = np.asarray(xs, dtype=np.float32)
    y = np.asarray(ys, dtype=np.float32)
    centres = _region_centres(layout)
    coords = np.stack([x, y], 1) if len(x) else np.empty((0, 2), np.float32)
    c0 = regions.assign(coords, centres[0]) if centres else np.zeros(len(x), np.int32)
    c1 = regions.assign(coords, centres[-1]) if centres else np.zeros(len(x), np.int32)
    return export.PointTable(np.asarray(aw, dtype=np.int64), x, y, c0, c1, np.asarray(years, dtype=np.int64), classes, thumbs,
                             colour=dominant_colours(np.asarray(labs, dtype=np.float64).reshape(-1, 3)))


def dominant_colours(labs: np.ndarray) -> np.ndarray:
    """CIELAB rows (NaN lightness: no palette) as the export's RGB565 column."""
    out = np.full(len(labs), export.COLOUR_NONE, dtype=np.uint16)
    known = ~np.isnan(labs[:, 0]) if len(labs) else np.zeros(0, bool)
    if known.any():
        out[known] = export.rgb565(colour.lab_to_rgb(labs[known]))
    return out


def export_layout(layout: Layout, *, rebuilt: bool = False, rename: bool = False) -> dict:
    """Write a new immutable export version and make it the served one; refresh the regions'
    sizes and, with ``rename``, their names (made again from all the points, the regions kept
    in place: used once placement has grown the map, :func:`names_stale`)."""
    table = read_points(layout)
    previous = layout.export_version
    version = previous + 1
    reuse = None
    if previous and not rebuilt:
        reuse = (previous, previous_rows(layout.slug, previous))
    files = export.export_points(table, layout.slug, version, reuse=reuse, extra={"labels": label_counts(layout)})
    stored = list(Region.objects.filter(layout=layout))
    names = None
    if rename and stored:
        ks = [1 + max((r.cluster for r in stored if r.level == level), default=-1) for level in (0, 1)]
        names, source = regions.name_regions(table.artwork_ids, [table.c0, table.c1], ks, labels_model_id(layout))
    with transaction.atomic():
        for region in stored:
            assigned = table.c0 if region.level == 0 else table.c1
            changes = {"size": int((assigned == region.cluster).sum())}
            if names is not None:
                name = names[region.level][region.cluster]
                changes.update(name=name.name, top_labels=name.top)
            if any(getattr(region, k) != v for k, v in changes.items()):
                Region.objects.filter(pk=region.pk).update(**changes)
        updates = {"export_version": version, "state": Layout.State.READY, "point_count": len(table), "built_at": timezone.now()}
        if names is not None:
            updates["params"] = {**layout.params, "region_names_from": source, "regions_named_at": len(table)}
        if not layout.subset and not Layout.objects.filter(is_default=True).exclude(pk=layout.pk).exists():
            updates["is_default"] = True
        Layout.objects.filter(pk=layout.pk).update(**updates)
    layout.refresh_from_db()
    export.prune_versions(layout.slug, keep=[version, previous])
    return files


def label_counts(layout: Layout) -> list[dict]:
    """Labels shown on this map's artworks, most frequent first: machine rows of its model at or
    above each label's display threshold, as on the label pages (``archive.label_counts``).
    Counted once per export so the manifest endpoint never aggregates label rows."""
    from archive.label_counts import THRESHOLD_SQL, fixed_threshold

    model_id = labels_model_id(layout)
    if not model_id:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.slug, l.name, l.group, count(*) FROM archive_artworklabel al "
            f"JOIN (SELECT l.id, l.slug, l.name, l.group, {THRESHOLD_SQL} AS thr FROM archive_label l WHERE l.published) l "
            "ON l.id = al.label_id "
            "WHERE al.model_id = %(model)s AND al.score >= coalesce(l.thr, '-infinity'::float8) "
            "AND al.artwork_id IN (SELECT artwork_id FROM archive_layoutpoint WHERE layout_id = %(layout)s) "
            "GROUP BY l.slug, l.name, l.group ORDER BY count(*) DESC, l.name LIMIT 5000",
            {"model": model_id, "layout": layout.pk, "fixed": fixed_threshold()},
        )
        return [{"slug": s, "name": n, "group": g, "count": c} for s, n, g, c in cursor.fetchall()]


def previous_rows(slug: str, version: int) -> int:
    files = export.read_files(slug, version)
    return int(files["count"]) if files else 0
