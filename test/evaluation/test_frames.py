"""`seg_perception evaluate --mode frames`: real-frame folders, scores, grasps, bad input."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

from seg_perception.evaluation.frames import (candidate_hits, FramesError, item_scores,
                                              load_frames)
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

REPO = Path(__file__).resolve().parents[2]


def write_folder(root: Path, count: int = 2) -> Path:
    """Write synthetic frames in the documented folder format (mask = item instances)."""
    cell = SyntheticCell(SyntheticConfig(tote_probability=1.0))
    for name in ('images', 'masks', 'depth', 'intrinsics', 'ignore'):
        (root / name).mkdir(parents=True)
    for k in range(count):
        frame = cell.render(100000 + k)
        stem = f'frame{k}'
        cv2.imwrite(str(root / 'images' / f'{stem}.png'), frame.rgb[..., ::-1])
        cv2.imwrite(str(root / 'masks' / f'{stem}.png'), (frame.instances > 0).astype(np.uint8))
        cv2.imwrite(str(root / 'ignore' / f'{stem}.png'),
                    (~np.isfinite(frame.depth_m)).astype(np.uint8) * 255)
        np.save(root / 'depth' / f'{stem}.npy', frame.depth_m)
        np.savetxt(root / 'intrinsics' / f'{stem}.txt', frame.K)
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'seg_perception.cli', 'evaluate', '--mode',
                           'frames', *args], capture_output=True, text=True, cwd=REPO,
                          timeout=600)


def test_item_scores_and_hits() -> None:
    truth = np.zeros((4, 4), bool)
    truth[:2] = True
    predicted = np.zeros((4, 4), bool)
    predicted[1:3] = True
    scores = item_scores(predicted, truth, np.ones((4, 4), bool))
    assert scores['iou'] == pytest.approx(4 / 12) and scores['precision'] == 0.5
    scored = np.ones((4, 4), bool)
    scored[2] = False                    # the false positives are not scored
    assert item_scores(predicted, truth, scored)['precision'] == 1.0

    class Candidate:
        def __init__(self, u: int, v: int) -> None:
            self.pixel = (u, v)
    assert candidate_hits([Candidate(0, 0), Candidate(0, 3), Candidate(9, 9)], truth) == (
        3, [True, False, False])
    # A candidate on an unscored pixel (row 2) is neither a hit nor a miss.
    assert candidate_hits([Candidate(0, 0), Candidate(1, 2), Candidate(9, 9)], truth,
                          scored) == (2, [True, None, False])


def test_frames_report_with_grasps(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / 'cell')
    out = tmp_path / 'report'
    result = run_cli('--images', str(folder / 'images'), '--masks', str(folder / 'masks'),
                     '--ignore', str(folder / 'ignore'), '--grasp', '--depth',
                     str(folder / 'depth'), '--intrinsics', str(folder / 'intrinsics'),
                     '--container', 'auto', '--out', str(out))
    assert result.returncode == 0, result.stderr
    assert 'candidates on items' in result.stdout
    report = json.loads((out / 'report.json').read_text())
    assert report['frames'] == 2 and report['container_mode'] == 'auto'
    assert 0.3 < report['item_iou_mean'] <= 1.0
    assert report['candidates'] > 0 and report['candidates_on_items_share'] >= 0.8
    assert sorted(p.name for p in (out / 'overlays').iterdir()) == ['frame0.png', 'frame1.png']
    assert '| frame0 |' in (out / 'report.md').read_text()


def test_bad_folders_exit_with_a_reason_and_write_nothing(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / 'cell', count=1)
    out = tmp_path / 'report'
    missing = run_cli('--images', str(folder / 'images'), '--masks', str(tmp_path / 'nope'),
                      '--out', str(out))
    assert missing.returncode != 0 and 'masks folder' in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    no_depth = run_cli('--images', str(folder / 'images'), '--masks', str(folder / 'masks'),
                       '--grasp', '--out', str(out))
    assert no_depth.returncode != 0 and '--grasp needs --depth' in no_depth.stderr
    cv2.imwrite(str(folder / 'masks' / 'frame0.png'), np.zeros((10, 10), np.uint8))
    with pytest.raises(FramesError, match='mask is 10x10, image is 640x480'):
        load_frames(folder / 'images', folder / 'masks')
    small = run_cli('--images', str(folder / 'images'), '--masks', str(folder / 'masks'),
                    '--out', str(out))
    assert small.returncode != 0 and 'mask is 10x10' in small.stderr
    assert not out.exists() and not list(tmp_path.glob('.report.*'))


def test_arc2017_frames_folder(shared_data: Path, tmp_path: Path) -> None:
    """The real ARC frames export into the folder format with masks from the empty tote."""
    from seg_perception.evaluation.arc2017 import export
    stems = export(shared_data, tmp_path / 'arc')
    frames = load_frames(tmp_path / 'arc' / 'images', tmp_path / 'arc' / 'masks',
                         ignore=tmp_path / 'arc' / 'ignore', depth=tmp_path / 'arc' / 'depth',
                         intrinsics=tmp_path / 'arc' / 'intrinsics',
                         empty=tmp_path / 'arc' / 'empty')
    assert [f.stem for f in frames] == sorted(stems) and len(frames) == 3
    for frame in frames:
        assert frame.depth_m.shape == frame.rgb.shape[:2] == (480, 640)
        share = float(frame.item_mask[frame.scored].mean())
        assert 0.01 < share < 0.8, frame.stem          # items, but not the whole frame


def test_arc2017_glass_is_not_scored_unless_depth_sees_an_item(shared_data: Path) -> None:
    """The hand-traced glass outline of each bin view is unscored, except depth-found items."""
    from seg_perception.evaluation.arc2017 import GLASS_OUTLINES_PX, load_frame, outline_mask
    for stem, outline in GLASS_OUTLINES_PX.items():
        frame = load_frame(shared_data, stem)
        glass = outline_mask(outline, frame['items'].shape)
        assert 3000 < glass.sum() < 30000, stem              # a wine glass, not the frame
        assert not (glass & frame['scored'] & ~frame['items']).any(), stem
        assert (glass & frame['items']).any(), stem          # the scissors / what depth sees


def test_outline_mask_fills_the_polygon_and_its_margin() -> None:
    from seg_perception.evaluation.arc2017 import outline_mask
    square = ((10, 10), (29, 10), (29, 19), (10, 19))      # x, y
    inner = outline_mask(square, (40, 50), margin_px=0)
    assert inner.sum() == 20 * 10 and inner[10:20, 10:30].all()
    grown = outline_mask(square, (40, 50), margin_px=2)
    assert grown[8:22, 8:32].all() and not grown[:7].any() and not grown[:, 33:].any()


def test_arc2017_mask_rules() -> None:
    """Items stand in front of the empty tote; receded depth and slivers are not scored."""
    from seg_perception.evaluation.arc2017 import in_bin_volume, item_mask
    empty = np.full((60, 80), 0.8, np.float32)
    depth = empty.copy()
    depth[10:30, 10:30] = 0.7              # an item, 400 px
    depth[40:50, 10:30] = 0.9              # receded: the tote moved, not an item
    depth[5:8, 60:64] = 0.7                # a 12-px sliver: too small to tell
    depth[50:55, 60:70] = np.nan           # invalid
    items, scored = item_mask(depth, empty)
    assert items[10:30, 10:30].all() and items.sum() == 400
    assert not scored[40:50, 10:30].any() and not scored[5:8, 60:64].any()
    assert not scored[50:55, 60:70].any() and scored[0, 0] and not items[0, 0]
    # In-bin volume: a camera 1 m above the bin bottom looking straight down (cell z up).
    K = np.array([[100.0, 0, 40], [0, 100.0, 30], [0, 0, 1]])
    cell_from_camera = np.array([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 1.0], [0, 0, 0, 1]])
    floor = np.full((60, 80), 1.0, np.float32)
    inside = in_bin_volume(floor, K, cell_from_camera, np.zeros(3))
    # The view spans 0.8 x 0.6 m at 1 m: the centre is in the 0.6 x 0.4 m footprint, the corners
    # are not; a point 0.5 m above the bottom is above the bin volume.
    assert inside[30, 40] and not inside[0, 0] and not inside[59, 79]
    assert not in_bin_volume(np.full((60, 80), 0.5, np.float32), K, cell_from_camera,
                             np.zeros(3))[30, 40]
