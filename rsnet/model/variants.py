"""One builder per model variant: the full RealSmileNet and the ablations of Table 3, plus
the authors' extra variants.  Each changes exactly one component of `full`:

    full           TSA -> FPN -> ConvLSTM(6 -> 8) -> classification block (sigmoid)
    no_tsa         frames go straight to the FPN (Table 3 "No TSA")
    mini_resnet    FPN replaced by a mini ResNet, 16/32/64 channels (Table 3)
    mini_densenet  FPN replaced by a mini DenseNet, growth 2, blocks 6/12/24/16 (Table 3)
    softmax        two outputs with softmax + cross-entropy (Table 3 "Softmax")
    mini_alexnet   FPN replaced by a mini AlexNet (authors' code)
    lstm, gru      ConvLSTM replaced by an LSTM/GRU over flattened FPN features (authors' code)

The wider encoders use the authors' ConvLSTM(64 -> 64) and their wider classification block.
(The authors' code also drops the TSA for those encoders and for lstm/gru; here each variant
keeps every component it does not replace, so an ablation isolates one change.)
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from . import plugins
from .blocks import (
    ClassificationBlock,
    ConvLSTM,
    FacePatternNet,
    LinearHead,
    RecurrentOverFlatFeatures,
    TemporalSmileAttention,
    WideClassificationBlock,
)
from .encoders import MiniAlexNet, MiniDenseNet, MiniResNet
from .network import SmileNet

RESOLUTIONS_NOTE = "resolution must be a multiple of 8 and at least 24 (48, 64, 96, 112 in Fig. 6)"


def _fpn_convlstm(in_channels: int, resolution: int, forget_bias, n_out: int, tsa: bool, fpn_dropout) -> SmileNet:
    size = FacePatternNet.out_size(resolution)
    return SmileNet(
        encoder=FacePatternNet(in_channels, fpn_dropout),
        temporal=ConvLSTM(FacePatternNet.out_channels, 8, forget_bias),
        head=ClassificationBlock(8, size, n_out),
        tsa=TemporalSmileAttention(in_channels) if tsa else None,
    )


def build_full(in_channels=3, resolution=48, forget_bias=None, fpn_dropout=0.0) -> SmileNet:
    return _fpn_convlstm(in_channels, resolution, forget_bias, n_out=1, tsa=True, fpn_dropout=fpn_dropout)


def build_no_tsa(in_channels=3, resolution=48, forget_bias=None, fpn_dropout=0.0) -> SmileNet:
    return _fpn_convlstm(in_channels, resolution, forget_bias, n_out=1, tsa=False, fpn_dropout=fpn_dropout)


def build_softmax(in_channels=3, resolution=48, forget_bias=None, fpn_dropout=0.0) -> SmileNet:
    return _fpn_convlstm(in_channels, resolution, forget_bias, n_out=2, tsa=True, fpn_dropout=fpn_dropout)


def _wide_encoder(encoder: nn.Module, in_channels: int, forget_bias) -> SmileNet:
    return SmileNet(
        encoder=encoder,
        temporal=ConvLSTM(encoder.out_channels, 64, forget_bias),
        head=WideClassificationBlock(64),
        tsa=TemporalSmileAttention(in_channels),
    )


def build_mini_resnet(in_channels=3, resolution=48, forget_bias=None, fpn_dropout=0.0) -> SmileNet:
    return _wide_encoder(MiniResNet(in_channels), in_channels, forget_bias)


def build_mini_densenet(in_channels=3, resolution=48, forget_bias=None, fpn_dropout=0.0) -> SmileNet:
    return _wide_encoder(MiniDenseNet(in_channels), in_channels, forget_bias)


def build_mini_alexnet(in_channels=3, resolution=48, forget_bias=None, fpn_dropout=0.0) -> SmileNet:
    return _wide_encoder(MiniAlexNet(in_channels), in_channels, forget_bias)


def _flat_recurrent(rnn_cls, in_channels: int, resolution: int, fpn_dropout) -> SmileNet:
    size = FacePatternNet.out_size(resolution)
    return SmileNet(
        encoder=FacePatternNet(in_channels, fpn_dropout),
        temporal=RecurrentOverFlatFeatures(rnn_cls, FacePatternNet.out_channels * size * size, 256),
        head=LinearHead(256),
        tsa=TemporalSmileAttention(in_channels),
    )


def build_lstm(in_channels=3, resolution=48, forget_bias=None, fpn_dropout=0.0) -> SmileNet:
    return _flat_recurrent(nn.LSTM, in_channels, resolution, fpn_dropout)


def build_gru(in_channels=3, resolution=48, forget_bias=None, fpn_dropout=0.0) -> SmileNet:
    return _flat_recurrent(nn.GRU, in_channels, resolution, fpn_dropout)


VARIANTS: dict[str, Callable[..., SmileNet]] = {
    "full": build_full,
    "no_tsa": build_no_tsa,
    "mini_resnet": build_mini_resnet,
    "mini_densenet": build_mini_densenet,
    "softmax": build_softmax,
    "mini_alexnet": build_mini_alexnet,
    "lstm": build_lstm,
    "gru": build_gru,
}


VALID_NOTE = f"{', '.join(VARIANTS)}, 'package.module:builder', or a name registered in {plugins.GROUP}"


def build_model(
    variant: str = "full",
    in_channels: int = 3,
    resolution: int = 48,
    forget_bias: float | None = None,
    fpn_dropout: float = 0.0,
    options: dict | None = None,
) -> SmileNet:
    """Build a model variant by name.

    variant: one of VARIANTS, 'package.module:builder' or a name registered in the entry-point
    group rsnet.variants (`plugins`); in_channels: 1 (gray) or 3 (colour); resolution: face crop side
    (48 default, 64/96/112 for Fig. 6); forget_bias: initial ConvLSTM forget-gate bias (None
    keeps PyTorch's default initialisation, as the authors'); fpn_dropout: the FPN's per-frame
    Dropout2d (0 the paper's text, 0.2 the authors' model; variants without an FPN ignore it);
    options: a researcher's builder's keyword options. See `SmileNet` for the forward contract.
    """
    if variant not in VARIANTS and not plugins.is_plugin(variant):
        raise plugins.VariantError(f"unknown variant {variant!r}; valid: {VALID_NOTE}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    if resolution % 8 or resolution < 24:
        raise ValueError(f"{RESOLUTIONS_NOTE}; got {resolution}")
    if not 0.0 <= fpn_dropout < 1.0:
        raise ValueError(f"fpn_dropout must be in [0, 1), got {fpn_dropout}")
    if variant not in VARIANTS:  # a researcher's (plugins.py): the options above are rsnet's own
        return plugins.build(variant, in_channels, resolution, **(options or {}))
    if options:
        raise ValueError(f"options {options} are for a researcher's builder; {variant!r} takes none")
    return VARIANTS[variant](
        in_channels=in_channels, resolution=resolution, forget_bias=forget_bias, fpn_dropout=fpn_dropout
    )
