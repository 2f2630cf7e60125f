"""The training loop: AdamW, warm-up + poly/cosine schedule, validation mIoU, checkpoints, resume.

Output folder layout (all rewritten as training goes, so a crashed run keeps its progress):
  best.pt/.json      weights + sidecar with the best validation mIoU
  last.pt/.json      the latest weights + sidecar
  train_state.pt     optimizer, scheduler, RNG and history for --resume
  metrics.json       history (loss, lr, validation scores) and the final summary
  curves.png         loss and validation mIoU curves
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
import json
import math
from pathlib import Path
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from seg_perception.constants import UNLABELED_ID
from seg_perception.evaluation.metrics import SegmentationScores
from seg_perception.host_memory import retain_freed_memory
from seg_perception.segmentation.device import cpu_has_native_bf16, DeviceError, resolve_device
from seg_perception.segmentation.model_spec import ModelSpec, save_checkpoint
from seg_perception.training import distributed
from seg_perception.training.augment import (
    augment_batch,
    AugmentConfig,
    normalise,
    to_float_batch,
)
from seg_perception.training.losses import SegmentationLoss

SCHEDULES = ('poly', 'cosine')
PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')
STATE_FILE = 'train_state.pt'


class TrainingError(RuntimeError):
    """Raised when training cannot start or continue (bad config, resume mismatch)."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    iterations: int = 6000
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = 'poly'
    warmup_iterations: int = 200
    val_every: int = 500
    log_every: int = 50
    seed: int = 0
    threads: int | None = None
    device: str = 'auto'
    dice_weight: float = 0.5
    grad_clip: float = 5.0
    channels_last: bool = True  # ~10x faster convolution backward on CPU (oneDNN)
    precision: str = 'fp32'  # autocast of forward + loss; weights and optimizer stay fp32
    time_budget_s: float | None = None  # stop (and finish the LR decay) after this much training
    #: Parameters whose names start with one of these stay as initialised (not optimised): a
    #: feature extractor pretrained on real photographs keeps what it learnt there while the
    #: rest learns from synthetic frames (Hinterstoisser et al., 2018).
    frozen_prefixes: tuple[str, ...] = ()
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise TrainingError(f'iterations must be >= 1, got {self.iterations}')
        if self.batch_size < 1:
            raise TrainingError(f'batch_size must be >= 1, got {self.batch_size}')
        if not self.lr > 0:
            raise TrainingError(f'lr must be > 0, got {self.lr}')
        if self.schedule not in SCHEDULES:
            raise TrainingError(f'schedule must be one of {SCHEDULES}, got {self.schedule!r}')
        if self.warmup_iterations < 0 or self.val_every < 1 or self.log_every < 1:
            raise TrainingError('warmup_iterations must be >= 0, val_every and log_every >= 1')
        if self.precision not in PRECISIONS:
            raise TrainingError(f'precision must be one of {PRECISIONS}, got '
                                f'{self.precision!r}')
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise TrainingError(f'time_budget_s must be > 0, got {self.time_budget_s}')
        if any(not isinstance(p, str) or not p for p in self.frozen_prefixes):
            raise TrainingError(f'frozen_prefixes must be non-empty names, got '
                                f'{self.frozen_prefixes!r}')


