"""The report on hand-built sweep directories with known numbers (the demo run's report is
checked in test_sweep.py, on a real Ray sweep)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

from rsnet.config import TrialConfig
from rsnet.report import build_report
from rsnet.report.aggregate import CELL, fmt, mean_ci, per_seed, summarise
from rsnet.report.load import load_results
from rsnet.report.published import majority, method_descriptions, published, published_cross_domain
from rsnet.report.resampling import hierarchical_bootstrap, holm, paired, percentile_interval, sign_flip_p
from rsnet.sweep.spec import load_sweep

SPEC = """name: abl
description: hand-built ablation sweep on SPOS (7 leave-one-subject-out folds)
axes:
  dataset: [spos]
  fold: all
  seed: 3
  setting:
    full: {}
    no_tsa: {variant: no_tsa}
"""

# (setting, seed) -> per fold (1..7): (videos, correct). Seed 2 of `full` lacks folds 6 (failed) and 7.
FULL = {0: [(2, 1)] * 6 + [(4, 4)], 1: [(2, 0)] + [(2, 2)] * 6, 2: [(2, 2)] * 5}
NO_TSA = {0: [(2, 0)] * 6 + [(4, 4)], 1: [(2, 0)] + [(2, 1)] * 6, 2: [(2, 1)] * 7}


def make_trial(
    d: Path, cfg: dict, setting: str, videos: int, correct: int, synthetic: bool, epochs=(0.4, 0.9), subject="tomas"
):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "sweep_trial.json").write_text(json.dumps({"setting": setting, "attempts": []}))
    labels = np.arange(videos) % 2
    pred = np.where(np.arange(videos) < correct, labels, 1 - labels)
    pd.DataFrame(
        {
            "video": [f"{cfg['fold']}_{i}" for i in range(videos)],
            "subject": subject,
            "label": labels,
            "score": pred * 0.8 + 0.1,
            "predicted": pred,
        }
    ).to_csv(d / "predictions.csv", index=False)
    acc = correct / videos
    (d / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"epoch": e + 1, "train_loss": 1.0 / (e + 1), "train_acc": a, "test_acc": a}) + "\n"
            for e, a in enumerate([*epochs, acc])
        )
    )
    (d / "result.json").write_text(
        json.dumps(
            {
                "status": "finished",
                "accuracy": acc,
                "final_epoch_accuracy": acc,
                "optimistic_accuracy": max(*epochs, acc),
                "selected_epoch": 3,
                "wall_seconds": 1.0,
                "test_videos": videos,
                "test_dataset": "spos",
                "synthetic": synthetic,
            }
        )
    )


def correct_matrix(table: dict, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """seeds x (fold, video) correct answers of a FULL/NO_TSA table (NaN: no such video for that
    seed), and each column's fold, in the report's column order."""
    cols = sorted({(f + 1, f"{f + 1}_{i}") for s in seeds for f, (n, _) in enumerate(table[s]) for i in range(n)})
    m = np.full((len(seeds), len(cols)), np.nan)
    for row, s in enumerate(seeds):
        for f, (n, c) in enumerate(table[s]):
            for i in range(n):
                m[row, cols.index((f + 1, f"{f + 1}_{i}"))] = float(i < c)
    return m, np.array([f for f, _ in cols])


@pytest.fixture
def sweep_dir(tmp_path):
    """results/abl/ as the sweep runner leaves it: sweep.yaml and trials/<name>/ per trial."""
    out = tmp_path / "results" / "abl"
    out.mkdir(parents=True)
    (out / "sweep.yaml").write_text(SPEC)
    for t in load_sweep(out / "sweep.yaml").trials("/"):
        table = FULL if t.setting == "full" else NO_TSA
        d = out / "trials" / t.name
        folds = table[t.config.seed]
        if t.config.fold <= len(folds):
            make_trial(d, t.config.to_dict(), t.setting, *folds[t.config.fold - 1], synthetic=True)
        elif t.setting == "full" and t.config.fold == 6:  # failed
            d.mkdir(parents=True)
            (d / "config.json").write_text(json.dumps(t.config.to_dict()))
            error = "Ray Tune: Traceback (most recent call last):\n  File x.py\nTrialError: loss is nan at epoch 4"
            (d / "failed.json").write_text(json.dumps({"error": error}))  # multi-line, as Ray's are
        elif t.setting == "full":  # fold 7: killed before its config.json
            d.mkdir(parents=True)
            (d / "sweep_trial.json").write_text(json.dumps({"setting": "full", "attempts": []}))
    return out


def test_pooled_and_mean_of_folds_per_seed(sweep_dir):
    r = load_results(sweep_dir)
    assert len(r.trials) == 42 and (r.trials.status == "pending").sum() == 1
    assert r.trials.set_index("status").loc["pending", ["dataset", "fold", "seed"]].tolist() == ["spos", 7, 2]
    seeds = per_seed(r.trials, r.predictions).set_index(["setting", "seed"])
    assert seeds.loc[("full", 0), "pooled"] == pytest.approx(10 / 16)  # pooled over folds
    assert seeds.loc[("full", 0), "mean_of_folds"] == pytest.approx(4 / 7)  # mean of per-fold accuracies
    assert seeds.loc[("full", 1), "pooled"] == pytest.approx(12 / 14)
    assert seeds.loc[("full", 2), ["folds_done", "folds_expected", "complete"]].tolist() == [5, 7, False]
    assert seeds.loc[("no_tsa", 2), "complete"]


def test_mean_std_interval_and_incomplete_flags(sweep_dir):
    r = load_results(sweep_dir)
    cells = summarise(per_seed(r.trials, r.predictions)).set_index("setting")
    full = cells.loc["full"]
    # only the two complete seeds enter: 0.625 and 0.857142...
    assert full["mean"] == pytest.approx((10 / 16 + 12 / 14) / 2)
    assert full["std"] == pytest.approx(abs(10 / 16 - 12 / 14) / np.sqrt(2))
    half = 12.7062047 * full["std"] / np.sqrt(2)  # t(0.975, 1 dof)
    assert (full.ci_low, full.ci_high) == pytest.approx((full["mean"] - half, full["mean"] + half), rel=1e-6)
    assert full.flag == "(2/3 seeds)" and (full.seeds_complete, full.trials_done, full.trials_expected) == (2, 19, 21)
    assert cells.loc["no_tsa"].flag == "" and cells.loc["no_tsa"].seeds_complete == 3
    assert fmt(full["mean"], full["std"], full.flag) == "74.1 ± 16.4 (2/3 seeds)"


def test_cells_without_a_complete_seed_say_what_they_have():
    cell = {k: v for k, v in TrialConfig(dataset="bbc").to_dict().items() if k in CELL}
    seeds = pd.DataFrame(
        {
            **cell,
            "sweep": "s",
            "setting": "full",
            "forget_bias": "default",
            "seed": [0, 1],
            "folds_done": [3, 0],
            "folds_expected": [10, 10],
            "videos": [6, 0],
            "pooled": [0.5, np.nan],
            "mean_of_folds": [0.5, np.nan],
            "synthetic": False,
            "complete": False,
        }
    )
    cell = summarise(seeds).iloc[0]
    assert cell.flag == "(partial: 3/20 trials)" and cell["mean"] == 0.5
    assert fmt(cell["mean"], cell["std"], cell.flag) == "50.0 (partial: 3/20 trials)"


def test_paired_comparison_over_trials_and_test_videos(sweep_dir):
    r = load_results(sweep_dir)
    p = paired(r.trials, r.predictions).iloc[0]
    full = {(s, f + 1): (n, c) for s, folds in FULL.items() for f, (n, c) in enumerate(folds)}
    other = {(s, f + 1): (n, c) for s, folds in NO_TSA.items() for f, (n, c) in enumerate(folds)}
    common = sorted(full)  # 19 (seed, fold) pairs
    d = np.array([other[k][1] / other[k][0] - full[k][1] / full[k][0] for k in common])
    assert p.setting == "no_tsa" and p.reference == "full" and p.pairs == 19 and p.videos == 16
    # pooled over the pairs' test videos: the first c videos of a trial are the right ones
    assert p.mean_diff == pytest.approx(sum(other[k][1] - full[k][1] for k in common) / sum(full[k][0] for k in common))
    assert (p.better, p.worse, p.ties) == (0, int((d < 0).sum()), int((d == 0).sum())) == (0, 17, 2)
    assert p.ci_low < p.mean_diff < p.ci_high < 0  # clearly worse
    assert p.p < 0.01 and p.p_holm == p.p  # a family of one


def test_interval_helpers():
    m, s, lo, hi = mean_ci([0.8, 0.8, 0.8])
    assert (m, s, lo, hi) == pytest.approx((0.8, 0.0, 0.8, 0.8))
    assert np.isnan(mean_ci([0.7])[1])
    assert fmt(0.8125, 0.0123, "(2/3 seeds)", 0.75, 0.875) == "81.2 ± 1.2 [75.0, 87.5] (2/3 seeds)"


def test_video_bootstrap_resamples_videos_within_folds_and_seeds():
    one_fold = np.array([[1.0] * 300 + [0.0] * 100])  # 1 seed, 400 videos, 75 %
    lo, hi = percentile_interval(hierarchical_bootstrap(one_fold, np.ones(400)))
    half = 1.96 * np.sqrt(0.75 * 0.25 / 400)  # the binomial interval
    assert (lo, hi) == pytest.approx((0.75 - half, 0.75 + half), abs=0.006)
    # one fold all right, one all wrong: resampled within folds, every resample scores 50 %
    split = np.array([[1.0] * 50 + [0.0] * 50])
    assert percentile_interval(hierarchical_bootstrap(split, np.repeat([1, 2], 50))) == (0.5, 0.5)
    # two seeds answering alike share the video draw: no narrower than one seed
    two = percentile_interval(hierarchical_bootstrap(np.vstack([one_fold, one_fold]), np.ones(400)))
    assert two == pytest.approx((lo, hi), abs=0.006)
    # seeds that disagree widen it; a seed lacking a video (NaN) is left out of that video only
    seeds = np.array([[1.0] * 100, [0.0] * 100])
    assert percentile_interval(hierarchical_bootstrap(seeds, np.ones(100))) == (0.0, 1.0)
    gap = np.vstack([one_fold, np.where(np.arange(400) < 300, np.nan, 0.0)])
    assert np.nanmean(gap) == pytest.approx(300 / 500)
    assert np.median(hierarchical_bootstrap(gap, np.ones(400))) == pytest.approx(300 / 500, abs=0.03)


def test_sign_flip_and_holm():
    assert sign_flip_p(np.zeros(30)) == 1.0
    assert sign_flip_p(np.full(12, -0.5)) == pytest.approx(2 / 2**12)  # exact: 2 of 4096 sign patterns
    assert sign_flip_p(np.r_[np.full(10, 0.5), np.full(10, -0.5)]) == pytest.approx(1.0)
    assert holm([0.01, 0.04, 0.03, np.nan]) == pytest.approx([0.03, 0.06, 0.06, np.nan], nan_ok=True)
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_report_files_and_flags(sweep_dir):
    p = subprocess.run(
        [sys.executable, "-m", "rsnet.report", str(sweep_dir.parent)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    out = sweep_dir.parent / "report"
    assert "SYNTHETIC" in p.stdout and str(out) in p.stdout
    for name in (
        "table2",
        "table3",
        "table3_paired",
        "fps_resolution",
        "cross_domain",
        "subgroups",
        "mispredictions",
        "honest_vs_optimistic",
        "nested_search",
        "failed_trials",
    ):
        for ext in ("md", "csv", "tex"):
            assert (out / f"{name}.{ext}").exists(), f"{name}.{ext}"
    t3 = pd.read_csv(out / "table3.csv").query("sweep == 'abl'").set_index("setting")
    # mean ± std over complete seeds, [the interval over seeds and test videos], what is missing
    lo, hi = percentile_interval(hierarchical_bootstrap(*correct_matrix(FULL, [0, 1])))
    assert t3.loc["full", "spos"] == f"74.1 ± 16.4 [{100 * lo:.1f}, {100 * hi:.1f}] (2/3 seeds)"
    lo, hi = percentile_interval(hierarchical_bootstrap(*correct_matrix(NO_TSA, [0, 1, 2])))
    assert t3.loc["no_tsa", "spos"] == f"39.3 ± 12.9 [{100 * lo:.1f}, {100 * hi:.1f}]"  # 4/16, 6/14, 7/14
    assert lo < 0.393 < hi
    assert "SYNTHETIC DATA" in (out / "table3.md").read_text().splitlines()[0]
    assert "\\begin{tabular}" in (out / "table3.tex").read_text()
    failed = pd.read_csv(out / "failed_trials.csv")
    assert set(failed.status) == {"failed", "pending"} and failed.error.str.contains("loss is nan").any()
    table = (out / "failed_trials.md").read_text().split("\n\n")[1].splitlines()  # one line per trial
    assert len(table) == 2 + len(failed) and all(line.startswith("|") for line in table)
    honest = pd.read_csv(out / "honest_vs_optimistic.csv").set_index("setting")
    for setting, table in (("full", FULL), ("no_tsa", NO_TSA)):  # % over the finished trials, 1 decimal
        accs = np.array([c / n for folds in table.values() for n, c in folds])
        row = honest.loc[setting]
        assert row.trials == len(accs)
        assert row.headline == pytest.approx(100 * accs.mean(), abs=0.05)
        assert row.optimistic == pytest.approx(100 * np.maximum(accs, 0.9).mean(), abs=0.05)  # best test epoch
        assert row.gap == pytest.approx(row.optimistic - row.headline, abs=0.11)
    t2 = pd.read_csv(out / "table2.csv", dtype=str).set_index("method")
    assert t2.loc["RealSmileNet", ["uvanemo", "bbc", "mmi", "spos", "process"]].tolist() == [
        "82.1",
        "90.0",
        "92.0",
        "86.2",
        "fully-automatic",
    ]
    assert t2.loc["Wu'14", "mmi"] == "—" and t2.loc["RealSmileNet", "source"].startswith("published: Yang et al.")
    assert any(m.startswith("RealSmileNet, ours: abl") for m in t2.index)
    majority = t2.loc["majority class"].set_index("source").spos  # the paper's, then this run's
    assert majority.tolist() == ["82.5", "50.0"] and majority.index[0].startswith("published")
    t3 = pd.read_csv(out / "table3.csv", dtype=str)
    assert t3[(t3.sweep == "published") & (t3.setting == "no_tsa")].uvanemo.tolist() == ["78.5"]
    index = (out / "index.md").read_text()
    assert index.startswith("# SYNTHETIC DATA") and "pooled over all the protocol's folds" in index
    titles = [line for line in index.splitlines() if line.startswith("## ") and "(" in line]
    assert len(titles) == 11 and all("SYNTHETIC DATA" in t for t in titles)  # every table's title
    readings = pd.read_csv(out / "readings.csv", dtype=str).set_index("sweep").loc["abl"]
    assert readings.tolist() == [
        "balanced (inverse class share)",
        "0.005",
        "none",
        "by time at the trial's fps (the paper)",
        "chips placed by the eye landmarks, one size per clip (the authors' code: 68 landmarks)",
        "final epoch",
    ]
    assert "![curves_abl](curves_abl.png)" in index and (out / "curves_abl.png").stat().st_size > 10_000
    methods = index.split("## Methods\n\n", 1)[1].split("\n\n", 1)[0].splitlines()  # a sentence per name
    assert [m.split("**")[1] for m in methods] == [
        "Cohn'04",
        "Dibeklioglu'10",
        "Pfister'11",
        "Wu'14",
        "Dibeklioglu'15",
        "Mandal'17",
        "Mandal'16",
        "RealSmileNet",
        "majority class",
        "no_tsa",
        "mini_resnet",
        "mini_densenet",
        "no_weighted_loss",
        "softmax",
        "full",
    ]


def test_the_same_trial_names_in_two_sweeps_stay_apart(sweep_dir):
    import shutil

    other = sweep_dir.parent / "abl_again"
    shutil.copytree(sweep_dir, other)
    for f in (other / "trials").glob("*_no_tsa_*/predictions.csv"):  # no_tsa: every prediction right
        p = pd.read_csv(f)
        p.assign(predicted=p.label).to_csv(f, index=False)
    cells = pd.read_csv(build_report(sweep_dir.parent)["out"] / "cells.csv").set_index(["sweep", "setting"])
    assert cells.loc[("abl", "no_tsa"), "mean"] == pytest.approx((4 / 16 + 6 / 14 + 7 / 14) / 3)
    assert cells.loc[("abl_again", "no_tsa"), "mean"] == pytest.approx(1.0)
    assert cells.loc[("abl", "full"), "mean"] == cells.loc[("abl_again", "full"), "mean"]


def test_trials_that_differ_in_a_result_field_are_never_pooled(sweep_dir, capsys):
    """Copies of `full`'s finished trials that ran on the detector's box (as a plain `crop` axis
    gives), every prediction wrong: their own cell beside the aligned one, each labelled by its
    crop, each interval holding its figure; the aligned cells' numbers as before."""
    import shutil

    before = pd.read_csv(build_report(sweep_dir.parent)["out"] / "table3.csv").query("sweep == 'abl'")
    for d in sorted((sweep_dir / "trials").glob("*_full_*")):
        if (d / "result.json").exists():
            box = shutil.copytree(d, d.with_name(d.name + "-box"))
            cfg = json.loads((box / "config.json").read_text())
            (box / "config.json").write_text(json.dumps({**cfg, "crop": "box"}))
            p = pd.read_csv(box / "predictions.csv")
            p.assign(predicted=1 - p.label).to_csv(box / "predictions.csv", index=False)
    out = build_report(sweep_dir.parent)["out"]
    t3 = pd.read_csv(out / "table3.csv").query("sweep == 'abl'").set_index("setting").spos
    assert t3.to_dict() == {
        "full (crop aligned)": before.set_index("setting").spos["full"],
        "full (crop box)": "0.0 ± 0.0 [0.0, 0.0] (2/3 seeds)",
        "no_tsa": before.set_index("setting").spos["no_tsa"],
    }
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 3 and ((cells.video_low <= cells["mean"]) & (cells["mean"] <= cells.video_high)).all()
    pairs = pd.read_csv(out / "table3_paired.csv", keep_default_na=False)
    compared = pairs[["setting", "reference", "context", "pairs"]].values.tolist()
    assert compared == [["no_tsa", "full", "crop aligned", 19]]
    t2 = pd.read_csv(out / "table2.csv").set_index("method")
    assert {"RealSmileNet, ours: abl full (crop aligned)", "RealSmileNet, ours: abl full (crop box)"} <= set(t2.index)
    honest = pd.read_csv(out / "honest_vs_optimistic.csv")
    assert sorted(honest.setting) == ["full (crop aligned)", "full (crop box)", "no_tsa"]
    # a copy of a trial that changes nothing would count its videos twice: left out, named
    d = next(d for d in sorted((sweep_dir / "trials").glob("*_no_tsa_*")) if (d / "result.json").exists())
    shutil.copytree(d, d.with_name(d.name + "-copy"))
    capsys.readouterr()
    again = pd.read_csv(build_report(sweep_dir.parent)["out"] / "cells.csv")
    assert f"{d.name}-copy holds the same trial as {d.name}; left out" in capsys.readouterr().out
    pd.testing.assert_frame_equal(again, cells)


