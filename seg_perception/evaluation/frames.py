"""Evaluate a model on a folder of real labelled frames: item-vs-rest IoU, and grasps on items.

Anyone with a camera can measure what matters on their own cell without our synthetic world:
how well the labels separate items from everything else, and (with depth) how many grasp
candidates the full pipeline puts on real items. Folder format (stems match across folders):

    images/<stem>.png|jpg        colour frames (any size)
    masks/<stem>.png             item mask, same size: nonzero = item
    ignore/<stem>.png            optional: nonzero = not scored (e.g. invalid depth)
    depth/<stem>.png|npy         with --grasp: uint16 PNG in --depth-units-per-m, or float32
                                 metres .npy (0 / NaN = invalid), registered to the colour
    intrinsics/<stem>.txt        with --grasp: 3x3 K (or one file given to --intrinsics)
    empty/<stem>.png|npy         with --container reference: the empty container, same camera

The report (report.json, report.md, overlays/<stem>.png) goes to --out, written in a temporary
folder and renamed at the end, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
import shutil
import tempfile
from typing import Any, Sequence

import cv2
import numpy as np

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')


class FramesError(ValueError):
    """A frames folder that cannot be evaluated (the message says what is wrong)."""


@dataclass(frozen=True)
class LabelledFrame:
    """One real frame: colour, item mask, scored pixels, and optionally depth and intrinsics."""

    stem: str
    rgb: np.ndarray                      # (H, W, 3) uint8
    item_mask: np.ndarray                # (H, W) bool
    scored: np.ndarray                   # (H, W) bool
    depth_m: np.ndarray | None = None    # (H, W) float32, NaN invalid
    K: np.ndarray | None = None          # (3, 3)
    empty_depth_m: np.ndarray | None = None


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FramesError(f'{path}: not a readable image')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise FramesError(f'{path}: not a readable image')
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.shape != shape:
        raise FramesError(f'{path}: mask is {mask.shape[1]}x{mask.shape[0]}, image is '
                          f'{shape[1]}x{shape[0]}')
    return mask != 0


def read_depth(path: Path, units_per_m: float, shape: tuple[int, int] | None) -> np.ndarray:
    """Return float32 metres (NaN invalid) from a uint16 PNG or a float32 .npy file."""
    from seg_perception.grasp.depth import load_depth_file
    try:
        return load_depth_file(path, units_per_m=units_per_m, shape=shape)
    except ValueError as exc:
        raise FramesError(str(exc)) from exc


def _find(folder: Path, stem: str, suffixes: Sequence[str]) -> Path | None:
    for suffix in suffixes:
        path = folder / f'{stem}{suffix}'
        if path.is_file():
            return path
    return None


def load_frames(images: Path, masks: Path, *, ignore: Path | None = None,
                depth: Path | None = None, intrinsics: Path | None = None,
                empty: Path | None = None, depth_units_per_m: float = 1000.0
                ) -> list[LabelledFrame]:
    """Load every image of `images` with its mask (and the other files that were asked for)."""
    for name, folder in (('images', images), ('masks', masks)):
        if not folder.is_dir():
            raise FramesError(f'{name} folder {folder} does not exist')
    stems = sorted(p.stem for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not stems:
        raise FramesError(f'no .png/.jpg images in {images}')
    frames = []
    for stem in stems:
        rgb = _read_rgb(_find(images, stem, IMAGE_SUFFIXES))
        shape = rgb.shape[:2]
        mask_path = _find(masks, stem, ('.png',))
        if mask_path is None:
            raise FramesError(f'no mask {masks / (stem + ".png")} for image {stem}')
        scored = np.ones(shape, dtype=bool)
        if ignore is not None:
            ignore_path = _find(ignore, stem, ('.png',))
            if ignore_path is not None:
                scored = ~_read_mask(ignore_path, shape)
        extra: dict[str, Any] = {}
        if depth is not None:
            path = _find(depth, stem, ('.png', '.npy'))
            if path is None:
                raise FramesError(f'no depth for {stem} in {depth}')
            extra['depth_m'] = read_depth(path, depth_units_per_m, shape)
            k_path = intrinsics if intrinsics is not None and intrinsics.is_file() else (
                _find(intrinsics, stem, ('.txt',)) if intrinsics is not None else None)
            if k_path is None:
                raise FramesError(f'no intrinsics for {stem} (give --intrinsics FILE or DIR)')
            try:
                K = np.loadtxt(k_path).reshape(3, 3)
            except ValueError as exc:
                raise FramesError(f'{k_path}: not a 3x3 matrix ({exc})') from exc
            if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
                raise FramesError(f'{k_path}: intrinsics must be finite with fx, fy > 0')
            extra['K'] = K
        if empty is not None:
            path = _find(empty, stem, ('.png', '.npy'))
            if path is None:
                raise FramesError(f'no empty-container depth for {stem} in {empty}')
            extra['empty_depth_m'] = read_depth(path, depth_units_per_m, shape)
        frames.append(LabelledFrame(stem=stem, rgb=rgb, item_mask=_read_mask(mask_path, shape),
                                    scored=scored, **extra))
    return frames


def item_scores(predicted: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> dict[str, Any]:
    """Return item-vs-rest IoU, precision and recall over the scored pixels."""
    p, t = predicted & scored, truth & scored
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return {'iou': tp / (tp + fp + fn) if tp + fp + fn else None,
            'precision': tp / (tp + fp) if tp + fp else None,
            'recall': tp / (tp + fn) if tp + fn else None,
            'true_positive_px': tp, 'false_positive_px': fp, 'false_negative_px': fn}


def candidate_hits(candidates: Sequence[Any], truth: np.ndarray,
                   scored: np.ndarray | None = None) -> tuple[int, list[bool | None]]:
    """Return (scored count, per-candidate hit): a hit is a candidate on an item pixel.

    A candidate on a pixel that is not scored (the truth there is unknown: ignore mask) is
    neither a hit nor a miss: its entry is None and it is left out of the count.
    """
    hits: list[bool | None] = []
    height, width = truth.shape
    for c in candidates:
        u, v = int(c.pixel[0]), int(c.pixel[1])
        inside = 0 <= u < width and 0 <= v < height
        if inside and scored is not None and not scored[v, u]:
            hits.append(None)
        else:
            hits.append(bool(inside and truth[v, u]))
    return sum(h is not None for h in hits), hits


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _overlay(frame: LabelledFrame, predicted: np.ndarray, gated: np.ndarray | None,
             candidates: Sequence[Any], hits: list[bool | None], container: Any) -> np.ndarray:
    """Return the report picture: labels, then the container step's output.

    Green: item labelled item, red: labelled item but not one, blue: item missed; the second
    panel adds the container planes' outlines and the candidates.
    """
    def paint(item: np.ndarray) -> np.ndarray:
        img = frame.rgb.copy()
        truth = frame.item_mask & frame.scored
        for sel, colour in ((item & truth, (0, 200, 0)), (item & ~truth & frame.scored,
                                                          (230, 30, 30)),
                            (~item & truth, (40, 90, 255))):
            img[sel] = (0.45 * img[sel] + 0.55 * np.array(colour)).astype(np.uint8)
        return img
    panels = [paint(predicted)]
    if gated is not None:
        img = paint(gated)
        if container is not None and frame.K is not None:
            K = frame.K
            for plane in container.planes:
                pts = plane.outline_m
                if np.all(pts[:, 2] > 0.05):
                    uv = pts[:, :2] / pts[:, 2:3] * (K[0, 0], K[1, 1]) + (K[0, 2], K[1, 2])
                    cv2.polylines(img, [np.round(uv).astype(np.int32)], True, (255, 255, 0), 2)
        for c, hit in zip(candidates, hits):
            colour = (255, 255, 255) if hit is None else (0, 255, 0) if hit else (255, 0, 0)
            cv2.circle(img, (int(c.pixel[0]), int(c.pixel[1])), 9, colour, 2)
        panels.append(img)
    return np.concatenate(panels, axis=1)


def evaluate_frames(frames: Sequence[LabelledFrame], *, model: str = 'default',
                    device: str = 'cpu', grasp: bool = False, container_mode: str = 'auto',
                    out: Path | None = None, progress: Any = None) -> dict[str, Any]:
    """Segment every frame; score items; with `grasp`, run the grasp pipeline on the labels."""
    from seg_perception.grasp import GraspPipeline, PinholeCamera
    from seg_perception.grasp.backprojection import BackProjector
    from seg_perception.grasp.container import container_keep_mask, ContainerConfig
    from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine

    engine = SegmentationEngine(EngineConfig(model=model, device=device, upsample='bilinear'))
    item_ids = [c.id for c in engine.class_set.graspable()]
    per_frame: list[dict[str, Any]] = []
    pictures: dict[str, np.ndarray] = {}
    for k, frame in enumerate(frames):
        labels = engine.segment([frame.rgb])[0].labels
        predicted = np.isin(labels, item_ids)
        scores = item_scores(predicted, frame.item_mask, frame.scored)
        row: dict[str, Any] = {'stem': frame.stem, 'labels': scores}
        gated, candidates, hits, container = None, [], [], None
        if grasp:
            if frame.depth_m is None or frame.K is None:
                raise FramesError(f'{frame.stem}: --grasp needs depth and intrinsics')
            height, width = frame.depth_m.shape
            camera = PinholeCamera.from_matrix(frame.K, width, height)
            config = ContainerConfig(mode=container_mode)
            pipeline = GraspPipeline(class_set=engine.class_set, container=config)
            if container_mode == 'reference':
                if frame.empty_depth_m is None:
                    raise FramesError(f'{frame.stem}: --container reference needs --empty')
                projector = BackProjector(camera)
                pipeline.container.set_reference(frame.empty_depth_m,
                                                 projector.organized(frame.empty_depth_m))
            result = pipeline.process(labels, frame.depth_m, camera, rgb=frame.rgb)
            candidates = result.candidates
            count, hits = candidate_hits(candidates, frame.item_mask, frame.scored)
            container = result.container
            gated = predicted.copy()
            if container is not None:
                xyz = BackProjector(camera).organized(frame.depth_m)
                index = np.flatnonzero(predicted & np.isfinite(frame.depth_m))
                gated.ravel()[index] = container_keep_mask(container, xyz, frame.depth_m,
                                                           index, config)
            row['after_container'] = item_scores(gated, frame.item_mask, frame.scored)
            on_items = sum(h is True for h in hits)
            row['grasp'] = {'candidates': count, 'on_items': on_items,
                            'unscored_candidates': len(hits) - count,
                            'on_items_share': on_items / count if count else None,
                            'container': (result.container_status.summary()
                                          if result.container_status else None),
                            'container_planes': container.summary() if container else None}
        per_frame.append(row)
        pictures[frame.stem] = _overlay(frame, predicted, gated, candidates, hits, container)
        if progress is not None:
            progress(k + 1, len(frames))
    summary: dict[str, Any] = {
        'model': model, 'frames': len(frames), 'container_mode': container_mode if grasp else None,
        'item_iou_mean': _mean([r['labels']['iou'] for r in per_frame]),
        'item_precision_mean': _mean([r['labels']['precision'] for r in per_frame]),
        'item_recall_mean': _mean([r['labels']['recall'] for r in per_frame]),
        'per_frame': per_frame}
    if grasp:
        total = sum(r['grasp']['candidates'] for r in per_frame)
        on = sum(r['grasp']['on_items'] for r in per_frame)
        unscored = sum(r['grasp']['unscored_candidates'] for r in per_frame)
        summary.update({
            'unscored_candidates': unscored,
            'after_container_item_iou_mean': _mean([r['after_container']['iou']
                                                    for r in per_frame]),
            'candidates': total, 'candidates_on_items': on,
            'candidates_on_items_share': on / total if total else None})
    if out is not None:
        write_report(summary, pictures, out)
    return summary


def _fmt(value: Any) -> str:
    return '-' if value is None else (f'{value:.3f}' if isinstance(value, float) else str(value))


def write_report(summary: dict[str, Any], pictures: dict[str, np.ndarray], out: Path) -> None:
    """Write report.json, report.md and overlays/ into `out` atomically (temp folder, rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    try:
        (tmp / 'overlays').mkdir()
        for stem, img in pictures.items():
            cv2.imwrite(str(tmp / 'overlays' / f'{stem}.png'), cv2.cvtColor(img,
                                                                            cv2.COLOR_RGB2BGR))
        (tmp / 'report.json').write_text(json.dumps(summary, indent=2) + '\n')
        grasp = 'candidates' in summary
        lines = [f'# Real frames: {summary["frames"]} frames, model `{summary["model"]}`', '',
                 'Item-vs-rest scores of the labels (item = any class with grasp modes), over the '
                 'scored pixels.' + (f' Container mode `{summary["container_mode"]}`.'
                                     if grasp else ''), '']
        head = '| frame | IoU | precision | recall |'
        rule = '|---|---|---|---|'
        if grasp:
            head += ' IoU after container | candidates | on items |'
            rule += '---|---|---|'
        lines += [head, rule]
        for r in summary['per_frame']:
            line = (f'| {r["stem"]} | {_fmt(r["labels"]["iou"])} | '
                    f'{_fmt(r["labels"]["precision"])} | {_fmt(r["labels"]["recall"])} |')
            if grasp:
                line += (f' {_fmt(r["after_container"]["iou"])} | {r["grasp"]["candidates"]} | '
                         f'{r["grasp"]["on_items"]} |')
            lines.append(line)
        lines.append(f'| **mean** | {_fmt(summary["item_iou_mean"])} | '
                     f'{_fmt(summary["item_precision_mean"])} | '
                     f'{_fmt(summary["item_recall_mean"])} |' + (
                         f' {_fmt(summary["after_container_item_iou_mean"])} | '
                         f'{summary["candidates"]} | {summary["candidates_on_items"]} '
                         f'({_fmt(summary["candidates_on_items_share"])}) |' if grasp else ''))
        if grasp and summary['unscored_candidates']:
            lines += ['', f'{summary["unscored_candidates"]} more candidates lie on pixels '
                      'that are not scored (the truth there is unknown) and are not counted.']
        lines += ['', 'Pictures: green = item pixel labelled item, red = labelled item but not '
                  'one, blue = item missed' + ('; right: after the container step, with the '
                                               'container planes (cyan) and the candidates '
                                               '(green on an item, red not, white on an '
                                               'unscored pixel)' if grasp else '')
                  + '.', '']
        lines += [f'![{stem}](overlays/{stem}.png)' for stem in pictures]
        (tmp / 'report.md').write_text('\n'.join(lines) + '\n')
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
