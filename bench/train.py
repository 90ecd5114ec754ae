"""Training speed: this loop against a faithful re-creation of the authors' data path and forward.

    python bench/train.py --root DIR [--epochs 2 --threads 2]

On the same corpus (a synthetic UvA-NEMO look-alike, prepared at 5 fps, 48x48) and the same
model size (5,273 parameters):
  epoch   ours: clips in memory as uint8, length-bucketed batches, packed forward
          authors' (bench/authors.py): every item's 224x224 face chips JPEG-decoded from a zip
          and resized each epoch, left-padded in float64 to the dataset's longest, cut to the
          batch's longest, a forward with per-sample Python loops
          Both are also shown split into data (batching / loading) and the rest.
  step    one forward+backward at equal batch (16 x 40 frames): our model against theirs
          (the same plain nn layers; their ConvLSTM cell, left padding and per-sample loops)
The first run also prepares a 224x224 cache of the same frames and writes the authors' zip
beside the caches (a minute or two for the small corpus).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from authors import AuthorsForward, ChipsZipDataset, authors_epoch, authors_layers, write_chips_zip

from rsnet.batching import ClipSet, batches
from rsnet.data import PrepConfig, load_or_build
from rsnet.engine import train_one_epoch
from rsnet.loss import class_weights
from rsnet.model import build_model
from rsnet.runtime import configure_process


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="a synthetic (or real) UvA-NEMO root")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    configure_process(a.threads)  # as a trial's process is set up; both paths share it
    cache = load_or_build("uvanemo", a.root, PrepConfig(), a.cache, progress=False)
    data = ClipSet.from_cache(cache, cache.usable)
    w = class_weights(data.labels)
    zpath = cache.path.parent / f"{cache.path.name}.authors-chips224.zip"
    if not zpath.exists():
        chips = load_or_build("uvanemo", a.root, PrepConfig(res=224), a.cache, progress=False)
        rows = chips.usable.set_index("id").loc[data.table.id].reset_index()
        assert (rows.length.to_numpy() == data.lengths).all(), "the 224 px cache holds other frames"
        write_chips_zip(chips, rows, zpath)

    torch.manual_seed(0)
    ours = build_model("full")
    ours_t = epoch_time(ours, data, w, a.epochs)
    t0 = time.perf_counter()
    for e in range(1, a.epochs + 1):
        for _ in batches(data, 16, True, 0, e):
            pass
    ours_data = (time.perf_counter() - t0) / a.epochs
    torch.manual_seed(0)
    theirs = AuthorsForward(authors_layers(build_model("full")))
    opt = torch.optim.Adam(theirs.parameters(), 1e-3)
    loader = torch.utils.data.DataLoader(
        ChipsZipDataset(zpath, data.table.id, data.labels), batch_size=16, shuffle=True, num_workers=0
    )
    theirs_t, theirs_data = min(authors_epoch(theirs, loader, opt, w) for _ in range(a.epochs))

    # step time at equal batch: 16 clips of 40 frames (variable lengths 30-40 for the packing)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 40, 3, 48, 48, generator=g)
    lengths = torch.randint(30, 41, (16,), generator=g)
    left = torch.zeros_like(x)
    for b, n in enumerate(lengths):
        left[b, 40 - n :] = x[b, :n]

    def step_time(fn, reps=9):
        times = []
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            fn().float().sum().backward()
            times.append(time.perf_counter() - t0)
        return float(np.median(times[1:]))

    s_ours = step_time(lambda: ours.logits(x, lengths))
    s_theirs = step_time(lambda: theirs(left, 40 - lengths))
    print(
        f"corpus: {len(data)} clips, mean {data.lengths.mean():.1f} frames (max {data.lengths.max()}), "
        f"{a.threads} threads"
    )
    print(f"epoch: ours {ours_t:.2f} s, authors' data path {theirs_t:.2f} s -> {theirs_t / ours_t:.1f}x")
    print(
        f"  data: ours {ours_data:.2f} s (batching), authors' {theirs_data:.2f} s (loading); "
        f"the rest: ours {ours_t - ours_data:.2f} s, authors' {theirs_t - theirs_data:.2f} s -> "
        f"{(theirs_t - theirs_data) / (ours_t - ours_data):.1f}x"
    )
    print(
        f"step (16 x 40 frames): ours {s_ours * 1000:.0f} ms, authors' {s_theirs * 1000:.0f} ms -> "
        f"{s_theirs / s_ours:.2f}x"
    )


def epoch_time(model, data, w, epochs: int) -> float:
    """The best of `epochs` training epochs, seconds."""
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    cpu = torch.device("cpu")
    return min(
        train_one_epoch(model, data, opt, w, cpu, batch_size=16, seed=0, epoch=e)["train_seconds"]
        for e in range(1, epochs + 1)
    )


if __name__ == "__main__":
    main()
