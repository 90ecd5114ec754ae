"""The paper's aggregation: cross-validated accuracy per seed, then mean over seeds.

Definitions (stated in every report):
- A *cell* is one sweep's setting with every field that can change a result alike (dataset,
  split, variant, fps, resolution, crop, learning rate, ...; all but fold and seed): trials that
  differ in any such field are never pooled, and a table labels cells of one setting by the
  fields that tell them apart (e.g. "full (crop box)").
- For each seed, the cross-validated accuracy is the accuracy of the test predictions pooled
  over all the protocol's folds ("pooled"); the mean of the per-fold accuracies is given too.
- A cell's figure is the mean over seeds ("mean of ten trials" in the paper) with the sample
  standard deviation and a 95% Student-t interval of that mean. That interval knows only the
  seeds; the tables' [low, high] is a 95% interval that also counts the test videos as a sample:
  a bootstrap resampling seeds, and test videos within each fold (one draw for every seed, as
  they share their test videos), 2,000 resamples; in a cell without a complete seed, over the
  trials it has.
- Only seeds whose folds are all finished enter the mean. A cell that lacks seeds says so,
  e.g. "81.3 ± 1.2 (7/10 seeds)"; a cell without one complete seed shows the pooled accuracy of
  what it has, flagged "(partial: 13/20 trials)". Nothing incomplete is averaged silently.
- An ablation is compared with the full model of the same sweep at the same values of the
  sweep's other axes (dataset, protocol, fps, ...) on the (seed, fold) trials and test videos
  both have: the difference in pooled accuracy, its 95% interval by the same bootstrap of the
  per-video differences, a sign-flip permutation p-value over test videos (each video's
  difference averaged over seeds: a video counts once), and that p-value Holm-adjusted over the
  sweep's settings compared at those same values.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from ..config import CELL_FIELDS
from ..data.adapters import is_native
from ..data.splits import folds_for
from ..model import VARIANTS

# a cell: one sweep's setting with every field that can change a result equal, but fold and seed
CELL = ["sweep", "setting", *CELL_FIELDS]


def cell_keyed(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials with the cell key's values comparable (None as 'default', as forget_bias's
    default; fold and seed as int): what every grouping by CELL here and in resampling.py starts from."""
    t = trials.copy()
    for c in CELL:
        if t[c].isna().any():
            t[c] = t[c].astype(object).where(t[c].notna(), "default")
    for c in ("fold", "seed"):
        t[c] = t[c].astype(int)
    if "tuned" in t:  # a search's chosen configurations: one cell over the outer folds
        from .search import search_label

        t["tuned"] = t.tuned.astype(object)
        for search, rows in t[t.tuned.fillna("") != ""].groupby("tuned"):
            for name in json.loads(search)["space"]:
                t[name] = t[name].astype(object)
                t.loc[rows.index, name] = "tuned"
            t.loc[rows.index, "tuned"] = search_label(search)
    return t


def say(value) -> str:
    """A field's value as a label shows it: numbers without trailing zeros, None as 'default'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "default"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def distinguishing(cells: pd.DataFrame, shown: list[str], among: pd.DataFrame | None = None) -> pd.Series:
    """Per row (a cell, or a trial): the CELL_FIELDS that tell it apart from the other rows of
    its sweep and setting in `among` (default: `cells`) that agree on the `shown` fields (a
    table's columns). A table whose rows are labelled by setting and these fields holds one cell
    per place, never two pooled; with `among` wider than the table's rows, a row also says which
    of its sweep's cells it is (the fps_resolution sweep's 5 fps, 48 px cell in Table 2)."""
    among = cells if among is None else among
    other = [c for c in CELL_FIELDS if c not in shown]
    varying = {}
    for key, g in among.groupby(["sweep", "setting"], sort=False, dropna=False):
        within = g.groupby(shown, dropna=False) if shown else g.groupby(lambda _: 0)
        varying[key] = [c for c in other if (within[c].nunique(dropna=False) > 1).any()]
    return pd.Series([varying.get(k, []) for k in zip(cells.sweep, cells.setting)], index=cells.index, dtype=object)


def is_user_variant(row) -> bool:
    """A researcher's model (rsnet.model.plugins), not one of the shipped variants."""
    return isinstance(row.get("variant"), str) and row["variant"] not in VARIANTS


