"""Tests for the engine's preprocessing (frames -> normalised network batch)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_perception.segmentation.preprocess import Normaliser

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _reference(image: np.ndarray, size_hw: tuple[int, int]) -> torch.Tensor:
    """(x / 255 - mean) / std of a float bilinear resize, the textbook definition."""
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).double()
    if tuple(image.shape[:2]) != size_hw:
        x = F.interpolate(x, size=size_hw, mode='bilinear', align_corners=False)
    mean = torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


def _frames(*shapes: tuple[int, int]) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.mark.parametrize('channels_last', [True, False])
def test_cpu_batch_matches_the_definition(channels_last):
    normaliser = Normaliser(mean=MEAN, std=STD, device='cpu', channels_last=channels_last)
    images = _frames((48, 64), (24, 32), (30, 50), (60, 70))  # down, same, odd, up
    batch = normaliser.batch(normaliser.to_device(images), (24, 32))
    assert batch.shape == (4, 3, 24, 32) and batch.dtype == torch.float32
    memory = torch.channels_last if channels_last else torch.contiguous_format
    assert batch.is_contiguous(memory_format=memory)
    one_level = 1.0 / (255.0 * min(STD))
    for i, image in enumerate(images):
        error = (batch[i:i + 1].double() - _reference(image, (24, 32))).abs().max().item()
        if image.shape[:2] == (24, 32):
            assert error < 1e-5  # no resize: only float rounding
        else:
            assert error <= one_level * 1.001  # bilinear on uint8 rounds to whole grey levels


def test_read_only_frames_are_used_without_a_warning_or_a_copy():
    normaliser = Normaliser(mean=MEAN, std=STD, device='cpu')
    image = _frames((24, 32))[0]
    image.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        (tensor,) = normaliser.to_device([image])
        batch = normaliser.batch([tensor], (12, 16))
    assert np.shares_memory(tensor.numpy(), image)
    assert torch.isfinite(batch).all()


def test_invalid_mean_std_are_refused():
    with pytest.raises(ValueError, match='std > 0'):
        Normaliser(mean=MEAN, std=(0.2, 0.0, 0.2), device='cpu')
