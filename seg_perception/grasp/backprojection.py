"""Back-projection of depth images to 3D points in the camera's optical frame (REP 103)."""

from __future__ import annotations

import numpy as np

from seg_perception.grasp.camera_model import PinholeCamera


class BackProjector:
    """Turn metric depth into points, caching per-resolution ray grids of one camera.

    The camera's intrinsics are scaled when a depth image arrives at another resolution, so one
    projector serves a camera whose driver switches modes. Points are x right, y down, z forward.
    """

    def __init__(self, camera: PinholeCamera) -> None:
        self.camera = camera
        self._rays: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def camera_for(self, width: int, height: int) -> PinholeCamera:
        """Return the intrinsics for depth images of width x height."""
        return self.camera.scaled(width, height)

    def rays(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ((W,) (u - cx) / fx, (H,) (v - cy) / fy) float32 for this resolution."""
        key = (int(width), int(height))
        cached = self._rays.get(key)
        if cached is None:
            cam = self.camera_for(*key)
            x_ray = ((np.arange(key[0], dtype=np.float64) - cam.cx) / cam.fx).astype(np.float32)
            y_ray = ((np.arange(key[1], dtype=np.float64) - cam.cy) / cam.fy).astype(np.float32)
            cached = (x_ray, y_ray)
            self._rays[key] = cached
        return cached

    def _full_grids(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Return flat (H*W,) ray grids; gathering from them is faster than index arithmetic."""
        key = (int(width), int(height))
        cached = self._grids.get(key)
        if cached is None:
            x_ray, y_ray = self.rays(*key)
            cached = (np.ascontiguousarray(np.broadcast_to(x_ray[None, :], key[::-1])).ravel(),
                      np.ascontiguousarray(np.broadcast_to(y_ray[:, None], key[::-1])).ravel())
            self._grids[key] = cached
        return cached

    def organized(self, depth_m: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """Return an (H, W, 3) float32 organized cloud; NaN where depth is NaN (invalid)."""
        depth = _check_depth(depth_m)
        height, width = depth.shape
        if out is None:
            out = np.empty((height, width, 3), dtype=np.float32)
        elif out.shape != (height, width, 3) or out.dtype != np.float32:
            raise ValueError(f'out must be ({height}, {width}, 3) float32, '
                             f'got {out.shape} {out.dtype}')
        x_ray, y_ray = self.rays(width, height)
        np.multiply(depth, x_ray[None, :], out=out[:, :, 0])
        np.multiply(depth, y_ray[:, None], out=out[:, :, 1])
        out[:, :, 2] = depth
        return out

    def points(self, depth_m: np.ndarray,
               mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ((N, 3) float32 points, (N,) int64 flat pixel indices v * W + u) of valid pixels.

        Valid means finite depth and, when given, a true/non-zero `mask` pixel.
        """
        depth = _check_depth(depth_m)
        height, width = depth.shape
        flat = depth.ravel()
        valid = flat == flat                       # False for NaN
        if mask is not None:
            mask_arr = np.asarray(mask)
            if mask_arr.shape != depth.shape:
                raise ValueError(f'mask shape {mask_arr.shape} does not match depth '
                                 f'{depth.shape}')
            valid &= mask_arr.ravel().astype(bool, copy=False)
        index = np.flatnonzero(valid)
        z = flat.take(index)
        x_grid, y_grid = self._full_grids(width, height)
        pts = np.empty((index.size, 3), dtype=np.float32)
        np.multiply(x_grid.take(index), z, out=pts[:, 0])
        np.multiply(y_grid.take(index), z, out=pts[:, 1])
        pts[:, 2] = z
        return pts, index


def _check_depth(depth_m: np.ndarray) -> np.ndarray:
    """Return the depth as a contiguous (H, W) float32 array or raise naming the problem."""
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise ValueError(f'depth_m must be (H, W) metres, got shape {depth.shape}')
    if depth.dtype != np.float32:
        raise ValueError(f'depth_m must be float32 metres (see depth_to_metres), '
                         f'got {depth.dtype}')
    return np.ascontiguousarray(depth)
