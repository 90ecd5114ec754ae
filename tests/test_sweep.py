"""Sweeps on Ray Tune: every shipped file, bad files, a real demo run, a trial that fails alone
(killed workers and drivers, and two Ray nodes: test_sweep_faults.py)."""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from rsnet.sweep.spec import SweepError, load_sweep

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "sweeps" / "tiny.yaml"


def sweep_cmd(*args, tmp, data=None, cache=None):
    """The sweep CLI with results under `tmp`; data and cache default to `tmp` too, the tests
    that train pass the session's tiny corpus and cache (conftest.py) instead."""
    return [
        sys.executable,
        "-m",
        "rsnet.sweep",
        *map(str, args),
        "--data-root",
        str(data or tmp / "data"),
        "--results",
        str(tmp / "results"),
        "--cache",
        str(cache or tmp / "cache"),
    ]


def tiny_variant(path: Path, *replacements: tuple[str, str]) -> Path:
    """tests/sweeps/tiny.yaml with its text replaced as given, written to `path`."""
    text = TINY.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def parents() -> dict[int, int]:
    """Every process's parent, from /proc."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return parent


def sockets(ss: str) -> list[tuple[str, str, int]]:
    """(local address, process name, pid) of each socket in `ss -ltnpH` output."""
    return [
        (line.split()[3], name, int(pid))
        for line in ss.splitlines()
        for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line)
    ]


def listeners(root: int) -> set[tuple[str, str]]:
    """(local address, process name) of each listening TCP socket of a process and its descendants."""
    parent = parents()
    tree, grew = {root}, True
    while grew:
        new = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        tree, grew = tree | new, bool(new)
    ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    return {(addr, name) for addr, name, pid in sockets(ss) if pid in tree}


def run(*args, tmp, data=None, cache=None, timeout=600):
    return subprocess.run(
        sweep_cmd(*args, tmp=tmp, data=data, cache=cache), capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


@pytest.mark.parametrize(
    "name,count",
    [
        ("benchmark", 360),
        ("ablations", 6 * 360),
        ("fps_resolution", 16 * 100),
        ("cross_domain", 70),
        ("subgroups", 400),
        ("demo", 15),
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
    assert shipped == {"benchmark", "ablations", "fps_resolution", "cross_domain", "subgroups", "demo"}


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
    ],
)
def test_bad_sweep_files_name_the_file_and_key(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SweepError, match=match) as e:
        load_sweep(f)
    assert str(f) in str(e.value)


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


@pytest.mark.slow
def test_demo_runs_for_real_in_reduced_form(tmp_path, sweep_data, cache):
    # relative paths, as the README's commands use them (Ray runs trials in other directories);
    # data/ and cache/ are links to the session's tiny corpus and cache
    (tmp_path / "data").symlink_to(sweep_data)
    (tmp_path / "cache").symlink_to(cache)
    demo = [
        sys.executable,
        "-m",
        "rsnet.sweep",
        "--grid",
        "demo",
        "--epochs",
        "2",
        "--folds",
        "1",
        "2",
        "--synthetic-size",
        "tiny",
        "--num-cpus",
        "2",
        "--data-root",
        "data",
        "--results",
        "results",
        "--cache",
        "cache",
        "--progress-bar",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(demo, stdout=out, stderr=err, text=True, cwd=tmp_path, env=env)
        heard, deadline = set(), time.time() + 600  # every TCP port the sweep's processes listen on
        try:
            while proc.poll() is None and time.time() < deadline:
                heard |= listeners(proc.pid)
                time.sleep(0.5)
        finally:
            if proc.poll() is None:  # past the deadline
                proc.kill()
            proc.wait()
        out.seek(0), err.seek(0)
        p = subprocess.CompletedProcess(demo, proc.returncode, out.read(), err.read())
    assert p.returncode == 0, p.stdout + p.stderr
    # a local Ray listens on loopback only (GCS, raylet, workers, agents)
    assert {"gcs_server", "raylet"} <= {name for _, name in heard}, heard
    assert all(addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]") for addr, _ in heard), heard
    table = pd.read_csv(tmp_path / "results" / "demo" / "trials.csv")
    assert len(table) == 6 and (table.status == "finished").all() and table.synthetic.all()
    assert set(table.setting) == {"full", "shuffled_frames", "single_frame"} and set(table.fold) == {1, 2}
    assert p.stdout.count("accuracy") >= 6 and "6/6 finished" in p.stdout
    # a line per ended trial with the sweep's counts, and one progress bar (asked for: stderr is no terminal here)
    lines = [line for line in p.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == [f"[{k}" + "/6" for k in range(1, 7)]
    assert lines[-1].endswith("6 finished, 0 failed, 0 running)") and "ETA" in lines[0]
    bar = p.stderr.replace("\r", "\n").splitlines()
    assert any(
        line.startswith("sweep: 100%") and "6/6" in line and "6 finished, 0 failed, 0 running" in line for line in bar
    ), p.stderr[-2000:]
    # our TensorBoard hint (the trials' own event files), not Ray's (under /tmp/ray, none of our curves)
    assert f"tensorboard --logdir {tmp_path.resolve() / 'results' / 'demo' / 'trials'}" in p.stdout
    assert "To visualize your results with TensorBoard" not in p.stdout + p.stderr
    for d in (tmp_path / "results" / "demo" / "trials").iterdir():
        assert list(d.glob("events.out.tfevents.*")) and (d / "result.json").exists()
    # the report over this real run: every table and figure is written, marked synthetic
    rep = subprocess.run(
        [sys.executable, "-m", "rsnet.report", "results"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert rep.returncode == 0, rep.stderr
    out = tmp_path / "results" / "report"
    assert (
        "6 finished, 0 failed of 6 trials [SYNTHETIC DATA (not the paper's numbers)]" in rep.stdout
        and "results/report/index.md" in rep.stdout
    )
    cells = pd.read_csv(out / "cells.csv").set_index("setting")
    assert set(cells.index) == {"full", "shuffled_frames", "single_frame"}
    assert (cells.flag == "(partial: 2/10 trials)").all()  # 2 of UvA-NEMO's 10 folds (--folds 1 2), one seed
    expected = table.groupby("setting").apply(lambda g: (g.accuracy * g.test_videos).sum() / g.test_videos.sum())
    assert cells["mean"].to_dict() == pytest.approx(expected.to_dict())  # pooled over the two folds
    for name in ("table2", "table3", "table3_paired", "mispredictions", "honest_vs_optimistic", "failed_trials"):
        assert all((out / f"{name}.{ext}").stat().st_size > 0 for ext in ("md", "csv", "tex")), name
    assert len(pd.read_csv(out / "failed_trials.csv")) == 0
    assert (out / "fig7_demo.png").exists() and (out / "curves_demo.png").exists()
    # what `make demo` prints last: each setting pooled over its videos, with the report's interval
    from rsnet.demo import pooled_summary

    summary = pooled_summary(tmp_path / "results" / "demo", out).splitlines()
    assert summary[0].startswith("rsnet demo: held-out accuracy pooled") and summary[0].endswith("numbers)]")
    for setting, g in table.groupby("setting"):
        (line,) = [x for x in summary if x.split()[0] == setting]
        pooled = (g.accuracy * g.test_videos).sum() / g.test_videos.sum()
        low, high = cells.loc[setting, ["video_low", "video_high"]]
        assert f"{pooled:6.1%}  [{low:.1%}, {high:.1%}]  over {g.test_videos.sum()} videos, 2 folds" in line
    mis = pd.read_csv(out / "mispredictions.csv")
    assert mis.videos.sum() == table[table.setting == "full"].test_videos.sum()
    assert (out / "index.md").read_text().startswith("# SYNTHETIC DATA")
    token = Path.home() / ".ray" / "auth_token"  # 0600 in 0700
    assert token.stat().st_mode & 0o777 == 0o600 and token.parent.stat().st_mode & 0o777 == 0o700
    # a rerun resumes without training again: test_killed_driver_rerun_completes_only_the_missing_trials


@pytest.mark.slow
def test_a_trial_with_broken_data_fails_alone(tmp_path, shared):
    # fold 1 of the tiny corpus has no young subject: that trial's test set is empty
    f = tiny_variant(
        tmp_path / "broken.yaml",
        ("fold: [1, 2]", "fold: [1, 3]"),
        ("  setting:", "  split: [within:young]\n  setting:"),
        ("max_failures: 2", "max_failures: 0"),
    )
    p = run(f, "--epochs", "2", tmp=tmp_path, **shared)
    assert p.returncode == 1
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    failed = table[table.status == "failed"]
    assert len(failed) == 2 and (failed.fold == 1).all()
    assert failed.error.str.contains("no test videos").all()
    assert (table[table.fold == 3].status == "finished").all()
