"""Intervals and tests that count the test videos as a sample, not only the seeds.

A cell's seeds are tested on the same videos, and an ablation's trials on the same videos as
the full model's, so neither the seeds nor the (seed, fold) pairs are independent samples of
what a new test set would give. Here a cell is its matrix of correct answers, seeds x test
videos (every fold's videos side by side), and
- its interval resamples seeds with replacement and, with one draw shared by every seed, the
  test videos with replacement within each fold (a hierarchical bootstrap; percentile 95 %);
- an ablation's difference to the reference is the same bootstrap of the difference matrix
  over the seeds and videos both have, and its p-value a sign-flip permutation test over
  videos of each video's difference averaged over seeds (a video is one unit, whatever the
  seeds); p-values are Holm-adjusted within each family: one sweep's settings against the same
  reference on one dataset and protocol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..config import CELL_FIELDS
from .aggregate import CELL, cell_keyed, say

RESAMPLES = 2000


def hierarchical_bootstrap(m: np.ndarray, folds: np.ndarray, n: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """n resampled means of `m` (seeds x videos, NaN where a seed lacks a video; `folds` the fold
    of each column): seeds with replacement, videos with replacement within their fold, one
    video draw for all seeds."""
    rng = np.random.default_rng(seed)
    present = ~np.isnan(m)
    m = np.where(present, m, 0.0)
    s, v = m.shape
    # how often each seed, and each video within its fold, is drawn: k draws with replacement
    # from k items are multinomial counts
    w_seed = rng.multinomial(s, np.full(s, 1 / s), size=n).astype(float)  # (n, S)
    w_video = np.zeros((n, v))
    for f in np.unique(folds):
        cols = np.flatnonzero(folds == f)
        w_video[:, cols] = rng.multinomial(len(cols), np.full(len(cols), 1 / len(cols)), size=n)  # (n, V)
    return ((w_seed @ m) * w_video).sum(axis=1) / ((w_seed @ present) * w_video).sum(axis=1)


def percentile_interval(draws: np.ndarray) -> tuple[float, float]:
    return float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


def sign_flip_p(per_video: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value that the mean of per-video differences is 0 (signs flipped at random)."""
    d = np.asarray(per_video, dtype=float)
    if len(d) == 0 or not np.any(d):
        return 1.0 if len(d) else np.nan
    res = stats.permutation_test(
        (d,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=9999,
        batch=500,  # resamples at a time: all 9,999 at once took ~0.8 GB for 1,240 videos
        random_state=seed,
    )
    return float(res.pvalue)


def holm(p) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN, outside the family)."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (len(order) - np.arange(len(order))) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def correct_matrix(trials: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """seeds (rows) x (fold, video) (columns): 1 where the trial of that seed and fold answered
    right, 0 where wrong, NaN where that seed has no trial of the fold."""
    p = predictions[predictions.trial.isin(trials.trial)].merge(trials[["trial", "seed", "fold"]], on="trial")
    twice = p[p.duplicated(["seed", "fold", "video"], keep=False)]
    if len(twice):  # a cell's key let two trials of one seed and fold in: never pool them
        raise ValueError(f"trials {', '.join(sorted(set(twice.trial)))} share a seed, fold and test videos")
    return p.assign(correct=(p.predicted == p.label).astype(float)).pivot_table(
        index="seed", columns=["fold", "video"], values="correct", aggfunc="first"
    )


def video_intervals(trials: pd.DataFrame, predictions: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """Per cell: the 95 % interval of its accuracy over seeds and test videos, from the seeds its
    figure comes from (`aggregate.summarise`): the complete ones, or, in a cell without one, the
    finished trials it has (the interval of what the partial figure says)."""
    t = cell_keyed(trials)
    t = t[t.status == "finished"]
    rows = []
    for key, g in seeds.groupby(CELL, dropna=False, sort=True) if len(seeds) else []:
        use = g[g.complete] if g.complete.any() else g[g.folds_done > 0]
        cell = t.merge(use[CELL + ["seed"]], on=CELL + ["seed"])
        m = correct_matrix(cell, predictions)
        lo, hi = (
            percentile_interval(hierarchical_bootstrap(m.to_numpy(), m.columns.get_level_values(0).to_numpy()))
            if m.size
            else (np.nan, np.nan)
        )
        rows.append({**dict(zip(CELL, key)), "video_low": lo, "video_high": hi})
    return pd.DataFrame(rows, columns=CELL + ["video_low", "video_high"])


def context_fields(trials: pd.DataFrame) -> list[str]:
    """The fields a sweep crosses with its settings: those that vary among one setting's trials
    (dataset, split, fps, ...). What a setting's own overrides change varies only between settings."""
    return [c for c in CELL_FIELDS if (trials.groupby("setting")[c].nunique(dropna=False) > 1).any()]


