"""The embedded default job (`make demo`): builds the full RealSmileNet and runs one training
step on a small random batch of variable-length clips, printing what it did."""
from __future__ import annotations

import argparse
import time

import torch

from .loss import class_weights, smile_loss
from .model import build_model, count_parameters


def model_smoke(variant: str = "full", batch: int = 4, max_frames: int = 12, resolution: int = 48,
                seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = build_model(variant, in_channels=3, resolution=resolution)
    frames = torch.rand(batch, max_frames, 3, resolution, resolution)   # (B, T, C, H, W)
    lengths = torch.randint(max_frames // 2, max_frames + 1, (batch,))
    lengths[0] = max_frames
    labels = torch.arange(batch) % 2
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    loss = smile_loss(model.logits(frames, lengths), labels, class_weights(labels))
    loss.backward()
    opt.step()
    return {"variant": variant, "parameters": count_parameters(model), "loss": loss.item(),
            "step_seconds": time.perf_counter() - t0, "batch": batch, "lengths": lengths.tolist()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--variant", default="full")
    args = ap.parse_args(argv)
    r = model_smoke(args.variant)
    print(f"rsnet demo: {r['variant']} RealSmileNet, {r['parameters']:,} trainable parameters")
    print(f"  one training step on {r['batch']} random clips of lengths {r['lengths']} at 48x48: "
          f"loss {r['loss']:.4f}, {r['step_seconds'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
