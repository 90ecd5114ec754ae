"""Run a sweep's trials on Ray Tune, locally or on a running Ray cluster.

The trainable only wires `rsnet.trial.run_trial` to Tune: it reports every epoch's metrics, and
when Tune retries a trial (FailureConfig) or a rerun restores the experiment
(`Tuner.restore(..., resume_errored=True)`), the trial resumes from the checkpoint in its own
directory (written atomically every `checkpoint_every` epochs, on the results path every node
sees). Tune keeps no copies of it: a copy it prunes (`num_to_keep`) can be the one its saved
experiment state still names after an abrupt stop, and restoring then fails. Finished trials
are not rerun, and a trial directory that already holds a result is never trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from ray import tune

from ..atomic import write_json_atomic
from ..config import TrialConfig
from .progress import Progress, Stop, ThisRun
from .scale import InOrder
from .spec import Sweep, SweepError, Trial


def trainable(spec: dict) -> None:
    """One trial on a Tune worker: spec = {"name", "setting", "out", "config"} (`planned`)."""
    import ray

    from ..runtime import configure_process
    from ..trial import run_trial

    cfg = TrialConfig.from_dict(spec["config"])
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    _note_attempt(out, spec["setting"], ray.get_runtime_context())
    if (out / "result.json").exists():  # finished (InOrder ends such trials before they start)
        return
    configure_process(cfg.threads)  # this worker process is the trial's
    try:
        run_trial(cfg, out, report_epoch)
    except Exception as e:
        write_json_atomic(out / "failed.json", {"error": f"{type(e).__name__}: {e}", "time": time.time()})
        raise


def planned(trials: list[Trial], sweep_dir: Path, threads: int) -> dict[str, dict]:
    """Each trial's spec for the trainable, by name."""
    return {
        t.name: {
            "name": t.name,
            "setting": t.setting,
            "out": str((sweep_dir / "trials" / t.name).resolve()),
            "config": t.config.replace(threads=threads).to_dict(),
        }
        for t in trials
    }


def run_planned(params: dict, run, plan: dict[str, dict]) -> None:
    """Tune's function trainable: `params["trial"]` names the trial, `plan` (passed once to the
    workers by tune.with_parameters) holds its spec."""
    run(plan[params["trial"]])


def report_epoch(row: dict, checkpoint: Path | None) -> None:
    """What Tune hears of an epoch: its number (the trial's own files hold every metric), and only
    for the epochs that wrote a checkpoint (every `checkpoint_every` and the last): a grid's
    scheduler needs no more, and each report is an actor call whose bookkeeping the driver keeps
    for the rest of the sweep, as Tune keeps running statistics of each key for every trial."""
    if checkpoint is not None:
        tune.report({"epoch": row["epoch"]})


