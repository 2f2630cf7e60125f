"""Suction and parallel-jaw grasp candidates on item regions.

Suction follows SuctionNet-1Billion's training-free baseline: a cup seals where the surface
normals under it agree, so the score is high where the spread of normals in a cup-sized window is
low, the cup fits inside the region and the approach is close to gravity (or the camera axis).
Narrow regions (cylinders lying down, thin boxes) get a parallel grasp across their minor axis.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Sequence

import cv2
import numpy as np

from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.config import GraspConfig
from seg_perception.grasp.regions import (copy_masked, cross_floats, Region, region_pixels,
                                          rows_of, write_pixels)

GRASP_KINDS = ('suction', 'parallel')


@dataclass(frozen=True)
class GraspCandidate:
    """One grasp pose in the camera frame: z is the surface normal pointing toward the camera."""

    position: np.ndarray            # (3,) metres, on the surface
    rotation: np.ndarray            # (3, 3) columns x (major axis), y = z × x, z (normal)
    quaternion: np.ndarray          # (4,) x, y, z, w of `rotation`
    kind: str                       # 'suction' | 'parallel'
    class_id: int
    class_name: str
    region_id: int
    score: float                    # 0..1, higher is better
    area_m2: float
    flatness_rms_m: float
    extent_m: tuple[float, float]   # (major, minor) of the region
    point_count: int
    pixel: tuple[int, int]          # (u, v) in the depth image

    @property
    def normal(self) -> np.ndarray:
        """Return the unit surface normal: the z column of the rotation."""
        return self.rotation[:, 2]

    @property
    def approach(self) -> np.ndarray:
        """Return the direction the tool moves in to reach the surface (-normal)."""
        return -self.rotation[:, 2]

    def summary(self) -> dict:
        """Return a JSON-friendly description."""
        return {'kind': self.kind, 'class_name': self.class_name, 'class_id': self.class_id,
                'region_id': self.region_id, 'score': self.score,
                'position': self.position.tolist(), 'quaternion': self.quaternion.tolist(),
                'normal': self.normal.tolist(), 'area_m2': self.area_m2,
                'flatness_rms_m': self.flatness_rms_m, 'extent_m': list(self.extent_m),
                'point_count': self.point_count, 'pixel': list(self.pixel)}


def quaternion_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """Return the unit quaternion (x, y, z, w) of a 3x3 rotation matrix (w >= 0)."""
    # Python floats: the same IEEE arithmetic as numpy's scalars, without their overhead.
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = np.asarray(
        rotation, dtype=np.float64).tolist()
    trace = m00 + m11 + m22
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s, 0.25 * s]
    elif m00 > m11 and m00 > m22:
        s = 2.0 * math.sqrt(1.0 + m00 - m11 - m22)
        q = [0.25 * s, (m01 + m10) / s, (m02 + m20) / s, (m21 - m12) / s]
    elif m11 > m22:
        s = 2.0 * math.sqrt(1.0 + m11 - m00 - m22)
        q = [(m01 + m10) / s, 0.25 * s, (m12 + m21) / s, (m02 - m20) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m22 - m00 - m11)
        q = [(m02 + m20) / s, (m12 + m21) / s, 0.25 * s, (m10 - m01) / s]
    # |q| summed in order, as np.linalg.norm's dot does for four elements.
    norm = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    quat = [c / norm for c in q]
    return np.array([-c for c in quat] if quat[3] < 0 else quat)


def grasp_frame(normal: np.ndarray, major_axis: np.ndarray) -> np.ndarray:
    """Return the rotation with z = normal, x = the major axis projected on the tangent plane."""
    # Python floats, with dots and norms summed in order as numpy's do for three elements.
    z0, z1, z2 = np.asarray(normal, dtype=np.float64).tolist()
    norm = math.sqrt(z0 * z0 + z1 * z1 + z2 * z2)
    z0, z1, z2 = z0 / norm, z1 / norm, z2 / norm
    x0, x1, x2 = np.asarray(major_axis, dtype=np.float64).tolist()
    d = x0 * z0 + x1 * z1 + x2 * z2
    x0, x1, x2 = x0 - d * z0, x1 - d * z1, x2 - d * z2
    if math.sqrt(x0 * x0 + x1 * x1 + x2 * x2) < 1e-6:
        # Major axis along the normal: any tangent direction will do.
        seed = (1.0, 0.0, 0.0) if abs(z0) < 0.9 else (0.0, 1.0, 0.0)
        x0, x1, x2 = cross_floats(z0, z1, z2, *seed)
    norm = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
    x0, x1, x2 = x0 / norm, x1 / norm, x2 / norm
    y0, y1, y2 = cross_floats(z0, z1, z2, x0, x1, x2)
    return np.array([[x0, y0, z0], [x1, y1, z1], [x2, y2, z2]])


#: An organized cloud as three contiguous (h, w) float32 planes x, y, z: every per-cell step
#: below reads and writes contiguous images instead of strided channels of an (h, w, 3) array.
Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


def surface_normals(planes: Planes, step_px: int) -> Planes:
    """Return the (h, w) float32 planes of unit normals toward the camera, NaN where undefined.

    The normal is the cross product of the organized cloud's central differences along v and u
    (exact for planes).
    """
    height, width = planes[0].shape
    normals = tuple(np.full((height, width), np.nan, dtype=np.float32) for _ in range(3))
    s = int(step_px)
    if width <= 2 * s or height <= 2 * s:
        return normals
    dux, duy, duz = (p[s:-s, 2 * s:] - p[s:-s, :-2 * s] for p in planes)   # along +u (right)
    dvx, dvy, dvz = (p[2 * s:, s:-s] - p[:-2 * s, s:-s] for p in planes)   # along +v (down)
    # n = dv x du points toward the camera (-z) for a surface facing it.
    nx = dvy * duz - dvz * duy
    ny = dvz * dux - dvx * duz
    nz = dvx * duy - dvy * dux
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    norm[norm == 0.0] = np.nan
    for out, component in zip(normals, (nx, ny, nz)):
        np.divide(component, norm, out=out[s:height - s, s:width - s])
    return normals


def _masked_smooth(planes: Planes, mask: np.ndarray, size_px: int) -> Planes:
    """Return the cloud planes box-averaged over the mask's valid points (NaN outside).

    Averaging points of a plane keeps them on the plane, so flat faces stay flat while sensor
    noise drops by the window's side length.
    """
    valid = mask & np.isfinite(planes[2])
    ksize = (size_px, size_px)
    count = cv2.blur(valid.astype(np.float32), ksize, borderType=cv2.BORDER_CONSTANT)
    invalid = ~valid
    nan = np.full(valid.shape, np.nan, dtype=np.float32)
    out = []
    with np.errstate(invalid='ignore', divide='ignore'):
        for plane in planes:
            smooth = cv2.blur(_zero_outside(plane, valid), ksize, borderType=cv2.BORDER_CONSTANT)
            smooth /= count
            out.append(copy_masked(smooth, nan, invalid))
    return tuple(out)


def _zero_outside(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return np.where(mask, values, 0) for 2-D images (a masked copy onto zeros)."""
    return copy_masked(np.zeros(values.shape, dtype=values.dtype), values, mask)


