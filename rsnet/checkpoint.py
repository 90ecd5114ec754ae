"""Checkpoints and small JSON files, written atomically (temporary file, then rename)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch


def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def save_checkpoint(path: Path, model, optimizer, state: dict, cfg) -> None:
    """Model, optimizer, trial state (epoch, history, selection), RNG states and the config."""
    blob = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
            "torch_rng": torch.get_rng_state(), "config": cfg.to_dict()}
    if torch.cuda.is_available():
        blob["cuda_rng"] = torch.cuda.get_rng_state_all()
    _torch_save_atomic(blob, path)


def save_weights(path: Path, model, cfg, epoch: int) -> None:
    """Model weights and config only (the validation-selected model, for rsnet.predict)."""
    _torch_save_atomic({"model": model.state_dict(), "config": cfg.to_dict(), "epoch": epoch}, path)


def _torch_save_atomic(blob: dict, path: Path) -> None:
    tmp = Path(path).with_name(f".{Path(path).name}.tmp-{os.getpid()}")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> dict:
    """Load safely (weights_only=True: tensors and plain containers, no code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_checkpoint(path: Path, model, optimizer=None) -> dict:
    blob = read_checkpoint(path)
    model.load_state_dict(blob["model"])
    if optimizer is not None:
        optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["torch_rng"])
    if "cuda_rng" in blob and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    return blob["state"]
