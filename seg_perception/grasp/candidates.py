"""Suction and parallel-jaw grasp candidates on item regions.

Suction follows SuctionNet-1Billion's training-free baseline: a cup seals where the surface
normals under it agree, so the score is high where the spread of normals in a cup-sized window is
low, the cup fits inside the region and the approach is close to gravity (or the camera axis).
Narrow regions (cylinders lying down, thin boxes) get a parallel grasp across their minor axis.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np

from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.config import GraspConfig
from seg_perception.grasp.regions import Region

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
    m = np.asarray(rotation, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    quat = np.asarray(q)
    quat /= np.linalg.norm(quat)
    return -quat if quat[3] < 0 else quat


def grasp_frame(normal: np.ndarray, major_axis: np.ndarray) -> np.ndarray:
    """Return the rotation with z = normal, x = the major axis projected on the tangent plane."""
    z = np.asarray(normal, dtype=np.float64)
    z = z / np.linalg.norm(z)
    x = np.asarray(major_axis, dtype=np.float64)
    x = x - (x @ z) * z
    if np.linalg.norm(x) < 1e-6:   # major axis along the normal: any tangent direction will do
        x = np.cross(z, [1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def surface_normals(xyz: np.ndarray, step_px: int,
                    roi: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Return (H, W, 3) float32 unit normals toward the camera, NaN where undefined.

    The normal is the cross product of the organized cloud's central differences along v and u
    (exact for planes); `roi` (x, y, w, h) limits the work to a window.
    """
    height, width = xyz.shape[:2]
    normals = np.full((height, width, 3), np.nan, dtype=np.float32)
    x0, y0, w, h = roi if roi is not None else (0, 0, width, height)
    s = int(step_px)
    if w <= 2 * s or h <= 2 * s:
        return normals
    p = xyz[y0:y0 + h, x0:x0 + w]
    du = p[s:-s, 2 * s:] - p[s:-s, :-2 * s]      # along +u (right)
    dv = p[2 * s:, s:-s] - p[:-2 * s, s:-s]      # along +v (down)
    # n = dv x du points toward the camera (-z) for a surface facing it.
    nx = dv[..., 1] * du[..., 2] - dv[..., 2] * du[..., 1]
    ny = dv[..., 2] * du[..., 0] - dv[..., 0] * du[..., 2]
    nz = dv[..., 0] * du[..., 1] - dv[..., 1] * du[..., 0]
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    norm[norm == 0.0] = np.nan
    out = normals[y0 + s:y0 + h - s, x0 + s:x0 + w - s]
    np.divide(nx, norm, out=out[..., 0])
    np.divide(ny, norm, out=out[..., 1])
    np.divide(nz, norm, out=out[..., 2])
    return normals


def _masked_smooth(xyz: np.ndarray, mask: np.ndarray, size_px: int) -> np.ndarray:
    """Return the organized cloud box-averaged over the mask's valid points (NaN outside).

    Averaging points of a plane keeps them on the plane, so flat faces stay flat while sensor
    noise drops by the window's side length.
    """
    valid = mask & np.isfinite(xyz[..., 2])
    weight = valid.astype(np.float32)
    count = cv2.blur(weight, (size_px, size_px), borderType=cv2.BORDER_CONSTANT)
    out = np.empty(xyz.shape, dtype=np.float32)
    for c in range(3):
        channel = np.where(valid, xyz[..., c], 0.0).astype(np.float32)
        out[..., c] = cv2.blur(channel, (size_px, size_px), borderType=cv2.BORDER_CONSTANT)
    with np.errstate(invalid='ignore', divide='ignore'):
        out /= count[..., None]
    out[~valid] = np.nan
    return out


