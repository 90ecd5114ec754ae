"""Sweeps on Ray Tune when things go wrong: a killed trial worker, a killed driver, and a sweep
with fractional GPUs. (Beside test_sweep.py so that pytest-xdist can run the two files at once.)"""

import json
import os
import signal
import socket
import subprocess
import time

import pandas as pd
import pytest
from helpers import REPO, TINY, run, sweep_cmd, tiny_variant


def _wait(cond, proc, timeout=240):
    deadline = time.time() + timeout
    while not cond():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def port_open(host, port):
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def _lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_killed_worker_is_retried_from_its_checkpoint(tmp_path, shared):
    f = tiny_variant(
        tmp_path / "one.yaml",
        ("fold: [1, 2]", "fold: [2]"),
        ("epochs: 3", "epochs: 6"),
        ("    no_tsa: {variant: no_tsa}\n", ""),
    )
    proc = subprocess.Popen(
        sweep_cmd(f, tmp=tmp_path, **shared), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    )
    trials = tmp_path / "results" / "tiny" / "trials"
    _wait(lambda: trials.exists() and any(_lines(d / "metrics.jsonl") >= 3 for d in trials.iterdir()), proc)
    trial = next(trials.iterdir())
    pid = json.loads((trial / "sweep_trial.json").read_text())["attempts"][-1]["pid"]
    os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    attempts = json.loads((trial / "sweep_trial.json").read_text())["attempts"]
    assert len(attempts) == 2
    # the same trial run straight through gives the same result
    from rsnet.config import TrialConfig
    from rsnet.trial import run_trial

    cfg = TrialConfig.from_dict(json.loads((trial / "config.json").read_text()))
    direct = run_trial(cfg, tmp_path / "direct")
    assert json.loads((trial / "result.json").read_text())["accuracy"] == direct["accuracy"]
    pd.testing.assert_frame_equal(
        pd.read_csv(trial / "predictions.csv"), pd.read_csv(tmp_path / "direct" / "predictions.csv")
    )


@pytest.mark.slow
def test_killed_driver_rerun_completes_only_the_missing_trials(tmp_path, shared):
    proc = subprocess.Popen(
        sweep_cmd(TINY, "--num-cpus", "1", tmp=tmp_path, **shared),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        start_new_session=True,
    )
    trials = tmp_path / "results" / "tiny" / "trials"
    _wait(lambda: trials.exists() and any((d / "result.json").exists() for d in trials.iterdir()), proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {d.name: (d / "result.json").stat().st_mtime_ns for d in trials.iterdir() if (d / "result.json").exists()}
    assert 1 <= len(done) < 4
    p = run(TINY, "--num-cpus", "1", tmp=tmp_path, **shared)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(list(trials.iterdir())) == 4 and all((d / "result.json").exists() for d in trials.iterdir())
    assert {n: (trials / n / "result.json").stat().st_mtime_ns for n in done} == done
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(table) == 4 and table.trial.is_unique


@pytest.mark.slow
def test_fractional_gpus_run_two_trials_per_gpu_and_fall_back_to_the_cpu(tmp_path, shared):
    """Ray offered two logical GPUs (none here): at gpu 0.5 the four trials run at once, two per
    GPU id; each records the CUDA_VISIBLE_DEVICES it was given and, without CUDA, runs on the
    CPU and says so. (Sweeps across Slurm nodes: test_slurm.py.)"""
    import torch

    f = tiny_variant(
        tmp_path / "gpu.yaml", ("resources: {cpu: 1}", "resources: {cpu: 1, gpu: 0.5}"), ("epochs: 3", "epochs: 4")
    )
    p = run(f, "--num-cpus", "4", "--num-gpus", "2", tmp=tmp_path, **shared)
    assert p.returncode == 0, p.stdout + p.stderr
    trials = list((tmp_path / "results" / "tiny" / "trials").iterdir())
    attempts = [json.loads((d / "sweep_trial.json").read_text())["attempts"] for d in trials]
    assert [len(a) for a in attempts] == [1] * 4
    given = [a[0]["cuda_visible_devices"] for a in attempts]
    assert sorted(given) == ["0", "0", "1", "1"] and [a[0]["gpu_ids"] for a in attempts] == [[g] for g in given]
    # all four at once: each started before any had finished
    assert max(a[0]["time"] for a in attempts) < min((d / "result.json").stat().st_mtime for d in trials)
    for d, g in zip(trials, given):
        result = json.loads((d / "result.json").read_text())
        if torch.cuda.is_available():
            assert result["device"] == "cuda" and result["device_note"] is None
        else:
            assert result["device"] == "cpu"
            assert result["device_note"].startswith(
                f"GPU(s) {g} given (CUDA_VISIBLE_DEVICES) but CUDA is not available"
            )
