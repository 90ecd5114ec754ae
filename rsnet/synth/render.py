"""One synthetic clip: a spec, a deterministic renderer of its frames, and the writers that
store it as a real dataset does (H.264 mp4, MPEG-4 avi, or a folder of BMP images)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from ..atomic import atomic_path
from .dynamics import DEFAULT_DIFFICULTY, draw_dynamics
from .faces import FaceWarper, detectable_faces, lfw_faces

NOISE_BANK = 8
SWAY_S = 0.5  # s, the time scale of the head's sway


def stable_seed(*parts) -> int:
    """A seed from strings/ints that is the same in every process and Python run."""
    return zlib.crc32("/".join(map(str, parts)).encode())


@dataclass(frozen=True)
class ClipSpec:
    relpath: str  # where the clip goes, relative to the corpus root
    label: int  # 1 spontaneous, 0 posed
    subject: str
    fps: float
    width: int
    height: int
    seed: int  # corpus seed; the clip's own seeds derive from it and the names
    gray: bool = False
    container: str = "mp4"  # mp4 (H.264), avi (MPEG-4 part 2) or bmp (image folder)
    face_frac: float = 0.6  # face side as a fraction of the frame height
    design: str = "order"
    difficulty: float = DEFAULT_DIFFICULTY
    extra: dict = field(default_factory=dict, compare=False, hash=False)


class ClipRenderer:
    """Draws a clip's dynamics and nuisances from its spec; renders any of its frames."""

    def __init__(self, spec: ClipSpec):
        self.spec = spec
        subj = np.random.default_rng(stable_seed(spec.seed, "subject", spec.subject))
        rng = np.random.default_rng(stable_seed(spec.seed, "clip", spec.relpath))
        faces = detectable_faces()
        face = lfw_faces()[faces[int(subj.integers(len(faces)))]]
        if subj.random() < 0.5:
            face = face[:, ::-1]
        self.tint = (
            np.ones(3, np.float32)
            if spec.gray
            else np.array([1.0, subj.uniform(0.75, 0.9), subj.uniform(0.6, 0.8)], np.float32)
        )
        self.dynamics, self.drawn_as = draw_dynamics(rng, spec.label, spec.design, spec.difficulty)
        H, W = spec.height, spec.width
        side = int(round(min(spec.face_frac * H * rng.uniform(0.9, 1.1), 0.9 * H, 0.9 * W)))
        self.warper = FaceWarper(face, side, self.dynamics.left, self.dynamics.right)
        self.side = side
        margin_y, margin_x = (H - side) / 2, (W - side) / 2
        self.centre = np.array(
            [H / 2 + rng.uniform(-0.5, 0.5) * margin_y * 0.6, W / 2 + rng.uniform(-0.5, 0.5) * margin_x * 0.6]
        )
        self.n_frames = max(2, int(round(self.dynamics.duration * spec.fps)))
        t = np.arange(self.n_frames) / spec.fps
        amp = rng.uniform(0.005, 0.015, 2) * side
        period, phase = rng.uniform(2.0, 5.0, 2), rng.uniform(0, 2 * np.pi, 2)
        drift = amp[None] * np.sin(2 * np.pi * t[:, None] / period[None] + phase[None])
        # head sway: 0.4 % of the face side (sd) on each axis, smooth as a head moves (a Gaussian
        # low-pass of 0.5 s), not an independent jump every frame as a shaking camera would give
        sway = ndimage.gaussian_filter1d(rng.normal(0, 1, (self.n_frames, 2)), SWAY_S * spec.fps, axis=0)
        sway *= 0.004 * side * np.sqrt(2 * np.sqrt(np.pi) * SWAY_S * spec.fps)  # back to that sd
        self.offsets = drift + sway  # (T, 2) dy, dx
        gain0, slope = rng.uniform(0.8, 1.15), rng.uniform(-0.05, 0.05)
        self.gain = gain0 + slope * t / max(t[-1], 1e-6)
        self.bias = rng.uniform(-15, 15)
        self.noise_sigma = rng.uniform(1.0, 4.0)
        self.noise_index = rng.integers(NOISE_BANK, size=self.n_frames)
        self._noise = None  # drawn on first use: the truth alone (metadata, resume) needs none
        c = 1 if spec.gray else 3
        low = subj.uniform(20, 200, (3, 4, c)).astype(np.float32)  # background
        self.background = resize(low, (H, W, c), order=1).astype(np.float32)
        self.times = t

    @property
    def noise(self) -> np.ndarray:
        """(NOISE_BANK, H, W, C) sensor-noise frames, from the clip's own noise seed."""
        if self._noise is None:
            spec = self.spec
            rng = np.random.default_rng(stable_seed(spec.seed, "noise", spec.relpath))
            shape = (NOISE_BANK, spec.height, spec.width, 1 if spec.gray else 3)
            self._noise = rng.normal(0, self.noise_sigma, shape).astype(np.float32)
        return self._noise

    def _top_left(self, i: int) -> np.ndarray:
        limit = np.array([self.spec.height, self.spec.width]) - self.side - 1
        return np.clip(self.centre + self.offsets[i] - self.side / 2, 0, limit)

    def face_centre(self, i: int) -> np.ndarray:
        """(x, y) of the face square's centre in frame i, to the sub-pixel: where a crop should sit."""
        return self._top_left(i)[::-1] + self.side / 2

    def face_box(self, i: int) -> tuple[int, int, int]:
        """(x, y, side) of the face square in frame i (integer part of its position)."""
        y, x = np.floor(self._top_left(i)).astype(int)
        return int(x), int(y), self.side

    def frame(self, i: int) -> np.ndarray:
        """Frame i as uint8 (H, W, 3), or (H, W) for gray clips."""
        t = self.times[i]
        top_left = self._top_left(i)
        y, x = np.floor(top_left).astype(int)
        face = self.warper.render(float(self.dynamics.lips(t)), float(self.dynamics.eyes(t)), shift=top_left - (y, x))
        out = self.background.copy()
        region = out[y : y + self.side, x : x + self.side]
        a = self.warper.alpha[..., None]
        region[:] = a * (face[..., None] * self.tint[: region.shape[-1]] * 255) + (1 - a) * region
        out *= self.gain[i]
        out += self.bias
        out += self.noise[self.noise_index[i]]
        np.clip(out, 0, 255, out=out)
        out = out.astype(np.uint8)
        return out[..., 0] if self.spec.gray else out

    def truth(self) -> dict:
        return {
            "label": self.spec.label,
            "subject": self.spec.subject,
            "drawn_as": self.drawn_as,
            "frames": self.n_frames,
            "fps": self.spec.fps,
            "face_side": self.side,
            "dynamics": self.dynamics.to_dict(),
        }


