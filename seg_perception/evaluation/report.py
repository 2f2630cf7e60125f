"""Write an evaluation report folder: report.json, report.md and PNG plots (matplotlib, Agg).

Files: report.json (every number), report.md (tables, embeds the PNGs), confusion_matrix.png,
per_class_iou.png, latency_histogram.png, samples.png (a strip: image | ground truth |
prediction). Every file is written to a temporary name and renamed, so an interrupted run never
leaves a half-written report; a partial report says so (`partial: true`) at the top.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seg_perception.classes import ClassSet
from seg_perception.evaluation.accounting import check_accounting, DROP_REASONS

__all__ = ['ReportError', 'Sample', 'write_report', 'REPORT_JSON', 'REPORT_MD']

REPORT_JSON = 'report.json'
REPORT_MD = 'report.md'
PLOTS = {'confusion': 'confusion_matrix.png', 'iou': 'per_class_iou.png',
         'latency': 'latency_histogram.png', 'samples': 'samples.png'}


class ReportError(ValueError):
    """Raised when a report dictionary lacks what the writer needs."""


Sample = tuple[str, np.ndarray, 'np.ndarray | None', np.ndarray]  # title, rgb, gt|None, pred


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    """Return `value` with numpy scalars/arrays and NaN turned into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(out_dir: str | Path, report: dict[str, Any], *,
                 latencies_ms: Sequence[float] = (), samples: Sequence[Sample] = (),
                 class_set: ClassSet | None = None) -> dict[str, Path]:
    """Write report.json, report.md and the plots into `out_dir`; return name -> path.

    `report` holds 'title', 'accounting' (frames_in/processed/dropped, dropped_by_reason),
    optionally 'segmentation' (a SegmentationScores summary), 'latency' (latency_summary),
    'throughput_fps', 'partial', 'notes', 'warnings' and free-form 'source'/'model'/'details'.
    """
    if 'accounting' not in report:
        raise ReportError("report needs an 'accounting' section (frames in/processed/dropped)")
    check_accounting(report['accounting'])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib
    matplotlib.use('Agg')
    class_set = class_set or ClassSet.default()
    written: dict[str, Path] = {}
    seg = report.get('segmentation')
    if seg:
        written['confusion'] = _plot_confusion(out / PLOTS['confusion'], seg)
        written['iou'] = _plot_iou(out / PLOTS['iou'], seg, class_set)
    if len(latencies_ms):
        written['latency'] = _plot_latency(out / PLOTS['latency'], latencies_ms,
                                           report.get('latency') or {})
    if samples:
        written['samples'] = _plot_samples(out / PLOTS['samples'], samples, class_set)
    report = dict(report)
    report['files'] = {k: p.name for k, p in written.items()}
    clean = _jsonable(report)
    _atomic_write(out / REPORT_JSON, (json.dumps(clean, indent=2) + '\n').encode('utf-8'))
    written['json'] = out / REPORT_JSON
    _atomic_write(out / REPORT_MD, render_markdown(clean).encode('utf-8'))
    written['markdown'] = out / REPORT_MD
    return written


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """Return the Markdown text of a (JSON-clean) report."""
    lines = [f'# {report.get("title", "Evaluation report")}', '']
    if report.get('partial'):
        lines += ['> **Partial report**: the run was interrupted; the numbers cover the frames '
                  'handled before that.', '']
    for key in ('source', 'model'):
        if report.get(key):
            lines.append(f'**{key.capitalize()}**: ' + ', '.join(
                f'{k} `{v}`' for k, v in report[key].items()))
            lines.append('')
    acc = report['accounting']
    lines += ['## Frames', '', '| frames in | processed | dropped |', '|---:|---:|---:|',
              f'| {acc["frames_in"]} | {acc["frames_processed"]} | {acc["frames_dropped"]} |', '']
    if acc.get('dropped_by_reason'):
        lines += ['| dropped because | frames | meaning |', '|---|---:|---|']
        for reason, count in acc['dropped_by_reason'].items():
            lines.append(f'| {reason} | {count} | {DROP_REASONS.get(reason, "")} |')
        lines.append('')
    seg = report.get('segmentation')
    if seg:
        lines += ['## Segmentation', '',
                  f'mIoU **{_fmt(seg["miou"])}**, pixel accuracy **{_fmt(seg["pixel_accuracy"])}**'
                  f' over {seg["frames"]} scored frames.', '',
                  '| class | IoU | GT pixels % |', '|---|---:|---:|']
        conf = np.asarray(seg['confusion_matrix'], dtype=np.int64)
        gt_px = conf.sum(axis=1)
        total = max(int(gt_px.sum()), 1)
        for i, name in enumerate(seg['class_names']):
            lines.append(f'| {name} | {_fmt(seg["per_class_iou"].get(name))} | '
                         f'{100.0 * gt_px[i] / total:.2f} |')
        lines.append('')
    else:
        lines += ['## Segmentation', '', 'No ground truth: throughput and latency only.', '']
    comparison = report.get('offline_comparison')
    if comparison:
        lines += ['## Online vs. offline', '', '| evaluation | frames | mIoU |', '|---|---:|---:|']
        for row in comparison.get('rows', []):
            lines.append(f'| {row["name"]} | {row["frames"]} | {_fmt(row["miou"])} |')
        if comparison.get('difference') is not None:
            lines.append('')
            lines.append(f'Online - offline (same frames): {_fmt(comparison["difference"])}')
        lines.append('')
    lat = report.get('latency')
    lines += ['## Timing', '']
    if lat and lat.get('count'):
        lines += ['| frames/s | latency p50 | p95 | p99 | max |', '|---:|---:|---:|---:|---:|',
                  f'| {_fmt(report.get("throughput_fps"), 2)} | {_fmt(lat["p50_ms"], 1)} ms | '
                  f'{_fmt(lat["p95_ms"], 1)} ms | {_fmt(lat["p99_ms"], 1)} ms | '
                  f'{_fmt(lat["max_ms"], 1)} ms |', '']
        if lat.get('definition'):
            lines += [f'Latency: {lat["definition"]}', '']
    else:
        lines += [f'frames/s: {_fmt(report.get("throughput_fps"), 2)}; no latency figures.', '']
    files = report.get('files', {})
    pictures = [('Confusion matrix', 'confusion'), ('Per-class IoU', 'iou'),
                ('Latency', 'latency'), ('Samples (image, ground truth, prediction)', 'samples')]
    shown = [(title, files[key]) for title, key in pictures if key in files]
    if shown:
        lines += ['## Plots', '']
        for title, name in shown:
            lines += [f'### {title}', '', f'![{title}]({name})', '']
    for key, title in (('warnings', 'Warnings'), ('notes', 'Notes')):
        if report.get(key):
            lines += [f'## {title}', ''] + [f'- {item}' for item in report[key]] + ['']
    if report.get('details'):
        lines += ['## Details', '', '```json', json.dumps(report['details'], indent=2), '```', '']
    return '\n'.join(lines)