def unmatched_prefix(model: nn.Module, prefixes: Sequence[str]) -> str | None:
    """Return the first of `prefixes` that starts no parameter name of `model` (None: all do)."""
    names = [name for name, _ in model.named_parameters()]
    return next((p for p in prefixes if not p or not any(n.startswith(p) for n in names)), None)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype for `precision` on `device` (None = plain fp32).

    auto: bf16 on GPUs that support it (else fp16) and on CPUs with native bf16
    (1.8x faster training of unet_small on an AVX512-BF16 Xeon), fp32 elsewhere.
    """
    if precision == 'auto':
        if device.type == 'cuda':
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == 'cpu' and cpu_has_native_bf16() else None
    if precision == 'fp16' and device.type != 'cuda':
        raise TrainingError('precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU')
    return {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]


def lr_factor(it: int, *, total: int, warmup: int, schedule: str,
              progress: float = 0.0) -> float:
    """Return the learning-rate multiplier at iteration `it` (linear warm-up, then decay).

    progress: a fraction of a time budget already spent; the decay follows whichever of the
    iteration count and the time budget is further along.
    """
    if warmup and it < warmup:
        return (it + 1) / warmup
    t = min(1.0, max((it - warmup) / max(1, total - warmup), progress))
    if schedule == 'cosine':
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return (1.0 - t) ** 0.9


def load_matching_weights(model: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy the tensors of `state` whose names and shapes match; return the skipped names."""
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(usable))
    model.load_state_dict(usable, strict=False)
    return skipped


