"""Sweeps on Ray Tune when things go wrong: a killed trial worker, a killed driver, and a sweep
over two Ray nodes. (Beside test_sweep.py so that pytest-xdist can run the two files at once.)"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_sweep import REPO, TINY, run, sweep_cmd, tiny_variant


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
def test_trials_run_on_two_ray_nodes(tmp_path, shared):
    """A Ray head and a second Ray node on this machine (own ports, temp dir, token auth); the
    nodes advertise 127.0.0.2 so that all traffic stays on the loopback range."""
    import secrets

    port = 26379 + os.getpid() % 1000
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    ray = str(Path(sys.executable).parent / "ray")
    temp_dir = f"/tmp/rsnet-t{os.getpid()}"  # short: Ray's socket paths must stay under 107 bytes

    def ray_left():
        return subprocess.run(["pgrep", "-f", temp_dir], capture_output=True).returncode == 0

    common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.2"]
    head = subprocess.Popen(
        [ray, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp_dir}", *common],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None

    def nodes_alive(n):
        code = (
            f"import ray; ray.init(address='127.0.0.2:{port}', logging_level='ERROR'); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        return p.returncode == 0 and p.stdout.split()[-1:] == [str(n)]

    try:
        _wait(lambda: port_open("127.0.0.2", port), head, 60)  # the head's GCS
        worker = subprocess.Popen(
            [ray, "start", f"--address=127.0.0.2:{port}", *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: nodes_alive(2), worker, 60)
        p = subprocess.run(
            sweep_cmd(TINY, "--address", f"127.0.0.2:{port}", tmp=tmp_path, **shared),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
            env=env,
        )
        assert p.returncode == 0, p.stdout + p.stderr
        nodes = {
            json.loads((d / "sweep_trial.json").read_text())["attempts"][-1]["node_id"]
            for d in (tmp_path / "results" / "tiny" / "trials").iterdir()
        }
        assert len(nodes) == 2
    finally:
        for proc in (worker, head):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        deadline = time.time() + 60
        while ray_left() and time.time() < deadline:  # the nodes' processes end after `ray start`
            time.sleep(0.2)
        shutil.rmtree(temp_dir, ignore_errors=True)  # their logs and sockets
    assert not ray_left()
