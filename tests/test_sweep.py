"""Sweeps on Ray Tune: every shipped file, bad files, a real demo run, a trial that fails alone
(killed workers and drivers, and two Ray nodes: test_sweep_faults.py)."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO, TINY, listeners, run, tiny_variant

from rsnet.sweep.spec import SweepError, load_sweep


@pytest.mark.parametrize(
    "name,count",
    [
        ("benchmark", 360),
        ("ablations", 6 * 360),
        ("fps_resolution", 16 * 100),
        ("cross_domain", 70),
        ("subgroups", 400),
        ("demo", 15),
        ("tune_demo", 5),  # outer trials; each adds its search and a tuned trial when run
    ],
)
def test_every_sweep_file_expands_to_the_expected_count(name, count):
    trials = load_sweep(REPO / "sweeps" / f"{name}.yaml").trials("data")
    assert len(trials) == count and len({t.name for t in trials}) == count  # unique trial names
    assert len({t.config.hash() for t in trials}) == count


def test_each_synthetic_corpus_seed_has_its_own_folder():
    sweep = load_sweep(REPO / "sweeps" / "demo.yaml")
    assert {t.config.root for t in sweep.trials("data")} == {str(Path("data/synthetic-small/uvanemo"))}
    sweep.synthetic["seed"] = 3  # what --synthetic-seed 3 sets
    assert {t.config.root for t in sweep.trials("data")} == {str(Path("data/synthetic-small-seed3/uvanemo"))}


def test_dry_run_lists_the_trials(tmp_path):
    p = run("--grid", "benchmark", "--dry-run", tmp=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[-1].startswith("sweep benchmark: 360 trials") and len(lines) == 361
    assert not (tmp_path / "results").exists()


def test_a_regular_install_finds_its_grids_and_launcher_from_any_directory(tmp_path):
    """A wheel installed elsewhere (not this checkout): `--grid demo` and the Slurm launcher. The
    wheel is built from a copy of the sources, so that no build files land in the checkout."""
    import shutil

    src, wheel = tmp_path / "src", tmp_path / "wheel"
    shutil.copytree(REPO / "rsnet", src / "rsnet", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheel, src], check=True, timeout=300)
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", tmp_path / "site", *wheel.glob("*.whl")], check=True, timeout=300
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    (tmp_path / "elsewhere").mkdir()

    def python(*args):
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path / "elsewhere", env=env
        )

    p = python("-m", "rsnet.sweep", "--grid", "demo", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1].startswith("sweep demo: 15 trials (" + str(tmp_path / "site"))
    where = python("-c", "import rsnet.slurm as s; print(s.LAUNCHER, s.LAUNCHER.is_file())").stdout
    assert where.startswith(str(tmp_path / "site")) and where.split()[-1] == "True"
    p = python("-m", "rsnet.sweep", "--grid", "nope", "--dry-run")
    assert p.returncode == 2 and "no sweep named 'nope'" in p.stderr and "demo" in p.stderr


def test_all_shipped_sweeps_are_tested():
    shipped = {p.stem for p in (REPO / "sweeps").glob("*.yaml")}
    assert shipped == {"benchmark", "ablations", "fps_resolution", "cross_domain", "subgroups", "demo", "tune_demo"}


@pytest.mark.parametrize(
    "text,match",
    [
        ("name: x\naxes: {dataset: [uvanemo]}\nfoo: 1\n", "unknown key foo"),
        ("defaults: {epochz: 3}\n", "unknown key defaults.epochz"),
        ("axes: {setting: {a: {variantt: full}}}\n", "unknown key axes.setting.a.variantt"),
        ("axes: {variant: [full, vgg]}\n", "config field variant: 'vgg' is not valid; valid: full"),
        ("axes: {fold: [11]}\n", "config field fold: 11"),
        ("axes: {seed: []}\n", "axes.seed must be a non-empty list"),
        ("resources: {cpu: 1, tpu: 1}\n", "unknown key resources.tpu"),
        ("defaults: {root: /data/uvanemo}\n", "defaults.root: the sweep sets it from --data-root"),
        ("defaults: {threads: 4}\n", "defaults.threads: the sweep sets it from resources.cpu"),
        ("axes: {cache: [a, b]}\n", "axes.cache: the sweep sets it from --cache"),
        ("axes: {checkpoint_every: [1, 5]}\n", "axes.checkpoint_every does not change a result: set it in defaults"),
        ("defaults: {inner_folds: 3}\n", "defaults.inner_folds: the sweep sets it from search.inner_folds"),
    ],
)
def test_bad_sweep_files_name_the_file_and_key(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SweepError, match=match) as e:
        load_sweep(f)
    assert str(f) in str(e.value)


def test_slurm_forwards_every_option_of_the_sweep_command_but_its_own():
    """Every option set here differs from its default (checked: a new option not set here fails),
    and each arrives in the job's sweep command; the Slurm group's, the file and --address do not."""
    from rsnet.slurm import forwarded
    from rsnet.sweep.__main__ import parse_args, parser

    argv = [str(TINY), "--data-root", "d", "--results", "r", "--cache", "c", "--address", "auto"]
    argv += ["--num-cpus", "3", "--num-gpus", "1", "--wait-for-resources", "--dry-run", "--resume"]
    argv += ["--no-progress-bar", "--max-trials", "4", "--epochs", "2", "--folds", "1", "2"]
    argv += ["--synthetic-size", "tiny", "--synthetic-seed", "3"]
    argv += ["--slurm", "--partition", "gpu", "--nodes", "2", "--gpus-per-node", "1", "--cpus-per-task", "4"]
    argv += ["--time", "60", "--wait"]
    a, ap = parse_args(argv), parser()
    own = {"file", "grid", "address", *ap.slurm_options}
    defaults = vars(ap.parse_args(["x.yaml"]))
    assert {k for k, v in vars(a).items() if v != defaults[k]} >= set(vars(a)) - own - {"grid"}
    sent = forwarded(a)
    back = vars(ap.parse_args(["x.yaml", *sent]))
    assert {k: back[k] for k in set(vars(a)) - own} == {k: v for k, v in vars(a).items() if k not in own}
    assert not {"--slurm", "--partition", "--nodes", "--time", "--wait", "--address", str(TINY)} & set(sent)


def test_cli_reports_a_bad_file_before_running(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("defaults: {epochz: 3}\n")
    p = run(f, tmp=tmp_path)
    assert p.returncode == 2 and str(f) in p.stderr and "defaults.epochz" in p.stderr


def test_missing_dataset_gets_a_clear_message(tmp_path):
    f = tmp_path / "real.yaml"
    f.write_text("axes: {dataset: [bbc], fold: [1]}\n")
    p = run(f, tmp=tmp_path)
    assert p.returncode == 2 and "dataset bbc not found at" in p.stderr and "RSNET_DATA" in p.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory, sweep_data, cache):
    """The README's demo sweep run once in reduced form (2 folds, 2 epochs, the tiny corpus) from a
    folder of its own with relative paths, as the README's commands use them (Ray runs trials in
    other directories; data/ and cache/ link to the session's tiny corpus and cache), then the
    report over it. Yields the folder, the sweep's process, every TCP port its processes
    listened on, and the report's process."""
    tmp = tmp_path_factory.mktemp("demo")
    (tmp / "data").symlink_to(sweep_data)
    (tmp / "cache").symlink_to(cache)
    cmd = [sys.executable, "-m", "rsnet.sweep", "--grid", "demo", "--epochs", "2", "--folds", "1", "2"]
    cmd += ["--synthetic-size", "tiny", "--num-cpus", "2", "--data-root", "data", "--results", "results"]
    cmd += ["--cache", "cache", "--progress-bar"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=tmp, env=env)
        heard, deadline = set(), time.time() + 600
        try:
            while proc.poll() is None and time.time() < deadline:
                heard |= listeners(proc.pid)
                time.sleep(0.5)
        finally:
            if proc.poll() is None:  # past the deadline
                proc.kill()
            proc.wait()
        out.seek(0), err.seek(0)
        sweep = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    report = subprocess.run(
        [sys.executable, "-m", "rsnet.report", "results"], capture_output=True, text=True, timeout=300, cwd=tmp, env=env
    )
    assert report.returncode == 0, report.stderr
    yield {"dir": tmp, "sweep": sweep, "heard": heard, "report": report}


