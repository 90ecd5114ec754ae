"""Nested cross-validation in the report: each outer trial's chosen configuration and what its
search cost, read from the selection files a sweep's `search` leaves (rsnet.sweep.nested)."""

from __future__ import annotations

import json

import pandas as pd

from .tables import Table

COLUMNS = [
    "sweep",
    "outer_trial",
    "outer_fold",
    "seed",
    "chosen",
    "mean_inner_accuracy",
    "configurations",
    "stopped_early",
    "inner_trial_epochs_run",
    "inner_trial_epochs_without_early_stopping",
    "saved",
]


def search_label(tuned: str) -> str:
    """A tuned trial's `tuned` field (its search as JSON) as a label says it."""
    s = json.loads(tuned)
    space = ", ".join(f"{k} {next(iter(v))} {next(iter(v.values()))}" for k, v in sorted(s["space"].items()))
    return f"nested CV ({s['algorithm']} x{s['samples']}, {s['inner_folds']} inner folds, {s['scheduler']}: {space})"


def selections(sweeps) -> pd.DataFrame:
    rows = []
    for sweep in sweeps:
        for path in sorted(sweep.path.glob("search/*/selection.json")):
            s = json.loads(path.read_text())
            run, full = s["inner_trial_epochs_run"], s["inner_trial_epochs_without_early_stopping"]
            rows.append(
                {
                    "sweep": sweep.name,
                    "outer_trial": s["outer_trial"],
                    "outer_fold": s["outer_fold"],
                    "seed": s["seed"],
                    "chosen": ", ".join(
                        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in s["chosen"].items()
                    ),
                    "mean_inner_accuracy": round(100 * s["mean_inner_accuracy"], 1),
                    "configurations": len(s["configurations"]),
                    "stopped_early": sum(not c["completed"] for c in s["configurations"]),
                    "inner_trial_epochs_run": run,
                    "inner_trial_epochs_without_early_stopping": full,
                    "saved": f"{100 * (1 - run / full):.0f} %" if full else "",
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def search_table(sweeps, synthetic: bool) -> Table:
    return Table(
        "nested_search",
        "Nested cross-validation: the configuration chosen per outer fold, and the search's compute",
        selections(sweeps),
        "Each outer fold's configurations were trained on subject-disjoint inner folds of its training "
        "subjects only; the chosen one (best mean inner validation accuracy at the last epoch, among those "
        "that ran every epoch) was retrained on all of them and tested once on the outer fold: its row in "
        "Table 2 and honest_vs_optimistic is labelled 'nested CV'. Inner trial-epochs: epochs summed over "
        "configurations and inner folds; 'saved' what ASHA's early stopping spared. The files: "
        "<sweep>/search/<outer trial>/selection.json.",
        synthetic,
    )
