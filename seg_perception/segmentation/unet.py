"""A small, fast U-Net for CPU inference in a logistics cell.

Why this shape: the scenes hold a few large, mostly flat items on a tote or conveyor, so the
network needs a wide receptive field more than fine detail. A stride-2 stem drops the
full-resolution level (the costliest one in a plain U-Net), the encoder doubles its width at each
level, and the decoder fuses each skip with a single 3x3 convolution after a 1x1 channel
reduction. The logits are produced at half the input resolution and bilinearly upsampled to the
input size. Train and run it in channels-last memory format on CPU (oneDNN is ~10x faster
there for the backward pass).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class UNetConfigError(ValueError):
    """Raised when a U-Net is asked for with invalid hyper-parameters."""


def conv_bn_relu(in_ch: int, out_ch: int, *, stride: int = 1, separable: bool = False,
                 kernel: int = 3) -> nn.Module:
    """Return a convolution (plain, or a depthwise-separable 3x3) + BatchNorm + ReLU.

    Shared by the U-Nets here and in mobilenetv2_unet (the same layer keys: 0 conv, 1 norm).
    """
    if separable and in_ch > 3:
        return nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class _Down(nn.Module):
    """Halve the resolution with max pooling, then apply two 3x3 convolutions."""

    def __init__(self, in_ch: int, out_ch: int, *, separable: bool) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(in_ch, out_ch, separable=separable),
            conv_bn_relu(out_ch, out_ch, separable=separable),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _Up(nn.Module):
    """Upsample the deeper features, reduce them with a 1x1 conv, fuse with the skip."""

    def __init__(self, deep_ch: int, skip_ch: int, out_ch: int, *, separable: bool) -> None:
        super().__init__()
        self.reduce = nn.Sequential(
            nn.Conv2d(deep_ch, skip_ch, 1, bias=False),
            nn.BatchNorm2d(skip_ch),
            nn.ReLU(inplace=True),
        )
        self.fuse = conv_bn_relu(2 * skip_ch, out_ch, separable=separable)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        deep = F.interpolate(self.reduce(deep), size=skip.shape[-2:], mode='bilinear',
                             align_corners=False)
        return self.fuse(torch.cat([deep, skip], dim=1))


class UNetSmall(nn.Module):
    """A compact U-Net; forward(x) returns {'out': logits (N, C, H, W) at the input size}."""

    def __init__(self, *, num_classes: int, base_width: int = 16, levels: int = 4,
                 in_channels: int = 3, separable: bool = False,
                 widths: list[int] | tuple[int, ...] | None = None) -> None:
        """Build the network; `widths` (one channel count per level) overrides base_width/levels.

        Explicit widths describe a structurally pruned U-Net (see :mod:`.pruning`), whose levels
        need not double.
        """
        super().__init__()
        if widths is not None:
            if not 2 <= len(widths) <= 6 or not all(isinstance(w, int) and 2 <= w <= 2048
                                                    for w in widths):
                raise UNetConfigError(f'widths must be 2..6 ints in 2..2048, got {widths!r}')
            base_width, levels = int(widths[0]), len(widths)
        if num_classes < 1:
            raise UNetConfigError(f'num_classes must be >= 1, got {num_classes}')
        if not 4 <= base_width <= 256:
            raise UNetConfigError(f'base_width must be in 4..256, got {base_width}')
        if not 2 <= levels <= 6:
            raise UNetConfigError(f'levels must be in 2..6, got {levels}')
        if in_channels < 1:
            raise UNetConfigError(f'in_channels must be >= 1, got {in_channels}')
        widths = list(widths) if widths is not None else [base_width * 2 ** i
                                                          for i in range(levels)]
        self.widths = tuple(widths)
        self.stem = nn.Sequential(
            conv_bn_relu(in_channels, widths[0], stride=2),
            conv_bn_relu(widths[0], widths[0], separable=separable),
        )
        self.down = nn.ModuleList(
            _Down(widths[i], widths[i + 1], separable=separable) for i in range(levels - 1))
        self.up = nn.ModuleList(
            _Up(widths[i + 1], widths[i], widths[i], separable=separable)
            for i in reversed(range(levels - 1)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            y = up(y, skips.pop())
        logits = F.interpolate(self.head(y), size=size, mode='bilinear', align_corners=False)
        return {'out': logits}
