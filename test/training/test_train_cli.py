"""Tests of `seg_perception train` end to end on tiny synthetic frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seg_perception.cli import main as cli_main
from seg_perception.segmentation.model_spec import load_checkpoint

TINY = ['--arch', 'unet_small', '--arch-arg', 'base_width=4', '--arch-arg', 'levels=2',
        '--input-size', '32x48', '--batch-size', '2', '--val-every', '2', '--log-every', '2',
        '--warmup', '1', '--threads', '1', '--device', 'cpu']


@pytest.fixture(autouse=True)
def _restore_threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def test_train_writes_checkpoint_sidecar_curves_and_metrics(tmp_path: Path):
    out = tmp_path / 'run'
    rc = cli_main(['train', *TINY, '--data', 'synthetic', '--train-frames', '4',
                   '--val-frames', '2', '--iterations', '4', '--class-weights', 'auto',
                   '--crop', '24x32', '--precision', 'bf16', '--cache-dir',
                   str(tmp_path / 'cache'), '--out', str(out)])
    assert rc == 0
    for name in ('best.pt', 'best.json', 'last.pt', 'curves.png', 'metrics.json'):
        assert (out / name).is_file(), name
    side = json.loads((out / 'best.json').read_text())
    assert side['model_name'] == 'run'
    assert 'train' in side['extra']['command'] and side['extra']['train_seeds'] == [0, 3]
    assert len(side['extra']['class_weights']) == 6
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['summary']['iterations'] == 4
    assert side['extra']['train_config']['precision'] == 'bf16'
    assert side['extra']['train_config']['augment']['crop_size'] == [24, 32]
    assert list(tmp_path.joinpath('cache').glob('synthetic_*.npz'))

    # fine-tune from it with a smaller class set: the head is re-initialised
    classes = tmp_path / 'classes.yaml'
    classes.write_text('classes:\n  - {id: 0, name: surface}\n  - {id: 1, name: item, '
                       'grasp: [suction]}\n')
    rc = cli_main(['train', '--data', 'synthetic', '--train-frames', '4', '--val-frames', '0',
                   '--iterations', '2', '--batch-size', '2', '--threads', '1', '--init',
                   str(out / 'best.pt'), '--classes', str(classes), '--cache-dir',
                   str(tmp_path / 'cache'), '--out', str(tmp_path / 'ft')])
    assert rc == 0
    model, spec = load_checkpoint(tmp_path / 'ft' / 'last.pt')
    assert spec.num_classes == 2 and spec.input_size == (32, 48)
    assert spec.arch_kwargs == {'base_width': 4, 'levels': 2}


def test_training_seeds_may_not_reach_the_validation_seeds(tmp_path: Path, capsys):
    rc = cli_main(['train', *TINY, '--data', 'synthetic', '--train-frames', '95000',
                   '--out', str(tmp_path / 'x')])
    assert rc == 1
    assert 'overlap' in capsys.readouterr().err


def test_bad_data_source_is_reported(tmp_path: Path, capsys):
    rc = cli_main(['train', *TINY, '--data', 'ftp:somewhere', '--out', str(tmp_path / 'x')])
    assert rc == 1
    assert 'synthetic' in capsys.readouterr().err


def test_a_crop_larger_than_the_input_is_refused(tmp_path: Path, capsys):
    rc = cli_main(['train', *TINY, '--crop', '64x64', '--out', str(tmp_path / 'x')])
    assert rc == 1
    assert 'larger than the input size' in capsys.readouterr().err


def test_a_freeze_prefix_that_names_nothing_is_refused_before_rendering(tmp_path: Path, capsys):
    rc = cli_main(['train', *TINY, '--freeze', 'encoder.', '--out', str(tmp_path / 'x')])
    assert rc == 1
    err = capsys.readouterr().err
    assert "--freeze 'encoder.' names no parameter of unet_small" in err and 'down.' in err
    assert not (tmp_path / 'x').exists()
