"""`run_trial(config, out_dir) -> result`: train and evaluate RealSmileNet on one fold.

A trial directory holds
    config.json        the resolved TrialConfig
    metrics.jsonl      one line per epoch: train loss/acc, val/test accuracy, seconds
    predictions.csv    test fold: video id, subject, label, score, predicted class
    result.json        headline accuracy, optimistic accuracy, counts, timing, versions, hash
    checkpoint.pt      model, optimizer, epoch, RNG states, history, config (latest; atomic)
    selected.pt        with val_fraction > 0: the weights of the validation-selected epoch
    events.out.tfevents.*   TensorBoard: scalars per epoch; the settings and final accuracies (HParams)
Model selection never looks at the test fold: the headline accuracy is the final epoch's, or,
with val_fraction > 0, that of the epoch with the best accuracy on a subject-disjoint
validation split of the training subjects. The best test accuracy over epochs (what the
authors' code reports) is recorded too, as `optimistic_accuracy`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from . import __version__
from .atomic import write_json_atomic, write_text_atomic
from .batching import ClipSet
from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .config import SETTABLE_FIELDS, TrialConfig
from .data import assign_folds, load_or_build, make_split, splits
from .data.splits import validation_subjects
from .engine import NonFiniteLoss, evaluate, train_one_epoch
from .loss import class_weights
from .model import count_parameters


class TrialError(RuntimeError):
    """A trial that cannot finish; its partial outputs are kept."""


def code_version() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{__version__}+{rev}" if rev else __version__


def pick_device(name: str) -> torch.device:
    """'auto': CUDA if this torch has it, else the CPU (saying so when GPUs were given)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_fallback_note(name: str, device: torch.device) -> str | None:
    """What to say when GPUs were given (CUDA_VISIBLE_DEVICES set, as Ray sets it for a trial
    with gpu > 0) but the trial runs on the CPU because CUDA is absent."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if name != "auto" or device.type != "cpu" or not given:
        return None
    return f"GPU(s) {given} given (CUDA_VISIBLE_DEVICES) but CUDA is not available to torch {torch.__version__}: CPU"


def load_data(cfg: TrialConfig, progress: bool = False):
    """(train, val or None, test) ClipSets and facts about the data, from the cache."""
    prep = cfg.prep()
    cache = load_or_build(cfg.dataset, cfg.root, prep, cfg.cache or None, progress=progress, **cfg.listing(cfg.dataset))
    videos = cache.videos.assign(fold=assign_folds(cfg.dataset, cache.videos, cfg.mmi_folds, cfg.n_folds))
    usable = videos[videos.status == "ok"]
    target_cache, target = cache, None
    if cfg.target():
        target_cache = load_or_build(
            cfg.target(), cfg.target_root, prep, cfg.cache or None, progress=progress, **cfg.listing(cfg.target())
        )
        target = target_cache.videos[target_cache.videos.status == "ok"]
    split = make_split(cfg.split, cfg.fold, cfg.dataset, usable, target)
    inner = None
    if cfg.inner_folds:  # nested CV: the outer test fold is never seen; an inner fold is the test
        inner = splits.inner_split(split.train, cfg.inner_folds, cfg.inner_fold)
        splits.check_no_leak(split, inner)
        split, target_cache = inner, cache
    train_rows, val = split.train, None
    if cfg.val_fraction > 0:
        val_subj = validation_subjects(split.train, cfg.val_fraction, cfg.seed)
        val = ClipSet.from_cache(cache, split.train[split.train.subject.isin(val_subj)])
        train_rows = split.train[~split.train.subject.isin(val_subj)]
    facts = {
        "train_videos": len(train_rows),
        "val_videos": len(val) if val else 0,
        "test_videos": len(split.test),
        "skipped_videos": int((videos.status != "ok").sum()),
        "test_dataset": split.test_dataset,
        "synthetic": bool(cache.meta.get("synthetic")) or bool(target_cache.meta.get("synthetic")),
        "cache": str(cache.path),
    }
    if inner is not None:  # what the selection can be audited from
        facts["inner"] = {
            "outer_fold": cfg.fold,
            "inner_fold": cfg.inner_fold,
            "validated_on_subjects": sorted(set(inner.test.subject)),
            "trained_on_subjects": sorted(set(inner.train.subject)),
        }
    return ClipSet.from_cache(cache, train_rows), val, ClipSet.from_cache(target_cache, split.test), facts


def _check_config(out: Path, cfg: TrialConfig) -> None:
    path = out / "config.json"
    if path.exists():
        saved = TrialConfig.from_saved(json.loads(path.read_text()), str(path))
        if saved.hash() != cfg.hash():
            raise TrialError(
                f"{out} holds another trial (config hash {saved.hash()} != {cfg.hash()}); use a new output directory"
            )
    else:
        write_json_atomic(path, cfg.to_dict())


@dataclass
class Run:
    """A trial in progress: what training works on and the result is written from."""

    cfg: TrialConfig
    out: Path
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train: ClipSet
    val: ClipSet | None
    test: ClipSet
    facts: dict
    state: dict  # epoch, history, best_val, selected (epoch, test scores), seconds


def run_trial(
    cfg: TrialConfig, out_dir, report: Callable[[dict, Path | None], None] | None = None, progress: bool = False
) -> dict:
    """Train and evaluate one trial into out_dir; resume from its checkpoint if there is one;
    return the existing result if it already finished. `report(metrics, checkpoint_path)`
    is called after every epoch (the Ray trainable passes tune.report through it). Threads and
    other process-wide settings are the caller's (rsnet.runtime.configure_process)."""
    t_start = time.perf_counter()
    run = start_trial(cfg, out_dir, progress)
    if run is None:
        return json.loads((Path(out_dir) / "result.json").read_text())
    for row, ckpt in fit_epochs(run):
        if report:
            report(row, ckpt)
    return finish_trial(run, time.perf_counter() - t_start)


