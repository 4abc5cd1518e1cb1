"""Read a IIIF Change Discovery 1.0 stream (https://iiif.io/api/discovery/1.0/): an Activity
Streams ``OrderedCollection`` whose ``OrderedCollectionPage`` pages list activities (``Create``,
``Update``, ``Delete``, ``Move``, ``Add``, ``Remove``, each with the ``object`` it concerns and an
``endTime``), oldest first.

As the specification asks of a harvester, the stream is read from its ``last`` page backwards
(``prev``), each page's items from the newest, and reading stops at the first activity older
than the previous harvest's newest one. Only the newest activity of each object counts: a
manifest updated five times is fetched once, one created then deleted is not fetched at all.

:func:`read` returns what to do: the objects to fetch (created, updated, added, or the target of
a move) and the ones to withdraw (deleted, removed, or the origin of a move), with the newest
``endTime`` read. It fetches only the stream's pages, through :func:`archive.importers.iiif.load`
(the guarded client for URLs; paths are read as files).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .iiif import _id, _resolve, load

AS_CONTEXT = "http://iiif.io/api/discovery/1/context.json"
FETCH = {"Create", "Update", "Add"}
WITHDRAW = {"Delete", "Remove"}
KNOWN = FETCH | WITHDRAW | {"Move", "Refresh"}
OBJECT_TYPES = {"Manifest", "Collection"}
MAX_PAGES = 100_000


class StreamProblem(ValueError):
    """The stream cannot be read at all (the reason says why)."""


@dataclass
class Change:
    object_id: str
    object_type: str
    activity: str  # the newest activity on the object
    end_time: datetime
    activity_id: str = ""


@dataclass
class StreamRead:
    fetch: list[Change] = field(default_factory=list)
    withdraw: list[Change] = field(default_factory=list)
    newest: datetime | None = None  # endTime of the newest activity in the stream
    newest_ids: list[str] = field(default_factory=list)  # the ids of the activities at that time
    pages: int = 0
    activities: int = 0  # activities read (newer than ``since``)
    skipped: list[str] = field(default_factory=list)  # activities not understood, with why


def parse_time(value: Any) -> datetime | None:
    """An xsd:dateTime (``2026-12-03T10:00:00Z``) as an aware datetime (UTC when it names no zone)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _document(location: str, what: str) -> dict:
    try:
        document = load(location)
    except ValueError as exc:
        raise StreamProblem(f"{what} {location}: {exc}") from None
    if not isinstance(document, dict):
        raise StreamProblem(f"{what} {location} must be a JSON object")
    return document


def _ref(base: str, value: Any) -> str:
    ref = _id(value)
    return _resolve(base, ref) if ref else ""


def read(location: str, since: datetime | None = None, read_at_since: set[str] | frozenset = frozenset()) -> StreamRead:
    """What changed in the stream at ``location`` after ``since`` (everything when None).
    ``read_at_since``: ids of activities at exactly ``since`` that an earlier harvest read."""
    collection = _document(location, "change stream")
    if collection.get("type") != "OrderedCollection":
        raise StreamProblem(f"change stream {location} must be an OrderedCollection, not {collection.get('type')!r}")
    page_url = _ref(location, collection.get("last"))
    if not page_url:
        if collection.get("totalItems") == 0:
            return StreamRead()
        raise StreamProblem(f"change stream {location} has no 'last' page")
    result = StreamRead()
    seen: dict[str, Change] = {}
    visited: set[str] = set()
    done = False
    while page_url and not done:
        if page_url in visited or len(visited) >= MAX_PAGES:
            raise StreamProblem(f"change stream {location}: its pages loop back to {page_url}")
        visited.add(page_url)
        page = _document(page_url, "change stream page")
        if page.get("type") != "OrderedCollectionPage":
            raise StreamProblem(f"change stream page {page_url} must be an OrderedCollectionPage, not {page.get('type')!r}")
        result.pages += 1
        items = page.get("orderedItems")
        if not isinstance(items, list):
            raise StreamProblem(f"change stream page {page_url} has no 'orderedItems' list")
        for activity in reversed(items):
            if not isinstance(activity, dict):
                result.skipped.append(f"{page_url}: an activity that is not an object")
                continue
            when = parse_time(activity.get("endTime"))
            kind = activity.get("type")
            if when is None:
                result.skipped.append(f"{page_url}: {kind} {_id(activity) or ''} without a valid endTime".replace("  ", " "))
                continue
            if since is not None and when < since:
                done = True  # older than what the last harvest read: the rest is older still
                break
            if since is not None and when == since and _id(activity) in read_at_since:
                continue
            if result.newest is None or when > result.newest:
                result.newest, result.newest_ids = when, []
            if when == result.newest and _id(activity):
                result.newest_ids.append(_id(activity))
            result.activities += 1
            if kind not in KNOWN:
                result.skipped.append(f"{page_url}: activity type {kind!r} is not one of Change Discovery's")
                continue
            if kind == "Refresh":
                continue  # "harvest again from the start": an operator's --full, not done silently
            obj = activity.get("object")
            obj_id, obj_type = _ref(page_url, obj), obj.get("type") if isinstance(obj, dict) else ""
            if not obj_id:
                result.skipped.append(f"{page_url}: {kind} without an object id")
                continue
            if obj_type not in OBJECT_TYPES:
                result.skipped.append(f"{page_url}: {kind} of a {obj_type or 'resource without a type'} ({obj_id}), not a Manifest or Collection")
                continue
            moves = [(obj_id, obj_type, "Delete" if kind == "Move" else kind)]
            if kind == "Move":
                target = activity.get("target")
                target_id = _ref(page_url, target)
                if target_id:
                    moves.append((target_id, obj_type, "Create"))
            for object_id, object_type, effect in moves:
                if object_id not in seen:  # the newest activity on an object wins
                    seen[object_id] = Change(object_id, object_type, effect, when, _id(activity))
        page_url = _ref(page_url, page.get("prev"))
    for change in seen.values():
        (result.fetch if change.activity in FETCH else result.withdraw).append(change)
    result.fetch.sort(key=lambda c: (c.end_time, c.object_id))
    result.withdraw.sort(key=lambda c: (c.end_time, c.object_id))
    return result
