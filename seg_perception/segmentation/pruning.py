"""Structured (channel) pruning of the U-Net: fewer channels per level, chosen by importance.

Why channels and not single weights: removing whole channels makes every convolution smaller,
which every runtime runs faster; sparse weights speed up nothing on a CPU. The importance of a
channel is the magnitude of its BatchNorm scale (|gamma|, "network slimming", Liu et al. 2017):
a channel whose BatchNorm multiplies it by ~0 contributes ~nothing downstream.

The U-Net has several independent channel sets per level (encoder output, the middle of each
down block, the decoder's reduced deep features, the decoder output); each keeps its own most
important channels, and every convolution is cut on its input side to the channels its input
sets kept. The pruned network is a plain `UNetSmall(widths=...)`, so it saves, loads, trains,
exports and quantises like any other. Pruning costs accuracy until it is fine-tuned
(`seg_perception train --init pruned.pt`).
"""

from __future__ import annotations

import torch
from torch import nn

from seg_perception.segmentation.unet import UNetSmall

__all__ = ['PruningError', 'prune_unet', 'pruned_widths']


class PruningError(ValueError):
    """Raised when a model cannot be pruned as asked."""


def pruned_widths(widths: tuple[int, ...], keep: float) -> list[int]:
    """Return the per-level channel counts that keep `keep` (0..1] of each level, at least 4."""
    if not 0.0 < keep <= 1.0:
        raise PruningError(f'keep must be in (0, 1], got {keep}')
    return [max(4, int(round(w * keep))) for w in widths]


def _keep_index(bn: nn.BatchNorm2d, count: int) -> torch.Tensor:
    """Return the sorted indices of the `count` channels with the largest |gamma|."""
    return torch.sort(torch.topk(bn.weight.detach().abs(), count).indices).values


def _copy_conv_bn(src: nn.Sequential, dst: nn.Sequential, in_idx: torch.Tensor,
                  out_idx: torch.Tensor) -> None:
    """Copy a conv + BN (+ ReLU) block's kept input and output channels into `dst`."""
    conv, bn = src[0], src[1]
    new_conv, new_bn = dst[0], dst[1]
    with torch.no_grad():
        new_conv.weight.copy_(conv.weight[out_idx][:, in_idx])
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            getattr(new_bn, name).copy_(getattr(bn, name)[out_idx])
        new_bn.num_batches_tracked.copy_(bn.num_batches_tracked)


def prune_unet(model: UNetSmall, *, keep: float) -> UNetSmall:
    """Return a new UNetSmall with `keep` of each level's channels, weights copied from `model`.

    Only plain (non-separable) U-Nets are supported.
    """
    if not isinstance(model, UNetSmall):
        raise PruningError(f'structured pruning supports unet_small, got {type(model).__name__}')
    if any(m.groups != 1 for m in model.modules() if isinstance(m, nn.Conv2d)):
        raise PruningError('structured pruning does not support separable U-Nets')
    widths = pruned_widths(model.widths, keep)
    levels = len(widths)
    in_channels = model.stem[0][0].in_channels
    pruned = UNetSmall(num_classes=model.num_classes, widths=widths, in_channels=in_channels)
    all_rgb = torch.arange(in_channels)
    # Encoder: stem, then each down block (middle set, then the level's encoder output set).
    stem_mid = _keep_index(model.stem[0][1], widths[0])
    _copy_conv_bn(model.stem[0], pruned.stem[0], all_rgb, stem_mid)
    encoder = [_keep_index(model.stem[1][1], widths[0])]
    _copy_conv_bn(model.stem[1], pruned.stem[1], stem_mid, encoder[0])
    for i, (down, new_down) in enumerate(zip(model.down, pruned.down)):
        first, second = down.block[1], down.block[2]
        mid = _keep_index(first[1], widths[i + 1])
        _copy_conv_bn(first, new_down.block[1], encoder[i], mid)
        encoder.append(_keep_index(second[1], widths[i + 1]))
        _copy_conv_bn(second, new_down.block[2], mid, encoder[i + 1])
    # Decoder: up[j] serves level i = levels - 2 - j; its deep input is the previous output.
    deep = encoder[-1]
    for j, (up, new_up) in enumerate(zip(model.up, pruned.up)):
        i = levels - 2 - j
        reduced = _keep_index(up.reduce[1], widths[i])
        _copy_conv_bn(up.reduce, new_up.reduce, deep, reduced)
        skip_offset = up.reduce[0].out_channels  # the fuse input is cat([reduced, skip])
        fuse_in = torch.cat([reduced, encoder[i] + skip_offset])
        deep = _keep_index(up.fuse[1], widths[i])
        _copy_conv_bn(up.fuse, new_up.fuse, fuse_in, deep)
    with torch.no_grad():
        pruned.head.weight.copy_(model.head.weight[:, deep])
        pruned.head.bias.copy_(model.head.bias)
    return pruned.train(model.training)
