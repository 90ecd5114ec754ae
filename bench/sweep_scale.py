"""The sweep driver and the report at the paper's scale, without training.

    python bench/sweep_scale.py [--trials 100 1000 4590] [--epochs 60] [--out /tmp/rsnet-bench-scale]

BENCH ONLY: `fake_trial` is a Ray Tune trainable that DOES NOT TRAIN. It writes what a real trial
writes (config.json, sweep_trial.json, metrics.jsonl rewritten every epoch, predictions.csv of
the trial's real test videos, result.json) and reports every epoch to Tune, so that the driver
does a real sweep's work: Ray Tune, rsnet's callbacks, trials.csv, the experiment's snapshots
and its restore. The trials are the first N of the paper's five sweeps (benchmark, ablations,
fps_resolution, cross_domain, subgroups: 4,590 together); their test videos are UvA-NEMO's real
folds (make_split on the shipped protocol) and, for the other datasets, as many as theirs hold.

For each N, in a fresh process: the sweep stopped (SIGINT, as Ctrl-C) once half its trials have
finished, then the same sweep restored and run to its end; then the report over the results,
laid out as the five sweeps. Prints per N the driver's wall and CPU seconds per trial (both runs
together), its peak memory, the time from the restore's start to its first trial, whether every
trial finished exactly once (a trial finished before the stop is never run again), and the
report's time and peak memory. The last line is `per-trial driver cost ratio (largest/smallest
N): X` (driver CPU seconds per trial). Targets: X <= 1.25; driver memory growth under 50 KB per
trial; report time per trial within 1.5x from 360 to 4,590 trials, its peak under 1 GB.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve()
SWEEPS = ("benchmark", "ablations", "fps_resolution", "cross_domain", "subgroups")
TEST_VIDEOS = {"bbc": 2, "mmi": 25, "spos": 11}  # per test fold: 20, 225 and 80 videos over 10, 9, 7 folds
ALL_VIDEOS = {"bbc": 20, "mmi": 225, "spos": 80}  # a cross:<target> split tests on all of the target


def planned(n: int):
    """The first n trials of the paper's five sweeps, each named '<sweep>--<trial>' (one driver
    runs them all), and the sweep each comes from."""
    from rsnet.sweep.spec import GRIDS, Trial, load_sweep

    out = []
    for name in SWEEPS:
        for t in load_sweep(GRIDS / f"{name}.yaml").trials("/data"):
            out.append((name, Trial(f"{name}--{t.name}", t.setting, t.config)))
    return out[:n]


def test_videos(cfg: dict) -> "pd.DataFrame":  # noqa: F821
    """video, subject, label of the trial's test fold: UvA-NEMO's real one, else made up."""
    import pandas as pd

    from rsnet.data.adapters import age_group
    from rsnet.data.splits import make_split, parse_split
    from rsnet.protocols import uvanemo_table

    split = parse_split(cfg["split"])
    if split.target:
        n = ALL_VIDEOS[split.target]
        return pd.DataFrame({"video": [f"{split.target}-{i}" for i in range(n)], "subject": "x", "label": 1})
    if cfg["dataset"] != "uvanemo":
        n, k = TEST_VIDEOS[cfg["dataset"]], cfg["fold"]
        return pd.DataFrame(
            {"video": [f"{k}-{i}" for i in range(n)], "subject": str(k), "label": [i % 2 for i in range(n)]}
        )
    t = uvanemo_table()
    videos = t.rename(columns={"video": "id"}).assign(age_group=t.age.map(age_group))
    test = make_split(cfg["split"], cfg["fold"], "uvanemo", videos).test
    return pd.DataFrame({"video": test.id, "subject": test.subject, "label": test.label})


def fake_trial(spec: dict, epochs: int) -> None:
    """BENCH ONLY, DOES NOT TRAIN: a trial's files and per-epoch reports, with made-up numbers."""
    import numpy as np

    from rsnet.atomic import write_json_atomic, write_text_atomic
    from rsnet.sweep.runner import report_epoch

    cfg, out = spec["config"], Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads((out / "sweep_trial.json").read_text()) if (out / "sweep_trial.json").exists() else None
    meta = meta or {"setting": spec["setting"], "attempts": []}
    meta["attempts"].append({"pid": os.getpid(), "time": time.time()})
    write_json_atomic(out / "sweep_trial.json", meta)
    if (out / "result.json").exists():  # as the real trainable: a finished trial is not run again
        return
    write_json_atomic(out / "config.json", cfg)
    rng = np.random.default_rng(cfg["seed"] * 1000 + cfg["fold"])
    history = []
    for epoch in range(1, epochs + 1):
        acc = float(min(0.95, 0.5 + epoch / (2 * epochs) + rng.normal(0, 0.02)))
        row = {"epoch": epoch, "train_loss": 1 / epoch, "train_acc": acc, "test_acc": acc, "seconds": 0.01}
        history.append(row)
        write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        # what the real trainable tells Tune, with its checkpoint epochs
        report_epoch(row, out if epoch % cfg["checkpoint_every"] == 0 or epoch == epochs else None)
    test = test_videos(cfg)
    predicted = np.where(rng.random(len(test)) < history[-1]["test_acc"], test.label, 1 - test.label)
    test.assign(score=predicted * 0.8 + 0.1, predicted=predicted).to_csv(out / "predictions.csv", index=False)
    accuracy = float((predicted == test.label).mean())
    result = {
        "status": "finished",
        "accuracy": accuracy,
        "selected_epoch": epochs,
        "final_epoch_accuracy": history[-1]["test_acc"],
        "optimistic_accuracy": max(h["test_acc"] for h in history),
        "test_videos": len(test),
        "test_dataset": cfg["dataset"],
        "synthetic": True,
        "wall_seconds": 0.0,
        "epochs": epochs,
        "config": cfg,
    }
    write_json_atomic(out / "result.json", result)


