"""Ray Tune against running the same trials one after another; or GPU fractions.

    python bench/sweep.py [--trials 8 --epochs 30 --out /tmp/rsnet-bench-sweep]
    python bench/sweep.py --gpu-fractions 1 0.5 0.25 0.125 [--trials 16 --num-gpus N]

8 equal trials (tiny synthetic UvA-NEMO, full model, seeds 0..7, 1 CPU and 1 thread each):
first serially in this process, then as a sweep on a local Ray with every core. Prints both
wall times, their ratio (target <= 0.6 on 2 CPUs), and Ray's overhead per trial: the extra
core-seconds each trial costs under Ray, (ray_wall * cores - serial_wall) / trials.

--gpu-fractions runs the same trials as one sweep per fraction (`resources: {gpu: f}`: 1/f
trials share a GPU) on a local Ray and prints trials per hour for each, against gpu 1. On a
machine without CUDA, --num-gpus offers Ray logical GPUs (the trials then run on the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def write_sweep(path: Path, trials: int, epochs: int, gpu: float = 0) -> Path:
    path.write_text(
        f"name: bench\nsynthetic: {{size: tiny, seed: 0}}\n"
        f"defaults: {{epochs: {epochs}, batch_size: 8, fold: 1}}\n"
        f"axes: {{dataset: [uvanemo], fold: [1], seed: {trials}}}\nresources: {{cpu: 1, gpu: {gpu}}}\n"
    )
    return path


def gpu_fractions(a, out: Path, common: list[str]) -> None:
    """The same trials at each GPU fraction: wall time and trials per hour (Ray's start included)."""
    import torch

    gpus = a.num_gpus if a.num_gpus is not None else torch.cuda.device_count()
    extra = ["--num-gpus", str(gpus), "--num-cpus", str(os.cpu_count())]
    rows = []
    for f in a.gpu_fractions:
        sweep = write_sweep(out / f"bench-gpu{f}.yaml", a.trials, a.epochs, f)
        t0 = time.perf_counter()
        results = out / "results" / f"gpu{f}"
        cmd = [sys.executable, "-m", "rsnet.sweep", str(sweep), "--results", str(results), *common, *extra]
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        rows.append((f, wall, a.trials / wall * 3600))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA: trials on the CPU"
    print(f"{a.trials} trials x {a.epochs} epochs, {gpus} GPU(s) offered to Ray ({device}), {os.cpu_count()} cores")
    for f, wall, per_hour in rows:
        print(f"gpu {f:<6} {wall:7.1f} s  {per_hour:7.0f} trials/hour  ({per_hour / rows[0][2]:.2f}x gpu {rows[0][0]})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default="/tmp/rsnet-bench-sweep")
    ap.add_argument("--gpu-fractions", type=float, nargs="+", help="trials per hour at each GPU fraction")
    ap.add_argument("--num-gpus", type=int, default=None, help="with --gpu-fractions: GPUs to offer Ray")
    a = ap.parse_args()
    out = Path(a.out)
    shutil.rmtree(out / "results", ignore_errors=True)  # the bench's own scratch results only
    out.mkdir(parents=True, exist_ok=True)
    sweep = write_sweep(out / "bench.yaml", a.trials, a.epochs)
    common = ["--data-root", str(out / "data"), "--cache", str(out / "cache")]
    # data and cache first, not timed
    subprocess.run(
        [sys.executable, "-m", "rsnet.sweep", str(sweep), "--dry-run", *common], check=True, capture_output=True
    )
    from rsnet.runtime import configure_process
    from rsnet.sweep.__main__ import prepare_data
    from rsnet.sweep.spec import load_sweep
    from rsnet.trial import run_trial

    spec = load_sweep(sweep)
    trials = spec.trials(out / "data")
    for t in trials:
        t.config = t.config.replace(cache=str(out / "cache"), threads=1)
    prepare_data(spec, trials, out / "data", str(out / "cache"))
    if a.gpu_fractions:
        return gpu_fractions(a, out, common)

    configure_process(1)  # as each Ray trial is: 1 CPU
    t0 = time.perf_counter()
    for t in trials:
        run_trial(t.config, out / "results" / "serial" / t.name)
    serial = time.perf_counter() - t0

    t0, t_ray = time.perf_counter(), time.time()
    subprocess.run(
        [sys.executable, "-m", "rsnet.sweep", str(sweep), "--results", str(out / "results" / "ray"), *common],
        check=True,
        capture_output=True,
    )
    ray_wall = time.perf_counter() - t0
    cores = os.cpu_count() or 1
    print(f"{len(trials)} trials x {a.epochs} epochs, 1 CPU each, {cores} cores")
    print(f"serial: {serial:.1f} s   ray: {ray_wall:.1f} s (including Ray's start and stop)")
    print(f"ray / serial: {ray_wall / serial:.2f} (target <= 0.6)")
    print(f"Ray overhead: {(ray_wall * cores - serial) / len(trials):.2f} core-seconds per trial")
    # split: what each trial costs under Ray (its own time over the serial one, the gap before
    # the next on its worker) and what the sweep pays once (start: command to first trial; stop)
    runs = []
    for t in trials:
        d = out / "results" / "ray" / "bench" / "trials" / t.name
        start = json.loads((d / "sweep_trial.json").read_text())["attempts"][0]["time"]
        runs.append((start, (d / "result.json").stat().st_mtime))
    own = sum(e - s for s, e in runs)
    ends = sorted(e for _, e in runs)
    gaps = [s - max([e for e in ends if e <= s], default=s) for s, _ in sorted(runs)[cores:]]
    first, last = min(s for s, _ in runs), max(ends)
    print(
        f"  per trial: {(own - serial) / len(trials):+.2f} s of its own time against serial, "
        f"{sum(gaps) / max(1, len(gaps)):.2f} s between trials on a worker"
    )
    print(
        f"  once per sweep: {first - t_ray:.1f} s from the command to the first trial (imports, caches, "
        f"Ray's start, a worker's start), {t_ray + ray_wall - last:.1f} s after the last (Ray's stop)"
    )


if __name__ == "__main__":
    main()
