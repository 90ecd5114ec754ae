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


class FrameConv2d(nn.Conv2d):
    """nn.Conv2d that runs in channels-last layout on CPU.

    oneDNN's channels-last kernels are 2-4x faster here than its NCHW ones, conversion in and
    out included; the layers around it stay in NCHW, where they are fast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


class _BatchNormTraining(torch.autograd.Function):
    """Training-mode batch norm of (N, C, H, W): y = (x - mean) / sqrt(var + eps) * w + b with the
    batch's mean and biased variance per channel (two passes: mean, then the centred squares).
    Returns (y, mean, var); mean and var only feed the running statistics."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        N, C, H, W = x.shape
        n = N * H * W
        mean = x.view(N, C, H * W).sum(2).sum(0) / n                       # (C,)
        xc = x - mean.view(1, C, 1, 1)                                     # (N, C, H, W)
        flat = xc.view(N, C, H * W)
        var = torch.linalg.vecdot(flat, flat).sum(0) / n                   # (C,)
        invstd = torch.rsqrt(var + eps)
        y = torch.addcmul(bias.view(1, C, 1, 1), xc, (weight * invstd).view(1, C, 1, 1))
        ctx.save_for_backward(xc, invstd, weight)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, g, _mean, _var):
        xc, invstd, weight = ctx.saved_tensors
        N, C, H, W = xc.shape
        n = N * H * W
        g = g.contiguous()
        dbias = g.view(N, C, H * W).sum(2).sum(0)                          # sum of g
        dweight = torch.linalg.vecdot(g.view(N, C, H * W), xc.view(N, C, H * W)).sum(0) * invstd
        # dx = w * invstd * (g - dbias / n - xhat * dweight / n), xhat = xc * invstd
        a = weight * invstd
        b = -a * invstd * dweight / n
        c = -a * dbias / n
        dx = torch.addcmul(c.view(1, C, 1, 1), xc, b.view(1, C, 1, 1)).addcmul_(g, a.view(1, C, 1, 1))
        return dx, dweight, dbias, None


class FrameBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose CPU training pass computes the statistics with float sums and its
    own backward: PyTorch's CPU batch-norm kernels take 1.2-1.5x as long on these few-channel
    maps (3-9 % of a training step). Running statistics are updated as nn.BatchNorm2d does
    (unbiased variance, momentum); evaluation, and anything but float32 CPU training with affine
    parameters, is the parent's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.track_running_stats and self.affine and x.device.type == "cpu"
                and x.dtype == torch.float32 and x.dim() == 4):
            return super().forward(x)
        n = x.numel() // x.shape[1]
        if n < 2:
            return super().forward(x)                  # the parent's error for a single value
        y, mean, var = _BatchNormTraining.apply(x.contiguous(), self.weight, self.bias, self.eps)
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
        rows = x.reshape(N, C, H // 2, 2, W).sum(3)                          # (N, C, H/2, W)
        return rows.reshape(N, C, H // 2, W // 2, 2).sum(4).mul_(0.25)       # (N, C, H/2, W/2)


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
        elif hasattr(module, "bptt_by_hand"):                # blocks.ConvLSTM
            module.bptt_by_hand = False
    return model
