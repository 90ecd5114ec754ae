"""Per-video preprocessing: sample frames by time, find the face, crop, resize.

1. Sample by time at the target fps from the video's own frame rate (t_k = k / fps), so
   datasets with mixed rates (MMI: 25 and 29 fps) sample alike (the paper's "5 fps"); or, with
   `stride` k, every k-th frame whatever the rate (the authors' released loader: k = 5 gives
   10 fps on UvA-NEMO's 50 fps videos). Decode only those frames (decord's `get_batch`), or
   read only those images of a sequence.
2. Find the face with dlib's frontal detector (faces.py), retrying at twice the size when no
   frame has one.
3. Look the crop method up in `CROPS`: `aligned` (default) places the face in each frame by its
   eye landmarks (dlib's 5-point predictor) inside the box and cuts an upright face chip of one
   size per clip (align.py); `box` cuts a square around the box, smoothed in time, one size per
   clip, with a margin (box.py). Resize to `res`, colour or gray.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .align import AlignedCrop
from .box import BoxCrop
from .faces import PreprocessError, detect_faces

PREP_VERSION = 3
# crop methods by name: each built from a PrepConfig, with track(frames, boxes) -> (T, 4) rows of
# (cx, cy, side, angle) and cut(frame, row) -> uint8 (C, res, res)
CROPS = {"aligned": AlignedCrop, "box": BoxCrop}


@dataclass(frozen=True)
class PrepConfig:
    fps: float = 5.0
    stride: int = 0  # > 0: every stride-th frame in place of sampling by time at fps
    res: int = 48
    channels: int = 3
    crop: str = "aligned"  # aligned: face chips placed by the eye landmarks (align.py) | box: detector's box
    margin: float = 0.25  # box: square side = (1 + margin) * detected box side
    detect_width: int = 540  # frames are downscaled to at most this width for detection
    smooth: int = 5  # running-median window over boxes (frames)
    version: int = PREP_VERSION

    def to_dict(self) -> dict:
        return asdict(self)


def sample_indices(n_frames: int, native_fps: float, fps: float, stride: int = 0) -> np.ndarray:
    """Frame indices at times k / fps over the video's duration n_frames / native_fps; with
    stride > 0, every stride-th frame from the first."""
    if n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if stride:
        return np.arange(0, n_frames, stride, dtype=np.int64)
    duration = n_frames / native_fps
    times = np.arange(0.0, duration - 1e-9, 1.0 / fps)
    return np.minimum(np.round(times * native_fps).astype(np.int64), n_frames - 1)


def _numeric_key(p: Path):
    m = re.search(r"(\d+)", p.stem)
    return (int(m.group(1)) if m else -1, p.name)


IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def read_sampled_frames(
    path: str, kind: str, nominal_fps: float, fps: float, stride: int = 0
) -> tuple[np.ndarray, float, int]:
    """Decode only the sampled frames: (T, H, W, 3) uint8, the native fps, the video's frame count."""
    if kind == "images":
        files = sorted((p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_numeric_key)
        if not files:
            raise PreprocessError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in the sequence folder")
        idx = sample_indices(len(files), nominal_fps, fps, stride)
        try:
            frames = np.stack([np.asarray(Image.open(files[i]).convert("RGB")) for i in idx])
        except (OSError, ValueError) as e:
            raise PreprocessError(f"{path}: unreadable image ({e})") from e
        return frames, nominal_fps, len(files)
    import decord

    if not Path(path).is_file():
        raise PreprocessError(f"{path}: no such file")
    if Path(path).stat().st_size == 0:
        raise PreprocessError(f"{path}: the file is empty (0 bytes)")
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        n, native = len(vr), float(vr.get_avg_fps())
        if n == 0:
            raise PreprocessError(f"{path}: the video has no frames")
        if not native > 0:
            raise PreprocessError(f"{path}: the container states no frame rate")
        idx = sample_indices(n, native, fps, stride)
        return vr.get_batch(list(idx)).asnumpy(), native, n
    except (decord.DECORDError, RuntimeError) as e:  # decord raises both for corrupt input
        raise PreprocessError(f"{path}: cannot decode ({str(e).splitlines()[0][:200]})") from e


def face_track(frames: np.ndarray, path: str, cfg: PrepConfig) -> tuple[np.ndarray, int, bool]:
    """Where each frame's crop goes: (T, 4) rows of (cx, cy, side, angle) in frame pixels and
    radians; the number of frames the detector found a face in; whether it needed upsampling."""
    boxes = detect_faces(frames, cfg.detect_width)
    upsampled = False
    if all(b is None for b in boxes):  # small faces: one retry at twice the size
        boxes, upsampled = detect_faces(frames, cfg.detect_width, upsample=1), True
    found = sum(b is not None for b in boxes)
    if found == 0:
        raise PreprocessError(f"{path}: no face found in any of {len(frames)} sampled frames")
    return CROPS[cfg.crop](cfg).track(frames, boxes), found, upsampled


def cut_crops(frames: np.ndarray, track: np.ndarray, cfg: PrepConfig) -> np.ndarray:
    """uint8 (T, C, res, res): each frame's crop at its row of `face_track`."""
    crop = CROPS[cfg.crop](cfg)
    return np.stack([crop.cut(f, row) for f, row in zip(frames, track)])


def preprocess_video(path: str, kind: str, nominal_fps: float, cfg: PrepConfig) -> tuple[np.ndarray, dict]:
    """One video -> uint8 (T, C, res, res) face crops and a summary dict; PreprocessError if unusable."""
    t0 = time.perf_counter()
    frames, native, n = read_sampled_frames(path, kind, nominal_fps, cfg.fps, cfg.stride)
    t1 = time.perf_counter()
    if len(frames) == 0:
        raise PreprocessError(f"{path}: too short to sample at {cfg.fps} fps")
    track, found, upsampled = face_track(frames, path, cfg)
    crops = cut_crops(frames, track, cfg)
    return crops, {
        "native_fps": native,
        "native_frames": n,
        "frames": len(crops),
        "face_found": found,
        "upsampled": upsampled,
        "crop_side": round(float(np.median(track[:, 2])), 2),
        "decode_seconds": round(t1 - t0, 4),
        "face_seconds": round(time.perf_counter() - t1, 4),
    }
