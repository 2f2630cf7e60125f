"""Segmentation metrics: per-class IoU, mIoU, pixel accuracy; boundary F-score (BF).

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
import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

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


def _label_tensor(labels: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(labels, torch.Tensor):
        if labels.is_floating_point():
            raise MetricsError(f'{name} must hold integer class ids, not floats')
        return labels.long()
    return torch.from_numpy(np.ascontiguousarray(_to_numpy(labels, name))).long()


def _class_boundaries(labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Return (K, H, W) bool: pixels of class ids[k] with a 4-neighbour of another label."""
    edge = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    vertical = labels[1:] != labels[:-1]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return (labels.unsqueeze(0) == ids.view(-1, 1, 1)) & edge


def _within(boundaries: torch.Tensor, tolerance_px: float) -> torch.Tensor:
    """Return (K, H, W) bool: pixels within tolerance_px (Euclidean) of a boundary pixel."""
    r = int(math.floor(tolerance_px))
    if r == 0:
        return boundaries
    axis = torch.arange(-r, r + 1, device=boundaries.device, dtype=torch.float32)
    disk = ((axis.view(-1, 1) ** 2 + axis.view(1, -1) ** 2) <= tolerance_px ** 2).float()
    hits = F.conv2d(boundaries.float().unsqueeze(1), disk.view(1, 1, 2 * r + 1, 2 * r + 1),
                    padding=r)
    return hits[:, 0] > 0


def boundary_f_scores(gt: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor, *,
                      num_classes: int, tolerance_px: float = 2.0) -> np.ndarray:
    """Return the per-class boundary F1 (BF score, Csurka et al. 2013) of one (H, W) frame.

    A class's boundary is its pixels with a 4-neighbour of another label. Precision: the share
    of predicted boundary pixels within `tolerance_px` of the true boundary; recall: the share
    of true boundary pixels within it of the predicted one; BF = 2PR / (P + R). Classes in
    neither the ground truth nor the prediction are NaN (left out, as for mIoU); a class in only
    one of them scores 0. Predicted pixels on ground truth UNLABELED_ID (or outside
    0..num_classes-1) are ignored. Runs on the inputs' device when they are tensors.
    """
    if num_classes < 1:
        raise MetricsError(f'num_classes must be >= 1, got {num_classes}')
    if not tolerance_px >= 0:
        raise MetricsError(f'tolerance_px must be >= 0, got {tolerance_px}')
    g = _label_tensor(gt, 'gt')
    p = _label_tensor(pred, 'pred').to(g.device)
    if g.shape != p.shape or g.ndim != 2:
        raise MetricsError(f'gt and pred must be (H, W) maps of one shape, got '
                           f'{tuple(g.shape)} and {tuple(p.shape)}')
    ids = torch.arange(num_classes, device=g.device)
    valid = (g >= 0) & (g < num_classes)
    g_edges = _class_boundaries(g, ids)
    p_edges = _class_boundaries(p, ids) & valid
    g_near = _within(g_edges, tolerance_px)
    p_near = _within(p_edges, tolerance_px)
    g_count = g_edges.flatten(1).sum(dim=1).double()
    p_count = p_edges.flatten(1).sum(dim=1).double()
    precision = (p_edges & g_near).flatten(1).sum(dim=1) / p_count.clamp(min=1)
    recall = (g_edges & p_near).flatten(1).sum(dim=1) / g_count.clamp(min=1)
    f1 = torch.where(precision + recall > 0,
                     2 * precision * recall / (precision + recall).clamp(min=1e-12),
                     torch.zeros_like(precision))
    in_gt = (g.unsqueeze(0) == ids.view(-1, 1, 1)).flatten(1).any(dim=1)
    in_pred = ((p.unsqueeze(0) == ids.view(-1, 1, 1)) & valid).flatten(1).any(dim=1)
    # a class in both without any boundary (it fills the whole frame in both) is perfect
    f1 = torch.where((g_count == 0) & (p_count == 0), (in_gt & in_pred).double(), f1)
    f1 = torch.where(in_gt | in_pred, f1, torch.full_like(f1, float('nan')))
    return f1.cpu().numpy()


@dataclass
class BoundaryScores:
    """Accumulate per-frame BF scores; report the mean over frames (Csurka's per-image mean).

    A frame's score is the mean BF over its classes (those in its ground truth or prediction).
    """

    num_classes: int
    tolerance_px: float = 2.0
    class_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise MetricsError(f'{len(self.class_names)} class names for {self.num_classes} '
                               'classes')
        self.per_frame: list[np.ndarray] = []

    def update(self, gt: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor) -> None:
        """Add one (H, W) frame or an (N, H, W) batch."""
        if gt.ndim == 2:
            gt, pred = gt[None], pred[None]
        for g, p in zip(gt, pred):
            self.per_frame.append(boundary_f_scores(g, p, num_classes=self.num_classes,
                                                    tolerance_px=self.tolerance_px))

    def summary(self) -> dict[str, Any]:
        """Return the mean BF score, the per-class means (over frames with the class), frames."""
        names = (list(self.class_names) if self.class_names
                 else [str(i) for i in range(self.num_classes)])
        if not self.per_frame:
            return {'bf_score': float('nan'), 'per_class_bf': dict.fromkeys(names),
                    'frames': 0, 'tolerance_px': self.tolerance_px}
        table = np.stack(self.per_frame)
        with np.errstate(invalid='ignore'):
            frame_means = [float(np.nanmean(row)) for row in table if not np.isnan(row).all()]
        per_class = {}
        for i, name in enumerate(names):
            column = table[:, i][~np.isnan(table[:, i])]
            per_class[name] = float(column.mean()) if column.size else None
        return {'bf_score': float(np.mean(frame_means)) if frame_means else float('nan'),
                'per_class_bf': per_class, 'frames': len(self.per_frame),
                'tolerance_px': self.tolerance_px}
