"""Batched, vectorised data augmentation in torch: geometry, colour, blur and noise.

Why batched: one affine grid_sample and a few tensor ops per batch cost far less than per-image
OpenCV calls in Python, and they run on the GPU when there is one. Labels are warped with the same
grid (nearest neighbour); pixels that come from outside the image become UNLABELED_ID (ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from seg_perception.constants import UNLABELED_ID


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentations (set a probability to 0 to switch one off)."""

    hflip_p: float = 0.5
    vflip_p: float = 0.0
    scale_range: tuple[float, float] = (0.75, 1.5)  # zoom factor (> 1 crops, < 1 pads)
    rotate_deg: float = 10.0
    brightness: float = 0.3  # multiplicative, +-
    contrast: float = 0.3
    saturation: float = 0.3
    channel_gain: float = 0.08  # per-channel (white balance) gain, +-
    gamma: float = 0.25  # exponent in exp(+-gamma)
    blur_p: float = 0.3
    noise_p: float = 0.5
    noise_std: float = 0.03  # max noise std on the 0..1 scale
    crop_size: tuple[int, int] | None = None  # (h, w) random training window, None = whole

    def __post_init__(self) -> None:
        if self.crop_size is not None and (len(self.crop_size) != 2
                                           or min(self.crop_size) < 8):
            raise ValueError(f'crop_size must be (h, w) >= 8, got {self.crop_size}')
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f'scale_range must be 0 < lo <= hi, got {self.scale_range}')
        for name in ('hflip_p', 'vflip_p', 'blur_p', 'noise_p'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'{name} must be in 0..1, got {getattr(self, name)}')


NO_AUGMENT = AugmentConfig(hflip_p=0.0, scale_range=(1.0, 1.0), rotate_deg=0.0, brightness=0.0,
                           contrast=0.0, saturation=0.0, channel_gain=0.0, gamma=0.0, blur_p=0.0,
                           noise_p=0.0)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (hi - lo) + lo


def augment_geometry(rgb: torch.Tensor, labels: torch.Tensor, cfg: AugmentConfig, *,
                     generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp float images (N, 3, H, W) and long labels (N, H, W) with one random affine each.

    With cfg.crop_size the output is a random (h, w) window at the same pixel scale: the
    network sees more varied content per pixel of compute, as segmentation training on large
    frames usually does.
    """
    n, _, h, w = rgb.shape
    dev = rgb.device
    lo, hi = cfg.scale_range
    ch, cw = cfg.crop_size if cfg.crop_size else (h, w)
    ch, cw = min(ch, h), min(cw, w)
    if (lo == hi == 1.0 and cfg.rotate_deg == 0 and cfg.hflip_p == 0 and cfg.vflip_p == 0
            and (ch, cw) == (h, w)):
        return rgb, labels
    # log-uniform zoom so that zooming in and out are equally likely around 1
    scale = torch.exp(_uniform(n, math.log(lo), math.log(hi), generator, dev))
    angle = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, generator, dev) * (math.pi / 180.0)
    fx = torch.where(torch.rand(n, generator=generator, device=dev) < cfg.hflip_p, -1.0, 1.0)
    fy = torch.where(torch.rand(n, generator=generator, device=dev) < cfg.vflip_p, -1.0, 1.0)
    inv = 1.0 / scale
    # translation keeps the window inside the image when zooming in; centred jitter otherwise
    tx = _uniform(n, -1.0, 1.0, generator, dev) * (1.0 - inv * (cw / w)).abs()
    ty = _uniform(n, -1.0, 1.0, generator, dev) * (1.0 - inv * (ch / h)).abs()
    cos, sin = torch.cos(angle) * inv, torch.sin(angle) * inv
    # rotate in pixel space: normalised output -> output pixels -> input pixels -> normalised
    theta = torch.stack([
        torch.stack([cos * fx * (cw / w), -sin * fy * (ch / w), tx], dim=1),
        torch.stack([sin * fx * (cw / h), cos * fy * (ch / h), ty], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, [n, 3, ch, cw], align_corners=False)
    rgb = F.grid_sample(rgb, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    shifted = (labels + 1).unsqueeze(1).float()  # 0 after sampling == outside the image
    lab = F.grid_sample(shifted, grid, mode='nearest', padding_mode='zeros',
                        align_corners=False).squeeze(1).long()
    labels = torch.where(lab == 0, torch.full_like(lab, UNLABELED_ID), lab - 1)
    return rgb, labels


def augment_colour(rgb: torch.Tensor, cfg: AugmentConfig, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Jitter brightness, contrast, saturation, white balance and gamma; add blur and noise."""
    n = rgb.shape[0]
    dev = rgb.device

    def rnd(amount: float) -> torch.Tensor:
        return _uniform(n, 1.0 - amount, 1.0 + amount, generator, dev).view(n, 1, 1, 1)

    if cfg.brightness:
        rgb = rgb * rnd(cfg.brightness)
    if cfg.contrast:
        mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
        rgb = (rgb - mean) * rnd(cfg.contrast) + mean
    if cfg.saturation:
        grey = rgb.mean(dim=1, keepdim=True)
        rgb = (rgb - grey) * rnd(cfg.saturation) + grey
    if cfg.channel_gain:
        gains = _uniform(n * 3, 1.0 - cfg.channel_gain, 1.0 + cfg.channel_gain, generator, dev)
        rgb = rgb * gains.view(n, 3, 1, 1)
    rgb = rgb.clamp(0.0, 1.0)
    if cfg.gamma:
        gamma = torch.exp(_uniform(n, -cfg.gamma, cfg.gamma, generator, dev)).view(n, 1, 1, 1)
        rgb = rgb.clamp_min(1e-6) ** gamma
    if cfg.blur_p:
        blurred = gaussian_blur(rgb, sigma=1.0)
        alpha = (torch.rand(n, generator=generator, device=dev) < cfg.blur_p).float()
        alpha = alpha * _uniform(n, 0.3, 1.0, generator, dev)
        rgb = rgb + alpha.view(n, 1, 1, 1) * (blurred - rgb)
    if cfg.noise_p:
        std = _uniform(n, 0.0, cfg.noise_std, generator, dev)
        std = std * (torch.rand(n, generator=generator, device=dev) < cfg.noise_p).float()
        noise = torch.randn(rgb.shape, generator=generator, device=dev)
        rgb = rgb + noise * std.view(n, 1, 1, 1)
    return rgb.clamp(0.0, 1.0)


def gaussian_blur(x: torch.Tensor, *, sigma: float) -> torch.Tensor:
    """Blur (N, C, H, W) with a separable Gaussian of `sigma` pixels (reflect padding)."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode='reflect')
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def to_float_batch(rgb_u8: torch.Tensor) -> torch.Tensor:
    """Return (N, H, W, 3) uint8 as (N, 3, H, W) float in 0..1."""
    return rgb_u8.permute(0, 3, 1, 2).float().div_(255.0)


def normalise(rgb: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Return (rgb - mean) / std for (N, 3, H, W) float images on the 0..1 scale."""
    m = torch.tensor(mean, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb - m) / s


def augment_batch(rgb_u8: torch.Tensor, labels_u8: torch.Tensor, cfg: AugmentConfig, *,
                  mean: Sequence[float], std: Sequence[float],
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the normalised network input (N, 3, H, W) and long labels (N, H, W)."""
    rgb = to_float_batch(rgb_u8)
    labels = labels_u8.long()
    rgb, labels = augment_geometry(rgb, labels, cfg, generator=generator)
    rgb = augment_colour(rgb, cfg, generator=generator)
    return normalise(rgb, mean, std), labels
