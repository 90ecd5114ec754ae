"""Per-frame encoders that replace the FPN in Table 3's ablations and the authors' extras.

Each maps real frames (N, C, R, R) to features (N, out_channels, S, S) and states S for a
resolution R via `out_size`.  They follow the authors' code (after torchvision's ResNet, a
CIFAR DenseNet and AlexNet), shrunk to fit 48x48 faces.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv+BN, identity or 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class MiniResNet(nn.Module):
    """3 stages of 2 basic blocks with 16/32/64 channels (the authors' `resnet12`).
    (N, C, R, R) -> (N, 64, R/4, R/4)."""

    out_channels = 64

    def __init__(self, in_channels: int = 3, blocks_per_stage: int = 2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)
        )
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(blocks_per_stage):
                layers.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))

    @staticmethod
    def out_size(resolution: int) -> int:
        return resolution // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class DenseLayer(nn.Module):
    """Bottleneck dense layer: BN-ReLU-Conv1x1(4k) -> BN-ReLU-Conv3x3(k), output concatenated."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        return torch.cat([out, x], dim=1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1 halving the channels, then AvgPool 2 (stride 1 for the last one)."""

    def __init__(self, cin: int, cout: int, stride: int = 2):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2, self.stride)


class MiniDenseNet(nn.Module):
    """DenseNet with growth rate 2 and blocks 6/12/24/16 (the authors' `miniDensenet`).
    (N, C, R, R) -> (N, 64, R/4 - 1, R/4 - 1)."""

    def __init__(self, in_channels: int = 3, growth: int = 2, blocks=(6, 12, 24, 16)):
        super().__init__()
        planes = 2 * growth
        stages: list[nn.Module] = [nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                stages.append(DenseLayer(planes, growth))
                planes += growth
            if i < len(blocks) - 1:
                stages.append(Transition(planes, planes // 2, stride=1 if i == len(blocks) - 2 else 2))
                planes //= 2
        stages += [nn.BatchNorm2d(planes), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*stages)
        self.out_channels = planes

    @staticmethod
    def out_size(resolution: int) -> int:
        return resolution // 4 - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class MiniAlexNet(nn.Module):
    """Five conv layers 16/48/96/64/64 with three 3x3/2 max-pools (the authors' `miniAlexNet`).
    (N, C, R, R) -> (N, 64, R/8, R/8)."""

    out_channels = 64

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(16, 48, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(48, 96, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(96, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )

    @staticmethod
    def out_size(resolution: int) -> int:
        return resolution // 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
