"""RealSmileNet and its variants: shapes, parameter count, padding invariance, TSA, gradients."""

import copy
import itertools

import pytest
import torch
from numerics import BUFFER_TOL, OUTPUT_TOL, GradientScales, assert_gradients_near, assert_near

from rsnet.model import VARIANTS, build_model, count_parameters
from rsnet.model.blocks import TemporalSmileAttention, frame_differences

pytestmark = pytest.mark.numerics


def clips(batch, T, c, r, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, T, c, r, r, generator=g)


@pytest.mark.parametrize("variant,resolution,channels", list(itertools.product(VARIANTS, (48, 64, 96, 112), (1, 3))))
def test_shapes_every_variant_resolution_and_channels(variant, resolution, channels):
    model = build_model(variant, in_channels=channels, resolution=resolution).eval()
    lengths = torch.tensor([4, 1, 3])
    with torch.no_grad():
        logits = model.logits(clips(3, 4, channels, resolution), lengths)
        probs = model(clips(3, 4, channels, resolution), lengths)
    assert logits.shape == (3, 2 if variant == "softmax" else 1)
    z = logits.double()
    # P(spontaneous), written out: the sigmoid of the one logit, or the softmax's second class
    expected = 1 / (1 + torch.exp(-z[:, 0])) if z.shape[1] == 1 else z[:, 1].exp() / z.exp().sum(1)
    assert_near(probs, expected, OUTPUT_TOL, "P(spontaneous)")


def test_full_model_has_the_authors_5273_parameters():
    assert count_parameters(build_model("full", in_channels=3, resolution=48)) == 5273


def test_head_input_follows_resolution():
    for r, side in ((48, 5), (64, 7), (96, 11), (112, 13)):
        assert build_model("full", resolution=r).head.fc.in_features == 10 * side * side


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_score_does_not_depend_on_padding_or_batch(variant):
    """In float64 a video's score alone equals its score inside a padded batch with garbage in
    the padding (to float64 rounding); each float32 score is that score to float32 error."""
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
        model64 = copy.deepcopy(model).double()
        p64_alone = model64(alone.double(), torch.tensor([5]))
        p64_batch = model64(batch.double(), torch.tensor([9, 5, 8]))
    assert_near(p64_batch[1], p64_alone[0], 1e-12, "float64, in a batch vs alone")
    assert_near(p_alone[0], p64_alone[0], OUTPUT_TOL, "float32 alone")
    assert_near(p_batch[1], p64_alone[0], OUTPUT_TOL, "float32 in a padded batch")


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
    lengths = torch.tensor([4, 3])
    packed = torch.cat([x[0], x[1, :3]])  # the real frames, video after video
    d = frame_differences(packed, lengths)
    assert torch.equal(d[0], torch.zeros_like(d[0])) and torch.equal(d[4], torch.zeros_like(d[4]))
    torch.testing.assert_close(d[2], x[0, 2] - x[0, 1])
    torch.testing.assert_close(d[6], x[1, 2] - x[1, 1])
    d = frame_differences(x.flatten(0, 1), torch.tensor([4, 4])).view(x.shape)
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


def test_fpn_dropout_option_drops_channels_of_each_frame_or_nothing():
    x = torch.rand(6, 3, 48, 48)  # six frames
    torch.manual_seed(0)
    m = build_model("full", fpn_dropout=0.2).encoder.train()  # the authors': Dropout2d(0.2) per frame
    zeroed = (m(x).abs().sum((2, 3)) == 0).sum(1)  # (6,) channels dropped in each frame
    assert zeroed.sum() > 0 and len(set(zeroed.tolist())) > 1  # frames lose different channels
    m0 = build_model("full").encoder.train()  # the paper's text (the default): none
    m0.load_state_dict(m.state_dict())  # the same parameters (dropout has none)
    assert not any(isinstance(mod, torch.nn.Dropout2d) for mod in m0.modules())
    assert (m0(x).abs().sum((2, 3)) > 0).all()
    with pytest.raises(ValueError, match="fpn_dropout"):
        build_model("full", fpn_dropout=1.0)


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid: full, no_tsa"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="multiple of 8"):
        build_model("full", resolution=50)
    with pytest.raises(ValueError, match="in_channels"):
        build_model("full", in_channels=2)


def load_as_float32(model, ref):
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ref.state_dict().items()})


def test_float32_training_matches_float64():
    """The model in float32 against the same model in float64, over three steps from the same
    parameters: outputs, every gradient, running statistics, then eval."""
    torch.manual_seed(0)
    model = build_model("full")
    for m in model.modules():  # dropout is not what is compared here
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
            m.p = 0.0
    ref = copy.deepcopy(model).double()
    scales = GradientScales(ref)
    lengths = torch.tensor([7, 5, 2])
    weights = torch.tensor([[1.0], [-2.0], [0.5]])
    for step in range(3):
        x = torch.rand(3, 7, 3, 48, 48, generator=torch.Generator().manual_seed(step))
        load_as_float32(model, ref)  # each step starts from the reference's parameters
        outs = {}
        for name, m in (("float32", model), ("ref", ref)):
            m.zero_grad()
            outs[name] = m.logits(x.to(next(m.parameters()).dtype), lengths)
            (outs[name] * weights.to(outs[name].dtype)).sum().backward()
        assert_near(outs["float32"], outs["ref"], OUTPUT_TOL, f"logits, step {step}")
        assert_gradients_near(model, ref, scales, f"step {step}:")
        for (b, a), r in zip(model.named_buffers(), ref.buffers()):
            assert_near(a.double(), r, BUFFER_TOL, f"{b}, step {step}")
        with torch.no_grad():
            for p in ref.parameters():
                p -= 3e-2 * p.grad.clamp(-1, 1)
    load_as_float32(model, ref)
    model.eval()
    ref.eval()
    with torch.no_grad():
        assert_near(model(x, lengths), ref(x.double(), lengths), OUTPUT_TOL, "eval probabilities")


def test_convlstm_follows_the_equations_and_stops_at_each_length():
    """Shi et al.'s ConvLSTM written out gate by gate (i, f, o, g), run on each video alone for
    its own length, against the batched module on a right-padded batch: states and gradients."""
    from torch.nn.functional import conv2d

    from rsnet.model.blocks import ConvLSTM

    torch.manual_seed(0)
    lstm = ConvLSTM(6, 8, forget_bias=1.0).double()
    w, b = lstm.cell.conv.weight, lstm.cell.conv.bias
    x = torch.randn(3, 6, 6, 5, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])
    refs = []
    for v, n in enumerate(lengths.tolist()):
        h = c = torch.zeros(1, 8, 5, 5, dtype=torch.float64)
        for t in range(n):
            z = conv2d(torch.cat([x[v : v + 1, t], h], 1), w, b, padding=1)
            i, f, o, g = z[:, :8].sigmoid(), z[:, 8:16].sigmoid(), z[:, 16:24].sigmoid(), z[:, 24:].tanh()
            c = f * c + i * g
            h = o * c.tanh()
        refs.append(h[0])
    ref = torch.stack(refs)
    out = lstm(x, lengths)
    torch.testing.assert_close(out, ref)
    weights = torch.randn_like(ref)
    grads = torch.autograd.grad((out * weights).sum(), (x, w, b))
    grads_ref = torch.autograd.grad((ref * weights).sum(), (x, w, b))
    for a, r in zip(grads, grads_ref):
        torch.testing.assert_close(a, r)
    assert torch.count_nonzero(grads[0][1, 2:]) == 0  # padding after a video's end gets no gradient
