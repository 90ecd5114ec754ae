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
import os
import socket
import sys
import time
from pathlib import Path

from ray import tune
from tqdm import tqdm

from ..atomic import write_json_atomic
from ..config import TrialConfig
from .spec import Sweep, Trial
from .table import write_table


def trainable(params: dict) -> None:
    """Tune function trainable for one trial: params = {"trial": {"config", "out", "setting"}}."""
    import ray

    from ..runtime import configure_process
    from ..trial import run_trial

    spec = params["trial"]
    cfg = TrialConfig.from_dict(spec["config"])
    configure_process(cfg.threads)  # this worker process is the trial's
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    _note_attempt(out, spec["setting"], ray.get_runtime_context())
    try:
        result = run_trial(cfg, out, lambda row, checkpoint: tune.report(row))
    except Exception as e:
        write_json_atomic(out / "failed.json", {"error": f"{type(e).__name__}: {e}", "time": time.time()})
        raise
    tune.report(
        {
            "epoch": cfg.epochs,
            "accuracy": result["accuracy"],
            "optimistic_accuracy": result["optimistic_accuracy"],
            "done": True,
        }
    )


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
    # Tune's own TensorBoard files (and its hint, which points under /tmp/ray) hold none of our
    # curves: each trial writes its events into its own directory; Tune keeps its CSV/JSON logs
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
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


class Progress(tune.Callback):
    """The sweep's progress: one bar (trials ended of all, finished, failed, running, ETA) on a
    terminal, one line per ended trial with the same counts wherever the output goes (a Slurm
    log), and the tidy table kept current."""

    def __init__(self, sweep_dir: Path, total: int, done_before: int = 0, bar: bool | None = None):
        self.sweep_dir, self.total, self.t0 = Path(sweep_dir), total, time.time()
        self.finished, self.failed, self.running, self.before = done_before, 0, 0, done_before
        self.bar = tqdm(
            total=total,
            initial=done_before,
            desc="sweep",
            unit="trial",
            file=sys.stderr,
            disable=None if bar is None else not bar,
            dynamic_ncols=True,
        )
        self._postfix()

    def _postfix(self) -> None:
        self.bar.set_postfix_str(f"{self.finished} finished, {self.failed} failed, {self.running} running")

    def _eta(self) -> str:
        ended = self.finished + self.failed - self.before
        left = self.total - self.finished - self.failed
        return "" if not ended or not left else f", ETA {(time.time() - self.t0) / ended * left / 60:.1f} min"

    def on_step_end(self, iteration, trials, **info):
        running = sum(t.status == "RUNNING" for t in trials)
        if running != self.running:
            self.running = running
            self._postfix()

    def _line(self, trial, what: str) -> None:
        name = trial.config["trial"]["name"]
        acc = trial.last_result.get("accuracy")
        tail = f"accuracy {acc:.4f}" if acc is not None and what == "finished" else what
        self.running = max(0, self.running - 1)
        self._postfix()
        self.bar.update(1)
        ended = self.finished + self.failed
        tqdm.write(
            f"[{ended}/{self.total}] {name}: {tail} ({(time.time() - self.t0) / 60:.1f} min; "
            f"{self.finished} finished, {self.failed} failed, {self.running} running{self._eta()})",
            file=sys.stdout,
        )
        sys.stdout.flush()
        write_table(self.sweep_dir)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.finished += 1
        self._line(trial, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        out = Path(trial.config["trial"]["out"])
        if not (out / "failed.json").exists():  # failed in Tune, outside the trainable: say so there
            error = f"Ray Tune: {trial.get_error() or 'see ' + str(trial.error_file)}"
            write_json_atomic(out / "failed.json", {"error": error.strip()[-2000:], "time": time.time()})
        self._line(trial, "FAILED (error in trials.csv)")

    def on_experiment_end(self, trials, **info):
        self.running = 0
        self._postfix()
        self.bar.close()


def experiment_name(trials: list[Trial]) -> str:
    """Tune experiment per trial list: editing the sweep file starts a new experiment, whose
    already-finished trials then return at once from their result files."""
    return "tune-" + hashlib.sha256("\n".join(t.name for t in trials).encode()).hexdigest()[:10]


def run_on_ray(
    sweep: Sweep,
    trials: list[Trial],
    sweep_dir: Path,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    fresh: bool = False,
    bar: bool | None = None,
):
    """Run the trials (restoring the Tune experiment of an earlier run of the same list);
    `bar`: the progress bar on (True), off (False) or on a terminal only (None)."""
    init_ray(address, num_cpus, num_gpus)
    storage = (sweep_dir / "ray").resolve()
    name = experiment_name(trials)
    res = {"cpu": sweep.resources["cpu"], "gpu": sweep.resources["gpu"]}
    fn = tune.with_resources(trainable, res)
    path = str(storage / name)
    restoring = not fresh and tune.Tuner.can_restore(path)
    # a restored experiment does not run its finished trials again: the bar starts past them
    before = sum((sweep_dir / "trials" / t.name / "result.json").exists() for t in trials) if restoring else 0
    callbacks = [
        Progress(sweep_dir, len(trials), before, bar),
        tune.logger.CSVLoggerCallback(),
        tune.logger.JsonLoggerCallback(),
    ]
    if restoring:
        print(f"sweep: resuming the Tune experiment in {path}")
        tuner = tune.Tuner.restore(path, trainable=fn, resume_errored=True)
    else:
        space = [
            {
                "name": t.name,
                "setting": t.setting,
                "out": str((sweep_dir / "trials" / t.name).resolve()),
                "config": t.config.replace(threads=max(1, int(res["cpu"]))).to_dict(),
            }
            for t in trials
        ]
        tuner = tune.Tuner(
            fn,
            param_space={"trial": tune.grid_search(space)},
            tune_config=tune.TuneConfig(
                reuse_actors=True,  # a worker process serves trial after trial
                trial_name_creator=lambda t: t.config["trial"]["name"],
                trial_dirname_creator=lambda t: t.config["trial"]["name"],
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage),
                verbose=0,
                callbacks=callbacks,
                failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            ),
        )
    return tuner.fit()
