"""The sweep's tidy table: one row per trial, built from the per-trial files alone."""

from __future__ import annotations

import json
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


def trial_row(trial_dir: Path, setting: str = "") -> dict:
    """What one trial directory says about itself: finished, failed, running or pending."""
    trial_dir = Path(trial_dir)
    row = {"trial": trial_dir.name, "setting": setting}
    cfg_path = trial_dir / "config.json"
    if cfg_path.exists():
        cfg = saved_values(json.loads(cfg_path.read_text()))  # an older config: the values it ran with
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


def write_table(sweep_dir: Path) -> pd.DataFrame:
    """Rewrite results/<sweep>/trials.csv from the trial directories (atomic)."""
    df = collect(sweep_dir)
    with atomic_path(Path(sweep_dir) / "trials.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df
