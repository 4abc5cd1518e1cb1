"""Tesseract, through pytesseract: read the words of one image, keep the legible ones.

Plain Python (no database): the stage, the tests and bench/ocr.py call the same functions.
:func:`read_image` reads an image in two passes and returns every word found with its confidence
and box; :func:`keep` drops what is not real text (low confidence, single characters,
punctuation and the stroke patterns a painting's brushwork turns into); :func:`to_full_image`
scales the boxes to the full image.

Why two passes: Tesseract's page layout analysis is made for documents. On a painting it often
takes the whole picture, a legible inscription included, for an illustration and reads nothing
(more than half of the test inscriptions rendered onto paintings). The second pass reads only
the image's text-like regions (:func:`text_regions`: short, wide, dense clusters of strong edges)
on white, where the layout analysis finds them. Posters and pages, mostly text, are read by the
first pass; the words of both are merged, a word found twice kept once.
"""
from __future__ import annotations

import re
import shutil
import statistics
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import pytesseract
from PIL import Image

ENGINE = "tesseract"
# Page segmentation: automatic (3). Sparse text (11) finds a few more words on posters but many
# more false ones in paintings.
PSM = 3
PUNCTUATION = "\"'`´‘’“”„«»‹›()[]{}<>.,;:!?¡¿…·•*_~|/\\-–—=+^°§¶#%&@$"
_NOISE_ONLY = re.compile(r"^[ilI1|!.,'`:;]+$")  # vertical strokes and dots
_REPEATED = re.compile(r"(.)\1\1")  # the same character three times running


class EngineMissing(Exception):
    """Tesseract, or one of the languages asked for, is not installed here; the message says how."""


@dataclass(frozen=True)
class Word:
    text: str
    conf: float
    x: int
    y: int
    w: int
    h: int
    line: tuple[int, int, int]  # (block, paragraph, line) of Tesseract's layout

    def as_dict(self) -> dict:
        return {"text": self.text, "conf": round(self.conf, 1), "x": self.x, "y": self.y, "w": self.w, "h": self.h}


@lru_cache(maxsize=1)
def version() -> str:
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise EngineMissing(
            "Tesseract is not installed on this machine: install the Debian packages tesseract-ocr and "
            "tesseract-ocr-<lang> for each OCR_LANGUAGES entry (./run does it when run as root; docs/ocr.md)"
        )
    return str(pytesseract.get_tesseract_version())


@lru_cache(maxsize=8)
def installed_languages() -> frozenset[str]:
    version()
    return frozenset(pytesseract.get_languages(config=""))


def check_languages(languages: str) -> str:
    """``languages`` ("eng+deu") when Tesseract and each of its languages are installed; else
    :class:`EngineMissing` naming the packages to install."""
    wanted = [part.strip() for part in str(languages or "").split("+") if part.strip()]
    if not wanted:
        raise ValueError("no OCR language given (e.g. OCR_LANGUAGES=eng or eng+deu)")
    bad = [lang for lang in wanted if not re.fullmatch(r"[a-z]{3}(_[a-z]+)?", lang, flags=re.I)]
    if bad:
        raise ValueError(f"not a Tesseract language code: {', '.join(bad)} (three letters, e.g. eng, deu, fra)")
    missing = [lang for lang in wanted if lang not in installed_languages()]
    if missing:
        packages = " ".join("tesseract-ocr-" + lang.lower().replace("_", "-") for lang in missing)
        raise EngineMissing(
            f"Tesseract has no language data for {', '.join(missing)}: install {packages} "
            f"(installed: {', '.join(sorted(installed_languages() - {'osd'})) or 'none'})"
        )
    return "+".join(wanted)


def read(image: Image.Image, languages: str, *, psm: int = PSM, timeout: float = 120) -> list[Word]:
    """Every non-empty word Tesseract reads in ``image``, boxes in that image's pixels. The image
    is read in greyscale: on colour paintings Tesseract's layout analysis otherwise often takes a
    legible inscription for part of the picture and returns nothing (a third of the rendered test
    inscriptions), and greyscale is faster. Raises pytesseract's TesseractError for an image it
    cannot read and RuntimeError when it runs past ``timeout`` seconds."""
    image = image.convert("L")
    # pytesseract hands the image to tesseract as a file in the image's format (PNG by default):
    # BMP is written in a fraction of a millisecond, a PNG of 1024 px in about 140 ms.
    image.format = "BMP"
    data = pytesseract.image_to_data(
        image, lang=languages, config=f"--psm {psm}", output_type=pytesseract.Output.DICT, timeout=timeout,
    )
    words = []
    for i, text in enumerate(data["text"]):
        text = (text or "").strip()
        conf = float(data["conf"][i])
        if not text or conf < 0:
            continue
        words.append(Word(
            text, conf, int(data["left"][i]), int(data["top"][i]), int(data["width"][i]), int(data["height"][i]),
            (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i])),
        ))
    return words


