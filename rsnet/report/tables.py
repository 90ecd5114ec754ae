"""The paper's tables as DataFrames, ours beside the published rows: Table 2, Table 3 (+ paired
comparison), the fps x resolution grid (Fig. 6), cross-domain, subgroups and mispredictions
(Fig. 7). Values are percentages formatted by `aggregate.fmt`."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..config import TrialConfig, with_role
from ..data.adapters import age_group
from ..data.splits import parse_split
from ..protocols import uvanemo_table
from ..provenance import synthetic_title
from .aggregate import cell_value, fmt, labels
from .published import dataset_columns, majority_cell, our_majority_row, published_cross_domain, published_rows

DEFAULTS = TrialConfig()


@dataclass
class Table:
    name: str  # file stem
    title: str
    df: pd.DataFrame
    note: str = ""
    synthetic: bool = False

    @property
    def full_title(self) -> str:
        return synthetic_title(self.title, self.synthetic)


def _differs(value, default) -> bool:
    if value in ("default", None) or (isinstance(value, float) and pd.isna(value)):
        return default is not None
    try:
        return default is None or float(value) != float(default)
    except (TypeError, ValueError):
        return str(value) != str(default)


def _off_the_paper(row) -> list[str]:
    """The method fields of a cell whose values are not the paper's (TrialConfig's defaults)."""
    return [k for k in with_role("method") if _differs(row[k], getattr(DEFAULTS, k))]


def _is_default_model(cells: pd.DataFrame) -> pd.Series:
    return (
        (cells.variant == "full")
        & (cells.loss_weighting == DEFAULTS.loss_weighting)
        & (cells.temporal_control == "none")
    )


def _base_protocol(cells: pd.DataFrame) -> pd.Series:
    return (
        (cells.split == "kfold")
        & (cells.fps == DEFAULTS.fps)
        & (cells.resolution == DEFAULTS.resolution)
        & (cells.channels == DEFAULTS.channels)
    )


def table2(cells: pd.DataFrame, majority_pct: pd.Series) -> Table:
    """Datasets as columns; the published rows (with each method's process type), then ours
    (pooled, and mean of folds), and the majority class of the paper's and of our test videos."""
    rows = published_rows("table2", "method")
    ours = cells[_is_default_model(cells) & _base_protocol(cells)]
    datasets = dataset_columns(ours)
    for (label, agg), g in _by_label(ours, cells[cells.split == "kfold"]):
        by_dataset = g.set_index("dataset")
        value = (
            cell_value if agg == "pooled" else (lambda c: fmt(c["mean_of_folds"], c["mean_of_folds_std"], c["flag"]))
        )
        rows.append(
            {
                "method": f"RealSmileNet, {label}",
                "process": "fully-automatic",
                "source": f"this run, {agg}",
                **{d: value(by_dataset.loc[d]) if d in by_dataset.index else "—" for d in datasets},
            }
        )
    rows.append(our_majority_row("method", majority_pct, datasets))
    return Table(
        "table2",
        "Table 2: accuracy (%) on the four datasets, mean ± std over seeds",
        pd.DataFrame(rows, columns=["method", "process", "source", *datasets]).fillna("—"),
        "Published rows are as printed in Yang et al. (ACCV 2020), each with its source; '—' where the "
        "paper prints none or this run has none. 'majority class' rows: what always answering the larger "
        "class scores on the paper's test videos and on this run's.",
        bool(ours.synthetic.any()),
    )


def _by_label(ours: pd.DataFrame, among: pd.DataFrame):
    """'ours: <sweep> <setting> (fps 5, resolution 48, lr 0.003, ...)': which of its sweep's
    cells (`among`) it is, and the fields off the paper's; each label one cell per dataset."""
    named = labels(ours, ["dataset"], extra=_off_the_paper, among=among) if len(ours) else pd.Series(dtype=object)
    ours = ours.assign(label="ours: " + ours.sweep.astype(str) + " " + named)
    for label, g in ours.groupby("label", sort=True):
        for agg in ("pooled", "mean of folds"):
            yield (label, agg), g


def table3(cells: pd.DataFrame, pairs: pd.DataFrame, majority_pct: pd.Series) -> list[Table]:
    """Ablations: the paper's rows (setting names as in sweeps/ablations.yaml), then every setting
    of sweeps with more than one setting, protocol kfold, and the majority class."""
    k = cells[cells.split == "kfold"]
    k = k[k.groupby("sweep").setting.transform("nunique") > 1]
    k = k.assign(setting=labels(k, ["dataset"]))  # one cell per (sweep, setting, dataset)
    datasets = dataset_columns(k)
    rows = [{"sweep": "published", **r} for r in published_rows("table3", "setting")]
    for (sweep, setting), g in k.groupby(["sweep", "setting"], sort=False):
        by_dataset = g.set_index("dataset")
        rows.append(
            {
                "sweep": sweep,
                "setting": setting,
                "source": "this run, pooled",
                **{d: cell_value(by_dataset.loc[d]) if d in by_dataset.index else "—" for d in datasets},
            }
        )
    rows.append({"sweep": "", **our_majority_row("setting", majority_pct, datasets)})
    t3 = Table(
        "table3",
        "Table 3: ablations, accuracy (%) pooled over folds, mean ± std over seeds",
        pd.DataFrame(rows, columns=["sweep", "setting", "source", *datasets]).fillna("—"),
        "Rows of sweep 'published' are as printed in Yang et al. (ACCV 2020), Table 3.",
        synthetic=bool(k.synthetic.any()),
    )
    p = pairs.copy()
    if len(p):
        for c in ("mean_diff", "ci_low", "ci_high"):
            p[c] = (100 * p[c]).round(2)
        for c in ("p", "p_holm"):
            p[c] = [f"{v:.2g}" if pd.notna(v) else "" for v in p[c]]
    paired = Table(
        "table3_paired",
        "Ablations against the full model on the same trials' test videos: "
        "difference in pooled accuracy (percentage points)",
        p,
        "mean_diff = setting - reference over the (seed, fold) trials both have (pairs) and their test "
        "videos; ci = 95% bootstrap interval over seeds and test videos; p = sign-flip permutation test "
        "over test videos, p_holm = Holm-adjusted over the settings compared on the same dataset and "
        "protocol; better/worse/ties count trial pairs.",
        synthetic=t3.synthetic,
    )
    return [t3, paired]


def fps_resolution(cells: pd.DataFrame) -> Table:
    """Fig. 6 as a table: the full model over fps (rows) x resolution (columns)."""
    c = cells[_is_default_model(cells) & (cells.split == "kfold")]
    c = c[
        c.groupby(["sweep", "dataset"]).fps.transform("nunique")
        * c.groupby(["sweep", "dataset"]).resolution.transform("nunique")
        > 1
    ]
    c = c.assign(value=[cell_value(r) for _, r in c.iterrows()], setting=labels(c, ["dataset", "fps", "resolution"]))
    df = c.pivot_table(
        index=["sweep", "dataset", "setting", "fps"], columns="resolution", values="value", aggfunc="first"
    )
    df.columns = [f"{r} px" for r in df.columns]
    return Table(
        "fps_resolution",
        "Fig. 6: accuracy (%) over frame rate (fps) and face resolution",
        df.reset_index(),
        synthetic=bool(c.synthetic.any()),
    )


def cross_domain(cells: pd.DataFrame, majority_pct: pd.Series) -> Table:
    """Ours beside the paper's figure for the same train -> test pair, and the majority class of
    our test videos (a cross-domain 82.5 % on SPOS is what always answering 'spontaneous' scores)."""
    c = cells[cells.split.map(lambda s: parse_split(s).kind in ("cross", "transfer")).astype(bool)]
    c = c.assign(setting=labels(c, ["dataset", "split"]))
    pub = {
        (r["train"].replace(":", " "), r["test"].replace(":", " ")): r["accuracy"]
        for r in published_cross_domain().to_dict("records")
    }
    rows = []
    for _, r in c.iterrows():
        split = parse_split(r.split)
        train, test = split.train_label(r.dataset), split.test_label(r.dataset)
        rows.append(
            {
                "sweep": r.sweep,
                "setting": r.setting,
                "train": train,
                "test": test,
                "accuracy": cell_value(r),
                "published": pub.get((train.replace(" (all)", ""), test), "—"),
                "majority class": majority_cell(majority_pct, r.dataset, r.split),
            }
        )
    return Table(
        "cross_domain",
        "Cross-domain generalisation: accuracy (%) on the test domain",
        pd.DataFrame(rows, columns=["sweep", "setting", "train", "test", "accuracy", "published", "majority class"]),
        "published: Yang et al. (ACCV 2020), Section 4.2, for the same train -> test pair; majority class: "
        "always answering the larger class of this run's test videos.",
        synthetic=bool(c.synthetic.any()),
    )


def subgroups(cells: pd.DataFrame) -> Table:
    c = cells[cells.split.map(lambda s: parse_split(s).kind == "within").astype(bool)]
    c = c.assign(setting=labels(c, ["dataset", "split"]))
    rows = [
        {
            "sweep": r.sweep,
            "setting": r.setting,
            "group": parse_split(r.split).test_group,
            "accuracy": cell_value(r),
            "mean": r["mean"],
            "std": r["std"],
        }
        for _, r in c.iterrows()
    ]
    return Table(
        "subgroups",
        "Fig. 7 (left): accuracy (%) when training and testing within one UvA-NEMO group",
        pd.DataFrame(rows, columns=["sweep", "setting", "group", "accuracy", "mean", "std"]),
        synthetic=bool(c.synthetic.any()),
    )


def mispredictions(trials: pd.DataFrame, predictions: pd.DataFrame) -> Table:
    """Fig. 7 (right): how the full model's UvA-NEMO test mispredictions spread over gender x age
    group, against how the test videos spread (every seed's predictions counted)."""
    t = trials[
        (trials.status == "finished")
        & (trials.dataset == "uvanemo")
        & _is_default_model(trials)
        & _base_protocol(trials)
    ]
    t = t.assign(setting=labels(t, ["dataset"]))  # cells pooled here only if alike but for fold and seed
    p = predictions.merge(t[["trial", "sweep", "setting", "synthetic"]], on="trial")
    meta = uvanemo_table().drop_duplicates("subject").set_index("subject")
    p = p.assign(
        gender=p.subject.map(meta.gender),
        age_group=p.subject.map(meta.age.map(age_group)),
        wrong=(p.predicted != p.label),
    )
    p = p.dropna(subset=["gender"])
    cols = [
        "sweep",
        "setting",
        "gender",
        "age_group",
        "videos",
        "mispredicted",
        "share_of_videos",
        "share_of_mispredictions",
        "accuracy",
    ]
    if p.empty:
        return Table("mispredictions", "Fig. 7 (right): mispredictions over subgroups", pd.DataFrame(columns=cols))
    g = (
        p.groupby(["sweep", "setting", "gender", "age_group"])
        .agg(videos=("wrong", "size"), mispredicted=("wrong", "sum"))
        .reset_index()
    )
    tot = g.groupby(["sweep", "setting"])[["videos", "mispredicted"]].transform("sum")
    g["share_of_videos"] = (100 * g.videos / tot.videos).round(1)
    g["share_of_mispredictions"] = (100 * g.mispredicted / tot.mispredicted.where(tot.mispredicted > 0)).round(1)
    g["accuracy"] = (100 * (1 - g.mispredicted / g.videos)).round(1)
    return Table(
        "mispredictions",
        "Fig. 7 (right): the full model's UvA-NEMO mispredictions over gender x age group (%), all seeds and folds",
        g[cols],
        synthetic=bool(p.synthetic.fillna(False).astype(bool).any()),
    )
