"""Tests of the SegNet architecture: sizes, gradients, learning, checkpoints, CLI and ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_perception.classes import ClassSet
from seg_perception.cli import main as cli_main
from seg_perception.segmentation.loader import load_segmenter
from seg_perception.segmentation.model_spec import ModelSpec
from seg_perception.segmentation.registry import build_model, ModelBuildError
from seg_perception.segmentation.segnet import SegNetConfigError, SegNetSmall
from seg_perception.training.augment import NO_AUGMENT
from seg_perception.training.datasets import SyntheticDataset
from seg_perception.training.losses import SegmentationLoss
from seg_perception.training.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures('one_torch_thread')

TINY = {'base_width': 4, 'levels': 3}


@pytest.mark.parametrize('stem_stride', [1, 2])
@pytest.mark.parametrize('size', [(37, 53), (1, 1), (17, 9), (64, 48)])
def test_logits_come_back_at_any_input_size(size, stem_stride):
    model = build_model('segnet', num_classes=5, stem_stride=stem_stride, **TINY).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, *size))
    assert set(out) == {'out'}
    assert out['out'].shape == (2, 5, *size)
    assert torch.isfinite(out['out']).all()


def test_unpooling_puts_values_back_at_the_pooling_switches():
    model = SegNetSmall(num_classes=2, **TINY)
    x = torch.randn(1, 3, 7, 9)
    pooled, indices = model.pool(x)
    restored = model._unpool(pooled, indices, (7, 9))
    kept = restored != 0
    assert torch.equal(restored[kept], x[kept])  # every non-zero value sits where it came from
    assert int(kept.sum()) == pooled.numel()  # one switch per pooling window (4x5 windows)


def test_gradients_reach_every_parameter():
    model = build_model('segnet', num_classes=3, **TINY).train()
    loss = model(torch.randn(2, 3, 33, 47))['out'].square().mean()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    assert all(float(p.grad.abs().sum()) > 0 for p in model.parameters())


def test_twenty_steps_overfit_one_batch():
    torch.manual_seed(0)
    model = build_model('segnet', num_classes=3, **TINY).train()
    x = torch.randn(2, 3, 24, 32)
    # a label map with structure: left/middle/right thirds, class by column
    y = (torch.arange(32) * 3 // 32).expand(2, 24, 32).contiguous()
    criterion = SegmentationLoss(num_classes=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = criterion(model(x)['out'], y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0], losses


@pytest.mark.parametrize('kwargs, match', [
    ({'base_width': 2}, 'base_width'), ({'levels': 0}, 'levels'), ({'levels': 7}, 'levels'),
    ({'convs_per_level': 0}, 'convs_per_level'), ({'stem_stride': 4}, 'stem_stride'),
    ({'max_width': 2}, 'max_width'), ({'base_width': 8.5}, 'base_width')])
def test_bad_hyper_parameters_are_named(kwargs, match):
    with pytest.raises(SegNetConfigError, match=match):
        build_model('segnet', num_classes=3, **kwargs)


def test_no_pretrained_weights_and_unknown_arguments_are_refused():
    with pytest.raises(ModelBuildError, match='no pretrained weights'):
        build_model('segnet', num_classes=3, weights='DEFAULT')
    with pytest.raises(ModelBuildError, match='segnet'):
        build_model('segnet', num_classes=3, width=8)


def test_trainer_checkpoint_reloads_through_load_segmenter(tmp_path: Path):
    size = (32, 48)
    data = SyntheticDataset(range(2), size=size)
    torch.manual_seed(0)
    spec = ModelSpec(arch='segnet', class_set=ClassSet.default(), input_size=size,
                     arch_kwargs={**TINY, 'stem_stride': 2}, model_name='tiny_segnet')
    config = TrainConfig(iterations=2, batch_size=2, lr=1e-2, warmup_iterations=1,
                         val_every=2, log_every=1, threads=1, device='cpu', augment=NO_AUGMENT)
    trainer = Trainer(model=spec.build(), spec=spec, config=config, train_data=data,
                      val_data=data, out_dir=tmp_path, log=lambda text: None)
    trainer.fit()
    side = json.loads((tmp_path / 'last.json').read_text())
    assert side['arch'] == 'segnet' and side['arch_kwargs'] == {**TINY, 'stem_stride': 2}
    segmenter, loaded = load_segmenter(str(tmp_path / 'last.pt'), device='cpu')
    assert loaded.arch == 'segnet' and loaded.input_size == size
    x = torch.randn(1, 3, *size)
    trained = trainer.model.eval().to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        expected = trained(x)['out']
        got = segmenter(x)
    assert torch.allclose(got, expected, atol=1e-5)


def test_train_cli_accepts_arch_segnet(tmp_path: Path):
    previous = torch.get_num_threads()
    try:
        rc = cli_main(['train', '--arch', 'segnet', '--arch-arg', 'base_width=4',
                       '--arch-arg', 'levels=2', '--input-size', '32x48', '--batch-size', '2',
                       '--val-every', '2', '--log-every', '2', '--warmup', '1', '--threads',
                       '1', '--device', 'cpu', '--data', 'synthetic', '--train-frames', '2',
                       '--val-frames', '0', '--iterations', '2', '--no-cache',
                       '--out', str(tmp_path / 'run')])
    finally:
        torch.set_num_threads(previous)
    assert rc == 0
    side = json.loads((tmp_path / 'run' / 'last.json').read_text())
    assert side['arch'] == 'segnet' and side['arch_kwargs'] == {'base_width': 4, 'levels': 2}
    _, spec = load_segmenter(str(tmp_path / 'run' / 'last.pt'))
    assert spec.arch == 'segnet'


def test_onnx_export_runs_in_onnxruntime_like_torch(tmp_path: Path):
    pytest.importorskip('onnx', reason='onnx is not installed')
    ort = pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
    torch.manual_seed(0)
    model = build_model('segnet', num_classes=4, **TINY).eval()
    x = torch.randn(1, 3, 29, 41)  # odd: the exported unpooling must honour the encoder sizes
    path = tmp_path / 'segnet.onnx'
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                      input_names=['input'], output_names=['out'])
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    (got,) = session.run(None, {'input': x.numpy()})
    with torch.inference_mode():
        expected = model(x)['out'].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