@pytest.fixture(scope="module")
def demo_table(demo):
    return pd.read_csv(demo["dir"] / "results" / "demo" / "trials.csv")


@pytest.mark.slow
def test_demo_finishes_every_trial_of_its_two_folds(demo, demo_table):
    t = demo_table
    assert len(t) == 6 and (t.status == "finished").all() and t.synthetic.all()
    assert set(t.setting) == {"full", "shuffled_frames", "single_frame"} and set(t.fold) == {1, 2}
    assert demo["sweep"].stdout.count("accuracy") >= 6 and "6/6 finished" in demo["sweep"].stdout


@pytest.mark.slow
def test_demo_ray_listens_on_loopback_only(demo):
    heard = demo["heard"]  # GCS, raylet, workers, agents
    assert {"gcs_server", "raylet"} <= {name for _, name in heard}, heard
    assert all(addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]") for addr, _ in heard), heard


@pytest.mark.slow
def test_demo_prints_a_line_per_trial_under_one_progress_bar(demo):
    out, err = demo["sweep"].stdout, demo["sweep"].stderr
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == [f"[{k}" + "/6" for k in range(1, 7)]
    assert lines[-1].endswith("6 finished, 0 failed, 0 running)") and "ETA" in lines[0]
    bar = err.replace("\r", "\n").splitlines()  # asked for: stderr is no terminal here
    assert any(
        line.startswith("sweep: 100%") and "6/6" in line and "6 finished, 0 failed, 0 running" in line for line in bar
    ), err[-2000:]


