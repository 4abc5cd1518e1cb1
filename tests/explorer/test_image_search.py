"""Search by image: an uploaded copy of an artwork, cropped, mirrored, turned grey or recoloured
(hue rotation, colour cast, sepia), finds its source (test-tiny has random weights, so only near-copies are meaningful: that is what we assert)."""
import io

import pytest
from PIL import Image, ImageOps

pytestmark = pytest.mark.django_db


def _variants(path):
    with Image.open(path) as im:
        im = im.convert("RGB")
    w, h = im.size
    cw, ch = int(w * 0.7), int(h * 0.7)
    left, top = (w - cw) // 2, (h - ch) // 2
    return {
        "exact": im,
        "crop70": im.crop((left, top, left + cw, top + ch)),
        "flip": ImageOps.mirror(im),
        "gray": ImageOps.grayscale(im).convert("RGB"),
    }


def _hue_shift(im, degrees):
    h, sat, v = im.convert("HSV").split()
    h = h.point(lambda x: (x + round(degrees * 256 / 360)) % 256)
    return Image.merge("HSV", (h, sat, v)).convert("RGB")


def _recoloured(path):
    """Colour changes a reproduction may carry: hue rotations, a colour cast, a sepia print."""
    with Image.open(path) as im:
        im = im.convert("RGB")
    return {
        "hue90": _hue_shift(im, 90),
        "hue180": _hue_shift(im, 180),
        "blue-cast": Image.blend(im, Image.new("RGB", im.size, (30, 60, 200)), 0.4),
        "sepia": ImageOps.colorize(ImageOps.grayscale(im), "#2e1a05", "#f5e6c8"),
    }


def _upload(client, image, url="/api/v1/search/image/"):
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    buf.seek(0)
    buf.name = "query.jpg"
    return client.post(url, {"image": buf})


@pytest.mark.parametrize("index", [0, 25, 45, 55])
def test_variants_find_their_source(client, archive, index):
    artwork = archive["artworks"][index]
    for name, image in _variants(artwork.original_location).items():
        r = _upload(client, image)
        assert r.status_code == 200, r.content
        ids = [x["artwork"]["id"] for x in r.json()["results"]]
        assert artwork.pk in ids[:3], (name, ids[:5])


@pytest.mark.parametrize("index", [0, 25, 45, 55])
def test_recoloured_copies_find_their_source(client, archive, index):
    artwork = archive["artworks"][index]
    for name, image in _recoloured(artwork.original_location).items():
        r = _upload(client, image)
        assert r.status_code == 200, r.content
        results = r.json()["results"]
        ids = [x["artwork"]["id"] for x in results]
        assert artwork.pk in ids[:3], (name, ids[:5])
        assert next(x for x in results if x["artwork"]["id"] == artwork.pk)["copy"] is True, name


def test_image_search_page(client, archive):
    artwork = archive["artworks"][3]
    page = client.get("/search/image/")
    assert page.status_code == 200 and b'type="file"' in page.content
    r = _upload(client, _variants(artwork.original_location)["flip"], url="/search/image/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Closest matches" in html and "untrained" in html.lower()
    first = html.split("Closest matches", 1)[1]
    assert f'href="/artworks/{artwork.pk}/"' in first[: first.find("</li>") + 1]
    bad = client.post("/search/image/", {"image": io.BytesIO(b"GIF89a broken")})
    assert bad.status_code == 400 and b"not a usable image" in bad.content
    assert client.post("/search/image/", {}).status_code == 400


def test_copy_detector_margins(aic_dir):
    """The near-copy check scores true crops, mirrors, grey and recoloured copies far above other paintings."""
    from explorer.copy_detect import COPY_THRESHOLD, copy_score

    paths = sorted((aic_dir / "images").glob("*.jpg"))[:12]
    thumbs = []
    for p in paths:
        with Image.open(p) as im:
            t = im.convert("RGB")
        t.thumbnail((128, 128))
        thumbs.append(t)
    for i in (0, 5, 11):
        for name, variant in {**_variants(paths[i]), **_recoloured(paths[i])}.items():
            variant.thumbnail((256, 256))
            scores = [copy_score(variant, t) for t in thumbs]
            assert scores[i] >= COPY_THRESHOLD, (name, scores[i])
            assert max(s for j, s in enumerate(scores) if j != i) < scores[i] - 0.1, name
