"""The embedded default job (`make demo`): the whole chain on synthetic data.

1. builds the full RealSmileNet and runs one training step on a random batch (a smoke check);
2. runs the `demo` sweep (sweeps/demo.yaml) on a local Ray: it generates a small synthetic
   UvA-NEMO look-alike, prepares its cache, and trains/evaluates the full model against two
   temporal controls (frames shuffled in time; one frame per video) on five folds; results
   land in results/demo/;
3. writes the report (rsnet.report) into results/demo/report/ and prints where it is, then each
   setting's accuracy pooled over the held-out videos with its 95 % interval.
Synthetic data: the numbers it prints are not the paper's."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from .loss import class_weights, smile_loss
from .model import build_model, count_parameters
from .provenance import synthetic_note


def model_smoke(
    variant: str = "full", batch: int = 4, max_frames: int = 12, resolution: int = 48, seed: int = 0
) -> dict:
    torch.manual_seed(seed)
    model = build_model(variant, in_channels=3, resolution=resolution)
    frames = torch.rand(batch, max_frames, 3, resolution, resolution)  # (B, T, C, H, W)
    lengths = torch.randint(max_frames // 2, max_frames + 1, (batch,))
    lengths[0] = max_frames
    labels = torch.arange(batch) % 2
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    loss = smile_loss(model.logits(frames, lengths), labels, class_weights(labels))
    loss.backward()
    opt.step()
    return {
        "variant": variant,
        "parameters": count_parameters(model),
        "loss": loss.item(),
        "step_seconds": time.perf_counter() - t0,
        "batch": batch,
        "lengths": lengths.tolist(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--variant", default="full")
    ap.add_argument("--model-only", action="store_true", help="only the model smoke check")
    args, sweep_args = ap.parse_known_args(argv)
    r = model_smoke(args.variant)
    print(f"rsnet demo: {r['variant']} RealSmileNet, {r['parameters']:,} trainable parameters")
    print(
        f"  one training step on {r['batch']} random clips of lengths {r['lengths']} at 48x48: "
        f"loss {r['loss']:.4f}, {r['step_seconds'] * 1000:.0f} ms"
    )
    if args.model_only:
        return 0
    from .sweep.__main__ import main as sweep_main
    from .sweep.__main__ import parser as sweep_parser

    argv_sweep = ["--grid", "demo", *sweep_args]
    status = sweep_main(argv_sweep)
    root = Path(sweep_parser().parse_args(argv_sweep).results)  # the sweep's own --results
    print(
        f"rsnet demo: per-trial files in {root}/demo/trials/, one row per trial in {root}/demo/trials.csv;\n"
        f"  curves: tensorboard --logdir {root}/demo/trials"
    )
    from .report import build_report

    r = build_report(root / "demo")
    print(f"rsnet demo: report in {r['out']}/ -> open {r['out']}/index.md{synthetic_note(r['synthetic'])}")
    print(pooled_summary(root / "demo", r["out"]))
    return status


def pooled_summary(sweep_dir: Path, report_dir: Path) -> str:
    """Each setting's accuracy pooled over its held-out videos, with the report's 95 % interval
    (bootstrap over the test videos), as lines to print."""
    trials = pd.read_csv(sweep_dir / "trials.csv")
    trials = trials[trials.status == "finished"]
    cells = pd.read_csv(report_dir / "cells.csv").set_index("setting")
    lines = []
    for setting, g in trials.groupby("setting", sort=False):
        videos = int(g.test_videos.sum())
        pooled = (g.accuracy * g.test_videos).sum() / videos
        lo, hi = cells.loc[setting, ["video_low", "video_high"]] if setting in cells.index else (float("nan"),) * 2
        lines.append(f"  {setting:<16} {pooled:6.1%}  [{lo:.1%}, {hi:.1%}]  over {videos} videos, {len(g)} folds")
    head = "rsnet demo: held-out accuracy pooled over each setting's test videos [95 % interval]"
    return "\n".join([head + synthetic_note(bool(trials.synthetic.any())), *lines])


if __name__ == "__main__":
    raise SystemExit(main())
