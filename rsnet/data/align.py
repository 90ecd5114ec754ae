"""Face alignment by landmarks (the `aligned` crop of PrepConfig, the default).

The authors aligned every frame with dlib's 68 landmarks and `get_face_chip`. At 48 px that
loses much of a smile's dynamics: the 68 points include the mouth, and a similarity transform
fitted to them follows the lips, so the whole face moves in the chip as the smile grows (dlib's
5-point fit did too on the synthetic faces: its fifth point, the nose base, rose with the lip). A moving
chip turns every edge of the face into frame-to-frame change that drowns the smile's own. Here:

1. dlib's 5-point predictor (face-recognition-models) finds the eye corners inside the
   detector's box in each sampled frame; only the four eye points place the chip, since a
   smile moves them least (bench/learning.py --crop-error: how far the chip moves with the smile);
2. the chip is upright on the eye line, centred below the eyes and sized from their distance
   in the proportions of dlib's 5-point chip (`CHIP_SIDE`, `CHIP_BELOW_EYES`); its centre and
   angle are smoothed in time by a Savitzky-Golay filter (a quadratic through 7 sampled frames,
   1.4 s at 5 fps: it follows a head's motion and halves the landmarks' frame-to-frame noise),
   and the clip keeps one size, the median (a face keeps its size within a clip);
3. `dlib.extract_image_chip` cuts each chip (bilinear, through an image pyramid when it shrinks).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .faces import PreprocessError, fill_gaps

PREDICTOR = "shape_predictor_5_face_landmarks.dat"


def predictor_path() -> Path:
    """Where `face-recognition-models` keeps dlib's 5-point predictor (found without importing
    the package, whose __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    path = Path(spec.submodule_search_locations[0]) / "models" / PREDICTOR if spec else None
    if path is None or not path.is_file():
        raise PreprocessError(
            f"dlib's landmark model {PREDICTOR} is missing (pip install face-recognition-models); "
            "or use the detector's box alone (crop: box)"
        )
    return path


@lru_cache(maxsize=1)
def _predictor():
    import dlib

    return dlib.shape_predictor(str(predictor_path()))


# dlib's 5-point face chip (get_face_chip_details, padding 0.25) in units of the distance d between
# the two eye centres, fitted to its chips of the synthetic corpus's faces (sd 2 % of d): side
# 2.875 d, centre 0.538 d below the eyes' midpoint along the face's vertical.
CHIP_SIDE = 2.875
CHIP_BELOW_EYES = 0.538
WINDOW = 7  # sampled frames of the Savitzky-Golay smoothing of each chip's centre and angle


def chip_track(frames: np.ndarray, boxes: list[tuple | None]) -> np.ndarray:
    """(T, 4) rows of (cx, cy, side, angle) in full-frame pixels and radians: each frame's face
    chip placed by its four eye-corner landmarks (a frame without a box uses the last box
    found), centre and angle smoothed over `WINDOW` frames, the side the clip's median."""
    import dlib
    from scipy.signal import savgol_filter

    predict = _predictor()
    rows = []
    for frame, box in zip(frames, fill_gaps(boxes)):
        shape = predict(frame, dlib.rectangle(*(int(round(v)) for v in box)))
        pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(4)], np.float64)
        left, right = pts[2:4].mean(0), pts[0:2].mean(0)  # the eyes as seen: points 2-3, 0-1
        axis = right - left
        d = np.hypot(*axis)
        down = np.array([-axis[1], axis[0]]) / d  # the face's vertical, pointing to the chin
        cx, cy = (left + right) / 2 + CHIP_BELOW_EYES * d * down
        rows.append((cx, cy, CHIP_SIDE * d, np.arctan2(axis[1], axis[0])))
    track = np.array(rows, dtype=np.float64)
    window = min(WINDOW, len(track) - 1 + len(track) % 2)  # odd, at most the clip
    if window >= 5:  # a quadratic through each 7 frames: follows a moving head, not the landmarks' noise
        track[:, [0, 1, 3]] = savgol_filter(track[:, [0, 1, 3]], window, 2, axis=0, mode="interp")
    track[:, 2] = np.median(track[:, 2])
    return track


def extract_chip(frame: np.ndarray, cx: float, cy: float, side: float, angle: float, res: int, gray: bool):
    """The (C, res, res) chip of side `side` px centred at (cx, cy), rotated by `angle`."""
    import dlib

    half = side / 2
    rect = dlib.drectangle(cx - half, cy - half, cx + half, cy + half)
    img = np.asarray(Image.fromarray(frame).convert("L")) if gray else frame
    chip = dlib.extract_image_chip(np.ascontiguousarray(img), dlib.chip_details(rect, dlib.chip_dims(res, res), angle))
    return chip[None] if chip.ndim == 2 else chip.transpose(2, 0, 1)  # (C, res, res)


class AlignedCrop:
    """`crop: aligned` of a PrepConfig (the default): its resolution and channels."""

    def __init__(self, cfg):
        self.res, self.gray = cfg.res, cfg.channels == 1

    def track(self, frames: np.ndarray, boxes: list[tuple | None]) -> np.ndarray:
        return chip_track(frames, boxes)

    def cut(self, frame: np.ndarray, row) -> np.ndarray:
        return extract_chip(frame, *row, self.res, self.gray)
