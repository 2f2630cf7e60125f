"""The engine applies the `refine` and `morph` options, at start-up and when switched live."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.segmentation.engine import EngineConfig, EngineConfigError, SegmentationEngine
from segmentation.seg_fixtures import colour_model  # noqa: I100, I201 (test/ on sys.path)

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _frame() -> np.ndarray:
    """Red left half, green right half, a noisy blue-ish square: colour edges to follow."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32, 0] = 200
    rgb[:, 32:, 1] = 200
    rgb[12:30, 16:40] = rng.integers(60, 200, (18, 24, 3), dtype=np.uint8)
    return rgb


@pytest.mark.parametrize('kwargs, words', [({'refine': 'dense'}, 'refine'),
                                           ({'refine': None}, 'refine'),
                                           ({'morph_kernel_px': True}, 'morph_kernel_px')])
def test_bad_refine_and_morph_options_are_refused(kwargs, words):
    with pytest.raises(EngineConfigError, match=words):
        EngineConfig(**kwargs)


def test_refinement_is_applied_and_switchable_between_frames(tmp_path):
    engine = SegmentationEngine(EngineConfig(model=str(colour_model(tmp_path)), device='cpu',
                                             warmup_iterations=0, refine='crf'))
    assert engine.refine == 'crf'
    frame = _frame()
    results = {}
    for mode in ('crf', 'guided', 'none'):
        engine.set_refine(mode)
        result = engine.segment([frame], confidence=True)[0]
        assert result.labels.shape == (48, 64) and result.labels.dtype == np.uint8
        results[mode] = result.confidence
    # the CRF adds agreeing neighbours' evidence: more confident; the filter changes it too
    assert results['crf'].mean() > results['none'].mean()
    assert not np.array_equal(results['guided'], results['none'])
    with pytest.raises(EngineConfigError, match='refine'):
        engine.set_refine('bilateral')
    assert engine.refine == 'none'


def test_morph_is_switchable_between_frames(tmp_path):
    engine = SegmentationEngine(EngineConfig(model=str(colour_model(tmp_path)), device='cpu',
                                             warmup_iterations=0))
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :, 0] = 200
    frame[18:24, 10:50, 1] = 255  # a green line, at most 6 px thick in the label map
    plain = engine.segment([frame])[0].labels
    assert (plain == 1).any()
    engine.set_morph('open', 9)
    assert engine.morph == ('open', 9)
    opened = engine.segment([frame])[0].labels
    assert not (opened == 1).any()  # the line is thinner than the kernel: opened away
    with pytest.raises(EngineConfigError, match='morph'):
        engine.set_morph('erode', 3)
    with pytest.raises(EngineConfigError, match='morph_kernel_px'):
        engine.set_morph('open', 0)
