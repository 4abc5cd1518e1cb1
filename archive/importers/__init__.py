"""Import sources: folders of images, museum metadata files, IIIF manifests, the AIC open API.

Every importer is a :class:`~archive.importers.base.Source` that yields records;
:func:`open_source` auto-detects what a location is and opens the right one. Records are written
with :mod:`~archive.importers.upsert` (COPY upserts keyed on ``(source, source_id)``) and checked
for duplicates (:mod:`~archive.importers.duplicates`). Running an import as a job (its plan, its
batches on the ingest workers, retries) is the ingest stage's work: :mod:`workers.ingest`.
"""
from __future__ import annotations

from .base import ImportSettings, Record, RecordError, Source, Stats
from .sources import SourceError, open_source, source_from_params

__all__ = [
    "open_source", "source_from_params", "SourceError", "ImportSettings", "Record", "RecordError", "Source", "Stats",
]
