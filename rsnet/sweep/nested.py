"""Nested subject-disjoint cross-validation of a sweep's `search` (search.py), on Ray Tune.

For each outer trial of the sweep (a combination, an outer fold, a seed):
1. Ray Tune samples `samples` configurations (OptunaSearch or random) of the search space; each
   one trains `inner_folds` inner trials in lockstep, one per subject-disjoint inner fold of the
   outer fold's training subjects, and reports the inner folds' mean validation accuracy each
   epoch, on which ASHA stops the hopeless ones early. The outer test subjects never reach an
   inner trial (rsnet.trial checks each split).
2. The configuration with the best mean inner accuracy among those that ran every epoch is
   chosen, from the inner trials' files (`search/<outer trial>/selection.json`).
3. The chosen configuration is trained on all of the outer fold's training subjects and tested
   once on the outer fold, as an ordinary trial (`tuned` set), beside the same trial at the
   sweep's defaults.
Files: search/<outer>/tune (Tune's experiment: restored by a rerun, the searcher continues),
search/<outer>/configs/<Tune trial id>/{configuration.json, the configuration's TensorBoard HParams
entry, inner<k>/ (a trial's files)}: a folder per sample, so that values drawn twice train twice,
each sample its own record, as Tune runs them.
"""

from __future__ import annotations

import json
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

from ray import tune

from ..atomic import write_json_atomic
from ..config import TrialConfig
from ..trial import read_history
from .progress import Stop
from .search import METRIC
from .spec import Sweep, Trial, trial_name


class SearchError(ValueError):
    """An outer trial's search that chose nothing; the message names its folder."""


def configuration(params: dict, outer: dict) -> None:
    """Tune's function trainable: one sampled configuration of one outer trial, its inner trials
    trained in lockstep; reports the epoch and the inner folds' mean validation accuracy."""
    from ..runtime import configure_process
    from ..trial import finish_trial, fit_epochs, start_trial

    cfg = TrialConfig.from_dict(outer["config"]).replace(**params)
    configure_process(cfg.threads)
    sample = tune.get_context().get_trial_id()  # kept by a restore: a resumed sample finds its folder
    base = Path(outer["dir"]) / "configs" / sample
    base.mkdir(parents=True, exist_ok=True)
    if not (base / "configuration.json").exists():
        started = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        write_json_atomic(
            base / "configuration.json", {"params": params, "outer_trial": outer["name"], "started": started}
        )
    board = hparams_board(base, cfg, params)
    t0, k = time.perf_counter(), outer["inner_folds"]
    runs, histories, steps = [], [], []
    for j in range(1, k + 1):
        out = base / f"inner{j}"
        run = start_trial(cfg.replace(inner_folds=k, inner_fold=j), out)
        runs.append(run)
        if run is None:  # finished before a restore: its epochs from its files
            histories.append(read_history(out))
            steps.append(None)
        else:
            histories.append(run.state["history"])  # fit_epochs appends to it
            steps.append(fit_epochs(run))
    for epoch in range(1, cfg.epochs + 1):
        for history, step in zip(histories, steps):
            if len(history) < epoch:
                next(step)
        mean = sum(h[epoch - 1]["test_acc"] for h in histories) / k  # an inner trial's test is its inner fold
        board.add_scalar(f"hparam/{METRIC}", mean, epoch)
        board.flush()  # before the report, after which the scheduler may end the process
        if epoch == cfg.epochs:
            for run in runs:
                if run is not None:
                    finish_trial(run, time.perf_counter() - t0)
            board.close()
        tune.report({"epoch": epoch, METRIC: mean})


def hparams_board(base: Path, cfg: TrialConfig, params: dict):
    """A TensorBoard writer in the configuration's folder, its HParams entry written: the searched
    values, the outer fold and seed, and hparam/inner_accuracy (the inner folds' mean validation
    accuracy, one point per epoch run), so that HParams lists every configuration, those ASHA
    stopped too (an inner trial's own entry is written only when it finishes)."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()}
    writer = SummaryWriter(str(base), purge_step=1)  # a resumed configuration logs every epoch again
    for summary in hparams({**values, "outer_fold": cfg.fold, "seed": cfg.seed}, {f"hparam/{METRIC}": 0.0}):
        writer.file_writer.add_summary(summary)
    return writer


def outer_spec(sweep_dir: Path, outer: Trial, k: int, threads: int) -> dict:
    return {
        "name": outer.name,
        "dir": str(sweep_dir / "search" / outer.name),
        "config": outer.config.replace(threads=threads).to_dict(),
        "inner_folds": k,
    }


def search_outer(sweep: Sweep, outer: Trial, sweep_dir: Path) -> dict:
    """Run (or restore and finish) one outer trial's search on Tune; its selection (choose)."""
    search, res = sweep.search, {"cpu": sweep.resources["cpu"], "gpu": sweep.resources["gpu"]}
    spec = outer_spec(sweep_dir, outer, search.inner_folds, max(1, int(res["cpu"])))
    fn = tune.with_resources(tune.with_parameters(configuration, outer=spec), res)
    storage = Path(spec["dir"]).resolve()
    if tune.Tuner.can_restore(str(storage / "tune")):
        tuner = tune.Tuner.restore(str(storage / "tune"), trainable=fn, resume_errored=True)
    else:
        tuner = tune.Tuner(
            fn,
            param_space=search.tune_space(),
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode="max",
                search_alg=search.searcher(outer.config),
                scheduler=search.scheduler_for(outer.config.epochs),
                num_samples=search.samples,
                reuse_actors=True,  # a worker process serves sample after sample
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(storage),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            ),
        )
    tuner.fit()
    if Stop.signal:  # stopped inside the search: nothing is chosen from a search cut short
        raise KeyboardInterrupt
    return choose(Path(spec["dir"]), outer, search.inner_folds)


