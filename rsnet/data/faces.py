"""Finding the face: what every crop method starts from.

dlib's frontal detector runs on each sampled frame downscaled to at most `detect_width` px by a
power of 5/6, the step of dlib's own image pyramid, so the downscaled frame is one of the levels
the detector would scan at full resolution and the boxes agree with full-resolution detection
(an arbitrary factor such as 1/4 falls between levels and moves the box size by ~10 %). The
largest box is kept; a frame without one takes the last box found (`fill_gaps`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image


class PreprocessError(RuntimeError):
    """A video that cannot be used; the message names the file and the reason."""


@lru_cache(maxsize=1)
def face_detector():
    """dlib's frontal face detector, loaded once per process."""
    import dlib

    return dlib.get_frontal_face_detector()


def pyramid_scale(width: int, detect_width: float) -> float:
    """The largest (5/6)^k (dlib's pyramid step) that brings `width` down to <= detect_width."""
    if width <= detect_width:
        return 1.0
    return (5 / 6) ** math.ceil(math.log(detect_width / width) / math.log(5 / 6) - 1e-9)


def detect_faces(frames: np.ndarray, detect_width: int, upsample: int = 0) -> list[tuple | None]:
    """Largest face box (left, top, right, bottom) in full-frame pixels per frame, or None."""
    det = face_detector()
    H, W = frames.shape[1:3]
    scale = pyramid_scale(W, detect_width)
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    out = []
    for f in frames:
        gray = Image.fromarray(f).convert("L")
        small = np.asarray(gray.resize(size, Image.BILINEAR, reducing_gap=2.0) if scale < 1 else gray)
        rects = det(small, upsample)
        if len(rects) == 0:
            out.append(None)
            continue
        r = max(rects, key=lambda r: r.width() * r.height())
        out.append(tuple(v / scale for v in (r.left(), r.top(), r.right(), r.bottom())))
    return out


def fill_gaps(boxes: list[tuple | None]) -> list[tuple]:
    """Each frame's box, or the last found before it (the first found, before any)."""
    last = next(b for b in boxes if b is not None)
    filled = []
    for b in boxes:
        last = b if b is not None else last
        filled.append(last)
    return filled
