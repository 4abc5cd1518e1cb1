"""A small real archive for the face tests: real face photos stored as "artworks" beside real AIC
portraits, ingested like any image and run through the real faces stage. No tests in here."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from django.conf import settings

from archive.images import ImageLimits, ingest_location
from archive.models import Artwork

# A dozen AIC paintings: single-sitter portraits, plus one landscape without a face.
AIC_PORTRAITS = ["88372", "88374", "80463", "14594", "42949", "81576", "80450", "16151", "59960", "79789", "86441"]
AIC_LANDSCAPE = "897"  # Constant Troyon, Pasture in Normandy: no face
# Photos of two people used as queries by the page and browser tests.
QUERY = {"person01": "img2.jpg", "person02": "img54.jpg"}
# Two of the people stored as artworks (the e2e tests keep their archive small with these).
TWO_PEOPLE = {"person01": "img1.jpg", "person02": "img12.jpg"}


def deepface_dir(shared_data: Path) -> Path:
    return shared_data / "faces" / "photos-deepface"


def identities(shared_data: Path) -> dict[str, str]:
    """``{file: person}`` for the 61 identity photos of 13 people, in the order of identities.csv."""
    with open(deepface_dir(shared_data) / "identities.csv", newline="") as handle:
        return {row["file"]: row["person"] for row in csv.DictReader(handle)}


def stored_photos(shared_data: Path) -> dict[str, str]:
    """The photo of each of the 13 people stored as an "artwork": the first listed for that person
    (person01: img1.jpg, person02: img12.jpg, ...); every other photo of theirs is a query."""
    stored: dict[str, str] = {}
    for name, person in identities(shared_data).items():
        stored.setdefault(person, name)
    return stored


def aic_metadata(aic_dir: Path) -> dict[str, dict]:
    out = {}
    for coll in (aic_dir / "collections").glob("*/collection.json"):
        for art in json.loads(coll.read_text())["artworks"]:
            out[str(art["id"])] = art
    return out


def add_artwork(path: Path, *, source: str, source_id: str, title: str, creator: str = "", date: str = "") -> Artwork:
    image = ingest_location(str(path), settings.DERIVATIVE_SIZES, Path(settings.MEDIA_ROOT), ImageLimits.from_settings())
    return Artwork.objects.create(
        source=source, source_id=source_id, title=title, creator=creator, display_date=date,
        sha256=image.sha256, phash=image.phash, width=image.width, height=image.height,
        status=Artwork.Status.OK, original_location=str(path),
    )


def build_archive(shared_data: Path, *, paintings=AIC_PORTRAITS, landscape: bool = True, people=None) -> dict:
    """Artwork rows for the stored photos (default: one of each of the 13 people) and the paintings,
    with their faces found by the real stage."""
    from workers.faces import process

    people = stored_photos(shared_data) if people is None else people
    aic_dir = shared_data / "artworks" / "aic-artwall"
    meta = aic_metadata(aic_dir)
    made = {"people": {}, "paintings": {}}
    for person, name in people.items():
        made["people"][person] = add_artwork(deepface_dir(shared_data) / name, source="faces-test", source_id=name,
                                             title=f"Photograph of {person}", creator="Test photographer", date="2020")
    ids = list(paintings) + ([AIC_LANDSCAPE] if landscape else [])
    for aic_id in ids:
        art = meta[aic_id]
        made["paintings"][aic_id] = add_artwork(aic_dir / "images" / f"{aic_id}.jpg", source="faces-test-aic", source_id=aic_id,
                                                title=art["title"], creator=art["artist"], date=art["date"])
    all_ids = [a.pk for a in made["people"].values()] + [a.pk for a in made["paintings"].values()]
    made["result"] = process(all_ids, {})
    made["ids"] = all_ids
    return made
