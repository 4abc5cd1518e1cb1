"""Incremental harvest of a IIIF Change Discovery 1.0 stream: read the stream back to where the
last harvest of it stopped (:class:`archive.models.HarvestState`), import only the manifests
created or updated since (one import job of those manifests, like any other import: batches,
per-item errors, retry), and mark the works whose manifests were deleted as withdrawn.

A withdrawn work is never removed: its row, labels, curator decisions and collections stay, and
``metadata.withdrawn`` says when and by which activity its source withdrew it (the artwork page
shows it with the record's other fields). A later Create or Update of the same manifest imports
it again and clears the mark (the import writes its metadata anew).

The state moves on to the newest activity read once the import job is recorded: items that fail
are that job's errors, retried with ``jobs retry`` rather than by re-reading the stream.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from archive.importers.base import ImportSettings, Stats
from archive.importers.changes import StreamRead, read
from archive.importers.iiif import IIIFSource
from archive.importers.metadata import MultiSource
from archive.models import Artwork, HarvestState, Job

from .launch import run_job, start, submit


@dataclass
class Harvest:
    state: HarvestState
    read: StreamRead
    job: Job | None
    stats: Stats | None
    withdrawn: int

    def summary(self) -> str:
        parts = [f"read {self.read.activities} new activities on {self.read.pages} pages", f"{len(self.read.fetch)} manifests to fetch", f"{self.withdrawn} works withdrawn"]
        if self.job is not None:
            parts.append(f"import job {self.job.pk}")
        if self.read.skipped:
            parts.append(f"{len(self.read.skipped)} activities skipped")
        return ", ".join(parts)


def withdraw(source: str, changes, stream_url: str) -> int:
    """Mark the works of the withdrawn manifests (by manifest URL or source id); returns how many."""
    by_id = {c.object_id: c for c in changes}
    if not by_id:
        return 0
    works = list(Artwork.objects.filter(Q(iiif_manifest_url__in=list(by_id)) | Q(source=source, source_id__in=list(by_id))))
    for work in works:
        change = by_id.get(work.iiif_manifest_url) or by_id[work.source_id]
        work.metadata = {**(work.metadata or {}), "withdrawn": {
            "at": change.end_time.isoformat(), "activity": change.activity, "activity_id": change.activity_id,
            "object": change.object_id, "stream": stream_url,
        }}
    Artwork.objects.bulk_update(works, ["metadata"], batch_size=500)
    Artwork.objects.filter(pk__in=[w.pk for w in works]).update(updated_at=timezone.now())
    return len(works)


def harvest(stream_url: str, *, full: bool = False, source_name: str | None = None, run_here: bool = True,
            cfg: ImportSettings | None = None, user=None, progress=None) -> Harvest:
    """Harvest what changed in the stream since its last harvest (``full``: everything). With
    ``run_here`` the import runs in this process, else it is sent to the ingest workers."""
    state = HarvestState.objects.filter(stream_url=stream_url).first() or HarvestState(stream_url=stream_url)
    since = None if full else state.last_end_time
    # A stream that cannot be read raises StreamProblem here: nothing is recorded or changed.
    changes = read(stream_url, since, set(state.boundary_ids or []) if since else frozenset())
    if source_name:
        state.source = source_name
    state.save()
    withdrawn = withdraw(state.source, changes.withdraw, stream_url)
    job = stats = None
    if changes.fetch:
        source = MultiSource(sources=[IIIFSource(c.object_id, source=state.source) for c in changes.fetch])
        job = start(source, user=user, cfg=cfg, extra={"harvest": {"stream": stream_url, "since": _iso(state.last_end_time)}})
        if run_here:
            stats = run_job(job, source=source, cfg=cfg, progress=progress)
        else:
            submit(job)
    if changes.newest is not None and (state.last_end_time is None or changes.newest > state.last_end_time):
        state.last_end_time, state.boundary_ids = changes.newest, changes.newest_ids
    elif changes.newest is not None and changes.newest == state.last_end_time:
        state.boundary_ids = sorted(set(state.boundary_ids or []) | set(changes.newest_ids))
    state.harvested_at = timezone.now()
    state.last_job = job or state.last_job
    state.last_counts = {
        "pages": changes.pages, "activities": changes.activities, "fetch": len(changes.fetch),
        "withdraw": len(changes.withdraw), "withdrawn": withdrawn, "skipped": changes.skipped[:100],
        "full": full, "job": job.pk if job else None,
    }
    state.save()
    return Harvest(state, changes, job, stats, withdrawn)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None