@pytest.mark.slow
def test_demo_points_tensorboard_at_the_trials_own_curves(demo):
    out = demo["sweep"].stdout + demo["sweep"].stderr
    trials = demo["dir"].resolve() / "results" / "demo" / "trials"
    assert f"tensorboard --logdir {trials}" in out
    assert "To visualize your results with TensorBoard" not in out  # Ray's, under /tmp/ray: none of our curves
    for d in trials.iterdir():
        assert list(d.glob("events.out.tfevents.*")) and (d / "result.json").exists()


@pytest.mark.slow
def test_demo_ray_token_is_readable_by_its_user_only(demo):
    token = Path.home() / ".ray" / "auth_token"  # 0600 in 0700
    assert token.stat().st_mode & 0o777 == 0o600 and token.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.slow
def test_demo_report_writes_every_table_marked_synthetic(demo):
    out = demo["dir"] / "results" / "report"
    said = demo["report"].stdout
    assert "6 finished, 0 failed of 6 trials [SYNTHETIC DATA (not the paper's numbers)]" in said
    assert "results/report/index.md" in said
    for name in ("table2", "table3", "table3_paired", "mispredictions", "honest_vs_optimistic", "failed_trials"):
        assert all((out / f"{name}.{ext}").stat().st_size > 0 for ext in ("md", "csv", "tex")), name
    assert len(pd.read_csv(out / "failed_trials.csv")) == 0
    assert (out / "fig7.png").exists() and (out / "curves_demo.png").exists()
    assert (out / "index.md").read_text().startswith("# SYNTHETIC DATA")


@pytest.mark.slow
def test_demo_report_pools_each_setting_over_its_two_folds(demo, demo_table):
    out = demo["dir"] / "results" / "report"
    cells = pd.read_csv(out / "cells.csv").set_index("setting")
    assert set(cells.index) == {"full", "shuffled_frames", "single_frame"}
    assert (cells.flag == "(partial: 2/10 trials)").all()  # 2 of UvA-NEMO's 10 folds (--folds 1 2), one seed
    g = demo_table.groupby("setting")
    expected = g.apply(lambda g: (g.accuracy * g.test_videos).sum() / g.test_videos.sum())
    assert cells["mean"].to_dict() == pytest.approx(expected.to_dict())
    assert ((cells.video_low <= cells["mean"]) & (cells["mean"] <= cells.video_high)).all()
    mis = pd.read_csv(out / "mispredictions.csv")
    assert mis.videos.sum() == demo_table[demo_table.setting == "full"].test_videos.sum()


@pytest.mark.slow
def test_demo_summary_gives_each_setting_with_its_interval(demo, demo_table):
    """What `make demo` prints last: each setting pooled over its videos, with the report's interval."""
    from rsnet.demo import pooled_summary

    out = demo["dir"] / "results" / "report"
    cells = pd.read_csv(out / "cells.csv").set_index("setting")
    summary = pooled_summary(demo["dir"] / "results" / "demo", out).splitlines()
    assert summary[0].startswith("rsnet demo: held-out accuracy pooled") and summary[0].endswith("numbers)]")
    for setting, g in demo_table.groupby("setting"):
        (line,) = [x for x in summary if x.split()[0] == setting]
        pooled = (g.accuracy * g.test_videos).sum() / g.test_videos.sum()
        low, high = cells.loc[setting, ["video_low", "video_high"]]
        assert f"{pooled:6.1%}  [{low:.1%}, {high:.1%}]  over {g.test_videos.sum()} videos, 2 folds" in line
    # a rerun resumes without training again: test_killed_driver_rerun_completes_only_the_missing_trials


