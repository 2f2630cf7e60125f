"""DeepLabV3+ on torchvision's MobileNetV3-Large: ASPP on deep features + a low-level skip.

Why: torchvision ships DeepLabV3 (no decoder) for MobileNetV3; the V3+ decoder recovers item
outlines from the stride-4 features at little cost, which matters for thin envelopes and for
the boundaries the grasp planner cuts regions along.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F
from torchvision.models import mobilenet_v3_large, MobileNet_V3_Large_Weights
from torchvision.models.segmentation.deeplabv3 import ASPP

#: index into mobilenet_v3_large().features after which the stride-4 (24-channel) features appear
_LOW_LEVEL_END = 4


class DeepLabV3PlusConfigError(ValueError):
    """Raised when DeepLabV3+ is asked for with invalid hyper-parameters."""


class DeepLabV3PlusMobileNet(nn.Module):
    """DeepLabV3+ with a MobileNetV3-Large backbone (output stride 16, dilated last stage)."""

    def __init__(self, *, num_classes: int, aspp_channels: int = 128,
                 atrous_rates: Sequence[int] = (6, 12, 18), low_level_channels: int = 48,
                 decoder_channels: int = 128, pretrained_backbone: bool = False) -> None:
        super().__init__()
        if num_classes < 1:
            raise DeepLabV3PlusConfigError(f'num_classes must be >= 1, got {num_classes}')
        for name, value in (('aspp_channels', aspp_channels),
                            ('low_level_channels', low_level_channels),
                            ('decoder_channels', decoder_channels)):
            if value < 1:
                raise DeepLabV3PlusConfigError(f'{name} must be >= 1, got {value}')
        weights = MobileNet_V3_Large_Weights.IMAGENET1K_V1 if pretrained_backbone else None
        features = mobilenet_v3_large(weights=weights, dilated=True).features
        self.low = features[:_LOW_LEVEL_END]
        self.high = features[_LOW_LEVEL_END:]
        low_ch = features[_LOW_LEVEL_END - 1].out_channels
        high_ch = features[-1].out_channels
        self.aspp = ASPP(high_ch, list(atrous_rates), out_channels=aspp_channels)
        self.low_proj = nn.Sequential(
            nn.Conv2d(low_ch, low_level_channels, 1, bias=False),
            nn.BatchNorm2d(low_level_channels),
            nn.ReLU(inplace=True),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(aspp_channels + low_level_channels, decoder_channels, 3, padding=1,
                      bias=False),
            nn.BatchNorm2d(decoder_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(decoder_channels, decoder_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(decoder_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(decoder_channels, num_classes, 1),
        )
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        low = self.low(x)
        deep = self.aspp(self.high(low))
        deep = F.interpolate(deep, size=low.shape[-2:], mode='bilinear', align_corners=False)
        logits = self.decoder(torch.cat([deep, self.low_proj(low)], dim=1))
        return {'out': F.interpolate(logits, size=size, mode='bilinear', align_corners=False)}