def start_trial(cfg: TrialConfig, out_dir, progress: bool = False) -> Run | None:
    """A trial ready to train (resumed from its checkpoint), or None if it already finished."""
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, cfg)
    if (out / "result.json").exists():
        return None
    return _setup(cfg, out, progress)


def finish_trial(run: Run, wall: float) -> dict:
    """The trained trial's predictions, result.json and TensorBoard HParams; its result."""
    result = _select_and_write(run, wall)
    _write_hparams(run.out, run.cfg, result)
    return result


def _setup(cfg: TrialConfig, out: Path, progress: bool) -> Run:
    """Data, model and optimizer; the state of the checkpoint in `out`, if there is one."""
    device = pick_device(cfg.device)
    note = cpu_fallback_note(cfg.device, device)
    if note:
        print(f"rsnet: {note}", file=sys.stderr, flush=True)
    train, val, test, facts = load_data(cfg, progress)
    facts = {**facts, "device_note": note}
    if "inner" in facts:  # on record from the start: an inner trial ASHA stops writes no result.json
        write_json_atomic(out / "inner.json", facts["inner"])
    torch.manual_seed(cfg.seed)
    model = cfg.model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"epoch": 0, "history": [], "best_val": -1.0, "selected": None, "seconds": 0.0}
    if (out / "checkpoint.pt").exists():
        state = load_checkpoint(out / "checkpoint.pt", model, optimizer)
    return Run(cfg, out, device, model, optimizer, train, val, test, facts, state)


def read_history(trial_dir: Path) -> list[dict]:
    """A trial's epochs so far, from its metrics.jsonl (fit_epochs writes it; none yet: [])."""
    path = Path(trial_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def fit_epochs(run: Run):
    """The remaining epochs, one per step: metrics.jsonl and TensorBoard after each, checkpoints
    on schedule; yields (the epoch's metrics, the checkpoint written or None)."""
    from torch.utils.tensorboard import SummaryWriter

    cfg, state = run.cfg, run.state
    weights = class_weights(run.train.labels, cfg.loss_weighting)
    writer = SummaryWriter(str(run.out), purge_step=state["epoch"] + 1)
    try:
        for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
            row = _epoch(run, weights, epoch)
            state["history"].append(row)
            state["epoch"] = epoch
            state["seconds"] += row["seconds"]
            write_text_atomic(run.out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state["history"]))
            for k, v in row.items():
                if k != "epoch":
                    writer.add_scalar(k, v, epoch)
            writer.flush()
            ckpt = None
            if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                ckpt = run.out / "checkpoint.pt"
                save_checkpoint(ckpt, run.model, run.optimizer, state, cfg)
            yield row, ckpt
    finally:
        writer.close()


