"""Container (load carrier) detection from depth: the floor and walls of the bin the items lie in.

A segmentation network alone calls dark bin walls, rims and the cell around a bin "items" on real
cameras. Industrial bin picking adds geometry: it finds the load carrier in the depth image and
never proposes a grasp on it. Here the container is a convex set of half-spaces, one per plane
(the floor, facing up, and up to four walls, facing inward), so "inside the container and not on
its surface" is a handful of dot products per pixel.

Modes:
* ``auto``: planes are found by sequential RANSAC on a decimated cloud every frame; a container
  that still fits the next frame is tracked (refined, not searched again).
* ``reference``: an empty-container depth frame (a file, or captured live) gives the planes once
  and a per-pixel surface: a pixel is an item only where it stands in front of that surface.
* ``none``: no container step.

Everything is in the depth camera's optical frame (x right, y down, z forward, metres).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Sequence

import cv2
import numpy as np

from seg_perception.grasp.regions import cross3

#: Values of the `container_mode` parameter.
CONTAINER_MODES = ('auto', 'reference', 'none')
#: The reason given for a bin's floor found without a wall plane (walls too thin or steep).
RIMMED_FLOOR = 'no wall plane in view: a floor inside a rim'
#: The reason given for a frame with too little valid depth to look for a container in.
TOO_FEW_POINTS = 'too few valid depth points'
#: How far beyond the visible floor's outline the floor may still extend (hidden under items
#: along a wall), for the check that nothing is seen below a floor.
_OVERHANG_M = 0.03
#: A level surface with more than 5 % of the view below it is a bin's floor only where this
#: share of the points around its patch rise above it (walls and rim too steep or thin to fit
#: a plane to, as from a camera high above a bin); an item's top falls away at its edges.
_RIM_SHARE = 0.8
#: Width of that ring around the patch, in decimated cells.
_RIM_CELLS = 2
#: An edge of the floor's outline lies on a wall's side of the bin when their inward normals
#: are closer than 45 degrees (the four sides of a rectangular bin split the circle in four).
_SIDE_COS = float(np.cos(np.radians(45.0)))
#: A tracked plane that moved less than this (offset) and turned less than ~0.25 degrees keeps
#: its outline: the bin has not moved.
_STILL_OFFSET_M = 0.001
_STILL_COS = 0.99999


class ContainerError(ValueError):
    """Raised for a reference frame or configuration the container step cannot use."""


@dataclass(frozen=True, kw_only=True)
class ContainerConfig:
    """How the container is found and how much room the gripper needs from its walls."""

    mode: str = 'auto'
    #: Label pixels closer than this to a container surface (floor, wall) are not graspable.
    surface_margin_m: float = 0.01
    #: Room kept between a wall and the cup edge / finger, beyond the cup radius or half opening.
    wall_clearance_m: float = 0.005
    #: Pixel step of the decimated cloud the planes are searched in (at the depth resolution).
    decimation_px: int = 8
    #: RANSAC inlier distance.
    plane_threshold_m: float = 0.008
    #: Plane hypotheses scored per RANSAC round (all at once, as one matrix product).
    ransac_hypotheses: int = 64
    #: Planes extracted per frame before the floor and walls are chosen among them (a bin in
    #: a cell shows floor, walls, rim, ground and a neighbour besides item tops: with 7 the
    #: floor was left out on 2-3 % of the synthetic tote frames).
    max_planes: int = 9
    #: Smallest plane, as a fraction of the valid decimated points.
    min_plane_fraction: float = 0.015
    #: A wall's inliers must come this close to the floor plane's inliers (the wall meets it).
    max_floor_gap_m: float = 0.08
    #: Moulded bins round the edges where two surfaces meet: points closer than this to two
    #: container planes at once lie on that fillet, not on an item.
    corner_radius_m: float = 0.025
    #: A tracked plane is kept while this fraction of its previous inliers still fits.
    track_min_fraction: float = 0.5
    #: In `auto`, fit the floor as a smooth surface (the plane plus a quadratic bend): real
    #: plastic bins sag and bulge by 1-3 cm, more than the surface margin.
    floor_bend: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in CONTAINER_MODES:
            raise ContainerError(f'container mode {self.mode!r} is not one of '
                                 f'{", ".join(CONTAINER_MODES)}')
        for name in ('surface_margin_m', 'wall_clearance_m', 'max_floor_gap_m',
                     'corner_radius_m'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ContainerError(f'{name} must be a finite number >= 0, got {value!r}')
        if not (isinstance(self.plane_threshold_m, (int, float))
                and np.isfinite(self.plane_threshold_m) and self.plane_threshold_m > 0):
            raise ContainerError(f'plane_threshold_m must be > 0, got {self.plane_threshold_m!r}')
        for name, low in (('decimation_px', 1), ('ransac_hypotheses', 8), ('max_planes', 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ContainerError(f'{name} must be an int >= {low}, got {value!r}')
        if not isinstance(self.floor_bend, bool):
            raise ContainerError(f'floor_bend must be a bool, got {self.floor_bend!r}')
        for name in ('min_plane_fraction', 'track_min_fraction'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < 1):
                raise ContainerError(f'{name} must be in (0, 1), got {value!r}')


@dataclass(frozen=True)
class Plane:
    """A plane n . p + offset = 0 with n oriented so the positive side is the free side."""

    normal: np.ndarray          # (3,) unit
    offset: float
    inliers: int                # decimated points within the RANSAC threshold
    residual_m: float           # RMS distance of those inliers
    outline_m: np.ndarray       # (K, 3) convex hull of the inliers, in the plane (markers)

    @cached_property
    def outline_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the outline's inward edge normals (E, 3) and offsets (E,), computed once."""
        return _polygon_edges(self)

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Return the signed distances (N,) of points (N, 3)."""
        return points @ self.normal.astype(points.dtype) + np.asarray(self.offset, points.dtype)

    def summary(self) -> dict:
        """Return a JSON-friendly description."""
        return {'normal': [round(float(v), 5) for v in self.normal],
                'offset_m': round(float(self.offset), 5), 'inliers': self.inliers,
                'residual_m': round(float(self.residual_m), 5)}


#: Cell of the grid the seen floor's relief is kept on.
_RELIEF_CELL_M = 0.01
#: The seen floor's relief (ribs, feet, dents, a local sag) is averaged over about a suction
#: cup's footprint (Gaussian sigma): finer relief than a cup's does not decide what stands on the
#: floor, and averaging a few dozen decimated points takes the sensor's noise out.
_RELIEF_SIGMA_M = 0.015
#: A relief grid has at most this many cells a side (a floor seen over several metres gets
#: coarser cells, not a huge grid).
_RELIEF_MAX_CELLS = 256


@dataclass(frozen=True)
class FloorBend:
    """How far the floor rises above its plane: a bend of the whole floor plus its relief.

    The bend is a quadratic in the floor's own coordinates w = basis p + shift (centred on the
    points it was fitted to): c0 + c1 w0 + c2 w1 + c3 w0^2 + c4 w0 w1 + c5 w1^2, clamped to the
    range it took on those points (it is not extrapolated past the floor that was seen). The
    relief is what the seen floor adds to it around each cell of a grid over w (ribs, feet,
    dents); it fades to nothing where little floor is seen (under items).
    """

    basis: np.ndarray           # (2, 3) float32
    shift: np.ndarray           # (2,) float32
    coefficients: np.ndarray    # (6,) float64
    low_m: float
    high_m: float
    residual_m: float           # RMS distance of the fitted points to the bent floor
    relief: np.ndarray          # (rows, cols) float32 metres
    relief_origin: np.ndarray   # (2,) float32: cell (i, j) is centred on w = this + (i, j) cell
    relief_cell_m: float
    relief_m: float             # RMS of the relief over the cells where the floor is seen

    @cached_property
    def relief_range_m(self) -> tuple[float, float]:
        """Return the lowest and highest relief (metres): outside it no lookup can matter."""
        return float(self.relief.min()), float(self.relief.max())

    def bend_at(self, w0: np.ndarray, w1: np.ndarray, offset_m: float = 0.0) -> np.ndarray:
        """Return the clamped quadratic bend plus `offset_m` (N,) at floor coordinates w0, w1.

        (N,) float32 each; w0 is overwritten with the result.
        """
        c = self.coefficients.astype(np.float32)
        # c0 + w0 (c1 + c3 w0 + c4 w1) + w1 (c2 + c5 w1): eight passes over contiguous rows;
        # the offset rides in c0 and the clamp's bounds.
        inner = w1 * c[4]
        inner += c[1]
        inner += w0 * c[3]
        w0 *= inner
        inner = w1 * c[5]
        inner += c[2]
        inner *= w1
        w0 += inner
        w0 += c[0] + np.float32(offset_m)
        return np.clip(w0, np.float32(self.low_m + offset_m), np.float32(self.high_m + offset_m),
                       out=w0)

    def relief_at(self, w0: np.ndarray, w1: np.ndarray) -> np.ndarray:
        """Return the relief (N,) at floor coordinates w0, w1 (N,): its nearest cell's value.

        A point beyond the grid takes its edge cell.
        """
        return self.relief.ravel().take(
            _relief_cells(w0, w1, self.relief_origin, self.relief_cell_m, self.relief.shape))

    def height_at(self, w0: np.ndarray, w1: np.ndarray) -> np.ndarray:
        """Return the bend plus relief (N,) at floor coordinates w0, w1 (N,) float32."""
        relief = self.relief_at(w0, w1)
        out = self.bend_at(w0, w1)
        out += relief
        return out

    def height(self, points: np.ndarray) -> np.ndarray:
        """Return (N,) float32: the floor's height above its plane under points (N, 3)."""
        w = np.matmul(self.basis, np.asarray(points, np.float32).T) + self.shift[:, None]
        return self.height_at(w[0], w[1])

    def summary(self) -> dict:
        """Return a JSON-friendly description."""
        return {'low_m': round(self.low_m, 5), 'high_m': round(self.high_m, 5),
                'residual_m': round(self.residual_m, 5), 'relief_m': round(self.relief_m, 5)}


