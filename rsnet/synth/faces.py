"""Real faces (scikit-image's LFW subset) animated into smiles by warping.

`skimage.data.lfw_subset()` ships 200 gray 25x25 images: the first 100 are real LFW faces.
Upscaled to 150 px, dlib's frontal detector finds 92-93 of them; the 80 it finds at every size,
mirrored and smiling (`robust_faces`) are the identities.
In these tight crops (unit square, y down) the eyes sit near (0.32, 0.40) and (0.68, 0.40)
and the mouth corners near (0.36, 0.72) and (0.64, 0.72).

A smile is a backward warp of the neutral face: out(p) = face(p - D(p)), with
D = lips * (left * D_left_corner + right * D_right_corner) + eyes * (D_eyes + D_cheeks):
lip corners pulled up and out (AU12); eyes narrowed and cheeks raised (AU6); the lips part on
the teeth (AU25) as the corners rise, a pale band added before the warp.
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
CORNER_PULL = (0.08, 0.11)  # out, up; as a fraction of the face side, at intensity 1
CORNER_SIGMA = 0.11
EYE_SQUEEZE = 0.35  # vertical compression of the eye region at intensity 1
CHEEK_RAISE = 0.03
# The lips part and the teeth show (AU25), as in broad smiles: a pale band between the
# lips, `TEETH` brighter at intensity 1. The 25 px LFW faces, upscaled, have little texture at the
# mouth for a warp to move: without it a smile changed a 48 px crop by ~3 grey levels per frame.
TEETH = 0.35
TEETH_CENTRE, TEETH_SIZE = (0.5, 0.735), (0.10, 0.022)


@lru_cache(maxsize=1)
def lfw_faces() -> np.ndarray:
    """The 100 real faces of scikit-image's LFW subset, (100, 25, 25) float in [0, 1]."""
    return data.lfw_subset()[:100].astype(np.float32)


# LFW faces that dlib's frontal detector finds in every check of `robust_faces` (80 of 100).
# Precomputed because the check takes seconds; tests/test_synth.py recomputes it.
DETECTABLE_FACES = (
    0,
    1,
    2,
    3,
    5,
    6,
    7,
    8,
    10,
    11,
    12,
    14,
    15,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
    27,
    29,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    38,
    39,
    40,
    41,
    42,
    44,
    45,
    46,
    48,
    49,
    50,
    51,
    53,
    54,
    55,
    56,
    57,
    58,
    60,
    61,
    62,
    63,
    65,
    66,
    69,
    72,
    73,
    74,
    75,
    77,
    78,
    79,
    80,
    81,
    84,
    85,
    86,
    87,
    88,
    89,
    90,
    91,
    92,
    93,
    94,
    95,
    96,
    97,
    98,
    99,
)


def detectable_faces() -> tuple[int, ...]:
    return DETECTABLE_FACES


def robust_faces() -> tuple[int, ...]:
    """Faces dlib finds (upsample 0) at 100, 150 and 200 px, mirrored or not, neutral and at a
    full smile, on a gray surround: the identities a corpus may use."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    keep = []
    for i, face in enumerate(lfw_faces()):
        ok = True
        for side in (100, 150, 200):
            for f in (face, face[:, ::-1]):
                warper = FaceWarper(f, side)
                for lips in (0.0, 1.0):
                    img = np.full((side + 60, side + 60), 128, np.uint8)
                    img[30 : 30 + side, 30 : 30 + side] = np.clip(warper.render(lips, 0.8 * lips), 0, 1) * 255
                    ok = ok and len(detector(img, 0)) > 0
        if ok:
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
        v, u = np.mgrid[0:side, 0:side].astype(np.float32) / side  # face coords, y down
        self.grid = np.stack([v, u]) * side  # (2, S, S) pixel coords
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
        self.teeth = (TEETH * _gauss(u, v, TEETH_CENTRE, *TEETH_SIZE)).astype(np.float32)
        yy, xx = np.mgrid[0:side, 0:side] / (side - 1) * 2 - 1
        edge = np.clip((1.0 - np.maximum(np.abs(yy), np.abs(xx))) / 0.12, 0, 1)
        self.alpha = ramp_alpha(edge)  # feathered border

    def render(self, lips: float, eyes: float, shift=(0.0, 0.0)) -> np.ndarray:
        """(S, S) float face at the given intensities, shifted by a sub-pixel (dy, dx)."""
        d = lips * self.d_lips + eyes * self.d_eyes
        coords = self.grid - d - np.asarray(shift, np.float32)[:, None, None]
        face = self.neutral + lips * self.teeth if lips else self.neutral  # teeth in face coordinates, warped along
        return ndimage.map_coordinates(face, coords, order=1, mode="nearest")


def ramp_alpha(x: np.ndarray) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(np.pi * x)).astype(np.float32)
