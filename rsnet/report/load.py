"""Read sweep results for the report from the per-trial files alone (config.json, result.json,
failed.json, predictions.csv, metrics.jsonl), whichever backend wrote them: local, Ray or Slurm.

A sweep directory is one that holds `trials/`. When it also holds the `plan.json` (or the
`sweep.yaml`) that the sweep runner writes there, trials the sweep defines but that never
started are listed too (status `not started`), so that a cell knows how many folds and seeds
it should have.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..sweep.spec import SweepError, load_sweep
from ..sweep.table import AXES, COLUMNS, collect
from ..trial import read_history


@dataclass
class SweepResults:
    name: str
    path: Path
    description: str
    trials: pd.DataFrame  # one row per trial (rsnet.sweep.table.COLUMNS + sweep); trial = '<sweep>/<name>'
    predictions: pd.DataFrame  # finished trials' test predictions: trial, video, subject, label, score, predicted
    curves: pd.DataFrame  # metrics.jsonl rows of every trial: trial, epoch, train_loss, ..., test_acc


def find_sweeps(path) -> list[Path]:
    """`path` itself if it is a sweep directory, else every sweep directory directly below it."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such results directory")
    if (path / "trials").is_dir():
        return [path]
    return sorted(p.parent for p in path.glob("*/trials") if p.is_dir())


def _planned(sweep_dir: Path) -> tuple[list[tuple[str, str, dict]], str]:
    """(name, setting, config) of every trial the sweep defines, and its description: from
    plan.json (the runner's list, with its --epochs override) or else from sweep.yaml."""
    description, planned, plan = "", [], sweep_dir / "plan.json"
    if plan.exists():
        planned = [(t["name"], t["setting"], t["config"]) for t in json.loads(plan.read_text())["trials"]]
    spec_path = sweep_dir / "sweep.yaml"
    if spec_path.exists():
        try:
            sweep = load_sweep(spec_path, None if plan.exists() else "/")
            description = sweep.description.strip()
            if not plan.exists():  # expand the file only when the runner left no plan
                planned = [(t.name, t.setting, t.config.to_dict()) for t in sweep.trials("/")]
        except SweepError as e:  # an edited copy: report what the trial directories hold
            print(f"report: {e}; using the trial directories only")
    return planned, description


def _expected(sweep_dir: Path) -> tuple[pd.DataFrame, str]:
    """Rows (status 'not started') for the trials the sweep defines, and its description."""
    planned, description = _planned(sweep_dir)
    rows = [
        {"trial": name, **{k: cfg.get(k) for k in AXES}, "setting": setting, "status": "not started", "epochs_done": 0}
        for name, setting, cfg in planned
    ]
    return pd.DataFrame(rows, columns=COLUMNS), description


def _key(trial_dir: Path) -> str:
    """'<sweep>/<trial>': the same trial name can occur in several sweeps."""
    return f"{trial_dir.parent.parent.name}/{trial_dir.name}"


PREDICTIONS = {"video": str, "subject": str, "label": int, "score": float, "predicted": int}


def _read_predictions(trial_dirs: list[Path]) -> pd.DataFrame:
    """Every predictions.csv, one frame (the csv module: pandas' reader costs ~3 ms a file, most
    of a large report's reading)."""
    columns = {c: [] for c in [*PREDICTIONS, "trial"]}
    for d in trial_dirs:
        f = d / "predictions.csv"
        if not f.exists():
            continue
        with open(f, newline="") as fh:
            rows = list(csv.reader(fh))
        header = rows[0] if rows else []
        if not set(PREDICTIONS) <= set(header):
            raise ValueError(f"{f}: columns {header}, expected {', '.join(PREDICTIONS)}")
        for c in PREDICTIONS:
            i = header.index(c)
            columns[c] += [r[i] for r in rows[1:]]
        columns["trial"] += [_key(d)] * (len(rows) - 1)
    df = pd.DataFrame(columns)
    return df.astype({c: kind for c, kind in PREDICTIONS.items() if c not in ("video", "subject")})


def _read_curves(trial_dirs: list[Path]) -> pd.DataFrame:
    rows = []
    for d in trial_dirs:
        key = _key(d)
        rows += [{**row, "trial": key} for row in read_history(d)]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["trial", "epoch", "train_loss", "test_acc"])


def _one_per_trial(sweep_dir: Path, observed: pd.DataFrame) -> pd.DataFrame:
    """Two directories holding the same trial (a copy: the same setting and result fields) would
    count its test videos twice: the first is kept, the other named and left out."""
    group = observed.groupby(AXES, dropna=False, sort=False).ngroup()
    twice = group.duplicated()
    first = observed.trial.groupby(group).first()
    for i in observed.index[twice]:
        print(f"report: {sweep_dir / 'trials' / observed.trial[i]} holds the same trial as {first[group[i]]}; left out")
    return observed[~twice]


def load_results(sweep_dir) -> SweepResults:
    sweep_dir = Path(sweep_dir)
    observed = collect(sweep_dir)
    expected, description = _expected(sweep_dir)
    # a trial directory killed before its config.json was written: its axes come from the plan
    lacking = observed.dataset.isna()
    if lacking.any():
        plan = expected.set_index("trial")
        for i in observed.index[lacking]:
            if observed.at[i, "trial"] in plan.index:
                for k in AXES:
                    observed.at[i, k] = plan.at[observed.at[i, "trial"], k]
        unknown = observed.dataset.isna()
        for name in observed.trial[unknown]:
            print(f"report: {sweep_dir / 'trials' / name}: no config.json and not in the sweep's plan; left out")
        observed = observed[~unknown]
    observed = _one_per_trial(sweep_dir, observed)
    missing = expected[~expected.trial.isin(observed.trial)]
    trials = pd.concat([observed, missing], ignore_index=True) if len(missing) else observed
    trials = trials.assign(sweep=sweep_dir.name)
    trials["setting"] = trials.setting.fillna("").astype(str)
    trials.loc[trials.setting == "", "setting"] = trials.variant  # no setting axis: name cells by variant
    finished = [sweep_dir / "trials" / t for t in trials.trial[trials.status == "finished"]]
    every = [sweep_dir / "trials" / t for t in trials.trial[trials.status != "not started"]]
    trials["trial"] = sweep_dir.name + "/" + trials.trial
    return SweepResults(
        sweep_dir.name, sweep_dir, description, trials, _read_predictions(finished), _read_curves(every)
    )


def load_all(path) -> list[SweepResults]:
    sweeps = find_sweeps(path)
    if not sweeps:
        raise FileNotFoundError(f"{path}: no sweep results (no <sweep>/trials/ directories)")
    return [load_results(s) for s in sweeps]