def _relief_cells(w0: np.ndarray, w1: np.ndarray, origin: np.ndarray, cell_m: float,
                  shape: tuple[int, int]) -> np.ndarray:
    """Return the flat index (N,) int32 of the relief cell nearest each floor coordinate pair.

    One mapping for the fit and the lookups; a point beyond the grid takes its edge cell.
    """
    rows, cols = shape
    scale = np.float32(1.0 / cell_m)
    i = (w0 - origin[0]) * scale + np.float32(0.5)
    j = (w1 - origin[1]) * scale + np.float32(0.5)
    np.clip(i, np.float32(0), np.float32(rows - 0.01), out=i)
    np.clip(j, np.float32(0), np.float32(cols - 0.01), out=j)
    index = i.astype(np.int32)
    index *= cols
    index += j.astype(np.int32)
    return index


def _quadratic_design(w: np.ndarray) -> np.ndarray:
    """Return the (N, 6) design matrix 1, w0, w1, w0^2, w0 w1, w1^2 of floor coordinates (N, 2)."""
    return np.column_stack([np.ones(len(w)), w[:, 0], w[:, 1], w[:, 0] ** 2,
                            w[:, 0] * w[:, 1], w[:, 1] ** 2])


def _relief(cells: np.ndarray, residual: np.ndarray, shape: tuple[int, int],
            sigma_cells: float) -> np.ndarray:
    """Return (rows, cols) float64: the mean residual of the floor points around each cell.

    A Gaussian-weighted mean (normalised convolution) that fades to 0 where fewer points are
    seen than half as many as around the best-seen cell: under items the quadratic alone holds.
    """
    size = shape[0] * shape[1]
    total = np.bincount(cells, weights=residual, minlength=size).reshape(shape)
    count = np.bincount(cells, minlength=size).astype(np.float64).reshape(shape)
    ksize = 2 * int(np.ceil(3 * sigma_cells)) + 1
    total, count = (cv2.GaussianBlur(image, (ksize, ksize), sigma_cells,
                                     borderType=cv2.BORDER_CONSTANT) for image in (total, count))
    full = max(0.5 * float(count.max()), 1e-12)
    return total / np.maximum(count, full)