@dataclass(frozen=True)
class _RegionScores:
    """Suction score and normals of one region on a (possibly strided) grid over its bbox."""

    x0: int                   # top-left of the grid in the depth image
    y0: int
    stride: int               # grid step in depth pixels
    mask: np.ndarray          # (h, w) bool, the region on the grid
    score: np.ndarray         # (h, w) float32, 0 outside the region
    mean_normal: np.ndarray   # (h, w, 3) float32 unit cup-window mean normals
    normal: np.ndarray        # (h, w, 3) float32 per-pixel normals (NaN where undefined)

    def to_pixel(self, v: int, u: int) -> tuple[int, int]:
        """Return the depth-image (u, v) of grid cell (v, u)."""
        return u * self.stride + self.x0, v * self.stride + self.y0

    def paint(self, region_image: np.ndarray, region_id: int, score_image: np.ndarray | None,
              normal_image: np.ndarray | None) -> None:
        """Write score and normals into full-resolution images on the region's pixels."""
        h, w = self.mask.shape
        f = self.stride
        full_h = min(h * f, region_image.shape[0] - self.y0)
        full_w = min(w * f, region_image.shape[1] - self.x0)
        window = (slice(self.y0, self.y0 + full_h), slice(self.x0, self.x0 + full_w))
        mask = region_image[window] == region_id
        for image, values in ((score_image, self.score), (normal_image, self.normal)):
            if image is None:
                continue
            if f > 1:
                values = np.repeat(np.repeat(values, f, axis=0), f, axis=1)[:full_h, :full_w]
            image[window][mask] = values[mask]


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
    pts = xyz[y0:y1:stride, x0:x1:stride]
    smooth = _masked_smooth(pts, mask, step | 1)
    n = surface_normals(smooth, step)
    valid = mask & np.isfinite(n[..., 2])
    nz = np.where(valid[..., None], n, np.float32(0.0))
    # SuctionNet's normal-STD: spread of the normals under a cup-sized window.
    k = max(3, int(round(radius)) * 2 + 1)
    count = cv2.blur(valid.astype(np.float32), (k, k), borderType=cv2.BORDER_CONSTANT)
    mean = np.empty_like(nz)
    for c in range(3):
        mean[..., c] = cv2.blur(nz[..., c], (k, k), borderType=cv2.BORDER_CONSTANT)
    with np.errstate(invalid='ignore', divide='ignore'):
        mean /= count[..., None]
        length = np.sqrt(np.einsum('ijk,ijk->ij', mean, mean))
        mean /= length[..., None]
    spread = np.sqrt(np.clip(1.0 - length * length, 0.0, 1.0))   # sin of the normals' spread
    s_flat = np.clip(1.0 - spread / config.max_normal_std, 0.0, 1.0)
    # The cup must fit: distance to the region border (plus the erosion) vs. its radius.
    padded = np.pad(mask.view(np.uint8), 1)
    dist = (cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
            + config.erosion_px / stride)
    s_border = np.clip(dist / radius - 1.0, 0.0, 1.0)
    cos_max = math.cos(math.radians(config.max_approach_angle_deg))
    cos_t = -np.einsum('ijk,k->ij', mean, config.gravity.astype(np.float32))
    s_angle = np.clip((cos_t - cos_max) / (1.0 - cos_max), 0.0, 1.0)
    centrality = 0.8 + 0.2 * dist / max(float(dist.max()), 1.0)
    score = s_flat * s_border * s_angle * centrality
    score = np.where(valid & np.isfinite(score), score, np.float32(0.0)).astype(np.float32)
    return _RegionScores(x0=x0, y0=y0, stride=stride, mask=mask, score=score,
                         mean_normal=mean, normal=n)


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
    grid = xyz[scores.y0:scores.y0 + h * f:f, scores.x0:scores.x0 + w * f:f]
    pts = grid.reshape(-1, 3)[index]
    out: list[GraspCandidate] = []
    nms2 = config.nms_distance_m ** 2
    for _ in range(config.max_candidates_per_region):
        best_i = int(np.argmax(score))
        best = float(score[best_i])
        if best <= 0.0:
            break
        v, u = divmod(int(index[best_i]), w)
        position = pts[best_i].astype(np.float64)
        rotation = grasp_frame(scores.mean_normal[v, u].astype(np.float64), region.major_axis)
        out.append(_candidate(region, position, rotation, 'suction', best,
                              scores.to_pixel(v, u)))
        d = pts - pts[best_i]
        score[np.einsum('ij,ij->i', d, d) < nms2] = 0.0
        score[best_i] = 0.0
    return out


def _parallel_candidate(region: Region, region_image: np.ndarray, xyz: np.ndarray,
                        config: GraspConfig) -> GraspCandidate | None:
    """Return a two-finger grasp across a narrow region's minor axis, near its centroid."""
    major, minor = region.extent_m
    opening = config.gripper_max_opening_m
    if minor >= opening:
        return None
    bx, by, bw, bh = region.bbox
    mask = region_image[by:by + bh, bx:bx + bw] == region.region_id
    pts = xyz[by:by + bh, bx:bx + bw]
    d = pts - region.centroid.astype(np.float32)
    dist2 = np.where(mask, np.einsum('ijk,ijk->ij', d, d), np.inf)
    flat = int(np.argmin(dist2))
    v, u = divmod(flat, bw)
    rotation = grasp_frame(region.normal, region.major_axis)
    cos_max = math.cos(math.radians(config.max_approach_angle_deg))
    cos_t = float(-(region.normal @ config.gravity))
    s_angle = min(max((cos_t - cos_max) / (1.0 - cos_max), 0.0), 1.0)
    s_fit = min(1.0, (opening - minor) / (0.3 * opening))
    s_support = min(1.0, region.point_count / (4.0 * config.min_region_pixels))
    score = s_angle * s_fit * s_support
    if score < config.min_score or score <= 0.0:
        return None
    return _candidate(region, pts[v, u].astype(np.float64), rotation, 'parallel', score,
                      (u + bx, v + by))


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
                        normal_image: np.ndarray | None = None) -> list[GraspCandidate]:
    """Return suction and parallel candidates of all regions, best first, after global NMS.

    `grasp_modes` maps class id -> the class's modes. When given, `score_image` ((H, W) float32)
    and `normal_image` ((H, W, 3) float32) receive the per-pixel suction score and normal on
    region pixels (other pixels are left as they are).
    """
    found: list[GraspCandidate] = []
    for region in regions:
        modes = grasp_modes.get(region.class_id, ())
        scores = _score_region(region, region_image, xyz, camera, config)
        scores.paint(region_image, region.region_id, score_image, normal_image)
        if 'suction' in modes:
            found.extend(_suction_candidates(region, scores, xyz, config))
        if 'parallel' in modes:
            cand = _parallel_candidate(region, region_image, xyz, config)
            if cand is not None:
                found.append(cand)
    found.sort(key=lambda c: -c.score)
    kept: list[GraspCandidate] = []
    kept_pos = {kind: np.empty((0, 3)) for kind in GRASP_KINDS}
    nms2 = config.nms_distance_m ** 2
    for cand in found:          # global NMS: regions of one item seen twice, suction vs parallel
        if len(kept) >= config.max_candidates:
            break
        others = kept_pos[cand.kind]
        d = others - cand.position
        if others.size and float(np.min(np.einsum('ij,ij->i', d, d))) < nms2:
            continue
        kept.append(cand)
        kept_pos[cand.kind] = np.vstack([others, cand.position])
    return kept
