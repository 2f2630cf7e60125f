"""Sensor effects: RGB noise, blur and exposure; structured-light depth noise and holes."""

from __future__ import annotations

import cv2
import numpy as np

from seg_perception.synthetic.textures import TextureBank


def _crop(bank: np.ndarray, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Return a random crop (tiled when the frame is larger than the bank) of a noise bank."""
    bh, bw = bank.shape[:2]
    if height > bh or width > bw:
        reps = (-(-height // bh) + 1, -(-width // bw) + 1) + (1,) * (bank.ndim - 2)
        bank = np.tile(bank, reps)
        bh, bw = bank.shape[:2]
    y = int(rng.integers(0, bh - height + 1))
    x = int(rng.integers(0, bw - width + 1))
    return bank[y:y + height, x:x + width]


def compose_rgb(rng: np.random.Generator, bank: TextureBank, albedo: np.ndarray,
                gain: np.ndarray, highlight: np.ndarray, colour: np.ndarray, *,
                noise: bool) -> np.ndarray:
    """Combine albedo, per-pixel gain and highlights; add exposure, noise and blur."""
    exposure = float(rng.uniform(0.8, 1.2)) if noise else 1.0
    wb = colour * np.float32(exposure)
    lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * wb, 0, 255).astype(np.uint8)
    img = cv2.LUT(albedo, lut.reshape(256, 1, 3)).astype(np.float32)
    img *= gain[..., None]
    if noise:
        sigma = float(rng.uniform(1.5, 6.0))   # grey levels
        cv2.scaleAdd(_crop(bank.rgb_noise, rng, *albedo.shape[:2]), sigma, img, dst=img)
    out = cv2.convertScaleAbs(img)   # saturating cast to uint8 (values are non-negative)
    glint = cv2.convertScaleAbs(highlight, alpha=255.0 * exposure)
    out = cv2.add(out, cv2.merge([glint, glint, glint]))
    if noise:
        k = int(rng.choice([1, 3, 3, 5]))
        if k > 1:
            out = cv2.GaussianBlur(out, (k, k), 0)
    return out


def degrade_depth(rng: np.random.Generator, bank: TextureBank, depth: np.ndarray,
                  highlight: np.ndarray) -> np.ndarray:
    """Add z^2-scaled noise and NaN holes at depth edges, on highlights and random dropouts."""
    height, width = depth.shape
    k = np.float32(rng.uniform(0.001, 0.003))   # std in metres at 1 m
    out = np.multiply(k, depth)
    out *= depth
    out *= _crop(bank.gauss, rng, height, width)
    out += depth
    # edges: large local depth range (structured-light shadows and mixed pixels)
    grad = cv2.morphologyEx(depth, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    holes = grad > np.float32(rng.uniform(0.012, 0.025))
    widen = int(rng.integers(0, 3))
    if widen:
        holes = cv2.dilate(holes.view(np.uint8), np.ones((widen + 1, widen + 1), np.uint8),
                           anchor=(0, 0)).view(bool)
    holes |= highlight > np.float32(rng.uniform(0.35, 0.6))
    # random dropouts: blobs from a smooth random field
    blob = cv2.resize(_crop(bank.dropout, rng, max(2, height // 16), max(2, width // 16)),
                      (width, height), interpolation=cv2.INTER_LINEAR)
    holes |= blob < np.float32(rng.uniform(0.005, 0.03))
    out[holes] = np.nan
    return out
