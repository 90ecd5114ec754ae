"""The ConvLSTM's training pass on CPU: the same recurrence as `blocks.ConvLSTM` (Sec. 3.2, after
Shi et al. 2015), with backpropagation through time written out by hand.

Autograd would record about 25 small operations per time step and compute each step's weight
gradient on its own. Here the forward keeps what the backward needs (each step's conv input
concat(e_t, h_{t-1}), the gates after their nonlinearities, c_{t-1} and tanh(c_t)); the backward
walks the steps in reverse computing only each step's input gradient (a forward convolution with
the kernel flipped), then the weight and bias gradients of all steps in one call over every
(step, video) pair. Videos are sorted by length so that the ones still running at step t are a
prefix of the batch: steps after a video's end are not computed at all (in a length-bucketed
batch they are few; the reference loop runs them and discards them). tests/test_model.py checks
outputs and gradients against the reference loop, against the equations written out per video,
and with gradcheck.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

_conv_backward = torch.ops.aten.convolution_backward


def _weight_and_bias_grads(dz, u, weight, padding):
    """Weight and bias gradients of conv2d(u, weight, bias, stride 1, padding) for output gradient dz."""
    _, dw, db = _conv_backward(
        dz, u, weight, [weight.shape[0]], [1, 1], list(padding), [1, 1], False, [0, 0], 1, [False, True, True]
    )
    return dw, db


class _ConvLSTMSequence(torch.autograd.Function):
    """(B, T, C, H, W) right-padded inputs, (B,) lengths -> (B, hidden, H, W): each video's hidden
    state after its own last real step."""

    @staticmethod
    def forward(ctx, x, lengths, weight, bias, padding):
        B, T, C, H, W = x.shape
        hid = weight.shape[0] // 4
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order].tolist()
        active = [sum(n > t for n in sorted_lengths) for t in range(T + 1)]  # videos running at step t
        xs = x[order]  # (B, T, C, H, W), longest first
        # what the backward needs, for the running videos (rows :active[t]) of each step t
        U = x.new_empty(T, B, C + hid, H, W)  # conv inputs concat(e_t, h_{t-1})
        G = x.new_empty(T, B, 4 * hid, H, W)  # gates i, f, o, g after activation
        Cs = x.new_empty(T + 1, B, hid, H, W)  # c_{t-1} at [t]
        TC = x.new_empty(T, B, hid, H, W)  # tanh(c_t)
        U[0, :, C:] = 0  # h_{-1} = 0
        Cs[0] = 0  # c_{-1} = 0
        last_h = x.new_zeros(B, hid, H, W)
        for t in range(T):
            k, k_next = active[t], active[t + 1]
            U[t, :k, :C] = xs[:k, t]
            if k < B:
                U[t, k:] = 0  # ended videos: zero (the weight gradient reads all rows)
            z = torch.conv2d(U[t, :k], weight, bias, 1, padding)  # (k, 4 * hid, H, W)
            g = G[t, :k]
            torch.sigmoid(z[:, : 3 * hid], out=g[:, : 3 * hid])
            torch.tanh(z[:, 3 * hid :], out=g[:, 3 * hid :])
            i, f, o, gg = g.split(hid, 1)
            torch.addcmul(f * Cs[t, :k], i, gg, out=Cs[t + 1, :k])  # c_t = f * c_{t-1} + i * g
            torch.tanh(Cs[t + 1, :k], out=TC[t, :k])
            h = o * TC[t, :k]  # h_t = o * tanh(c_t)
            if t + 1 < T:
                U[t + 1, :k_next, C:] = h[:k_next]
            if k_next < k:
                last_h[k_next:k] = h[k_next:]  # videos whose last step is t
        out = torch.empty_like(last_h)
        out[order] = last_h
        ctx.save_for_backward(U, G, Cs, TC, order, weight)
        ctx.active, ctx.padding, ctx.x_channels = active, padding, C
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        U, G, Cs, TC, order, weight = ctx.saved_tensors
        active, padding, C = ctx.active, ctx.padding, ctx.x_channels
        T, B, _, H, W = U.shape
        hid = weight.shape[0] // 4
        grad_last = grad_out[order]
        dh = grad_out.new_zeros(B, hid, H, W)  # dL/dh_t of the running videos
        dc = torch.zeros_like(dh)  # dL/dc_t
        DZ = grad_out.new_empty(T, B, 4 * hid, H, W)  # dL/d(gate pre-activations), 0 once ended
        dxs = grad_out.new_zeros(B, T, C, H, W)  # padding gets exactly zero
        # a stride-1 convolution's input gradient is the convolution of the output gradient with the
        # kernel flipped and its in/out channels swapped (as a forward conv it runs faster here)
        weight_t = weight.flip(2, 3).transpose(0, 1).contiguous()  # (C + hid, 4 * hid, kh, kw)
        padding_t = [weight.shape[2] - 1 - padding[0], weight.shape[3] - 1 - padding[1]]
        for t in range(T - 1, -1, -1):
            k, k_next = active[t], active[t + 1]
            if k_next < k:
                dh[k_next:k] = grad_last[k_next:k]  # videos whose last step is t
            if k < B:
                DZ[t, k:] = 0
            dh_t, dc_t = dh[:k], dc[:k]
            g = G[t, :k]
            i, f, o, gg = g.split(hid, 1)
            tc = TC[t, :k]
            dz = DZ[t, :k]
            dzi, dzf, dzo, dzg = dz.split(hid, 1)
            torch.mul(dh_t, tc, out=dzo)  # dL/do
            dc_t = torch.addcmul(dc_t, dh_t * o, 1 - tc * tc)  # + dL/dh * o * tanh'(c_t)
            torch.mul(dc_t, Cs[t, :k], out=dzf)  # dL/df = dL/dc * c_{t-1}
            torch.mul(dc_t, gg, out=dzi)  # dL/di = dL/dc * g
            torch.mul(dc_t, i, out=dzg)  # dL/dg = dL/dc * i
            dc[:k] = dc_t * f  # dL/dc_{t-1}
            s = g[:, : 3 * hid]
            dz[:, : 3 * hid].mul_(s * (1 - s))  # sigmoid'
            dzg.mul_(1 - gg * gg)  # tanh'
            if t == 0 and not ctx.needs_input_grad[0]:
                break
            du = torch.conv2d(dz, weight_t, None, 1, padding_t)  # dL/du_t, (k, C + hid, H, W)
            dxs[:k, t] = du[:, :C]
            dh[:k] = du[:, C:]  # dL/dh_{t-1}
        dw, db = _weight_and_bias_grads(DZ.flatten(0, 1), U.flatten(0, 1), weight, padding)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.empty_like(dxs)
            dx[order] = dxs
        return dx, None, dw, db, None


def convlstm_sequence(x: torch.Tensor, lengths: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """The ConvLSTM over right-padded x (B, T, C, H, W) with the cell's conv (3x3 -> gates i, f,
    o, g): (B, hidden, H, W), each video's hidden state after its own last real frame."""
    return _ConvLSTMSequence.apply(x, lengths.to(torch.int64).cpu(), conv.weight, conv.bias, conv.padding)
