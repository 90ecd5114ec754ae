"""Run a sweep's trials on Ray Tune, locally or on a running Ray cluster.

The trainable only wires `rsnet.trial.run_trial` to Tune: it reports every epoch's metrics,
hands each checkpoint to Tune (`tune.report(..., checkpoint=tune.Checkpoint)`), and when Tune
retries a trial (FailureConfig) it resumes from `tune.get_checkpoint()`. A rerun of the same
sweep restores the Tune experiment (`Tuner.restore(..., resume_errored=True)`): finished
trials are not rerun, and a trial directory that already holds a result is never trained again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ray import tune

from ..checkpoint import read_checkpoint, write_json_atomic
from ..config import TrialConfig
from .spec import Sweep, Trial
from .table import write_table


def trainable(params: dict) -> None:
    """Tune function trainable for one trial: params = {"trial": {"config", "out", "setting"}}."""
    import ray

    from ..trial import run_trial

    spec = params["trial"]
    cfg = TrialConfig.from_dict(spec["config"])
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    _note_attempt(out, spec["setting"], ray.get_runtime_context().get_node_id())
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            _restore(Path(d) / "checkpoint.pt", out / "checkpoint.pt")

    def report(row: dict, checkpoint: Path | None) -> None:
        if checkpoint is None:
            tune.report(row)
            return
        with tempfile.TemporaryDirectory() as d:
            shutil.copy2(checkpoint, Path(d) / "checkpoint.pt")
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))

    try:
        result = run_trial(cfg, out, report)
    except Exception as e:
        write_json_atomic(out / "failed.json", {"error": f"{type(e).__name__}: {e}", "time": time.time()})
        raise
    tune.report({"epoch": cfg.epochs, "accuracy": result["accuracy"],
                 "optimistic_accuracy": result["optimistic_accuracy"], "done": True})


def _note_attempt(out: Path, setting: str, node_id: str) -> None:
    path = out / "sweep_trial.json"
    meta = json.loads(path.read_text()) if path.exists() else {"setting": setting, "attempts": []}
    meta["attempts"].append({"node_id": node_id, "pid": os.getpid(), "time": time.time()})
    write_json_atomic(path, meta)


def _restore(from_ray: Path, local: Path) -> None:
    """Use Tune's checkpoint unless the trial directory already holds a newer one."""
    if not from_ray.exists():
        return
    if local.exists() and read_checkpoint(local)["state"]["epoch"] >= read_checkpoint(from_ray)["state"]["epoch"]:
        return
    tmp = local.with_name(".checkpoint.pt.restore")
    shutil.copy2(from_ray, tmp)
    os.replace(tmp, local)


def secure_ray_token() -> None:
    """Ray writes ~/.ray/auth_token world-readable; only the user may read it."""
    token = Path.home() / ".ray" / "auth_token"
    if token.exists():
        token.chmod(0o600)


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
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
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    secure_ray_token()


class Progress(tune.Callback):
    """One line per ended trial, and the tidy table kept current."""

    def __init__(self, sweep_dir: Path, total: int):
        self.sweep_dir, self.total, self.ended, self.t0 = Path(sweep_dir), total, 0, time.time()

    def _line(self, trial, what: str) -> None:
        self.ended += 1
        name = trial.config["trial"]["name"]
        acc = trial.last_result.get("accuracy")
        tail = f"accuracy {acc:.4f}" if acc is not None and what == "finished" else what
        print(f"[{self.ended}/{self.total}] {name}: {tail} ({(time.time() - self.t0) / 60:.1f} min)", flush=True)
        write_table(self.sweep_dir)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._line(trial, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, "FAILED (error in trials.csv)")


def experiment_name(trials: list[Trial]) -> str:
    """Tune experiment per trial list: editing the sweep file starts a new experiment, whose
    already-finished trials then return at once from their result files."""
    return "tune-" + hashlib.sha256("\n".join(t.name for t in trials).encode()).hexdigest()[:10]


def run_on_ray(sweep: Sweep, trials: list[Trial], sweep_dir: Path, address: str | None = None,
               num_cpus: int | None = None, fresh: bool = False):
    init_ray(address, num_cpus)
    storage = (sweep_dir / "ray").resolve()
    name = experiment_name(trials)
    res = {"cpu": sweep.resources["cpu"], "gpu": sweep.resources["gpu"]}
    fn = tune.with_resources(trainable, res)
    path = str(storage / name)
    callbacks = [Progress(sweep_dir, len(trials)), tune.logger.CSVLoggerCallback(), tune.logger.JsonLoggerCallback()]
    if not fresh and tune.Tuner.can_restore(path):
        print(f"sweep: resuming the Tune experiment in {path}")
        tuner = tune.Tuner.restore(path, trainable=fn, resume_errored=True)
    else:
        space = [{"name": t.name, "setting": t.setting, "out": str((sweep_dir / "trials" / t.name).resolve()),
                  "config": t.config.replace(threads=max(1, int(res["cpu"]))).to_dict()} for t in trials]
        tuner = tune.Tuner(
            fn, param_space={"trial": tune.grid_search(space)},
            tune_config=tune.TuneConfig(reuse_actors=True,    # a worker process serves trial after trial
                                        trial_name_creator=lambda t: t.config["trial"]["name"],
                                        trial_dirname_creator=lambda t: t.config["trial"]["name"]),
            run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0, callbacks=callbacks,
                                      failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    return tuner.fit()
