"""Eq. 3 weightings against hand-computed values."""

import math

import pytest
import torch

from rsnet.loss import class_weights, smile_loss

pytestmark = pytest.mark.numerics
LABELS = torch.tensor([1, 0, 0, 0])  # 1 spontaneous, 3 posed


def test_weights_per_mode():
    torch.testing.assert_close(class_weights(LABELS, "balanced"), torch.tensor([4 / 6, 4 / 2]))
    torch.testing.assert_close(class_weights(LABELS, "paper_literal"), torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(class_weights(LABELS, "none"), torch.tensor([1.0, 1.0]))


@pytest.mark.parametrize(
    "mode,w_posed,w_spont", [("balanced", 4 / 6, 2.0), ("paper_literal", 0.75, 0.25), ("none", 1, 1)]
)
def test_sigmoid_loss_by_hand(mode, w_posed, w_spont):
    p = [0.8, 0.3, 0.6, 0.1]
    logits = torch.logit(torch.tensor(p)).unsqueeze(1)
    expected = -(w_spont * math.log(0.8) + w_posed * (math.log(0.7) + math.log(0.4) + math.log(0.9))) / 4
    got = smile_loss(logits, LABELS, class_weights(LABELS, mode))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_softmax_loss_by_hand():
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0], [1.0, 3.0]])
    w = class_weights(LABELS, "balanced")
    lse = [math.log(math.exp(a) + math.exp(b)) for a, b in logits.tolist()]
    expected = (2.0 * (lse[0] - 1.0) + (4 / 6) * ((lse[1] - 2.0) + (lse[2] - 0.0) + (lse[3] - 1.0))) / 4
    assert smile_loss(logits, LABELS, w).item() == pytest.approx(expected, rel=1e-5)


def test_bad_weighting_and_single_class():
    with pytest.raises(ValueError, match="valid: balanced, paper_literal, none"):
        class_weights(LABELS, "focal")
    with pytest.raises(ValueError, match="both classes"):
        class_weights(torch.zeros(4), "balanced")


def test_l2_penalty_covers_every_parameter_tensor():
    """The authors' regulariser: the L2 norm (not squared) of every parameter tensor, biases and
    BatchNorm scales included, summed; checked in float64 against the tensors written out."""
    from rsnet.engine import l2_norm_penalty
    from rsnet.model import build_model

    model = build_model("full", 3, 48).double()
    by_hand = sum(math.sqrt(sum(float(v) ** 2 for v in p.detach().flatten().tolist())) for p in model.parameters())
    names = [n for n, _ in model.named_parameters()]
    assert any(n.endswith("bias") for n in names) and len(names) > sum(n.endswith("weight") for n in names)
    assert l2_norm_penalty(model).item() == pytest.approx(by_hand, rel=1e-12)
