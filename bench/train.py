"""Training speed: this loop against a faithful re-creation of the authors' data path and forward.

    python bench/train.py --root DIR [--epochs 2 --threads 2]

On the same corpus (a synthetic UvA-NEMO look-alike, prepared at 5 fps, 48x48) and the same
model size (5,273 parameters):
  epoch   ours: clips in memory as uint8, length-bucketed batches, packed forward
          authors': every item's frames JPEG-decoded from a zip each epoch, every clip
          left-padded to the dataset's longest, a forward with per-sample Python loops
  step    one forward+backward at equal batch (16 x 40 frames): our model against theirs
          (their layers are plain NCHW nn.Conv2d; ours run the per-frame convolutions
          channels-last, FrameConv2d; the step is also timed with ours made plain)
Targets: epoch >= 5x faster, step >= 1.5x faster.
"""
from __future__ import annotations

import argparse
import io
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from rsnet.batching import ClipSet
from rsnet.data import PrepConfig, load_or_build
from rsnet.engine import train_one_epoch
from rsnet.loss import class_weights
from rsnet.model import build_model
from rsnet.trial import keep_freed_memory


class AuthorsForward(nn.Module):
    """The authors' forward around the same modules: left-padded input, TSA over the padded
    batch, per-sample loops to pick the real frames and scatter features back, and a ConvLSTM
    that resets the state of each video at its first real step with a Python loop."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, x, starts):                      # x (B, T, C, H, W), video b real from starts[b]
        m = self.m
        diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], 1)
        B, T = x.shape[:2]
        x = m.tsa.conv(diff.flatten(0, 1)).view(x.shape) * x + x
        real = torch.cat([x[b, starts[b]:] for b in range(B)], 0)
        out = m.encoder(real)
        feats = torch.zeros((B, T) + out.shape[1:])
        cur = 0
        for b, s in enumerate(starts):
            feats[b, s:] = out[cur:cur + T - s]
            cur += T - s
        cell = m.temporal.cell
        h = torch.zeros(B, cell.hidden, *out.shape[2:])
        c = torch.zeros_like(h)
        for t in range(T):
            for b in (starts == t).nonzero().view(-1):
                h[b] = 0
                c[b] = 0
            h, c = cell(feats[:, t], (h, c))
        return m.head(h)


def plain_convs(model: nn.Module) -> nn.Module:
    """The authors' layers are plain nn.Conv2d: undo our channels-last FrameConv2d (same weights)."""
    from rsnet.model.blocks import FrameConv2d

    for m in model.modules():
        if isinstance(m, FrameConv2d):
            m.__class__ = nn.Conv2d
    return model


def write_zip(data: ClipSet, path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for i in range(len(data)):
            for k, frame in enumerate(data.clip(i)):
                buf = io.BytesIO()
                Image.fromarray(frame.transpose(1, 2, 0)).save(buf, "JPEG", quality=95)
                z.writestr(f"{i}/{k}.jpg", buf.getvalue())


class ZipDataset(torch.utils.data.Dataset):
    def __init__(self, path: Path, data: ClipSet):
        self.path, self.lengths, self.labels = path, data.lengths, data.labels
        self.max_len = int(data.lengths.max())

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        with zipfile.ZipFile(self.path) as z:
            frames = [np.asarray(Image.open(io.BytesIO(z.read(f"{i}/{k}.jpg")))) for k in range(self.lengths[i])]
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
        pad = self.max_len - len(frames)
        x = torch.cat([torch.zeros((pad,) + x.shape[1:]), x])          # left-padding
        return x, pad, int(self.labels[i])


def authors_epoch(model, loader, opt, weights) -> float:
    t0 = time.perf_counter()
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    for x, starts, y in loader:
        logits = model(x, starts)
        loss = (weights[y] * loss_fn(logits[:, 0], y.float())).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="a synthetic (or real) UvA-NEMO root")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    keep_freed_memory()                  # as run_trial does; the process (and both paths) share it
    cache = load_or_build("uvanemo", a.root, PrepConfig(), a.cache, progress=False)
    data = ClipSet.from_cache(cache, cache.usable)
    w = class_weights(data.labels)
    zpath = cache.path.parent / f"{cache.path.name}.authors.zip"
    if not zpath.exists():
        write_zip(data, zpath)

    torch.manual_seed(0)
    ours = build_model("full")
    opt = torch.optim.Adam(ours.parameters(), 1e-3)
    ours_t = min(train_one_epoch(ours, data, opt, w, torch.device("cpu"), batch_size=16, seed=0,
                                 epoch=e)["train_seconds"] for e in range(1, a.epochs + 1))
    torch.manual_seed(0)
    theirs = AuthorsForward(plain_convs(build_model("full")))
    opt = torch.optim.Adam(theirs.parameters(), 1e-3)
    loader = torch.utils.data.DataLoader(ZipDataset(zpath, data), batch_size=16, shuffle=True, num_workers=0)
    theirs_t = min(authors_epoch(theirs, loader, opt, w) for _ in range(a.epochs))

    # step time at equal batch: 16 clips of 40 frames (variable lengths 30-40 for the packing)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 40, 3, 48, 48, generator=g)
    lengths = torch.randint(30, 41, (16,), generator=g)
    left = torch.zeros_like(x)
    for b, n in enumerate(lengths):
        left[b, 40 - n:] = x[b, :n]

    def step_time(fn, reps=9):
        times = []
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            fn().float().sum().backward()
            times.append(time.perf_counter() - t0)
        return float(np.median(times[1:]))

    s_ours = step_time(lambda: ours.logits(x, lengths))
    s_theirs = step_time(lambda: theirs(left, 40 - lengths))
    torch.manual_seed(0)
    ours_plain = plain_convs(build_model("full"))
    s_plain = step_time(lambda: ours_plain.logits(x, lengths))
    print(f"corpus: {len(data)} clips, mean {data.lengths.mean():.1f} frames (max {data.lengths.max()}), "
          f"{a.threads} threads")
    print(f"epoch: ours {ours_t:.2f} s, authors' data path {theirs_t:.2f} s -> {theirs_t / ours_t:.1f}x (target >= 5x)")
    print(f"step (16 x 40 frames): ours {s_ours * 1000:.0f} ms, authors' {s_theirs * 1000:.0f} ms -> "
          f"{s_theirs / s_ours:.2f}x (target >= 1.5x); ours with NCHW convolutions {s_plain * 1000:.0f} ms")


if __name__ == "__main__":
    main()
