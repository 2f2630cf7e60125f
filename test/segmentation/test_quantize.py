"""Tests of `seg_perception quantize`: INT8 models that keep the labels of the fp32 model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seg_perception.cli import main as cli_main
from seg_perception.segmentation.backends import is_installed, load_backend
from seg_perception.segmentation.export import parity_batches
from seg_perception.segmentation.loader import load_segmenter
from seg_perception.segmentation.model_spec import default_model_path
from seg_perception.segmentation.quantize import quantize_model, QuantizeError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('one_torch_thread'),
              pytest.mark.skipif(not default_model_path().is_file(),
                                 reason='the default model is not shipped')]
pytest.importorskip('onnx', reason='onnx is not installed')


def _agreement(runtime: str, path: Path, frames: int = 50) -> float:
    """Return the INT8 model's label agreement with PyTorch fp32 on held-out synthetic frames."""
    reference, spec = load_segmenter('default', device='cpu')
    int8, _ = load_backend(runtime, str(path), device=torch.device('cpu'))
    same = total = 0
    with torch.inference_mode():
        for batch in parity_batches(spec, synthetic=frames, noise=0, seed_start=100_000):
            a, b = reference(batch).argmax(1), int8(batch).argmax(1)
            same += int((a == b).sum())
            total += a.numel()
    return same / total


@pytest.mark.skipif(not (is_installed('openvino') and is_installed('onnxruntime')),
                    reason='needs openvino (with nncf) and onnxruntime')
@pytest.mark.parametrize('suffix, runtime', [('.xml', 'openvino'), ('.onnx', 'onnxruntime')])
def test_int8_keeps_99_percent_of_the_labels_on_50_held_out_frames(tmp_path, suffix, runtime):
    """Acceptance: INT8 label agreement >= 99 % with PyTorch fp32 on 50 synthetic frames."""
    if suffix == '.xml':
        pytest.importorskip('nncf', reason='nncf is not installed')
    out = tmp_path / f'default_int8{suffix}'
    assert cli_main(['quantize', 'default', '--frames', '32', '--check-frames', '8',
                     '--out', str(out)]) == 0
    side = json.loads(out.with_suffix('.json').read_text(encoding='utf-8'))
    assert side['export']['precision'] == 'int8'
    assert side['export']['calibration']['seed_start'] < 100_000, 'calibrated on held-out seeds'
    assert side['export']['parity_vs_fp32']['label_agreement'] >= 0.99
    if suffix == '.xml':
        assert out.with_suffix('.bin').is_file()
    assert _agreement(runtime, out) >= 0.99
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')], 'scratch left behind'


def test_bad_requests_write_nothing(tmp_path):
    with pytest.raises(QuantizeError, match='must end in'):
        quantize_model('default', out=tmp_path / 'x.pt')
    with pytest.raises(QuantizeError, match='calibration'):
        quantize_model('default', out=tmp_path / 'x.onnx', calibration='imagenet')
    with pytest.raises(QuantizeError, match='does not exist'):
        quantize_model(str(tmp_path / 'missing.onnx'), out=tmp_path / 'x.onnx')
    with pytest.raises(QuantizeError, match='unknown model'):
        quantize_model('nonsense', out=tmp_path / 'x.onnx')
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not is_installed('onnxruntime'), reason='onnxruntime is not installed')
def test_an_impossible_agreement_threshold_writes_nothing(tmp_path):
    out = tmp_path / 'strict.onnx'
    with pytest.raises(QuantizeError, match='nothing written'):
        quantize_model('default', out=out, frames=4, check_frames=2, min_agreement=1.0)
    assert not list(tmp_path.iterdir())