@pytest.mark.slow
def test_a_trial_with_broken_data_fails_alone_and_a_plugin_trains_on_ray(tmp_path, shared, example_importable):
    """Fold 1 of the tiny corpus has no young subject: that trial's test set is empty. The second
    setting is the example package's variant by import path (its source on PYTHONPATH, which the
    local Ray's workers inherit), so a researcher's model is seen training in a real sweep."""
    f = tiny_variant(
        tmp_path / "broken.yaml",
        ("fold: [1, 2]", "fold: [1, 3]"),
        ("  setting:", "  split: [within:young]\n  setting:"),
        ("no_tsa: {variant: no_tsa}", "mean: {variant: 'rsnet_example.models:build_mean_frames'}"),
        ("max_failures: 2", "max_failures: 0"),
    )
    p = run(f, "--epochs", "2", tmp=tmp_path, **shared)
    assert p.returncode == 1
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    failed = table[table.status == "failed"]
    assert len(failed) == 2 and (failed.fold == 1).all()
    assert failed.error.str.contains("no test videos").all()
    assert (table[table.fold == 3].status == "finished").all()
    mean = table[(table.fold == 3) & (table.setting == "mean")]
    assert list(mean.variant) == ["rsnet_example.models:build_mean_frames"] and mean.accuracy.notna().all()


def test_in_order_starts_the_trial_tunes_fifo_scheduler_would():
    """rsnet's scheduler skips the ended trials at the front of Tune's list; over random sequences
    of statuses (trials ending in order, as they do) it picks what FIFOScheduler picks."""
    import random

    from ray.tune.experiment import Trial
    from ray.tune.schedulers import FIFOScheduler

    from rsnet.sweep.scale import InOrder

    class Trials:
        def __init__(self, trials):
            self.trials = trials

        def get_trials(self):
            return self.trials

    class T:
        def __init__(self, status):
            self.status = status

    rng = random.Random(0)
    for _ in range(200):
        statuses = [Trial.TERMINATED] * rng.randint(0, 20) + [
            rng.choice([Trial.TERMINATED, Trial.RUNNING, Trial.PENDING, Trial.PAUSED, Trial.ERROR])
            for _ in range(rng.randint(0, 10))
        ]
        ours, fifo, trials = InOrder(), FIFOScheduler(), Trials([T(s) for s in statuses])
        for _ in range(3):  # the list grows and more trials end between calls
            assert ours.choose_trial_to_run(trials) is fifo.choose_trial_to_run(trials)
            trials.trials += [T(rng.choice([Trial.PENDING, Trial.PAUSED]))]
            for t in trials.trials[: rng.randint(0, len(trials.trials))]:
                t.status = Trial.TERMINATED if t.status != Trial.ERROR else t.status
    import pickle

    assert pickle.loads(pickle.dumps(ours))._ended == 0  # a restored sweep looks at every trial again


def test_the_live_table_updates_one_trial_and_writes_on_its_schedule(tmp_path, monkeypatch):
    import json

    from rsnet.sweep import table
    from rsnet.sweep.spec import load_sweep

    sweep = tmp_path / "tiny"
    trials = load_sweep(TINY).trials(tmp_path)
    (sweep / "trials" / trials[0].name).mkdir(parents=True)
    live = table.LiveTable(sweep, trials, every=3600)
    assert sorted(live.rows) == sorted(t.name for t in trials)
    assert {r["status"] for r in live.rows.values()} == {"pending"} and live.rows[trials[1].name][
        "dataset"
    ] == "uvanemo"
    read = []
    monkeypatch.setattr(table, "trial_row", lambda d, *a: read.append(d.name) or {"trial": d.name, "status": "x"})
    live.epoch(trials[1].name, 2)  # a result: no files read, not written before its time
    row = live.rows[trials[1].name]
    assert read == [] and (row["status"], row["epochs_done"]) == ("running", 2)
    live.written = 0.0  # the interval has passed
    live.update(trials[2].name, trials[2].setting, trials[2].config.to_dict())
    assert read == [trials[2].name]  # only the trial that changed
    written = table.pd.read_csv(sweep / "trials.csv")
    assert len(written) == 4 and written.set_index("trial").status[trials[1].name] == "running"
    assert json.dumps(sorted(written.columns)) == json.dumps(sorted(table.COLUMNS))
