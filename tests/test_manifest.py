"""A corpus of one's own (rsnet.data.manifest): a CSV names the videos; given folds are used as
they are, otherwise subject-disjoint folds are built; bad rows are errors naming the line; a
manifest of the tiny UvA-NEMO corpus's own files trains as the native adapter does."""

import os

import pandas as pd
import pytest

from rsnet.config import TrialConfig
from rsnet.data import DatasetError, assign_folds, folds_for, list_videos, make_split
from rsnet.data.adapters import registered
from rsnet.sweep.spec import SweepError, load_sweep
from rsnet.trial import run_trial


def write_manifest(folder, corpus, *, folds: bool, rows=None) -> pd.DataFrame:
    """folder/manifest.csv naming the native listing's videos by paths relative to the CSV."""
    native = list_videos("uvanemo", corpus)
    table = pd.DataFrame(
        {
            "path": [os.path.relpath(p, folder) for p in native.path],
            "label": native.label.map({1: "spontaneous", 0: "posed"}),
            "subject": native.subject,
            "age": native.age.astype(int),
            "gender": native.gender,
        }
    )
    if folds:
        table["fold"] = assign_folds("uvanemo", native)
    table = table if rows is None else rows(table)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "manifest.csv", index=False)
    return native


def test_a_manifest_with_the_protocols_folds_reads_and_splits_as_the_native_adapter(corpora, tmp_path):
    native = write_manifest(tmp_path / "mine", corpora["uvanemo"], folds=True)
    mine = list_videos("mine", tmp_path / "mine")
    assert list(mine.path) == list(native.path)
    for column in ("label", "subject", "gender", "age_group"):
        assert list(mine[column]) == list(native[column]), column
    assert list(assign_folds("mine", mine)) == list(assign_folds("uvanemo", native))
    assert folds_for("kfold", "mine", tmp_path / "mine") == folds_for("kfold", "uvanemo")
    # the subgroup splits read its age and gender as they read UvA-NEMO's
    native_f, mine_f = native.assign(fold=assign_folds("uvanemo", native)), mine.assign(fold=mine.fold)
    fold = int(native_f.fold[native_f.gender == "female"].iloc[0])
    for split, k in (("within:female", fold), ("adult->young", 1)):
        a, b = make_split(split, k, "uvanemo", native_f), make_split(split, k, "mine", mine_f)
        assert list(a.test.path) == list(b.test.path) and list(a.train.path) == list(b.train.path)
    with pytest.raises(DatasetError, match="split 'within:male' needs the gender of mine's videos"):
        make_split("within:male", fold, "mine", mine_f.assign(gender=""))


def test_without_folds_the_subjects_are_split_disjoint_balanced_and_always_alike(corpora, tmp_path):
    write_manifest(tmp_path / "mine", corpora["uvanemo"], folds=False)
    videos = list_videos("mine", tmp_path / "mine")
    fold = assign_folds("mine", videos, n_folds=4)
    assert sorted(fold.unique()) == [1, 2, 3, 4]
    assert (videos.assign(fold=fold).groupby("subject").fold.nunique() == 1).all()
    spontaneous = videos.assign(fold=fold).groupby("fold").label.sum()
    whole = videos.groupby("subject").label.sum().max()  # folds take whole subjects
    assert spontaneous.max() - spontaneous.min() <= whole < spontaneous.sum() / 4
    assert list(assign_folds("mine", list_videos("mine", tmp_path / "mine"), n_folds=4)) == list(fold)
    with pytest.raises(DatasetError, match="n_folds 99: .* subjects cannot fill 99"):
        assign_folds("mine", videos, n_folds=99)


def _missing_file(t):
    t.loc[2, "path"] = "nowhere/clip.mp4"
    return t


def _bad_label(t):
    t.loc[3, "label"] = "happy"
    return t


def _subject_in_two_folds(t):
    s = t.subject[0]
    t.loc[t.index[t.subject == s][-1], "fold"] = t.fold[0] % t.fold.max() + 1
    return t


