"""Is the synthetic signal temporal? Simple classifiers on ground-truth face crops.

Used by tests/test_synth.py: on held-out subjects, a logistic regression
on the time profile of frame-to-frame differences should beat chance clearly, while one on a
single (apex) frame, and the same temporal features on time-shuffled frames, should not.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .render import ClipRenderer, ClipSpec


def face_crops(spec: ClipSpec, fps: float = 5.0, res: int = 48) -> np.ndarray:
    """Gray crops (T, res, res) in [0, 1] of the true face square, sampled at `fps`."""
    r = ClipRenderer(spec)
    idx = np.unique(np.round(np.arange(0, r.times[-1] + 1e-9, 1 / fps) * spec.fps).astype(int))
    idx = idx[idx < r.n_frames]
    crops = []
    for i in idx:
        x, y, s = r.face_box(i)
        f = r.frame(i).astype(np.float32)
        f = f.mean(-1) if f.ndim == 3 else f
        crops.append(resize(f[y : y + s, x : x + s] / 255.0, (res, res), anti_aliasing=True))
    return np.stack(crops)


def motion_profile(crops: np.ndarray, bins: int = 12) -> np.ndarray:
    """Mean absolute frame difference over normalised time, resampled to `bins` points."""
    d = np.abs(np.diff(crops, axis=0)).mean(axis=(1, 2))
    return np.interp(np.linspace(0, 1, bins), np.linspace(0, 1, len(d)), d)


def apex_frame(crops: np.ndarray, side: int = 12) -> np.ndarray:
    """The frame farthest from the first one, downsampled: what a single frame shows."""
    far = np.abs(crops - crops[0]).mean(axis=(1, 2)).argmax()
    return resize(crops[far], (side, side), anti_aliasing=True).ravel()


def held_out_accuracies(specs: list[ClipSpec], test_fraction: float = 0.3, seed: int = 0) -> dict:
    """Accuracy on held-out subjects of: temporal (motion profile), single apex frame, and the
    motion profile of time-shuffled frames."""
    rng = np.random.default_rng(seed)
    clips = [face_crops(s) for s in specs]
    labels = np.array([s.label for s in specs])
    subjects = sorted({s.subject for s in specs})
    test_subj = set(rng.choice(subjects, max(1, int(len(subjects) * test_fraction)), replace=False))
    test = np.array([s.subject in test_subj for s in specs])
    feats = {
        "temporal": np.stack([motion_profile(c) for c in clips]),
        "single_frame": np.stack([apex_frame(c) for c in clips]),
        "shuffled": np.stack([motion_profile(c[rng.permutation(len(c))]) for c in clips]),
    }
    out = {}
    for name, X in feats.items():
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        clf.fit(X[~test], labels[~test])
        out[name] = float((clf.predict(X[test]) == labels[test]).mean())
    out["n_train"], out["n_test"] = int((~test).sum()), int(test.sum())
    return out
