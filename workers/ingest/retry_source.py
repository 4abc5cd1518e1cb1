"""Re-run the failed items of an import job from their JobError payloads.

A payload is one of:
- ``{"kind": "record", "record": {...}}``: the record as read (catalogue fields and image
  locations); it is imported again as is (e.g. after the image file was fixed or a URL came back);
- ``{"kind": "reread", "importer": ..., "params": ..., "position": N}``: read row/line N of that
  source again (e.g. after the CSV row was corrected), or the whole source when N is null
  (an unreadable manifest or folder);
- ``{"kind": "job", "params": ...}``: the whole job could not start; run it again.

The retry is a new import Job whose source is :class:`RetrySource` (the errors of the old job
that point at it with ``retried_in``); it is planned and imported in batches like any import
(started by :mod:`workers.ingest.retry`).
"""
from __future__ import annotations

from typing import Iterator

from archive.importers import source_from_params as open_recorded
from archive.importers.base import Record, RecordError, Source
from archive.models import JobError


def source_from_params(importer: str, params: dict) -> Source:
    """The source a Job recorded: a retry's own source, or any of :mod:`archive.importers`."""
    if importer == "retry":
        return RetrySource(**params)
    return open_recorded(importer, params)


def _records(error: JobError) -> Iterator[Record | RecordError]:
    payload = error.payload or {}
    kind = payload.get("kind")
    try:
        if kind == "record":
            yield Record.from_payload(payload)
        elif kind == "reread":
            source = source_from_params(payload["importer"], payload["params"])
            position = payload.get("position")
            yield from source.records(positions=None if position is None else {position})
        elif kind == "job":
            params = payload["params"]
            yield from source_from_params(params["importer"], params["params"]).records()
        else:
            yield RecordError(error.item, f"cannot retry: the error has no retry payload ({error.reason})")
    except Exception as exc:  # the source is still unreadable: a new error, the retry goes on
        yield RecordError(error.item, f"retry failed: {exc}", payload=payload)


class RetrySource(Source):
    """The failed items of import job ``of`` that are being retried by job ``retry``."""

    kind = "retry"

    def __init__(self, of: int, retry: int):
        self.of, self.retry = int(of), int(retry)

    def params(self) -> dict:
        return {"of": self.of, "retry": self.retry}

    def describe(self) -> str:
        return f"the failed items of job #{self.of}"

    def _errors(self):
        return JobError.objects.filter(job_id=self.of, retried_in_id=self.retry).order_by("id")

    def count(self) -> int | None:
        return self._errors().count()

    def records(self, positions: set[int] | None = None) -> Iterator[Record | RecordError]:
        for error in self._errors().iterator(chunk_size=500):
            yield from _records(error)
