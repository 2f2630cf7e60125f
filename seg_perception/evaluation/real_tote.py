"""Check a model on the real ARC 2017 tote frame, whose only ground truth is depth.

The object mask is where the depth of the cluttered tote differs from the empty tote by more than
1 cm (both valid); the rest of the valid pixels is the tote. We report the fraction of object
pixels labelled as any item class and of tote pixels labelled tote (or background), and draw the
overlay. Usage:

    python -m seg_perception.evaluation.real_tote --data ../shared/data/arc2017_tote \
        --model default --out build/eval/real_tote
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Any

import cv2
import numpy as np

#: Depth PNGs of the data set store 0.1 mm units (README of the data set).
DEPTH_UNITS_PER_M = 10000.0
#: Depth change from the empty tote that marks an object, metres.
OBJECT_THRESHOLD_M = 0.01


def load_tote_frame(folder: Path) -> dict[str, np.ndarray]:
    """Load colour, depth (metres, NaN invalid) of the cluttered and empty tote, and K."""
    names = {'rgb': 'test-image.color.png', 'depth': 'test-image.depth.png',
             'background_depth': 'test-background.depth.png',
             'K': 'test-camera-intrinsics.txt'}
    missing = [n for n in names.values() if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f'{folder}: missing {", ".join(missing)}')
    bgr = cv2.imread(str(folder / names['rgb']), cv2.IMREAD_COLOR)
    frame = {'rgb': cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
             'K': np.loadtxt(folder / names['K']).reshape(3, 3)}
    for key in ('depth', 'background_depth'):
        raw = cv2.imread(str(folder / names[key]), cv2.IMREAD_UNCHANGED).astype(np.float32)
        frame[key] = np.where(raw > 0, raw / DEPTH_UNITS_PER_M, np.nan).astype(np.float32)
    return frame


def object_mask(depth_m: np.ndarray, background_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (object, tote) boolean masks from the depth difference to the empty tote."""
    valid = np.isfinite(depth_m) & np.isfinite(background_m)
    objects = valid & (np.abs(depth_m - background_m) > OBJECT_THRESHOLD_M)
    return objects, valid & ~objects


def score_labels(labels: np.ndarray, objects: np.ndarray, tote: np.ndarray,
                 item_ids: list[int], surface_ids: list[int]) -> dict[str, Any]:
    """Return the agreement of predicted labels with the depth-derived object/tote masks."""
    is_item = np.isin(labels, item_ids)
    is_surface = np.isin(labels, surface_ids)
    return {
        'object_pixels': int(objects.sum()), 'tote_pixels': int(tote.sum()),
        'object_labelled_item': float(is_item[objects].mean()) if objects.any() else None,
        'tote_labelled_surface': float(is_surface[tote].mean()) if tote.any() else None,
        'predicted_item_fraction': float(is_item.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    """Evaluate a model on the real tote frame; print the figures, write JSON and an overlay."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=Path('../shared/data/arc2017_tote'),
                        help='folder of the ARC 2017 tote frame')
    parser.add_argument('--model', default='default', help='model name or file')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', type=Path, default=Path('build/eval/real_tote'))
    args = parser.parse_args(argv)
    from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
    try:
        frame = load_tote_frame(args.data)
        engine = SegmentationEngine(EngineConfig(model=args.model, device=args.device,
                                                 upsample='bilinear'))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f'real_tote: error: {exc}', file=sys.stderr)
        return 1
    result = engine.segment([frame['rgb']], overlay=True, overlay_alpha=0.5)[0]
    objects, tote = object_mask(frame['depth'], frame['background_depth'])
    classes = engine.class_set
    item_ids = [c.id for c in classes.graspable()]
    surface_ids = [c.id for c in classes if not c.graspable]
    figures = score_labels(result.labels, objects, tote, item_ids, surface_ids)
    figures.update(model=engine.model_name, data=str(args.data),
                   class_fractions={c.name: float(np.mean(result.labels == c.id))
                                    for c in classes})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'real_tote.json').write_text(json.dumps(figures, indent=2))
    outline = cv2.morphologyEx(objects.astype(np.uint8), cv2.MORPH_GRADIENT,
                               np.ones((3, 3), np.uint8)).astype(bool)
    picture = np.concatenate([frame['rgb'], result.overlay], axis=1)
    picture[:, frame['rgb'].shape[1]:][outline] = (255, 255, 255)
    cv2.imwrite(str(args.out / 'real_tote_overlay.png'), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    print(f'object pixels labelled as an item class: {figures["object_labelled_item"]:.3f}')
    print(f'tote pixels labelled as tote/background: {figures["tote_labelled_surface"]:.3f}')
    print(f'written: {args.out / "real_tote.json"}, {args.out / "real_tote_overlay.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
