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
pytestmark = pytest.mark.skipif(not HAVE_SLURM and not os.environ.get("CI"),
                                reason="slurm-wlm and munge not installed (.ci/run installs them)")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    d = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "RSNET_SLURM_DIR": str(d), "RSNET_SLURMCTLD_PORT": "27817", "RSNET_SLURMD_PORT": "27818"}
    subprocess.run(["bash", str(REPO / "slurm/local_cluster.sh"), "start"], env=env, check=True, timeout=120)
    env.update(SLURM_CONF=str(d / "slurm.conf"), RSNET_PYTHON=sys.executable, RSNET_NODE_IP="127.0.0.2",
               PYTHONPATH=str(REPO))
    env.pop("RAY_ADDRESS", None)
    yield env
    subprocess.run(["bash", str(REPO / "slurm/local_cluster.sh"), "stop"], env=env, check=True, timeout=120)
    left = subprocess.run(["pgrep", "-f", str(d)], capture_output=True, text=True).stdout.split()
    assert not left, f"Slurm processes left: {left}"


def sbatch(env, cwd, *args):
    p = subprocess.run(["sbatch", "--parsable", "--cpus-per-task=2", *args], env=env, cwd=cwd,
                       capture_output=True, text=True, check=True)
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
        time.sleep(1)


def no_ray_left(job):
    return not subprocess.run(["pgrep", "-f", f"/tmp/rsnet-{job}/"], capture_output=True, text=True).stdout.split()


def test_sbatch_runs_a_sweep_on_ray_and_cleans_up(slurm, tmp_path):
    job = sbatch(slurm, tmp_path, "--wait", str(REPO / "slurm/launch_ray.sh"), str(TINY), "--epochs", "2")
    log = (tmp_path / f"rsnet-rsnet-sweep-{job}.out").read_text()
    assert job_state(slurm, job) == "COMPLETED", log
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(table) == 4 and (table.status == "finished").all(), log
    assert "4/4 finished" in log and f"job {job} stopped its Ray" in log
    token = tmp_path / ".rsnet" / f"ray-token-{job}"
    assert token.stat().st_mode & 0o077 == 0
    wait_for(lambda: no_ray_left(job), 60)


def test_requeued_job_resumes_without_duplicates(slurm, tmp_path):
    job = sbatch(slurm, tmp_path, str(REPO / "slurm/launch_ray.sh"), str(TINY), "--epochs", "2")
    trials = tmp_path / "results" / "tiny" / "trials"
    wait_for(lambda: trials.exists() and any((d / "result.json").exists() for d in trials.iterdir()))
    done = {d.name: (d / "result.json").stat().st_mtime_ns for d in trials.iterdir() if (d / "result.json").exists()}
    subprocess.run(["scontrol", "requeue", job], env=slurm, check=True)

    def ended():
        state = job_state(slurm, job)
        if state == "PENDING":    # Slurm holds a requeued job for 2 minutes (BeginTime); not in a test
            subprocess.run(["scontrol", "update", f"jobid={job}", "starttime=now"], env=slurm)
        return state in ("COMPLETED", "FAILED", "CANCELLED", "GONE")
    wait_for(ended, 900)
    log = (tmp_path / f"rsnet-rsnet-sweep-{job}.out").read_text()
    assert job_state(slurm, job) == "COMPLETED", log
    assert log.count(f"launch_ray: job {job}, 1 node(s)") == 2         # ran twice: before and after the requeue
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(table) == 4 and table.trial.is_unique and (table.status == "finished").all()
    assert len(list(trials.iterdir())) == 4
    assert {n: (trials / n / "result.json").stat().st_mtime_ns for n in done} == done
    wait_for(lambda: no_ray_left(job), 60)


def test_submitit_submits_the_same_launcher(slurm, tmp_path):
    p = subprocess.run([sys.executable, "-m", "rsnet.sweep", str(TINY), "--epochs", "1", "--max-trials", "2", "--slurm",
                        "--cpus-per-task", "2", "--results", str(tmp_path / "results"), "--wait"],
                       env=slurm, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "submitted job" in p.stdout and str(tmp_path / "results" / "tiny") in p.stdout
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(table) == 2 and (table.status == "finished").all()


def test_prepare_runs_as_a_submitit_job_array(slurm, tmp_path, corpora):
    p = subprocess.run([sys.executable, "-m", "rsnet.prepare", "--dataset", "bbc", "--root", str(corpora["bbc"]),
                        "--res", "24", "--cache", str(tmp_path / "cache"), "--slurm", "--time", "10",
                        "--cpus-per-task", "1"], env=slurm, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "array tasks (slurm)" in p.stdout and "20 videos" in p.stdout and "0 failures" in p.stdout
