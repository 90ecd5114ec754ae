"""RealSmileNet and its variants: shapes, parameter count, padding invariance, TSA, gradients."""
import itertools

import pytest
import torch

from rsnet.model import VARIANTS, build_model, count_parameters
from rsnet.model.blocks import TemporalSmileAttention, frame_differences


def clips(batch, T, c, r, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, T, c, r, r, generator=g)


@pytest.mark.parametrize("variant,resolution,channels",
                         list(itertools.product(VARIANTS, (48, 64, 96, 112), (1, 3))))
def test_shapes_every_variant_resolution_and_channels(variant, resolution, channels):
    model = build_model(variant, in_channels=channels, resolution=resolution).eval()
    lengths = torch.tensor([4, 1, 3])
    with torch.no_grad():
        logits = model.logits(clips(3, 4, channels, resolution), lengths)
        probs = model(clips(3, 4, channels, resolution), lengths)
    assert logits.shape == (3, 2 if variant == "softmax" else 1)
    assert probs.shape == (3,)
    assert ((probs >= 0) & (probs <= 1)).all()


def test_full_model_has_the_authors_5273_parameters():
    assert count_parameters(build_model("full", in_channels=3, resolution=48)) == 5273


def test_head_input_follows_resolution():
    for r, side in ((48, 5), (64, 7), (96, 11), (112, 13)):
        assert build_model("full", resolution=r).head.fc.in_features == 10 * side * side


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_score_does_not_depend_on_padding_or_batch(variant):
    torch.manual_seed(0)
    model = build_model(variant).eval()
    # give BN non-trivial running stats so eval differs from identity
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    alone = clips(1, 5, 3, 48, seed=1)
    others = clips(3, 9, 3, 48, seed=2)
    batch = others.clone()
    batch[1, :5] = alone[0]
    batch[1, 5:] = 7.0  # garbage in the padding must not matter
    with torch.no_grad():
        p_alone = model(alone, torch.tensor([5]))
        p_batch = model(batch, torch.tensor([9, 5, 8]))
    torch.testing.assert_close(p_batch[1], p_alone[0], rtol=1e-5, atol=1e-6)


def test_batchnorm_sees_only_real_frames_in_training():
    torch.manual_seed(0)
    model = build_model("full").train()
    short = clips(2, 3, 3, 48, seed=3)
    padded = torch.cat([short, torch.full((2, 6, 3, 48, 48), 100.0)], dim=1)
    lengths = torch.tensor([3, 3])
    bn = model.encoder[0]
    model(short, lengths)
    mean_short = bn.running_mean.clone()
    bn.reset_running_stats()
    model(padded, lengths)
    torch.testing.assert_close(bn.running_mean, mean_short)


def test_tsa_first_frame_has_zero_difference_and_identity_init():
    x = clips(2, 4, 3, 8, seed=4)
    d = frame_differences(x)
    assert torch.equal(d[:, 0], torch.zeros_like(d[:, 0]))
    torch.testing.assert_close(d[:, 2], x[:, 2] - x[:, 1])
    tsa = TemporalSmileAttention(3)
    flat, dflat = x.flatten(0, 1), d.flatten(0, 1)
    # identity C at init: x' = (x_t - x_{t-1}) * x_t + x_t; first frame unchanged
    torch.testing.assert_close(tsa(flat, dflat), dflat * flat + flat)
    torch.testing.assert_close(tsa(x[:, 0], d[:, 0]), x[:, 0])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradients_reach_every_parameter(variant):
    torch.manual_seed(0)
    model = build_model(variant).train()
    # dropout could silence a unit by chance; gradient flow is about the wiring
    for m in model.modules():
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
            m.p = 0.0
    # the NonLocal W-BN starts at zero (identity block), which blocks theta/phi/g at step 0
    for m in model.modules():
        if m.__class__.__name__ == "NonLocal2d":
            torch.nn.init.constant_(m.W[1].weight, 0.5)
    logits = model.logits(clips(3, 5, 3, 48), torch.tensor([5, 2, 4]))
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_forget_bias_option():
    m = build_model("full", forget_bias=1.0)
    b = m.temporal.cell.conv.bias
    assert torch.equal(b[8:16], torch.ones(8))
    assert not torch.equal(build_model("full").temporal.cell.conv.bias[8:16], torch.ones(8))


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid: full, no_tsa"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="multiple of 8"):
        build_model("full", resolution=50)
    with pytest.raises(ValueError, match="in_channels"):
        build_model("full", in_channels=2)


def test_channels_last_frame_convolutions_match_plain_ones():
    """FrameConv2d runs channels-last on CPU for speed; outputs, gradients and the state_dict
    are those of the plain nn.Conv2d with the same weights."""
    from torch import nn

    from rsnet.model.blocks import FrameConv2d

    torch.manual_seed(0)
    fast = build_model("full")
    plain = build_model("full")
    plain.load_state_dict(fast.state_dict())
    convs = [m for m in plain.modules() if isinstance(m, FrameConv2d)]
    assert len(convs) == 3                                  # TSA and the FPN's two convolutions
    for m in convs:
        m.__class__ = nn.Conv2d
    assert list(fast.state_dict()) == list(plain.state_dict())
    x = torch.rand(3, 7, 3, 48, 48)
    lengths = torch.tensor([7, 5, 2])
    outs = []
    for model in (fast, plain):                             # training mode: the same dropout masks
        torch.manual_seed(1)
        outs.append(model.logits(x, lengths))
        outs[-1].sum().backward()
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    for (name, a), b in zip(fast.named_parameters(), plain.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-4, rtol=1e-3), name