def labels(cells: pd.DataFrame, shown: list[str], extra=None, among: pd.DataFrame | None = None) -> pd.Series:
    """Each row's setting followed by the values that tell it apart (`distinguishing`) and any
    `extra(row)` fields: 'full', 'full (crop box)'."""
    fields = distinguishing(cells, shown, among)
    out = []
    for (_, row), varying in zip(cells.iterrows(), fields):
        names = list(dict.fromkeys([*varying, *(extra(row) if extra else [])]))
        said = [f"{c} {say(row[c])}" for c in names if not (c == "variant" and is_user_variant(row))]
        said += [f"user variant {row.variant}"] if is_user_variant(row) else []
        out.append(str(row.setting) + (f" ({', '.join(said)})" if said else ""))
    return pd.Series(out, index=cells.index, dtype=object)


def protocol_folds(g: pd.DataFrame) -> set[int]:
    """The folds of a cell's protocol: the paper's datasets' from rsnet; a corpus of one's own's
    are those its sweep planned (its manifest may not be where the report runs)."""
    dataset = g.dataset.iloc[0]
    return set(folds_for(g.split.iloc[0], dataset)) if is_native(dataset) else set()


def per_seed(trials: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, seed): folds finished and expected, pooled and mean-of-folds accuracy."""
    tally = (  # each trial's test videos and right answers, counted once
        predictions.assign(right=predictions.predicted == predictions.label)
        .groupby("trial")
        .right.agg(n_videos="size", n_right="sum")
    )
    t = cell_keyed(trials).join(tally, on="trial")
    rows = []
    for key, g in t.groupby(CELL + ["seed"], dropna=False, sort=True):
        done = g[g.status == "finished"]
        expected = protocol_folds(g) | set(g.fold)
        videos, right = int(done.n_videos.fillna(0).sum()), float(done.n_right.fillna(0).sum())
        rows.append(
            {
                **dict(zip(CELL + ["seed"], key)),
                "folds_done": done.fold.nunique(),
                "folds_expected": len(expected),
                "videos": videos,
                "pooled": right / videos if videos else np.nan,
                "mean_of_folds": float(done.accuracy.astype(float).mean()) if len(done) else np.nan,
                "synthetic": bool(done.synthetic.fillna(False).astype(bool).any()),
            }
        )
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
        if not len(complete) and len(use):  # the pooled accuracy of the trials it has, every video once
            m, lo, hi = float((use.pooled * use.videos).sum() / use.videos.sum()), np.nan, np.nan
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
        rows.append(
            {
                **dict(zip(CELL, key)),
                "mean": m,
                "std": s,
                "ci_low": lo,
                "ci_high": hi,
                "mean_of_folds": mf,
                "mean_of_folds_std": sf,
                "seeds_complete": len(complete),
                "seeds_expected": len(g),
                "trials_done": trials_done,
                "trials_expected": trials_expected,
                "flag": flag,
                "synthetic": bool(g.synthetic.any()),
            }
        )
    return pd.DataFrame(rows)


def fmt(mean: float, std: float = np.nan, flag: str = "", low: float = np.nan, high: float = np.nan) -> str:
    """'81.3 ± 1.2 [78.0, 84.5] (7/10 seeds)' in percent: mean ± std over seeds, the interval over
    seeds and test videos where given, what is missing; '—' without a value."""
    if mean is None or np.isnan(mean):
        return f"— {flag}".strip() if flag else "—"
    text = f"{100 * mean:.1f}" + ("" if std is None or np.isnan(std) else f" ± {100 * std:.1f}")
    if not (low is None or np.isnan(low)):
        text += f" [{100 * low:.1f}, {100 * high:.1f}]"
    return f"{text} {flag}".strip()


def cell_value(cell) -> str:
    """A cell's pooled figure as the tables show it (a row of `summarise` with the video interval)."""
    return fmt(cell["mean"], cell["std"], cell["flag"], cell.get("video_low", np.nan), cell.get("video_high", np.nan))


def honesty(trials: pd.DataFrame) -> pd.DataFrame:
    """Headline (final-epoch or validation-selected) against best-test-epoch accuracy, per cell."""
    t = cell_keyed(trials)
    t = t[t.status == "finished"]
    if t.empty:
        return pd.DataFrame()
    num = t.assign(**{c: t[c].astype(float) for c in ("accuracy", "final_epoch_accuracy", "optimistic_accuracy")})
    out = (
        num.groupby(CELL, dropna=False, sort=True)
        .agg(
            trials=("trial", "count"),
            headline=("accuracy", "mean"),
            final_epoch=("final_epoch_accuracy", "mean"),
            optimistic=("optimistic_accuracy", "mean"),
            synthetic=("synthetic", lambda v: bool(v.fillna(False).astype(bool).any())),
        )
        .reset_index()
    )
    out["gap"] = out.optimistic - out.headline
    return out
