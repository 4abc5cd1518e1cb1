"""Images with known text for the OCR tests and bench/ocr.py: an inscription rendered onto a copy
of a real painting from the shared data, in a given font and size, on a light cartouche (as a
label, a plaque or a poster's lettering sits on a painting), with the words' true boxes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf", "LiberationSerif-Regular.ttf",
         "LiberationSans-Italic.ttf", "DejaVuSansMono.ttf")
INSCRIPTIONS = (
    "Harbour lights over Amsterdam",
    "The winter festival of lanterns",
    "Zeppelin exhibition opens Tuesday",
    "Gardens of the northern palace",
    "Portrait of a travelling merchant",
    "Evening concert in the cathedral",
)


def font_path(name: str) -> Path | None:
    return next((d / name for d in FONT_DIRS if (d / name).is_file()), None)


def fonts_available() -> list[str]:
    return [name for name in FONTS if font_path(name) is not None]


@dataclass
class Rendered:
    image: Image.Image
    words: list[tuple[str, tuple[int, int, int, int]]]  # (word, (x, y, w, h)) in the image's pixels
    text: str


def inscribe(painting: Image.Image, text: str, font: str, size: int, *, top: float = 0.75,
             ink=(25, 20, 15), ground=(236, 228, 210)) -> Rendered:
    """``text`` in ``font`` at ``size`` px on a cartouche across the painting, ``top`` of the way
    down (wrapped to the painting's width)."""
    image = painting.convert("RGB").copy()
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(str(font_path(font)), size)
    space = draw.textlength(" ", font=face)
    lines, line = [], []
    margin = int(image.width * 0.06)
    for word in text.split():
        trial = " ".join(line + [word])
        if line and draw.textlength(trial, font=face) > image.width - 4 * margin:
            lines.append(line)
            line = [word]
        else:
            line.append(word)
    lines.append(line)
    ascent, descent = face.getmetrics()
    line_height = int((ascent + descent) * 1.3)
    block_w = max(draw.textlength(" ".join(l), font=face) for l in lines)
    x0 = (image.width - block_w) / 2
    y0 = min(int(image.height * top), image.height - line_height * len(lines) - margin)
    draw.rectangle([x0 - margin / 2, y0 - line_height * 0.3, x0 + block_w + margin / 2, y0 + line_height * (len(lines) + 0.1)], fill=ground)
    words = []
    for i, line in enumerate(lines):
        x, y = x0, y0 + i * line_height
        for word in line:
            draw.text((x, y), word, font=face, fill=ink)
            left, top_, right, bottom = draw.textbbox((x, y), word, font=face)
            words.append((word, (int(left), int(top_), int(right - left), int(bottom - top_))))
            x += draw.textlength(word, font=face) + space
    return Rendered(image, words, text)
