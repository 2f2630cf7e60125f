"""The grasp pipeline on a real RGB-D tote frame (ARC 2017, andyzeng/arc-robot-vision).

Run as a script to redraw docs/images/grasp_arc2017.png:
`.venv/bin/python test/grasp/test_arc2017.py`.
"""

from __future__ import annotations

from pathlib import Path
import sys

import cv2
import numpy as np
import pytest

from seg_perception.classes import ClassSet
from seg_perception.grasp import GraspConfig, GraspPipeline, PinholeCamera
from seg_perception.grasp.depth import depth_to_metres

REPO = Path(__file__).resolve().parents[2]
ARC_DIR = REPO / '..' / 'shared' / 'data' / 'arc2017_tote'


def load_arc2017(folder: Path = ARC_DIR):
    """Return (rgb, depth_m, labels, camera); labels: box (2) where depth differs from the tote."""
    def depth(name: str) -> np.ndarray:
        raw = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        return depth_to_metres(raw, '16UC1', metres_per_unit=1e-4)   # 0.1 mm units

    rgb = cv2.cvtColor(cv2.imread(str(folder / 'test-image.color.png')), cv2.COLOR_BGR2RGB)
    depth_m = depth('test-image.depth.png')
    background = depth('test-background.depth.png')
    k = np.loadtxt(folder / 'test-camera-intrinsics.txt')
    camera = PinholeCamera.from_matrix(k, rgb.shape[1], rgb.shape[0])
    box_id = ClassSet.default().by_name('box').id
    with np.errstate(invalid='ignore'):
        item = np.abs(depth_m - background) > 0.01   # NaN on either side compares False
    labels = np.where(item, box_id, ClassSet.default().by_name('tote').id).astype(np.uint8)
    return rgb, depth_m, labels, camera


@pytest.fixture(scope='module')
def arc2017():
    if not (ARC_DIR / 'test-image.depth.png').is_file():
        pytest.skip(f'real tote data {ARC_DIR.resolve()} is absent')
    return load_arc2017()


def test_candidates_on_real_tote(arc2017):
    rgb, depth_m, labels, camera = arc2017
    result = GraspPipeline(GraspConfig()).process(labels, depth_m, camera, rgb=rgb)
    assert result.regions and result.candidates
    assert len(result.points) > 1000
    for cand in result.candidates:
        u, v = cand.pixel
        assert labels[v, u] == 2, f'candidate at {cand.pixel} is not on an item pixel'
        assert cand.normal[2] < 0, 'normals must point toward the camera'
        assert abs(cand.position[2] - depth_m[v, u]) < 1e-6
        assert 0.0 <= cand.score <= 1.0
    assert np.all(result.points['z'] > 0)


def tote_floor_gravity(folder: Path = ARC_DIR) -> tuple[float, float, float]:
    """Return gravity in the camera frame as the inward normal of the empty tote's floor plane."""
    from seg_perception.grasp import BackProjector
    from seg_perception.grasp.regions import fit_plane_ransac

    raw = cv2.imread(str(folder / 'test-background.depth.png'), cv2.IMREAD_UNCHANGED)
    depth = depth_to_metres(raw, '16UC1', metres_per_unit=1e-4)
    k = np.loadtxt(folder / 'test-camera-intrinsics.txt')
    camera = PinholeCamera.from_matrix(k, depth.shape[1], depth.shape[0])
    points, _ = BackProjector(camera).points(depth)
    normal = fit_plane_ransac(points[::10], distance_m=0.01).normal   # faces the camera
    return tuple(float(v) for v in -normal)


def test_gravity_from_tote_floor_raises_scores(arc2017):
    rgb, depth_m, labels, camera = arc2017
    gravity = tote_floor_gravity()
    assert 20.0 < np.degrees(np.arccos(gravity[2])) < 60.0    # the camera looks in obliquely
    tilted = GraspPipeline(GraspConfig()).process(labels, depth_m, camera)
    levelled = GraspPipeline(GraspConfig(gravity_direction=gravity)).process(
        labels, depth_m, camera)
    best = max(c.score for c in levelled.candidates if c.kind == 'suction')
    assert best > max(c.score for c in tilted.candidates if c.kind == 'suction')


def save_figure(out_path: Path = REPO / 'docs' / 'images' / 'grasp_arc2017.png') -> Path:
    """Draw the candidates over the real colour image and save the figure."""
    from seg_perception.grasp.visualize import draw_candidates

    rgb, depth_m, labels, camera = load_arc2017()
    config = GraspConfig(gravity_direction=tote_floor_gravity())
    result = GraspPipeline(config).process(labels, depth_m, camera, rgb=rgb)
    image = draw_candidates(rgb, result.candidates, camera, region_image=result.region_image)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    for cand in result.candidates:
        print(cand.kind, f'{cand.score:.2f}', cand.pixel, np.round(cand.normal, 2))
    print(f'{len(result.regions)} regions, {len(result.candidates)} candidates, '
          f'{result.timings_ms["total"]:.1f} ms -> {out_path}')
    return out_path


if __name__ == '__main__':
    sys.exit(0 if save_figure() else 1)