def write_clip(spec: ClipSpec, root: Path) -> dict:
    """Render the clip and store it under root/spec.relpath atomically; returns its truth."""
    r = ClipRenderer(spec)
    dest = Path(root) / spec.relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        if spec.container == "bmp":
            from PIL import Image

            tmp.mkdir()
            for i in range(r.n_frames):
                Image.fromarray(r.frame(i)).save(tmp / f"{i + 1}.bmp")
        else:
            write_video(
                tmp,
                (r.frame(i) for i in range(r.n_frames)),
                spec.fps,
                spec.width,
                spec.height,
                spec.container,
                spec.gray,
            )
    return r.truth()


def write_video(
    path: Path, frames, fps: float, width: int, height: int, container: str = "mp4", gray: bool = False
) -> None:
    """Encode frames with PyAV: H.264 in mp4, MPEG-4 part 2 in avi."""
    import av

    codec = {"mp4": "libx264", "avi": "mpeg4"}[container]
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = 1
        if codec == "libx264":
            # mbtree=0: with x264's macroblock-tree rate control the same frames encoded twice
            # gave different bytes (and decoded frames up to 20 levels apart) now and then;
            # without it every encode of a clip is bit-identical (tested). ultrafast: a third of
            # veryfast's encoding time (most of a corpus's generation) at the same CRF, with the
            # same error against the rendered frames (2.3 against 2.1 levels, the sensor noise's)
            stream.options = {"crf": "18", "preset": "ultrafast", "threads": "1", "x264-params": "mbtree=0"}
        else:
            stream.bit_rate = 4_000_000
        fmt = "gray" if gray else "rgb24"
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format=fmt)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