@dataclass(frozen=True)
class _RegionScores:
    """Suction score and normals of one region on a (possibly strided) grid over its bbox."""

    x0: int                   # top-left of the grid in the depth image
    y0: int
    stride: int               # grid step in depth pixels
    mask: np.ndarray          # (h, w) bool, the region on the grid
    score: np.ndarray         # (h, w) float32, 0 outside the region
    mean_normal: Planes       # (h, w) float32 x, y, z of the unit cup-window mean normals
    normal: Planes            # (h, w) float32 x, y, z of per-pixel normals (NaN: undefined)

    def to_pixel(self, v: int, u: int) -> tuple[int, int]:
        """Return the depth-image (u, v) of grid cell (v, u)."""
        return u * self.stride + self.x0, v * self.stride + self.y0

    def cells(self, pixels: np.ndarray, width: int) -> np.ndarray:
        """Return the flat grid cell v * w + u holding each flat depth pixel index."""
        grid_width = self.mask.shape[1]
        rows = pixels // width      # numpy divides by a scalar much faster than divmod does
        if self.stride == 1:
            # (row - y0) * grid_width + col - x0 with col = pixel - row * width
            cells = rows * (grid_width - width)
            cells += pixels
            cells -= self.y0 * grid_width + self.x0
            return cells
        cols = rows * -width
        cols += pixels
        cols -= self.x0
        cols //= self.stride
        rows -= self.y0
        rows //= self.stride
        rows *= grid_width
        rows += cols
        return rows

    def paint(self, pixels: np.ndarray, width: int, score_image: np.ndarray | None,
              normal_image: np.ndarray | Planes | None) -> None:
        """Write score and normals into full-resolution images on the region's pixels.

        `pixels` are the region's flat depth pixel indices; each takes its grid cell's values
        (the cell whose top-left pixel is at or above-left of it). `normal_image` is (H, W, 3)
        or three (H, W) planes. With a stride of 1 the grid is a window of the image and the
        region's pixels are its mask (both come from the region image).
        """
        if score_image is None and normal_image is None:
            return
        if self.stride == 1 and (normal_image is None or isinstance(normal_image, tuple)):
            # The grid is the depth image's window and the region's pixels are its mask: one
            # masked copy per image, no gather or scatter.
            h, w = self.mask.shape
            window = np.s_[self.y0:self.y0 + h, self.x0:self.x0 + w]
            if score_image is not None:
                copy_masked(score_image[window], self.score, self.mask)
            for plane, values in zip(normal_image or (), self.normal):
                copy_masked(plane[window], values, self.mask)
            return
        cells = self.cells(pixels, width)
        if score_image is not None:
            write_pixels(score_image, pixels, self.score.reshape(-1).take(cells))
        if isinstance(normal_image, tuple):
            for plane, values in zip(normal_image, self.normal):
                write_pixels(plane, pixels, values.reshape(-1).take(cells))
        elif normal_image is not None:
            write_pixels(normal_image, pixels,
                         np.stack([c.reshape(-1).take(cells) for c in self.normal], axis=-1))

    def paint_box(self, mask: np.ndarray, x: int, y: int, score_image: np.ndarray | None,
                  normal_planes: Planes | tuple[()]) -> None:
        """Write score and normals into full-resolution images on a region's pixels.

        `mask` is the region on its (h, w) box at (x, y) of the depth image; each pixel takes
        its grid cell's values, as in `paint`: the grid is repeated in stride x stride blocks
        and copied under the mask (no per-pixel index arithmetic, gather or scatter).
        """
        h, w = mask.shape
        s = self.stride
        r0, c0 = (y - self.y0) // s, (x - self.x0) // s
        r1, c1 = (y + h - 1 - self.y0) // s + 1, (x + w - 1 - self.x0) // s + 1
        oy, ox = y - self.y0 - r0 * s, x - self.x0 - c0 * s
        window = np.s_[y:y + h, x:x + w]
        up = np.empty(((r1 - r0) * s, (c1 - c0) * s), dtype=np.float32)
        for image, values in zip((score_image, *normal_planes), (self.score, *self.normal)):
            if image is None:
                continue
            cells = values[r0:r1, c0:c1]
            for i in range(s):          # s * s strided copies: faster than np.repeat
                for j in range(s):
                    up[i::s, j::s] = cells
            copy_masked(image[window], up[oy:oy + h, ox:ox + w], mask)


