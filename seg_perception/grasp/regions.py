"""Item regions: connected surface patches of one class, with plane, axes, extents and area."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.fusion import bounding_box

#: Plane fits use at most this many points per region (strided subsample): keeps PCA O(1).
MAX_FIT_POINTS = 4096


@dataclass(frozen=True)
class Region:
    """One connected patch of a graspable class, measured in the camera frame."""

    region_id: int
    class_id: int
    class_name: str
    #: Pixel bounding box (x, y, width, height) in the depth image.
    bbox: tuple[int, int, int, int]
    point_count: int
    centroid: np.ndarray            # (3,) metres
    normal: np.ndarray              # (3,) unit, oriented toward the camera (n . -centroid > 0)
    major_axis: np.ndarray          # (3,) unit, in the fitted plane
    minor_axis: np.ndarray          # (3,) unit, in the fitted plane
    extent_m: tuple[float, float]   # (major, minor) extents of the points along the axes
    flatness_rms_m: float           # RMS distance of the points to the plane
    area_m2: float                  # sum of pixel footprints z^2 / (fx fy)

    def summary(self) -> dict:
        """Return a JSON-friendly description."""
        return {'region_id': self.region_id, 'class_id': self.class_id,
                'class_name': self.class_name, 'bbox': list(self.bbox),
                'point_count': self.point_count, 'centroid': self.centroid.tolist(),
                'normal': self.normal.tolist(), 'major_axis': self.major_axis.tolist(),
                'minor_axis': self.minor_axis.tolist(), 'extent_m': list(self.extent_m),
                'flatness_rms_m': self.flatness_rms_m, 'area_m2': self.area_m2}


@dataclass(frozen=True)
class PlaneFit:
    """Result of a plane fit to a point set."""

    centroid: np.ndarray
    normal: np.ndarray
    major_axis: np.ndarray
    minor_axis: np.ndarray
    rms_m: float


def fit_plane_pca(points: np.ndarray) -> PlaneFit:
    """Fit a least-squares plane by PCA; the normal is oriented toward the camera origin."""
    pts = np.asarray(points)
    if pts.shape[0] > MAX_FIT_POINTS:   # subsample before the float64 copy: O(1) work
        pts = pts[:: int(np.ceil(pts.shape[0] / MAX_FIT_POINTS))]
    pts = pts.astype(np.float64, copy=False)
    centroid = pts.mean(axis=0)
    centred = pts - centroid
    cov = np.einsum('ij,ik->jk', centred, centred) / max(len(pts), 1)   # no BLAS threads
    eigval, eigvec = np.linalg.eigh(cov)            # ascending
    normal = _toward_camera(eigvec[:, 0], centroid)
    major = eigvec[:, 2]
    minor = cross3(normal, major)
    return PlaneFit(centroid=centroid, normal=normal, major_axis=major, minor_axis=minor,
                    rms_m=float(np.sqrt(max(eigval[0], 0.0))))


def fit_plane_ransac(points: np.ndarray, *, distance_m: float = 0.005) -> PlaneFit:
    """Fit a plane with Open3D's RANSAC, then refine axes by PCA on the inliers."""
    import open3d as o3d   # imported lazily: optional path

    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 10:
        return fit_plane_pca(pts)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    _, inliers = cloud.segment_plane(distance_threshold=distance_m, ransac_n=3,
                                     num_iterations=200)
    fit = fit_plane_pca(pts[np.asarray(inliers)] if len(inliers) >= 3 else pts)
    rms = float(np.sqrt(np.mean(((pts - fit.centroid) @ fit.normal) ** 2)))
    return PlaneFit(centroid=pts.mean(axis=0), normal=fit.normal, major_axis=fit.major_axis,
                    minor_axis=fit.minor_axis, rms_m=rms)


