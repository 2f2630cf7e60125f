"""The real ARC 2017 frames (../shared/data) as a frames folder for `evaluate --mode frames`.

Three frames of the Amazon Robotics Challenge 2017 cell: the full tote and the two views of the
sparse bin. They have no labels, so the item mask is where the depth differs from the same
camera's empty-tote frame by more than 1 cm, opened with a 3x3 kernel and without specks under
150 pixels (structured-light noise at depth edges); pixels where either depth is invalid are not
scored. The transparent wine glass of the bin views is nearly invisible in depth, so it is mostly
absent from the mask: it is scored as "not an item" where depth sees through it. These frames are
for evaluation only: nothing is trained or tuned on them. Usage:

    python -m seg_perception.evaluation.arc2017 --data ../shared/data --out build/real/arc2017
"""

from __future__ import annotations

import argparse
from pathlib import Path
import shutil
import sys

import cv2
import numpy as np

from seg_perception.evaluation.real_tote import DEPTH_UNITS_PER_M, object_mask
from seg_perception.grasp.depth import load_depth_file

#: Smallest connected patch of the depth-difference mask kept as an item, pixels.
MIN_ITEM_PIXELS = 150

#: frame name -> (folder, colour, depth, empty depth, intrinsics), relative to the data folder.
FRAMES = {
    'tote': ('arc2017_tote', 'test-image.color.png', 'test-image.depth.png',
             'test-background.depth.png', 'test-camera-intrinsics.txt'),
    'bin_view0': ('arc2017_bin_views', 'input-0.color.png', 'input-0.depth.png',
                  'background-0.depth.png', 'camera-0.intrinsics.txt'),
    'bin_view1': ('arc2017_bin_views', 'input-1.color.png', 'input-1.depth.png',
                  'background-1.depth.png', 'camera-1.intrinsics.txt'),
}


def load_depth(path: Path) -> np.ndarray:
    """Return an ARC depth PNG (0.1 mm units) as float32 metres, NaN invalid."""
    return load_depth_file(path, units_per_m=DEPTH_UNITS_PER_M)


def item_mask(depth_m: np.ndarray, empty_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (item mask, scored mask) from a frame and its empty-tote frame."""
    raw, tote = object_mask(depth_m, empty_m)
    scored = raw | tote
    opened = cv2.morphologyEx(raw.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    big = np.zeros(count, dtype=bool)
    big[1:] = stats[1:, cv2.CC_STAT_AREA] >= MIN_ITEM_PIXELS
    return big[labels], scored


def export(data: Path, out: Path) -> list[str]:
    """Write images/, masks/, ignore/, depth/, empty/ and intrinsics/ into `out`; return stems."""
    folders = {name: out / name for name in ('images', 'masks', 'ignore', 'depth', 'empty',
                                             'intrinsics')}
    if out.exists():
        shutil.rmtree(out)
    for folder in folders.values():
        folder.mkdir(parents=True)
    for stem, (sub, colour, depth, empty, intrinsics) in FRAMES.items():
        src = data / sub
        depth_m, empty_m = load_depth(src / depth), load_depth(src / empty)
        mask, scored = item_mask(depth_m, empty_m)
        shutil.copyfile(src / colour, folders['images'] / f'{stem}.png')
        cv2.imwrite(str(folders['masks'] / f'{stem}.png'), mask.astype(np.uint8) * 255)
        cv2.imwrite(str(folders['ignore'] / f'{stem}.png'), (~scored).astype(np.uint8) * 255)
        np.save(folders['depth'] / f'{stem}.npy', depth_m)
        np.save(folders['empty'] / f'{stem}.npy', empty_m)
        shutil.copyfile(src / intrinsics, folders['intrinsics'] / f'{stem}.txt')
    return list(FRAMES)


def main(argv: list[str] | None = None) -> int:
    """Export the ARC frames; exit 1 with a one-line reason when the data is not there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=Path('../shared/data'),
                        help='folder holding arc2017_tote/ and arc2017_bin_views/')
    parser.add_argument('--out', type=Path, default=Path('build/real/arc2017'))
    args = parser.parse_args(argv)
    try:
        stems = export(args.data, args.out)
    except (OSError, ValueError) as exc:
        print(f'arc2017: error: {exc}', file=sys.stderr)
        return 1
    print(f'wrote {len(stems)} frames ({", ".join(stems)}) to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
