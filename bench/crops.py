"""Crops of a synthetic corpus made each way, and how far the pipeline's crops are from the truth.

A synthetic clip's spec (rebuilt from SYNTHETIC.json) gives the renderer, which knows where the
face is in every frame. The ways to make a clip's crops, from the truth to the pipeline:

    rendered   the renderer's own frames (no video coding), cut at the true face square
    encoded    the decoded video's frames, cut at the true face square
    box        the pipeline with `crop: box` (dlib's detector, a smoothed box)
    aligned    the pipeline with `crop: aligned` (chips placed by the eye landmarks; the default)

Used by bench/learning.py (--crops, --crop-error)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from rsnet.data.box import crop_square
from rsnet.data.preprocess import PrepConfig, face_track, read_sampled_frames, sample_indices
from rsnet.synth.layouts import plan_corpus
from rsnet.synth.render import ClipRenderer

CROP_MODES = ("rendered", "encoded", "box", "aligned")


@lru_cache(maxsize=4)
def _specs(root: str) -> dict:
    m = json.loads((Path(root) / "SYNTHETIC.json").read_text())
    kw = {"design": m["design"], "difficulty": m["difficulty"]}
    plan = plan_corpus(m["dataset"], m["size"], m["seed"], m["frame_size"], **kw)
    return {s.relpath: s for s in plan.specs}


def renderer(root, path) -> ClipRenderer:
    return ClipRenderer(_specs(str(root))[str(Path(path).relative_to(root))])


def true_track(r: ClipRenderer, idx: np.ndarray) -> np.ndarray:
    """(T, 3) rows of (cx, cy, side): the true face square in the sampled frames."""
    centre = np.array([r.face_centre(i) for i in idx])  # (T, 2) x, y
    return np.concatenate([centre, np.full((len(idx), 1), r.side)], axis=1)


def truth_preprocessor(root, mode: str):
    """A stand-in for rsnet.data.cache.preprocess_video that cuts the true face square from the
    renderer's frames (`rendered`) or from the decoded video (`encoded`)."""

    def crops(path: str, kind: str, nominal_fps: float, cfg: PrepConfig):
        r = renderer(root, path)
        if mode == "encoded":
            frames, native, n = read_sampled_frames(path, kind, nominal_fps, cfg.fps, cfg.stride)
        else:
            native, n = r.spec.fps, r.n_frames
        idx = sample_indices(n, native, cfg.fps, cfg.stride)
        if mode == "rendered":
            frames = np.stack([r.frame(i) for i in idx])
        gray = cfg.channels == 1
        out = [crop_square(f, cx, cy, s, cfg.res, gray) for f, (cx, cy, s) in zip(frames, true_track(r, idx))]
        return np.stack(out), {"native_fps": native, "native_frames": n, "frames": len(out)}

    return crops


def crop_error(root, videos: pd.DataFrame, cfg: PrepConfig) -> pd.DataFrame:
    """Per clip, in pixels of the res-px crop: the distance of the crop's centre from the true
    face centre (mean and worst over frames), its frame-to-frame change (the crop moving on the
    face: jitter that reads as facial motion), the true face's side inside the crop, and the
    slope of the crop's vertical offset against the smile's intensity (a crop that follows the
    smile moves the whole face in it as the smile grows)."""
    rows = []
    for v in videos.itertuples():
        r = renderer(root, v.path)
        frames, native, n = read_sampled_frames(v.path, v.kind, v.fps, cfg.fps, cfg.stride)
        idx = sample_indices(n, native, cfg.fps, cfg.stride)
        truth = true_track(r, idx)
        track, _, _ = face_track(frames, v.path, cfg)
        px = cfg.res / track[:, 2]  # crop pixels per frame pixel
        off = (track[:, :2] - truth[:, :2]) * px[:, None]  # (T, 2)
        dist, step = np.hypot(*off.T), np.hypot(*np.diff(off, axis=0).T)
        smile = r.dynamics.lips(r.times[idx])
        rows.append(
            {
                "id": v.id,
                "centre_mean": dist.mean(),
                "centre_worst": dist.max(),
                "jitter_mean": step.mean(),
                "jitter_worst": step.max(),
                "face_side": float(np.median(truth[:, 2] * px)),
                # how far the crop moves up the face per unit of smile intensity (0 at rest, ~1 at apex)
                "with_smile": np.polyfit(smile, off[:, 1], 1)[0] if np.ptp(smile) > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows)
