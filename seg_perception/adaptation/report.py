"""The adaptation report: report.json, report.md and its pictures.

pseudo_labels.png shows what the fine-tuning learned from (image | pseudo-label | ignored
pixels in magenta); before_after.png the model's labels on held-out bag frames before and
after adaptation; curves.png the training loss and the validation mIoU against the
pseudo-labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from seg_perception.classes import ClassSet
from seg_perception.constants import UNLABELED_ID

#: colour of ignored pixels in the pictures
IGNORED_RGB = (255, 0, 255)


def colour_labels(labels: np.ndarray, class_set: ClassSet) -> np.ndarray:
    """Return an RGB picture of class ids (ignored pixels magenta)."""
    lut = class_set.palette()
    lut[UNLABELED_ID] = IGNORED_RGB
    return lut[labels]


def pseudo_label_strip(samples: Sequence[tuple[np.ndarray, np.ndarray]],
                       class_set: ClassSet) -> np.ndarray:
    """Return rows of image | pseudo-label | ignored pixels for (rgb, labels) samples."""
    rows = []
    for rgb, labels in samples:
        ignored = np.zeros_like(rgb)
        ignored[labels == UNLABELED_ID] = IGNORED_RGB
        ignored = cv2.addWeighted(rgb, 0.35, ignored, 0.65, 0.0)
        rows.append(np.concatenate([rgb, colour_labels(labels, class_set), ignored], axis=1))
    return np.concatenate(rows, axis=0)


def before_after_strip(samples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                       class_set: ClassSet) -> np.ndarray:
    """Return rows of image | labels before | labels after for (rgb, before, after) samples."""
    rows = [np.concatenate([rgb, colour_labels(before, class_set),
                            colour_labels(after, class_set)], axis=1)
            for rgb, before, after in samples]
    return np.concatenate(rows, axis=0)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB picture as PNG."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {path}')


def _fmt(value: Any) -> str:
    return 'n/a' if value is None else f'{value:.3f}'


def write_report(folder: Path, report: dict[str, Any]) -> None:
    """Write report.json and report.md (the pictures are written beside them by the CLI)."""
    (folder / 'report.json').write_text(json.dumps(report, indent=2) + '\n', encoding='utf-8')
    pl = report['pseudo_labels']
    syn = report['synthetic']
    val = report['validation']
    lines = [
        '# Adaptation report', '',
        f'Command: `{report["command"]}`', '',
        f'Bag `{report["bag"]}`: {report["frames"]["read"]} RGB-D frames read, '
        f'{report["frames"]["usable"]} with pseudo-labels ({report["frames"]["train"]} for '
        f'fine-tuning, {report["frames"]["val"]} held out: the last part of the bag), '
        f'{report["frames"]["synthetic_mix"]} synthetic frames mixed in '
        f'(style `{report["synthetic_style"]}`). Container mode: {report["container_mode"]}.', '',
        '## Pseudo-labels', '',
        '| | value |', '|---|---:|',
        f'| labelled pixels (item / container / other) | {pl["item_px"]} / {pl["container_px"]} '
        f'/ {pl["background_px"]} |',
        f'| ignored share | {pl["ignored_share"]:.3f} |',
        f'| item instances kept / ignored | {pl["instances"]} / {pl["ignored_instances"]} |',
        '',
    ]
    if pl.get('unusable_reasons'):
        lines += ['Frames without pseudo-labels: ' + '; '.join(
            f'{count} x {reason}' for reason, count in pl['unusable_reasons'].items()), '']
    lines += [
        '![image | pseudo-label | ignored pixels (magenta)](pseudo_labels.png)', '',
        '## Before and after', '',
        '| | before | after |', '|---|---:|---:|',
        f'| held-out bag frames: mIoU vs. pseudo-labels | {_fmt(val["before_miou"])} | '
        f'{_fmt(val["after_miou"])} |',
        f'| synthetic held-out mIoU ({syn["frames"]} frames, style `{syn["style"]}`) | '
        f'{_fmt(syn["before"]["miou"])} | {_fmt(syn["after"]["miou"])} |',
        f'| synthetic held-out item IoU | {_fmt(syn["before"]["item_iou"])} | '
        f'{_fmt(syn["after"]["item_iou"])} |', '',
        f'Synthetic mIoU change: {syn["miou_change"]:+.3f} (forgetting check).', '',
        '![held-out bag frames: image | before | after](before_after.png)', '',
        '![training curves](curves.png)', '',
        f'Training: {report["training"]["iterations"]} iterations in '
        f'{report["training"]["train_seconds"]:.0f} s ({report["training"]["world_size"]} '
        f'process(es)); total {report["seconds"]["total"]:.0f} s '
        f'(pseudo-labels {report["seconds"]["pseudo_labels"]:.0f} s).', '',
        'Load it with `model:=' + report['model'] + '`.', '',
    ]
    (folder / 'report.md').write_text('\n'.join(lines), encoding='utf-8')
