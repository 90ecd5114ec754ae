"""Datasets: adapters for the real layouts, evaluation protocols, cached preprocessing."""

from .adapters import ADAPTERS, DatasetError, list_videos
from .cache import FrameCache, load_or_build
from .preprocess import PrepConfig, PreprocessError
from .splits import N_FOLDS, SPLITS, Split, assign_folds, folds_for, make_split

__all__ = [
    "ADAPTERS",
    "DatasetError",
    "FrameCache",
    "N_FOLDS",
    "PrepConfig",
    "PreprocessError",
    "SPLITS",
    "Split",
    "assign_folds",
    "folds_for",
    "list_videos",
    "load_or_build",
    "make_split",
]
