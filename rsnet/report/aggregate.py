"""The paper's aggregation: cross-validated accuracy per seed, then mean over seeds.

Definitions (stated in every report):
- A *cell* is one (sweep, dataset, split, setting, fps, resolution, ...) combination.
- For each seed, the cross-validated accuracy is the accuracy of the test predictions pooled
  over all the protocol's folds ("pooled"); the mean of the per-fold accuracies is given too.
- A cell's figure is the mean over seeds ("mean of ten trials" in the paper) with the sample
  standard deviation and a 95% Student-t interval of that mean.
- Only seeds whose folds are all finished enter the mean. A cell that lacks seeds says so,
  e.g. "81.3 ± 1.2 (7/10 seeds)"; a cell without one complete seed shows the pooled accuracy of
  what it has, flagged "(partial: 13/20 trials)". Nothing incomplete is averaged silently.
- An ablation is compared with the full model of the same dataset and protocol, paired over
  (seed, fold): the mean per-trial difference, a bootstrap 95% interval of it (10,000
  resamples of the pairs) and the Wilcoxon signed-rank p-value.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..data.splits import folds_for

CELL = ["sweep", "dataset", "split", "setting", "variant", "loss_weighting", "temporal_control", "fps",
        "resolution", "channels", "lr", "batch_size", "epochs", "forget_bias"]
PAIR_KEYS = ["sweep", "dataset", "split", "fps", "resolution", "channels"]
BOOTSTRAP = 10_000


def _cells(trials: pd.DataFrame) -> pd.DataFrame:
    t = trials.copy()
    t["forget_bias"] = t.forget_bias.astype(object).where(t.forget_bias.notna(), "default")
    for c in ("fold", "seed"):
        t[c] = t[c].astype(int)
    return t


def per_seed(trials: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, seed): folds finished and expected, pooled and mean-of-folds accuracy."""
    t = _cells(trials)
    rows = []
    for key, g in t.groupby(CELL + ["seed"], dropna=False, sort=True):
        done = g[g.status == "finished"]
        expected = set(folds_for(g.split.iloc[0], g.dataset.iloc[0])) | set(g.fold)
        pred = predictions[predictions.trial.isin(done.trial)]
        correct = (pred.predicted == pred.label)
        rows.append({**dict(zip(CELL + ["seed"], key)), "folds_done": done.fold.nunique(),
                     "folds_expected": len(expected), "videos": len(pred),
                     "pooled": float(correct.mean()) if len(pred) else np.nan,
                     "mean_of_folds": float(done.accuracy.astype(float).mean()) if len(done) else np.nan,
                     "synthetic": bool(done.synthetic.fillna(False).astype(bool).any())})
    out = pd.DataFrame(rows)
    if len(out):
        out["complete"] = out.folds_done == out.folds_expected
    return out


def mean_ci(values) -> tuple[float, float, float, float]:
    """mean, sample std, and the 95% Student-t interval of the mean (NaN where undefined)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return (np.nan,) * 4
    m = float(v.mean())
    if len(v) < 2:
        return m, np.nan, np.nan, np.nan
    s = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(v) - 1) * s / np.sqrt(len(v)))
    return m, s, m - half, m + half


def summarise(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: mean, std and 95% CI over complete seeds (pooled and mean-of-folds),
    counts, and the flag that says what is missing."""
    rows = []
    for key, g in seeds.groupby(CELL, dropna=False, sort=True):
        complete = g[g.complete]
        use = complete if len(complete) else g[g.folds_done > 0]
        m, s, lo, hi = mean_ci(use.pooled)
        mf, sf, _, _ = mean_ci(use.mean_of_folds)
        trials_done, trials_expected = int(g.folds_done.sum()), int(g.folds_expected.sum())
        if len(complete) == len(g):
            flag = ""
        elif len(complete):
            flag = f"({len(complete)}/{len(g)} seeds)"
        elif trials_done:
            flag = f"(partial: {trials_done}/{trials_expected} trials)"
        else:
            flag = "(no results)"
        rows.append({**dict(zip(CELL, key)), "mean": m, "std": s, "ci_low": lo, "ci_high": hi,
                     "mean_of_folds": mf, "mean_of_folds_std": sf, "seeds_complete": len(complete),
                     "seeds_expected": len(g), "trials_done": trials_done, "trials_expected": trials_expected,
                     "flag": flag, "synthetic": bool(g.synthetic.any())})
    return pd.DataFrame(rows)


def fmt(mean: float, std: float = np.nan, flag: str = "") -> str:
    """'81.3 ± 1.2 (7/10 seeds)' in percent; '—' without a value."""
    if mean is None or np.isnan(mean):
        return f"— {flag}".strip() if flag else "—"
    text = f"{100 * mean:.1f}" + ("" if std is None or np.isnan(std) else f" ± {100 * std:.1f}")
    return f"{text} {flag}".strip()


def bootstrap_ci(diffs, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return np.nan, np.nan
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n, len(d)))
    means = d[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def paired(trials: pd.DataFrame, reference: str = "full") -> pd.DataFrame:
    """Each setting against `reference` of the same sweep/dataset/protocol, paired over (seed, fold)."""
    t = _cells(trials)
    t = t[t.status == "finished"].assign(accuracy=lambda d: d.accuracy.astype(float))
    rows = []
    for key, g in t.groupby(PAIR_KEYS, sort=True):
        ref = g[g.setting == reference].set_index(["seed", "fold"]).accuracy
        if ref.empty:
            continue
        for setting, h in g[g.setting != reference].groupby("setting", sort=True):
            other = h.set_index(["seed", "fold"]).accuracy
            if ref.index.has_duplicates or other.index.has_duplicates:   # another axis varies too
                print(f"report: {key}: {setting} against {reference} is ambiguous (several trials per seed "
                      f"and fold, another axis varies); not compared")
                continue
            common = ref.index.intersection(other.index)
            d = (other[common] - ref[common]).to_numpy()
            lo, hi = bootstrap_ci(d)
            p = np.nan
            if len(d) >= 2 and np.any(d != 0):
                p = float(stats.wilcoxon(d, zero_method="zsplit").pvalue)
            rows.append({**dict(zip(PAIR_KEYS, key)), "setting": setting, "reference": reference,
                         "pairs": len(d), "mean_diff": float(d.mean()) if len(d) else np.nan,
                         "ci_low": lo, "ci_high": hi, "wilcoxon_p": p,
                         "better": int((d > 0).sum()), "worse": int((d < 0).sum()), "ties": int((d == 0).sum())})
    return pd.DataFrame(rows)


def honesty(trials: pd.DataFrame) -> pd.DataFrame:
    """Headline (final-epoch or validation-selected) against best-test-epoch accuracy, per cell."""
    t = _cells(trials)
    t = t[t.status == "finished"]
    if t.empty:
        return pd.DataFrame()
    num = t.assign(**{c: t[c].astype(float) for c in ("accuracy", "final_epoch_accuracy", "optimistic_accuracy")})
    out = num.groupby(CELL, dropna=False, sort=True).agg(
        trials=("trial", "count"), headline=("accuracy", "mean"), final_epoch=("final_epoch_accuracy", "mean"),
        optimistic=("optimistic_accuracy", "mean"),
        synthetic=("synthetic", lambda v: bool(v.fillna(False).astype(bool).any()))).reset_index()
    out["gap"] = out.optimistic - out.headline
    return out
