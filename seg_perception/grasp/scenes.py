"""Analytic depth scenes (planes, box tops, lying cylinders) for tests and benchmarks.

Exact ray casting against simple shapes gives depth whose geometry is known, so normals, extents
and candidate poses can be checked against truth without the synthetic cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seg_perception.grasp.camera_model import PinholeCamera


def _rays(camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """Return (H, W) ray slopes a = (u - cx) / fx and b = (v - cy) / fy (float64)."""
    u = (np.arange(camera.width) - camera.cx) / camera.fx
    v = (np.arange(camera.height) - camera.cy) / camera.fy
    return np.meshgrid(u, v)


def plane_depth(camera: PinholeCamera, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Return (H, W) float64 depth z of the plane through `point` with `normal` (inf if missed)."""
    a, b = _rays(camera)
    n = np.asarray(normal, dtype=np.float64)
    denom = n[0] * a + n[1] * b + n[2]
    with np.errstate(divide='ignore', invalid='ignore'):
        z = float(n @ np.asarray(point, dtype=np.float64)) / denom
    z[~(z > 0)] = np.inf
    return z


@dataclass
class DepthScene:
    """A depth image with class labels, built by painting the nearest surface per pixel."""

    camera: PinholeCamera
    depth: np.ndarray = field(init=False)
    labels: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.depth = np.full((self.camera.height, self.camera.width), np.inf)
        self.labels = np.zeros((self.camera.height, self.camera.width), dtype=np.uint8)

    def _paint(self, z: np.ndarray, inside: np.ndarray, class_id: int) -> None:
        closer = inside & (z < self.depth)
        self.depth[closer] = z[closer]
        self.labels[closer] = class_id

    def add_plane(self, point, normal, class_id: int) -> 'DepthScene':
        """Add an infinite plane (a table, a tote floor)."""
        z = plane_depth(self.camera, point, normal)
        self._paint(z, np.isfinite(z), class_id)
        return self

    def add_rectangle(self, center, normal, axis, size_m: tuple[float, float],
                      class_id: int) -> 'DepthScene':
        """Add a flat rectangle (a box's top face) of size (along axis, across) at center."""
        c = np.asarray(center, dtype=np.float64)
        n = np.asarray(normal, dtype=np.float64)
        n /= np.linalg.norm(n)
        ax = np.asarray(axis, dtype=np.float64)
        ax = ax - (ax @ n) * n
        ax /= np.linalg.norm(ax)
        ay = np.cross(n, ax)
        z = plane_depth(self.camera, c, n)
        a, b = _rays(self.camera)
        with np.errstate(invalid='ignore'):
            p = np.stack([a * z, b * z, z], axis=-1) - c
            inside = (np.abs(p @ ax) <= size_m[0] / 2) & (np.abs(p @ ay) <= size_m[1] / 2)
        self._paint(z, inside & np.isfinite(z), class_id)
        return self

    def add_box(self, center_top, size_m: tuple[float, float, float], class_id: int,
                yaw_rad: float = 0.0) -> 'DepthScene':
        """Add an axis-aligned box (camera looking down +z) whose top face is at center_top.

        size_m = (length along the yawed x, width, height along z); the sides are painted too.
        """
        c = np.asarray(center_top, dtype=np.float64)
        ax = np.array([np.cos(yaw_rad), np.sin(yaw_rad), 0.0])
        ay = np.array([-np.sin(yaw_rad), np.cos(yaw_rad), 0.0])
        length, width, height = size_m
        self.add_rectangle(c, [0, 0, -1], ax, (length, width), class_id)
        sides = ((ax, ay, length / 2, width), (ay, ax, width / 2, length))
        for axis, other, half, other_size in sides:
            for sign in (-1.0, 1.0):
                self.add_rectangle(c + sign * half * axis + [0, 0, height / 2], sign * axis,
                                   other, (other_size, height), class_id)
        return self

    def add_lying_cylinder(self, center, axis, radius_m: float, length_m: float,
                           class_id: int) -> 'DepthScene':
        """Add a cylinder lying with its axis (unit, in the image plane) through center."""
        c = np.asarray(center, dtype=np.float64)
        d = np.asarray(axis, dtype=np.float64)
        d /= np.linalg.norm(d)
        a, b = _rays(self.camera)
        r = np.stack([a, b, np.ones_like(a)], axis=-1)
        # |(t r - c) - ((t r - c) . d) d|^2 = R^2, solved for t (= z since r_z = 1).
        rp = r - (r @ d)[..., None] * d
        cp = c - (c @ d) * d
        qa = np.einsum('...k,...k', rp, rp)
        qb = -2.0 * (rp @ cp)
        qc = cp @ cp - radius_m ** 2
        disc = qb * qb - 4 * qa * qc
        with np.errstate(invalid='ignore'):
            t = (-qb - np.sqrt(disc)) / (2 * qa)
            along = (t[..., None] * r - c) @ d
        inside = (disc > 0) & (np.abs(along) <= length_m / 2) & (t > 0)
        self._paint(np.where(inside, t, np.inf), inside, class_id)
        return self

    def depth_m(self) -> np.ndarray:
        """Return the scene's depth as float32 metres, NaN where nothing was hit."""
        out = self.depth.astype(np.float32)
        out[~np.isfinite(out)] = np.nan
        return out


def procedural_frame(camera: PinholeCamera, seed: int,
                     num_items: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels uint8, depth_m float32) of a random tote: boxes and cylinders on a floor.

    Ids follow ClassSet.default(): tote 1, box 2, cylinder 5. Depth gets 1 mm noise and 1 %
    dropouts, like a structured-light sensor.
    """
    rng = np.random.default_rng(seed)
    scene = DepthScene(camera).add_plane([0, 0, 1.0], [0, 0, -1], 1)
    for _ in range(num_items):
        x, y = rng.uniform(-0.3, 0.3), rng.uniform(-0.22, 0.22)
        if rng.random() < 0.7:
            size = (rng.uniform(0.06, 0.25), rng.uniform(0.05, 0.18), rng.uniform(0.03, 0.2))
            scene.add_box([x, y, 1.0 - size[2]], size, 2, yaw_rad=rng.uniform(0, np.pi))
        else:
            radius = rng.uniform(0.02, 0.04)
            ang = rng.uniform(0, np.pi)
            scene.add_lying_cylinder([x, y, 1.0 - radius], [np.cos(ang), np.sin(ang), 0.0],
                                     radius, rng.uniform(0.1, 0.25), 5)
    depth = scene.depth_m()
    depth += rng.normal(0.0, 0.001, depth.shape).astype(np.float32)
    depth[rng.random(depth.shape) < 0.01] = np.nan
    return scene.labels, depth