@pytest.mark.parametrize(
    "rows, says",
    [
        (_missing_file, r"manifest.csv:4: path 'nowhere/clip.mp4': no such file"),
        (_bad_label, r"manifest.csv:5: label 'happy': unknown label; valid: 1, spontaneous"),
        (_subject_in_two_folds, r"manifest.csv:\d+: subject '\w+' is in fold \d+ and fold \d+ \(lines 2, "),
        (lambda t: t.drop(columns="subject"), r"manifest.csv: missing column\(s\) subject"),
        (lambda t: t.assign(fold=t.fold.astype(str).where(t.index != 1, "")), r"manifest.csv:3: fold '': empty"),
        (lambda t: t.assign(gender="x"), r"manifest.csv:2: gender 'x': valid: male, female"),
    ],
)
def test_a_bad_row_is_an_error_naming_the_csv_line_and_field(corpora, tmp_path, rows, says):
    write_manifest(tmp_path / "mine", corpora["uvanemo"], folds=True, rows=rows)
    with pytest.raises(DatasetError, match=says):
        list_videos("mine", tmp_path / "mine")


def test_a_sweep_plans_the_manifests_folds_and_names_an_unknown_dataset(corpora, tmp_path):
    write_manifest(tmp_path / "data" / "mine", corpora["uvanemo"], folds=True)
    sweep_file = tmp_path / "mine.yaml"
    sweep_file.write_text("name: mine\naxes: {dataset: [mine], seed: [0]}\n")
    trials = load_sweep(sweep_file, tmp_path / "data").trials(tmp_path / "data")
    assert sorted(t.config.fold for t in trials) == folds_for("kfold", "uvanemo")
    assert {t.config.root for t in trials} == {str(tmp_path / "data" / "mine")}
    sweep_file.write_text("name: mine\naxes: {dataset: [yours], seed: [0]}\n")
    with pytest.raises(SweepError, match=r"mine.yaml: dataset 'yours': .*root .*yours' has none"):
        load_sweep(sweep_file, tmp_path / "data")
    with pytest.raises(ValueError, match=r"config field dataset: 'yours' is not valid; valid: uvanemo, bbc, mmi"):
        TrialConfig(dataset="yours", root=str(tmp_path)).validate()


def test_an_installed_adapter_lists_a_dataset_by_its_registered_name(corpora, tmp_path, monkeypatch):
    """A distribution on sys.path registering `folders` in the rsnet.datasets group, as pip writes it."""
    site = tmp_path / "site"
    (site / "folders_adapter-1.0.dist-info").mkdir(parents=True)
    (site / "folders_adapter-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: x\nVersion: 1.0\n")
    (site / "folders_adapter-1.0.dist-info" / "entry_points.txt").write_text(
        "[rsnet.datasets]\nfolders = folders_adapter:list_folders\n"
    )
    (site / "folders_adapter.py").write_text(
        "from rsnet.data import list_videos\n"
        "def list_folders(root):\n"
        "    return list_videos('uvanemo', root).assign(fold=lambda v: v.subject.astype(int) % 3 + 1)\n"
    )
    monkeypatch.syspath_prepend(str(site))
    registered.cache_clear()
    try:
        videos = list_videos("folders", corpora["uvanemo"])
        assert set(videos.fold) == {1, 2, 3}
        assert folds_for("kfold", "folders", corpora["uvanemo"]) == [1, 2, 3]
    finally:
        registered.cache_clear()


@pytest.mark.slow
def test_a_manifest_trial_equals_the_native_trial_on_the_same_folds(corpora, cache, tmp_path):
    write_manifest(tmp_path / "mine", corpora["uvanemo"], folds=True)
    common = dict(fold=2, seed=0, epochs=2, batch_size=8, lr=3e-3, threads=1, cache=str(cache))
    native = run_trial(TrialConfig(dataset="uvanemo", root=str(corpora["uvanemo"]), **common), tmp_path / "native")
    mine = run_trial(TrialConfig(dataset="mine", root=str(tmp_path / "mine"), **common), tmp_path / "trial")
    assert mine["accuracy"] == native["accuracy"]
    a, b = (pd.read_csv(tmp_path / d / "predictions.csv") for d in ("native", "trial"))
    assert list(a.label) == list(b.label) and list(a.score) == pytest.approx(list(b.score), abs=1e-6)
