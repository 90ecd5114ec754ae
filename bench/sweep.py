"""Ray Tune against running the same trials one after another.

    python bench/sweep.py [--trials 8 --epochs 30 --out /tmp/rsnet-bench-sweep]

8 equal trials (tiny synthetic UvA-NEMO, full model, seeds 0..7, 1 CPU and 1 thread each):
first serially in this process, then as a sweep on a local Ray with every core. Prints both
wall times, their ratio (target <= 0.6 on 2 CPUs), and Ray's overhead per trial: the extra
core-seconds each trial costs under Ray, (ray_wall * cores - serial_wall) / trials.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default="/tmp/rsnet-bench-sweep")
    a = ap.parse_args()
    out = Path(a.out)
    shutil.rmtree(out / "results", ignore_errors=True)  # the bench's own scratch results only
    sweep = out / "bench.yaml"
    out.mkdir(parents=True, exist_ok=True)
    sweep.write_text(
        f"name: bench\nsynthetic: {{size: tiny, seed: 0}}\n"
        f"defaults: {{epochs: {a.epochs}, batch_size: 8, fold: 1}}\n"
        f"axes: {{dataset: [uvanemo], fold: [1], seed: {a.trials}}}\nresources: {{cpu: 1}}\n"
    )
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

    configure_process(1)  # as each Ray trial is: 1 CPU
    t0 = time.perf_counter()
    for t in trials:
        run_trial(t.config, out / "results" / "serial" / t.name)
    serial = time.perf_counter() - t0

    t0 = time.perf_counter()
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


if __name__ == "__main__":
    main()
