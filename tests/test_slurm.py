"""A real two-node Slurm (slurm-wlm + munge; slurm/local_cluster.sh): sbatch the launcher on both
nodes, requeue it, lose a node, a search stopped and continued, a node whose Ray cannot start, the
token; submitit."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import EXAMPLE, REPO, TINY, finished_inner, parents, sockets

HAVE_SLURM = all(shutil.which(x) for x in ("slurmctld", "slurmd", "munged", "sbatch", "ip", "nsenter"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (HAVE_SLURM and os.geteuid() == 0) and not os.environ.get("CI"),
        reason="needs root and slurm-wlm, munge, iproute2 (.ci/run installs them)",
    ),
]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory, sweep_data, cache):
    """A running two-node Slurm (each node in its own network and UTS namespace); jobs read the
    session's tiny corpus and cache (RSNET_DATA, RSNET_CACHE) and write under their submit dir."""
    d = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "RSNET_SLURM_DIR": str(d)}
    try:
        subprocess.run([CLUSTER, "start", "--nodes", "2"], env=env, check=True, timeout=120)
    except BaseException:
        subprocess.run([CLUSTER, "stop"], env=env, timeout=120)
        raise
    env.update(
        SLURM_CONF=str(d / "slurm.conf"),
        PATH=f"{d / 'bin'}{os.pathsep}{os.environ['PATH']}",
        RSNET_PYTHON=sys.executable,
        PYTHONPATH=str(REPO),
        RSNET_DATA=str(sweep_data),
        RSNET_CACHE=str(cache),
    )
    env.pop("RAY_ADDRESS", None)
    namespaces = cluster_namespaces(d)
    assert len(namespaces) == 3 and {n.rsplit("-", 1)[1] for n in namespaces} == {"ctl", "node1", "node2"}
    yield env
    # stopping with a job still running (its step daemon outlives slurmd) leaves nothing behind either
    job = sbatch(env, d, "--wrap", "sleep 613")
    wait_for(lambda: job_state(env, job) == "RUNNING", 60)
    subprocess.run([CLUSTER, "stop"], env=env, check=True, timeout=120)
    left = subprocess.run(["pgrep", "-f", str(d)], capture_output=True, text=True).stdout.split()
    steps = subprocess.run(["pgrep", "-x", "slurmstepd"], capture_output=True, text=True).stdout.split()
    left += [p for p in steps if _cwd(p).startswith(str(d))]  # a step's daemon, named [job.step]
    left += subprocess.run(["pgrep", "-f", "sleep 613"], capture_output=True, text=True).stdout.split()
    assert not left, f"Slurm processes left: {left}"
    assert not cluster_namespaces(d), "network namespaces left"


CLUSTER = str(REPO / "slurm/local_cluster.sh")


def cluster_namespaces(d) -> list[str]:
    """The network namespaces of the cluster under `d` (named after its folder)."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split("\n")
    tag = "rs" + hashlib.md5(str(Path(d).resolve()).encode()).hexdigest()[:6] + "-"
    return [n.split()[0] for n in names if n.startswith(tag)]


def on_node(slurm, node: str) -> list[str]:
    """The command prefix that enters one of the cluster's nodes' network namespace."""
    (ns,) = [n for n in cluster_namespaces(Path(slurm["SLURM_CONF"]).parent) if n.endswith("-" + node)]
    return ["nsenter", f"--net=/run/netns/{ns}"]


def in_node(slurm, node: str, *cmd):
    return subprocess.run([*on_node(slurm, node), *cmd], capture_output=True, text=True, check=True)


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
    """The job's final state, once it has one (polled: `sbatch --wait` backs off to 10 s+). A
    requeued job starts again by itself once its credential has expired (cred_expire, 10 s on
    slurm/local_cluster.sh; 120 s by default): forcing it sooner races the node's clean-up of
    its last run, and Slurm then fails it ("Job credential revoked")."""
    return job_state(env, job) in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "GONE")


def attempts_made(trials: Path) -> int:
    """The attempts every trial of a sweep has made so far (each noted as it starts)."""
    return sum(len(hosts(d)) for d in trials.iterdir() if (d / "sweep_trial.json").exists())


def hosts(trial_dir: Path) -> list[str]:
    return [a["host"] for a in json.loads((trial_dir / "sweep_trial.json").read_text())["attempts"]]


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
            "--folds",  # forwarded to the job like every option of the command (test_sweep.py)
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
    assert len(table) == 2 and (table.status == "finished").all() and (table.fold == 2).all()
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


# Ray 2.60 binds these processes' gRPC servers to every interface whatever the node's address
# (GCS, raylet: node manager and object manager, the driver's and workers' core-worker servers);
# the rest of what Ray opens listens on the node's address (or loopback)
WILDCARD_BOUND = ("gcs_server", "raylet", "python", "ray::")


def ray_listeners(slurm, node: str, job: str) -> list[tuple[str, str]]:
    """(local address, process name) of each listening TCP socket of the job's Ray on a node."""
    ours = {
        int(p)
        for p in subprocess.run(["pgrep", "-f", f"/tmp/rsnet-{job}/"], capture_output=True, text=True).stdout.split()
    }
    parent = parents()
    return [
        (addr, name)
        for addr, name, pid in sockets(in_node(slurm, node, "ss", "-ltnpH").stdout)
        if name != "srun" and (pid in ours or parent.get(pid) in ours)  # srun: Slurm's, on 0.0.0.0
    ]


