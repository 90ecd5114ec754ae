"""Nested subject-disjoint cross-validation (a sweep's `search`): the section is checked like
every key; inner folds never hold an outer test subject (and a splitter that leaks is caught);
a tiny search runs end to end on Ray Tune, stopped by SIGTERM and continued by the same command,
its selection auditable from the files, and a rerun trains nothing again."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO, finished_inner, run, sweep_cmd, tiny_one, tiny_variant

from rsnet.config import TrialConfig
from rsnet.data import assign_folds, list_videos, make_split, splits
from rsnet.sweep.search import Search
from rsnet.sweep.spec import SweepError, load_sweep
from rsnet.trial import run_trial

SEARCH = """search:
  space: {lr: {loguniform: [1.0e-4, 1.0e-2]}, batch_size: {choice: [4, 8]}}
  samples: 3
  inner_folds: 2
  scheduler: asha
"""

# lr 1e-7 leaves the example's motion-profile model where it started, scoring every video alike;
# lr 0.1 learns the synthetic smiles' phase order within an epoch (9 parameters, seconds a trial)
MOTION = "rsnet_example.models:build_motion_profile"
HOPELESS = """search:
  space: {lr: {choice: [1.0e-7, 0.1]}, batch_size: {choice: [4, 8]}}
  samples: 6
  inner_folds: 2
  scheduler: asha
