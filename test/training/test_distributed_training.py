"""Data-parallel training under torchrun: 2 CPU processes with gloo, rank-0-only writing."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

WORKER = r"""
import json, os, sys
from pathlib import Path
import torch
from seg_perception.classes import ClassSet
from seg_perception.segmentation.model_spec import ModelSpec
from seg_perception.training.augment import NO_AUGMENT
from seg_perception.training.datasets import SyntheticDataset
from seg_perception.training.trainer import TrainConfig, Trainer

root = Path(sys.argv[1])
rank = int(os.environ['RANK'])
torch.manual_seed(rank)          # different initial weights: DDP must make them equal
spec = ModelSpec(arch='unet_small', class_set=ClassSet.default(), input_size=(32, 48),
                 arch_kwargs={'base_width': 8, 'levels': 3}, model_name='ddp')
data = SyntheticDataset(range(4), size=(32, 48))
trainer = Trainer(model=spec.build(), spec=spec, config=TrainConfig(
    iterations=4, batch_size=2, lr=1e-2, warmup_iterations=1, val_every=2, log_every=2,
    threads=1, device='cpu', augment=NO_AUGMENT), train_data=data, val_data=data,
    out_dir=root / f'rank{rank}', log=lambda text: print(f'rank{rank}: {text}', flush=True))
draws = trainer.rng.integers(0, 10 ** 9, size=4).tolist()
trainer._seed_rngs()
trainer.fit()
weights = sum(float(p.double().sum()) for p in trainer.model.parameters())
(root / f'report{rank}.json').write_text(json.dumps({
    'rank': rank, 'world_size': trainer.dist.world_size, 'backend': trainer.dist.backend,
    'draws': draws, 'weights': weights}))
"""


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE')
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                           '--nproc_per_node', '2', *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_two_gloo_ranks_share_weights_draw_their_own_batches_and_rank0_writes(tmp_path: Path):
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    result = _torchrun([str(script), str(tmp_path)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f'report{r}.json').read_text()) for r in (0, 1)]
    assert [r['world_size'] for r in reports] == [2, 2]
    assert reports[0]['backend'] == 'gloo'
    assert reports[0]['draws'] != reports[1]['draws']          # per-rank data
    assert reports[0]['weights'] == pytest.approx(reports[1]['weights'], rel=1e-6)
    for name in ('best.pt', 'last.pt', 'train_state.pt', 'metrics.json'):
        assert (tmp_path / 'rank0' / name).is_file(), name
    assert not (tmp_path / 'rank1').exists()                     # rank 1 wrote nothing
    assert 'rank1:' not in result.stdout and 'rank0: training' in result.stdout
    metrics = json.loads((tmp_path / 'rank0' / 'metrics.json').read_text())
    assert metrics['extra']['world_size'] == 2


@pytest.mark.slow
def test_the_train_cli_runs_unchanged_under_torchrun(tmp_path: Path):
    out = tmp_path / 'out'
    result = _torchrun(['-m', 'seg_perception.cli', 'train', '--data', 'synthetic',
                        '--train-frames', '4', '--val-frames', '2', '--input-size', '32x48',
                        '--arch-arg', 'base_width=8', '--arch-arg', 'levels=3',
                        '--iterations', '2', '--val-every', '2', '--batch-size', '2',
                        '--no-augment', '--cache-dir', str(tmp_path / 'cache'),
                        '--freeze', 'down.',      # frozen parameters under the DDP wrap
                        '--out', str(out)], Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count('done: 2 iterations') == 1
    assert json.loads((out / 'metrics.json').read_text())['extra']['world_size'] == 2
    assert json.loads((out / 'best.json').read_text())['extra']['frozen'] == ['down.']
    assert (out / 'best.pt').is_file() and not list(out.glob('*.tmp'))
