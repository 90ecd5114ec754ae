"""A re-creation of the authors' training data path and forward (Yang et al.'s RealSmileNet code),
for timing only: bench/train.py measures our loop against it.

What their code does each epoch, and what is re-created here:
  data     their preprocessing wrote every frame's face as a 224x224 JPEG chip
           (`dlib.get_face_chip(img, shape, 224)`, PIL's default quality) into one zip; each item
           lists and sorts its video's frame names, decodes the sampled chips, resizes each to 48x48
           with PIL's default filter, and left-pads the clip with zeros into a float64 array as long
           as the dataset's longest clip + 2, divided by 255 (their `loadframes`).
  batch    default collate (float64), then their loop casts the batch to float32 and cuts the left
           padding down to the batch's longest clip (`x.type(torch.FloatTensor)[:, s.min():]`).
  forward  the TSA over the padded batch, per-sample Python loops to pick the real frames for the
           encoder and scatter the features back, and a ConvLSTM that resets each video's state
           at its first real step with a Python loop.
Stored here are only the frames at the target rate (theirs held every source frame and skipped
the others while listing), and the chips are upscaled crops of small synthetic faces, smoother
than real 224 px chips, so they decode faster: both make this baseline cheaper than theirs.
Their loss also added 0.001 x the L2 norm of every parameter in a Python loop; our default loss
has no such term, so it is left out of both.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn


class AuthorsForward(nn.Module):
    """The authors' forward around the same modules: left-padded input, TSA over the padded
    batch, per-sample loops to pick the real frames and scatter features back, and a ConvLSTM
    that resets the state of each video at its first real step with a Python loop."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, x, starts):  # x (B, T, C, H, W), video b real from starts[b]
        m = self.m
        diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], 1)
        B, T = x.shape[:2]
        x = m.tsa.conv(diff.flatten(0, 1)).view(x.shape) * x + x
        real = torch.cat([x[b, starts[b] :] for b in range(B)], 0)
        out = m.encoder(real)
        feats = torch.zeros((B, T) + out.shape[1:])
        cur = 0
        for b, s in enumerate(starts):
            feats[b, s:] = out[cur : cur + T - s]
            cur += T - s
        cell = m.temporal.cell
        h = torch.zeros(B, cell.hidden, *out.shape[2:])
        c = torch.zeros_like(h)
        for t in range(T):
            for b in (starts == t).nonzero().view(-1):
                h[b] = 0
                c[b] = 0
            h, c = authors_cell(cell, feats[:, t], h, c)
        return m.head(h)


def authors_cell(cell, x, h, c):
    """Their ConvLSTMCell.forward (four gate nonlinearities, then f*c + i*g) on our cell's conv."""
    i, f, o, g = torch.split(cell.conv(torch.cat([x, h], dim=1)), cell.hidden, dim=1)
    i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
    c = f * c + i * g
    return o * torch.tanh(c), c


def authors_layers(model: nn.Module) -> nn.Module:
    """The authors' FPN layers on the same weights (the model as built, plain nn layers), with
    their extra nn.AvgPool2d(1, 1) before the dropout."""
    layers = list(model.encoder)
    model.encoder = nn.Sequential(*layers[:-1], nn.AvgPool2d(1, 1), layers[-1])
    return model


def write_chips_zip(cache, rows, path: Path) -> None:
    """One JPEG per frame of `rows` (rows of a 224x224 cache), named `<video>/<k>.jpg`,
    saved as their preprocessing saved its chips (PIL, default quality)."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        for vid, start, n in zip(rows.id, rows.start, rows.length):
            for k in range(n):
                buf = io.BytesIO()
                Image.fromarray(np.ascontiguousarray(cache.frames[start + k].transpose(1, 2, 0))).save(buf, "JPEG")
                z.writestr(f"{vid}/{k}.jpg", buf.getvalue())
    tmp.rename(path)


class ChipsZipDataset(torch.utils.data.Dataset):
    """Their UVANEMODataGenerator: the zip stays open; an item is (float64 left-padded clip / 255,
    label, amount of padding)."""

    def __init__(self, path: Path, ids, labels, res: int = 48):
        self.data = zipfile.ZipFile(path)
        self.names: dict[str, list[str]] = {}
        for f in self.data.namelist():
            video, frame = f.split("/")
            self.names.setdefault(video, []).append(frame)
        self.max_len = max(len(v) for v in self.names.values()) + 2
        self.ids, self.labels, self.res = list(ids), np.asarray(labels), res

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        name = self.ids[i]
        files = [f for f in self.names[name] if f.endswith(".jpg") and f.replace(".jpg", "").isnumeric()]
        files = sorted(files, key=lambda f: int(f.replace(".jpg", "")))
        values = []
        for f in files:
            img = Image.open(io.BytesIO(self.data.read(f"{name}/{f}")))
            values.append(np.asarray(img.resize((self.res, self.res))).transpose(2, 0, 1))
        pad_x = np.zeros((self.max_len, 3, self.res, self.res))
        pad = self.max_len - len(values)
        pad_x[pad:] = np.array(values)
        return pad_x / 255, np.array([float(self.labels[i])]), pad


def authors_epoch(model, loader, opt, weights) -> tuple[float, float]:
    """One training epoch as their loop runs it. Returns (seconds, of which loading the data)."""
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    t0 = time.perf_counter()
    data_s = 0.0
    it = iter(loader)
    while True:
        t = time.perf_counter()
        try:
            x, y, s = next(it)
        except StopIteration:
            break
        index = s.min().item()
        s = s - index
        x = x.type(torch.FloatTensor)[:, index:]
        data_s += time.perf_counter() - t
        logits = model(x, s)
        y = y[:, 0].float()
        loss = (weights[y.long()] * loss_fn(logits[:, 0], y)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0, data_s
