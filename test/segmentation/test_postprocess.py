"""Tests of the device-side postprocessing (on CPU tensors, golden tiny inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.constants import UNLABELED_ID
from seg_perception.segmentation import postprocess as post


def test_resize_nearest_replicates_pixels():
    labels = torch.tensor([[1, 2], [3, 4]], dtype=torch.uint8)
    out = post.resize_nearest(labels, (4, 6))
    expected = np.repeat(np.repeat(labels.numpy(), 2, axis=0), 3, axis=1)
    np.testing.assert_array_equal(out.numpy(), expected)
    assert out.dtype == torch.uint8


@pytest.mark.parametrize('upsample', ['nearest', 'bilinear'])
def test_labels_and_confidence_shapes_and_range(upsample):
    logits = torch.zeros((3, 4, 4))
    logits[2, :, 2:] = 5.0
    labels, conf = post.labels_and_confidence(logits, (8, 8), upsample=upsample, confidence=True)
    assert labels.shape == (8, 8) and labels.dtype == torch.uint8
    assert conf.shape == (8, 8) and conf.dtype == torch.uint8
    assert labels[:, :3].eq(0).all() and labels[:, 5:].eq(2).all()
    # Uniform logits give 1/3 confidence, the confident side almost 1.
    assert conf[0, 0].item() == round(255 / 3)
    assert conf[0, 7].item() >= 250


def test_remove_small_regions_golden():
    labels = np.ones((10, 10), np.uint8)
    labels[2:4, 2:4] = 2          # 4-pixel blob inside class 1
    labels[8, 8] = UNLABELED_ID   # unlabeled stays unlabeled
    kept = post.remove_small_regions(labels, 4)
    np.testing.assert_array_equal(kept, labels)
    cleaned = post.remove_small_regions(labels, 5)
    expected = np.ones((10, 10), np.uint8)
    expected[8, 8] = UNLABELED_ID
    np.testing.assert_array_equal(cleaned, expected)
    assert labels[2, 2] == 2, 'input must not be modified'


def test_remove_small_regions_takes_nearest_kept_label():
    labels = np.zeros((6, 12), np.uint8)
    labels[:, 6:] = 3
    labels[2, 7] = 1  # inside the class-3 half
    labels[3, 1] = 1  # inside the class-0 half
    cleaned = post.remove_small_regions(labels, 2)
    assert cleaned[2, 7] == 3 and cleaned[3, 1] == 0
    assert post.remove_small_regions(labels, 1000).tolist() == \
        np.full_like(labels, UNLABELED_ID).tolist()


def test_morph_open_removes_spur_and_close_fills_gap():
    labels = torch.zeros((9, 9), dtype=torch.uint8)
    labels[2:7, 2:7] = 1
    labels[4, 7] = 1  # one-pixel spur
    opened = post.morph_labels(labels, 'open', 3)
    assert opened[4, 7].item() == 0 and opened[2:7, 2:7].eq(1).all()
    holed = labels.clone()
    holed[4, 4] = 0  # one-pixel hole inside class 1
    closed = post.morph_labels(holed, 'close', 3)
    assert closed[4, 4].item() == 1
    assert post.morph_labels(holed, 'none', 3) is holed


def test_masks_counts_and_overlay():
    labels = torch.tensor([[0, 1], [1, UNLABELED_ID]], dtype=torch.uint8)
    masks = post.class_masks(labels, (1, 0))
    assert masks.dtype == torch.uint8
    np.testing.assert_array_equal(masks[0].numpy(), [[0, 255], [255, 0]])
    np.testing.assert_array_equal(masks[1].numpy(), [[255, 0], [0, 0]])
    np.testing.assert_array_equal(post.pixel_counts(labels, 3).numpy(), [1, 2, 0])
    image = torch.full((2, 2, 3), 100, dtype=torch.uint8)
    palette = torch.zeros((256, 3), dtype=torch.uint8)
    palette[1] = torch.tensor([200, 0, 50])
    for alpha, pixel in ((0.0, [100, 100, 100]), (1.0, [200, 0, 50]), (0.5, [150, 50, 75])):
        lut = post.make_alpha_lut((0, 1), alpha, torch.device('cpu'))
        out = post.overlay_image(image, labels, palette, lut)
        assert out[0, 1].tolist() == pixel
        assert out[1, 1].tolist() == [100, 100, 100], 'unlabeled keeps the input'


@pytest.mark.parametrize('size', [((7, 9), (480, 640)), ((240, 320), (480, 640)),
                                  ((50, 31), (17, 100))])
def test_cpu_fast_paths_equal_the_device_implementations(size):
    """OpenCV/numpy paths on the CPU give bit-identical results to the torch (GPU) code."""
    (h, w), out_hw = size
    rng = np.random.default_rng(4)
    small = torch.from_numpy(rng.integers(0, 7, (h, w), dtype=np.uint8))
    small[0, 0] = UNLABELED_ID
    np.testing.assert_array_equal(post.resize_nearest(small, out_hw).numpy(),
                                  post._resize_nearest_gather(small, out_hw).numpy())
    labels = post.resize_nearest(small, out_hw)
    np.testing.assert_array_equal(post.pixel_counts(labels, 6).numpy(),
                                  post._pixel_counts_torch(labels, 6).numpy())
    image = torch.from_numpy(rng.integers(0, 256, (*out_hw, 3), dtype=np.uint8))
    palette = torch.from_numpy(rng.integers(0, 256, (256, 3), dtype=np.uint8))
    for alpha in (0.0, 0.3, 0.5, 1.0):
        lut = post.make_alpha_lut((0, 1, 2, 3, 4, 5), alpha, torch.device('cpu'))
        np.testing.assert_array_equal(
            post.overlay_image(image, labels, palette, lut).numpy(),
            post._overlay_torch(image, labels, palette, lut).numpy())
