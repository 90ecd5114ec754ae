"""Evaluation protocols: subject-disjoint folds per dataset and the paper's other splits.

Split names (a trial's `split` setting):
    kfold            the dataset's own protocol: UvA-NEMO's standard 10 folds (shipped),
                     BBC 10 stratified folds, MMI 9 subject-disjoint folds (the authors' lists
                     of subjects, shipped; or greedy balanced folds of any selection), SPOS 7
                     leave-one-subject-out folds; fold k is the test set, the others train.
    cross:<target>   train on every video of the trial's dataset (UvA-NEMO), test on every
                     video of <target> (bbc, mmi or spos); one fold.
    <a>-><b>         train on group a, test on group b of UvA-NEMO: adult->young,
                     young->adult, female->male, male->female; one fold.
    within:<group>   UvA-NEMO's 10 folds restricted to one group (male, female, adult, young).
Any other dataset (a manifest, an installed adapter): its own folds where it gives them, else
`n_folds` subject-disjoint folds balanced over the labels; it may take UvA-NEMO's place in the
cross and group splits (these need its age and gender).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from ..protocols import mmi_authors_folds, uvanemo_table
from .adapters import SPOS_SUBJECTS, DatasetError, is_native, list_videos
from .manifest import manifest_path

N_FOLDS = {"uvanemo": 10, "bbc": 10, "mmi": 9, "spos": 7}
GROUPS = {
    "male": ("gender", "male"),
    "female": ("gender", "female"),
    "adult": ("age_group", "adult"),
    "young": ("age_group", "young"),
}
TRANSFERS = ("adult->young", "young->adult", "female->male", "male->female")
CROSS_TARGETS = ("bbc", "mmi", "spos")
MMI_FOLDS = ("authors", "balanced")
SPLITS = ("kfold", *(f"cross:{t}" for t in CROSS_TARGETS), *TRANSFERS, *(f"within:{g}" for g in GROUPS))


@dataclass(frozen=True)
class SplitSpec:
    """A split's name, parsed once (`parse_split`): its kind, the dataset a cross split tests
    on, and the groups a group split trains and tests on."""

    name: str
    kind: str  # kfold | cross | transfer | within
    target: str | None = None  # cross: the dataset tested on
    train_group: str | None = None  # transfer: the group trained on; within: the group
    test_group: str | None = None  # transfer: the group tested on; within: the group

    def folds(self, k: int) -> list[int]:
        """The folds `all` expands to on a dataset of k folds."""
        return list(range(1, k + 1)) if self.kind in ("kfold", "within") else [1]

    def train_label(self, dataset: str) -> str:
        """What is trained on, as the report says it: 'uvanemo (all)', 'uvanemo adult'."""
        return f"{dataset} (all)" if self.kind == "cross" else f"{dataset} {self.train_group or ''}".strip()

    def test_label(self, dataset: str) -> str:
        """What is tested on: 'bbc', 'uvanemo young'."""
        return self.target if self.kind == "cross" else f"{dataset} {self.test_group or ''}".strip()


@lru_cache(maxsize=None)
def parse_split(name: str) -> SplitSpec:
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
    kind, _, rest = name.partition(":")
    if name == "kfold":
        return SplitSpec(name, "kfold")
    if kind == "cross":
        return SplitSpec(name, "cross", target=rest)
    if kind == "within":
        return SplitSpec(name, "within", train_group=rest, test_group=rest)
    a, b = name.split("->")
    return SplitSpec(name, "transfer", train_group=a, test_group=b)


def fold_count(dataset: str, root="", n_folds: int = 10) -> int:
    """K of the dataset's k-fold protocol: the paper's four their own; any other the folds its
    listing gives, else `n_folds`."""
    if is_native(dataset):
        return N_FOLDS[dataset]
    csv = manifest_path(root)
    return _given_folds(dataset, str(root), csv.stat().st_mtime_ns if csv else None) or n_folds


@lru_cache(maxsize=64)
def _given_folds(dataset: str, root: str, stamp) -> int | None:
    videos = list_videos(dataset, root)
    return int(videos.fold.max()) if "fold" in videos and videos.fold.notna().all() else None


def assign_folds(dataset: str, videos: pd.DataFrame, mmi_folds: str = "authors", n_folds: int = 10) -> pd.Series:
    """Test fold (1..K) of every video under the dataset's own protocol (`mmi_folds`: MMI's
    authors' subject lists, or greedy folds balanced over any selection); any other dataset's
    own folds (a `fold` column), else `n_folds` greedy subject folds balanced over the labels."""
    if not is_native(dataset):
        if "fold" in videos and videos.fold.notna().all():
            return videos.fold.astype(int)
        return videos.subject.map(_balanced_subject_folds(videos, n_folds, f"{dataset}: n_folds")).astype(int)
    if dataset == "uvanemo":
        fold = videos.id.map(uvanemo_table().set_index("video").fold)
        if fold.isna().any():
            raise DatasetError(f"uvanemo: {videos.id[fold.isna()].iloc[0]} has no fold in the shipped protocol")
        return fold.astype(int)
    if dataset == "bbc":  # one genuine and one posed video per fold, in name order
        rank = videos.groupby("label").id.rank(method="first").astype(int)
        if (videos.label.value_counts() > N_FOLDS["bbc"]).any():
            rank = (rank - 1) % N_FOLDS["bbc"] + 1
        return rank
    if dataset == "spos":  # leave one subject out, in the dataset's subject order
        return videos.subject.map({s: i + 1 for i, s in enumerate(SPOS_SUBJECTS)}).astype(int)
    if dataset == "mmi" and mmi_folds == "authors":
        return _authors_mmi_folds(videos)
    if dataset == "mmi" and mmi_folds == "balanced":
        folds = _balanced_subject_folds(videos, N_FOLDS["mmi"], "mmi: mmi_folds balanced")
        return videos.subject.map(folds).astype(int)
    if dataset == "mmi":
        raise ValueError(f"mmi_folds {mmi_folds!r} is not valid; valid: {', '.join(MMI_FOLDS)}")
    raise DatasetError(f"unknown dataset {dataset!r}; valid: {', '.join(N_FOLDS)}")


def _authors_mmi_folds(videos: pd.DataFrame) -> pd.Series:
    """The fold the authors' lists give each video's subject (ids compared as numbers: '007' is 7)."""
    table = mmi_authors_folds()
    ids = videos.subject.astype(str).map(lambda s: str(int(s)) if s.strip().isdigit() else s.strip())
    fold = ids.map(table)
    if fold.isna().any():
        outside = sorted(set(videos.subject[fold.isna()].astype(str)))
        raise DatasetError(
            f"mmi: the selection's subject(s) {', '.join(outside)} are not in the authors' 9 folds "
            f"(subjects {', '.join(sorted(table, key=int))}); use mmi_folds: balanced for greedy "
            f"subject folds of another selection"
        )
    return fold.astype(int)


def _balanced_subject_folds(videos: pd.DataFrame, k: int, field: str) -> dict[str, int]:
    """Whole subjects to k folds, greedily balancing spontaneous then total counts;
    deterministic (subjects with most spontaneous, then most videos, then id, go first).
    Fewer subjects than folds is a DatasetError naming `field` (the option that asked for k)."""
    if (subjects := videos.subject.nunique()) < k:
        raise DatasetError(f"{field} {k}: {subjects} subjects cannot fill {k} subject-disjoint folds")
    per = videos.groupby("subject").label.agg(spont="sum", total="count").reset_index()
    per = per.sort_values(["spont", "total", "subject"], ascending=[False, False, True])
    load = np.zeros((k, 2))
    out = {}
    for r in per.itertuples():
        f = (
            int(np.lexsort((np.arange(k), load[:, 1], load[:, 0]))[0])
            if r.spont
            else int(np.lexsort((np.arange(k), load[:, 0], load[:, 1]))[0])
        )
        load[f] += (r.spont, r.total)
        out[r.subject] = f + 1
    return out


@dataclass
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    test_dataset: str


def folds_for(split: str, dataset: str, root="", n_folds: int = 10) -> list[int]:
    """The folds `all` expands to for this split and dataset (`root` and `n_folds`: see fold_count)."""
    check_split(split, dataset)
    return parse_split(split).folds(fold_count(dataset, root, n_folds))


def check_split(split: str, dataset: str) -> None:
    if parse_split(split).kind != "kfold" and is_native(dataset) and dataset != "uvanemo":
        raise ValueError(
            f"split {split!r} trains on UvA-NEMO or a corpus of your own (with the attributes and the size); "
            f"got dataset {dataset!r}"
        )


def make_split(
    split: str, fold: int, dataset: str, videos: pd.DataFrame, target_videos: pd.DataFrame | None = None
) -> Split:
    """Train and test tables for one fold of a split. `videos` are the trial dataset's (with a
    `fold` column from assign_folds); `target_videos` the target dataset's for cross:<t>."""
    valid = folds_for(split, dataset) if is_native(dataset) else parse_split(split).folds(int(videos.fold.max()))
    if fold not in valid:
        raise ValueError(f"fold {fold} is not a fold of split {split!r} on {dataset}; valid: {valid}")
    split_ = _make_split(split, fold, dataset, videos, target_videos)
    for part in ("train", "test"):
        if len(getattr(split_, part)) == 0:
            raise ValueError(f"split {split!r} fold {fold} on {dataset} has no {part} videos in this corpus")
    return split_