def ray_port(job: str, offset: int = 0) -> int:
    """A port of the job's block, as slurm/launch_ray.sh derives it (offset 0: the GCS)."""
    return 20000 + int(job) % 400 * 100 + offset


def connect_from(slurm, node: str, address: str, log: Path, **env) -> subprocess.Popen:
    """A Ray client on a node, with only the token settings given (no ~/.ray token either); it
    prints CONNECTED, or the errors Ray logs while it retries (into `log`)."""
    code = f"import ray; ray.init(address={address!r}, logging_level='ERROR'); print('CONNECTED', flush=True)"
    clean = {k: v for k, v in slurm.items() if not k.startswith("RAY_")}
    with open(log, "w") as f:
        return subprocess.Popen(
            [*on_node(slurm, node), sys.executable, "-c", code],
            env={**clean, "HOME": "/nonexistent", **env},
            stdout=f,
            stderr=subprocess.STDOUT,
        )


def test_a_two_node_sweep_survives_losing_a_node_sigterm_and_its_head_and_refuses_tokenless_clients(slurm, tmp_path):
    """One job on one to two nodes (each launcher run costs ~20 s here): a Ray node on each Slurm
    node at its own address; node2 crashes while it trains (every process of it, slurmd too): the
    job goes on (--no-kill), node2's trials from their checkpoints on node1; clients without the
    job's token are refused; then the job is sent SIGTERM (as on preemption): one line, it requeues
    itself and the rerun, on node1 alone (--nodes=1-2), trains only what was missing; its head's
    raylet is killed while it trains: it requeues itself again, and the third run finishes. The
    table holds each trial once, no finished trial is started again, every resumed trial predicts
    as if never stopped, the job stops its own Ray, and node2 restarted serves again."""
    six = tmp_path / "six.yaml"
    six.write_text(TINY.read_text().replace("epochs: 3", "epochs: 6"))
    job = sbatch(slurm, tmp_path, "--nodes=1-2", str(REPO / "slurm/launch_ray.sh"), str(six))
    trials = tmp_path / "results" / "tiny" / "trials"

    def training_on_node2():
        for d in trials.iterdir() if trials.exists() else []:
            meta, metrics = d / "sweep_trial.json", d / "metrics.jsonl"
            if meta.exists() and hosts(d)[-1] == "node2" and metrics.exists() and not (d / "result.json").exists():
                return True
        return False

    wait_for(training_on_node2, 300)
    # while trials run: Ray's ports on the node's address wherever Ray lets them be, no dashboard
    listeners = ray_listeners(slurm, "node1", job)
    assert (f"10.77.0.11:{ray_port(job, 3)}", "ray::RuntimeEnv") in listeners  # the runtime-env agent
    for addr, name in listeners:
        host = addr.rsplit(":", 1)[0].removeprefix("[::ffff:").rstrip("]")
        assert host in ("10.77.0.11", "127.0.0.1") or (host in ("*", "0.0.0.0") and name.startswith(WILDCARD_BOUND))
    # Ray keeps a headless dashboard process for its internals: it serves nothing
    dashboards = subprocess.run(["pgrep", "-f", f"dashboard.py.*/tmp/rsnet-{job}/"], capture_output=True, text=True)
    sockets = in_node(slurm, "node1", "ss", "-ltnpH").stdout
    assert ":8265 " not in sockets and not [p for p in dashboards.stdout.split() if f"pid={p}," in sockets]
    # node2's Ray dies while it trains; meanwhile clients try the head (from node1, whose Ray lives)
    address = f"10.77.0.11:{ray_port(job)}"
    token = tmp_path / ".rsnet" / f"ray-token-{job}"
    said = {k: tmp_path / f"client-{k.replace(' ', '-')}.log" for k in ("token", "wrong token", "no token")}
    clients = {
        "token": connect_from(
            slurm, "node1", address, said["token"], RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token)
        ),
        "wrong token": connect_from(
            slurm, "node1", address, said["wrong token"], RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64
        ),
        "no token": connect_from(slurm, "node1", address, said["no token"], RAY_AUTH_MODE="disabled"),
    }
    subprocess.run([CLUSTER, "crash-node", "node2"], env=slurm, check=True, timeout=60)
    try:  # the GCS answers the other two with an authentication error (Ray's client then retries: stopped here)
        wait_for(lambda: "CONNECTED" in said["token"].read_text(), 120)
        for k in ("wrong token", "no token"):
            wait_for(lambda log=said[k]: "Unauthenticated: RPC error: InvalidAuthToken" in log.read_text(), 120)
            assert "CONNECTED" not in said[k].read_text()
    finally:
        for c in clients.values():
            c.kill()
            c.wait()
    # the job lives on (no requeue) while one of node2's trials moves to node1 and a trial finishes
    wait_for(lambda: any(hosts(d)[:2] == ["node2", "node1"] for d in trials.iterdir()), 300)
    wait_for(lambda: any((d / "result.json").exists() for d in trials.iterdir()))
    done = {d.name: (d / "result.json").stat().st_mtime_ns for d in trials.iterdir() if (d / "result.json").exists()}
    log = tmp_path / f"rsnet-rsnet-sweep-{job}.out"
    assert job_state(slurm, job) == "RUNNING" and log.read_text().count(f"launch_ray: job {job}, ") == 1
    node1_only = {d.name for d in trials.iterdir() if (d / "result.json").exists() and hosts(d) == ["node1"]}
    # then SIGTERM to every process of the job, as a site's preemption sends it: it requeues itself
    subprocess.run(["scancel", "--signal=TERM", "--full", job], env=slurm, check=True)
    wait_for(lambda: "SIGTERM: requeued" in log.read_text(), 120)
    before = attempts_made(trials)
    # the rerun (on node1 alone) loses its head's Ray while it trains: it requeues itself again
    wait_for(lambda: ended(slurm, job) or attempts_made(trials) > before, 300)
    assert job_state(slurm, job) == "RUNNING", log.read_text()
    finished = {d: len(hosts(d)) for d in trials.iterdir() if (d / "result.json").exists()}
    subprocess.run(["pkill", "-9", "-f", f"raylet/raylet .*/tmp/rsnet-{job}/node1/"], check=True)
    wait_for(lambda: ended(slurm, job), 900)
    log = log.read_text()
    assert job_state(slurm, job) == "COMPLETED", log
    assert f"launch_ray: job {job}: SIGTERM: requeued; the sweep resumes" in log, log
    first_run = log[: log.index(f"job {job}: SIGTERM: requeued")]
    assert "sweep: SIGTERM: stopping" in first_run and "SIGINT" not in first_run, log  # the job's signal named
    assert f"launch_ray: job {job}: the head's Ray (node1) was lost: requeued; the sweep resumes" in log, log
    assert "SIGTERM received" not in log and "Traceback" not in log, log  # no signal handlers' traces
    assert log.count(f"launch_ray: job {job}, 2 node(s), head node1 ({address})") == 1, log  # before
    assert log.count(f"launch_ray: job {job}, 1 node(s), head node1 ({address})") == 2, log  # after, node2 down
    assert log.rstrip().endswith(f"job {job} stopped its Ray (/tmp/rsnet-{job} on 1 node(s))"), log
    assert "sweep tiny: 4/4 finished, 0 failed" in log, log
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(table) == 4 and table.trial.is_unique and (table.status == "finished").all()
    assert len(list(trials.iterdir())) == 4
    assert {n: (trials / n / "result.json").stat().st_mtime_ns for n in done} == done
    attempts = {d: hosts(d) for d in trials.iterdir()}
    assert {h for a in attempts.values() for h in a} == {"node1", "node2"}
    assert any(a[:2] == ["node2", "node1"] for a in attempts.values()), attempts  # moved off the lost node
    assert all(len(attempts[trials / n]) == 1 for n in node1_only), attempts  # node1's: never interrupted
    assert all(len(attempts[d]) == n for d, n in finished.items()), attempts  # finished: never started again
    assert token.stat().st_mode & 0o777 == 0o600 and token.parent.stat().st_mode & 0o777 == 0o700
    # each trial stopped and resumed (node lost, job requeued) predicts as one run straight through
    from rsnet.config import TrialConfig
    from rsnet.runtime import configure_process
    from rsnet.trial import run_trial

    for d in [d for d, a in attempts.items() if len(a) > 1]:
        cfg = TrialConfig.from_dict(json.loads((d / "config.json").read_text()))
        configure_process(cfg.threads)  # as the sweep's trials run (one thread each)
        run_trial(cfg, tmp_path / "direct" / d.name)
        pd.testing.assert_frame_equal(
            pd.read_csv(d / "predictions.csv"), pd.read_csv(tmp_path / "direct" / d.name / "predictions.csv")
        )
    wait_for(lambda: no_ray_left(job), 60)
    shutil.rmtree(f"/tmp/rsnet-{job}", ignore_errors=True)  # the job's Ray logs (kept for users)
    # the crashed node restarted serves the next job (the next test's)
    subprocess.run([CLUSTER, "restart-node", "node2"], env=slurm, check=True, timeout=180)


