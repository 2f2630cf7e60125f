"""Rigid transforms camera -> robot frame (seg_perception.grasp.frames) against matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.grasp import GraspConfig, GraspPipeline, PinholeCamera, POINT_DTYPE
from seg_perception.grasp.candidates import quaternion_from_matrix
from seg_perception.grasp.frames import (quaternion_multiply, QUATERNION_NORM_TOLERANCE,
                                         quaternion_to_matrix, RigidTransform, transform_cloud,
                                         transform_result, TransformError)
from seg_perception.grasp.scenes import DepthScene

S = math.sqrt(0.5)
#: 90 degrees about z: x -> y, y -> -x.
ROT_Z90 = (0.0, 0.0, S, S)
#: The usual camera-over-table mount: optical z (forward) = base -z (down), optical x = base -y.
CAMERA_LOOKING_DOWN = (1.0, 0.0, 0.0, 0.0)


def random_quaternions(count: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(count, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_identity_changes_nothing() -> None:
    t = RigidTransform.from_parameter([0, 0, 0, 0, 0, 0, 1])
    pts = np.array([[0.1, -0.2, 0.7], [np.nan, np.nan, np.nan]], dtype=np.float32)
    out = t.apply_points(pts)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0], pts[0])
    assert np.isnan(out[1]).all()
    pos, q = t.apply_pose([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(pos, [1, 2, 3])
    np.testing.assert_allclose(q, [0, 0, 0, 1])


def test_known_ninety_degree_rotations_and_translation() -> None:
    t = RigidTransform.from_pose([1.0, 0.0, 0.5], ROT_Z90)
    np.testing.assert_allclose(t.apply_points(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])),
                               [[1.0, 1.0, 0.5], [0.0, 0.0, 0.5]], atol=1e-12)
    # Directions rotate but do not move.
    np.testing.assert_allclose(t.apply_vectors(np.array([[1.0, 0.0, 0.0]])), [[0, 1, 0]],
                               atol=1e-12)
    down = RigidTransform.from_pose([0.0, 0.0, 1.2], CAMERA_LOOKING_DOWN)
    # A point 1 m in front of the camera lies 0.2 m above the base origin; the optical z axis
    # (an approach toward the camera is -z optical) points down in the base frame.
    np.testing.assert_allclose(down.apply_points(np.array([[0.0, 0.1, 1.0]])),
                               [[0.0, -0.1, 0.2]], atol=1e-12)
    np.testing.assert_allclose(down.apply_vectors(np.array([[0.0, 0.0, 1.0]])), [[0, 0, -1]],
                               atol=1e-12)


def test_quaternion_composition_matches_matrix_products() -> None:
    qs = random_quaternions(50)
    for a, b in zip(qs[::2], qs[1::2]):
        product = quaternion_to_matrix(quaternion_multiply(a, b))
        np.testing.assert_allclose(product, quaternion_to_matrix(a) @ quaternion_to_matrix(b),
                                   atol=1e-12)
        # quaternion_to_matrix inverts quaternion_from_matrix (up to the sign of q).
        back = quaternion_from_matrix(quaternion_to_matrix(a))
        np.testing.assert_allclose(back, a if a[3] >= 0 else -a, atol=1e-9)


def test_pose_transform_equals_matrix_composition() -> None:
    qs = random_quaternions(20, seed=3)
    t = RigidTransform.from_pose([0.3, -0.2, 1.1], qs[0])
    for q in qs[1:]:
        pose = RigidTransform.from_pose([0.1, 0.2, 0.9], q)
        pos, quat = t.apply_pose(pose.translation_m, q)
        expected = t.compose(pose).matrix
        np.testing.assert_allclose(pos, expected[:3, 3], atol=1e-12)
        np.testing.assert_allclose(quaternion_to_matrix(quat), expected[:3, :3], atol=1e-12)
        assert quat[3] >= 0


def test_seven_and_sixteen_values_agree_and_inverse_undoes() -> None:
    seven = RigidTransform.from_parameter([0.4, 0.0, 0.9, *ROT_Z90])
    sixteen = RigidTransform.from_parameter(seven.matrix.reshape(-1).tolist())
    np.testing.assert_allclose(seven.matrix, sixteen.matrix, atol=1e-12)
    pts = np.random.default_rng(1).normal(size=(100, 3))
    np.testing.assert_allclose(seven.inverse().apply_points(seven.apply_points(pts)), pts,
                               atol=1e-12)


def test_slightly_off_quaternion_is_normalised_and_a_wrong_one_refused() -> None:
    q = np.array(ROT_Z90) * (1 + QUATERNION_NORM_TOLERANCE / 2)
    t = RigidTransform.from_parameter([0, 0, 0, *q])
    np.testing.assert_allclose(t.rotation @ t.rotation.T, np.eye(3), atol=1e-12)
    for bad, reason in (([0, 0, 0, 0, 0, 0, 2], 'norm'), ([0, 0, 0, 0, 0, 0, 0], 'norm'),
                        ([0, 0, float('nan'), 0, 0, 0, 1], 'finite'),
                        ([0, 0, 0, 0, 0, float('inf'), 1], 'finite'),
                        ([0, 0, 0, 0, 0, 1], '7 numbers'),
                        ([2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1], 'rigid')):
        with pytest.raises(TransformError, match=reason):
            RigidTransform.from_parameter(bad)


def test_a_whole_result_moves_consistently() -> None:
    camera = PinholeCamera(fx=300.0, fy=300.0, cx=159.5, cy=119.5, width=320, height=240)
    scene = DepthScene(camera).add_plane([0, 0, 1.0], [0, 0, -1], 1).add_box(
        [0.0, 0.0, 0.8], (0.2, 0.15, 0.1), 2)
    result = GraspPipeline(GraspConfig()).process(scene.labels, scene.depth_m(), camera)
    assert result.candidates
    t = RigidTransform.from_pose([0.5, -0.1, 1.3], CAMERA_LOOKING_DOWN)
    moved = transform_result(result, t)
    assert len(moved.candidates) == len(result.candidates)
    for before, after in zip(result.candidates, moved.candidates):
        np.testing.assert_allclose(after.position, t.apply_points(before.position[None])[0])
        np.testing.assert_allclose(after.rotation, t.rotation @ before.rotation, atol=1e-9)
        np.testing.assert_allclose(quaternion_to_matrix(after.quaternion), after.rotation,
                                   atol=1e-6)
        # The box top faces the camera: its normal points up (+z) in the base frame.
        assert after.normal[2] > 0.99
    xyz = np.stack([result.points[k] for k in 'xyz'], axis=-1)
    moved_xyz = np.stack([moved.points[k] for k in 'xyz'], axis=-1)
    np.testing.assert_allclose(moved_xyz, t.apply_points(xyz), atol=1e-6)
    np.testing.assert_array_equal(moved.points['label'], result.points['label'])
    # The input result is left as it was.
    np.testing.assert_array_equal(np.stack([result.points[k] for k in 'xyz'], axis=-1), xyz)
    assert moved.regions[0].centroid[2] == pytest.approx(1.3 - result.regions[0].centroid[2])


def test_organized_cloud_keeps_nan_outside_items() -> None:
    cloud = np.zeros((2, 2), dtype=POINT_DTYPE)
    cloud['x'][0, 0] = np.nan
    cloud['y'][0, 0] = np.nan
    cloud['z'][0, 0] = np.nan
    cloud['normal_x'] = np.nan
    out = transform_cloud(cloud, RigidTransform.from_pose([1, 2, 3], ROT_Z90))
    assert out.shape == (2, 2)
    assert np.isnan(out['x'][0, 0]) and np.isnan(out['z'][0, 0])
    assert out['z'][1, 1] == pytest.approx(3.0)
