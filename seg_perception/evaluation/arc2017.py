"""The real ARC 2017 frames (../shared/data) as a frames folder for `evaluate --mode frames`.

Three frames of the Amazon Robotics Challenge 2017 cell: the full tote and the two views of the
sparse bin. They have no labels, so the item mask is derived from the same camera's empty-tote
frame:

* an item pixel stands in front of the empty tote by more than 1 cm (an item only ever adds
  material in front of the empty surface); where the depth *receded* by more than 1 cm, something
  other than an item changed (the tote sits differently, a thing behind a handle hole moved), so
  the truth is unknown and the pixel is not scored;
* the mask is opened with a 3x3 kernel; patches under 150 pixels are not scored either
  (structured-light noise at depth edges, or a sliver of a dark item between invalid pixels:
  either way the depth difference alone cannot say which);
* in the two bin views, whose camera poses and bin position come with the data, only points
  inside the bin volume the data set's authors use (0.6 x 0.4 m around `bin-position.txt`, up to
  30 cm above its bottom as in their height-map code; from 10 cm below it, for calibration
  error) are this bin's items; things that changed in the neighbouring bins and shelves are
  scored as "not an item";
* pixels where either depth is invalid are not scored.

The transparent wine glass of the bin views is nearly invisible in depth, so the depth
difference cannot say where it is: its outline, drawn by hand on each colour image
(`GLASS_OUTLINES_PX`), is not scored, except where the depth difference finds an item (the
scissors lying on it). Before session 14 it was scored as "not an item" where depth saw through
it, which counted a grasp on the glass as a grasp on the bin. These frames are for evaluation
only: nothing is trained or tuned on them. Usage:

    python -m seg_perception.evaluation.arc2017 --data ../shared/data --out build/real/arc2017
"""

from __future__ import annotations

import argparse
from pathlib import Path
import shutil
import sys

import cv2
import numpy as np

from seg_perception.evaluation.real_tote import DEPTH_UNITS_PER_M, OBJECT_THRESHOLD_M
from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.depth import load_depth_file

#: Smallest connected patch of the depth-difference mask kept as an item, pixels.
MIN_ITEM_PIXELS = 150

#: The bin volume of the bin views around `bin-position.txt` (the bottom centre of the bin, in
#: the cell frame of `camera-N.pose.txt`): half length x, half width y, height range, metres.
#: The data set's authors build their height maps over this footprint (0.6 x 0.4 m, up to 0.3
#: m). The two cameras' calibrations put the bin floor up to ~6 cm below or above the stated
#: bottom, so the volume starts 10 cm below it: the footprint is what tells bins apart.
BIN_HALF_EXTENT_M = (0.3, 0.2)
BIN_HEIGHT_RANGE_M = (-0.1, 0.3)

#: The transparent wine glass of the bin views, outlined by hand on the colour images (x, y
#: pixels; mouth, bowl, stem and foot, traced on the 640x480 frames; nothing was fitted).
GLASS_OUTLINES_PX = {
    'bin_view0': ((217, 390), (245, 383), (300, 382), (335, 390), (350, 403), (436, 400),
                  (437, 372), (450, 367), (458, 385), (459, 440), (452, 458), (440, 456),
                  (436, 422), (350, 427), (330, 442), (300, 451), (240, 454), (217, 449)),
    'bin_view1': ((204, 96), (215, 91), (225, 108), (226, 120), (295, 118), (310, 107),
                  (335, 96), (360, 92), (393, 91), (397, 100), (397, 150), (390, 157),
                  (360, 160), (330, 158), (310, 152), (296, 138), (226, 136), (225, 150),
                  (216, 162), (207, 158), (203, 130)),
}

#: Pixels around a hand-drawn outline that are not scored either (the tracing's uncertainty).
OUTLINE_MARGIN_PX = 3

#: frame name -> (folder, colour, depth, empty depth, intrinsics, pose), relative to the data
#: folder; pose None: no bin volume is known (the full tote).
FRAMES = {
    'tote': ('arc2017_tote', 'test-image.color.png', 'test-image.depth.png',
             'test-background.depth.png', 'test-camera-intrinsics.txt', None),
    'bin_view0': ('arc2017_bin_views', 'input-0.color.png', 'input-0.depth.png',
                  'background-0.depth.png', 'camera-0.intrinsics.txt', 'camera-0.pose.txt'),
    'bin_view1': ('arc2017_bin_views', 'input-1.color.png', 'input-1.depth.png',
                  'background-1.depth.png', 'camera-1.intrinsics.txt', 'camera-1.pose.txt'),
}


def load_depth(path: Path) -> np.ndarray:
    """Return an ARC depth PNG (0.1 mm units) as float32 metres, NaN invalid."""
    return load_depth_file(path, units_per_m=DEPTH_UNITS_PER_M)