def test_a_search_sent_sigterm_requeues_itself_and_its_rerun_continues_the_search(slurm, tmp_path):
    """A sweep's nested search under the launcher, sent SIGTERM once a sample has finished (as on
    preemption): the job requeues itself with nothing chosen, and its rerun restores the search's
    Tune experiment: finished inner trials are not trained again, the searcher goes on to its six
    samples, and the configuration chosen is trained and tested. The example's motion_profile
    model keeps it short."""
    f = tmp_path / "search.yaml"
    f.write_text(
        TINY.read_text()
        .replace("fold: [1, 2]", "fold: [2]")
        .replace("epochs: 3", "epochs: 12")
        .replace(
            "    full: {}\n    no_tsa: {variant: no_tsa}\n",
            "    motion: {variant: 'rsnet_example.models:build_motion_profile'}\n",
        )
        + "search: {space: {lr: {loguniform: [1.0e-3, 0.3]}}, samples: 6, inner_folds: 2}\n"
    )
    env = {**slurm, "PYTHONPATH": os.pathsep.join([slurm["PYTHONPATH"], str(EXAMPLE)])}
    job = sbatch(env, tmp_path, "--nodes=1", str(REPO / "slurm/launch_ray.sh"), str(f))
    search = tmp_path / "results" / "tiny" / "search"
    wait_for(lambda: finished_inner(search), 300)
    subprocess.run(["scancel", "--signal=TERM", "--full", job], env=slurm, check=True)
    log = tmp_path / f"rsnet-rsnet-sweep-{job}.out"
    wait_for(lambda: "SIGTERM: requeued" in log.read_text(), 120)
    assert not list(search.glob("*/selection.json"))  # stopped inside the search: nothing chosen
    before = finished_inner(search)
    wait_for(lambda: ended(slurm, job), 600)
    log = log.read_text()
    assert job_state(slurm, job) == "COMPLETED", log
    assert log.count(f"launch_ray: job {job}, 1 node(s)") == 2 and "Traceback" not in log, log
    assert {d: t for d, t in finished_inner(search).items() if d in before} == before  # not trained again
    [selection] = [json.loads(p.read_text()) for p in search.glob("*/selection.json")]
    assert len(selection["configurations"]) == 6 and selection["chosen"]["lr"] >= 1.0e-3
    table = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert sorted(table.setting) == ["motion", "motion-tuned"] and (table.status == "finished").all()
    wait_for(lambda: no_ray_left(job), 60)
    shutil.rmtree(f"/tmp/rsnet-{job}", ignore_errors=True)