"""


@pytest.mark.parametrize(
    "section, says",
    [
        ("search: {space: {lr: {loguniform: [1, 0.1]}}}", r"search.space.lr.loguniform: \[low, high\]"),
        ("search: {space: {fold: {choice: [1, 2]}}}", r"search.space.fold: not a searchable field"),
        ("search: {space: {lr: {normal: [0, 1]}}}", r"search.space.lr: one of loguniform, uniform"),
        ("search: {space: {variant: {choice: [full, nope]}}}", r"search.space.variant.choice: 'nope': .*not valid"),
        ("search: {space: {lr: {choice: [0.1]}}, inner_folds: 1}", r"search.inner_folds: an integer >= 2"),
        ("search: {space: {lr: {choice: [0.1]}}, sampler: tpe}", r"unknown key search.sampler; valid: algorithm"),
    ],
)
def test_a_bad_search_section_names_the_file_and_key(tmp_path, section, says):
    f = tiny_variant(tmp_path / "s.yaml", ("max_failures: 2", f"max_failures: 2\n{section}"))
    with pytest.raises(SweepError, match=says):
        load_sweep(f)


def test_inner_folds_are_subject_disjoint_and_free_of_the_outer_test_subjects(corpora):
    videos = list_videos("uvanemo", corpora["uvanemo"])
    videos = videos.assign(fold=assign_folds("uvanemo", videos))
    outer = make_split("kfold", 1, "uvanemo", videos)
    seen = []
    for k in (1, 2, 3):
        inner = splits.inner_split(outer.train, 3, k)
        splits.check_no_leak(outer, inner)
        assert not set(inner.train.subject) & set(inner.test.subject)
        seen += list(inner.test.id)
    assert sorted(seen) == sorted(outer.train.id)  # every training video validates once


@pytest.mark.slow
def test_a_splitter_that_leaks_an_outer_test_subject_is_caught(tiny_trial, corpora, tmp_path, monkeypatch):
    videos = list_videos("uvanemo", corpora["uvanemo"])
    test_rows = videos[assign_folds("uvanemo", videos) == 2]
    honest = splits.inner_split

    def leaky(train, k, fold):  # one outer test subject's videos into the inner validation fold
        s = honest(train, k, fold)
        return splits.Split(
            s.train, pd.concat([s.test, test_rows[test_rows.subject == test_rows.subject.iloc[0]]]), "x"
        )

    monkeypatch.setattr(splits, "inner_split", leaky)
    with pytest.raises(ValueError, match=f"leak: outer test subject.*{test_rows.subject.iloc[0]}"):
        run_trial(tiny_trial(fold=2, epochs=1, inner_folds=2, inner_fold=1), tmp_path / "leaky")
    monkeypatch.setattr(splits, "inner_split", honest)
    result = run_trial(tiny_trial(fold=2, epochs=1, inner_folds=2, inner_fold=1), tmp_path / "honest")
    assert not set(result["inner"]["validated_on_subjects"]) & set(test_rows.subject)


@pytest.mark.slow
def test_a_tiny_search_stopped_continues_chooses_from_its_inner_folds_and_a_rerun_trains_nothing(tmp_path, shared):
    f = tiny_one(tmp_path / "search.yaml", 2, ("max_failures: 2", f"max_failures: 2\n{SEARCH}"))
    sweep = tmp_path / "results" / "tiny"
    # SIGTERM once a configuration has finished its inner trials (two train at a time, of three)
    proc = subprocess.Popen(
        sweep_cmd(f, tmp=tmp_path, **shared), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    deadline = time.time() + 300
    while not finished_inner(sweep / "search") and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:] + err[-3000:]
    assert "the same command continues it" in out and "Traceback" not in err, out[-3000:] + err[-3000:]
    assert not list(sweep.glob("search/*/selection.json"))  # nothing chosen from a search cut short
    before = finished_inner(sweep / "search")
    # the same command continues the search: finished inner trials are not trained again, the
    # searcher goes on to its three configurations
    p = run(f, tmp=tmp_path, **shared)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert {k: v for k, v in finished_inner(sweep / "search").items() if k in before} == before
    [selection_file] = sweep.glob("search/*/selection.json")
    selection = json.loads(selection_file.read_text())
    assert len(selection["configurations"]) == 3 == len(list(sweep.glob("search/*/configs/*/configuration.json")))
    outer_test = set(pd.read_csv(next(sweep.glob("trials/*_full_*/predictions.csv")), dtype=str).subject)
    # every inner trial, ASHA's stopped ones too: its outer fold and subjects, none an outer test subject
    inner = [Path(t) for c in selection["configurations"] for t in c["inner_trials"]]
    assert len(inner) == 2 * len(selection["configurations"]) >= 2
    for t in inner:
        record = json.loads((t / "inner.json").read_text())
        assert record["outer_fold"] == 2 and record["inner_fold"] == int(t.name[-1])
        assert not (set(record["validated_on_subjects"]) | set(record["trained_on_subjects"])) & outer_test
    # a configuration ran every epoch iff its inner trials all finished, tested on their inner folds
    done = [c for c in selection["configurations"] if c["completed"]]
    assert done and all((c["epochs_run"] == 2) == c["completed"] for c in selection["configurations"])
    for c in done:
        for t in c["inner_trials"]:
            r = json.loads((Path(t) / "result.json").read_text())
            assert r["test_dataset"] == "inner" and r["inner"] == json.loads((Path(t) / "inner.json").read_text())
    # the chosen configuration is the best finished one by mean inner accuracy, and the tuned trial has it
    assert selection["mean_inner_accuracy"] == max(c["mean_inner_accuracy"][-1] for c in done)
    table = pd.read_csv(sweep / "trials.csv")
    tuned = table[table.setting == "full-tuned"]
    assert len(tuned) == 1 and tuned.status.iloc[0] == "finished"
    assert (
        tuned.lr.iloc[0] == selection["chosen"]["lr"] and tuned.batch_size.iloc[0] == selection["chosen"]["batch_size"]
    )
    assert json.loads(tuned.tuned.iloc[0])["inner_folds"] == 2
    # TensorBoard's HParams: an entry per configuration, with its values and mean inner accuracy per epoch
    for c in selection["configurations"]:
        values, curve = hparams_entry(selection_file.parent / "configs" / c["configuration"])
        assert values == {**c["params"], "outer_fold": 2, "seed": 0}
        assert curve == pytest.approx(c["mean_inner_accuracy"])
    # a rerun restores each search: no inner or outer trial trains again
    stamps = {p: p.stat().st_mtime_ns for p in sweep.glob("**/metrics.jsonl")}
    again = run(f, tmp=tmp_path, **shared)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("**/metrics.jsonl")} == stamps
    assert json.loads(selection_file.read_text())["chosen"] == selection["chosen"]


def hparams_entry(folder) -> tuple[dict, list[float]]:
    """A folder's HParams values and its hparam/inner_accuracy points, read with TensorBoard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    events = EventAccumulator(str(folder))
    events.Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME).values()
    (start,) = [s for c in content if (s := plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info).hparams]
    values = {k: v.number_value if v.HasField("number_value") else v.string_value for k, v in start.hparams.items()}
    return values, [e.value for e in events.Scalars("hparam/inner_accuracy")]