class StopAtHalf:
    """Sends this process SIGINT (as Ctrl-C) once `half` trials have finished."""

    def __new__(cls, half: int):
        from ray import tune

        class _Stop(tune.Callback):
            def __init__(self):
                self.done = 0

            def on_trial_complete(self, iteration, trials, trial, **info):
                self.done += 1
                if self.done == half:
                    os.kill(os.getpid(), signal.SIGINT)

        return _Stop()


class Starts:
    """Notes when the first trial starts (the restore's end) and which trials Tune launches."""

    def __new__(cls):
        from ray import tune

        class _Starts(tune.Callback):
            at, names = None, []

            def on_trial_start(self, iteration, trials, trial, **info):
                self.at = self.at or time.perf_counter()
                self.names.append(trial.config["trial"])

        return _Starts()


def one(n: int, epochs: int, out: Path) -> dict:
    """The driver on n trials in this process: stopped at half, restored; figures as a dict."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from rsnet.sweep.runner import run_on_ray
    from rsnet.sweep.spec import GRIDS, load_sweep

    trials = planned(n)
    sweep = load_sweep(GRIDS / "benchmark.yaml")
    sweep_dir = out / "driver"
    (sweep_dir / "trials").mkdir(parents=True)
    plain = [t for _, t in trials]
    fn = functools.partial(fake_trial, epochs=epochs)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run_on_ray(sweep, plain, sweep_dir, bar=False, trainable_fn=fn, callbacks=[StopAtHalf(n // 2)])
    first_done = {t.name for t in plain if (sweep_dir / "trials" / t.name / "result.json").exists()}
    restart, first = time.perf_counter(), Starts()
    run_on_ray(sweep, plain, sweep_dir, bar=False, trainable_fn=fn, callbacks=[first])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    attempts = {
        t.name: len(json.loads((sweep_dir / "trials" / t.name / "sweep_trial.json").read_text())["attempts"])
        for t in plain
    }
    finished = sum((sweep_dir / "trials" / t.name / "result.json").exists() for t in plain)
    return {
        "n": n,
        "wall_per_trial": wall / n,
        "cpu_per_trial": cpu / n,
        "peak_mib": rss / 1024,
        "growth_kib_per_trial": (rss - rss0) / n,
        "stopped_with": len(first_done),
        "restore_seconds": (first.at or time.perf_counter()) - restart,
        "all_finished": finished == n,
        "rerun_after_finishing": sum(attempts[name] > 1 for name in first_done),
        "launched_after_finishing": len(set(first.names) & first_done),
        "trials_dir": str(sweep_dir / "trials"),
    }


def lay_out_as_sweeps(n: int, out: Path) -> Path:
    """The trials moved into results/<sweep>/trials/<name>, each sweep with its file and plan."""
    results = out / "results"
    by_sweep: dict[str, list] = {}
    for sweep, t in planned(n):
        d = results / sweep / "trials"
        d.mkdir(parents=True, exist_ok=True)
        name = t.name.split("--", 1)[1]
        (out / "driver" / "trials" / t.name).rename(d / name)
        by_sweep.setdefault(sweep, []).append({"name": name, "setting": t.setting, "config": t.config.to_dict()})
    from rsnet.sweep.spec import GRIDS

    for sweep, rows in by_sweep.items():
        shutil.copy(GRIDS / f"{sweep}.yaml", results / sweep / "sweep.yaml")
        (results / sweep / "plan.json").write_text(json.dumps({"trials": rows}))
    return results


# the report command in a process of its own, which then prints its peak memory (KiB)
REPORT = "import resource, sys; from rsnet.report.__main__ import main; rc = main(sys.argv[1:]); "
REPORT += "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[100, 1000, 4590])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default="/tmp/rsnet-bench-scale")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one N in this process
    a = ap.parse_args()
    out = Path(a.out)
    if a.one:
        print(json.dumps(one(a.one, a.epochs, out / f"n{a.one}")))
        return
    shutil.rmtree(out, ignore_errors=True)  # the bench's own scratch folder only
    rows = []
    for n in a.trials:
        p = subprocess.run(
            [sys.executable, str(BENCH), "--one", str(n), "--epochs", str(a.epochs), "--out", str(out)],
            capture_output=True,
            text=True,
        )
        if p.returncode:
            sys.exit(f"N={n}: the driver failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        results = lay_out_as_sweeps(n, out / f"n{n}")
        t0 = time.perf_counter()
        rep = subprocess.run([sys.executable, "-c", REPORT, str(results)], capture_output=True, text=True)
        r["report_seconds"] = time.perf_counter() - t0
        if rep.returncode:
            sys.exit(f"N={n}: the report failed:\n{rep.stderr[-3000:]}")
        r["report_peak_mib"] = int(rep.stdout.strip().splitlines()[-1]) / 1024
        rows.append(r)
        print(
            f"N={n:5d}: driver {r['wall_per_trial'] * 1000:6.1f} ms wall, {r['cpu_per_trial'] * 1000:6.1f} ms CPU per "
            f"trial; peak {r['peak_mib']:.0f} MiB (+{r['growth_kib_per_trial']:.1f} KiB per trial); stopped at "
            f"{r['stopped_with']} finished, restored in {r['restore_seconds']:.1f} s; every trial finished once: "
            f"{r['all_finished'] and r['rerun_after_finishing'] == 0} (launched again after finishing: "
            f"{r['launched_after_finishing']}); report {r['report_seconds']:.1f} s "
            f"({r['report_seconds'] / n * 1000:.1f} ms per trial), peak {r['report_peak_mib']:.0f} MiB",
            flush=True,
        )
    if len(rows) > 1:
        big = [r for r in rows if r["n"] >= 360]
        if len(big) > 1:
            per = [r["report_seconds"] / r["n"] for r in big]
            ratio = per[-1] / per[0]
            print(f"report time per trial ratio ({big[-1]['n']}/{big[0]['n']} trials): {ratio:.2f} (target <= 1.5)")
        growth = (rows[-1]["peak_mib"] - rows[0]["peak_mib"]) * 1024 / (rows[-1]["n"] - rows[0]["n"])
        print(f"driver memory growth: {growth:.1f} KiB per trial (target < 50 KB)")
        ratio = rows[-1]["cpu_per_trial"] / rows[0]["cpu_per_trial"]
        print(f"per-trial driver cost ratio (largest/smallest N): {ratio:.2f}")


if __name__ == "__main__":
    main()
