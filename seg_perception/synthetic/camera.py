"""Camera of the synthetic cell: intrinsics and look-at poses in the optical frame convention."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_perception.synthetic.config import SyntheticConfig


@dataclass(frozen=True)
class CameraSample:
    """A sampled camera: intrinsics and the world->camera rigid transform."""

    K: np.ndarray              # (3, 3) float64
    R_cw: np.ndarray           # (3, 3) world -> camera rotation (rows: x right, y down, z fwd)
    t_cw: np.ndarray           # (3,) so that X_cam = R_cw @ X_world + t_cw
    center_w: np.ndarray       # (3,) camera centre in the world

    def to_cam(self, points_w: np.ndarray) -> np.ndarray:
        """Transform (N, 3) world points to camera coordinates."""
        return points_w @ self.R_cw.T + self.t_cw

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Project (N, 3) camera points to (N, 2) pixel coordinates (pixel centres integer)."""
        K = self.K
        z = points_cam[:, 2]
        return np.stack([K[0, 0] * points_cam[:, 0] / z + K[0, 2],
                         K[1, 1] * points_cam[:, 1] / z + K[1, 2]], axis=1)

    def transform(self) -> np.ndarray:
        """Return the (4, 4) camera_from_world transform."""
        T = np.eye(4)
        T[:3, :3] = self.R_cw
        T[:3, 3] = self.t_cw
        return T


def sample_intrinsics(rng: np.random.Generator, config: SyntheticConfig) -> np.ndarray:
    """Sample a pinhole K for a 640x480 sensor and scale it to the configured resolution."""
    fx = rng.uniform(*config.fx_range_px)
    fy = fx * rng.uniform(0.995, 1.005)
    cx = 319.5 + rng.uniform(-1, 1) * config.principal_jitter_px
    cy = 239.5 + rng.uniform(-1, 1) * config.principal_jitter_px
    sx, sy = config.width / 640.0, config.height / 480.0
    return np.array([[fx * sx, 0.0, (cx + 0.5) * sx - 0.5],
                     [0.0, fy * sy, (cy + 0.5) * sy - 0.5],
                     [0.0, 0.0, 1.0]])


def look_at(*, target_w: np.ndarray, tilt_rad: float, azimuth_rad: float, height_m: float,
            roll_rad: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (R_cw, t_cw, centre) of a camera `height_m` above z=0 looking at `target_w`.

    The camera leans back by `tilt_rad` from straight down, away from `azimuth_rad`; image up
    points along the azimuth (the far side of the scene is at the top of the image).
    """
    heading = np.array([np.cos(azimuth_rad), np.sin(azimuth_rad), 0.0])
    rise = height_m - target_w[2]
    centre = target_w - heading * rise * np.tan(tilt_rad)
    centre[2] = height_m
    fwd = target_w - centre
    fwd /= np.linalg.norm(fwd)
    right = np.array([np.sin(azimuth_rad), -np.cos(azimuth_rad), 0.0])
    right -= fwd * (right @ fwd)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    right, down = c * right + s * down, -s * right + c * down
    R_cw = np.stack([right, down, fwd])
    return R_cw, -R_cw @ centre, centre