def _epoch(run: Run, weights: torch.Tensor, epoch: int) -> dict:
    """Train one epoch, evaluate on the test fold (and the validation split, keeping the best
    validation epoch's test scores and weights); the epoch's metrics row."""
    cfg, t0 = run.cfg, time.perf_counter()
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: a function of (seed, epoch)
    try:
        m = train_one_epoch(
            run.model,
            run.train,
            run.optimizer,
            weights,
            run.device,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            epoch=epoch,
            l2_penalty=cfg.l2_penalty,
            amp=cfg.amp,
            control=cfg.temporal_control,
        )
    except NonFiniteLoss as e:
        write_json_atomic(run.out / "failed.json", {"error": str(e), "epoch": epoch})
        raise TrialError(f"{run.out}: {e}") from e
    ev = _evaluate(run, run.test)
    row = {"epoch": epoch, **m, "test_acc": ev["accuracy"]}
    if run.val is not None:
        row["val_acc"] = _evaluate(run, run.val)["accuracy"]
        if row["val_acc"] > run.state["best_val"]:
            run.state["best_val"], run.state["selected"] = row["val_acc"], (epoch, ev["scores"].tolist())
            save_weights(run.out / "selected.pt", run.model, cfg, epoch)
    row["seconds"] = time.perf_counter() - t0
    return row


def _evaluate(run: Run, data: ClipSet) -> dict:
    return evaluate(run.model, data, run.device, amp=run.cfg.amp, control=run.cfg.temporal_control, seed=run.cfg.seed)


def _select_and_write(run: Run, wall: float) -> dict:
    """The selected epoch's test predictions (predictions.csv) and the result (result.json)."""
    cfg, history = run.cfg, run.state["history"]
    if run.state["selected"] is not None:
        epoch, scores = run.state["selected"][0], np.asarray(run.state["selected"][1])
        selection = "best validation accuracy (subject-disjoint split of the training subjects)"
    else:
        epoch, scores = cfg.epochs, _evaluate(run, run.test)["scores"]
        selection = "final epoch"
    pred = (scores > 0.5).astype(int)
    rows = run.test.table
    pd.DataFrame(
        {"video": rows.id, "subject": rows.subject, "label": run.test.labels, "score": scores, "predicted": pred}
    ).to_csv(run.out / "predictions.csv", index=False)
    test_accs = [h["test_acc"] for h in history]
    result = {
        "status": "finished",
        "accuracy": float((pred == run.test.labels).mean()),
        "selected_epoch": epoch,
        "selection": selection,
        "final_epoch_accuracy": test_accs[-1],
        "optimistic_accuracy": max(test_accs),
        "optimistic_epoch": int(np.argmax(test_accs)) + 1,
        "optimistic_note": "best test accuracy over epochs (the authors' protocol): selected on the test fold",
        **run.facts,
        "epochs": cfg.epochs,
        "train_seconds": run.state["seconds"],
        "wall_seconds": wall,
        "seed": cfg.seed,
        "parameters": count_parameters(run.model),
        "device": str(run.device),
        "threads": torch.get_num_threads(),
        "code_version": code_version(),
        "torch": torch.__version__,
        "config_hash": cfg.hash(),
        "config": cfg.to_dict(),
    }
    write_json_atomic(run.out / "result.json", result)
    return result


HPARAM_METRICS = ("accuracy", "final_epoch_accuracy", "optimistic_accuracy")


def _write_hparams(out: Path, cfg: TrialConfig, result: dict) -> None:
    """This trial's settings and final accuracies for TensorBoard's HParams dashboard, so one
    TensorBoard on a sweep's trials/ compares its settings side by side (SETTABLE_FIELDS: no paths)."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    settings = {k: "none" if v is None else v for k, v in cfg.to_dict().items() if k in SETTABLE_FIELDS}
    metrics = {f"hparam/{k}": float(result[k]) for k in HPARAM_METRICS}
    with SummaryWriter(str(out)) as writer:
        for summary in hparams(settings, metrics):
            writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value)