def fit_floor_bend(points: np.ndarray, container: 'Container', threshold_m: float,
                   iterations: int = 3, min_points: int = 60) -> FloorBend | None:
    """Fit the floor's bend and relief to the floor's points of a decimated cloud (N, 3) float32.

    The floor's points are those within `threshold_m` of the current surface (first the plane,
    then the bent floor: a sag deeper than the threshold is followed round) and over its
    outline, inside the walls. The last fit uses the tighter core (half the threshold), as the
    plane's does, so thin items lying on the floor do not lift it. Then the relief: the floor
    points' mean distance to the quadratic around each cell, in two rounds (the points within
    the threshold of the bent floor, then within half of it of bend plus relief). A real bin's
    floor has ribs, feet and dents a few millimetres high that no quadratic follows, and an
    item 8 mm thick on a rib 5 mm high stands 13 mm above the bend: past the surface margin.
    None with too few points.
    """
    floor = container.floor
    assert floor is not None
    region = np.ones(points.shape[0], dtype=bool)
    if floor.outline_m.shape[0] >= 3:
        region &= container.above_floor_outline(points, -np.float32(threshold_m))
    for wall in container.walls:
        region &= wall.distance(points) > -np.float32(threshold_m)
    height = floor.distance(points).astype(np.float64)
    chosen = region & (np.abs(height) < threshold_m)
    if np.count_nonzero(chosen) < min_points:
        return None
    basis = _plane_basis(floor.normal.astype(np.float64))      # (2, 3): floor coordinates
    origin = points[chosen].astype(np.float64).mean(axis=0)
    w = (points.astype(np.float64) - origin) @ basis.T          # (N, 2)
    design = _quadratic_design(w)
    coef = np.zeros(6)
    for k in range(iterations + 1):
        band = threshold_m if k < iterations else threshold_m / 2
        if k:
            chosen = region & (np.abs(height - design @ coef) < band)
        if np.count_nonzero(chosen) < min_points:
            return None
        rows = design[chosen]
        try:        # the normal equations: w is centred and in metres, so they are well posed
            coef = np.linalg.solve(rows.T @ rows, rows.T @ height[chosen])
        except np.linalg.LinAlgError:
            return None     # the floor's points lie on a line: no bend to fit
    fitted = rows @ coef
    low, high = float(fitted.min()), float(fitted.max())
    # The relief grid spans the floor seen, and a relief's reach beyond it.
    pad = 3 * _RELIEF_SIGMA_M
    w_low = w[chosen].min(axis=0) - pad
    extent = w[chosen].max(axis=0) + pad - w_low
    cell = max(_RELIEF_CELL_M, float(extent.max()) / _RELIEF_MAX_CELLS)
    shape = tuple(int(n) for n in np.ceil(extent / cell).astype(int) + 1)
    bend = np.clip(design @ coef, low, high)                    # (N,) at the points
    w_low = w_low.astype(np.float32)
    w32 = w.astype(np.float32)
    cells = _relief_cells(w32[:, 0], w32[:, 1], w_low, cell, shape)
    relief = np.zeros(shape)
    for band in (threshold_m, threshold_m / 2):
        near = region & (np.abs(height - bend - relief.ravel()[cells]) < band)
        if np.count_nonzero(near) < min_points:
            break
        chosen = near
        relief = _relief(cells[chosen], (height - bend)[chosen], shape, _RELIEF_SIGMA_M / cell)
    surface = bend + relief.ravel()[cells]
    residual = float(np.sqrt(np.mean((height[chosen] - surface[chosen]) ** 2)))
    seen = np.zeros(shape[0] * shape[1], dtype=bool)
    seen[cells[chosen]] = True
    return FloorBend(basis=basis.astype(np.float32), shift=(-basis @ origin).astype(np.float32),
                     coefficients=coef, low_m=low, high_m=high, residual_m=residual,
                     relief=relief.astype(np.float32), relief_origin=w_low,
                     relief_cell_m=cell,
                     relief_m=float(np.sqrt(np.mean(relief.ravel()[seen] ** 2))))


