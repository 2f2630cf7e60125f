"""Fusion of segmentation labels with depth: which pixels are trustworthy surface of which item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from seg_perception.grasp.config import GraspConfig


@dataclass(frozen=True)
class FusedMasks:
    """Per-class boolean masks at the depth image's resolution, kept as crops of a box."""

    #: Labels resized to the depth image (nearest neighbour), (H, W) uint8.
    labels: np.ndarray
    #: (x, y, w, h) box holding every graspable-labelled pixel; the masks are crops of it.
    roi: tuple[int, int, int, int]
    #: class id -> (h, w) bool crop: labelled as the class, interior after erosion, depth usable.
    masks: dict[int, np.ndarray]
    #: Usable labelled pixels the container step removed (on a container surface or outside it).
    container_removed: int = 0

    @property
    def empty(self) -> bool:
        """Return True when no pixel of any graspable class survived fusion."""
        return not any(m.any() for m in self.masks.values())

    def full_mask(self, class_id: int) -> np.ndarray:
        """Return the (H, W) bool mask of one class."""
        out = np.zeros(self.labels.shape, dtype=bool)
        x, y, w, h = self.roi
        if class_id in self.masks:
            out[y:y + h, x:x + w] = self.masks[class_id]
        return out

    def union(self) -> np.ndarray:
        """Return the (H, W) bool union of all class masks."""
        out = np.zeros(self.labels.shape, dtype=bool)
        x, y, w, h = self.roi
        for mask in self.masks.values():
            out[y:y + h, x:x + w] |= mask
        return out


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int]:
    """Return the (x, y, w, h) box of a mask's true pixels grown by `margin`; w = 0 if none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0, 0, 0, 0
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    height, width = mask.shape
    x0, y0 = max(int(cols[0]) - margin, 0), max(int(rows[0]) - margin, 0)
    x1 = min(int(cols[-1]) + 1 + margin, width)
    y1 = min(int(rows[-1]) + 1 + margin, height)
    return x0, y0, x1 - x0, y1 - y0


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Return labels at height x width with nearest-neighbour sampling (ids never blend).

    INTER_NEAREST_EXACT samples pixel centres, matching PinholeCamera.scaled's convention.
    """
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f'labels must be an (H, W) image, got shape {arr.shape}')
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f'labels must fit uint8 (ids 0..254, 255 unlabeled), got range '
                             f'{arr.min()}..{arr.max()}')
        arr = arr.astype(np.uint8)
    if arr.shape == (height, width):
        return arr
    return cv2.resize(arr, (int(width), int(height)), interpolation=cv2.INTER_NEAREST_EXACT)


def depth_range_mask(depth_m: np.ndarray, min_depth_m: float, max_depth_m: float) -> np.ndarray:
    """Return (H, W) bool: finite depth within [min_depth_m, max_depth_m]."""
    return (depth_m >= min_depth_m) & (depth_m <= max_depth_m)   # NaN compares False


def discontinuity_mask(depth_m: np.ndarray, threshold_m: float) -> np.ndarray:
    """Return (H, W) bool: pixels whose depth differs from a 4-neighbour by more than threshold.

    Both pixels of a jump are marked: at an occlusion edge either may be a mixed ('flying') pixel.
    """
    depth_m = np.asarray(depth_m)
    jump = np.zeros(depth_m.shape, dtype=bool)
    horizontal = _absdiff(depth_m[:, 1:], depth_m[:, :-1]) > threshold_m
    jump[:, 1:] |= horizontal
    jump[:, :-1] |= horizontal
    vertical = _absdiff(depth_m[1:, :], depth_m[:-1, :]) > threshold_m
    jump[1:, :] |= vertical
    jump[:-1, :] |= vertical
    return jump


