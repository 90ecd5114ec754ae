"""Tables on how the numbers were obtained: honest against optimistic accuracy, the readings of
the paper each sweep follows, and the trials without a result."""

from __future__ import annotations

import pandas as pd

from .aggregate import labels
from .tables import DEFAULTS, Table


def honesty_table(h: pd.DataFrame) -> Table:
    cols = [
        "sweep",
        "dataset",
        "split",
        "setting",
        "fps",
        "resolution",
        "trials",
        "headline",
        "final_epoch",
        "optimistic",
        "gap",
    ]
    if len(h):
        h = h.assign(setting=labels(h, ["dataset", "split", "fps", "resolution"]))
    df = h[cols].copy() if len(h) else pd.DataFrame(columns=cols)
    for c in ("headline", "final_epoch", "optimistic", "gap"):
        df[c] = (100 * df[c].astype(float)).round(1)
    return Table(
        "honest_vs_optimistic",
        "Honest versus optimistic accuracy (%), mean over trials",
        df,
        "headline: final epoch (or the epoch a subject-disjoint validation split picked); "
        "optimistic: the best test-fold accuracy over epochs, which is what the authors' code "
        "reports (model selection on the test fold); gap = optimistic - headline.",
        synthetic=bool(h.synthetic.any()) if "synthetic" in h else False,
    )


def _reading(values: pd.Series, say) -> str:
    """The readings a sweep's trials follow, each said in words; trials written before a field
    existed follow its default."""
    return "; ".join(sorted({say(v) for v in values.dropna().unique()} or {say(None)}))


def readings(trials: pd.DataFrame) -> Table:
    """Per sweep, which reading of the paper its trials follow where the paper and the authors'
    released code differ (the README's table of readings)."""
    d = DEFAULTS
    said = {
        "class weights (Eq. 3)": (
            "loss_weighting",
            lambda v: {
                "balanced": "balanced (inverse class share)",
                "paper_literal": "Eq. 3 as printed (class share)",
                "none": "none (the authors' code)",
            }[v or d.loss_weighting],
        ),
        "Adam weight decay": ("weight_decay", lambda v: f"{d.weight_decay if v is None else v:g}"),
        "L2-norm penalty": (
            "l2_penalty",
            lambda v: "none" if not v else f"{v:g} x sum of every parameter's L2 norm (the authors' code)",
        ),
        "frame sampling": (
            "frame_stride",
            lambda v: f"every {int(v)}th frame (the authors' code)" if v else "by time at the trial's fps (the paper)",
        ),
        "face crop": (
            "crop",
            lambda v: {
                "aligned": "chips placed by the eye landmarks, one size per clip (the authors' code: 68 landmarks)",
                "box": "a square around the detector's box",
            }[v or "box"],  # trials from before the crop option used the box
        ),
        "epoch reported": (
            "val_fraction",
            lambda v: f"picked on a validation split of {v:.0%} of training subjects" if v else "final epoch",
        ),
    }
    rows = [
        {
            "sweep": sweep,
            **{q: _reading(g[col] if col in g else pd.Series(dtype=object), say) for q, (col, say) in said.items()},
        }
        for sweep, g in trials.groupby("sweep", sort=True)
    ]
    return Table(
        "readings",
        "Readings of the paper each sweep follows (where the paper and its released code differ)",
        pd.DataFrame(rows, columns=["sweep", *said]),
        "Every result also records the best test accuracy over epochs, what the authors' code reports, as "
        "'optimistic' (see the honest-versus-optimistic table).",
    )


ERROR_CHARS = 300


def one_line(error: str) -> str:
    """An error as one table cell: its whitespace (Ray's tracebacks run over many lines) as single
    spaces, its end kept (where Ray and Python put the exception itself) up to ERROR_CHARS."""
    text = " ".join(str(error).split())
    return text if len(text) <= ERROR_CHARS else "…" + text[-(ERROR_CHARS - 1) :]


def failures(trials: pd.DataFrame) -> Table:
    bad = trials[trials.status.isin(["failed", "running", "pending", "not started"])]
    df = bad[["sweep", "trial", "status", "epochs_done", "error"]].astype(object).fillna("").reset_index(drop=True)
    df["trial"] = df.trial.str.split("/", n=1).str[1]  # the directory name under <sweep>/trials/
    df["error"] = df.error.map(one_line)
    return Table(
        "failed_trials",
        "Trials without a result (failed, unfinished or not started), with errors",
        df,
        f"error: on one line, its last {ERROR_CHARS} characters; the whole text is in the trial's failed.json.",
    )