@dataclass(frozen=True)
class Container:
    """The detected container: floor (normal up) and walls (normals inward).

    The floor is None when items hide it (a full bin): the walls alone then bound the interior.
    """

    floor: Plane | None
    walls: tuple[Plane, ...]
    #: 'detected' (searched this frame), 'tracked' (last frame's, refined) or 'reference'.
    source: str
    #: Per-pixel depth of the empty container (reference mode), NaN where unknown.
    reference_depth_m: np.ndarray | None = field(default=None, repr=False)
    #: Per pixel (reference mode): the empty frame sees the container's inside or its inner
    #: surface along that ray (False: the cell around the bin, a neighbour, the rim's outside).
    reference_inside: np.ndarray | None = field(default=None, repr=False)
    #: The floor's bend above its plane (auto mode, ContainerConfig.floor_bend).
    floor_bend: FloorBend | None = None

    @property
    def is_bin(self) -> bool:
        """Return True for a container with walls (False: only the support surface seen)."""
        return bool(self.walls)

    @property
    def planes(self) -> tuple[Plane, ...]:
        """Return the floor (when seen) followed by the walls."""
        return ((self.floor,) if self.floor is not None else ()) + self.walls

    def interior(self, points: np.ndarray, margin_m: float, *,
                 corner_radius_m: float = 0.0) -> np.ndarray:
        """Return (N,) bool: points (N, 3) float32 inside the container, off its surfaces.

        Inside every half-space by more than `margin_m`, not within `corner_radius_m` of two
        planes at once (the fillet where they meet) and, in a bin, above the visible floor's
        outline by more than `margin_m` from its edge: a wall stands at the floor's edge even
        where the camera sees it too obliquely to find its plane. A support surface alone (no
        wall) has no edge: items may reach beyond the part of a table in view.
        """
        if points.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        planes = self.planes
        normals = [p.normal for p in planes]
        offsets = [p.offset for p in planes]
        if self.floor is not None and self.walls:
            edge_normals, edge_offsets = self.open_floor_edges
            normals += list(edge_normals)
            offsets += list(edge_offsets)
        # One (N, 3) x (3, K) product for every plane and outline edge: a few hundred
        # microseconds for 100k pixels, where per-plane passes or einsum take milliseconds.
        # (K, N) rows, so the reductions below run along contiguous memory.
        count = len(normals)
        bend = self.floor_bend if self.floor is not None else None
        if bend is not None:        # the floor coordinates ride along in the same product
            normals += list(bend.basis)
            offsets += list(bend.shift)
        distances = np.matmul(np.asarray(normals, np.float32), points.T)
        distances += np.asarray(offsets, np.float32)[:, None]
        low = high = 0.0
        if bend is not None:
            w0, w1 = distances[count], distances[count + 1]
            distances = distances[:count]
            # The floor's distance with the relief at its lowest first: the relief can only
            # take points away from there, and only those kept and within its range of the
            # margin look it up (two passes over the row instead of a gather of every point).
            low, high = bend.relief_range_m
            distances[0] -= bend.bend_at(w0, w1, offset_m=low)
        keep = distances.min(axis=0) > np.float32(margin_m)
        if bend is not None and high > low:
            floor = distances[0]
            near = np.flatnonzero(keep & (floor <= np.float32(margin_m + high - low)))
            if near.size:
                # (w0 now holds the bend: the few coordinates needed are computed again)
                w = np.matmul(bend.basis, np.take(points, near, axis=0).T) + bend.shift[:, None]
                floor[near] += np.float32(low) - bend.relief_at(w[0], w[1])
                keep[near] = floor[near] > np.float32(margin_m)
        if corner_radius_m > 0 and len(planes) >= 2:
            # (the fillet's test takes the relief where it was looked up, its lowest elsewhere)
            close = distances[:len(planes)] < np.float32(corner_radius_m)
            keep &= close.sum(axis=0, dtype=np.int8) < 2
        return keep

    @cached_property
    def open_floor_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the floor outline's edges (E, 3), (E,) on the sides no wall plane bounds.

        The outline is the hull of the floor the camera sees, and in a full bin items hide most
        of it: its edges cut away the items standing over the hidden floor (10 % of the item
        pixels of held-out synthetic totes). Where a wall was found, the wall is the bound: an
        edge is dropped when a wall's inward normal, projected on the floor, lies within 45
        degrees of the edge's (the wall on that side of a four-sided bin). Sides whose wall was
        not found keep their edges: without them 13 % of the tote's pixels would pass, not 1.4 %.
        """
        assert self.floor is not None
        edge_normals, edge_offsets = self.floor.outline_edges
        if not self.walls or edge_normals.shape[0] == 0:
            return edge_normals, edge_offsets
        up = self.floor.normal
        along = np.stack([w.normal - (w.normal @ up) * up for w in self.walls])
        lengths = np.linalg.norm(along, axis=1, keepdims=True)
        along = along / np.maximum(lengths, 1e-9)
        covered = (edge_normals @ along.T.astype(np.float32) > np.float32(_SIDE_COS)).any(axis=1)
        return edge_normals[~covered], edge_offsets[~covered]

    def above_floor_outline(self, points: np.ndarray, margin_m: float) -> np.ndarray:
        """Return (N,) bool: points whose foot on the floor plane lies inside its outline.

        Inside by more than `margin_m` (negative: outside by at most that much).
        """
        assert self.floor is not None
        edge_normals, edge_offsets = self.floor.outline_edges
        inside = np.matmul(points, edge_normals.T) + edge_offsets
        return np.all(inside > np.float32(margin_m), axis=1)

    def wall_distance(self, points: np.ndarray) -> np.ndarray:
        """Return (N,) the distance of each point to the nearest wall (inf without walls)."""
        if not self.walls:
            return np.full(points.shape[0], np.inf)
        normals = np.stack([p.normal for p in self.walls])
        offsets = np.array([p.offset for p in self.walls])
        return (np.asarray(points, float) @ normals.T + offsets).min(axis=1)

    def summary(self) -> dict:
        """Return a JSON-friendly description (diagnostics, reports)."""
        return {'source': self.source,
                'floor': self.floor.summary() if self.floor is not None else None,
                'floor_bend': self.floor_bend.summary() if self.floor_bend is not None else None,
                'walls': [w.summary() for w in self.walls]}


def _polygon_edges(floor: Plane) -> tuple[np.ndarray, np.ndarray]:
    """Return (E, 3) inward edge normals (in the floor plane) and (E,) offsets of its outline.

    A point p is inside the outline's prism when every n_e . p + o_e >= 0.
    """
    poly = floor.outline_m
    centre = poly.mean(axis=0)
    edges = np.roll(poly, -1, axis=0) - poly
    normals = np.column_stack([floor.normal[1] * edges[:, 2] - floor.normal[2] * edges[:, 1],
                               floor.normal[2] * edges[:, 0] - floor.normal[0] * edges[:, 2],
                               floor.normal[0] * edges[:, 1] - floor.normal[1] * edges[:, 0]])
    lengths = np.linalg.norm(normals, axis=1)
    ok = lengths > 1e-9
    normals, starts = normals[ok] / lengths[ok, None], poly[ok]
    offsets = -np.einsum('ek,ek->e', normals, starts)
    flip = normals @ centre + offsets < 0
    normals[flip], offsets[flip] = -normals[flip], -offsets[flip]
    return normals.astype(np.float32), offsets.astype(np.float32)


@dataclass(frozen=True)
class ContainerStatus:
    """What the container step did this frame (for /diagnostics and reports)."""

    mode: str
    found: bool                 # a bin (walls) was found; a support surface alone is not one
    reason: str                 # why none was found, or how it was found
    removed_pixels: int = 0     # graspable-labelled pixels the container step removed
    removed_candidates: int = 0

    def summary(self) -> dict:
        """Return a JSON-friendly description."""
        return {'mode': self.mode, 'found': self.found, 'reason': self.reason,
                'removed_pixels': self.removed_pixels,
                'removed_candidates': self.removed_candidates}


def _orient_to_camera(normal: np.ndarray, offset: float) -> tuple[np.ndarray, float]:
    """Flip a plane so that the camera (the origin) lies on its positive side."""
    return (normal, offset) if offset >= 0 else (-normal, -offset)


def _fit_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Return the least-squares plane (unit normal, offset) through points (N, 3)."""
    centroid = points.mean(axis=0)
    # The normal is the eigenvector of the smallest eigenvalue of the scatter matrix (one
    # (3, N) @ (N, 3) product: a third faster than einsum, and this runs twice per plane).
    centred = points - centroid
    scatter = centred.T @ centred
    _, vectors = np.linalg.eigh(scatter)
    normal = vectors[:, 0]
    return _orient_to_camera(normal, -float(normal @ centroid))


