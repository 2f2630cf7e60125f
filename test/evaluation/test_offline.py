"""Tests of offline evaluation: prediction plumbing, the synthetic evaluator, the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_perception.classes import ClassSet
from seg_perception.cli import main as cli_main
from seg_perception.evaluation.metrics import confusion_matrix, mean_iou, pixel_accuracy
from seg_perception.evaluation.offline import (
    evaluate_synthetic,
    evaluation_engine,
    measure_latency,
    predict_labels,
)
from seg_perception.segmentation.model_spec import (
    default_model_path,
    ModelSpec,
    save_checkpoint,
)
from seg_perception.synthetic import SyntheticCell, SyntheticConfig


pytestmark = pytest.mark.usefixtures('one_torch_thread')


class _ColourOracle(torch.nn.Module):
    """Predict class = round(red channel * 5) of the normalised input (mean 0, std 1)."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        red = x[:, 0]
        centres = torch.arange(6, dtype=x.dtype).view(1, 6, 1, 1) / 5.0
        return {'out': -(red.unsqueeze(1) - centres).abs()}


def _oracle_spec(size=(24, 32)) -> ModelSpec:
    return ModelSpec(arch='unet_small', class_set=ClassSet.default(), input_size=size,
                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def test_predict_labels_resizes_and_returns_labels_at_the_frame_size():
    labels = np.zeros((2, 48, 64), dtype=np.uint8)
    labels[:, 10:30, 20:50] = 3
    labels[1, 30:, :] = 5
    rgb = np.zeros((2, 48, 64, 3), dtype=np.uint8)
    rgb[..., 0] = labels * 51  # 255 / 5
    pred = predict_labels(evaluation_engine(_ColourOracle(), _oracle_spec()), rgb)
    assert pred.shape == (2, 48, 64) and pred.dtype == np.uint8
    assert mean_iou(confusion_matrix(labels, pred, num_classes=6)) > 0.8


def test_an_in_memory_model_needs_its_spec():
    with pytest.raises(ValueError, match='ModelSpec'):
        evaluation_engine(_ColourOracle())


def test_evaluate_synthetic_reports_scores_and_seeds():
    spec = ModelSpec(arch='unet_small', class_set=ClassSet.default(), input_size=(24, 32),
                     arch_kwargs={'base_width': 4, 'levels': 2})
    summary = evaluate_synthetic(evaluation_engine(spec.build(), spec), frames=3,
                                 seed_start=100_000, size_hw=(48, 64), batch_size=2)
    assert summary['frames'] == 3
    assert summary['seed_start'] == 100_000 and summary['seed_end'] == 100_002
    assert summary['held_out'] is True
    assert np.asarray(summary['confusion_matrix']).sum() == 3 * 48 * 64
    assert 0.0 <= summary['miou'] <= 1.0


def test_measure_latency_reports_both_figures():
    spec = ModelSpec(arch='unet_small', class_set=ClassSet.default(), input_size=(24, 32),
                     arch_kwargs={'base_width': 4, 'levels': 2})
    lat = measure_latency(evaluation_engine(spec.build(), spec), frame_size_hw=(48, 64), runs=3,
                          warmup=1, threads=1)
    assert lat['full_frame_ms_median'] > 0 and lat['network_ms_median'] > 0
    assert lat['input_size_hw'] == [24, 32]


def test_evaluate_cli_writes_metrics_json(tmp_path: Path, capsys):
    spec = ModelSpec(arch='unet_small', class_set=ClassSet.default(), input_size=(24, 32),
                     arch_kwargs={'base_width': 4, 'levels': 2})
    ckpt = save_checkpoint(tmp_path / 'm.pt', spec.build(), spec)
    rc = cli_main(['evaluate', '--model', str(ckpt), '--synthetic-frames', '2',
                   '--frame-size', '48x64', '--latency-runs', '2', '--threads', '1',
                   '--out', str(tmp_path / 'eval')])
    assert rc == 0
    doc = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert doc['frames'] == 2 and 'latency' in doc and 'per_class_iou' in doc
    assert 'mIoU' in capsys.readouterr().out


@pytest.mark.skipif(not default_model_path().is_file(),
                    reason='the default model is not shipped yet')
def test_default_model_segments_held_out_frames_well_above_chance():
    engine = evaluation_engine('default')
    assert engine.class_set == ClassSet.default()
    cell = SyntheticCell(SyntheticConfig(width=640, height=480))
    frames = [cell.render(seed=s) for s in (123_456, 123_457, 123_458)]
    pred = predict_labels(engine, np.stack([f.rgb for f in frames]))
    gt = np.stack([f.labels for f in frames])
    assert pred.shape == gt.shape
    conf = confusion_matrix(gt, pred, num_classes=6)
    # chance: ~0.17 mIoU / ~0.4 accuracy for the majority class; the model gets ~0.5 / ~0.75
    assert mean_iou(conf) > 0.35
    assert pixel_accuracy(conf) > 0.6
