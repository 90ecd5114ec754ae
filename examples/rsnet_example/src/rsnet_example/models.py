"""A model without temporal order: each frame through a small CNN, the features averaged over
the video's real frames, one linear layer. Shuffling a video's frames cannot change its score,
so against RealSmileNet it asks how much of the result needs the smile's dynamics."""

from __future__ import annotations

import torch
from torch import nn


class MeanOfFrames(nn.Module):
    def __init__(self, in_channels: int, width: int = 16):
        super().__init__()
        self.frame = nn.Sequential(  # (N, C, H, W) -> (N, width)
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(width, 1)

    def logits(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T = frames.shape[:2]  # frames: (B, T, C, H, W), right-padded
        lengths = lengths.to(frames.device)
        real = torch.arange(T, device=frames.device)[None, :] < lengths[:, None]  # (B, T)
        feats = self.frame(frames[real])  # (N, width): the real frames only
        video = torch.repeat_interleave(torch.arange(B, device=frames.device), lengths)  # (N,)
        mean = feats.new_zeros(B, feats.shape[1]).index_add_(0, video, feats) / lengths[:, None]  # (B, width)
        return self.head(mean)  # (B, 1)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(frames, lengths))[:, 0]  # (B,) P(spontaneous)


def build_mean_frames(in_channels: int = 3, resolution: int = 48, width: int = 16) -> MeanOfFrames:
    """Per-frame CNN features averaged over the video's frames (a model without temporal order):
    two 3x3 convolutions of 16 channels, global average pooling, the mean over the real frames,
    one linear layer."""
    return MeanOfFrames(in_channels, width)


class MeanOverPadding(MeanOfFrames):
    """Averages over every frame, padding included: breaks the forward contract (rsnet's tests)."""

    def logits(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        feats = self.frame(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])  # (B, T, width)
        return self.head(feats.mean(1))  # (B, 1)


def build_broken_padding(in_channels: int = 3, resolution: int = 48) -> nn.Module:
    """For rsnet's tests: a model whose score depends on the padding."""
    return MeanOverPadding(in_channels)
