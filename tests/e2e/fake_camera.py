"""A face video for Chromium's fake camera (--use-file-for-fake-video-capture), written at test
time from real photos with numpy/PIL: a Y4M file (YUV 4:2:0) of 640x480 frames in which each
photo's face, found by the real detector, fills about a third of the width and drifts slowly, as a
visitor moving in front of a screen. No test in here."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

WIDTH, HEIGHT, FPS = 640, 480, 15


def face_frames(path: Path, seconds: float, *, face_width: int = 210) -> list[Image.Image]:
    """``seconds`` of frames of the photo at ``path``, its largest face about ``face_width`` px wide."""
    from workers.ml.faces import get_backend

    with Image.open(path) as im:
        photo = ImageOps.exif_transpose(im).convert("RGB")
    work = photo.copy()
    work.thumbnail((800, 800))
    found = get_backend(detector="hog", upsample=1).detect(work, upsample=1)
    assert found, f"no face in {path}"
    k = photo.width / work.width
    x, y, w, h = (v * k for v in found[0].box)
    scale = face_width / w
    big = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))))
    cx, cy = (x + w / 2) * scale, (y + h / 2) * scale
    frames = []
    for i in range(int(seconds * FPS)):
        t = i / FPS
        dx, dy = 30 * math.sin(t * 1.7), 14 * math.sin(t * 1.1)  # slow drift
        left, top = round(cx - WIDTH / 2 + dx), round(cy - HEIGHT / 2 + dy)
        frame = Image.new("RGB", (WIDTH, HEIGHT), (40, 38, 36))
        frame.paste(big.crop((left, top, left + WIDTH, top + HEIGHT)), (0, 0))
        frames.append(frame)
    return frames


def blank_frames(seconds: float) -> list[Image.Image]:
    """Nobody in front of the screen: an empty wall."""
    return [Image.new("RGB", (WIDTH, HEIGHT), (92, 86, 78)) for _ in range(int(seconds * FPS))]


def write_y4m(frames: list[Image.Image], path: Path) -> Path:
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            yuv = np.asarray(frame.convert("YCbCr"), dtype=np.uint8)
            y = yuv[:, :, 0]
            u = yuv[:, :, 1].reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
            v = yuv[:, :, 2].reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
            out.write(b"FRAME\n")
            out.write(y.tobytes())
            out.write(u.tobytes())
            out.write(v.tobytes())
    return path
