"""Tests of `seg_perception export` and of the runtime backends on the exported default model."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import torch

from seg_perception.cli import main as cli_main
from seg_perception.segmentation.backends import load_backend, runtimes_for
from seg_perception.segmentation.engine import EngineConfig, EngineConfigError, \
    SegmentationEngine
from seg_perception.segmentation.export import export_model, ExportError, parity_batches
from seg_perception.segmentation.loader import load_segmenter, ModelLoadError
from seg_perception.segmentation.model_spec import default_model_path, load_spec
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

pytestmark = [pytest.mark.usefixtures('one_torch_thread'),
              pytest.mark.skipif(not default_model_path().is_file(),
                                 reason='the default model is not shipped')]
pytest.importorskip('onnx', reason='onnx is not installed')
GRAPH_RUNTIMES = [r for r in runtimes_for('default', torch.device('cpu')) if r != 'torch']


@pytest.fixture(scope='module')
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('export') / 'default.onnx'
    assert cli_main(['export', 'default', '--format', 'onnx', '--out', str(out)]) == 0
    return out


def test_export_writes_the_graph_and_a_sidecar_with_its_parity(exported, capsys):
    side = json.loads(exported.with_suffix('.json').read_text(encoding='utf-8'))
    assert side['input_size'] == [240, 320]
    assert side['arch'] == load_spec(default_model_path()).arch
    assert [c['name'] for c in side['class_set']][:2] == ['background', 'tote']
    parity = side['export']['parity']
    assert parity['label_agreement'] >= 0.999 and parity['max_abs_logit_diff'] < 1e-3
    assert side['export']['opset'] == 17 and side['export']['dynamic_batch'] is False
    assert not list(exported.parent.glob('.*tmp*')), 'temporary files left behind'


def test_export_at_another_size_with_a_dynamic_batch(tmp_path, capsys):
    out = tmp_path / 'small.onnx'
    path, parity = export_model('default', fmt='onnx', out=out, input_size=(128, 160),
                                dynamic_batch=True, check_frames=2)
    assert parity.label_agreement >= 0.999
    segmenter, spec = load_segmenter(str(path), device='cpu')
    assert spec.input_size == (128, 160) and segmenter.io.fixed_batch is None
    assert segmenter(torch.zeros(3, 3, 128, 160)).shape == (3, 6, 128, 160)


def test_torchscript_export_matches_pytorch(tmp_path):
    path, parity = export_model('default', fmt='torchscript', out=tmp_path / 'default.ts',
                                check_frames=2)
    assert parity.max_abs_logit_diff < 1e-4
    segmenter, spec = load_segmenter(str(path), device='cpu')
    assert spec.model_name == 'default'


@pytest.mark.parametrize('runtime', GRAPH_RUNTIMES)
def test_every_backend_gives_the_labels_of_pytorch_on_50_synthetic_frames(exported, runtime):
    """Acceptance: >= 99.9 % label agreement (fp32) between PyTorch and each runtime."""
    torch_seg, spec = load_segmenter('default', device='cpu')
    graph_seg, _ = load_backend(runtime, str(exported), device=torch.device('cpu'))
    same = total = 0
    with torch.inference_mode():
        for batch in parity_batches(spec, synthetic=50, noise=0, seed_start=100_000):
            a, b = torch_seg(batch).argmax(1), graph_seg(batch).argmax(1)
            same += int((a == b).sum())
            total += a.numel()
    assert same / total >= 0.999, f'{runtime}: {same / total:.5f}'


@pytest.mark.parametrize('runtime', GRAPH_RUNTIMES)
def test_the_engine_runs_a_torch_model_in_each_runtime(runtime):
    frame = SyntheticCell(SyntheticConfig(width=320, height=240)).render(seed=100_123).rgb
    ref = SegmentationEngine(EngineConfig(model='default', device='cpu', backend='torch'))
    other = SegmentationEngine(EngineConfig(model='default', device='cpu', backend=runtime))
    assert other.backend == runtime and other.class_set == ref.class_set
    a, b = ref.segment([frame])[0].labels, other.segment([frame])[0].labels
    assert np.mean(a == b) >= 0.999


def test_backend_auto_times_the_installed_runtimes_and_keeps_the_fastest():
    engine = SegmentationEngine(EngineConfig(model='default', device='cpu', backend='auto'))
    timings = engine.backend_timings_ms
    assert set(timings) == set(runtimes_for('default', torch.device('cpu')))
    assert engine.backend == min(timings, key=timings.get)
    assert any(note.startswith('backend auto:') for note in engine.notes)


@pytest.mark.skipif('openvino' not in GRAPH_RUNTIMES, reason='openvino is not installed')
def test_reduced_precision_lets_auto_take_the_shipped_int8_model():
    """The node's default precision (fp16) on a CPU: the INT8 IR of the default model competes."""
    engine = SegmentationEngine(EngineConfig(model='default', device='cpu', backend='auto',
                                             precision='fp16'))
    assert 'openvino_int8' in engine.backend_timings_ms
    int8 = SegmentationEngine(EngineConfig(
        model=str(default_model_path('default_int8', '.xml')), device='cpu'))
    ref = SegmentationEngine(EngineConfig(model='default', device='cpu', backend='torch'))
    cell = SyntheticCell(SyntheticConfig(width=640, height=480))
    same = total = 0
    for seed in range(100_200, 100_210):
        frame = cell.render(seed=seed).rgb
        a, b = ref.segment([frame])[0].labels, int8.segment([frame])[0].labels
        same, total = same + int((a == b).sum()), total + a.size
    assert same / total >= 0.99
    fp32 = SegmentationEngine(EngineConfig(model='default', device='cpu', backend='auto'))
    assert 'openvino_int8' not in fp32.backend_timings_ms


