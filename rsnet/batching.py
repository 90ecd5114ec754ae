"""Clips held in memory as uint8 and served as padded, length-bucketed batches.

No decoding during training: the clips come from the preprocessing cache, copied once into one
contiguous uint8 array. Each epoch shuffles the clips, sorts pools of 8 batches by length and
cuts them into batches, then shuffles the batches: padding stays small, order stays random,
and it is all a function of (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

POOL = 8


@dataclass
class ClipSet:
    frames: np.ndarray  # (N, C, R, R) uint8, the clips back to back
    starts: np.ndarray  # (V,) start of each clip
    lengths: np.ndarray  # (V,) frames of each clip
    labels: np.ndarray  # (V,) 1 spontaneous, 0 posed
    table: pd.DataFrame  # the videos' rows (id, subject, ...), aligned with the arrays

    @classmethod
    def from_cache(cls, cache, rows: pd.DataFrame) -> "ClipSet":
        """Copy the clips of `rows` (rows of cache.videos, status ok) out of the cache."""
        rows = rows.reset_index(drop=True)
        lengths = rows.length.to_numpy(np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        frames = np.empty((int(lengths.sum()),) + cache.frames.shape[1:], np.uint8)
        for s, (a, n) in zip(starts, zip(rows.start.to_numpy(np.int64), lengths)):
            frames[s : s + n] = cache.frames[a : a + n]
        return cls(frames, starts, lengths, rows.label.to_numpy(np.int64), rows)

    def __len__(self) -> int:
        return len(self.lengths)

    def clip(self, i: int) -> np.ndarray:
        return self.frames[self.starts[i] : self.starts[i] + self.lengths[i]]


def batch_indices(lengths: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0):
    """Lists of clip indices; similar lengths batched together."""
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n)
    batches = []
    pool = batch_size * POOL
    for p in range(0, n, pool):
        chunk = perm[p : p + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def temporal_control(clip: np.ndarray, control: str, rng: np.random.Generator) -> np.ndarray:
    """Controls that remove the temporal signal: `shuffle` permutes the frames in time,
    `single_frame` keeps only the middle frame."""
    if control == "none":
        return clip
    if control == "shuffle":
        return clip[rng.permutation(len(clip))]
    if control == "single_frame":
        return clip[len(clip) // 2 : len(clip) // 2 + 1]
    raise ValueError(f"unknown temporal control {control!r}")


def collate(clips: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 clips (T_i, C, R, R) -> float frames (B, T, C, R, R) in [0, 1], right-padded, and lengths (B,)."""
    lengths = torch.tensor([len(c) for c in clips], dtype=torch.int64)
    out = torch.zeros((len(clips), int(lengths.max())) + clips[0].shape[1:], dtype=torch.uint8)
    for b, c in enumerate(clips):
        out[b, : len(c)] = torch.from_numpy(np.ascontiguousarray(c))
    return out.float().div_(255.0), lengths


def batches(data: ClipSet, batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0, control: str = "none"):
    """Yield (frames, lengths, labels, indices) batches for one pass over `data`."""
    rng = np.random.default_rng([seed, epoch, 1])
    lengths = data.lengths if control != "single_frame" else np.ones_like(data.lengths)
    for idx in batch_indices(lengths, batch_size, shuffle, seed, epoch):
        clips = [temporal_control(data.clip(i), control, rng) for i in idx]
        frames, lens = collate(clips)
        yield frames, lens, torch.from_numpy(data.labels[idx]), idx