def test_report_on_a_missing_directory_says_so(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "rsnet.report", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert p.returncode == 2 and "nope" in p.stderr


GRID = """name: grid
axes:
  dataset: [uvanemo]
  fps: [3, 5]
  resolution: [48, 64]
  fold: [1]
  seed: 2
"""
GROUPS = """name: groups
axes:
  dataset: [uvanemo]
  split: [within:male, within:female, cross:bbc, adult->young]
  fold: [1]
  seed: 2
"""


def test_grid_subgroup_and_cross_domain_tables_and_figures(tmp_path):
    results = tmp_path / "results"
    for spec in (GRID, GROUPS):
        sweep = results / spec.split()[1]
        sweep.mkdir(parents=True)
        (sweep / "sweep.yaml").write_text(spec)
        for t in load_sweep(sweep / "sweep.yaml").trials("/"):
            c = t.config
            correct = (
                {3: 2, 5: 4}[int(c.fps)] + (c.resolution == 64)
                if spec is GRID
                else {"within:male": 3, "within:female": 1, "cross:bbc": 2, "adult->young": 4}[c.split]
            )
            make_trial(
                sweep / "trials" / t.name,
                c.to_dict(),
                t.setting,
                4 + (spec is GRID),
                correct,
                synthetic=False,
                subject="001",
            )  # UvA-NEMO subject 001: male, adult
    r = build_report(results)
    out = r["out"]
    assert not r["synthetic"] and "SYNTHETIC" not in (out / "index.md").read_text()
    grid = pd.read_csv(out / "fps_resolution.csv").set_index("fps")
    # a partial cell: the pooled figure of what it has, and the interval over those trials' videos
    partial = re.fullmatch(r"40\.0 ± 0\.0 \[(\d+\.\d), (\d+\.\d)\] \(partial: 2/20 trials\)", grid.loc[3, "48 px"])
    assert partial and float(partial[1]) < 40 < float(partial[2]) and grid.loc[5, "64 px"].startswith("100.0")
    assert (out / "fig6_grid_uvanemo.png").stat().st_size > 10_000
    groups = pd.read_csv(out / "subgroups.csv").set_index("group")
    assert groups.loc["male", "mean"] == pytest.approx(0.75) and groups.loc["female", "mean"] == pytest.approx(0.25)
    cross = pd.read_csv(out / "cross_domain.csv", dtype=str).set_index("test")
    # 2 of 4 test videos right for every seed: over 4 videos the interval spans about everything
    assert cross.loc["bbc", "accuracy"] == "50.0 ± 0.0 [0.0, 100.0]" and cross.loc["bbc", "train"] == "uvanemo (all)"
    assert cross.loc["uvanemo young", "accuracy"] == "100.0 ± 0.0 [100.0, 100.0]"
    assert cross.loc["bbc", "published"] == "80.0" and cross.loc["uvanemo young", "published"] == "75.9"
    assert cross.loc["bbc", "majority class"] == "50.0"
    mis = pd.read_csv(out / "mispredictions.csv")
    assert (mis.gender == "male").all() and (mis.age_group == "adult").all()
    assert mis.videos.sum() == 2 * 5  # the 5 fps, 48 px cell of `grid`, two seeds
    assert "within:" not in (out / "table2.md").read_text()
    ours = pd.read_csv(out / "table2.csv").method  # which of grid's cells is the paper's protocol
    assert "RealSmileNet, ours: grid full (fps 5, resolution 48)" in set(ours)
    # Fig. 7's halves come from two sweeps (groups: within-group trials; grid: the full model's
    # UvA-NEMO predictions): one figure with bars in both halves, not a placeholder text
    from PIL import Image

    ink = np.asarray(Image.open(out / "fig7.png").convert("L")) < 200
    left, right = np.array_split(ink[ink.shape[0] // 8 :], 2, axis=1)  # below the title
    assert left.mean() > 0.05 and right.mean() > 0.05, (left.mean(), right.mean())


def test_majority_class_of_each_protocols_distinct_test_videos():
    trials = pd.DataFrame(
        {
            "trial": ["s/a", "s/b", "s/c", "s/d"],
            "dataset": ["spos", "spos", "spos", "uvanemo"],
            "split": ["kfold", "kfold", "kfold", "cross:bbc"],
            "status": "finished",
        }
    )
    predictions = pd.DataFrame(
        {
            "trial": ["s/a", "s/a", "s/b", "s/b", "s/c", "s/c", "s/d", "s/d", "s/d"],
            "video": ["v1", "v2", "v3", "v4", "v1", "v2", "g1", "g2", "g3"],  # c repeats a
            "label": [1, 1, 1, 0, 1, 1, 0, 0, 1],
        }
    )
    m = majority(trials, predictions)
    assert m[("spos", "kfold")] == pytest.approx(75.0)  # 3 of the 4 distinct videos spontaneous
    assert m[("uvanemo", "cross:bbc")] == pytest.approx(200 / 3)  # 2 of 3 posed


SHARED_PAPER = REPO.parent / "shared" / "paper"
needs_paper = pytest.mark.skipif(
    not SHARED_PAPER.is_dir(), reason="the paper's transcription lies in ../shared beside the checkout"
)


@needs_paper
def test_readings_name_the_authors_code_where_a_sweep_follows_it():
    from rsnet.report.audit import readings

    trials = pd.DataFrame(
        {
            "sweep": ["a", "a", "b"],
            "loss_weighting": ["none", "balanced", None],
            "weight_decay": [0.0, 0.0, None],
            "l2_penalty": [0.001, 0.001, None],
            "frame_stride": [5, 5, None],
            "crop": ["aligned", "aligned", None],
            "val_fraction": [0.2, 0.2, None],
        }
    )
    t = readings(trials).df.set_index("sweep")
    assert t.loc["a"].tolist() == [
        "balanced (inverse class share); none (the authors' code)",
        "0",
        "0.001 x sum of every parameter's L2 norm (the authors' code)",
        "every 5th frame (the authors' code)",
        "chips placed by the eye landmarks, one size per clip (the authors' code: 68 landmarks)",
        "picked on a validation split of 20% of training subjects",
    ]
    assert t.loc["b"].tolist() == [
        "balanced (inverse class share)",
        "0.005",
        "none",  # older trials: the defaults of their time
        "by time at the trial's fps (the paper)",
        "a square around the detector's box",  # trials from before the crop option
        "final epoch",
    ]


def test_every_published_method_and_shipped_setting_has_a_sentence():
    known = method_descriptions()
    settings = {name for f in (REPO / "sweeps").glob("*.yaml") for name in load_sweep(f).axes.get("setting", {})}
    assert set(published().method) | settings <= set(known), sorted(set(published().method) | settings - set(known))
    assert all(s.endswith(".") and len(s) > 40 for s in known.values())


@needs_paper
def test_published_numbers_are_the_papers_transcription():
    ours = published().set_index(["table", "method"])
    paper = pd.read_csv(SHARED_PAPER / "published_results.csv", dtype=str).fillna("").set_index(["table", "row"])
    assert len(ours.drop(index="majority", level="table")) == len(paper)
    for (table, row), r in paper.iterrows():
        o = ours.loc[(table, row)]
        assert [o[d] for d in ("uvanemo", "bbc", "mmi", "spos", "process_type")] == [
            r[d] for d in ("uvanemo", "bbc", "mmi", "spos", "process_type")
        ], (table, row)
    cross = pd.read_csv(SHARED_PAPER / "published_cross_domain.csv", dtype=str)
    assert published_cross_domain()[["train", "test", "accuracy"]].equals(cross[["train", "test", "accuracy"]])


def test_a_corpus_of_ones_own_gets_its_column_without_its_manifest_at_hand(tmp_path):
    """A manifest corpus's sweep, reported where its data are not: its planned folds are expected,
    its column stands beside the paper's four, and the published rows have none for it."""
    out = tmp_path / "results" / "mine"
    (out / "sweep.yaml").parent.mkdir(parents=True)
    (out / "sweep.yaml").write_text("name: mine\naxes: {dataset: [mine], seed: [0]}\n")
    plan = []
    for fold, (videos, correct) in enumerate([(10, 9), (10, 7), (10, 8)], 1):
        cfg = TrialConfig(dataset="mine", root="/elsewhere/mine", fold=fold, n_folds=4).to_dict()
        name = f"mine_kfold_f{fold}_s0_full"
        plan.append({"name": name, "setting": "", "config": cfg})
        make_trial(out / "trials" / name, cfg, "", videos, correct, synthetic=False)
    cfg = TrialConfig(dataset="mine", root="/elsewhere/mine", fold=4, n_folds=4).to_dict()
    plan.append({"name": "mine_kfold_f4_s0_full", "setting": "", "config": cfg})  # planned, not run
    (out / "plan.json").write_text(json.dumps({"trials": plan}))
    report = build_report(tmp_path / "results")["out"]
    seeds = pd.read_csv(report / "per_seed.csv")
    assert list(seeds.folds_done) == [3] and list(seeds.folds_expected) == [4]
    t2 = pd.read_csv(report / "table2.csv", dtype=str, keep_default_na=False)
    assert list(t2.columns[-5:]) == ["uvanemo", "bbc", "mmi", "spos", "mine"]
    assert set(t2[t2.source.str.startswith("published")].mine) == {"—"}
    ours = t2[t2.source == "this run, pooled"]
    assert len(ours) == 1 and ours.mine.iloc[0].startswith("80.0")