def _note_attempt(out: Path, setting: str, ctx) -> None:
    """Where this attempt runs: the Ray node, its host, and the GPUs Ray gave it."""
    path = out / "sweep_trial.json"
    meta = json.loads(path.read_text()) if path.exists() else {"setting": setting, "attempts": []}
    meta["attempts"].append(
        {
            "node_id": ctx.get_node_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": time.time(),
            "gpu_ids": ctx.get_accelerator_ids().get("GPU", []),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
    )
    write_json_atomic(path, meta)


def secure_ray_token() -> None:
    """Ray writes ~/.ray/auth_token world-readable in a world-readable folder; only the user may
    read either (0600 in 0700)."""
    token = Path.home() / ".ray" / "auth_token"
    if token.exists():
        token.chmod(0o600)
        token.parent.chmod(0o700)


def init_ray(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    # progress stays one line per trial: trial output goes to Ray's logs, not the driver;
    # errors land in each trial's failed.json and in trials.csv
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's own TensorBoard, CSV and JSON files (and its hint, which points under /tmp/ray) hold
    # none of our curves: each trial writes its metrics and events into its own directory
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Tune's own words on an interrupted or partly failed run ("Trials did not complete: [every
    # trial]", how to restore): the sweep's last line says what finished and how to continue
    logging.getLogger("ray.tune.tune").setLevel(logging.CRITICAL)
    # ... and its stack trace for each trial attempt lost (a node gone): the sweep says it in one line
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    # ... and, at the run's end, that no trial has Tune's metric files (there are none, see above)
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    else:
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:  # Ray was imported before rsnet.sweep could say "local only"
            print("sweep: note: this local Ray's ports listen on every interface (token-protected)", file=sys.stderr)
        ray.init(
            num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False
        )
    secure_ray_token()


def trial_name(trial) -> str:
    """A Tune trial's name and folder: the rsnet trial's name."""
    return trial.config["trial"]


def experiment_name(trials: list[Trial]) -> str:
    """Tune experiment per trial list (and per form of Tune's trial config, so that an experiment
    saved by an rsnet whose configs held the whole spec is never restored into this one): editing
    the sweep file starts a new experiment, whose already-finished trials are ended unstarted
    (InOrder)."""
    key = "\n".join(t.name for t in trials) + "\nTune's config: the trial's name"
    return "tune-" + hashlib.sha256(key.encode()).hexdigest()[:10]


def check_resources(sweep: Sweep, nodes: list[dict]) -> None:
    """Per-trial resources that none of `nodes` (Ray's resource dicts: CPU, GPU) can hold are an
    error naming them: Tune would wait for them forever."""
    cpu, gpu = sweep.resources["cpu"], sweep.resources["gpu"]
    if any(r.get("CPU", 0) >= cpu and r.get("GPU", 0) >= gpu for r in nodes):
        return
    have = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes) or "none alive"
    raise SweepError(
        f"{sweep.path}: resources {{cpu: {cpu:g}, gpu: {gpu:g}}} per trial, but no node of this Ray has that "
        f"(nodes: {have}); ask for less in the sweep file's resources, offer GPUs (--num-gpus on a local Ray), "
        "or let an autoscaling cluster grow (--wait-for-resources)"
    )


def local_node(num_cpus: int | None, num_gpus: int | None) -> dict:
    """What a local Ray started with these options offers (Ray counts the GPUs CUDA sees)."""
    import torch

    return {"CPU": num_cpus or os.cpu_count(), "GPU": torch.cuda.device_count() if num_gpus is None else num_gpus}


def start_ray(sweep: Sweep, address, num_cpus, num_gpus, wait_for_resources: bool) -> None:
    """Ray up (a local one, or connected to `address`) for the sweep, with its Stop installed;
    without `wait_for_resources`, resources no node has are a SweepError (checked before a local
    Ray is started for nothing)."""
    if not (address or wait_for_resources):
        check_resources(sweep, [local_node(num_cpus, num_gpus)])
    init_ray(address, num_cpus, num_gpus)
    Stop.install()  # after ray.init, whose SIGTERM handler would exit with Ray's stack traces
    if not wait_for_resources:
        import ray

        check_resources(sweep, [n["Resources"] for n in ray.nodes() if n["Alive"]])


def run_on_ray(
    sweep: Sweep,
    trials: list[Trial],
    sweep_dir: Path,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    fresh: bool = False,
    bar: bool | None = None,
    wait_for_resources: bool = False,
    trainable_fn=trainable,
    callbacks: list | tuple = (),
):
    """Run the trials (restoring the Tune experiment of an earlier run of the same list) and
    return the sweep's table; `bar`: the progress bar on (True), off (False) or on a terminal
    only (None); without `wait_for_resources`, resources no node has are a SweepError;
    `trainable_fn` and extra Tune `callbacks`: for benchmarks of the driver (bench/sweep_scale.py)."""
    chunks = parts(trials)
    start_ray(sweep, address, num_cpus, num_gpus, wait_for_resources)
    storage = (sweep_dir / "ray").resolve()
    res = {"cpu": sweep.resources["cpu"], "gpu": sweep.resources["gpu"]}
    plan = planned(trials, sweep_dir, threads=max(1, int(res["cpu"])))
    progress = Progress(sweep_dir, trials, bar)
    ThisRun.current = [progress, *callbacks]
    progress.setup()  # (Tune calls it again at each part's start: only the first counts)
    try:
        for part in chunks:
            if Stop.signal:
                break
            finished = frozenset(t.name for t in part if (Path(plan[t.name]["out"]) / "result.json").exists())
            if len(finished) == len(part):
                continue  # a finished part needs no Tune: a rerun skips it whole
            fit_part(sweep, part, {t.name: plan[t.name] for t in part}, storage, res, trainable_fn, fresh, finished)
    finally:
        progress.close()
    return progress.table.flush()


def parts(trials: list[Trial]) -> list[list[Trial]]:
    """The sweep's trials in consecutive parts of $RSNET_TUNE_PART (default 1,000), each run as a
    Tune experiment of its own: Tune keeps every trial of an experiment in the driver's memory
    until it ends, so one experiment of thousands grows the driver by tens of KiB per trial
    (bench/sweep_scale.py). The cost: the cluster drains a part's last trials before the next
    part starts (about one trial's time per part)."""
    raw = os.environ.get("RSNET_TUNE_PART", "1000")
    if not raw.isdigit() or int(raw) < 1:
        raise SweepError(f"RSNET_TUNE_PART={raw!r}: the trials per Tune experiment, an integer >= 1")
    size = int(raw)
    return [trials[i : i + size] for i in range(0, len(trials), size)]


def fit_part(
    sweep: Sweep, part: list[Trial], plan: dict, storage: Path, res: dict, trainable_fn, fresh: bool, finished
):
    """One part's Tune experiment run, or restored and finished (see experiment_name); the
    part's `finished` trials are ended unstarted (InOrder; set on the class, as a restored
    experiment unpickles its own scheduler)."""
    InOrder.finished = finished
    fn = tune.with_resources(tune.with_parameters(run_planned, run=trainable_fn, plan=plan), res)
    name = experiment_name(part)
    path = str(storage / name)
    if not fresh and tune.Tuner.can_restore(path):
        print(f"sweep: resuming the Tune experiment in {path}")
        tuner = tune.Tuner.restore(path, trainable=fn, resume_errored=True)
    else:
        tuner = tune.Tuner(
            fn,
            param_space={"trial": tune.grid_search(list(plan))},  # Tune's config holds only the name
            tune_config=tune.TuneConfig(
                scheduler=InOrder(),
                reuse_actors=True,  # a worker process serves trial after trial
                trial_name_creator=trial_name,  # named functions: Tune stores them with every trial
                trial_dirname_creator=trial_name,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage),
                verbose=0,
                callbacks=[ThisRun()],  # no Tune loggers: each trial's own files hold its metrics
                failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            ),
        )
    tuner.fit()
