"""Weighted binary cross-entropy, Eq. 3 of the paper, with the class weighting as a setting.

    L = -1/B * sum_b [ w_spont * y_b * log p_b + w_posed * (1 - y_b) * log(1 - p_b) ]

with y = 1 for spontaneous, 0 for posed, and (w_posed, w_spont) from the training labels:

    balanced       w_c = N / (2 * N_c): each class weighted inversely to its share, so both
                   classes contribute equally. The default: this is what the paper's ablation
                   ("No Weighted Loss" loses accuracy on the imbalanced sets) motivates.
    paper_literal  w_spont = N_spont / N (alpha), w_posed = N_posed / N (beta): Eq. 3 as printed,
                   "alpha and beta are the ratios of spontaneous and posed smiles", which
                   weights the majority class up.
    none           w = 1 for both: Table 3's "No Weighted Loss".

For two-output (softmax) models the same weights multiply the cross-entropy terms.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

WEIGHTINGS = ("balanced", "paper_literal", "none")


def class_weights(labels, weighting: str = "balanced") -> torch.Tensor:
    """Training labels (0 posed, 1 spontaneous) -> tensor [w_posed, w_spont]."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown loss weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}")
    labels = torch.tensor(np.asarray(labels))
    n = labels.numel()
    n_spont = int((labels == 1).sum())
    counts = torch.tensor([n - n_spont, n_spont], dtype=torch.float64)
    if weighting == "none":
        return torch.ones(2)
    if (counts == 0).any():
        raise ValueError(
            f"loss weighting {weighting!r} needs both classes in the training set; "
            f"got {int(counts[0])} posed and {int(counts[1])} spontaneous"
        )
    if weighting == "balanced":
        return (n / (2 * counts)).float()
    return (counts / n).float()  # paper_literal


def smile_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy of (B, 1) sigmoid or (B, 2) softmax logits against (B,) labels."""
    labels = labels.long()
    w = weights.to(logits.device, logits.dtype)[labels]  # (B,)
    if logits.shape[-1] == 1:
        per_video = F.binary_cross_entropy_with_logits(logits[:, 0], labels.to(logits.dtype), reduction="none")
    else:
        per_video = F.cross_entropy(logits, labels, reduction="none")
    return (w * per_video).mean()
