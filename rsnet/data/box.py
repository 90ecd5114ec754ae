"""The `box` crop: a square around the detector's box, smoothed in time, one size per clip."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .faces import fill_gaps


def track_boxes(boxes: list[tuple | None], window: int) -> np.ndarray:
    """Fill gaps (carry the last box forward, the first one back), then (T, 3) rows of
    (cx, cy, side): the centre median-smoothed over `window` frames, then averaged over 3;
    the side one value per clip, the median of the detections. dlib's box sizes come in steps
    of its image pyramid (5/6), so per-frame sizes jump by ~20 % as a face changes expression;
    a face keeps its size within a clip, and a jumping crop would drown the facial motion."""
    a = np.array(fill_gaps(boxes), dtype=np.float64)
    centre = np.stack([(a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2], axis=1)
    found = np.array([b for b in boxes if b is not None], dtype=np.float64)
    side = np.median(np.maximum(found[:, 2] - found[:, 0], found[:, 3] - found[:, 1]))
    if window > 1 and len(centre) > 2:
        centre = running(running(centre, window, np.median), 3, np.mean)
    return np.concatenate([centre, np.full((len(centre), 1), side)], axis=1)


def running(x: np.ndarray, window: int, fn) -> np.ndarray:
    """fn over a centred window of `window` rows of x (the ends padded with the first and last row)."""
    h = window // 2
    padded = np.concatenate([x[:1].repeat(h, 0), x, x[-1:].repeat(h, 0)])
    return np.stack([fn(padded[i : i + window], axis=0) for i in range(len(x))])


def crop_square(frame: np.ndarray, cx: float, cy: float, side: float, res: int, gray: bool) -> np.ndarray:
    """Square crop centred at (cx, cy) resized to res x res; outside the frame is black."""
    img = Image.fromarray(frame).convert("L" if gray else "RGB")
    half = side / 2
    box = tuple(int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    out = img.crop(box).resize((res, res), Image.BILINEAR, reducing_gap=2.0)
    arr = np.asarray(out)
    return arr[None] if gray else arr.transpose(2, 0, 1)  # (C, res, res)


class BoxCrop:
    """`crop: box` of a PrepConfig: its `smooth` window and `margin` around the box."""

    def __init__(self, cfg):
        self.window, self.margin, self.res, self.gray = cfg.smooth, cfg.margin, cfg.res, cfg.channels == 1

    def track(self, frames: np.ndarray, boxes: list[tuple | None]) -> np.ndarray:
        """(T, 4) rows of (cx, cy, side, angle 0) in frame pixels."""
        track = track_boxes(boxes, self.window)
        track[:, 2] *= 1 + self.margin
        return np.concatenate([track, np.zeros((len(track), 1))], axis=1)

    def cut(self, frame: np.ndarray, row) -> np.ndarray:
        cx, cy, side, _ = row  # upright: the box has no angle
        return crop_square(frame, cx, cy, side, self.res, self.gray)
