"""python -m rsnet.sweep (--grid NAME | FILE) [--data-root DIR] [--results DIR] [--address auto]

Runs a sweep (sweeps/NAME.yaml) on Ray Tune: prepares every dataset's cache once, then one
trial per (dataset, split, fold, seed, setting, fps, resolution, ...) of the file. Results land
in <results>/<name>/: trials/<trial>/ (each trial's files), trials.csv (one row per trial, kept
current), ray/ (Tune's experiment). Rerunning the same command resumes a stopped sweep.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from ..atomic import write_json_atomic
from ..provenance import synthetic_note
from .spec import Sweep, SweepError, Trial, load_sweep, resolve_sweep_path


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rsnet.sweep", description=__doc__.split("\n\n")[1])
    ap.add_argument("file", nargs="?", help="a sweep YAML file")
    ap.add_argument("--grid", help="a sweep by name: sweeps/NAME.yaml")
    ap.add_argument(
        "--data-root",
        default=os.environ.get("RSNET_DATA", "data"),
        help="where datasets live, as <root>/<dataset>/ (default $RSNET_DATA or ./data)",
    )
    ap.add_argument(
        "--results",
        default=os.environ.get("RSNET_RESULTS", "results"),
        help="results root (default $RSNET_RESULTS or ./results)",
    )
    ap.add_argument("--cache", default=None, help="preprocessing cache root (default $RSNET_CACHE or ./cache)")
    ap.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="join a running Ray cluster ('auto' or host:port); default: start a local one",
    )
    ap.add_argument("--num-cpus", type=int, default=None, help="local Ray only: CPUs to offer trials")
    ap.add_argument(
        "--wait-for-resources",
        action="store_true",
        help="start even if no node can hold a trial's resources (an autoscaling cluster that will grow)",
    )
    ap.add_argument(
        "--num-gpus",
        type=int,
        default=None,
        help="local Ray only: GPUs to offer trials (default: those CUDA sees; with none, a trial given "
        "GPUs by its sweep's resources runs on the CPU and says so)",
    )
    ap.add_argument("--dry-run", action="store_true", help="list the trials and their count, run nothing")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped sweep (the default behaviour of rerunning; kept for clarity)",
    )
    ap.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the sweep's progress bar on stderr (default: when stderr is a terminal)",
    )
    ap.add_argument("--max-trials", type=int, default=None, help="run only the first N trials (smoke tests)")
    ap.add_argument("--epochs", type=int, default=None, help="override every trial's epochs (smoke tests)")
    ap.add_argument(
        "--folds", type=int, nargs="+", default=None, help="only these folds of the fold axis (smoke tests)"
    )
    ap.add_argument(
        "--synthetic-size",
        choices=("tiny", "small", "full"),
        default=None,
        help="synthetic sweeps only: corpus size instead of the file's (tiny for smoke tests)",
    )
    ap.add_argument(
        "--synthetic-seed",
        type=int,
        default=None,
        help="synthetic sweeps only: corpus seed instead of the file's (data in synthetic-<size>-seed<N>/)",
    )
    cl = ap.add_argument_group("Slurm (with --slurm: submits slurm/launch_ray.sh through submitit)")
    slurm = [
        cl.add_argument("--slurm", action="store_true", help="submit this sweep as a Slurm job instead of running it"),
        cl.add_argument("--partition", default=None),
        cl.add_argument("--nodes", type=int, default=1),
        cl.add_argument("--gpus-per-node", type=int, default=0),
        cl.add_argument("--cpus-per-task", type=int, default=8, help="CPUs per node for Ray"),
        cl.add_argument("--time", type=int, default=24 * 60, help="minutes"),
        cl.add_argument("--wait", action="store_true", help="wait for the job to end"),
    ]
    ap.slurm_options = {action.dest for action in slurm}  # the submission's own: not forwarded to the job
    return ap


def prepare_data(sweep, trials, data_root: Path, cache: str | None) -> None:
    """Generate synthetic corpora if the sweep asks, check the datasets, build each cache once."""
    from ..data import load_or_build

    if sweep.synthetic:
        from ..synth import generate_corpus

        opts = dict(sweep.synthetic)
        size, seed = opts.pop("size", "small"), opts.pop("seed", 0)
        for ds in sorted(sweep.datasets()):
            s = generate_corpus(ds, size, sweep.data_dir(data_root, ds), seed=seed, **opts)
            print(f"sweep: synthetic {ds}/{size}: {s['clips']} clips at {s['root']}")
    for ds in sorted(sweep.datasets()):
        if not sweep.data_dir(data_root, ds).exists():
            raise SweepError(
                f"dataset {ds} not found at {sweep.data_dir(data_root, ds)}: put it there, or point "
                f"--data-root / $RSNET_DATA at the folder holding {ds}/"
            )
    needed = {}
    for t in trials:
        c = t.config
        prep = c.prep()
        needed[(c.dataset, c.root, prep, c.mmi_selection)] = c.listing(c.dataset)
        if c.target():
            needed[(c.target(), c.target_root, prep, c.mmi_selection)] = c.listing(c.target())
    for (ds, root, prep, _), listing in needed.items():
        store = load_or_build(ds, root, prep, cache, **listing)
        print(f"sweep: cache {store.path.name}: {store.meta['videos']} videos, {store.meta['failed']} skipped")


def write_plan(sweep_dir: Path, planned) -> None:
    """plan.json: every trial this sweep defines with this run's overrides (--epochs), including
    those --max-trials leaves for later, so that the report knows what a complete sweep holds."""
    write_json_atomic(
        sweep_dir / "plan.json",
        {"trials": [{"name": t.name, "setting": t.setting, "config": t.config.to_dict()} for t in planned]},
    )


def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        sweep, planned = load(a)
    except (SweepError, ValueError) as e:
        print(f"sweep: error: {e}", file=sys.stderr)
        return 2
    trials = planned[: a.max_trials] if a.max_trials else planned
    if a.dry_run:
        print("\n".join([*(t.name for t in trials), f"sweep {sweep.name}: {len(trials)} trials ({sweep.path})"]))
        return 0
    if a.slurm:
        from ..slurm import submit_sweep

        return submit_sweep(sweep, a)
    return run(sweep, planned, trials, a)


def parse_args(argv=None) -> argparse.Namespace:
    """The options, with every path absolute (Ray runs trials in other working directories)."""
    from ..data.cache import default_cache_root

    a = parser().parse_args(argv)
    if not (a.file or a.grid):
        parser().error("give a sweep file or --grid NAME")
    a.data_root = str(Path(a.data_root).resolve())
    a.results = str(Path(a.results).resolve())
    a.cache = str(Path(a.cache).resolve() if a.cache else default_cache_root().resolve())
    return a


def load(a: argparse.Namespace) -> tuple[Sweep, list[Trial]]:
    """The sweep file with the command's overrides, and every trial it plans (--folds applied)."""
    sweep = load_sweep(resolve_sweep_path(a.grid or a.file), a.data_root)
    if sweep.synthetic is not None:
        given = {"size": a.synthetic_size, "seed": a.synthetic_seed}
        sweep.synthetic.update({k: v for k, v in given.items() if v is not None})
    planned = [t for t in sweep.trials(a.data_root) if not a.folds or t.config.fold in a.folds]
    for t in planned:
        t.config = t.config.replace(epochs=a.epochs or t.config.epochs, cache=a.cache)
    return sweep, planned