#: Suction scores are computed on a grid where the cup radius spans about this many cells:
#: enough to resolve a cup footprint, and constant work per cup at any resolution or distance.
GRID_CUP_RADIUS_PX = 6.0


def _score_region(region: Region, region_image: np.ndarray, xyz: np.ndarray,
                  camera: PinholeCamera, config: GraspConfig) -> _RegionScores:
    """Score every pixel of one region for suction (flatness x border x approach x centrality)."""
    height, width = region_image.shape
    bx, by, bw, bh = region.bbox
    depth_typ = float(region.centroid[2])
    radius_px = config.cup_radius_m * camera.fx / depth_typ
    stride = max(1, int(radius_px / GRID_CUP_RADIUS_PX))
    radius = radius_px / stride                      # cup radius in grid cells
    # Normals over a baseline of half the cup radius average out sensor noise; pixels that
    # close to the border cannot hold the cup anyway.
    step = max(config.normal_step_px, int(radius / 2))
    margin = (step + 1) * stride
    x0, y0 = max(bx - margin, 0), max(by - margin, 0)
    x1, y1 = min(bx + bw + margin, width), min(by + bh + margin, height)
    mask = region_image[y0:y1:stride, x0:x1:stride] == region.region_id
    grid = xyz[y0:y1:stride, x0:x1:stride]
    planes = tuple(np.ascontiguousarray(grid[..., c]) for c in range(3))
    n = surface_normals(_masked_smooth(planes, mask, step | 1), step)
    valid = mask & np.isfinite(n[2])
    # SuctionNet's normal-STD: spread of the normals under a cup-sized window.
    k = max(3, int(round(radius)) * 2 + 1)
    count = cv2.blur(valid.astype(np.float32), (k, k), borderType=cv2.BORDER_CONSTANT)
    mx, my, mz = (cv2.blur(_zero_outside(c, valid), (k, k), borderType=cv2.BORDER_CONSTANT)
                  for c in n)
    with np.errstate(invalid='ignore', divide='ignore'):
        for m in (mx, my, mz):
            m /= count
        # Products summed in einsum's order: the same bits as einsum('ijk,ijk->ij').
        length = np.sqrt(mx * mx + my * my + mz * mz)
        for m in (mx, my, mz):
            m /= length
    spread = np.sqrt(np.clip(1.0 - length * length, 0.0, 1.0))   # sin of the normals' spread
    s_flat = np.clip(1.0 - spread / config.max_normal_std, 0.0, 1.0)
    # The cup must fit: distance to the region border (plus the erosion) vs. its radius.
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = mask
    dist = (cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
            + config.erosion_px / stride)
    s_border = np.clip(dist / radius - 1.0, 0.0, 1.0)
    cos_max = math.cos(math.radians(config.max_approach_angle_deg))
    gx, gy, gz = config.gravity.astype(np.float32)
    cos_t = -(mx * gx + my * gy + mz * gz)
    s_angle = np.clip((cos_t - cos_max) / (1.0 - cos_max), 0.0, 1.0)
    centrality = 0.8 + 0.2 * dist / max(float(dist.max()), 1.0)
    score = s_flat * s_border * s_angle * centrality
    score = _zero_outside(score, valid & np.isfinite(score)).astype(np.float32, copy=False)
    return _RegionScores(x0=x0, y0=y0, stride=stride, mask=mask, score=score,
                         mean_normal=(mx, my, mz), normal=n)


