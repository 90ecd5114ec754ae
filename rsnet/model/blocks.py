"""Building blocks of RealSmileNet (Yang et al., ACCV 2020, Sec. 3.2), in dependency order.

Shapes use B = videos, T = time steps, N = real (unpadded) frames of a batch, C/H/W as usual.
Every block here works on real frames only or takes per-video lengths, so a video's output
never depends on the padding or on the other videos of its batch (see `network.SmileNet`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def frame_differences(frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x_t - x_{t-1} for every real frame, and exactly zero at each video's first frame (it has
    no predecessor; the authors' left-padded code differenced it against padding).

    frames: (N, C, H, W), the real frames of a batch video after video, each in time order
    (`frames[mask]` of a right-padded batch); lengths (B,) sums to N. -> (N, C, H, W).
    """
    diff = torch.empty_like(frames)
    torch.sub(frames[1:], frames[:-1], out=diff[1:])  # (N - 1, C, H, W)
    diff[torch.cumsum(lengths, 0) - lengths] = 0  # each video's first frame
    return diff


class TemporalSmileAttention(nn.Module):
    """TSA, Eq. 2: x'_t = C(x_t - x_{t-1}) * x_t + x_t (Hadamard product, then addition).

    C is a 3x3 convolution channels -> channels, initialised to the identity (centre tap of
    each channel's own kernel 1, everything else and the bias 0), so at initialisation
    x'_t = (x_t - x_{t-1}) * x_t + x_t. (The authors' `weight.data.copy_(3x3)` broadcast the
    centre tap to every in/out channel pair, i.e. a channel sum; the paper's identity is used.)
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.zero_()
            for c in range(channels):
                self.conv.weight[c, c, 1, 1] = 1.0
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        # x, diff: (N, C, H, W) real frames and their temporal differences
        return torch.addcmul(x, self.conv(diff), x)  # C(diff) * x + x, one pass: (N, C, H, W)


class ConvBNReLU(nn.Sequential):
    """Conv2d -> BatchNorm2d -> ReLU (the authors' `Convbn`)."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int = 0):
        super().__init__(nn.Conv2d(cin, cout, kernel, padding=padding), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FacePatternNet(nn.Sequential):
    """FPN (Sec. 3.2): BN on the input; Conv3x3->4 +BN+ReLU, AvgPool 2; Conv3x3->6 +BN+ReLU,
    AvgPool 2; Dropout2d(dropout).  (N, C, R, R) -> (N, 6, R/4, R/4).

    The input BN is the authors' released model's (the paper's text does not name it). Their model
    also ends the FPN with Dropout2d(0.2), which the text does not have: dropout=0.2 adds it. It
    drops whole channels of each frame independently, so in training the ConvLSTM sees features
    vanish and return from one frame to the next."""

    out_channels = 6

    def __init__(self, in_channels: int = 3, dropout: float = 0.0):
        super().__init__(
            nn.BatchNorm2d(in_channels),
            ConvBNReLU(in_channels, 4, 3, padding=1),
            nn.AvgPool2d(2),
            ConvBNReLU(4, 6, 3, padding=1),
            nn.AvgPool2d(2),
            *([nn.Dropout2d(dropout)] if dropout else []),
        )

    @staticmethod
    def out_size(resolution: int) -> int:
        return resolution // 4


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell (Sec. 3.2, after Shi et al. 2015): one 3x3 convolution over
    concat(e_t, h_{t-1}) gives the input, forget, output and cell gates."""

    def __init__(self, in_channels: int, hidden: int, forget_bias: float | None = None):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(in_channels + hidden, 4 * hidden, 3, padding=1)
        if forget_bias is not None:  # 1.0 is the usual remedy for short LSTM memory
            with torch.no_grad():
                self.conv.bias[hidden : 2 * hidden].fill_(forget_bias)

    def forward(self, e: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state  # (B, hidden, H, W) each
        z = self.conv(torch.cat([e, h], dim=1))  # (B, 4 * hidden, H, W)
        # gates in the order i, f, o, g; one sigmoid for the three sigmoid gates
        i, f, o = torch.sigmoid(z[:, : 3 * self.hidden]).chunk(3, dim=1)
        g = torch.tanh(z[:, 3 * self.hidden :])
        c = torch.addcmul(f * c, i, g)  # f * c + i * g
        h = o * torch.tanh(c)
        return h, c


class ConvLSTM(nn.Module):
    """Runs a ConvLSTMCell over a right-padded sequence and returns, for every video, the
    hidden state after its own last real frame.  (B, T, C, H, W), (B,) -> (B, hidden, H, W)."""

    def __init__(self, in_channels: int, hidden: int, forget_bias: float | None = None):
        super().__init__()
        self.out_channels = hidden
        self.cell = ConvLSTMCell(in_channels, hidden, forget_bias)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, _, _, H, W = x.shape  # (B, T, C, H, W)
        h = x.new_zeros(B, self.out_channels, H, W)
        c = torch.zeros_like(h)
        states = []
        for x_t in x.unbind(1):  # unbind: one backward for all steps
            h, c = self.cell(x_t, (h, c))
            states.append(h)
        # video b's state after its own last real frame: frames after its end never reach it
        return torch.stack([states[t][b] for b, t in enumerate((lengths - 1).tolist())])


class RecurrentOverFlatFeatures(nn.Module):
    """The authors' extra `LSTM`/`GRU` variants: each frame's features flattened into an
    ordinary recurrent layer; the output at each video's last real frame.
    (B, T, C, H, W), (B,) -> (B, hidden)."""

    def __init__(self, rnn_cls: type[nn.RNNBase], in_features: int, hidden: int = 256):
        super().__init__()
        self.out_channels = hidden
        self.rnn = rnn_cls(in_features, hidden, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(x.flatten(2), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h_n = state[0] if isinstance(state, tuple) else state  # (1, B, hidden)
        return h_n[0]


class NonLocal2d(nn.Module):
    """Dot-product non-local block (Wang et al., CVPR 2018), as used in the classification
    block: inter channels C/2; g and phi sub-sampled by 2x2 max-pool; W followed by a BN whose
    weight and bias start at zero, so the block starts as the identity.  (B, C, H, W) -> same."""

    def __init__(self, channels: int):
        super().__init__()
        self.inter = max(channels // 2, 1)
        self.theta = nn.Conv2d(channels, self.inter, 1)
        self.phi = nn.Sequential(nn.Conv2d(channels, self.inter, 1), nn.MaxPool2d(2))
        self.g = nn.Sequential(nn.Conv2d(channels, self.inter, 1), nn.MaxPool2d(2))
        self.W = nn.Sequential(nn.Conv2d(self.inter, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, inter)
        phi = self.phi(x).flatten(2)  # (B, inter, HW/4)
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, HW/4, inter)
        f = theta @ phi / phi.shape[-1]  # (B, HW, HW/4), dot product / N
        y = (f @ g).transpose(1, 2).reshape(B, self.inter, H, W)
        return self.W(y) + x


class ClassificationBlock(nn.Module):
    """The paper's classification block on the last hidden state (Sec. 3.2): NonLocal, AvgPool 2,
    Conv2x2 -> 10 + BN + ReLU, Dropout(0.5), Linear -> n_out.  (B, C, S, S) -> (B, n_out).
    `embed` returns the flattened features after the ReLU (used for the t-SNE of Fig. 5)."""

    def __init__(self, channels: int, size: int, n_out: int = 1):
        super().__init__()
        self.nonlocal_block = NonLocal2d(channels)
        self.features = nn.Sequential(nn.AvgPool2d(2), ConvBNReLU(channels, 10, 2))
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(10 * (size // 2 - 1) ** 2, n_out)

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return self.features(self.nonlocal_block(h)).flatten(1)  # (B, 10 * (S/2 - 1)^2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.embed(h)))


class WideClassificationBlock(nn.Module):
    """The authors' block for the wider encoders (mini ResNet/DenseNet/AlexNet): NonLocal,
    Conv3x3 -> 80 + BN + ReLU, adaptive AvgPool to 2x2, Linear -> n_out.  (B, C, S, S) -> (B, n_out)."""

    def __init__(self, channels: int, n_out: int = 1):
        super().__init__()
        self.nonlocal_block = NonLocal2d(channels)
        self.features = nn.Sequential(ConvBNReLU(channels, 80, 3), nn.AdaptiveAvgPool2d(2))
        self.fc = nn.Linear(320, n_out)

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return self.features(self.nonlocal_block(h)).flatten(1)  # (B, 320)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(h))


class LinearHead(nn.Module):
    """Head of the `lstm`/`gru` variants: Linear(hidden -> n_out).  (B, hidden) -> (B, n_out)."""

    def __init__(self, features: int, n_out: int = 1):
        super().__init__()
        self.fc = nn.Linear(features, n_out)

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)


def probability_of_spontaneous(logits: torch.Tensor) -> torch.Tensor:
    """(B, 1) sigmoid logits or (B, 2) softmax logits -> (B,) P(spontaneous)."""
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits[:, 0])
    return F.softmax(logits, dim=-1)[:, 1]
