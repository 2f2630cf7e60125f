"""Rigid transforms from the camera optical frame into a robot frame (REP 103/105), ROS-free.

The grasp-assist node publishes in a `target_frame` such as `base_link`; the transform comes from
tf2 on a ROS install or from a static hand-eye extrinsic. This module holds the math so it is
unit-tested without rclpy: points (N, 3) and direction vectors vectorised, poses as position +
quaternion (x, y, z, w, the order of geometry_msgs), and whole grasp results.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
from typing import Sequence

import numpy as np

from seg_perception.grasp.candidates import GraspCandidate, quaternion_from_matrix
from seg_perception.grasp.container import Plane
from seg_perception.grasp.pipeline import GraspResult
from seg_perception.grasp.regions import Region

#: A quaternion whose norm is within this of 1 is normalised (rounding in a calibration file);
#: one further off is refused (a typo or a wrong field order, not a rotation).
QUATERNION_NORM_TOLERANCE = 1e-3


class TransformError(ValueError):
    """Raised for an extrinsic that is not a rigid transform; the message says why."""


def quaternion_multiply(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Return the Hamilton product a * b of (x, y, z, w) quaternions (rotate by b, then a)."""
    ax, ay, az, aw = (float(v) for v in a)
    bx, by, bz, bw = (float(v) for v in b)
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Return the 3x3 rotation of a unit (x, y, z, w) quaternion."""
    x, y, z, w = (float(v) for v in q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def unit_quaternion(q: Sequence[float], name: str = 'quaternion') -> np.ndarray:
    """Return `q` normalised when its norm is within QUATERNION_NORM_TOLERANCE of 1.

    Raises TransformError naming `name` for non-finite values or a norm further from 1.
    """
    arr = np.asarray([float(v) for v in q], dtype=np.float64)
    if arr.shape != (4,) or not np.all(np.isfinite(arr)):
        raise TransformError(f'{name} must be 4 finite numbers (x, y, z, w), got {list(q)}')
    norm = float(np.linalg.norm(arr))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise TransformError(f'{name} {arr.tolist()} has norm {norm:.6f}, not 1 within '
                             f'{QUATERNION_NORM_TOLERANCE} (order x, y, z, w)')
    return arr / norm


@dataclass(frozen=True)
class RigidTransform:
    """p_target = rotation @ p_source + translation_m: the source frame's pose in the target."""

    rotation: np.ndarray        # (3, 3) orthonormal, det +1
    translation_m: np.ndarray   # (3,) metres

    @classmethod
    def identity(cls) -> 'RigidTransform':
        """Return the transform that changes nothing."""
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_pose(cls, translation_m: Sequence[float],
                  quaternion: Sequence[float]) -> 'RigidTransform':
        """Build from a position and an (x, y, z, w) quaternion (normalised or refused)."""
        t = np.asarray([float(v) for v in translation_m], dtype=np.float64)
        if t.shape != (3,) or not np.all(np.isfinite(t)):
            raise TransformError(f'translation must be 3 finite numbers, got '
                                 f'{list(translation_m)}')
        return cls(quaternion_to_matrix(unit_quaternion(quaternion)), t)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray | Sequence[float]) -> 'RigidTransform':
        """Build from a 4x4 (or 16 row-major values) rigid matrix; anything else is refused."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.size != 16 or not np.all(np.isfinite(m)):
            raise TransformError('a 4x4 transform needs 16 finite numbers')
        m = m.reshape(4, 4)
        rot = m[:3, :3]
        orthonormal = np.allclose(rot @ rot.T, np.eye(3), atol=1e-4)
        if not np.allclose(m[3], [0, 0, 0, 1]) or not orthonormal or np.linalg.det(rot) < 0:
            raise TransformError('a 4x4 transform must be rigid: orthonormal rotation with '
                                 'determinant +1, last row 0 0 0 1')
        return cls(rot.copy(), m[:3, 3].copy())

    @classmethod
    def from_parameter(cls, values: Sequence[float],
                       name: str = 'base_from_camera') -> 'RigidTransform':
        """Build from a parameter: 7 values x y z qx qy qz qw, or 16 (row-major 4x4 matrix)."""
        values = list(values)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in values):
            raise TransformError(f'{name} must hold finite numbers, got {values}')
        try:
            if len(values) == 7:
                return cls.from_pose(values[:3], values[3:])
            if len(values) == 16:
                return cls.from_matrix(values)
        except TransformError as exc:
            raise TransformError(f'{name}: {exc}') from None
        raise TransformError(f'{name} must be 7 numbers (x y z qx qy qz qw) or 16 (row-major '
                             f'4x4), got {len(values)}')

    @property
    def matrix(self) -> np.ndarray:
        """Return the (4, 4) homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.rotation, self.translation_m
        return m

    @property
    def quaternion(self) -> np.ndarray:
        """Return the rotation as a unit (x, y, z, w) quaternion with w >= 0."""
        return quaternion_from_matrix(self.rotation)

    def compose(self, other: 'RigidTransform') -> 'RigidTransform':
        """Return self after other: p -> self(other(p))."""
        return RigidTransform(self.rotation @ other.rotation,
                              self.rotation @ other.translation_m + self.translation_m)

    def inverse(self) -> 'RigidTransform':
        """Return the transform back from the target to the source frame."""
        return RigidTransform(self.rotation.T, -self.rotation.T @ self.translation_m)

    def apply_points(self, points: np.ndarray) -> np.ndarray:
        """Return (N, 3) points in the target frame, in the input's float dtype (NaN stays NaN)."""
        pts = np.asarray(points)
        out = pts.astype(np.float64) @ self.rotation.T + self.translation_m
        return out.astype(pts.dtype if pts.dtype.kind == 'f' else np.float64)

    def apply_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Return (N, 3) directions (normals, approach vectors) rotated, not translated."""
        vec = np.asarray(vectors)
        out = vec.astype(np.float64) @ self.rotation.T
        return out.astype(vec.dtype if vec.dtype.kind == 'f' else np.float64)

    def apply_pose(self, position: Sequence[float],
                   quaternion: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Return (position, quaternion x y z w with w >= 0) of a pose in the target frame."""
        pos = self.rotation @ np.asarray(position, dtype=np.float64) + self.translation_m
        q = quaternion_multiply(self.quaternion, quaternion)
        q /= np.linalg.norm(q)
        return pos, (-q if q[3] < 0 else q)