def in_bin_volume(depth_m: np.ndarray, K: np.ndarray, cell_from_camera: np.ndarray,
                  bin_bottom_centre: np.ndarray) -> np.ndarray:
    """Return (H, W) bool: pixels whose point lies in the bin volume (False where invalid)."""
    height, width = depth_m.shape
    camera = BackProjector(PinholeCamera.from_matrix(K, width, height)).organized(depth_m)
    cell = camera.astype(np.float64) @ cell_from_camera[:3, :3].T + cell_from_camera[:3, 3]
    rel = cell - bin_bottom_centre
    with np.errstate(invalid='ignore'):
        return ((np.abs(rel[..., 0]) <= BIN_HALF_EXTENT_M[0])
                & (np.abs(rel[..., 1]) <= BIN_HALF_EXTENT_M[1])
                & (rel[..., 2] > BIN_HEIGHT_RANGE_M[0]) & (rel[..., 2] <= BIN_HEIGHT_RANGE_M[1]))


def item_mask(depth_m: np.ndarray, empty_m: np.ndarray,
              in_bin: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (item mask, scored mask) from a frame and its empty-tote frame.

    `in_bin`: the pixels inside the bin volume, where it is known (items elsewhere are not this
    bin's). See the module docstring for the rules.
    """
    valid = np.isfinite(depth_m) & np.isfinite(empty_m)
    with np.errstate(invalid='ignore'):
        nearer = valid & (empty_m - depth_m > OBJECT_THRESHOLD_M)
        receded = valid & (depth_m - empty_m > OBJECT_THRESHOLD_M)
    if in_bin is not None:
        nearer &= in_bin
        receded &= in_bin
    opened = cv2.morphologyEx(nearer.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    big = np.zeros(count, dtype=bool)
    big[1:] = stats[1:, cv2.CC_STAT_AREA] >= MIN_ITEM_PIXELS
    items = big[labels]
    unknown = receded | (nearer & ~items)
    return items, valid & ~unknown


def outline_mask(outline_px: tuple[tuple[int, int], ...], shape: tuple[int, int],
                 margin_px: int = OUTLINE_MARGIN_PX) -> np.ndarray:
    """Return (H, W) bool: the filled polygon `outline_px` (x, y), grown by `margin_px`."""
    mask = np.zeros(shape, np.uint8)
    polygon = np.asarray(outline_px, np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [polygon], 1)
    if margin_px > 0:
        cv2.polylines(mask, [polygon], True, 1, thickness=2 * margin_px + 1)
    return mask.astype(bool)


def load_frame(data: Path, stem: str) -> dict[str, np.ndarray]:
    """Return one frame's depth and empty depth (metres), K and its item / scored masks."""
    sub, _, depth, empty, intrinsics, pose = FRAMES[stem]
    src = Path(data) / sub
    depth_m, empty_m = load_depth(src / depth), load_depth(src / empty)
    K = np.loadtxt(src / intrinsics).reshape(3, 3)
    in_bin = None
    if pose is not None:
        in_bin = in_bin_volume(depth_m, K, np.loadtxt(src / pose).reshape(4, 4),
                               np.loadtxt(src / 'bin-position.txt').reshape(3))
    items, scored = item_mask(depth_m, empty_m, in_bin)
    if stem in GLASS_OUTLINES_PX:   # invisible in depth: not scored unless depth sees an item
        scored &= items | ~outline_mask(GLASS_OUTLINES_PX[stem], depth_m.shape)
    return {'depth_m': depth_m, 'empty_m': empty_m, 'K': K, 'items': items, 'scored': scored}


def export(data: Path, out: Path) -> list[str]:
    """Write images/, masks/, ignore/, depth/, empty/ and intrinsics/ into `out`; return stems."""
    folders = {name: out / name for name in ('images', 'masks', 'ignore', 'depth', 'empty',
                                             'intrinsics')}
    if out.exists():
        shutil.rmtree(out)
    for folder in folders.values():
        folder.mkdir(parents=True)
    for stem, (sub, colour, _, _, intrinsics, _) in FRAMES.items():
        src = data / sub
        frame = load_frame(data, stem)
        shutil.copyfile(src / colour, folders['images'] / f'{stem}.png')
        cv2.imwrite(str(folders['masks'] / f'{stem}.png'), frame['items'].astype(np.uint8) * 255)
        cv2.imwrite(str(folders['ignore'] / f'{stem}.png'),
                    (~frame['scored']).astype(np.uint8) * 255)
        np.save(folders['depth'] / f'{stem}.npy', frame['depth_m'])
        np.save(folders['empty'] / f'{stem}.npy', frame['empty_m'])
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
