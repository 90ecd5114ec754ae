"""Per-video preprocessing: sample frames by time, find the face, crop, resize.

1. Sample by time at the target fps from the video's own frame rate (t_k = k / fps), so
   datasets with mixed rates (MMI: 25 and 29 fps) sample alike (the paper's "5 fps"); or, with
   `stride` k, every k-th frame whatever the rate (the authors' released loader: k = 5 gives
   10 fps on UvA-NEMO's 50 fps videos). Decode only those frames (decord's `get_batch`), or
   read only those images of a sequence.
2. Detect the face with dlib's frontal detector on a frame downscaled to at most `detect_width`
   px by a power of 5/6, the step of dlib's own image pyramid, so the downscaled frame is one
   of the levels the detector would scan at full resolution and the boxes agree with
   full-resolution detection (an arbitrary factor such as 1/4 falls between levels and moves
   the box size by ~10 %); keep the largest box; carry the last box over
   frames where none is found (and the first found box back to the start); smooth the centre
   over time; keep one crop size per clip (see `track_boxes`).
3. `crop: aligned` (default): place the face in each frame by its eye landmarks (dlib's 5-point
   predictor) inside the box and cut an upright face chip of one size per clip (align.py).
   `crop: box`: a square around the smoothed box with a margin. Resize to `res`, colour or gray.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PREP_VERSION = 3
CROPS = ("aligned", "box")


class PreprocessError(RuntimeError):
    """A video that cannot be used; the message names the file and the reason."""


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


_detector = None


def _get_detector(*_):
    global _detector
    if _detector is None:
        import dlib

        _detector = dlib.get_frontal_face_detector()
    return _detector


def pyramid_scale(width: int, detect_width: float) -> float:
    """The largest (5/6)^k (dlib's pyramid step) that brings `width` down to <= detect_width."""
    if width <= detect_width:
        return 1.0
    return (5 / 6) ** math.ceil(math.log(detect_width / width) / math.log(5 / 6) - 1e-9)


def detect_faces(frames: np.ndarray, detect_width: int, upsample: int = 0) -> list[tuple | None]:
    """Largest face box (left, top, right, bottom) in full-frame pixels per frame, or None."""
    det = _get_detector()
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


def fill_gaps(boxes: list[tuple | None]) -> list[tuple]:
    """Each frame's box, or the last found before it (the first found, before any)."""
    last = next(b for b in boxes if b is not None)
    filled = []
    for b in boxes:
        last = b if b is not None else last
        filled.append(last)
    return filled


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
    if cfg.crop == "aligned":
        from .align import chip_track

        return chip_track(frames, boxes), found, upsampled
    track = track_boxes(boxes, cfg.smooth)
    track[:, 2] *= 1 + cfg.margin
    return np.concatenate([track, np.zeros((len(track), 1))], axis=1), found, upsampled


def cut_crops(frames: np.ndarray, track: np.ndarray, cfg: PrepConfig) -> np.ndarray:
    """uint8 (T, C, res, res): each frame's crop at its row of `face_track`."""
    gray = cfg.channels == 1
    if cfg.crop == "aligned":
        from .align import extract_chip

        return np.stack([extract_chip(f, *row, cfg.res, gray) for f, row in zip(frames, track)])
    return np.stack([crop_square(f, cx, cy, s, cfg.res, gray) for f, (cx, cy, s, _) in zip(frames, track)])


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