def _suction_candidates(region: Region, scores: _RegionScores, xyz: np.ndarray,
                        config: GraspConfig) -> list[GraspCandidate]:
    """Pick the best-scoring pixels of a region, suppressing neighbours within nms_distance_m."""
    h, w = scores.mask.shape
    flat_score = scores.score.ravel()
    index = np.flatnonzero(flat_score >= max(config.min_score, 1e-6))
    if index.size == 0:
        return []
    score = flat_score[index]
    f = scores.stride
    v_cell = index // w
    u_cell = index - v_cell * w
    pts = rows_of(xyz).take((v_cell * f + scores.y0) * xyz.shape[1] + u_cell * f + scores.x0,
                            axis=0)
    columns = [np.ascontiguousarray(pts[:, i]) for i in range(3)]
    out: list[GraspCandidate] = []
    nms2 = config.nms_distance_m ** 2
    for _ in range(config.max_candidates_per_region):
        best_i = int(np.argmax(score))
        best = float(score[best_i])
        if best <= 0.0:
            break
        v, u = divmod(int(index[best_i]), w)
        position = pts[best_i].astype(np.float64)
        rotation = grasp_frame(np.array([float(m[v, u]) for m in scores.mean_normal]),
                               region.major_axis)
        out.append(_candidate(region, position, rotation, 'suction', best,
                              scores.to_pixel(v, u)))
        # |pts - pts[best_i]|^2 summed in einsum's order (the same bits as einsum('ij,ij->i')).
        d = [c - c[best_i] for c in columns]
        score[d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < nms2] = 0.0
        score[best_i] = 0.0
    return out


