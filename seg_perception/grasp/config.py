"""Grasp-assist parameters, validated once (the grasp-assist node mirrors these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Mapping, Sequence

import numpy as np

from seg_perception.classes import ClassSet

PLANE_FITS = ('pca', 'ransac')


def _default_graspable() -> tuple[str, ...]:
    return tuple(c.name for c in ClassSet.default().graspable())


@dataclass(frozen=True, kw_only=True)
class GraspConfig:
    """Parameters of fusion, region analysis and candidate generation (SI units, camera frame).

    Defaults suit a camera about 0.5-2 m above a tote or conveyor and a 30 mm suction cup.
    """

    #: Class names whose pixels become items to grasp (default: classes with grasp modes).
    graspable_classes: tuple[str, ...] = field(default_factory=_default_graspable)
    #: Erode each class mask by this many pixels: edge pixels mix item and background depth.
    erosion_px: int = 2
    #: Drop pixels whose depth differs from a 4-neighbour by more than this (flying pixels).
    discontinuity_m: float = 0.01
    #: Valid depth range along the optical axis.
    min_depth_m: float = 0.1
    max_depth_m: float = 4.0
    #: Optional axis-aligned workspace box (both or neither), in the camera frame, or in the
    #: base frame when `base_from_camera` is given.
    workspace_min: tuple[float, float, float] | None = None
    workspace_max: tuple[float, float, float] | None = None
    #: Static extrinsic, row-major 4x4 (16 values): p_base = T @ p_camera.
    base_from_camera: tuple[float, ...] | None = None
    #: Voxel size for Open3D downsampling before plane fits (0 = off, the fast default).
    voxel_size_m: float = 0.0
    #: Region plane fit: 'pca' (least squares, fast) or 'ransac' (Open3D segment_plane).
    plane_fit: str = 'pca'
    #: Smallest connected region (pixels after fusion) considered an item surface.
    min_region_pixels: int = 100
    #: Suction cup radius: sets the flatness window and the required distance to region borders.
    cup_radius_m: float = 0.015
    #: Pixel step of the central differences used for per-pixel normals.
    normal_step_px: int = 2
    #: Normal spread (sqrt(1 - |mean normal|^2) in the cup window) at which flatness scores 0.
    max_normal_std: float = 0.3
    #: Largest angle between the approach (-normal) and gravity/camera axis that scores > 0.
    max_approach_angle_deg: float = 60.0
    #: Gravity in the camera frame (unit vector after normalising); None = camera z axis.
    gravity_direction: tuple[float, float, float] | None = None
    #: Largest opening of the parallel gripper; narrower regions get parallel candidates.
    gripper_max_opening_m: float = 0.085
    #: Candidates kept per frame and per region, best first, with 3D non-maximum suppression.
    max_candidates: int = 20
    max_candidates_per_region: int = 3
    nms_distance_m: float = 0.03
    #: Candidates scoring below this are dropped.
    min_score: float = 0.1
    #: Publish the cloud organized (H x W, NaN outside the fused masks) instead of dense.
    organized_cloud: bool = False

    def __post_init__(self) -> None:
        names = self.graspable_classes
        if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f'graspable_classes must be a sequence of class names, got {names!r}')
        object.__setattr__(self, 'graspable_classes', tuple(names))
        _require(self.erosion_px, 'erosion_px', int, lambda v: v >= 0, '>= 0')
        _require(self.normal_step_px, 'normal_step_px', int, lambda v: v >= 1, '>= 1')
        _require(self.min_region_pixels, 'min_region_pixels', int, lambda v: v >= 1, '>= 1')
        _require(self.max_candidates, 'max_candidates', int, lambda v: v >= 0, '>= 0')
        _require(self.max_candidates_per_region, 'max_candidates_per_region', int,
                 lambda v: v >= 1, '>= 1')
        for name in ('discontinuity_m', 'cup_radius_m', 'gripper_max_opening_m',
                     'nms_distance_m', 'max_normal_std', 'max_depth_m'):
            _require(getattr(self, name), name, float, lambda v: v > 0, '> 0')
        for name in ('min_depth_m', 'voxel_size_m'):
            _require(getattr(self, name), name, float, lambda v: v >= 0, '>= 0')
        _require(self.min_score, 'min_score', float, lambda v: 0 <= v <= 1, 'in [0, 1]')
        _require(self.max_approach_angle_deg, 'max_approach_angle_deg', float,
                 lambda v: 0 < v <= 90, 'in (0, 90]')
        if self.min_depth_m >= self.max_depth_m:
            raise ValueError(f'min_depth_m ({self.min_depth_m}) must be < max_depth_m '
                             f'({self.max_depth_m})')
        if self.plane_fit not in PLANE_FITS:
            raise ValueError(f'plane_fit must be one of {PLANE_FITS}, got {self.plane_fit!r}')
        if not isinstance(self.organized_cloud, (bool, np.bool_)):
            raise ValueError(f'organized_cloud must be a bool, got {self.organized_cloud!r}')
        if (self.workspace_min is None) != (self.workspace_max is None):
            raise ValueError('workspace_min and workspace_max must be given together')
        if self.workspace_min is not None:
            lo = _vector(self.workspace_min, 'workspace_min', 3)
            hi = _vector(self.workspace_max, 'workspace_max', 3)
            if not all(a < b for a, b in zip(lo, hi)):
                raise ValueError(f'workspace_min {lo} must be below workspace_max {hi} on every '
                                 'axis')
            object.__setattr__(self, 'workspace_min', lo)
            object.__setattr__(self, 'workspace_max', hi)
        if self.base_from_camera is not None:
            t = _vector(self.base_from_camera, 'base_from_camera', 16)
            m = np.array(t).reshape(4, 4)
            rot = m[:3, :3]
            orthonormal = np.allclose(rot @ rot.T, np.eye(3), atol=1e-4)
            if not np.allclose(m[3], [0, 0, 0, 1]) or not orthonormal or np.linalg.det(rot) < 0:
                raise ValueError('base_from_camera must be a rigid 4x4 transform (row-major, '
                                 'orthonormal rotation, last row 0 0 0 1)')
            object.__setattr__(self, 'base_from_camera', t)
        if self.gravity_direction is not None:
            g = _vector(self.gravity_direction, 'gravity_direction', 3)
            norm = math.sqrt(sum(v * v for v in g))
            if norm < 1e-9:
                raise ValueError('gravity_direction must not be the zero vector')
            object.__setattr__(self, 'gravity_direction', tuple(v / norm for v in g))

    @property
    def gravity(self) -> np.ndarray:
        """Return the unit gravity direction in the camera frame (camera z axis by default)."""
        if self.gravity_direction is None:
            return np.array([0.0, 0.0, 1.0])
        return np.asarray(self.gravity_direction, dtype=np.float64)

    @property
    def base_from_camera_matrix(self) -> np.ndarray | None:
        """Return the extrinsic as a (4, 4) float64 matrix, or None."""
        if self.base_from_camera is None:
            return None
        return np.asarray(self.base_from_camera, dtype=np.float64).reshape(4, 4)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> 'GraspConfig':
        """Build from a plain mapping (YAML, ROS parameters); unknown keys raise ValueError."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f'unknown grasp config keys {unknown}; known: {sorted(known)}')
        kwargs = dict(values)
        for key in ('graspable_classes', 'workspace_min', 'workspace_max', 'base_from_camera',
                    'gravity_direction'):
            if kwargs.get(key) is not None and not isinstance(kwargs[key], str):
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def _require(value: Any, name: str, kind: type, check, text: str) -> None:
    """Raise ValueError naming `name` unless `value` has the right type and passes `check`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'{name} must be a number, got {value!r}')
    if kind is int and int(value) != value:
        raise ValueError(f'{name} must be an integer, got {value!r}')
    if not math.isfinite(value) or not check(value):
        raise ValueError(f'{name} must be {text}, got {value!r}')


def _vector(values: Sequence[float], name: str, size: int) -> tuple[float, ...]:
    """Return `values` as a tuple of `size` finite floats or raise ValueError naming `name`."""
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f'{name} must be {size} numbers, got {values!r}') from exc
    if len(out) != size or not all(math.isfinite(v) for v in out):
        raise ValueError(f'{name} must be {size} finite numbers, got {values!r}')
    return out