def _absdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return np.abs(a - b); float32 in one cv2 pass (the same values, NaN kept), 1.7x faster."""
    if a.dtype == np.float32 and a.size:
        return cv2.absdiff(a, b)
    return np.abs(a - b)


def uniform_label_mask(labels: np.ndarray, erosion_px: int) -> np.ndarray:
    """Return (H, W) bool: pixels whose (2r+1)^2 neighbourhood carries a single label.

    Equivalent to eroding every class mask by r pixels, in two morphology passes for all classes.
    """
    if erosion_px <= 0:
        return np.ones(labels.shape, dtype=bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * erosion_px + 1, 2 * erosion_px + 1))
    low = cv2.erode(labels, kernel, borderType=cv2.BORDER_REPLICATE)
    high = cv2.dilate(labels, kernel, borderType=cv2.BORDER_REPLICATE)
    return low == high


def workspace_filter(points: np.ndarray, lo: Sequence[float], hi: Sequence[float],
                     base_from_camera: np.ndarray | None = None) -> np.ndarray:
    """Return (N,) bool: points (N, 3) in the camera frame inside the box [lo, hi].

    The box is in the camera frame, or in the base frame when the 4x4 extrinsic is given.
    (einsum rather than matmul: BLAS would spawn threads for this small product.)
    """
    pts = points
    if base_from_camera is not None:
        rot = base_from_camera[:3, :3].astype(np.float32)
        pts = np.einsum('ij,kj->ik', points, rot) + base_from_camera[:3, 3].astype(np.float32)
    lo_arr = np.asarray(lo, dtype=np.float32)
    hi_arr = np.asarray(hi, dtype=np.float32)
    return np.all((pts >= lo_arr) & (pts <= hi_arr), axis=1)


def fuse(labels: np.ndarray, depth_m: np.ndarray, xyz: np.ndarray, class_ids: Sequence[int],
         config: GraspConfig,
         container_keep: Callable[[np.ndarray], np.ndarray] | None = None) -> FusedMasks:
    """Combine labels, depth validity, discontinuities, erosion and the workspace into masks.

    `labels` may have any resolution (they are resized to the depth); `xyz` is the organized
    cloud of `depth_m` (needed for the workspace crop). `container_keep` maps flat pixel
    indices of the depth image to True where the pixel is not container (the container step).
    Work is limited to the box around the graspable-labelled pixels.
    """
    height, width = depth_m.shape
    labels_d = resize_labels(labels, height, width)
    lut = np.zeros(256, dtype=np.uint8)
    lut[list(class_ids)] = 1
    # cv2.LUT: 3x faster than numpy's lut[labels_d] (which an empty image needs).
    labelled = cv2.LUT(labels_d, lut).view(bool) if labels_d.size else lut.view(bool)[labels_d]
    # One pixel more than the erosion so that neighbours of the box's edge pixels are seen.
    roi = bounding_box(labelled, config.erosion_px + 1)
    x, y, w, h = roi
    if w == 0:
        return FusedMasks(labels=labels_d, roi=roi, masks={})
    lab = labels_d[y:y + h, x:x + w]
    depth = depth_m[y:y + h, x:x + w]
    keep = labelled[y:y + h, x:x + w].copy()
    keep &= depth_range_mask(depth, config.min_depth_m, config.max_depth_m)
    keep &= uniform_label_mask(lab, config.erosion_px)
    keep &= ~discontinuity_mask(depth, config.discontinuity_m)
    if config.workspace_min is not None:
        index = np.flatnonzero(keep)
        inside = workspace_filter(xyz[y:y + h, x:x + w].reshape(-1, 3)[index],
                                  config.workspace_min, config.workspace_max,
                                  config.base_from_camera_matrix)
        keep.ravel()[index[~inside]] = False
    removed = 0
    if container_keep is not None:
        index = np.flatnonzero(keep)
        rows, cols = np.divmod(index, w)
        outside = ~container_keep((rows + y) * width + cols + x)
        keep.ravel()[index[outside]] = False
        removed = int(np.count_nonzero(outside))
    masks = {int(c): keep & (lab == c) for c in class_ids}
    return FusedMasks(labels=labels_d, roi=roi, masks=masks, container_removed=removed)