def _parallel_candidate(region: Region, pixels: np.ndarray, xyz: np.ndarray,
                        config: GraspConfig) -> GraspCandidate | None:
    """Return a two-finger grasp across a narrow region's minor axis, near its centroid.

    `pixels` are the region's flat depth pixel indices in row-major order.
    """
    major, minor = region.extent_m
    opening = config.gripper_max_opening_m
    if minor >= opening:
        return None
    cos_max = math.cos(math.radians(config.max_approach_angle_deg))
    cos_t = float(-(region.normal @ config.gravity))
    s_angle = min(max((cos_t - cos_max) / (1.0 - cos_max), 0.0), 1.0)
    s_fit = min(1.0, (opening - minor) / (0.3 * opening))
    s_support = min(1.0, region.point_count / (4.0 * config.min_region_pixels))
    score = s_angle * s_fit * s_support
    if score < config.min_score or score <= 0.0:
        return None
    # The region pixel nearest the centroid (the first of equals in row-major order).
    pts = rows_of(xyz).take(pixels, axis=0)
    # |pts - centroid|^2 column by column, summed in einsum('ij,ij->i')'s order.
    d = [pts[:, i] - c for i, c in enumerate(region.centroid.astype(np.float32))]
    best = int(np.argmin(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]))
    v, u = divmod(int(pixels[best]), xyz.shape[1])
    rotation = grasp_frame(region.normal, region.major_axis)
    return _candidate(region, pts[best].astype(np.float64), rotation, 'parallel', score, (u, v))


def _candidate(region: Region, position: np.ndarray, rotation: np.ndarray, kind: str,
               score: float, pixel: tuple[int, int]) -> GraspCandidate:
    return GraspCandidate(
        position=position, rotation=rotation, quaternion=quaternion_from_matrix(rotation),
        kind=kind, class_id=region.class_id, class_name=region.class_name,
        region_id=region.region_id, score=float(score), area_m2=region.area_m2,
        flatness_rms_m=region.flatness_rms_m, extent_m=region.extent_m,
        point_count=region.point_count, pixel=(int(pixel[0]), int(pixel[1])))


def generate_candidates(regions: list[Region], region_image: np.ndarray, xyz: np.ndarray,
                        camera: PinholeCamera, config: GraspConfig,
                        grasp_modes: dict[int, tuple[str, ...]],
                        score_image: np.ndarray | None = None,
                        normal_image: np.ndarray | Planes | None = None,
                        pixels: Sequence[np.ndarray] | None = None) -> list[GraspCandidate]:
    """Return suction and parallel candidates of all regions, best first, after global NMS.

    `grasp_modes` maps class id -> the class's modes. When given, `score_image` ((H, W) float32)
    and `normal_image` ((H, W, 3) float32, or a tuple of three (H, W) float32 planes) receive
    the per-pixel suction score and normal on region pixels (other pixels are left as they are).
    `pixels` (one per region, as find_regions returns them) are the regions' flat pixel
    indices, row-major; without them they are searched in `region_image`.
    """
    found: list[GraspCandidate] = []
    width = region_image.shape[1]
    for i, region in enumerate(regions):
        modes = grasp_modes.get(region.class_id, ())
        if pixels is not None:
            index = pixels[i]
        else:
            bx, by, bw, bh = region.bbox
            index = region_pixels(region_image[by:by + bh, bx:bx + bw] == region.region_id,
                                  bx, by, width)
        scores = _score_region(region, region_image, xyz, camera, config)
        if scores.stride > 1 and (score_image is not None or isinstance(normal_image, tuple)):
            # The region's pixels are its id in the region image, over its bbox.
            bx, by, bw, bh = region.bbox
            scores.paint_box(region_image[by:by + bh, bx:bx + bw] == region.region_id, bx, by,
                             score_image, normal_image if isinstance(normal_image, tuple) else ())
            if normal_image is not None and not isinstance(normal_image, tuple):
                scores.paint(index, width, None, normal_image)
        else:
            scores.paint(index, width, score_image, normal_image)
        if 'suction' in modes:
            found.extend(_suction_candidates(region, scores, xyz, config))
        if 'parallel' in modes:
            cand = _parallel_candidate(region, index, xyz, config)
            if cand is not None:
                found.append(cand)
    found.sort(key=lambda c: -c.score)
    kept: list[GraspCandidate] = []
    kept_pos: dict[str, list[list[float]]] = {kind: [] for kind in GRASP_KINDS}
    nms2 = config.nms_distance_m ** 2
    for cand in found:          # global NMS: regions of one item seen twice, suction vs parallel
        if len(kept) >= config.max_candidates:
            break
        others = kept_pos.setdefault(cand.kind, [])
        p0, p1, p2 = position = cand.position.tolist()
        # Squared distances in Python floats, summed in einsum('ij,ij->i')'s order.
        if any((o0 - p0) * (o0 - p0) + (o1 - p1) * (o1 - p1) + (o2 - p2) * (o2 - p2) < nms2
               for o0, o1, o2 in others):
            continue
        kept.append(cand)
        others.append(position)
    return kept