def test_bad_models_and_backends_get_one_line_errors(tmp_path, exported):
    with pytest.raises(ExportError, match='not a PyTorch model'):
        export_model(str(exported), fmt='onnx', out=tmp_path / 'x.onnx')
    with pytest.raises(ModelLoadError, match='unknown model'):
        export_model('no_such_model', fmt='onnx', out=tmp_path / 'x.onnx')
    with pytest.raises(ExportError, match='must end in .onnx'):
        export_model('default', fmt='onnx', out=tmp_path / 'x.ts')
    with pytest.raises(ModelLoadError, match='PyTorch cannot run it'):
        load_backend('torch', str(exported), device=torch.device('cpu'))
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'\x08\x07not a protobuf' * 50)
    (tmp_path / 'corrupt.json').write_text(exported.with_suffix('.json').read_text())
    for runtime in GRAPH_RUNTIMES:
        with pytest.raises(ModelLoadError, match='not a loadable'):
            load_backend(runtime, str(corrupt), device=torch.device('cpu'))
    with pytest.raises(ModelLoadError, match='does not exist'):
        load_segmenter(str(tmp_path / 'missing.onnx'), device='cpu')
    xml = tmp_path / 'lonely.xml'
    xml.write_text('<net/>')
    (tmp_path / 'lonely.json').write_text(exported.with_suffix('.json').read_text())
    if 'openvino' in GRAPH_RUNTIMES:
        with pytest.raises(ModelLoadError, match='lonely.bin'):
            load_backend('openvino', str(xml), device=torch.device('cpu'))
    with pytest.raises(ModelLoadError, match='cannot read .xml'):
        load_backend('onnxruntime', str(xml), device=torch.device('cpu'))


def test_an_input_size_the_graph_does_not_take_is_refused(exported, tmp_path):
    with pytest.raises(EngineConfigError, match='differs from the fixed'):
        SegmentationEngine(EngineConfig(model=str(exported), device='cpu',
                                        input_size=(200, 200)))
    doc = json.loads(exported.with_suffix('.json').read_text(encoding='utf-8'))
    doc['input_size'] = [200, 200]
    wrong = tmp_path / 'wrong.json'
    wrong.write_text(json.dumps(doc), encoding='utf-8')
    with pytest.raises(ModelLoadError, match='input_size'):
        load_segmenter(str(exported), device='cpu', spec_path=wrong)


def test_cli_errors_are_one_line_and_write_nothing(tmp_path):
    out = tmp_path / 'm.onnx'
    proc = subprocess.run([sys.executable, '-m', 'seg_perception.cli', 'export', 'nonsense',
                           '--out', str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count('\n') == 0 and 'unknown model' in proc.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('runtime', ['openvino', 'onnxruntime'])
def test_a_backend_that_is_not_installed_names_its_package(runtime):
    """Run in a child process whose import system lacks the runtime (as on a bare machine)."""
    code = (f'import sys; sys.modules[{runtime!r}] = None\n'
            'from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine\n'
            'from seg_perception.segmentation.loader import ModelLoadError\n'
            'try:\n'
            f'    SegmentationEngine(EngineConfig(model="default", device="cpu", '
            f'backend={runtime!r}))\n'
            'except ModelLoadError as exc:\n'
            '    print(exc)\n'
            '    sys.exit(3)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert f'pip install {runtime}' in proc.stdout
