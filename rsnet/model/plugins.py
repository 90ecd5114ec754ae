"""Variants from outside the package: a builder named by its import path (`package.module:builder`)
or registered by an installed package under the entry-point group `rsnet.variants`.

A builder is called as `builder(in_channels=..., resolution=...)` and returns an `nn.Module` with
the forward contract of `network.py`: `forward(frames, lengths)` -> (B,) P(spontaneous),
`logits(frames, lengths)` -> (B, 1) (sigmoid loss) or (B, 2) (softmax loss), and a video's output
the same alone as in a padded batch. `check_contract` tests exactly that on a small batch; a
sweep runs it for every plugin before any trial starts.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points, packages_distributions, version
from typing import Callable

import torch
from torch import nn

GROUP = "rsnet.variants"
PADDING_TOLERANCE = 1e-8  # in float64, where batched and single-video layers differ by ~1e-16


class VariantError(ValueError):
    """A variant that cannot be built or breaks the forward contract; the message says why."""


@lru_cache(maxsize=1)
def registered() -> dict[str, EntryPoint]:
    """Variant names installed packages register (entry-point group `rsnet.variants`)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def is_plugin(name: str) -> bool:
    """An import path or a registered name (not imported here)."""
    return ":" in name or name in registered()


def resolve(name: str) -> Callable[..., nn.Module]:
    """The builder an import path or a registered name stands for."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            obj = importlib.import_module(module)
        except ImportError as e:
            raise VariantError(
                f"cannot import {module!r} ({e}); install the package that provides it "
                "(pip install -e <its folder>) or put its folder on PYTHONPATH"
            ) from e
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise VariantError(f"module {module!r} has no {attr!r}")
            obj = getattr(obj, part)
    elif name in registered():
        ep = registered()[name]
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - whatever the package raises, said with its name
            raise VariantError(f"entry point {name} = {ep.value} ({GROUP}) does not load: {e}") from e
    else:
        raise VariantError(f"{name!r} is neither an import path ('package.module:builder') nor registered in {GROUP}")
    if not callable(obj):
        raise VariantError(f"{name} is a {type(obj).__name__}, not a callable builder")
    return obj


def source(name: str) -> dict | None:
    """Where a researcher's variant comes from, for its checkpoints: the builder's import path and
    the installed distribution (name, version) that provides it; None for a shipped variant."""
    if not is_plugin(name):
        return None
    if ":" in name:
        path, top = name, name.split(".")[0].split(":")[0]
        dists = packages_distributions().get(top, [])
        dist = dists[0] if dists else None
    else:
        ep = registered()[name]
        path, dist = ep.value, ep.dist.name if ep.dist else None
    return {"builder": path, "distribution": dist, "version": version(dist) if dist else None}


def build(name: str, in_channels: int, resolution: int, **options) -> nn.Module:
    """The builder's model: `builder(in_channels=..., resolution=..., **options)`."""
    model = resolve(name)(in_channels=in_channels, resolution=resolution, **options)
    if not isinstance(model, nn.Module):
        raise VariantError(f"{name} returned a {type(model).__name__}, not a torch nn.Module")
    return model


def describe(name: str) -> str:
    """The builder's docstring's first paragraph, one line (the report's Methods sentence)."""
    doc = inspect.getdoc(resolve(name)) or ""
    return " ".join(doc.split("\n\n")[0].split())


def check_contract(model: nn.Module, in_channels: int, resolution: int) -> None:
    """Raise VariantError unless `model` keeps the forward contract (the module's docstring) on
    two videos of 5 and 3 frames, in eval mode, on a float64 copy (an untrained network's outputs
    vary little, so float32 rounding could hide what padding changes) whose all-zero parameters
    are drawn at random (a zero-initialised layer would hide it entirely)."""
    gen = torch.Generator().manual_seed(0)
    shape = (in_channels, resolution, resolution)
    frames = torch.rand(2, 5, *shape, generator=gen, dtype=torch.float64)  # (B, T, C, H, W)
    lengths = torch.tensor([5, 3])
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for param in model.parameters():
            if not param.any():
                param.copy_(0.1 * torch.randn(param.shape, generator=gen, dtype=param.dtype))
        for method in ("forward", "logits"):
            if not callable(getattr(model, method, None)):
                raise VariantError(f"the model has no {method}(frames, lengths)")
        p = model(frames, lengths)
        if not isinstance(p, torch.Tensor) or tuple(p.shape) != (2,):
            raise VariantError(f"forward gave {_shape(p)} for 2 videos; the contract is (B,) = (2,)")
        if not torch.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise VariantError(f"forward gave {p.tolist()}: not probabilities in [0, 1]")
        logits = model.logits(frames, lengths)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) not in ((2, 1), (2, 2)):
            raise VariantError(f"logits gave {_shape(logits)} for 2 videos; the contract is (B, 1) or (B, 2)")
        padded = frames.clone()
        padded[1, 3:] = torch.rand(2, *shape, generator=gen, dtype=torch.float64)
        alone = model(frames[1:2, :3], lengths[1:2])
        for what, out in (("alone", alone[0]), ("with other padding values", model(padded, lengths)[1])):
            if abs(float(out) - float(p[1])) > PADDING_TOLERANCE:
                raise VariantError(
                    f"the output changes with padding: a 3-frame video scores {float(p[1]):.9f} in a batch "
                    f"padded to 5 frames and {float(out):.9f} {what} (it must read only frames[b, :lengths[b]])"
                )


def _shape(x) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else f"a {type(x).__name__}"
