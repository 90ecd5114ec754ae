"""The paper's published numbers (rsnet/report/*.csv, each row naming its source), a sentence per
method, and the majority class of a run's test videos: what the report's tables show beside ours."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from ..data.splits import N_FOLDS

DATASETS = list(N_FOLDS)


def _packaged_csv(name: str) -> pd.DataFrame:
    with resources.files(__package__).joinpath(name).open() as f:
        return pd.read_csv(f, comment="#", dtype=str).fillna("")


def published() -> pd.DataFrame:
    """The paper's published accuracies (rsnet/report/published.csv): Table 2, Table 3 and the
    majority class of its test videos; '' where the paper prints '-'."""
    return _packaged_csv("published.csv")


def published_cross_domain() -> pd.DataFrame:
    """The paper's cross-domain accuracies (Section 4.2): train, test, accuracy, source."""
    return _packaged_csv("published_cross_domain.csv")


def method_descriptions() -> dict[str, str]:
    """method or setting name -> one sentence saying what it is (rsnet/report/methods.csv)."""
    return dict(_packaged_csv("methods.csv").values)


def majority(trials: pd.DataFrame, predictions: pd.DataFrame) -> pd.Series:
    """(dataset, split) -> accuracy (%) of always answering the larger class, over the distinct
    test videos of that protocol's finished trials (all folds together)."""
    t = trials[trials.status == "finished"]
    p = predictions.merge(t[["trial", "dataset", "split"]], on="trial").drop_duplicates(["dataset", "split", "video"])
    share = p.groupby(["dataset", "split"]).label.mean()
    return 100 * pd.concat([share, 1 - share], axis=1).max(axis=1)


def dataset_columns(cells: pd.DataFrame) -> list[str]:
    """A table's dataset columns: the paper's four, then any corpus of the run's own, by name."""
    return DATASETS + sorted(set(cells.dataset) - set(DATASETS))


def published_rows(table: str, name_column: str) -> list[dict]:
    pub = published()
    pub = pub[pub.table.isin([table, "majority"])]
    return [
        {
            name_column: r["method"],
            "process": r["process_type"],
            "source": f"published: {r['source']}",
            **{d: r[d] or "—" for d in DATASETS},
        }
        for r in pub.to_dict("records")
    ]


def majority_cell(majority_pct: pd.Series, dataset: str, split: str) -> str:
    return f"{majority_pct[(dataset, split)]:.1f}" if (dataset, split) in majority_pct.index else "—"


def our_majority_row(name_column: str, majority_pct: pd.Series, datasets=DATASETS) -> dict:
    return {
        name_column: "majority class",
        "process": "",
        "source": "this run: the test videos' larger class",
        **{d: majority_cell(majority_pct, d, "kfold") for d in datasets},
    }