def _core_fit(points: np.ndarray, threshold_m: float) -> tuple[np.ndarray, float]:
    """Return the plane of a patch fitted to its tighter core (within half the threshold).

    Thin items lying on a floor sit within the RANSAC threshold and would lift a plain fit.
    Detection and tracking share it, so a bin that has not moved tracks to the same plane.
    """
    normal, offset = _fit_plane(points)
    core = np.abs(points @ normal + offset) < threshold_m / 2
    if np.count_nonzero(core) >= max(3, points.shape[0] // 2):
        normal, offset = _fit_plane(points[core])
    return normal, offset


def _plane_basis(normal: np.ndarray) -> np.ndarray:
    """Return (2, 3): two orthonormal directions spanning the plane of unit `normal`."""
    seed = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = cross3(normal, seed)
    u /= np.linalg.norm(u)
    return np.stack([u, cross3(normal, u)])


def _outline(points: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Return the convex hull (K, 3) of points projected onto their plane."""
    u, v = _plane_basis(normal)
    uv = np.column_stack([points @ u, points @ v]).astype(np.float32)
    hull = cv2.convexHull(uv)
    hull = cv2.approxPolyDP(hull, 0.005, True).reshape(-1, 2).astype(float)
    return hull[:, :1] * u + hull[:, 1:] * v - offset * normal


def _make_plane(points: np.ndarray, normal: np.ndarray, offset: float,
                extent: np.ndarray | None = None) -> Plane:
    """Return the plane fitted to `points`, outlined by `extent`.

    The extent holds all its coplanar points: a floor that items split into pieces still spans
    the whole bin.
    """
    distances = points @ normal + offset
    return Plane(normal=normal, offset=float(offset), inliers=int(points.shape[0]),
                 residual_m=float(np.sqrt(np.mean(distances ** 2))),
                 outline_m=_outline(points if extent is None else extent, normal, offset))


@dataclass(frozen=True)
class DecimatedCloud:
    """Valid points of every `step`-th pixel, with their cell in the decimated grid."""

    points: np.ndarray        # (N, 3) float32
    cells: np.ndarray         # (N,) flat index into the (rows, cols) grid
    grid_shape: tuple[int, int]

    @classmethod
    def from_depth(cls, depth_m: np.ndarray, xyz: np.ndarray, step: int) -> 'DecimatedCloud':
        """Sample an organized cloud (H, W, 3) and its depth (H, W) every `step` pixels."""
        sub = xyz[step // 2::step, step // 2::step]
        z = depth_m[step // 2::step, step // 2::step]
        cells = np.flatnonzero(np.isfinite(z) & (z > 0))
        points = np.ascontiguousarray(sub.reshape(-1, 3)[cells], dtype=np.float32)
        return cls(points=points, cells=cells, grid_shape=(int(z.shape[0]), int(z.shape[1])))

    def largest_component(self, index: np.ndarray) -> np.ndarray:
        """Return the subset of point indices `index` forming the largest 8-connected patch."""
        if index.size == 0:
            return index
        grid = np.zeros(self.grid_shape, np.uint8)
        grid.ravel()[self.cells[index]] = 1
        count, labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
        if count <= 2:
            return index
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        return index[labels.ravel()[self.cells[index]] == biggest]


def _sample_triplets(cloud: DecimatedCloud, remaining: np.ndarray, hypotheses: int,
                     rng: np.random.Generator, radius_cells: int = 6) -> np.ndarray:
    """Return (H', 3) indices into `remaining`: half random triplets, half local ones."""
    count = remaining.size
    spread = rng.integers(0, count, size=(hypotheses - hypotheses // 2, 3))
    rows, cols = cloud.grid_shape
    lookup = np.full(rows * cols, -1, dtype=np.intp)
    lookup[cloud.cells[remaining]] = np.arange(count)
    seeds = rng.integers(0, count, size=hypotheses // 2)
    seed_cells = cloud.cells[remaining[seeds]]
    r0, c0 = np.divmod(seed_cells, cols)
    offsets = rng.integers(-radius_cells, radius_cells + 1, size=(2, seeds.size, 2))
    others = []
    for dr, dc in ((offsets[0, :, 0], offsets[0, :, 1]), (offsets[1, :, 0], offsets[1, :, 1])):
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
        index = np.full(seeds.size, -1, dtype=np.intp)
        index[inside] = lookup[rr[inside] * cols + cc[inside]]
        others.append(index)
    local = np.column_stack([seeds, others[0], others[1]])
    local = local[(local[:, 1] >= 0) & (local[:, 2] >= 0)]
    return np.concatenate([spread, local])


def ransac_planes(cloud: DecimatedCloud, *, threshold_m: float, hypotheses: int,
                  max_planes: int, min_inliers: int,
                  rng: np.random.Generator) -> list[tuple[Plane, np.ndarray]]:
    """Extract connected planar patches one after another; return (plane, inlier mask) pairs.

    Half the hypotheses are triplets of nearby points (in the decimated image), half anywhere:
    nearby triplets mostly lie on one surface even when it is a small part of the view. Each
    round scores all hypotheses in one (H, N) product; of the four best, the one whose
    inliers form the largest connected patch in the image is refined by least squares on that
    patch (a plane through several surfaces of a cluttered bin would otherwise win); the
    plane's points leave the pool.
    """
    points = cloud.points
    found: list[tuple[Plane, np.ndarray]] = []
    remaining = np.arange(points.shape[0])
    thr = np.float32(threshold_m)
    for _ in range(max_planes):
        if remaining.size < max(min_inliers, 3):
            break
        pool = points[remaining]
        pick = _sample_triplets(cloud, remaining, hypotheses, rng)
        if pick.shape[0] == 0:
            break
        a, b, c = pool[pick[:, 0]], pool[pick[:, 1]], pool[pick[:, 2]]
        normals = np.cross(b - a, c - a)
        norms = np.linalg.norm(normals, axis=1)
        ok = norms > 1e-9
        if not ok.any():
            break
        normals = normals[ok] / norms[ok, None]
        offsets = -np.einsum('hk,hk->h', normals, a[ok])
        # (H, N): each hypothesis' distances are contiguous for the count along them.
        distances = np.matmul(normals.astype(np.float32), pool.T)
        distances += offsets.astype(np.float32)[:, None]
        inliers = np.abs(distances) < thr
        counts = np.count_nonzero(inliers, axis=1)
        patch = np.zeros(0, dtype=np.intp)
        for h in np.argsort(counts)[::-1][:4]:
            if counts[h] < min_inliers:
                break
            candidate = cloud.largest_component(remaining[inliers[h]])
            if candidate.size > patch.size:
                patch = candidate
        if patch.size < min_inliers:
            continue    # an unlucky draw: the next round samples again
        for _ in range(2):      # least-squares refinement on the connected patch
            normal, offset = _fit_plane(points[patch].astype(np.float64))
            near = remaining[np.abs(pool @ normal.astype(np.float32)
                                    + np.float32(offset)) < thr]
            refined = cloud.largest_component(near)
            if refined.size < min_inliers:
                break
            patch = refined
        mask = np.zeros(points.shape[0], dtype=bool)
        mask[patch] = True
        patch_pts = points[patch].astype(np.float64)
        normal, offset = _core_fit(patch_pts, threshold_m)
        # Every point of the plane leaves the pool, not just the patch: the ground seen on
        # several sides of a bin would otherwise come back piece by piece.
        coplanar = np.abs(pool @ normal.astype(np.float32) + np.float32(offset)) < thr
        extent = np.concatenate([points[patch], pool[coplanar]]).astype(np.float64)
        found.append((_make_plane(points[patch].astype(np.float64), normal, offset, extent),
                      mask))
        remaining = remaining[~(mask[remaining] | coplanar)]
    return found


def _choose_walls(candidates: list[tuple[Plane, np.ndarray]], centre: np.ndarray,
                  points: np.ndarray, margin_m: float) -> list[Plane]:
    """Keep walls that face `centre`; of walls facing the same way keep the nearest to it.

    A neighbouring bin's wall can face the same way as ours, further out. Walls must also face
    each other (a concave corner, seen from inside): each wall's points lie on the inner side of
    every other wall. The outer faces of a bin seen from beside it form convex corners instead.
    """
    chosen: list[tuple[Plane, np.ndarray]] = []
    for wall, mask in sorted(candidates,
                             key=lambda pm: float(pm[0].normal @ centre + pm[0].offset)):
        if float(wall.normal @ centre + wall.offset) < margin_m:
            continue    # the interior is not in front of this face: an outer wall
        if any(float(w.normal @ wall.normal) > 0.9 for w, _ in chosen):
            continue
        if any(np.median(w.distance(points[mask])) < -margin_m
               or np.median(wall.distance(points[m])) < -margin_m for w, m in chosen):
            continue    # a convex corner with a chosen wall
        chosen.append((wall, mask))
    return [w for w, _ in chosen]


def assemble_container(planes: Sequence[tuple[Plane, np.ndarray]], cloud: DecimatedCloud,
                       config: ContainerConfig) -> tuple[Container | None, str]:
    """Choose the floor and walls among planes found in `cloud`; return (container, reason).

    The planes' masks index the cloud's points. A floor faces the camera (within 60 degrees of
    the optical axis). Its walls are planes within 60 degrees of perpendicular to it that rise
    above it, face the floor's centre (the inner face, which a camera above the bin sees) and
    come down to the floor's inliers, and nothing may be seen below the floor inside them,
    unless it lies beyond the rim (_below_only_beyond_rim).
    The floor with the most supporting points wins (the floor counted twice, weighted by the
    squared cosine of how squarely the camera sees it: the camera is assumed to look down);
    a container needs at least one wall (a steep camera sees only one or two of a bin's
    walls; a shelf is a floor and a back wall). When no floor qualifies (items hide it), three
    or more walls that stand around one common vertical make a container without a floor. With
    no wall at all, the best floor alone is returned: the support surface (a table, a conveyor),
    the lowest level surface in view, unless a level surface with things seen below it is
    ringed by rising points (_rim_share): a bin's floor whose walls are too thin or steep in
    view to fit, as from a camera high above the bin.
    """
    best: tuple[float, Container] | None = None
    surface: tuple[float, Container] | None = None
    rimmed: tuple[float, Container] | None = None
    points = cloud.points
    for floor, floor_mask in planes:
        if floor.normal[2] > -0.5:
            continue
        floor_pts = points[floor_mask]
        centre = floor_pts.mean(axis=0)
        candidates = []
        for wall, wall_mask in planes:
            if wall is floor or abs(float(wall.normal @ floor.normal)) > 0.5:
                continue
            heights = points[wall_mask] @ floor.normal + floor.offset
            if np.median(heights) < config.surface_margin_m:
                continue
            if float(np.quantile(heights, 0.05)) > config.max_floor_gap_m:
                continue    # stands on something else: the wall's foot is not on this floor
            reach = floor_pts @ wall.normal + wall.offset
            if float(reach.min()) > config.max_floor_gap_m:
                continue    # does not come down to this floor
            if float(np.quantile(reach, 0.02)) < -2 * config.plane_threshold_m:
                continue    # floor on both sides: an item's face, not a wall
            candidates.append((wall, wall_mask))
        chosen = _choose_walls(candidates, centre, points, config.surface_margin_m)
        container = Container(floor=floor, walls=tuple(chosen), source='detected')
        if _sees_below_floor(container, points, config,
                             _outer_faces(floor, centre, planes, points.shape[0], config)) \
                and not _below_only_beyond_rim(cloud, floor_mask, container, config):
            continue    # an item's top, not the floor: other surfaces lie below it
        ringed = False
        if not chosen and float(np.mean(floor.distance(points) < -2 * config.plane_threshold_m)
                                ) > 0.05:
            if _rim_share(cloud, floor_mask, floor, config) < _RIM_SHARE:
                continue    # a support surface is the lowest one in view
            ringed = True
        # A wall and the floor could swap roles in a corner view, but the floor of a bin seen
        # from above is its largest visible surface, and the one the camera faces most (the
        # squared cosine: a far wall with more points, seen 60 degrees off, still loses).
        facing = float(floor.normal[2]) ** 2
        support = (2 * floor.inliers + sum(w.inliers for w in chosen)) * facing
        if ringed:
            if rimmed is None or support > rimmed[0]:
                rimmed = (support, container)
        elif not chosen:
            if surface is None or support > surface[0]:
                surface = (support, container)
        elif best is None or support > best[0]:
            best = (support, container)
    if best is not None:
        return best[1], 'detected'
    walls = _walls_without_floor(planes, points, config)
    if walls is not None:
        floor = _floor_between(walls, planes, points, config)
        if floor is not None:
            return Container(floor=floor, walls=walls, source='detected'), 'detected'
        return Container(floor=None, walls=walls, source='detected'), 'detected (floor hidden)'
    if rimmed is not None:
        return rimmed[1], RIMMED_FLOOR
    if surface is not None:
        return surface[1], 'no wall in view: support surface only'
    return None, 'no floor with a wall, nor three walls around one vertical, in view'


def _below_only_beyond_rim(cloud: DecimatedCloud, mask: np.ndarray,
                           container: Container, config: ContainerConfig) -> bool:
    """Return True when what is seen below a floor with walls lies beyond its rim.

    The ground between two bins, or beyond a wall too thin to fit, lies inside the floor's
    outline (which spans every coplanar point, a neighbouring bin's floor too); it is seen over
    a rim, so the points around the floor's patch rise. This holds only for the bin's main
    surface: larger than each of its walls and seen more squarely (a patch of a far wall, which
    an oblique camera may see more squarely than the floor, is smaller than the wall found).
    """
    floor = container.floor
    if floor is None or not container.walls:
        return False
    if any(w.inliers > floor.inliers or -float(w.normal[2]) > -float(floor.normal[2])
           for w in container.walls):
        return False
    return _rim_share(cloud, mask, floor, config, whole=False) >= _RIM_SHARE


def _rim_share(cloud: DecimatedCloud, mask: np.ndarray, floor: Plane,
               config: ContainerConfig, *, whole: bool = True) -> float:
    """Return the share of the points around a plane's patch that rise above it (0..1).

    The ring is _RIM_CELLS decimated cells wide around the patch (and its holes); points on the
    plane are left out, the rest count as rising (> surface margin above) or falling (below).
    With `whole`, a patch that touches the image border (not seen whole, with a rim around
    it) has share 0.
    """
    rows, cols = cloud.grid_shape
    row, col = np.divmod(cloud.cells[mask], cols)
    if row.size == 0:
        return 0.0
    if whole and (row.min() == 0 or col.min() == 0 or row.max() == rows - 1
                  or col.max() == cols - 1):
        return 0.0
    grid = np.zeros((rows, cols), np.uint8)
    grid.ravel()[cloud.cells[mask]] = 1
    size = 2 * _RIM_CELLS + 1
    ring = cv2.dilate(grid, np.ones((size, size), np.uint8)) - grid
    lookup = np.full(rows * cols, -1, dtype=np.intp)
    lookup[cloud.cells] = np.arange(cloud.cells.size)
    index = lookup[np.flatnonzero(ring.ravel())]
    heights = floor.distance(cloud.points[index[index >= 0]])
    rising = int(np.count_nonzero(heights > config.surface_margin_m))
    falling = int(np.count_nonzero(heights < -config.surface_margin_m))
    return rising / (rising + falling) if rising + falling else 0.0


def _outer_faces(floor: Plane, centre: np.ndarray, planes: Sequence[tuple[Plane, np.ndarray]],
                 count: int, config: ContainerConfig) -> np.ndarray:
    """Return (count,) bool: inliers of the bin's outer faces as seen from beside the bin.

    A camera that is not over the bin sees the outside of its near wall: a plane upright to
    the floor with the floor's centre behind it. Where it reaches below the floor, its points
    lie below the floor's edge but say nothing against the floor.
    """
    outer = np.zeros(count, dtype=bool)
    for plane, mask in planes:
        if plane is floor or abs(float(plane.normal @ floor.normal)) > 0.5:
            continue
        if float(plane.normal @ centre + plane.offset) < -config.surface_margin_m:
            outer |= mask
    return outer


def _sees_below_floor(container: Container, points: np.ndarray, config: ContainerConfig,
                      exempt: np.ndarray | None = None) -> bool:
    """Return True when too much is seen below a floor candidate: it is not the floor.

    Over 5 % of the points inside the walls and over the floor's outline (grown by _OVERHANG_M)
    more than two RANSAC thresholds below it: nothing is seen through a real floor. `exempt`
    points (the bin's outer faces) are not counted. (The outline spans all coplanar points, so
    a neighbouring bin's floor at the same height stretches it over the ground between the
    bins; the floor's own patch outline avoids that, but then a small patch of a far wall
    passes for a floor when items hide the real one: the real ARC tote showed it.)
    """
    floor = container.floor
    assert floor is not None
    inside = np.ones(points.shape[0], dtype=bool) if exempt is None else ~exempt
    for wall in container.walls:
        inside &= wall.distance(points) > 0
    inside &= container.above_floor_outline(points, -_OVERHANG_M)
    if not inside.any():
        return False
    below = container.floor.distance(points[inside]) < -2 * config.plane_threshold_m
    return float(np.mean(below)) > 0.05


def _floor_between(walls: tuple[Plane, ...], planes: Sequence[tuple[Plane, np.ndarray]],
                   points: np.ndarray, config: ContainerConfig) -> Plane | None:
    """Return the floor of walls found without one: the lowest level plane between them.

    Items along the walls can hide where the walls meet the floor, so the floor+walls test
    fails although the floor is in view. Level means within 10 degrees of perpendicular to
    every wall; nothing inside the walls may be seen below it.
    """
    best = None
    for plane, mask in planes:
        if plane.normal[2] > -0.5 or any(abs(float(plane.normal @ w.normal)) > np.sin(
                np.radians(10)) for w in walls):
            continue
        centre = points[mask].mean(axis=0)
        if any(float(w.normal @ centre + w.offset) < config.surface_margin_m for w in walls):
            continue
        container = Container(floor=plane, walls=walls, source='detected')
        if _sees_below_floor(container, points, config):
            continue
        if best is None or plane.inliers > best.inliers:
            best = plane
    return best


def _walls_without_floor(planes: Sequence[tuple[Plane, np.ndarray]], points: np.ndarray,
                         config: ContainerConfig) -> tuple[Plane, ...] | None:
    """Return three or more walls standing around one vertical that points at the camera.

    Each pair of roughly perpendicular planes (adjacent walls) proposes a vertical, their cross
    product; the walls of a vertical are the planes within 20 degrees of parallel to it that face
    the centre of them all. The vertical with the most points on its walls and on level faces
    (items lying flat) wins; None if none has three walls.
    """
    best: tuple[int, tuple[Plane, ...]] | None = None
    tolerance = np.sin(np.radians(20))
    for i, (a, _) in enumerate(planes):
        for b, _ in planes[i + 1:]:
            if abs(float(a.normal @ b.normal)) > 0.3:
                continue
            up = cross3(a.normal, b.normal)
            up /= np.linalg.norm(up)
            up = up if up[2] < 0 else -up
            if up[2] > -0.5:
                continue      # the camera does not look down into it
            upright = [(p, m) for p, m in planes if abs(float(p.normal @ up)) < tolerance]
            if len(upright) < 3:
                continue
            centre = np.concatenate([points[m] for _, m in upright]).mean(axis=0)
            walls = _choose_walls(upright, centre, points, config.surface_margin_m)
            # Items in a bin mostly lie flat: faces level with the hidden floor support it.
            level = sum(p.inliers for p, _ in planes if abs(float(p.normal @ up)) > np.cos(
                np.radians(20)))
            support = sum(w.inliers for w in walls) + level
            if len(walls) >= 3 and (best is None or support > best[0]):
                best = (support, tuple(walls))
    return None if best is None else best[1]


class ContainerDetector:
    """The container step of one camera stream: detect or track, or use a reference frame."""

    def __init__(self, config: ContainerConfig | None = None) -> None:
        self.config = config if config is not None else ContainerConfig()
        self._rng = np.random.Generator(np.random.PCG64(self.config.seed))
        self._tracked: Container | None = None
        self._reference: Container | None = None
        self._bend: tuple[tuple, FloorBend | None] | None = None

    @property
    def reference(self) -> Container | None:
        """Return the container of the reference frame, if one was set."""
        return self._reference

    def reset(self) -> None:
        """Forget the tracked container (a new scene, a camera that moved)."""
        self._tracked = None
        self._bend = None

    def set_reference(self, depth_m: np.ndarray, xyz: np.ndarray) -> Container:
        """Use an empty-container depth frame (float32 metres, NaN invalid) and its cloud.

        Raises ContainerError when the frame is unusable or holds no container.
        """
        depth = np.asarray(depth_m)
        if depth.ndim != 2 or depth.dtype != np.float32:
            raise ContainerError(f'reference depth must be an (H, W) float32 image in metres, '
                                 f'got {depth.dtype} {depth.shape}')
        if not np.isfinite(depth).any():
            raise ContainerError('reference depth has no valid pixel')
        cloud = self._decimate(depth, xyz)
        container, reason = (self._assemble(cloud) if cloud is not None
                             else (None, TOO_FEW_POINTS))
        if container is None:
            raise ContainerError(f'no container in the reference frame: {reason}')
        # A ray that meets the empty bin's floor or walls (within the plane fit's own inlier
        # distance) looks into the bin: whatever stands in front of that surface later is inside
        # it, even where its own point lies beyond the outline of the floor in view (an item at
        # the image border, over floor the camera does not see).
        inside = np.zeros(depth.shape, dtype=bool)
        valid = np.flatnonzero(np.isfinite(depth))
        points = np.take(np.asarray(xyz, np.float32).reshape(-1, 3), valid, axis=0)
        inside.ravel()[valid] = container.interior(points, -self.config.plane_threshold_m)
        self._reference = Container(floor=container.floor, walls=container.walls,
                                    source='reference', reference_depth_m=depth.copy(),
                                    reference_inside=inside)
        return self._reference

    def locate(self, depth_m: np.ndarray, xyz: np.ndarray) -> tuple[Container | None, str]:
        """Return this frame's container (None in mode 'none' or when none is seen) and why."""
        mode = self.config.mode
        if mode == 'none':
            return None, 'container step off'
        if mode == 'reference':
            if self._reference is None:
                return None, 'no reference frame yet'
            ref = self._reference.reference_depth_m
            if ref is not None and ref.shape != depth_m.shape:
                return None, (f'reference frame is {ref.shape[1]}x{ref.shape[0]}, depth is '
                              f'{depth_m.shape[1]}x{depth_m.shape[0]}')
            return self._reference, 'reference'
        cloud = self._decimate(depth_m, xyz)
        if cloud is None:
            self._tracked = None
            return None, TOO_FEW_POINTS
        if self._tracked is not None:
            tracked = self._track(self._tracked, cloud)
            if tracked is not None:
                self._tracked = tracked
                return self._bent(tracked, cloud), 'tracked'
        container, reason = self._assemble(cloud)
        self._tracked = container
        return (self._bent(container, cloud) if container is not None else None), reason

    def _bent(self, container: Container, cloud: DecimatedCloud) -> Container:
        """Return the container with its floor's bend (when asked for).

        Fitted to this frame's floor points, or last frame's bend while the floor plane has not
        moved (a tracked plane that stood still keeps its normal and offset): the bend is the
        bin's, not the items'.
        """
        floor = container.floor
        if not self.config.floor_bend or floor is None:
            return container
        key = (floor.normal.tobytes(), floor.offset)
        if self._bend is not None and self._bend[0] == key:
            bend = self._bend[1]
        else:
            bend = fit_floor_bend(cloud.points, container, self.config.plane_threshold_m)
            self._bend = (key, bend)
        return replace(container, floor_bend=bend) if bend is not None else container

    def _decimate(self, depth_m: np.ndarray, xyz: np.ndarray) -> DecimatedCloud | None:
        """Return the decimated cloud of a frame, None when it has too few points to search."""
        cloud = DecimatedCloud.from_depth(depth_m, xyz, self.config.decimation_px)
        return cloud if cloud.points.shape[0] >= 30 else None

    def _assemble(self, cloud: DecimatedCloud) -> tuple[Container | None, str]:
        cfg = self.config
        min_inliers = max(10, int(cfg.min_plane_fraction * cloud.points.shape[0]))
        planes = ransac_planes(cloud, threshold_m=cfg.plane_threshold_m,
                               hypotheses=cfg.ransac_hypotheses, max_planes=cfg.max_planes,
                               min_inliers=min_inliers, rng=self._rng)
        return assemble_container(planes, cloud, cfg)

    def _track(self, previous: Container, cloud: DecimatedCloud) -> Container | None:
        """Refit last frame's planes on this frame's points; None when one no longer fits."""
        threshold = np.float32(self.config.plane_threshold_m)
        points = cloud.points
        refitted = []
        for plane in previous.planes:
            near = np.flatnonzero(np.abs(plane.distance(points)) < threshold)
            patch = cloud.largest_component(near)
            if patch.size < max(10, self.config.track_min_fraction * plane.inliers):
                return None
            patch_pts = points[patch].astype(np.float64)
            normal, offset = _core_fit(patch_pts, self.config.plane_threshold_m)
            alignment = float(normal @ plane.normal)
            if alignment < 0.99:                        # more than ~8 degrees: search again
                return None
            if abs(offset - plane.offset) < _STILL_OFFSET_M and alignment > _STILL_COS:
                refitted.append(_still(plane, patch_pts))
                continue
            refitted.append(_make_plane(patch_pts, normal, offset,
                                        points[near].astype(np.float64)))
        if previous.floor is None:
            return Container(floor=None, walls=tuple(refitted), source='tracked')
        return Container(floor=refitted[0], walls=tuple(refitted[1:]), source='tracked')


def _still(plane: Plane, patch_pts: np.ndarray) -> Plane:
    """Return `plane` with this frame's inlier count and residual: the bin has not moved.

    Its outline (a convex hull) and the outline's edges stay as they are: a fixed camera over a
    fixed bin pays neither again, and the container does not jitter with sensor noise.
    """
    distances = patch_pts @ plane.normal + plane.offset
    kept = replace(plane, inliers=int(patch_pts.shape[0]),
                   residual_m=float(np.sqrt(np.mean(distances ** 2))))
    if 'outline_edges' in plane.__dict__:           # the cached_property's value
        kept.__dict__['outline_edges'] = plane.__dict__['outline_edges']
    return kept


def container_keep_mask(container: Container, xyz: np.ndarray, depth_m: np.ndarray,
                        index: np.ndarray, config: ContainerConfig) -> np.ndarray:
    """Return (len(index),) bool: which flat pixel indices are item surface, not container.

    Inside the container and off its surfaces (Container.interior), and in reference mode also
    in front of the empty container's surface by more than the margin (where it is known).
    """
    margin = config.surface_margin_m
    # np.take along axis 0 gathers the (N, 3) rows ~4x faster than fancy indexing.
    points = np.take(xyz.reshape(-1, 3), index, axis=0)
    ref = container.reference_depth_m
    if ref is None:
        return container.interior(points, margin, corner_radius_m=config.corner_radius_m)
    # The empty container's own depth is the precise surface (fillets, ribs, handles included):
    # a pixel is an item where it stands in front of it by the margin (where it is known), and
    # inside the bin: inside its planes, or on a ray that looked into the empty bin (an item at
    # the image border stands over floor out of view, beyond the visible floor's outline).
    keep = container.interior(points, 0.0)
    if container.reference_inside is not None:
        keep |= np.take(container.reference_inside.ravel(), index)
    ref_z = np.take(ref.ravel(), index)
    z = np.take(depth_m.ravel(), index)
    keep &= ~np.isfinite(ref_z) | (z < ref_z - np.float32(margin))
    return keep
