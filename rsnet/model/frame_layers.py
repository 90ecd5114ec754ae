"""Per-frame layers of the FPN and TSA, made fast on CPU: drop-in replacements of nn.Conv2d,
nn.BatchNorm2d and nn.AvgPool2d(2) with the same parameters, buffers and state_dict, and the
same results up to float rounding (tests/test_model.py compares each with the plain layer).

They see hundreds of frames of 3-6 channels at 48x48 per batch, where PyTorch's CPU kernels
are far from the memory bandwidth: bench/train.py measures the model with and without them.
Off the CPU each is the plain layer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F


def is_channels_last(x: torch.Tensor) -> bool:
    """x is stored channels-last and not also NCHW-contiguous (as with 1 channel or 1x1 maps)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


class FrameConv2d(nn.Conv2d):
    """nn.Conv2d that runs in channels-last layout on CPU.

    oneDNN's channels-last kernels are 2-4x faster here than its NCHW ones, conversion in and
    out included. The output is NCHW, where the layers around it are fast; with
    `keep_channels_last` a channels-last input gives a channels-last output (the TSA's conv,
    whose output meets the channels-last frames)."""

    def __init__(self, *args, keep_channels_last: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_channels_last = keep_channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        keep = self.keep_channels_last and is_channels_last(x)
        y = super().forward(x.contiguous(memory_format=torch.channels_last))
        return y if keep else y.contiguous()


class _PerChannel:
    """Per-channel sums and broadcasts over the storage of an (N, C, H, W) tensor, NCHW or
    channels-last. NCHW is read as (N, C, H*W) rows; channels-last as (N*H, W*C) rows whose
    columns cycle through the channels, so a per-channel vector is repeated W times along a row
    (a broadcast along a long contiguous row instead of one along a dimension of size C)."""

    def __init__(self, x: torch.Tensor):
        N, C, H, W = x.shape
        self.shape = (N, C, H, W)
        self.channels_last = is_channels_last(x)
        self.format = torch.channels_last if self.channels_last else torch.contiguous_format

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        N, C, H, W = self.shape
        t = t.contiguous(memory_format=self.format)
        return t.permute(0, 2, 3, 1).reshape(N * H, W * C) if self.channels_last else t.view(N, C, H * W)

    def unrows(self, r: torch.Tensor) -> torch.Tensor:
        N, C, H, W = self.shape
        return r.view(N, H, W, C).permute(0, 3, 1, 2) if self.channels_last else r.view(N, C, H, W)

    def sum(self, r: torch.Tensor) -> torch.Tensor:  # (C,)
        C, W = self.shape[1], self.shape[3]
        return r.sum(0).view(W, C).sum(0) if self.channels_last else r.sum(2).sum(0)

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (C,) sums of a * b
        C, W = self.shape[1], self.shape[3]
        return (a * b).sum(0).view(W, C).sum(0) if self.channels_last else torch.linalg.vecdot(a, b).sum(0)

    def expand(self, v: torch.Tensor) -> torch.Tensor:  # (C,) -> broadcasts over rows
        return v.repeat(self.shape[3]) if self.channels_last else v.view(1, -1, 1)


class _BatchNormTraining(torch.autograd.Function):
    """Training-mode batch norm of (N, C, H, W), NCHW or channels-last (the output keeps the
    layout): y = (x - mean) / sqrt(var + eps) * w + b with the batch's mean and biased variance
    per channel (two passes: mean, then the centred squares).
    Returns (y, mean, var); mean and var only feed the running statistics."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        per = _PerChannel(x)
        n = x.numel() // x.shape[1]
        rows = per.rows(x)
        mean = per.sum(rows) / n  # (C,)
        xc = rows - per.expand(mean)  # x - mean, as rows
        var = per.dot(xc, xc) / n  # (C,)
        invstd = torch.rsqrt(var + eps)
        y = torch.empty_like(x, memory_format=per.format)
        torch.addcmul(per.expand(bias), xc, per.expand(weight * invstd), out=per.rows(y))
        ctx.save_for_backward(xc, invstd, weight)
        ctx.per = per
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, g, _mean, _var):
        xc, invstd, weight = ctx.saved_tensors
        per = ctx.per
        n = xc.numel() // weight.shape[0]
        g = per.rows(g)
        dbias = per.sum(g)  # sum of g
        dweight = per.dot(g, xc) * invstd
        # dx = w * invstd * (g - dbias / n - xhat * dweight / n), xhat = xc * invstd
        a = weight * invstd
        b = -a * invstd * dweight / n
        c = -a * dbias / n
        dx = torch.addcmul(per.expand(c), xc, per.expand(b)).addcmul_(g, per.expand(a))
        return per.unrows(dx), dweight, dbias, None


class FrameBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose CPU training pass computes the statistics with float sums and its
    own backward: PyTorch's CPU batch-norm kernels take 1.2-1.5x as long on these few-channel
    maps (3-9 % of a training step). Running statistics are updated as nn.BatchNorm2d does
    (unbiased variance, momentum); evaluation, and anything but float32 CPU training with affine
    parameters, is the parent's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (
            self.training
            and self.track_running_stats
            and self.affine
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and x.dim() == 4
        ):
            return super().forward(x)
        n = x.numel() // x.shape[1]
        if n < 2:
            return super().forward(x)  # the parent's error for a single value
        y, mean, var = _BatchNormTraining.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(mean, m)
            self.running_var.lerp_(var * (n / (n - 1)), m)
        return y


class AvgPool2x2(nn.Module):
    """nn.AvgPool2d(2) on even sizes as two pairwise sums (rows, then columns) times 1/4. In the
    FPN its gradient comes back from a channels-last convolution: avg_pool2d's backward copies it
    to NCHW, zero-fills and scatters, the sums' backward broadcasts it as it is (2-4 % of a
    training step). For odd sizes (the last row/column is dropped) it is avg_pool2d itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        if H % 2 or W % 2 or x.device.type != "cpu":
            return F.avg_pool2d(x, 2)
        rows = x.reshape(N, C, H // 2, 2, W).sum(3)  # (N, C, H/2, W)
        return rows.reshape(N, C, H // 2, W // 2, 2).sum(4).mul_(0.25)  # (N, C, H/2, W/2)


def plain_layers(model: nn.Module) -> nn.Module:
    """The same model, in place, with the plain nn layers instead of these (same weights and
    buffers) and the ConvLSTM's reference loop under autograd instead of its hand-written
    backward: for comparing against them in tests and benchmarks."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, AvgPool2x2):
                setattr(module, name, nn.AvgPool2d(2))
        if isinstance(module, FrameConv2d):
            module.__class__ = nn.Conv2d
        elif isinstance(module, FrameBatchNorm2d):
            module.__class__ = nn.BatchNorm2d
        elif hasattr(module, "bptt_by_hand"):  # blocks.ConvLSTM
            module.bptt_by_hand = False
    return model