def _plot_confusion(path: Path, seg: dict[str, Any]) -> Path:
    import matplotlib.pyplot as plt
    conf = np.asarray(seg['confusion_matrix'], dtype=np.float64)
    rows = conf.sum(axis=1, keepdims=True)
    norm = np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0)
    names = seg['class_names']
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(names), 0.8 + 0.8 * len(names)))
    image = ax.imshow(norm, cmap='Blues', vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(names)), names, rotation=45, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel('predicted')
    ax.set_ylabel('ground truth')
    for i in range(len(names)):
        for j in range(len(names)):
            if conf[i, j] > 0:
                ax.text(j, i, f'{norm[i, j]:.2f}', ha='center', va='center', fontsize=8,
                        color='white' if norm[i, j] > 0.5 else 'black')
    ax.set_title('Confusion matrix (rows normalised)')
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def _plot_iou(path: Path, seg: dict[str, Any], class_set: ClassSet) -> Path:
    import matplotlib.pyplot as plt
    names = seg['class_names']
    values = [seg['per_class_iou'].get(n) for n in names]
    colours = []
    for name in names:
        try:
            colours.append(np.asarray(class_set.by_name(name).color) / 255.0)
        except Exception:  # noqa: B902 - a class the default set lacks: neutral grey
            colours.append((0.5, 0.5, 0.5))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 3.2))
    ax.bar(range(len(names)), [0.0 if v is None else v for v in values], color=colours,
           edgecolor='black')
    for i, v in enumerate(values):
        ax.text(i, (v or 0.0) + 0.02, 'n/a' if v is None else f'{v:.2f}', ha='center', fontsize=8)
    ax.axhline(seg['miou'] if seg['miou'] is not None else 0.0, color='red', linestyle='--',
               label=f'mIoU {_fmt(seg["miou"], 3)}')
    ax.set_xticks(range(len(names)), names, rotation=30, ha='right')
    ax.set_ylim(0.0, 1.1)
    ax.set_ylabel('IoU')
    ax.legend(loc='upper right', fontsize=8)
    ax.set_title('Per-class IoU')
    return _save(fig, path)


def _plot_latency(path: Path, latencies_ms: Sequence[float], lat: dict[str, Any]) -> Path:
    import matplotlib.pyplot as plt
    values = np.asarray(latencies_ms, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.hist(values, bins=min(40, max(5, values.size // 2)), color='tab:blue', edgecolor='black')
    for key, style in (('p50_ms', '-'), ('p95_ms', '--'), ('p99_ms', ':')):
        if lat.get(key) is not None:
            ax.axvline(lat[key], color='red', linestyle=style,
                       label=f'{key[:-3]} {lat[key]:.1f} ms')
    ax.set_xlabel('latency (ms)')
    ax.set_ylabel('frames')
    if lat:
        ax.legend(fontsize=8)
    ax.set_title(f'Latency ({values.size} frames)')
    return _save(fig, path)


def _plot_samples(path: Path, samples: Sequence[Sample], class_set: ClassSet) -> Path:
    import matplotlib.pyplot as plt
    palette = class_set.palette()
    columns = 3
    fig, axes = plt.subplots(len(samples), columns, figsize=(3.2 * columns, 2.5 * len(samples)),
                             squeeze=False)
    for row, (title, rgb, gt, pred) in enumerate(samples):
        panels = [('image', rgb),
                  ('ground truth', None if gt is None else palette[gt]),
                  ('prediction', (0.5 * rgb + 0.5 * palette[pred]).astype(np.uint8))]
        for col, (name, image) in enumerate(panels):
            ax = axes[row][col]
            ax.axis('off')
            if image is None:
                ax.text(0.5, 0.5, 'no ground truth', ha='center', va='center')
            else:
                ax.imshow(image)
            ax.set_title(f'{title}: {name}' if col == 0 else name, fontsize=8)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    tmp = path.with_name(f'.{path.stem}.tmp.png')
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return path
