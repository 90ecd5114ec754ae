"""Protocol tables shipped with rsnet (sources in SOURCES.md beside this file)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd


@lru_cache(maxsize=1)
def uvanemo_table() -> pd.DataFrame:
    """UvA-NEMO's 1240 videos: video, subject (3-digit str), gender, age, label, fold (1-10)."""
    with resources.files(__package__).joinpath("uvanemo_10fold.csv").open() as f:
        return pd.read_csv(f, dtype={"subject": str, "video": str})


@lru_cache(maxsize=1)
def mmi_authors_folds() -> dict[str, int]:
    """MMI's 9 subject folds of the authors' released code: subject id (str, no leading zeros) -> fold."""
    with resources.files(__package__).joinpath("mmi_9fold.csv").open() as f:
        t = pd.read_csv(f)
    return {str(s): int(k) for s, k in zip(t.subject, t.fold)}
