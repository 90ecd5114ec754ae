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


class MotionProfile(nn.Module):
    """Logistic regression on the face's motion energy over normalised time: a hand-crafted
    temporal cue in the spirit of Dibeklioglu et al. (ECCV 2012), who classify smiles from the
    speed of their onset and offset. No convolution: `bins` + 1 parameters."""

    def __init__(self, bins: int = 8):
        super().__init__()
        self.bins = bins
        self.head = nn.Linear(bins, 1)
        nn.init.zeros_(self.head.weight)  # an untrained model scores every video alike (its bias)

    def profile(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, bins): each video's squared mean absolute frame difference, resampled to `bins`
        points of its own duration and scaled to mean 0 (where in the smile the motion is)."""
        diff = (frames[:, 1:] - frames[:, :-1]).abs().mean((2, 3, 4))  # (B, T-1)
        out = frames.new_zeros(len(frames), self.bins)
        for b, n in enumerate(lengths.tolist()):
            if n < 2:  # one frame: no motion to place
                continue
            energy = diff[b, : n - 1] ** 2  # (n-1,): the real frames' differences only
            curve = nn.functional.interpolate(energy[None, None], self.bins, mode="linear", align_corners=True)[0, 0]
            out[b] = self.bins * curve / curve.sum().clamp_min(1e-12) - 1
        return out

    def logits(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.profile(frames, lengths.to(frames.device)))  # (B, 1)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(frames, lengths))[:, 0]  # (B,) P(spontaneous)


def build_motion_profile(in_channels: int = 3, resolution: int = 48, bins: int = 8) -> MotionProfile:
    """Logistic regression on where in the video the face moves: the squared mean absolute
    difference of consecutive frames, resampled to 8 points of the video's duration (a
    hand-crafted temporal cue after Dibeklioglu et al., ECCV 2012; 9 parameters)."""
    return MotionProfile(bins)
