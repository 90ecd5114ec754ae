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
import torch
from helpers import REPO, TINY, run, sweep_cmd, tiny_one, tiny_variant


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
    f = tiny_one(tmp_path / "one.yaml", 6)
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
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)  # as on the worker: sums split over threads round differently
    try:
        direct = run_trial(cfg, tmp_path / "direct")
    finally:
        torch.set_num_threads(threads)
    assert json.loads((trial / "result.json").read_text())["accuracy"] == direct["accuracy"]
    pd.testing.assert_frame_equal(
        pd.read_csv(trial / "predictions.csv"), pd.read_csv(tmp_path / "direct" / "predictions.csv")
    )


def ray_processes(tmp: str) -> list[str]:
    """Ray's processes (GCS, raylet, workers, agents) whose command line names the folder `tmp`."""
    return subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()


@pytest.mark.slow
def test_a_sweep_stopped_by_sigterm_or_killed_continues_where_it_stopped(tmp_path, shared, monkeypatch):
    """SIGTERM: one line, no traces, no Ray process left; the same command, killed outright
    (SIGKILL of its process group) and run once more, finishes only the missing trials. The sweep
    runs as two Tune experiments (RSNET_TUNE_PART=3: parts of 3 and 1 trials), as a sweep of
    thousands does."""
    monkeypatch.setenv("RSNET_TUNE_PART", "3")
    cmd = sweep_cmd(TINY, "--num-cpus", "1", tmp=tmp_path, **shared)
    trials = tmp_path / "results" / "tiny" / "trials"

    def finished():
        return {
            d.name: (d / "result.json").stat().st_mtime_ns for d in trials.iterdir() if (d / "result.json").exists()
        }

    def more_done_one_training(before):
        dirs = list(trials.iterdir()) if trials.exists() else []
        done = [d for d in dirs if (d / "result.json").exists()]
        return len(done) > before and any(_lines(d / "metrics.jsonl") >= 1 and d not in done for d in dirs)

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    _wait(lambda: more_done_one_training(0), proc)
    proc.send_signal(signal.SIGTERM)  # what scancel and Slurm's preemption send
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out + err
    done = finished()
    last = out.strip().splitlines()[-1]
    assert f"stopped by SIGTERM: {len(done)}/4 finished, 0 failed; the same command continues it" in last, out
    assert "Traceback" not in out + err and "SIGTERM received" not in err, err[-3000:]
    deadline = time.time() + 30
    while ray_processes(os.environ["RAY_TMPDIR"]) and time.time() < deadline:
        time.sleep(0.5)
    assert not ray_processes(os.environ["RAY_TMPDIR"]), "Ray processes left after the stop"

    # the same command, killed outright once it has finished one more trial
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True
    )
    _wait(lambda: len(finished()) > len(done), proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = finished()
    assert len(killed) > len(done)
    attempts = {name: _attempts(trials / name) for name in killed}

    p = run(TINY, "--num-cpus", "1", tmp=tmp_path, **shared)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted(finished()) == sorted(d.name for d in trials.iterdir()) and len(finished()) == 4
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(table) == 4 and table.trial.is_unique
    assert len(list((tmp_path / "results" / "tiny" / "ray").glob("tune-*"))) == 2  # one per part
    # the last run's own progress: its lines count on from the trials finished before
    lines = [line.split("]")[0] for line in p.stdout.splitlines() if line.startswith("[")]
    assert lines == [f"[{k}/4" for k in range(len(killed) + 1, 5)], p.stdout
    for name in killed:  # finished before a stop (some after Tune's last snapshot): never started again
        assert (trials / name / "result.json").stat().st_mtime_ns == killed[name]
        assert _attempts(trials / name) == attempts[name]
    for name in done:  # (one training at the SIGTERM resumed in the next run: a second attempt)
        assert _attempts(trials / name) == 1


def _attempts(trial_dir) -> int:
    return len(json.loads((trial_dir / "sweep_trial.json").read_text())["attempts"])


def test_a_sweep_runs_in_parts_of_rsnet_tune_part_trials(monkeypatch):
    from rsnet.sweep.runner import parts
    from rsnet.sweep.spec import SweepError

    trials = list(range(2500))
    assert [len(p) for p in parts(trials)] == [1000, 1000, 500] and sum(parts(trials), []) == trials
    for bad in ("0", "ten", "-5"):
        monkeypatch.setenv("RSNET_TUNE_PART", bad)
        with pytest.raises(SweepError, match=f"RSNET_TUNE_PART='{bad}': the trials per Tune experiment"):
            parts(trials)


def test_resources_no_node_has_are_an_error_before_any_trial(tmp_path, shared):
    """A trial asking for a GPU of a Ray without one would wait forever: an error naming the
    sweep file's resources key, the request and what the nodes have."""
    f = tiny_variant(tmp_path / "gpu.yaml", ("resources: {cpu: 1}", "resources: {cpu: 1, gpu: 1}"))
    p = run(f, "--num-gpus", "0", "--num-cpus", "2", tmp=tmp_path, timeout=120, **shared)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"{f}: resources {{cpu: 1, gpu: 1}} per trial, but no node of this Ray has that" in p.stderr
    assert "(nodes: 2 CPU, 0 GPU)" in p.stderr and "--wait-for-resources" in p.stderr
    assert not any((tmp_path / "results" / "tiny" / "trials").iterdir())


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
