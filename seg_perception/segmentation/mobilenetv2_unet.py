"""A U-Net decoder on a MobileNetV2 encoder whose weights can come from a pretrained network.

Why: every model trained only on the synthetic cell learnt its appearance from our renderer, and
on real bins it calls dark walls and red floors items. Features learnt from millions of real
photographs (ImageNet, then Pascal VOC) carry over to real cameras far better than any
randomisation of ours can; the encoder here has the exact layer layout of the TF-Hub DeepLabV3
MobileNetV2 (depth multiplier 0.5), so its weights can be copied in
(:mod:`.pretrained_import`). The batch norms of that network are folded into its convolutions,
so the encoder convolutions carry biases and no BatchNorm (fine-tuning keeps the folded
statistics); the decoder is the project's own and has BatchNorm. Strides replace DeepLab's
dilations (output stride 32, as MobileNetV2 was trained on ImageNet): cheaper, and the
U-Net skips bring the detail back.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from seg_perception.segmentation.unet import conv_bn_relu

#: (expansion, output channels, repeats, first stride) of MobileNetV2 at depth multiplier 0.5,
#: as in the TF-Hub DeepLabV3 MobileNetV2 0.5 (after its 3->16 stem and 16->8 first block)
MOBILENETV2_05_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (6, 12, 2, 2),
    (6, 16, 3, 2),
    (6, 32, 4, 2),
    (6, 48, 3, 1),
    (6, 80, 3, 2),
    (6, 160, 1, 1),
)
STEM_CHANNELS = 16
FIRST_BLOCK_CHANNELS = 8
#: stage index after which a skip feature is taken (strides 4, 8, 16, 32); stride 2 is the first
#: block's output
_SKIP_AFTER_STAGE = (0, 1, 3, 5)


class MobileNetV2UNetConfigError(ValueError):
    """Raised when the network is asked for with invalid hyper-parameters."""


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection.

    The convolutions have biases (the pretrained batch norms are folded into them).
    """

    def __init__(self, in_ch: int, out_ch: int, *, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(in_ch, hidden, 1), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden),
                   nn.ReLU6(inplace=True), nn.Conv2d(hidden, out_ch, 1)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 (depth multiplier 0.5) returning the features at strides 2, 4, 8, 16, 32."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, STEM_CHANNELS, 3, stride=2, padding=1),
                                  nn.ReLU6(inplace=True))
        self.first = InvertedResidual(STEM_CHANNELS, FIRST_BLOCK_CHANNELS, stride=1, expansion=1)
        stages = []
        in_ch = FIRST_BLOCK_CHANNELS
        for expansion, out_ch, repeats, stride in MOBILENETV2_05_STAGES:
            blocks = []
            for i in range(repeats):
                blocks.append(InvertedResidual(in_ch, out_ch, stride=stride if i == 0 else 1,
                                               expansion=expansion))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.channels: tuple[int, ...] = (FIRST_BLOCK_CHANNELS,) + tuple(
            MOBILENETV2_05_STAGES[i][1] for i in _SKIP_AFTER_STAGE)

    def ordered_convolutions(self) -> list[nn.Conv2d]:
        """Return the convolutions in the TF graph's order (stem, first block, each block)."""
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = self.first(self.stem(x))
        features = [y]
        for i, stage in enumerate(self.stages):
            y = stage(y)
            if i in _SKIP_AFTER_STAGE:
                features.append(y)
        return features


class _Up(nn.Module):
    """Upsample the deeper features and fuse them with the skip by one 3x3 convolution."""

    def __init__(self, deep_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.fuse = conv_bn_relu(deep_ch + skip_ch, out_ch)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        deep = F.interpolate(deep, size=skip.shape[-2:], mode='bilinear', align_corners=False)
        return self.fuse(torch.cat([deep, skip], dim=1))


class MobileNetV2UNet(nn.Module):
    """forward(x) returns {'out': logits (N, C, H, W) at the input size}.

    decoder_widths: output channels of the decoder at strides 16, 8, 4 and 2. The deepest
    features also get a global-context channel block (image pooling, as in DeepLab's ASPP), so
    that "tote wall" versus "item" can depend on the whole view.
    """

    def __init__(self, *, num_classes: int, decoder_widths: Sequence[int] = (96, 64, 48, 32),
                 context_channels: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        if num_classes < 1:
            raise MobileNetV2UNetConfigError(f'num_classes must be >= 1, got {num_classes}')
        widths = [int(w) for w in decoder_widths]
        if len(widths) != 4 or not all(4 <= w <= 1024 for w in widths):
            raise MobileNetV2UNetConfigError(
                f'decoder_widths must be 4 ints in 4..1024, got {list(decoder_widths)!r}')
        if not 4 <= context_channels <= 1024:
            raise MobileNetV2UNetConfigError(
                f'context_channels must be in 4..1024, got {context_channels}')
        self.encoder = MobileNetV2Encoder(in_channels)
        ch = self.encoder.channels  # strides 2, 4, 8, 16, 32
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                     nn.Conv2d(ch[4], context_channels, 1), nn.ReLU(inplace=True))
        self.deep = conv_bn_relu(ch[4] + context_channels, widths[0], kernel=1)
        deep_widths = [widths[0]] + widths[:-1]
        self.up = nn.ModuleList(_Up(deep_widths[i], ch[3 - i], widths[i]) for i in range(4))
        self.head = nn.Conv2d(widths[-1], num_classes, 1)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.encoder(x)
        deepest = features[-1]
        context = self.context(deepest).expand(-1, -1, *deepest.shape[-2:])
        y = self.deep(torch.cat([deepest, context], dim=1))
        for up, skip in zip(self.up, reversed(features[:-1])):
            y = up(y, skip)
        logits = F.interpolate(self.head(y), size=size, mode='bilinear', align_corners=False)
        return {'out': logits}
