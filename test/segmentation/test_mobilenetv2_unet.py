"""Tests of the MobileNetV2 U-Net and of importing its encoder from the pretrained ONNX network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_perception.cli import main as cli_main
from seg_perception.segmentation.mobilenetv2_unet import MobileNetV2UNet, \
    MobileNetV2UNetConfigError
from seg_perception.segmentation.model_spec import load_checkpoint
from seg_perception.segmentation.pretrained_import import load_pretrained_encoder, \
    PretrainedImportError, stride8_parity
from seg_perception.segmentation.registry import build_model, ModelBuildError

pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def voc_onnx(shared_data):
    path = shared_data / 'models' / 'deeplabv3_mnv2_voc' / 'deeplab_v3_1_default_1.onnx'
    if not path.is_file():
        pytest.skip(f'{path} is absent')
    return path


@pytest.mark.parametrize('size', [(37, 53), (1, 1), (17, 9), (64, 48)])
def test_logits_come_back_at_any_input_size(size):
    model = build_model('unet_mobilenetv2', num_classes=5).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, *size))
    assert set(out) == {'out'}
    assert out['out'].shape == (2, 5, *size)
    assert torch.isfinite(out['out']).all()


def test_encoder_features_have_the_documented_strides_and_widths():
    model = MobileNetV2UNet(num_classes=3).eval()
    with torch.inference_mode():
        features = model.encoder(torch.randn(1, 3, 64, 96))
    assert [f.shape[1] for f in features] == list(model.encoder.channels) == [8, 12, 16, 48, 160]
    assert [f.shape[-2:] for f in features] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]


def test_gradients_reach_every_parameter():
    model = build_model('unet_mobilenetv2', num_classes=3, decoder_widths=[8, 8, 8, 8],
                        context_channels=8).train()
    model(torch.randn(2, 3, 33, 47))['out'].square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert float(param.grad.abs().sum()) > 0, name


@pytest.mark.parametrize('kwargs', [{'num_classes': 0}, {'decoder_widths': [8, 8, 8]},
                                    {'decoder_widths': [8, 8, 8, 2]}, {'context_channels': 0}])
def test_bad_hyper_parameters_are_refused(kwargs):
    with pytest.raises(MobileNetV2UNetConfigError):
        MobileNetV2UNet(**{'num_classes': 3, **kwargs})


def test_no_download_is_offered():
    with pytest.raises(ModelBuildError, match='import-pretrained'):
        build_model('unet_mobilenetv2', num_classes=3, weights='DEFAULT')


def test_imported_encoder_computes_what_onnxruntime_computes(voc_onnx):
    model = MobileNetV2UNet(num_classes=3).eval()
    rgb = np.random.default_rng(4).integers(0, 256, (257, 257, 3), dtype=np.uint8)
    assert stride8_parity(model, voc_onnx, rgb) > 0.1  # random weights: far off
    assert load_pretrained_encoder(model, voc_onnx) == 102
    assert stride8_parity(model, voc_onnx, rgb) < 1e-3


def test_a_file_that_is_not_the_network_is_refused(tmp_path, voc_onnx):
    bogus = tmp_path / 'not.onnx'
    bogus.write_bytes(b'\x00not onnx')
    with pytest.raises(PretrainedImportError, match='cannot read'):
        load_pretrained_encoder(MobileNetV2UNet(num_classes=3), bogus)
    with pytest.raises(PretrainedImportError, match='does not exist'):
        load_pretrained_encoder(MobileNetV2UNet(num_classes=3), tmp_path / 'missing.onnx')


def test_cli_writes_a_checkpoint_that_loads_with_the_pretrained_normalisation(
        tmp_path, voc_onnx, capsys):
    out = tmp_path / 'init.pt'
    assert cli_main(['import-pretrained', '--onnx', str(voc_onnx), '--out', str(out)]) == 0
    assert 'match onnxruntime' in capsys.readouterr().out
    model, spec = load_checkpoint(out)
    assert spec.arch == 'unet_mobilenetv2' and spec.mean == (0.5, 0.5, 0.5)
    assert spec.std == (0.5, 0.5, 0.5)
    side = json.loads(out.with_suffix('.json').read_text())
    assert side['extra']['stride8_parity_max_abs'] < 1e-3
    rgb = np.random.default_rng(5).integers(0, 256, (257, 257, 3), dtype=np.uint8)
    assert stride8_parity(model, voc_onnx, rgb) < 1e-3


def test_cli_refuses_a_bad_output_name_and_writes_nothing(tmp_path, voc_onnx, capsys):
    out = tmp_path / 'init.onnx'
    assert cli_main(['import-pretrained', '--onnx', str(voc_onnx), '--out', str(out)]) != 0
    assert not list(tmp_path.iterdir())


def test_the_shipped_pretrained_model_loads_by_name_and_labels_a_cell_frame():
    from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
    from seg_perception.segmentation.loader import known_sources
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig
    assert 'pretrained_mnv2' in known_sources()
    engine = SegmentationEngine(EngineConfig(model='pretrained_mnv2', device='cpu',
                                             backend='torch'))
    assert engine.spec.arch == 'unet_mobilenetv2' and engine.spec.mean == (0.5, 0.5, 0.5)
    frame = SyntheticCell(SyntheticConfig(width=320, height=240)).render(100000)
    labels = engine.segment([frame.rgb])[0].labels
    assert (labels == frame.labels).mean() > 0.8  # a trained model, not random weights


def test_every_checkpoint_cli_takes_the_shipped_names():
    """train --init, quantize, evaluate and adapt read checkpoints through model_file."""
    import argparse
    from seg_perception.evaluation.online import model_class_set
    from seg_perception.segmentation.model_spec import default_model_path, model_file
    from seg_perception.segmentation.quantize import source_digest
    from seg_perception.training.cli import _init_model
    assert model_file('pretrained_mnv2') == default_model_path('pretrained_mnv2')
    assert model_file('default') == default_model_path()
    assert model_file('build/x.pt') == Path('build/x.pt')
    assert source_digest('pretrained_mnv2') is not None
    assert source_digest('pretrained_mnv2') != source_digest('default')
    assert [c.name for c in model_class_set('pretrained_mnv2')][:2] == ['background', 'tote']
    args = argparse.Namespace(init='pretrained_mnv2', classes=None, arch='unet_small',
                              arch_arg=[], input_size=None, model_name='m', out=Path('m'),
                              weights=None)
    model, spec, _ = _init_model(args)
    assert spec.arch == 'unet_mobilenetv2' and spec.mean == (0.5, 0.5, 0.5)
