"""Tests of suction and parallel candidates on analytic scenes."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.candidates import _RegionScores, grasp_frame, quaternion_from_matrix
from seg_perception.grasp.config import GraspConfig
from seg_perception.grasp.pipeline import GraspPipeline
from seg_perception.grasp.regions import region_pixels
from seg_perception.grasp.scenes import DepthScene

CAM = PinholeCamera(fx=600.0, fy=600.0, cx=319.5, cy=239.5, width=640, height=480)


def _angle_deg(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1, 1))))


def _noisy(scene: DepthScene, sigma_m: float = 0.001) -> np.ndarray:
    depth = scene.depth_m()
    depth += np.random.default_rng(0).normal(0, sigma_m, depth.shape).astype(np.float32)
    return depth


@pytest.mark.parametrize('tilt_deg', [0.0, 20.0])
def test_flat_box_face_gets_suction_candidate_along_its_normal(tilt_deg):
    tilt = np.radians(tilt_deg)
    normal = np.array([np.sin(tilt), 0.0, -np.cos(tilt)])
    scene = DepthScene(CAM).add_plane([0, 0, 1.0], [0, 0, -1], 1)
    scene.add_rectangle([0.0, 0.0, 0.8], normal, [0, 1, 0], (0.2, 0.12), 2)
    result = GraspPipeline(GraspConfig()).process(scene.labels, _noisy(scene), CAM)
    suction = [c for c in result.candidates if c.kind == 'suction']
    assert suction, 'no suction candidate on a flat 20 x 12 cm face'
    best = suction[0]
    assert best.class_name == 'box' and best.score > 0.5
    assert _angle_deg(best.normal, normal) < 3.0
    # On the face: within 3 mm of its plane and inside its outline.
    assert abs(float((best.position - [0.0, 0.0, 0.8]) @ normal)) < 0.003
    assert np.all(np.abs(best.position[:2]) < [0.1, 0.06])
    # Frame: x along the major axis (y here), z = normal, right-handed and orthonormal.
    r = best.rotation
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert abs(r[1, 0]) > 0.99
    assert result.candidates == sorted(result.candidates, key=lambda c: -c.score)


def test_narrow_lying_cylinder_gets_parallel_candidate():
    scene = DepthScene(CAM).add_plane([0, 0, 1.0], [0, 0, -1], 1)
    scene.add_lying_cylinder([0.0, 0.05, 0.97], [1.0, 0.0, 0.0], 0.03, 0.25, 5)
    result = GraspPipeline(GraspConfig()).process(scene.labels, _noisy(scene), CAM)
    parallel = [c for c in result.candidates if c.kind == 'parallel']
    assert len(parallel) == 1
    cand = parallel[0]
    assert cand.class_name == 'cylinder'
    assert cand.extent_m[1] < 0.085 < cand.extent_m[0] + 0.085
    assert abs(cand.rotation[0, 0]) > 0.99          # x along the cylinder axis
    assert abs(cand.rotation[1, 1]) > 0.9           # fingers close across it (along y)
    assert cand.normal[2] < -0.9
    # On the surface: distance to the axis equals the radius.
    assert np.hypot(cand.position[1] - 0.05, cand.position[2] - 0.97) == pytest.approx(0.03,
                                                                                       abs=0.003)
    # A curved 6 cm cylinder scores below a flat face for suction.
    suction = [c for c in result.candidates if c.kind == 'suction']
    assert all(c.score < cand.score for c in suction)


def test_wide_box_gets_no_parallel_candidate_and_small_face_no_suction():
    scene = DepthScene(CAM).add_plane([0, 0, 1.0], [0, 0, -1], 1)
    scene.add_rectangle([-0.1, 0, 0.8], [0, 0, -1], [1, 0, 0], (0.2, 0.15), 2)   # wide
    scene.add_rectangle([0.15, 0, 0.8], [0, 0, -1], [1, 0, 0], (0.025, 0.025), 4)  # < cup
    result = GraspPipeline(GraspConfig(min_region_pixels=20)).process(
        scene.labels, scene.depth_m(), CAM)
    assert {r.class_name for r in result.regions} == {'box', 'envelope'}
    assert all(c.kind == 'suction' and c.class_name == 'box' for c in result.candidates)


def test_nms_and_max_candidates():
    scene = DepthScene(CAM).add_rectangle([0, 0, 0.8], [0, 0, -1], [1, 0, 0], (0.3, 0.2), 2)
    config = GraspConfig(max_candidates=2, max_candidates_per_region=5, nms_distance_m=0.04)
    result = GraspPipeline(config).process(scene.labels, scene.depth_m(), CAM)
    assert len(result.candidates) == 2
    a, b = result.candidates
    assert np.linalg.norm(a.position - b.position) >= 0.04


def test_gravity_direction_changes_approach_score():
    tilt = np.radians(40.0)
    normal = np.array([np.sin(tilt), 0.0, -np.cos(tilt)])
    scene = DepthScene(CAM).add_rectangle([0, 0, 0.8], normal, [0, 1, 0], (0.2, 0.2), 2)
    depth = scene.depth_m()
    camera_axis = GraspPipeline(GraspConfig()).process(scene.labels, depth, CAM)
    along_face = GraspPipeline(GraspConfig(gravity_direction=tuple(-normal))).process(
        scene.labels, depth, CAM)
    assert along_face.candidates[0].score > camera_axis.candidates[0].score


def test_quaternion_of_frame():
    r = grasp_frame(np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(r, np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    np.testing.assert_allclose(quaternion_from_matrix(r), [1.0, 0.0, 0.0, 0.0], atol=1e-12)
    q = quaternion_from_matrix(np.eye(3))
    np.testing.assert_allclose(q, [0, 0, 0, 1])
    # Degenerate major axis (along the normal) still yields a valid frame.
    r = grasp_frame(np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)


@pytest.mark.parametrize('stride', [2, 3])
def test_box_paint_matches_per_pixel_paint(stride):
    rng = np.random.default_rng(stride)
    height, width, x0, y0 = 60, 80, 7, 5
    grid_h, grid_w = (height - y0) // stride, (width - x0) // stride
    grid = [rng.random((grid_h, grid_w), dtype=np.float32) for _ in range(4)]
    scores = _RegionScores(x0=x0, y0=y0, stride=stride, mask=np.ones((grid_h, grid_w), bool),
                           score=grid[0], mean_normal=tuple(grid[1:]), normal=tuple(grid[1:]))
    region = np.zeros((height, width), bool)
    region[11:40, 13:61] = rng.random((29, 48)) > 0.3
    bx, by = 13, 11
    images = []
    for box in (False, True):
        score = np.zeros((height, width), np.float32)
        normals = tuple(np.full((height, width), np.nan, np.float32) for _ in range(3))
        if box:
            scores.paint_box(region[11:40, 13:61], bx, by, score, normals)
        else:
            scores.paint(region_pixels(region, 0, 0, width), width, score, normals)
        images.append(np.stack((score, *normals)))
    np.testing.assert_array_equal(images[0], images[1])