def choose(search_dir: Path, outer: Trial, k: int) -> dict:
    """The selection, from the inner trials' files: the configuration with the best mean inner
    validation accuracy at the last epoch, among those whose inner trials all finished (ties: the
    first started); written to selection.json with every configuration's record, in the order
    they started."""
    records = []
    samples = [(json.loads(f.read_text()), f.parent) for f in (search_dir / "configs").glob("*/configuration.json")]
    for meta, d in sorted(samples, key=lambda s: (s[0].get("started", ""), s[1].name)):
        inner = [d / f"inner{j}" for j in range(1, k + 1)]
        curves = [[row["test_acc"] for row in read_history(p)] for p in inner]
        run = min(map(len, curves))
        records.append(
            {
                "configuration": d.name,
                "params": meta["params"],
                "started": meta.get("started"),
                "inner_trials": [str(p) for p in inner],
                "completed": all((p / "result.json").exists() for p in inner),
                "epochs_run": run,
                "inner_trial_epochs": sum(map(len, curves)),
                "mean_inner_accuracy": [sum(c[e] for c in curves) / k for e in range(run)],
            }
        )
    done = [r for r in records if r["completed"]]
    if not done:
        raise SearchError(
            f"{search_dir}: no configuration finished every inner fold; Tune's errors are under {search_dir / 'tune'}"
        )
    best = max(done, key=lambda r: r["mean_inner_accuracy"][-1])  # max keeps the first of equals
    epochs = outer.config.epochs
    selection = {
        "outer_trial": outer.name,
        "outer_fold": outer.config.fold,
        "seed": outer.config.seed,
        "chosen": best["params"],
        "chosen_configuration": best["configuration"],
        "mean_inner_accuracy": best["mean_inner_accuracy"][-1],
        "inner_trial_epochs_run": sum(r["inner_trial_epochs"] for r in records),
        "inner_trial_epochs_without_early_stopping": len(records) * k * epochs,
        "configurations": records,
    }
    write_json_atomic(search_dir / "selection.json", selection)
    return selection


def tuned_trial(sweep: Sweep, outer: Trial, selection: dict) -> Trial:
    """The outer trial at the chosen configuration, marked with the search that chose it."""
    cfg = outer.config.replace(**selection["chosen"], tuned=sweep.search.identity())
    setting = f"{outer.setting or cfg.variant}-tuned"
    return Trial(trial_name(cfg, setting), setting, cfg)


def run_searches(
    sweep: Sweep, outers: list[Trial], sweep_dir: Path, address, num_cpus, num_gpus, wait_for_resources=False
) -> list[Trial]:
    """Each outer trial's search, one after another (each uses the whole Ray cluster); the tuned
    trials to run beside them. A rerun restores each search's Tune experiment."""
    from .runner import start_ray

    start_ray(sweep, address, num_cpus, num_gpus, wait_for_resources)
    # a restored configuration reports its epochs again from the start: Optuna keeps the first
    warnings.filterwarnings("ignore", message="The reported value is ignored because this `step")
    tuned = []
    for i, outer in enumerate(outers, 1):
        selection = search_outer(sweep, outer, sweep_dir)
        run, full = selection["inner_trial_epochs_run"], selection["inner_trial_epochs_without_early_stopping"]
        chosen = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in selection["chosen"].items())
        print(
            f"[search {i}/{len(outers)}] {outer.name}: chose {chosen} (mean inner accuracy "
            f"{selection['mean_inner_accuracy']:.4f}; {len(selection['configurations'])} configurations, "
            f"{run}/{full} inner trial-epochs run)",
            flush=True,
        )
        tuned.append(tuned_trial(sweep, outer, selection))
    return tuned