def run(sweep: Sweep, planned: list[Trial], trials: list[Trial], a: argparse.Namespace) -> int:
    """Prepare the data, run `trials` on Ray, print the summary: 0 when every one finished, 1
    when some did not, 2 for a sweep that cannot run, 128 + the signal's number when stopped."""
    if not a.address:
        # a local Ray: its node address is 127.0.0.1, where it then binds every server (Ray's
        # switch for a local-only Ray; read when Ray is first imported, so set before that)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from .progress import Stop  # imports Ray

    sweep_dir = Path(a.results) / sweep.name
    (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)
    shutil.copy2(sweep.path, sweep_dir / "sweep.yaml")
    write_plan(sweep_dir, planned)
    t0, table = time.time(), None
    Stop.install()
    try:
        prepare_data(sweep, trials, Path(a.data_root), a.cache)
        from .runner import run_on_ray

        if sweep.search:  # nested CV: each outer trial's search, then its tuned trial beside it
            from .nested import run_searches

            tuned = run_searches(sweep, trials, sweep_dir, a.address, a.num_cpus, a.num_gpus, a.wait_for_resources)
            trials = [*trials, *tuned]
            write_plan(sweep_dir, [*planned, *tuned])

        print(
            f"sweep {sweep.name}: {len(trials)} trials on Ray "
            f"({'cluster ' + a.address if a.address else 'local'}) -> {sweep_dir}\n"
            f"sweep {sweep.name}: curves as trials run: tensorboard --logdir {sweep_dir / 'trials'}",
            flush=True,
        )
        table = run_on_ray(
            sweep,
            trials,
            sweep_dir,
            a.address,
            a.num_cpus,
            a.num_gpus,
            bar=a.progress_bar,
            wait_for_resources=a.wait_for_resources,
        )
    except (SweepError, ValueError) as e:
        print(f"sweep: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a signal before Tune ran, or a second one
        Stop.signal = Stop.signal or "SIGINT"
    return summary(sweep, sweep_dir, trials, table, time.time() - t0)


def summary(sweep: Sweep, sweep_dir: Path, trials: list[Trial], table, seconds: float) -> int:
    """The sweep's last line, and its exit status (see run)."""
    from .progress import Stop
    from .table import write_table

    table = write_table(sweep_dir) if table is None else table
    mine = table[table.trial.isin({t.name for t in trials})]
    done, failed = (mine.status == "finished").sum(), (mine.status == "failed").sum()
    counts = f"{done}/{len(trials)} finished, {failed} failed"
    if Stop.signal:
        print(
            f"sweep {sweep.name}: stopped by {Stop.signal}: {counts}; the same command continues it "
            f"({sweep_dir / 'trials.csv'})",
            flush=True,
        )
        return 128 + getattr(signal, Stop.signal)
    mean = mine.accuracy.mean() if done else float("nan")
    print(
        f"sweep {sweep.name}: {counts}, mean accuracy {mean:.4f}, {seconds / 60:.1f} min -> "
        f"{sweep_dir / 'trials.csv'}{synthetic_note(bool(sweep.synthetic))}"
    )
    return 0 if done == len(trials) else 1  # failed, or neither finished nor failed


if __name__ == "__main__":
    sys.exit(main())
