"""A small SegNet: an encoder-decoder that upsamples with the encoder's max-pooling indices.

Why: SegNet (Badrinarayanan et al., 2017) keeps only the argmax positions of each 2x2 pooling
window and puts the decoder's features back at those positions (nn.MaxUnpool2d), so object
outlines come back sharp without U-Net's full skip tensors (less memory per level; the decoder
sees where the strongest edge was, not the whole encoder activation). This variant is narrow
(`base_width`) and shallow (`levels`) enough to train and run on a CPU. Pooling uses ceil mode
and each unpooling is given the encoder's size, so any input size (odd ones too) comes back at
the input size. Run it channels-last on CPU like the U-Net.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from seg_perception.segmentation.unet import conv_bn_relu


class SegNetConfigError(ValueError):
    """Raised when a SegNet is asked for with invalid hyper-parameters."""


def _stack(in_ch: int, out_ch: int, convs: int, *, stride: int = 1) -> nn.Sequential:
    """Return `convs` 3x3 conv + BN + ReLU layers from in_ch to out_ch (the first strided)."""
    return nn.Sequential(*(conv_bn_relu(in_ch if i == 0 else out_ch, out_ch,
                                        stride=stride if i == 0 else 1)
                           for i in range(convs)))


class SegNetSmall(nn.Module):
    """A compact SegNet; forward(x) returns {'out': logits (N, C, H, W) at the input size}.

    levels: encoder stages, each ending in a 2x2 max pooling (the bottleneck is at
    1/2**levels of the input); widths base_width * 2**i, capped at max_width.
    convs_per_level: 3x3 convolutions per encoder stage and per decoder stage.
    stem_stride: 1 = the classic SegNet (first stage at full resolution, switches down to the
    pixel); 2 = a stride-2 first convolution, as in unet_small, with the logits upsampled
    bilinearly to the input size: ~3x less compute, since the full-resolution stages dominate.
    """

    def __init__(self, *, num_classes: int, base_width: int = 16, levels: int = 4,
                 convs_per_level: int = 2, max_width: int = 256, in_channels: int = 3,
                 stem_stride: int = 1) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise SegNetConfigError(f'num_classes must be an int >= 1, got {num_classes!r}')
        if not isinstance(base_width, int) or not 4 <= base_width <= 256:
            raise SegNetConfigError(f'base_width must be an int in 4..256, got {base_width!r}')
        if not isinstance(levels, int) or not 1 <= levels <= 6:
            raise SegNetConfigError(f'levels must be an int in 1..6, got {levels!r}')
        if not isinstance(convs_per_level, int) or not 1 <= convs_per_level <= 4:
            raise SegNetConfigError(f'convs_per_level must be an int in 1..4, got '
                                    f'{convs_per_level!r}')
        if not isinstance(max_width, int) or max_width < base_width:
            raise SegNetConfigError(f'max_width must be an int >= base_width ({base_width}), '
                                    f'got {max_width!r}')
        if not isinstance(in_channels, int) or in_channels < 1:
            raise SegNetConfigError(f'in_channels must be an int >= 1, got {in_channels!r}')
        if stem_stride not in (1, 2):
            raise SegNetConfigError(f'stem_stride must be 1 or 2, got {stem_stride!r}')
        widths = [min(base_width * 2 ** i, max_width) for i in range(levels)]
        ins = [in_channels] + widths[:-1]
        self.encoder = nn.ModuleList(_stack(ins[i], widths[i], convs_per_level,
                                            stride=stem_stride if i == 0 else 1)
                                     for i in range(levels))
        # decoder[j] undoes encoder[levels - 1 - j]: unpool, then back to the level above's width
        self.decoder = nn.ModuleList(
            nn.Sequential(_stack(widths[i], widths[i], convs_per_level - 1),
                          conv_bn_relu(widths[i], widths[max(i - 1, 0)]))
            if convs_per_level > 1 else conv_bn_relu(widths[i], widths[max(i - 1, 0)])
            for i in reversed(range(levels)))
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return {'out': logits} at the input size."""
        input_size = x.shape[-2:]
        switches: list[tuple[torch.Tensor, tuple[int, int]]] = []
        for stage in self.encoder:
            x = stage(x)
            size = (int(x.shape[-2]), int(x.shape[-1]))
            x, indices = self.pool(x)
            switches.append((indices, size))
        for stage in self.decoder:
            indices, size = switches.pop()
            x = stage(self._unpool(x, indices, size))
        logits = self.head(x)
        if logits.shape[-2:] != input_size:
            logits = F.interpolate(logits, size=input_size, mode='bilinear',
                                   align_corners=False)
        return {'out': logits}

    def _unpool(self, x: torch.Tensor, indices: torch.Tensor,
                size: tuple[int, int]) -> torch.Tensor:
        """Put x back at its pooling switches in a zero map of `size` (nn.MaxUnpool2d).

        The ONNX exporter has no aten::max_unpool2d, so under export the same result is
        written as a scatter into each flattened plane (ONNX ScatterElements, opset >= 11).
        """
        if not torch.onnx.is_in_onnx_export():
            return self.unpool(x, indices, output_size=size)
        n, c = x.shape[:2]
        out = x.new_zeros((n, c, size[0] * size[1]))
        out = out.scatter(2, indices.reshape(n, c, -1), x.reshape(n, c, -1))
        return out.reshape(n, c, size[0], size[1])
