"""A real single-node Slurm (slurm-wlm + munge): sbatch the launcher, requeue it, submitit."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "sweeps" / "tiny.yaml"
HAVE_SLURM = all(shutil.which(x) for x in ("slurmctld", "slurmd", "munged", "sbatch"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAVE_SLURM and not os.environ.get("CI"), reason="slurm-wlm and munge not installed (.ci/run installs them)"
    ),
]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory, sweep_data, cache):
    """A running single-node Slurm; jobs read the session's tiny corpus and cache (RSNET_DATA,
    RSNET_CACHE) and write results under their submit directory."""
    d = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "RSNET_SLURM_DIR": str(d), "RSNET_SLURMCTLD_PORT": "27817", "RSNET_SLURMD_PORT": "27818"}
    try:
        subprocess.run(["bash", str(REPO / "slurm/local_cluster.sh"), "start"], env=env, check=True, timeout=120)
    except BaseException:
        subprocess.run(["bash", str(REPO / "slurm/local_cluster.sh"), "stop"], env=env, timeout=120)
        raise
    env.update(
        SLURM_CONF=str(d / "slurm.conf"),
        RSNET_PYTHON=sys.executable,
        RSNET_NODE_IP="127.0.0.2",
        PYTHONPATH=str(REPO),
        RSNET_DATA=str(sweep_data),
        RSNET_CACHE=str(cache),
    )
    env.pop("RAY_ADDRESS", None)
    yield env
    # stopping with a job still running (its step daemon outlives slurmd) leaves nothing behind either
    job = sbatch(env, d, "--wrap", "sleep 613")
    wait_for(lambda: job_state(env, job) == "RUNNING", 60)
    subprocess.run(["bash", str(REPO / "slurm/local_cluster.sh"), "stop"], env=env, check=True, timeout=120)
    left = subprocess.run(["pgrep", "-f", str(d)], capture_output=True, text=True).stdout.split()
    steps = subprocess.run(["pgrep", "-x", "slurmstepd"], capture_output=True, text=True).stdout.split()
    left += [p for p in steps if _cwd(p).startswith(str(d))]  # a step's daemon, named [job.step]
    left += subprocess.run(["pgrep", "-f", "sleep 613"], capture_output=True, text=True).stdout.split()
    assert not left, f"Slurm processes left: {left}"


def _cwd(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def sbatch(env, cwd, *args):
    p = subprocess.run(
        ["sbatch", "--parsable", "--cpus-per-task=2", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return p.stdout.strip().split(";")[0]


def job_state(env, job):
    p = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True)
    for word in p.stdout.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    return "GONE"


def wait_for(cond, timeout=600):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


def no_ray_left(job):
    return not subprocess.run(["pgrep", "-f", f"/tmp/rsnet-{job}/"], capture_output=True, text=True).stdout.split()


def ended(env, job):
    """The job's final state, once it has one (polled: `sbatch --wait` backs off to 10 s+)."""
    state = job_state(env, job)
    if state == "PENDING":  # Slurm holds a requeued job for 2 minutes (BeginTime); not in a test
        subprocess.run(["scontrol", "update", f"jobid={job}", "starttime=now"], env=env)
    return state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "GONE")


def test_sbatch_runs_a_sweep_requeued_it_resumes_and_cleans_up(slurm, tmp_path):
    """One job, requeued once its first trial has finished (as on preemption): it runs twice,
    the rerun trains only what was missing, the table holds each trial once, and the job
    stops its own Ray. (One job for both: each run of the launcher costs about 20 s here.)"""
    job = sbatch(slurm, tmp_path, str(REPO / "slurm/launch_ray.sh"), str(TINY), "--epochs", "2")
    trials = tmp_path / "results" / "tiny" / "trials"
    wait_for(lambda: trials.exists() and any((d / "result.json").exists() for d in trials.iterdir()))
    done = {d.name: (d / "result.json").stat().st_mtime_ns for d in trials.iterdir() if (d / "result.json").exists()}
    subprocess.run(["scontrol", "requeue", job], env=slurm, check=True)
    wait_for(lambda: ended(slurm, job), 900)
    log = (tmp_path / f"rsnet-rsnet-sweep-{job}.out").read_text()
    assert job_state(slurm, job) == "COMPLETED", log
    assert log.count(f"launch_ray: job {job}, 1 node(s)") == 2, log  # ran twice: before and after the requeue
    assert log.rstrip().endswith(f"job {job} stopped its Ray (/tmp/rsnet-{job} on 1 node(s))"), log
    assert "sweep tiny: 4/4 finished, 0 failed" in log
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(table) == 4 and table.trial.is_unique and (table.status == "finished").all()
    assert len(list(trials.iterdir())) == 4
    assert {n: (trials / n / "result.json").stat().st_mtime_ns for n in done} == done
    token = tmp_path / ".rsnet" / f"ray-token-{job}"
    assert token.stat().st_mode & 0o077 == 0 and (tmp_path / ".rsnet").stat().st_mode & 0o077 == 0
    wait_for(lambda: no_ray_left(job), 60)
    shutil.rmtree(f"/tmp/rsnet-{job}", ignore_errors=True)  # the job's Ray logs (kept for users)


def test_submitit_submits_the_same_launcher(slurm, tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsnet.sweep",
            str(TINY),
            "--epochs",
            "1",
            "--max-trials",
            "2",
            "--slurm",
            "--cpus-per-task",
            "2",
            "--results",
            str(tmp_path / "results"),
            "--wait",
        ],
        env=slurm,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "submitted job" in p.stdout and str(tmp_path / "results" / "tiny") in p.stdout
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(table) == 2 and (table.status == "finished").all()
    job = p.stdout.split("submitted job ", 1)[1].split()[0]
    wait_for(lambda: no_ray_left(job), 60)
    shutil.rmtree(f"/tmp/rsnet-{job}", ignore_errors=True)


def test_prepare_runs_as_a_submitit_job_array(slurm, tmp_path, corpora):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsnet.prepare",
            "--dataset",
            "bbc",
            "--root",
            str(corpora["bbc"]),
            "--res",
            "24",
            "--cache",
            str(tmp_path / "cache"),
            "--slurm",
            "--time",
            "10",
            "--cpus-per-task",
            "1",
        ],
        env=slurm,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "array tasks (slurm)" in p.stdout and "20 videos" in p.stdout and "0 failures" in p.stdout
