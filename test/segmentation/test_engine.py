"""Tests of SegmentationEngine on a deterministic colour-classifier model (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.constants import UNLABELED_ID
from seg_perception.segmentation.engine import (
    cpu_has_native_bf16,
    EngineConfig,
    EngineConfigError,
    InputError,
    SegmentationEngine,
)

from segmentation.seg_fixtures import colour_model  # noqa: I100 (test helper, test/ on sys.path)

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')
torch.set_num_threads(2)


def _frame(height: int, width: int) -> np.ndarray:
    """Red left half (class 0), green right half (class 1), a blue square (class 2)."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2, 0] = 200
    rgb[:, width // 2:, 1] = 200
    rgb[height // 4: height // 2, width // 4: width // 2] = (0, 0, 220)
    return rgb


@pytest.fixture(scope='module')
def engine(tmp_path_factory):
    path = colour_model(tmp_path_factory.mktemp('colour'))
    return SegmentationEngine(EngineConfig(model=str(path), device='cpu', warmup_iterations=1))


def test_engine_attributes(engine):
    assert engine.device == torch.device('cpu')
    assert engine.class_set.names == ('background', 'tote', 'box')
    assert engine.model_name == 'colour'
    assert engine.spec.input_size == (32, 32)


def test_batch_of_sizes_gives_outputs_at_input_resolution(engine):
    sizes = [(64, 64), (48, 80), (31, 17), (240, 320)]
    frames = [_frame(h, w) for h, w in sizes]
    results = engine.segment(frames, masks_for=[2, 0], confidence=True, overlay=True,
                             counts=True)
    assert len(results) == len(frames)
    for (h, w), frame, r in zip(sizes, frames, results):
        assert r.labels.shape == (h, w) and r.labels.dtype == np.uint8
        assert set(r.masks) == {2, 0}
        for class_id, mask in r.masks.items():
            assert mask.shape == (h, w) and mask.dtype == np.uint8
            np.testing.assert_array_equal(mask, np.where(r.labels == class_id, 255, 0))
        assert r.confidence.shape == (h, w) and r.confidence.dtype == np.uint8
        assert r.confidence.min() >= 255 // 3 - 1
        assert r.overlay.shape == (h, w, 3) and r.overlay.dtype == np.uint8
        assert r.class_pixel_counts.dtype == np.int64
        assert r.class_pixel_counts.sum() == h * w
        expected = np.bincount(r.labels.ravel(), minlength=3)[:3]
        np.testing.assert_array_equal(r.class_pixel_counts, expected)
        assert r.inference_ms > 0 and r.preprocess_ms > 0 and r.postprocess_ms > 0
    # Far from boundaries the colour classifier is exact.
    big = results[3].labels
    assert big[200, 10] == 0 and big[200, 300] == 1 and big[90, 120] == 2


def test_overlay_alpha_zero_equals_input_and_default_has_no_extras(engine):
    frame = _frame(40, 60)
    r = engine.segment([frame], overlay=True, overlay_alpha=0.0)[0]
    np.testing.assert_array_equal(r.overlay, frame)
    plain = engine.segment([frame])[0]
    assert plain.masks == {} and plain.confidence is None and plain.overlay is None
    assert plain.class_pixel_counts is None
    engine.set_overlay_alpha(1.0)
    try:
        full = engine.segment([frame], overlay=True)[0]
        palette = engine.class_set.palette()
        np.testing.assert_array_equal(full.overlay, palette[full.labels])
    finally:
        engine.set_overlay_alpha(0.5)


def test_min_region_pixels_removes_small_blobs_at_runtime(engine):
    frame = _frame(64, 64)
    frame[4:7, 4:7] = (0, 210, 0)  # a 3x3 green speck inside the red half
    assert engine.segment([frame])[0].labels[5, 5] == 1
    engine.set_min_region_pixels(20)
    try:
        labels = engine.segment([frame])[0].labels
    finally:
        engine.set_min_region_pixels(0)
    assert labels[5, 5] == 0
    assert labels[24, 24] == 2, 'the 16x16 blue square is large enough to stay'
    with pytest.raises(EngineConfigError):
        engine.set_min_region_pixels(-1)


@pytest.mark.parametrize('bad, words', [
    ([np.zeros((8, 8, 3), np.float32)], 'dtype'),
    ([np.zeros((8, 8), np.uint8)], 'shape'),
    ([np.zeros((8, 8, 4), np.uint8)], 'shape'),
    ([np.zeros((0, 8, 3), np.uint8)], 'empty'),
    ([], 'at least one'),
    (np.zeros((8, 8, 3), np.uint8), 'sequence'),
    (['not an image'], 'numpy'),
])
def test_bad_inputs_raise_input_error(engine, bad, words):
    with pytest.raises(InputError, match=words):
        engine.segment(bad)


def test_unknown_mask_class_raises(engine):
    with pytest.raises(InputError, match='masks_for'):
        engine.segment([_frame(8, 8)], masks_for=[7])


def test_non_contiguous_input_is_accepted(engine):
    frame = _frame(40, 80)
    view = frame[:, ::2]
    r = engine.segment([view])[0]
    assert r.labels.shape == (40, 40)


@pytest.mark.parametrize('kwargs, words', [
    ({'device': 'tpu'}, 'device'),
    ({'precision': 'fp8'}, 'precision'),
    ({'upsample': 'cubic'}, 'upsample'),
    ({'min_region_pixels': -3}, 'min_region_pixels'),
    ({'morph': 'erode'}, 'morph'),
    ({'morph_kernel_px': 0}, 'morph_kernel_px'),
    ({'warmup_iterations': -1}, 'warmup'),
    ({'overlay_alpha': 1.5}, 'alpha'),
    ({'input_size': (4, 4)}, 'input_size'),
])
def test_engine_config_validation(kwargs, words):
    with pytest.raises(EngineConfigError, match=words):
        EngineConfig(**kwargs)


def test_cpu_half_precision_falls_back_with_note_and_options(tmp_path):
    path = colour_model(tmp_path)
    engine = SegmentationEngine(EngineConfig(
        model=str(path), device='cpu', precision='fp16', upsample='bilinear', morph='open',
        morph_kernel_px=3, channels_last=True, input_size=(24, 40), warmup_iterations=0))
    assert any('fp32' in note for note in engine.notes)
    r = engine.segment([_frame(48, 80)], confidence=True)[0]
    assert r.labels.shape == (48, 80)
    assert r.labels[40, 5] == 0 and r.labels[40, 75] == 1
    assert not (r.labels == UNLABELED_ID).all()


def test_cpu_bf16_uses_autocast_where_the_cpu_has_it(tmp_path):
    path = colour_model(tmp_path)
    fp32 = SegmentationEngine(EngineConfig(model=str(path), device='cpu', warmup_iterations=0))
    bf16 = SegmentationEngine(EngineConfig(model=str(path), device='cpu', precision='bf16',
                                           warmup_iterations=0))
    if cpu_has_native_bf16():
        assert bf16._autocast == torch.bfloat16 and not bf16.notes
    else:
        assert bf16._autocast is None and any('no native bf16' in n for n in bf16.notes)
    frame = _frame(48, 80)
    same = fp32.segment([frame])[0].labels == bf16.segment([frame])[0].labels
    assert same.mean() > 0.98