def _make_split(split, fold, dataset, videos, target_videos) -> Split:
    spec = parse_split(split)
    if spec.kind == "kfold":
        return Split(videos[videos.fold != fold], videos[videos.fold == fold], dataset)
    if spec.kind == "cross":
        if target_videos is None:
            raise ValueError(f"split {split!r} needs the target dataset's videos")
        return Split(videos, target_videos, spec.target)
    (ca, va), (cb, vb) = GROUPS[spec.train_group], GROUPS[spec.test_group]
    for column in {ca, cb}:
        if not (videos[column].fillna("") != "").any():
            raise DatasetError(f"split {split!r} needs the {column} of {dataset}'s videos; its listing has none")
    if spec.kind == "within":
        group = videos[videos[ca] == va]
        return Split(group[group.fold != fold], group[group.fold == fold], dataset)
    return Split(videos[videos[ca] == va], videos[videos[cb] == vb], dataset)


def inner_split(train: pd.DataFrame, k: int, fold: int) -> Split:
    """Nested cross-validation: the outer fold's training videos in `k` subject-disjoint folds,
    balanced over the labels (as `n_folds` folds are built); inner fold `fold` validates."""
    inner = train.subject.map(_balanced_subject_folds(train, k, "inner_folds"))
    return Split(train[inner != fold], train[inner == fold], "inner")


def check_no_leak(outer: Split, inner: Split) -> None:
    """Raise if an outer test subject (or video) reached an inner fold's training or validation."""
    seen = set(inner.train.subject) | set(inner.test.subject)
    if leaked := sorted(seen & set(outer.test.subject)) or sorted(
        (set(inner.train.id) | set(inner.test.id)) & set(outer.test.id)
    ):
        raise ValueError(f"leak: outer test subject(s) or video(s) {', '.join(map(str, leaked[:5]))} in an inner fold")


def validation_subjects(train: pd.DataFrame, fraction: float, seed: int) -> set[str]:
    """A subject-disjoint validation set drawn from the training subjects (for model selection
    that never looks at the test fold)."""
    subjects = np.array(sorted(train.subject.unique()))
    n = max(1, int(round(len(subjects) * fraction)))
    rng = np.random.default_rng(seed)
    return set(rng.choice(subjects, n, replace=False).tolist())
