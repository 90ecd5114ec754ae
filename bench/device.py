"""The model on a GPU: the CUDA paths against the CPU fast paths, and training speed and memory.

    python bench/device.py --cache DIR [--epochs 3 --batch 16]

DIR is a preprocessing cache (a folder holding frames.u8, videos.csv, meta.json), opened as it
is, so no dataset or decoder is needed on the GPU machine. Prints:
  agree   one training step (dropout off) of the same weights on the same batch, each path
          against float64 on the CPU: the CPU's float32 and CUDA's; differences of the logits,
          and of every parameter's gradient relative to its largest value
  epoch   train_one_epoch + evaluate, as run_trial calls them, on CUDA in fp32 and with AMP
          (bf16 autocast), and on the CPU: seconds per epoch, peak GPU memory, final loss
Runs on a CPU-only machine too (the CUDA lines are skipped).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from rsnet.batching import ClipSet, batches
from rsnet.data import FrameCache
from rsnet.engine import evaluate, train_one_epoch
from rsnet.loss import class_weights, smile_loss
from rsnet.model import build_model


def one_step_grads(model, frames, lengths, labels, weights, device):
    """Logits and gradients of one training step with dropout off."""
    model = model.to(device).train()
    for m in model.modules():
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
            m.p = 0.0
    model.zero_grad()
    logits = model.logits(frames.to(device), lengths)
    smile_loss(logits, labels.to(device), weights.to(device)).backward()
    return logits.detach().cpu(), {n: p.grad.detach().cpu() for n, p in model.named_parameters()}


def agreement(data: ClipSet, weights, cuda: bool) -> None:
    """Each path's error against float64 on the CPU, on one training step."""
    frames, lengths, labels, _ = next(iter(batches(data, 16, True, 0, 1)))
    torch.manual_seed(0)
    model = build_model("full")

    def copy():
        m = build_model("full")
        m.load_state_dict(model.state_dict())
        return m

    cpu = torch.device("cpu")
    l64, g64 = one_step_grads(copy().double(), frames.double(), lengths, labels, weights.double(), cpu)
    paths = {"CPU fp32": (model, cpu)}
    if cuda:
        paths["CUDA fp32 (cuDNN may use TF32)"] = (copy(), torch.device("cuda"))
    scale = max(float(g.abs().max()) for g in g64.values())
    for name, (model, device) in paths.items():
        logits, grads = one_step_grads(model, frames, lengths, labels, weights, device)
        # relative to each parameter's largest true gradient, where that is not ~0 (biases in front of
        # a batch norm, and what the non-local block's zero-initialised BN blocks, have exactly 0)
        rel = sorted(
            float((grads[n] - g64[n]).abs().max() / g64[n].abs().max())
            for n in g64
            if float(g64[n].abs().max()) > 1e-6 * scale
        )
        print(
            f"agree: {name} vs float64: logits max difference {float((logits.double() - l64).abs().max()):.1e}; "
            f"gradients relative error median {rel[len(rel) // 2]:.1e}, largest {rel[-1]:.1e} "
            f"({len(rel)} parameters)"
        )


def epochs(data: ClipSet, weights, device: torch.device, amp: bool, n: int, batch: int) -> None:
    torch.manual_seed(0)
    model = build_model("full").to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=0.005)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, m = [], {}
    for e in range(1, n + 1):
        t0 = time.perf_counter()
        m = train_one_epoch(model, data, opt, weights, device, batch_size=batch, seed=0, epoch=e, amp=amp)
        ev = evaluate(model, data, device, amp=amp)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    mem = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if device.type == "cuda" else ""
    print(
        f"epoch ({device.type}{', amp bf16' if amp else ', fp32'}): train+evaluate {min(times):.2f} s "
        f"(best of {n}; first {times[0]:.2f} s){mem}; train loss {m['train_loss']:.4f}, "
        f"train accuracy {m['train_acc']:.3f}, accuracy {ev['accuracy']:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, help="a preprocessing cache folder")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    if not (Path(a.cache) / "meta.json").is_file():
        ap.error(f"--cache {a.cache}: not a preprocessing cache (no meta.json there)")
    cache = FrameCache(a.cache)
    data = ClipSet.from_cache(cache, cache.usable)
    weights = class_weights(data.labels)
    cuda = torch.cuda.is_available()
    print(
        f"torch {torch.__version__}; {torch.cuda.get_device_name() if cuda else 'no GPU'}; "
        f"{len(data)} clips, {int(data.lengths.sum())} frames; CPU threads {torch.get_num_threads()}"
    )
    agreement(data, weights, cuda)
    if cuda:
        epochs(data, weights, torch.device("cuda"), False, a.epochs, a.batch)
        epochs(data, weights, torch.device("cuda"), True, a.epochs, a.batch)
    epochs(data, weights, torch.device("cpu"), False, a.epochs, a.batch)


if __name__ == "__main__":
    main()