def test_each_outer_trial_seeds_its_searcher_from_what_it_is_not_where_its_files_lie():
    search = Search(space={"lr": {"loguniform": [1e-4, 1e-2]}, "batch_size": {"choice": [4, 8]}})
    outer = TrialConfig(dataset="uvanemo", root="/data/nemo", fold=2, cache="/scratch/cache")
    moved = outer.replace(root="/elsewhere/nemo", cache="/other/cache")
    seed = search.searcher_seed(outer)
    assert search.searcher_seed(moved) == seed
    others = [outer.replace(fold=3), outer.replace(seed=1), outer.replace(variant="no_fpn")]
    assert len({seed, *(search.searcher_seed(o) for o in others)}) == 4
    assert Search(space=search.space, seed=1).searcher_seed(outer) != seed

    def draws(cfg):  # the first configurations Optuna suggests, asked as Tune asks
        searcher = search.searcher(cfg)
        searcher.set_search_properties("inner_accuracy", "max", search.tune_space())
        return [searcher.suggest(str(i)) for i in range(3)]

    assert draws(outer) == draws(moved) != draws(outer.replace(fold=3))


@pytest.mark.slow
def test_asha_stops_the_hopeless_region_at_its_first_epoch(tmp_path, shared, example_importable):
    """One sample at a time (one CPU), so ASHA judges each sample's first epoch against those
    before it: every lr-1e-7 sample started after a good one stops there, the ones before any good
    one (nothing better to compare with) run on, and a good one is chosen."""
    f = tiny_one(
        tmp_path / "hopeless.yaml",
        4,
        ("    full: {}", f"    motion: {{variant: '{MOTION}'}}"),
        ("max_failures: 2", f"max_failures: 2\n{HOPELESS}"),
    )
    p = run(f, "--num-cpus", "1", tmp=tmp_path, **shared)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    [selection_file] = (tmp_path / "results" / "tiny").glob("search/*/selection.json")
    selection = json.loads(selection_file.read_text())
    samples = selection["configurations"]  # in the order they started: a folder per sample
    assert len(samples) == 6 == len({c["configuration"] for c in samples})
    hopeless = [c["params"]["lr"] == 1.0e-7 for c in samples]
    first_good = hopeless.index(False)
    assert any(hopeless[first_good:]), "the draw has no hopeless sample after a good one: change search.seed"
    good_start = min(c["mean_inner_accuracy"][0] for c, h in zip(samples, hopeless) if not h)
    for c, h in zip(samples, hopeless):
        if h:
            assert max(c["mean_inner_accuracy"]) < good_start  # hopeless indeed
    for i, (c, h) in enumerate(zip(samples, hopeless)):
        if h and i > first_good:
            assert c["epochs_run"] == 1 and not c["completed"], c
        elif h:
            assert c["epochs_run"] == 4 and c["completed"], c
    assert selection["chosen"]["lr"] == 0.1
    assert selection["inner_trial_epochs_run"] < selection["inner_trial_epochs_without_early_stopping"] == 6 * 2 * 4