def paired(trials: pd.DataFrame, predictions: pd.DataFrame, reference: str = "full") -> pd.DataFrame:
    """Each setting against `reference` of the same sweep at the same values of the sweep's other
    axes (`context_fields`), over the (seed, fold) trials and test videos both have: difference in
    pooled accuracy, its bootstrap interval over seeds and videos, the sign-flip p-value over
    videos and its Holm adjustment within that family."""
    t = cell_keyed(trials)
    t = t[t.status == "finished"].assign(accuracy=lambda d: d.accuracy.astype(float))
    rows = []
    for sweep, s in t.groupby("sweep", sort=True):
        context = context_fields(s)
        # said beside dataset and split: the fields that place a comparison beyond those two
        within = s.groupby(["setting", "dataset", "split"])
        described = [c for c in context if (within[c].nunique(dropna=False) > 1).any()]
        for _, g in s.groupby(context, sort=True, dropna=False) if context else [(None, s)]:
            ref = g[g.setting == reference]
            if ref.empty:
                continue
            where = {
                "sweep": sweep,
                "dataset": g.dataset.iloc[0],
                "split": g.split.iloc[0],
                "context": ", ".join(f"{c} {say(g[c].iloc[0])}" for c in described),
            }
            family = [
                {**where, "setting": setting, "reference": reference, **_compare(ref, h, predictions)}
                for setting, h in g[g.setting != reference].groupby("setting", sort=True)
            ]
            for row, adjusted in zip(family, holm([r["p"] for r in family])):
                rows.append({**row, "p_holm": adjusted})
    return pd.DataFrame(
        rows,
        columns=[
            "sweep",
            "dataset",
            "split",
            "context",
            "setting",
            "reference",
            "pairs",
            "videos",
            "mean_diff",
            "ci_low",
            "ci_high",
            "p",
            "p_holm",
            "better",
            "worse",
            "ties",
        ],
    )


def _compare(ref: pd.DataFrame, h: pd.DataFrame, predictions: pd.DataFrame) -> dict:
    """One setting's trials `h` against the reference's `ref` (one trial per seed and fold each)."""
    both = ref.merge(h, on=["seed", "fold"], suffixes=("_ref", ""))[
        ["seed", "fold", "trial", "trial_ref", "accuracy", "accuracy_ref"]
    ]
    trial_diff = (both.accuracy - both.accuracy_ref).to_numpy()
    m_set = correct_matrix(both, predictions)
    m_ref = correct_matrix(both.drop(columns="trial").rename(columns={"trial_ref": "trial"}), predictions)
    cols = m_set.columns.intersection(m_ref.columns)
    d = (m_set[cols] - m_ref[cols]).to_numpy()  # (seeds, videos), NaN: no pair
    lo, hi = (
        percentile_interval(hierarchical_bootstrap(d, cols.get_level_values(0).to_numpy()))
        if d.size
        else (np.nan, np.nan)
    )
    return {
        "pairs": len(both),
        "videos": d.shape[1],
        "mean_diff": float(np.nanmean(d)) if d.size else np.nan,
        "ci_low": lo,
        "ci_high": hi,
        "p": sign_flip_p(np.nanmean(d, axis=0)) if d.size else np.nan,
        "better": int((trial_diff > 0).sum()),
        "worse": int((trial_diff < 0).sum()),
        "ties": int((trial_diff == 0).sum()),
    }