def text_regions(image: Image.Image, min_height: int = 8, max_height: int = 150) -> tuple[Image.Image, int]:
    """The greyscale image with everything but its text-like regions painted white, and how many
    regions were kept. A region: a connected cluster of strong edges (morphological gradient,
    Otsu threshold, closed along the line direction) 8 to 150 px high, at least 1.6 times as wide,
    with 25-90 % of its box on an edge: lettering, not brushwork or a frame."""
    grey = np.asarray(image.convert("L"))
    gradient = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    _, edges = cv2.threshold(gradient, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (15, 3)))
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(closed)
    out = np.full_like(grey, 255)
    kept = 0
    for x, y, w, h, _area in stats[1:count]:
        if h < min_height or h > max_height or w < 1.6 * h:
            continue
        fill = edges[y:y + h, x:x + w].mean() / 255
        if not 0.25 <= fill <= 0.9:
            continue
        pad = max(2, h // 4)
        window = (slice(max(0, y - pad), y + h + pad), slice(max(0, x - pad), x + w + pad))
        out[window] = grey[window]
        kept += 1
    return Image.fromarray(out), kept


def _iou(a: Word, b: Word) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / float(a.w * a.h + b.w * b.h - inter) if inter else 0.0


REGION_PSM = 11  # sparse text: the regions are scattered lines


def merge(words: list[Word], more: list[Word], line_offset: int = 10_000) -> list[Word]:
    """``words`` plus the words of ``more`` (same pixels) not found already; a word found in both
    keeps the more confident reading. The lines of ``more`` are numbered apart."""
    words = list(words)
    for word in more:
        word = Word(word.text, word.conf, word.x, word.y, word.w, word.h, (word.line[0] + line_offset, *word.line[1:]))
        same = next((i for i, w in enumerate(words) if _iou(w, word) > 0.3), None)
        if same is None:
            words.append(word)
        elif word.conf > words[same].conf:
            words[same] = word
    return words


def read_regions(image: Image.Image, languages: str, *, min_height: int = 8, max_height: int = 150, timeout: float = 120) -> list[Word]:
    """The words of the image's text regions alone (:func:`text_regions`); none without regions."""
    masked, regions = text_regions(image, min_height, max_height)
    return read(masked, languages, psm=REGION_PSM, timeout=timeout) if regions else []


def read_image(image: Image.Image, languages: str, *, timeout: float = 120) -> list[Word]:
    """The words of both passes (the whole image, then its text regions), a word found by both
    kept once (the more confident reading)."""
    grey = image.convert("L")
    return merge(read(grey, languages, timeout=timeout), read_regions(grey, languages, timeout=timeout))


def clean(text: str) -> str:
    """A word without the punctuation around it ("«Hamelin,»" gives "Hamelin")."""
    return text.strip(PUNCTUATION + " ")


def is_real_word(text: str) -> bool:
    """Whether a word (punctuation already stripped) looks like text rather than texture: at
    least two letters or digits, mostly letters or digits, not a run of strokes, not one
    character three times running, not a jumble of case changes."""
    alnum = sum(ch.isalnum() for ch in text)
    if alnum < 2 or alnum < 0.8 * len(text):
        return False
    if _NOISE_ONLY.match(text) or _REPEATED.search(text.lower()):
        return False
    if any(ch.isalpha() for ch in text) and any(ch.isdigit() for ch in text) and not re.fullmatch(r"\d+(st|nd|rd|th|e|er|o|a)?", text, re.I):
        return False  # "l0O8" is noise; "1902", "12th" are not
    # Lower-to-upper switches inside a word: one is a name ("McDonald"), more is noise ("DAaamHaM").
    return len(re.findall(r"[a-zà-ÿ][A-ZÀ-Þ]", text)) <= 1


SHORT = 3  # words this short (letters and digits) are kept only beside a longer word on their line


def keep(words: list[Word], min_conf: float) -> list[Word]:
    """The words that are real text: confidence at least ``min_conf``, text cleaned of
    surrounding punctuation, :func:`is_real_word`; a short word (at most SHORT letters, where
    brushwork most often reads as "te", "LA", "ob") only on a line that holds a longer kept word."""
    kept = []
    for word in words:
        text = clean(word.text)
        if word.conf >= min_conf and is_real_word(text):
            kept.append(Word(text, word.conf, word.x, word.y, word.w, word.h, word.line))
    anchored = {w.line for w in kept if len(w.text) > SHORT}
    return [w for w in kept if len(w.text) > SHORT or w.line in anchored]


def median_height(words: list[Word]) -> float:
    return statistics.median(w.h for w in words) if words else 0.0


def to_full_image(words: list[Word], scale: float) -> list[Word]:
    """Boxes multiplied by ``scale`` (full-image width / width read), rounded outwards."""
    if scale == 1:
        return list(words)
    out = []
    for w in words:
        x, y = int(w.x * scale), int(w.y * scale)
        out.append(Word(w.text, w.conf, x, y, int(round((w.x + w.w) * scale)) - x, int(round((w.y + w.h) * scale)) - y, w.line))
    return out


def as_text(words: list[Word]) -> str:
    """The words in Tesseract's reading order, one line of the layout per line."""
    lines: list[list[str]] = []
    last = None
    for word in words:
        if word.line != last:
            lines.append([])
            last = word.line
        lines[-1].append(word.text)
    return "\n".join(" ".join(line) for line in lines)