def test_a_node_that_cannot_start_ray_fails_the_job_naming_it(slurm, tmp_path):
    """node2's Ray cannot bind its node-manager port (something else holds it): the job fails
    naming node2 and stops the Ray it started on node1."""
    job = sbatch(slurm, tmp_path, "--nodes=2", "--hold", str(REPO / "slurm/launch_ray.sh"), str(TINY))
    port = ray_port(job, 1)  # the node manager's
    code = f"import socket, time; s = socket.socket(); s.bind(('0.0.0.0', {port})); s.listen(); print('ok', flush=True)"
    holder = subprocess.Popen(
        [*on_node(slurm, "node2"), sys.executable, "-c", code + "; time.sleep(600)"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        subprocess.run(["scontrol", "release", job], env=slurm, check=True)
        wait_for(lambda: ended(slurm, job), 300)
    finally:
        holder.kill()
        holder.wait()
    log = (tmp_path / f"rsnet-rsnet-sweep-{job}.out").read_text()
    assert job_state(slurm, job) == "FAILED", log
    assert "launch_ray: Ray did not start on node node2 (10.77.0.12)" in log, log
    assert log.rstrip().endswith(f"job {job} stopped its Ray (/tmp/rsnet-{job} on 2 node(s))"), log
    assert "sweep tiny" not in log  # no trial was started
    wait_for(lambda: no_ray_left(job), 60)
    shutil.rmtree(f"/tmp/rsnet-{job}", ignore_errors=True)
