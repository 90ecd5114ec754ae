"""Real faces (scikit-image's LFW subset) animated into smiles by warping.

`skimage.data.lfw_subset()` ships 200 gray 25x25 images: the first 100 are real LFW faces.
Upscaled to 150 px, dlib's frontal detector finds 92-93 of them; those are the identities.
In these tight crops (unit square, y down) the eyes sit near (0.32, 0.40) and (0.68, 0.40)
and the mouth corners near (0.36, 0.72) and (0.64, 0.72).

A smile is a backward warp of the neutral face: out(p) = face(p - D(p)), with
D = lips * (left * D_left_corner + right * D_right_corner) + eyes * (D_eyes + D_cheeks):
lip corners pulled up and out (AU12); eyes narrowed and cheeks raised (AU6).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage
from skimage import data
from skimage.transform import resize

MOUTH_CORNERS = ((0.36, 0.72), (0.64, 0.72))
EYES = ((0.32, 0.40), (0.68, 0.40))
CHEEKS = ((0.33, 0.58), (0.67, 0.58))
CORNER_PULL = (0.08, 0.11)      # out, up; as a fraction of the face side, at intensity 1
CORNER_SIGMA = 0.11
EYE_SQUEEZE = 0.35              # vertical compression of the eye region at intensity 1
CHEEK_RAISE = 0.03


@lru_cache(maxsize=1)
def lfw_faces() -> np.ndarray:
    """The 100 real faces of scikit-image's LFW subset, (100, 25, 25) float in [0, 1]."""
    return data.lfw_subset()[:100].astype(np.float32)


@lru_cache(maxsize=1)
def detectable_faces() -> tuple[int, ...]:
    """Indices of the LFW faces that dlib's frontal detector finds when upscaled to 150 px."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    keep = []
    for i, face in enumerate(lfw_faces()):
        img = (resize(face, (150, 150), order=1) * 255).astype(np.uint8)
        if len(detector(img, 0)):
            keep.append(i)
    return tuple(keep)


def _gauss(u, v, centre, sx, sy=None):
    sy = sx if sy is None else sy
    return np.exp(-0.5 * (((u - centre[0]) / sx) ** 2 + ((v - centre[1]) / sy) ** 2))


class FaceWarper:
    """Renders one identity at `side` px with any (lips, eyes) intensity and sub-pixel shift."""

    def __init__(self, face: np.ndarray, side: int, left: float = 1.0, right: float = 1.0):
        self.side = side
        self.neutral = resize(face, (side, side), order=3, anti_aliasing=False).astype(np.float32)
        v, u = np.mgrid[0:side, 0:side].astype(np.float32) / side   # face coords, y down
        self.grid = np.stack([v, u]) * side                          # (2, S, S) pixel coords
        # unit displacement fields, in pixels, each (2, S, S) as (dy, dx)
        lips = np.zeros((2, side, side), np.float32)
        for (cu, cv), sign, strength in zip(MOUTH_CORNERS, (-1, 1), (left, right)):
            g = _gauss(u, v, (cu, cv), CORNER_SIGMA) * strength
            lips[0] -= CORNER_PULL[1] * g
            lips[1] += sign * CORNER_PULL[0] * g
        eyes = np.zeros_like(lips)
        for c in EYES:
            eyes[0] -= EYE_SQUEEZE * (v - c[1]) * _gauss(u, v, c, 0.09, 0.07)
        for c in CHEEKS:
            eyes[0] -= CHEEK_RAISE * _gauss(u, v, c, 0.08)
        self.d_lips = lips * side
        self.d_eyes = eyes * side
        yy, xx = np.mgrid[0:side, 0:side] / (side - 1) * 2 - 1
        edge = np.clip((1.0 - np.maximum(np.abs(yy), np.abs(xx))) / 0.12, 0, 1)
        self.alpha = ramp_alpha(edge)                                 # feathered border

    def render(self, lips: float, eyes: float, shift=(0.0, 0.0)) -> np.ndarray:
        """(S, S) float face at the given intensities, shifted by a sub-pixel (dy, dx)."""
        d = lips * self.d_lips + eyes * self.d_eyes
        coords = self.grid - d - np.asarray(shift, np.float32)[:, None, None]
        return ndimage.map_coordinates(self.neutral, coords, order=1, mode="nearest")


def ramp_alpha(x: np.ndarray) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(np.pi * x)).astype(np.float32)
