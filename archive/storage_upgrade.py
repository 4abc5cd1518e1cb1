"""Bring the files an older version wrote into the stores of :mod:`archive.storage`
(``manage.py upgrade_storage``; idempotent, a second run finds nothing to do).

Derivatives, face crops and map exports keep the layout they always had in the public store, so
they need nothing. What moves:

* fetched metadata files (downloads and the AIC API's JSON) that an older version kept in the
  public folder under ``imports/`` go to ``imports/`` of the private store; the import jobs,
  batches and error payloads that name them are updated to the new place;
* fitted map models an older version kept under ``maps/_models/`` of the public store go to the
  ``maps-models`` store (``MAP_MODEL_ROOT``);
* folders an interrupted export of an older version left (``maps/<slug>/.<n>.tmp<pid>``) are removed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import connection, transaction

from archive import storage

log = logging.getLogger(__name__)

IMPORTS_DIR = "imports"
LEGACY_MODELS_DIR = "maps/_models"
MAPS_DIR = "maps"


@dataclass
class UpgradeReport:
    imports_moved: list[str] = field(default_factory=list)
    models_moved: list[str] = field(default_factory=list)
    leftovers_removed: list[str] = field(default_factory=list)
    rows_updated: int = 0

    def lines(self) -> list[str]:
        return [
            f"fetched metadata files moved to the private store: {len(self.imports_moved)}",
            f"fitted map models moved to the maps-models store: {len(self.models_moved)}",
            f"leftovers of interrupted map exports removed: {len(self.leftovers_removed)}",
            f"job, batch and error rows pointing at the moved files updated: {self.rows_updated}",
        ]


def _move(source, name: str, target, target_name: str) -> None:
    """Copy then delete (a crash in between leaves both copies, and the next run finishes)."""
    if storage.exists(target, target_name):
        if storage.read(target, target_name) != storage.read(source, name):
            raise FileExistsError(
                f"{storage.where(target, target_name)} exists with other content than {storage.where(source, name)}; "
                "nothing was moved: remove one of them"
            )
    else:
        storage.copy(source, name, target, target_name)
    storage.delete(source, name)


def move_legacy_model(slug: str) -> bool:
    """Move one fitted model an older version left in the public store to the models' store (a
    newer one already there wins). Returns whether there was one."""
    public, name = storage.public(), f"{LEGACY_MODELS_DIR}/{slug}.pkl"
    if not storage.exists(public, name):
        return False
    target = storage.map_models()
    if not storage.exists(target, f"{slug}.pkl"):
        storage.copy(public, name, target, f"{slug}.pkl")
        log.info("moved the fitted model of map %s out of the public store to %s", slug, storage.describe(target))
    storage.delete(public, name)
    folder = storage.local_path(public, LEGACY_MODELS_DIR)
    if folder is not None:
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass
    return True


def _rewrite_references(old: str, new: str) -> int:
    """Replace the old folder of fetched files by the new one in the JSON of import jobs, their
    batches' records and their errors' payloads (those hold the source's location)."""
    pairs = [(f"{old}/", f"{new}/"), (f'"{old}"', f'"{new}"')]
    updated = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for table, column in (("archive_job", "params"), ("archive_jobbatch", "records"), ("archive_joberror", "payload")):
            for before, after in pairs:
                cursor.execute(
                    f"UPDATE {table} SET {column} = replace({column}::text, %s, %s)::jsonb "
                    f"WHERE {column} IS NOT NULL AND strpos({column}::text, %s) > 0",
                    [before, after, before],
                )
                updated += cursor.rowcount
    return updated


def upgrade(*, dry_run: bool = False) -> UpgradeReport:
    public, private = storage.public(), storage.private()
    report = UpgradeReport()

    # Fetched metadata files: public imports/ -> private imports/.
    names = list(storage.walk(public, IMPORTS_DIR))
    report.imports_moved = names
    if not dry_run:
        for name in names:
            _move(public, name, private, name)
        old, new = storage.local_path(public, IMPORTS_DIR), storage.local_path(private, IMPORTS_DIR)
        if old is not None and new is not None:
            report.rows_updated = _rewrite_references(str(old), str(new))
            try:
                old.rmdir()
            except OSError:
                pass

    # Fitted map models: public maps/_models/<slug>.pkl -> maps-models <slug>.pkl.
    for name in storage.listdir(public, LEGACY_MODELS_DIR)[1]:
        if name.endswith(".pkl"):
            report.models_moved.append(name)
            if not dry_run:
                move_legacy_model(name[: -len(".pkl")])

    # Leftovers of interrupted exports of an older version (it staged a version in a dot-folder).
    for slug in storage.listdir(public, MAPS_DIR)[0]:
        if slug.startswith("_"):
            continue
        for child in storage.listdir(public, f"{MAPS_DIR}/{slug}")[0]:
            if child.startswith(".") and ".tmp" in child:
                report.leftovers_removed.append(f"{MAPS_DIR}/{slug}/{child}")
                if not dry_run:
                    storage.delete_prefix(public, f"{MAPS_DIR}/{slug}/{child}")
    return report
