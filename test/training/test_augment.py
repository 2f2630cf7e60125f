"""Tests of the batched augmentation: labels follow the image, padding is ignored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.constants import UNLABELED_ID
from seg_perception.training.augment import (
    augment_batch,
    augment_colour,
    augment_geometry,
    AugmentConfig,
    gaussian_blur,
    NO_AUGMENT,
)

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _coded_batch(n: int = 4, h: int = 40, w: int = 56) -> tuple[torch.Tensor, torch.Tensor]:
    """Return images whose red channel encodes the label (label * 40) of each pixel."""
    rng = np.random.default_rng(1)
    labels = np.zeros((n, h, w), dtype=np.uint8)
    for i in range(n):  # a few axis-aligned rectangles of classes 1..5
        for k in range(1, 6):
            y, x = rng.integers(0, h - 12), rng.integers(0, w - 12)
            labels[i, y:y + 12, x:x + 12] = k
    rgb = np.zeros((n, h, w, 3), dtype=np.uint8)
    rgb[..., 0] = labels * 40
    return torch.from_numpy(rgb), torch.from_numpy(labels)


def test_geometry_keeps_labels_aligned_with_the_image():
    rgb, labels = _coded_batch()
    cfg = AugmentConfig(hflip_p=0.5, vflip_p=0.5, scale_range=(0.7, 1.4), rotate_deg=15)
    x = rgb.permute(0, 3, 1, 2).float()
    gen = torch.Generator().manual_seed(3)
    warped, lab = augment_geometry(x, labels.long(), cfg, generator=gen)
    assert warped.shape == x.shape and lab.shape == labels.shape
    inside = lab != UNLABELED_ID
    assert (~inside).any()  # zooming out / rotating leaves padded, ignored pixels
    # away from edges (where bilinear blending mixes classes) the colour decodes to the label
    decoded = torch.round(warped[:, 0] / 40).long()
    interior = inside & (torch.nn.functional.max_pool2d(
        (lab.unsqueeze(1) != torch.roll(lab, 1, dims=2).unsqueeze(1)).float(), 5, 1, 2)
        .squeeze(1) == 0)
    agree = (decoded[interior] == lab[interior]).float().mean()
    assert agree > 0.97


def test_random_crops_keep_the_pixel_scale_and_the_labels_aligned():
    rgb, labels = _coded_batch(n=6)
    x = rgb.permute(0, 3, 1, 2).float()
    gen = torch.Generator().manual_seed(5)
    plain = AugmentConfig(hflip_p=0.0, scale_range=(1.0, 1.0), rotate_deg=0.0, crop_size=(24, 32))
    crops, lab = augment_geometry(x, labels.long(), plain, generator=gen)
    assert crops.shape == (6, 3, 24, 32) and lab.shape == (6, 24, 32)
    # no zoom, rotation or flip: every crop is a window of its source at an integer offset
    # (up to sub-pixel sampling), so labels decode from the colours everywhere inside
    assert (lab != UNLABELED_ID).all()
    decoded = torch.round(crops[:, 0] / 40).long()
    assert (decoded == lab).float().mean() > 0.9
    jittered = AugmentConfig(crop_size=(24, 32), scale_range=(0.8, 1.25), rotate_deg=10)
    crops, lab = augment_geometry(x, labels.long(), jittered, generator=gen)
    inside = lab != UNLABELED_ID
    assert crops.shape[-2:] == (24, 32)
    assert (torch.round(crops[:, 0] / 40).long()[inside] == lab[inside]).float().mean() > 0.9
    with pytest.raises(ValueError, match='crop_size'):
        AugmentConfig(crop_size=(4, 32))


def test_no_augment_is_the_identity_up_to_normalisation():
    rgb, labels = _coded_batch()
    x, y = augment_batch(rgb, labels, NO_AUGMENT, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert torch.equal(y, labels.long())
    assert torch.allclose(x, rgb.permute(0, 3, 1, 2).float() / 255.0)


def test_colour_jitter_stays_in_range_and_changes_images():
    rgb, _ = _coded_batch()
    x = rgb.permute(0, 3, 1, 2).float() / 255.0 + 0.1
    out = augment_colour(x.clamp(0, 1), AugmentConfig(noise_p=1.0, blur_p=1.0),
                         generator=torch.Generator().manual_seed(0))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.allclose(out, x.clamp(0, 1))


def test_gaussian_blur_preserves_a_constant_image():
    x = torch.full((1, 3, 20, 20), 0.5)
    assert torch.allclose(gaussian_blur(x, sigma=1.5), x, atol=1e-6)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match='scale_range'):
        AugmentConfig(scale_range=(1.5, 1.0))
    with pytest.raises(ValueError, match='hflip_p'):
        AugmentConfig(hflip_p=2.0)