def voxel_downsample(points: np.ndarray, voxel_size_m: float) -> np.ndarray:
    """Return Open3D's voxel-grid downsampling of points (N, 3)."""
    import open3d as o3d   # imported lazily: optional path

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    return np.asarray(cloud.voxel_down_sample(voxel_size_m).points)


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the float64 cross product of two 3-vectors, bit-identical to np.cross.

    np.cross costs ~100 us of argument handling per call; this is the same arithmetic.
    """
    return np.array(cross_floats(*(float(v) for v in a), *(float(v) for v in b)))


def cross_floats(a0: float, a1: float, a2: float, b0: float, b1: float,
                 b2: float) -> tuple[float, float, float]:
    """Return a x b of two 3-vectors given as Python floats (cross3's arithmetic)."""
    return a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0


def rows_of(xyz: np.ndarray) -> np.ndarray:
    """Return the organized cloud as (H * W, 3) rows (a view when it is contiguous)."""
    return xyz.reshape(-1, 3)


def _toward_camera(normal: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Return the unit normal flipped so that it points from `point` toward the camera."""
    n = normal / max(np.linalg.norm(normal), 1e-12)
    return -n if float(n @ -point) < 0.0 else n


def find_regions(mask: np.ndarray, xyz: np.ndarray, camera: PinholeCamera, *, class_id: int,
                 class_name: str, min_region_pixels: int, first_region_id: int,
                 region_image: np.ndarray, origin: tuple[int, int] = (0, 0),
                 plane_fit: str = 'pca', voxel_size_m: float = 0.0,
                 pixels: list[np.ndarray] | None = None) -> list[Region]:
    """Split one class's fused mask into connected regions and measure each.

    `mask` is a bool crop whose top-left pixel is `origin` (x, y) in the depth image. Writes
    region ids into `region_image` ((H, W) uint32, 0 = none). Regions split naturally at depth
    discontinuities because fusion removed the pixels along them. When given, `pixels` receives
    each region's flat pixel indices (row-major), in the order of the regions.
    """
    return find_class_regions([(class_id, class_name, mask)], xyz, camera,
                              min_region_pixels=min_region_pixels,
                              first_region_id=first_region_id, region_image=region_image,
                              origin=origin, plane_fit=plane_fit, voxel_size_m=voxel_size_m,
                              pixels=pixels)


def find_class_regions(masks: Sequence[tuple[int, str, np.ndarray]], xyz: np.ndarray,
                       camera: PinholeCamera, *, min_region_pixels: int, first_region_id: int,
                       region_image: np.ndarray, origin: tuple[int, int] = (0, 0),
                       plane_fit: str = 'pca', voxel_size_m: float = 0.0,
                       pixels: list[np.ndarray] | None = None) -> list[Region]:
    """Return the regions of several classes: find_regions of each in turn, ids consecutive.

    `masks` are (class id, class name, bool crop) with the crops of one box at `origin`, and
    disjoint. One connected-components pass labels all classes at once when no component of
    their union mixes classes (fusion's erosion keeps classes apart); else each class gets its
    own pass. Either way the regions, their ids and order are those of the per-class calls.
    """
    masks = list(masks)
    if not masks:
        return []
    union = masks[0][2]
    if len(masks) > 1:
        union = union | masks[1][2]
        for _, _, mask in masks[2:]:
            union |= mask
    bx, by, bw, bh = bounding_box(union)
    if bw == 0:
        return []
    count, cc, stats, _ = cv2.connectedComponentsWithStats(
        union[by:by + bh, bx:bx + bw].view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    ox, oy = origin[0] + bx, origin[1] + by
    width = region_image.shape[1]
    # Components in label order (raster order of their first pixel, as in each class's own
    # pass), grouped by class.
    found: list[list[tuple[tuple[int, int, int, int], np.ndarray]]] = [[] for _ in masks]
    for comp in range(1, count):
        cx, cy, w, h, area = (int(v) for v in stats[comp])
        if area < min_region_pixels:
            continue
        crop = cc[cy:cy + h, cx:cx + w] == comp
        k = 0
        if len(masks) > 1:
            # The class of the component's first pixel; all its pixels must be of it.
            first = int(np.argmax(crop[0]))
            k = next(i for i, (_, _, m) in enumerate(masks) if m[by + cy, bx + cx + first])
            if (crop > masks[k][2][by + cy:by + cy + h, bx + cx:bx + cx + w]).any():
                regions: list[Region] = []
                for class_id, class_name, mask in masks:
                    regions.extend(find_class_regions(
                        [(class_id, class_name, mask)], xyz, camera,
                        min_region_pixels=min_region_pixels,
                        first_region_id=first_region_id + len(regions),
                        region_image=region_image, origin=origin, plane_fit=plane_fit,
                        voxel_size_m=voxel_size_m, pixels=pixels))
                return regions
        # Flat pixel indices (row-major, as boolean indexing orders them): one gather of the
        # points instead of a boolean pass over a strided (h, w, 3) view, 8x faster.
        found[k].append(((cx + ox, cy + oy, w, h), region_pixels(crop, cx + ox, cy + oy, width)))
    regions = []
    footprint = 1.0 / (camera.fx * camera.fy)
    points = rows_of(xyz)
    next_id = first_region_id
    for (class_id, class_name, _), comps in zip(masks, found):
        for bbox, index in comps:
            pts = points.take(index, axis=0)
            fit_pts = voxel_downsample(pts, voxel_size_m) if voxel_size_m > 0 else pts
            if len(fit_pts) < 3:
                continue
            fit = (fit_plane_ransac(fit_pts) if plane_fit == 'ransac'
                   else fit_plane_pca(fit_pts))
            # pts - centroid column by column: the same float32 differences without numpy's
            # slow broadcast over rows of 3.
            rel = [pts[:, i] - c for i, c in enumerate(fit.centroid.astype(np.float32))]
            along = _dot3(rel, fit.major_axis.astype(np.float32))
            across = _dot3(rel, fit.minor_axis.astype(np.float32))
            z = pts[:, 2].astype(np.float64)
            write_pixels(region_image, index, next_id)
            if pixels is not None:
                pixels.append(index)
            regions.append(Region(
                region_id=next_id, class_id=class_id, class_name=class_name, bbox=bbox,
                point_count=int(len(pts)), centroid=fit.centroid, normal=fit.normal,
                major_axis=fit.major_axis, minor_axis=fit.minor_axis,
                extent_m=(float(np.ptp(along)), float(np.ptp(across))),
                flatness_rms_m=fit.rms_m, area_m2=float(np.dot(z, z) * footprint)))
            next_id += 1
    return regions


def region_pixels(crop: np.ndarray, x: int, y: int, width: int) -> np.ndarray:
    """Return the flat indices v * width + u of a bool crop's true pixels; (x, y) its origin."""
    flat = np.flatnonzero(crop)
    # (row + y) * width + col + x with col = flat - row * crop width; one integer division
    # (numpy divides by a scalar much faster than divmod does).
    rows = flat // crop.shape[1]
    rows *= width - crop.shape[1]
    flat += rows
    flat += y * width + x
    return flat


def write_pixels(image: np.ndarray, index: np.ndarray, values: np.ndarray | float) -> None:
    """Set the pixels at flat indices `index` of an (H, W) or (H, W, C) image in place.

    `values` is one value for all, or one per pixel ((N,) or (N, C)).
    """
    if not image.flags.c_contiguous:
        image[np.divmod(index, image.shape[1])] = values
    elif image.ndim == 2 or np.ndim(values) < 2:
        image.reshape((-1,) + image.shape[2:])[index] = values
    else:
        # One C-wide item per pixel: twice as fast as numpy's strided row assignment.
        item = np.dtype((np.void, image.itemsize * image.shape[2]))
        rows = np.ascontiguousarray(values, dtype=image.dtype)
        image.reshape(-1, image.shape[2]).view(item)[:, 0][index] = rows.view(item)[:, 0]


def copy_masked(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy src into dst (same-shape 2-D arrays, dst writable in place) where a bool mask is set.

    OpenCV's masked copy: the same values as np.copyto(dst, src, where=mask), 2-10x faster.
    Returns dst.
    """
    if dst.ndim == 2 and dst.dtype == src.dtype and dst.strides[1] == dst.itemsize:
        if cv2.copyTo(src, mask.view(np.uint8), dst) is dst:   # else OpenCV reallocated it
            return dst
    np.copyto(dst, src, where=mask)
    return dst


def _dot3(columns: Sequence[np.ndarray], vector: np.ndarray) -> np.ndarray:
    """Return (N,) rows . vector from the rows' three (N,) columns, summed in einsum's order."""
    return columns[0] * vector[0] + columns[1] * vector[1] + columns[2] * vector[2]