def transform_candidate(candidate: GraspCandidate, transform: RigidTransform) -> GraspCandidate:
    """Return the candidate with its position, rotation and quaternion in the target frame."""
    position, quaternion = transform.apply_pose(candidate.position, candidate.quaternion)
    return dataclasses.replace(candidate, position=position, quaternion=quaternion,
                               rotation=transform.rotation @ candidate.rotation)


def transform_cloud(points: np.ndarray, transform: RigidTransform) -> np.ndarray:
    """Return a copy of a POINT_DTYPE cloud (any shape) with xyz and normals in the target."""
    out = points.copy()
    if not out.size:
        return out
    flat = out.reshape(-1)
    xyz = np.stack([flat['x'], flat['y'], flat['z']], axis=-1)
    flat['x'], flat['y'], flat['z'] = transform.apply_points(xyz).T
    if 'normal_x' in (out.dtype.names or ()):
        n = np.stack([flat['normal_x'], flat['normal_y'], flat['normal_z']], axis=-1)
        flat['normal_x'], flat['normal_y'], flat['normal_z'] = transform.apply_vectors(n).T
    return out


def transform_plane(plane: Plane, transform: RigidTransform) -> Plane:
    """Return the plane (normal, offset, outline) in the target frame."""
    normal = transform.rotation @ plane.normal
    return dataclasses.replace(plane, normal=normal,
                               offset=float(plane.offset - normal @ transform.translation_m),
                               outline_m=transform.apply_points(plane.outline_m))


def transform_region(region: Region, transform: RigidTransform) -> Region:
    """Return the region's centroid, normal and axes in the target frame."""
    rot = transform.rotation
    return dataclasses.replace(
        region, centroid=rot @ region.centroid + transform.translation_m,
        normal=rot @ region.normal, major_axis=rot @ region.major_axis,
        minor_axis=rot @ region.minor_axis)


def transform_result(result: GraspResult, transform: RigidTransform) -> GraspResult:
    """Return the frame's result in the target frame (the input is not changed).

    Points, normals, candidates, regions and the container's planes move; pixel data
    (region_image, the container's reference depth, candidate pixels) stay as they are.
    """
    container = result.container
    if container is not None:
        container = dataclasses.replace(
            container, floor=None if container.floor is None else transform_plane(
                container.floor, transform),
            walls=tuple(transform_plane(w, transform) for w in container.walls))
    return dataclasses.replace(
        result, points=transform_cloud(result.points, transform),
        candidates=[transform_candidate(c, transform) for c in result.candidates],
        regions=[transform_region(r, transform) for r in result.regions], container=container,
        timings_ms=dict(result.timings_ms))
