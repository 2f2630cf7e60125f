"""Lighting of a rasterised frame: point-light falloff, highlights and soft shadows (low-res)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from seg_perception.synthetic.render import Rasteriser


@dataclass(frozen=True)
class Lighting:
    """One frame's lights: a key light direction, a point light and an ambient term."""

    dir_w: np.ndarray          # (3,) unit vector toward the key light
    point_w: np.ndarray        # (3,) position of the point light (highlights, falloff)
    ambient: float
    diffuse: float
    shininess: float
    shadow_strength: float
    colour: np.ndarray         # (3,) RGB gains of the light


def sample_lighting(rng: np.random.Generator, camera_w: np.ndarray) -> Lighting:
    """Sample a key light from above and a point light near the camera."""
    elev = np.radians(rng.uniform(45, 88))
    azim = rng.uniform(0, 2 * np.pi)
    dir_w = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    point = camera_w + np.array([*rng.normal(0, 0.4, 2), rng.uniform(0.1, 1.0)])
    tint = rng.uniform(-0.06, 0.06, 3)
    # Diffuse cell lighting to a hard key light with deep shadows (dark bin walls).
    return Lighting(dir_w=dir_w, point_w=point, ambient=float(rng.uniform(0.18, 0.55)),
                    diffuse=float(rng.uniform(0.4, 0.9)),
                    shininess=float(rng.uniform(15, 80)),
                    shadow_strength=float(rng.uniform(0.2, 0.8)),
                    colour=(1.0 + tint).astype(np.float32))


def light_field(r: Rasteriser, light: Lighting, R_cw: np.ndarray, t_cw: np.ndarray, *,
                shadows: bool, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (gain, highlight) at full resolution, computed on a 1/`step` grid.

    gain multiplies the albedo (falloff and shadows); highlight is added (0..1).
    """
    z = r.z[::step, ::step]
    fid = r.face_id[::step, ::step]
    rx = r.ray_x[::step][None, :]
    ry = r.ray_y[::step][:, None]
    px, py, pz = z * rx, z * ry, z
    normals = np.asarray(r.normals_c, np.float32)
    gloss = np.asarray(r.gloss, np.float32)
    nx, ny, nz = normals[fid, 0], normals[fid, 1], normals[fid, 2]
    lp = (R_cw @ light.point_w + t_cw).astype(np.float32)
    lx, ly, lz = lp[0] - px, lp[1] - py, lp[2] - pz
    dist2 = lx * lx + ly * ly + lz * lz
    inv_l = 1.0 / np.sqrt(dist2)
    vn = 1.0 / np.sqrt(px * px + py * py + pz * pz)
    hx, hy, hz = lx * inv_l - px * vn, ly * inv_l - py * vn, lz * inv_l - pz * vn
    ndh = np.maximum((nx * hx + ny * hy + nz * hz) / np.sqrt(hx * hx + hy * hy + hz * hz), 0.0)
    highlight = gloss[fid] * ndh ** np.float32(light.shininess)
    ref = float(np.median(dist2))
    gain = np.clip(ref / dist2, 0.6, 1.4) ** 0.5
    if shadows:
        up = R_cw[:, 2].astype(np.float32)
        height = (up[0] * px + up[1] * py + up[2] * pz + (-R_cw.T @ t_cw)[2]).astype(np.float32)
        shadow = np.zeros_like(height)
        dir_c = R_cw @ light.dir_w
        zc = float(np.median(z))
        step_px = np.array([dir_c[0] - dir_c[2] * 0.0, dir_c[1]]) * r.fx / zc / step
        for s_m in (0.015, 0.04, 0.08, 0.14):
            shift = step_px * s_m
            M = np.float32([[1, 0, -shift[0]], [0, 1, -shift[1]]])
            occ = cv2.warpAffine(height, M, (height.shape[1], height.shape[0]),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            excess = occ - height - np.float32(s_m * light.dir_w[2])
            shadow = np.maximum(shadow, np.clip(excess / 0.02, 0.0, 1.0))
        shadow = cv2.GaussianBlur(shadow, (0, 0), 1.2)
        gain = gain * (1.0 - np.float32(light.shadow_strength) * shadow)
    size = (r.width, r.height)
    gain = cv2.resize(gain.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    highlight = cv2.resize(highlight.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    return gain, highlight
