"""Comparing a float32 code path with a float64 reference, on any x86-64 CPU.

Two float32 computations of the same thing differ by rounding that depends on the kernels a
CPU picks (AVX-512 or AVX2, oneDNN's blocking), so no float32 result is compared with another:
each is compared with the same computation in float64, at a tolerance about ten times the
float32 error measured on both kinds of kernel (`ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2` and the default; `make test` runs these tests under both).

Errors are max-norm errors relative to a scale: a tensor's own largest reference value, or,
for a quantity whose true value is 0 (the bias of a conv that feeds a BatchNorm), the scale of
what cancels in it: the largest per-channel L1 norm of the gradient reaching that layer's
output. Relative tolerance on a true 0 would compare rounding noise with rounding noise."""

from __future__ import annotations

import torch

# float32 against float64, worst over 6 seeds x 3 steps on AVX-512 and AVX2 kernels, x ~10:
OUTPUT_TOL = 5e-5  # logits and probabilities, relative to their largest value (measured 3.6e-6)
GRAD_TOL = 5e-3  # a parameter's gradient, relative to its largest value (measured 5.0e-4)
ZERO_GRAD_TOL = 2e-5  # a true-0 gradient, relative to what cancels in it (measured 2.2e-6)
BUFFER_TOL = 1e-4  # BatchNorm running statistics, relative to their largest value (measured 1.2e-5)


def error(got: torch.Tensor, ref: torch.Tensor, scale: float | None = None) -> float:
    """max |got - ref| / scale, in float64; scale defaults to max |ref|."""
    ref = ref.detach().double()
    scale = ref.abs().max().item() if scale is None else scale
    return (got.detach().double() - ref).abs().max().item() / max(scale, 1e-300)


def assert_near(got: torch.Tensor, ref: torch.Tensor, tol: float, what: str = "", scale: float | None = None):
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    e = error(got, ref, scale)
    assert e <= tol, f"{what}: error {e:.2e} > {tol:.0e} (relative to {'max |ref|' if scale is None else scale})"


class GradientScales:
    """Records, for every conv and batch-norm layer of a (reference) model, the largest
    per-channel L1 norm of the gradient reaching its output in the last backward pass."""

    def __init__(self, model: torch.nn.Module):
        self.l1: dict[str, float] = {}
        for name, m in model.named_modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d)):
                m.register_forward_hook(self._hook(name))

    def _hook(self, name):
        def record(g):
            self.l1[name] = g.abs().sum((0, 2, 3)).max().item()

        def on_forward(module, inputs, out):
            if out.requires_grad:
                out.register_hook(record)

        return on_forward

    def of(self, parameter_name: str) -> float:
        return self.l1[parameter_name.rsplit(".", 1)[0]]


def assert_gradients_near(model: torch.nn.Module, ref: torch.nn.Module, scales: GradientScales, what: str = ""):
    """Every parameter's gradient of `model` against the float64 `ref`'s: relative to its own
    scale, or, where the reference gradient is 0 up to float64 rounding, to the gradient
    reaching the layer (`scales`, recorded on `ref`)."""
    grads = dict(ref.named_parameters())
    largest = max(p.grad.abs().max().item() for p in grads.values())
    for name, p in model.named_parameters():
        r = grads[name].grad
        if r.abs().max().item() <= 1e-9 * largest:  # a true 0
            assert_near(p.grad, r, ZERO_GRAD_TOL, f"{what} {name} (true 0)", scale=scales.of(name))
        else:
            assert_near(p.grad, r, GRAD_TOL, f"{what} {name}")
