"""`train_one_epoch` and `evaluate`: plain functions that return metric dicts."""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch

from .batching import ClipSet, batches
from .loss import smile_loss


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when asked for; a no-op otherwise (CPU runs stay fp32)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def l2_norm_penalty(model: torch.nn.Module) -> torch.Tensor:
    """Sum over every trainable parameter tensor (weights, biases, BatchNorm scales) of its L2
    norm, not squared: the authors' released code adds 0.001 x this to the loss."""
    return sum(p.norm(2) for p in model.parameters() if p.requires_grad)


def train_one_epoch(
    model,
    data: ClipSet,
    optimizer,
    class_weights: torch.Tensor,
    device: torch.device,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    l2_penalty: float = 0.0,
    amp: bool = False,
    control: str = "none",
) -> dict:
    """One pass over the training clips. Returns train_loss (mean over clips), train_acc, seconds."""
    model.train()
    t0 = time.perf_counter()
    total_loss, correct, n = 0.0, 0, 0
    for frames, lengths, labels, _ in batches(data, batch_size, True, seed, epoch, control):
        frames, labels = frames.to(device, non_blocking=True), labels.to(device)
        with autocast(device, amp):
            logits = model.logits(frames, lengths)
        loss = smile_loss(logits.float(), labels, class_weights)
        if l2_penalty:
            loss = loss + l2_penalty * l2_norm_penalty(model)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"epoch {epoch}: training loss is {loss.item()} (lr too high, or bad input?)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            pred = _predicted_class(logits.float())
            correct += int((pred == labels).sum())
        total_loss += loss.item() * len(labels)
        n += len(labels)
    return {
        "train_loss": total_loss / max(n, 1),
        "train_acc": correct / max(n, 1),
        "train_seconds": time.perf_counter() - t0,
    }


def _predicted_class(logits: torch.Tensor) -> torch.Tensor:
    return (logits[:, 0] > 0).long() if logits.shape[-1] == 1 else logits.argmax(-1)


@torch.no_grad()
def evaluate(
    model,
    data: ClipSet,
    device: torch.device,
    *,
    batch_size: int = 32,
    amp: bool = False,
    control: str = "none",
    seed: int = 0,
) -> dict:
    """Scores every clip. Returns accuracy, n, and `scores` (P(spontaneous)) aligned with `data`."""
    model.eval()
    scores = np.zeros(len(data), dtype=np.float64)
    for frames, lengths, _, idx in batches(data, batch_size, False, seed, 0, control):
        with autocast(device, amp):
            p = model(frames.to(device), lengths)
        scores[idx] = p.float().cpu().numpy()
    if np.isnan(scores).any():
        raise NonFiniteLoss("evaluation produced NaN scores")
    acc = float(((scores > 0.5).astype(np.int64) == data.labels).mean()) if len(data) else math.nan
    return {"accuracy": acc, "n": len(data), "scores": scores}
