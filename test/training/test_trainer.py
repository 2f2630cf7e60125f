"""Tests of the training loop on tiny synthetic frames: the loss falls, resume continues."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_perception.classes import ClassSet
from seg_perception.segmentation.engine import cpu_has_native_bf16
from seg_perception.segmentation.model_spec import load_checkpoint, ModelSpec
from seg_perception.training.augment import NO_AUGMENT
from seg_perception.training.datasets import SyntheticDataset
from seg_perception.training.trainer import (
    lr_factor,
    resolve_precision,
    TrainConfig,
    Trainer,
    TrainingError,
)

SIZE = (48, 64)


@pytest.fixture(scope='module')
def frames() -> SyntheticDataset:
    data = SyntheticDataset(range(6), size=SIZE)
    data.prerender()
    return data


def _trainer(out: Path, frames, *, iterations: int, lr: float = 1e-2, **changes) -> Trainer:
    torch.manual_seed(0)
    spec = ModelSpec(arch='unet_small', class_set=ClassSet.default(), input_size=SIZE,
                     arch_kwargs={'base_width': 8, 'levels': 3}, model_name='tiny')
    config = TrainConfig(iterations=iterations, batch_size=4, lr=lr, warmup_iterations=2,
                         val_every=5, log_every=5, threads=1, device='cpu', augment=NO_AUGMENT,
                         **changes)
    return Trainer(model=spec.build(), spec=spec, config=config, train_data=frames,
                   val_data=frames, out_dir=out, extra={'command': 'test'},
                   log=lambda text: None)


def test_a_short_run_lowers_the_loss_and_writes_its_outputs(tmp_path: Path, frames):
    trainer = _trainer(tmp_path, frames, iterations=30)
    summary = trainer.fit()
    losses = trainer.history['loss']
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0]
    assert summary['best_val_miou'] > trainer.history['val'][0]['miou'] - 1e-9
    for name in ('best.pt', 'best.json', 'last.pt', 'last.json', 'train_state.pt',
                 'metrics.json', 'curves.png'):
        assert (tmp_path / name).is_file(), name
    model, spec = load_checkpoint(tmp_path / 'best.pt')
    assert spec.model_name == 'tiny'
    side = json.loads((tmp_path / 'best.json').read_text())
    assert side['extra']['command'] == 'test'
    assert side['extra']['val']['miou'] == pytest.approx(summary['best_val_miou'])


def test_bf16_autocast_training_lowers_the_loss_with_fp32_weights(tmp_path: Path, frames):
    trainer = _trainer(tmp_path, frames, iterations=30, precision='bf16')
    assert trainer.autocast_dtype == torch.bfloat16
    trainer.fit()
    losses = trainer.history['loss']
    assert losses[-1] < 0.8 * losses[0]
    assert all(v.dtype == torch.float32 for v in trainer.model.state_dict().values()
               if v.is_floating_point())


def test_precision_resolution():
    cpu = torch.device('cpu')
    assert resolve_precision('fp32', cpu) is None
    assert resolve_precision('bf16', cpu) == torch.bfloat16
    assert resolve_precision('auto', cpu) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    with pytest.raises(TrainingError, match='fp16 needs a CUDA device'):
        resolve_precision('fp16', cpu)
    with pytest.raises(TrainingError, match='precision'):
        TrainConfig(precision='int8')


def test_resume_continues_from_the_saved_iteration(tmp_path: Path, frames):
    first = _trainer(tmp_path, frames, iterations=10)
    first.fit()
    saved = {k: v.clone() for k, v in first.model.state_dict().items()}
    second = _trainer(tmp_path, frames, iterations=15)
    second.resume()
    assert second.iteration == 10
    for k, v in second.model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    second.fit()
    assert second.iteration == 15
    assert second.history['iteration'] == [5, 10, 15]
    assert [v['iteration'] for v in second.history['val']] == [5, 10, 15]


def test_resume_without_state_fails_clearly(tmp_path: Path, frames):
    with pytest.raises(TrainingError, match='train_state.pt'):
        _trainer(tmp_path, frames, iterations=5).resume()


def test_time_budget_stops_the_run_and_finishes_the_decay(tmp_path: Path, frames):
    trainer = _trainer(tmp_path, frames, iterations=10_000, time_budget_s=1e-9)
    summary = trainer.fit()
    assert summary['iterations'] == 1  # the budget was spent by the first step
    assert (tmp_path / 'last.pt').is_file()


def test_lr_schedule_warms_up_and_decays():
    f = [lr_factor(i, total=100, warmup=10, schedule='poly') for i in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] < 0.05
    c = [lr_factor(i, total=100, warmup=0, schedule='cosine') for i in (0, 50, 100)]
    np.testing.assert_allclose(c, [1.0, 0.5, 0.0], atol=1e-9)
    # a time budget that is further along than the iterations drives the decay
    assert lr_factor(20, total=100, warmup=10, schedule='cosine', progress=0.5) == \
        pytest.approx(0.5)


def test_bad_config_is_rejected():
    with pytest.raises(TrainingError, match='schedule'):
        TrainConfig(schedule='step')
    with pytest.raises(TrainingError, match='iterations'):
        TrainConfig(iterations=0)


def test_frozen_parameters_stay_as_initialised_and_the_rest_learns(tmp_path: Path, frames):
    """--freeze: a pretrained part keeps its weights; the optimiser sees only the others."""
    trainer = _trainer(tmp_path, frames, iterations=10, frozen_prefixes=('down.',))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.fit()
    frozen = [n for n in before if n.startswith('down.')]
    assert frozen and len(frozen) < len(before)
    for name, param in trainer.model.named_parameters():
        changed = not torch.equal(param.detach(), before[name])
        assert changed == (not name.startswith('down.')) or param.numel() == 0, name
    with pytest.raises(TrainingError, match='names no parameter'):
        _trainer(tmp_path / 'x', frames, iterations=1, frozen_prefixes=('encoder.',))
    with pytest.raises(TrainingError, match='every parameter is frozen'):
        _trainer(tmp_path / 'y', frames, iterations=1,
                 frozen_prefixes=('stem.', 'down.', 'up.', 'head.'))
    with pytest.raises(TrainingError, match='non-empty'):
        TrainConfig(frozen_prefixes=('',))
