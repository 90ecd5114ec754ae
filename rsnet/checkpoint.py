"""Checkpoints: written atomically (rsnet.atomic), read back safely."""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_path
from .model.plugins import source as variant_source


def save_checkpoint(path: Path, model, optimizer, state: dict, cfg) -> None:
    """Model, optimizer, trial state (epoch, history, selection), RNG states and the config."""
    blob = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "state": state,
        "torch_rng": torch.get_rng_state(),
        "config": cfg.to_dict(),
        "variant_source": variant_source(cfg.variant),
    }
    if torch.cuda.is_available():
        blob["cuda_rng"] = torch.cuda.get_rng_state_all()
    _torch_save_atomic(blob, path)


def save_weights(path: Path, model, cfg, epoch: int) -> None:
    """Model weights and config only (the validation-selected model, for rsnet.predict)."""
    blob = {"model": model.state_dict(), "config": cfg.to_dict(), "epoch": epoch}
    _torch_save_atomic({**blob, "variant_source": variant_source(cfg.variant)}, path)


def _torch_save_atomic(blob: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


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
