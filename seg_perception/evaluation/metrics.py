"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU, pixel accuracy.

Conventions:
- ground-truth pixels equal to UNLABELED_ID, or outside 0..num_classes-1, are ignored; predicted
  values outside 0..num_classes-1 count as wrong for the ground-truth class but add to no column
  (they are dropped from the matrix and counted in `invalid_predictions`).
- mIoU averages the IoU over the classes that occur in the ground truth OR in the prediction
  (union > 0). A class absent from both has no defined IoU (NaN) and is left out, so a frame
  without cylinders neither rewards nor penalises the cylinder class; a class that is predicted
  but absent from the ground truth has IoU 0 and does count (false positives are penalised).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from seg_perception.constants import UNLABELED_ID


class MetricsError(ValueError):
    """Raised when label arrays handed to the metrics do not fit together."""


def _to_numpy(labels: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    if not isinstance(labels, np.ndarray):
        raise MetricsError(f'{name} must be a numpy array or torch tensor, got '
                           f'{type(labels).__name__}')
    if labels.dtype.kind not in 'iub':
        raise MetricsError(f'{name} must hold integer class ids, got dtype {labels.dtype}')
    return labels


def confusion_matrix(gt: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor, *,
                     num_classes: int) -> np.ndarray:
    """Return the (num_classes, num_classes) int64 matrix M[gt, pred] of pixel counts.

    Accepts arrays of any equal shape (single frames or batches), numpy or torch; torch inputs
    are counted on their own device with torch.bincount.
    """
    if num_classes < 1:
        raise MetricsError(f'num_classes must be >= 1, got {num_classes}')
    if isinstance(gt, torch.Tensor) and isinstance(pred, torch.Tensor):
        return _confusion_torch(gt, pred, num_classes=num_classes)
    gt_np = _to_numpy(gt, 'gt')
    pred_np = _to_numpy(pred, 'pred')
    if gt_np.shape != pred_np.shape:
        raise MetricsError(f'gt shape {gt_np.shape} differs from pred shape {pred_np.shape}')
    g = gt_np.reshape(-1).astype(np.int64)
    p = pred_np.reshape(-1).astype(np.int64)
    keep = (g >= 0) & (g < num_classes) & (g != UNLABELED_ID) & (p >= 0) & (p < num_classes)
    counts = np.bincount(g[keep] * num_classes + p[keep], minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _confusion_torch(gt: torch.Tensor, pred: torch.Tensor, *, num_classes: int) -> np.ndarray:
    if gt.shape != pred.shape:
        raise MetricsError(f'gt shape {tuple(gt.shape)} differs from pred shape '
                           f'{tuple(pred.shape)}')
    if gt.is_floating_point() or pred.is_floating_point():
        raise MetricsError('gt and pred must hold integer class ids, not floats')
    g = gt.reshape(-1).long()
    p = pred.reshape(-1).long().to(g.device)
    keep = (g >= 0) & (g < num_classes) & (g != UNLABELED_ID) & (p >= 0) & (p < num_classes)
    counts = torch.bincount(g[keep] * num_classes + p[keep], minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """Return IoU = TP / (TP + FP + FN) per class; NaN for a class in neither GT nor pred."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(conf: np.ndarray) -> float:
    """Return the mean IoU over classes present in GT or prediction (NaN if none is)."""
    iou = iou_per_class(conf)
    valid = ~np.isnan(iou)
    return float(iou[valid].mean()) if valid.any() else float('nan')


def pixel_accuracy(conf: np.ndarray) -> float:
    """Return the fraction of counted pixels whose prediction equals the ground truth."""
    conf = np.asarray(conf)
    total = conf.sum()
    return float(np.trace(conf) / total) if total > 0 else float('nan')


@dataclass
class SegmentationScores:
    """Accumulate a confusion matrix over frames and report the scores."""

    num_classes: int
    class_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise MetricsError(f'num_classes must be >= 1, got {self.num_classes}')
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise MetricsError(f'{len(self.class_names)} class names for {self.num_classes} '
                               'classes')
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.frames = 0

    def update(self, gt: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor) -> None:
        """Add one frame (or a batch) of ground truth and predicted labels."""
        self.confusion += confusion_matrix(gt, pred, num_classes=self.num_classes)
        self.frames += 1 if gt.ndim <= 2 else int(gt.shape[0])

    def summary(self) -> dict[str, Any]:
        """Return per-class IoU, mIoU, pixel accuracy and the confusion matrix (JSON-friendly)."""
        iou = iou_per_class(self.confusion)
        names = (list(self.class_names) if self.class_names
                 else [str(i) for i in range(self.num_classes)])
        return {
            'frames': self.frames,
            'miou': mean_iou(self.confusion),
            'pixel_accuracy': pixel_accuracy(self.confusion),
            'per_class_iou': {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
            'class_names': names,
            'confusion_matrix': self.confusion.tolist(),
        }


def format_table(summary: dict[str, Any]) -> str:
    """Return a plain-text per-class table of a :meth:`SegmentationScores.summary`."""
    conf = np.asarray(summary['confusion_matrix'])
    gt_pixels = conf.sum(axis=1)
    total = max(int(gt_pixels.sum()), 1)
    lines = [f'{"class":<12} {"IoU":>7} {"GT px %":>8}']
    for i, name in enumerate(summary['class_names']):
        iou = summary['per_class_iou'][name]
        iou_txt = '    n/a' if iou is None else f'{iou:7.4f}'
        lines.append(f'{name:<12} {iou_txt} {100.0 * gt_pixels[i] / total:8.2f}')
    lines.append(f'{"mIoU":<12} {summary["miou"]:7.4f}')
    lines.append(f'{"pixel acc":<12} {summary["pixel_accuracy"]:7.4f}')
    lines.append(f'{"frames":<12} {summary["frames"]:7d}')
    return '\n'.join(lines)
