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
