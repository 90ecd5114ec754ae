"""The sweep's tidy table: one row per trial, built from the per-trial files alone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..config import RESULT_FIELDS, saved_values

# the trial's setting name, then every field that can change its result (rsnet.config's roles)
AXES = ["setting", *RESULT_FIELDS]
COLUMNS = [
    "trial",
    *AXES,
    "status",
    "accuracy",
    "optimistic_accuracy",
    "final_epoch_accuracy",
    "selected_epoch",
    "epochs_done",
    "seconds",
    "test_videos",
    "test_dataset",
    "synthetic",
    "error",
]


def trial_row(trial_dir: Path, setting: str = "", config: dict | None = None) -> dict:
    """What one trial directory says about itself: finished, failed, running or pending (with
    `config`, the trial's planned config, where it holds no config.json yet)."""
    trial_dir = Path(trial_dir)
    row = {"trial": trial_dir.name, "setting": setting}
    cfg_path = trial_dir / "config.json"
    if cfg_path.exists() or config:
        # an older config.json: the values it ran with
        cfg = saved_values(json.loads(cfg_path.read_text()) if cfg_path.exists() else config)
        row.update({k: cfg[k] for k in RESULT_FIELDS})
    meta = trial_dir / "sweep_trial.json"
    if meta.exists():
        row["setting"] = json.loads(meta.read_text()).get("setting", setting)
    metrics = trial_dir / "metrics.jsonl"
    row["epochs_done"] = len(metrics.read_text().splitlines()) if metrics.exists() else 0
    if (trial_dir / "result.json").exists():
        r = json.loads((trial_dir / "result.json").read_text())
        row.update(
            status="finished",
            accuracy=r["accuracy"],
            optimistic_accuracy=r["optimistic_accuracy"],
            final_epoch_accuracy=r["final_epoch_accuracy"],
            selected_epoch=r["selected_epoch"],
            seconds=r["wall_seconds"],
            test_videos=r["test_videos"],
            test_dataset=r["test_dataset"],
            synthetic=r["synthetic"],
        )
    elif (trial_dir / "failed.json").exists():
        row.update(status="failed", error=json.loads((trial_dir / "failed.json").read_text()).get("error", ""))
    else:
        row["status"] = "running" if row["epochs_done"] else "pending"
    return row


def collect(sweep_dir: Path) -> pd.DataFrame:
    """Rows for every trial directory under sweep_dir/trials."""
    trials = sorted(p for p in (Path(sweep_dir) / "trials").glob("*") if p.is_dir())
    return pd.DataFrame([trial_row(p) for p in trials], columns=COLUMNS)


def write_table(sweep_dir: Path, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rewrite results/<sweep>/trials.csv (atomic): `df`, or else read from the trial directories."""
    df = collect(sweep_dir) if df is None else df
    with atomic_path(Path(sweep_dir) / "trials.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df


class LiveTable:
    """trials.csv of a running sweep, kept in memory: read from the trial directories once, then
    each row updated from the one trial that changed; written by flush() and otherwise at most
    every `every` seconds, or 20 times as long as the last write took (the table's writes then take
    at most 5 % of the time, whatever its length: its cost per trial does not grow with the sweep)."""

    def __init__(self, sweep_dir: Path, trials, every: float = 5.0):
        self.sweep_dir, self.every, self.written, self.took = Path(sweep_dir), every, 0.0, 0.0
        self.rows = {r["trial"]: r for r in collect(sweep_dir).to_dict("records")}
        for t in trials:  # this run's trials that have no directory yet, from their plan
            if t.name not in self.rows:
                self.rows[t.name] = trial_row(self.sweep_dir / "trials" / t.name, t.setting, t.config.to_dict())

    def update(self, name: str, setting: str, config: dict) -> dict:
        """Re-read one trial's directory; returns its row."""
        self.rows[name] = trial_row(self.sweep_dir / "trials" / name, setting, config)
        self._maybe_write()
        return self.rows[name]

    def epoch(self, name: str, epoch: int) -> None:
        """A trial reported `epoch` (a checkpoint epoch): it is running (without reading its files)."""
        row = self.rows.get(name)
        if row is not None and row.get("status") not in ("finished", "failed"):
            row.update(status="running", epochs_done=epoch)
            self._maybe_write()

    def _maybe_write(self) -> None:
        if time.monotonic() - self.written >= max(self.every, 20 * self.took):
            self.flush()

    def flush(self) -> pd.DataFrame:
        t0 = time.monotonic()
        df = write_table(self.sweep_dir, pd.DataFrame([self.rows[k] for k in sorted(self.rows)], columns=COLUMNS))
        self.written = time.monotonic()
        self.took = self.written - t0
        return df
