"""RealSmileNet as a composition: [TSA] -> per-frame encoder -> temporal model -> head.

Forward contract (all variants):
    frames  (B, T, C, H, W) float, right-padded: video b's real frames are frames[b, :lengths[b]]
    lengths (B,) int64, 1 <= lengths[b] <= T
    returns (B,) P(spontaneous) in [0, 1]; `logits` returns (B, 1) or (B, 2) before the
    sigmoid/softmax (what the losses in `rsnet.loss` take).

Only real frames pass through the TSA and the encoder, so BatchNorm never sees padding in
training, and in eval mode a video's score is the same alone or inside a padded batch.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import TemporalSmileAttention, frame_differences, probability_of_spontaneous


def lengths_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on real frames."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


class SmileNet(nn.Module):
    def __init__(
        self, encoder: nn.Module, temporal: nn.Module, head: nn.Module, tsa: TemporalSmileAttention | None = None
    ):
        super().__init__()
        self.tsa = tsa
        self.encoder = encoder
        self.temporal = temporal
        self.head = head

    def encode_frames(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """TSA + encoder on the real frames only, scattered back: (B, T, C, H, W) -> (B, T, C', S, S)."""
        B, T = frames.shape[:2]
        lengths = lengths.to(frames.device)
        mask = lengths_mask(lengths, T)  # (B, T)
        x = frames[mask]  # (N, C, H, W), video after video
        if self.tsa is not None:
            x = self.tsa(x, frame_differences(x, lengths))  # (N, C, H, W)
        feats = self.encoder(x)  # (N, C', S, S)
        out = feats.new_zeros((B, T) + feats.shape[1:])  # (B, T, C', S, S)
        out[mask] = feats
        return out

    def hidden(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The temporal model's state after each video's last real frame: (B, C'', S, S) or (B, F)."""
        return self.temporal(self.encode_frames(frames, lengths), lengths)

    def embed(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The classification block's features before its last linear layer: (B, D)."""
        return self.head.embed(self.hidden(frames, lengths))

    def logits(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(frames, lengths))  # (B, 1) or (B, 2)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return probability_of_spontaneous(self.logits(frames, lengths))  # (B,)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