class Trainer:
    """Train a segmentation model on a map-style dataset of (rgb uint8 HWC, labels uint8 HW)."""

    def __init__(self, *, model: nn.Module, spec: ModelSpec, config: TrainConfig,
                 train_data: Dataset, val_data: Dataset | None, out_dir: str | Path,
                 class_weights: torch.Tensor | None = None,
                 extra: Mapping[str, Any] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        if len(train_data) == 0:
            raise TrainingError('the training set is empty')
        self.spec = spec
        self.config = config
        self.train_data = train_data
        self.val_data = val_data
        self.out_dir = Path(out_dir)
        self.extra = dict(extra or {})
        # Under torchrun: one process per rank; only rank 0 logs, validates and writes.
        self.dist = distributed.setup(config.device)
        self.extra['world_size'] = self.dist.world_size
        self.log = log or (lambda text: print(text, flush=True))
        if not self.dist.is_main:
            self.log = lambda text: None
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            self.device = distributed.rank_device(resolve_device(config.device), self.dist)
        except DeviceError as exc:
            raise TrainingError(str(exc)) from exc
        if self.device.type == 'cpu':
            # A CPU step page-faulted ~14k fresh pages of activations and gradients (batch 12
            # at 176x224); keeping freed memory mapped made steps ~10% faster and steadier.
            retain_freed_memory()
        self.model = model.to(self.device)
        self.memory_format = torch.channels_last if config.channels_last \
            else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        # Frozen before any DistributedDataParallel wrap, which registers what needs gradients.
        trainable = self._trainable(config.frozen_prefixes)
        #: what the training step runs: the model, or its DistributedDataParallel wrapper
        #: (gradients averaged over the ranks); validation and checkpoints use the bare model.
        self.net: nn.Module = self.model
        if self.dist.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == 'cuda'
                else None)
        self.autocast_dtype = resolve_precision(config.precision, self.device)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype
                                           == torch.float16)
        self.criterion = SegmentationLoss(
            num_classes=spec.num_classes, class_weights=class_weights,
            dice_weight=config.dice_weight).to(self.device)
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.train_seconds = 0.0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: lr_factor(it, total=config.iterations,
                                                 warmup=config.warmup_iterations,
                                                 schedule=config.schedule,
                                                 progress=self.time_progress()))
        self.iteration = 0
        self.best_miou = -1.0
        self.history: dict[str, list] = {'iteration': [], 'loss': [], 'lr': [], 'val': []}
        # ids outside the class set (e.g. synthetic labels with a smaller class set) are ignored
        lut = np.full(256, UNLABELED_ID, dtype=np.uint8)
        lut[list(spec.class_set.ids)] = list(spec.class_set.ids)
        self.label_lut = lut
        self._seed_rngs()

    def _trainable(self, frozen: tuple[str, ...]) -> list[nn.Parameter]:
        """Freeze the parameters named by `frozen` prefixes; return the others."""
        named = list(self.model.named_parameters())
        missing = unmatched_prefix(self.model, frozen)
        if missing is not None:
            raise TrainingError(f'frozen prefix {missing!r} names no parameter of the model '
                                f'(e.g. {named[0][0]!r})')
        trainable = []
        for name, param in named:
            if name.startswith(frozen):
                param.requires_grad_(False)
            else:
                trainable.append(param)
        if not trainable:
            raise TrainingError('every parameter is frozen: nothing to train')
        if frozen:
            self.log(f'frozen: {len(named) - len(trainable)} of {len(named)} parameter tensors '
                     f'({", ".join(frozen)})')
        return trainable

    def _seed_rngs(self, iteration: int | None = None) -> None:
        """Seed batch sampling and augmentation; per rank, so ranks draw different batches.

        Rank 0 of a plain run keeps the seed as given (runs reproduce as before).
        """
        seed, rank = self.config.seed, self.dist.rank
        key = seed if rank == 0 and iteration is None else [seed, rank, iteration or 0]
        self.rng = np.random.default_rng(key)
        self.gen = torch.Generator(device=self.device).manual_seed(
            int(np.random.default_rng(key).integers(2 ** 62)) if rank else seed)

    def time_progress(self) -> float:
        """Return the fraction of the time budget spent (0 without a budget)."""
        if not self.config.time_budget_s:
            return 0.0
        return min(1.0, self.train_seconds / self.config.time_budget_s)

    def done(self) -> bool:
        """Return True when the iterations or the time budget are used up."""
        return self.iteration >= self.config.iterations or self.time_progress() >= 1.0

    # ----------------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            'model': self.model.state_dict(),
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'iteration': self.iteration,
            'best_miou': self.best_miou,
            'history': self.history,
            'numpy_rng': self.rng.bit_generator.state,
            'torch_gen': self.gen.get_state(),
            'train_seconds': self.train_seconds,
            'spec': self.spec.to_dict(),
            'config_iterations': self.config.iterations,
        }

    def resume(self) -> None:
        """Continue from the output folder's train_state.pt."""
        path = self.out_dir / STATE_FILE
        if not path.is_file():
            raise TrainingError(f'cannot resume: {str(path)!r} does not exist')
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as exc:  # corrupt file
            raise TrainingError(f'cannot read {str(path)!r}: {exc}') from exc
        if state.get('spec', {}).get('arch') != self.spec.arch:
            raise TrainingError(f'cannot resume: {str(path)!r} holds arch '
                                f'{state.get("spec", {}).get("arch")!r}, this run uses '
                                f'{self.spec.arch!r}')
        try:
            self.model.load_state_dict(state['model'])
        except RuntimeError as exc:
            raise TrainingError(f'cannot resume: the saved model does not fit: {exc}') from exc
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.iteration = int(state['iteration'])
        self.best_miou = float(state['best_miou'])
        self.history = state['history']
        self.rng.bit_generator.state = state['numpy_rng']
        self.gen.set_state(state['torch_gen'].cpu() if self.device.type == 'cpu'
                           else state['torch_gen'])
        if self.dist.rank:     # the saved RNG state is rank 0's: other ranks draw their own
            self._seed_rngs(self.iteration)
        self.train_seconds = float(state.get('train_seconds', 0.0))
        self.log(f'resumed at iteration {self.iteration} (best val mIoU {self.best_miou:.4f})')

    # ----------------------------------------------------------------------------- steps
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.rng.integers(0, len(self.train_data), size=self.config.batch_size)
        pairs = [self.train_data[int(i)] for i in idx]
        rgb = torch.from_numpy(np.stack([p[0] for p in pairs])).to(self.device)
        labels = torch.from_numpy(self.label_lut[np.stack([p[1] for p in pairs])]).to(self.device)
        x, y = augment_batch(rgb, labels, self.config.augment, mean=self.spec.mean,
                             std=self.spec.std, generator=self.gen)
        return x.contiguous(memory_format=self.memory_format), y

    def _step(self) -> float:
        self.model.train()
        x, y = self._batch()
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            logits = self.net(x)['out']
        loss = self.criterion(logits.float(), y)
        if not torch.isfinite(loss):
            raise TrainingError(f'loss became {loss.item()} at iteration {self.iteration}; '
                                'lower --lr')
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.item())

    @torch.inference_mode()
    def validate(self) -> dict[str, Any]:
        """Return the validation summary (mIoU etc.) at the training size."""
        assert self.val_data is not None
        self.model.eval()
        contiguous = list(self.spec.class_set.ids) == list(range(self.spec.num_classes))
        names = [c.name for c in self.spec.class_set] if contiguous else None
        scores = SegmentationScores(num_classes=self.spec.num_classes, class_names=names)
        bs = max(1, self.config.batch_size)
        for start in range(0, len(self.val_data), bs):
            pairs = [self.val_data[i] for i in range(start, min(start + bs,
                                                                len(self.val_data)))]
            rgb = torch.from_numpy(np.stack([p[0] for p in pairs])).to(self.device)
            x = normalise(to_float_batch(rgb), self.spec.mean, self.spec.std)
            if tuple(x.shape[-2:]) != self.spec.input_size:
                x = nn.functional.interpolate(x, size=self.spec.input_size, mode='bilinear',
                                              align_corners=False)
            logits = self.model(x.contiguous(memory_format=self.memory_format))['out']
            if tuple(logits.shape[-2:]) != tuple(rgb.shape[1:3]):
                logits = nn.functional.interpolate(logits, size=tuple(rgb.shape[1:3]),
                                                   mode='bilinear', align_corners=False)
            pred = logits.contiguous(memory_format=torch.channels_last).argmax(1)
            gt = self.label_lut[np.stack([p[1] for p in pairs])]
            scores.update(torch.from_numpy(gt).to(self.device), pred)
        return scores.summary()

    # ----------------------------------------------------------------------------- run
    def _save(self, name: str, val: dict[str, Any] | None) -> None:
        if not self.dist.is_main:
            return
        extra = dict(self.extra)
        extra.update({'iteration': self.iteration,
                      'train_seconds': round(self.train_seconds, 1),
                      'train_config': _jsonable(asdict(self.config))})
        if val is not None:
            keys = ('miou', 'pixel_accuracy', 'per_class_iou', 'frames')
            extra['val'] = {k: val[k] for k in keys}
        save_checkpoint(self.out_dir / f'{name}.pt', self.model, self.spec, extra=extra)

    def _save_state(self) -> None:
        if not self.dist.is_main:
            return
        tmp = self.out_dir / (STATE_FILE + '.tmp')
        torch.save(self._state(), tmp)
        tmp.replace(self.out_dir / STATE_FILE)

    def fit(self) -> dict[str, Any]:
        """Train to config.iterations (from the current iteration); return the final summary."""
        cfg = self.config
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.log(f'training {self.spec.arch} {self.spec.arch_kwargs} on {self.device} '
                 f'({torch.get_num_threads()} threads), {len(self.train_data)} training samples, '
                 f'{len(self.val_data) if self.val_data is not None else 0} validation samples, '
                 f'input {self.spec.input_size[0]}x{self.spec.input_size[1]}, '
                 f'batch {cfg.batch_size}, {cfg.iterations} iterations, '
                 f'{"fp32" if self.autocast_dtype is None else self.autocast_dtype} compute'
                 + (f', {self.dist.world_size} processes ({self.dist.backend})'
                    if self.dist.distributed else ''))
        bar = tqdm(total=cfg.iterations, initial=self.iteration,
                   disable=None if self.dist.is_main else True, file=sys.stderr,
                   desc='train', dynamic_ncols=True)
        losses: list[float] = []
        t_last = time.perf_counter()
        last_val: dict[str, Any] | None = None
        while not self.done():
            t0 = time.perf_counter()
            loss = self._step()
            self.iteration += 1
            self.train_seconds += time.perf_counter() - t0
            # every rank stops, and decays the LR, on the slowest rank's clock
            self.train_seconds = self.dist.max_scalar(self.train_seconds, self.device)
            losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f'{loss:.3f}')
            if self.iteration % cfg.log_every == 0 or self.done():
                mean_loss = float(np.mean(losses))
                self.history['iteration'].append(self.iteration)
                self.history['loss'].append(mean_loss)
                self.history['lr'].append(self.optimizer.param_groups[0]['lr'])
                now = time.perf_counter()
                self.log(f'it {self.iteration}/{cfg.iterations} loss {mean_loss:.4f} '
                         f'lr {self.optimizer.param_groups[0]["lr"]:.2e} '
                         f'{(now - t_last) / len(losses):.3f} s/it')
                t_last = now
                losses = []
            if self.iteration % cfg.val_every == 0 or self.done():
                last_val = self._validate_and_checkpoint()
        bar.close()
        if last_val is None and self.val_data is not None and self.dist.is_main:
            last_val = self.validate()  # resumed at the end
        summary = {
            'iterations': self.iteration,
            'train_seconds': round(self.train_seconds, 1),
            'best_val_miou': self.best_miou,
            'final_val': last_val,
        }
        self._write_metrics(summary)
        self.dist.barrier()     # ranks leave together, after rank 0 wrote its files
        return summary

    def _validate_and_checkpoint(self) -> dict[str, Any] | None:
        val = None
        if not self.dist.is_main:
            return None         # rank 0 validates and writes; the others go on training
        if self.val_data is not None and len(self.val_data):
            val = self.validate()
            self.history['val'].append({'iteration': self.iteration, 'miou': val['miou'],
                                        'pixel_accuracy': val['pixel_accuracy'],
                                        'per_class_iou': val['per_class_iou']})
            ious = ' '.join(f'{k}={v:.3f}' for k, v in val['per_class_iou'].items()
                            if v is not None)
            self.log(f'val it {self.iteration}: mIoU {val["miou"]:.4f} '
                     f'acc {val["pixel_accuracy"]:.4f} [{ious}]')
            if val['miou'] > self.best_miou:
                self.best_miou = val['miou']
                self._save('best', val)
        elif self.best_miou < 0:
            self._save('best', None)
        self._save('last', val)
        self._save_state()
        self._write_metrics(None)
        return val

    def _write_metrics(self, summary: dict[str, Any] | None) -> None:
        if not self.dist.is_main:
            return
        doc = {'spec': self.spec.to_dict(), 'extra': _jsonable(self.extra),
               'history': self.history, 'best_val_miou': self.best_miou,
               'iteration': self.iteration, 'train_seconds': round(self.train_seconds, 1)}
        if summary is not None:
            doc['summary'] = _jsonable(summary)
        (self.out_dir / 'metrics.json').write_text(json.dumps(_jsonable(doc), indent=2) + '\n',
                                                   encoding='utf-8')
        try:
            plot_curves(self.history, self.out_dir / 'curves.png')
        except Exception as exc:  # plotting must never kill a training run
            self.log(f'warning: could not plot curves: {exc}')


def plot_curves(history: Mapping[str, list], path: str | Path) -> None:
    """Write a PNG with the training loss and the validation mIoU over iterations."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax1 = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax1.plot(history['iteration'], history['loss'], color='tab:blue', label='train loss')
    ax1.set_xlabel('iteration')
    ax1.set_ylabel('loss', color='tab:blue')
    ax1.set_yscale('log')
    ax1.grid(True, alpha=0.3)
    if history['val']:
        ax2 = ax1.twinx()
        ax2.plot([v['iteration'] for v in history['val']], [v['miou'] for v in history['val']],
                 'o-', color='tab:red', label='val mIoU')
        ax2.set_ylabel('validation mIoU', color='tab:red')
        ax2.set_ylim(0, 1)
    ax1.set_title('training curves')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def with_overrides(config: TrainConfig, **changes: Any) -> TrainConfig:
    """Return a copy of `config` with the given fields changed (validated again)."""
    return replace(config, **changes)
