"""Sensor effects: RGB noise, blur, exposure and camera artefacts; depth noise and holes."""

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
                noise: bool, effects: bool = False) -> np.ndarray:
    """Combine albedo, per-pixel gain and highlights; add exposure, noise and blur.

    With `effects`, also what real cameras do to a frame: exposure and white-balance errors,
    vignetting, motion blur, monochrome (structured-light / IR) output and JPEG artefacts.
    """
    if effects:
        exposure = float(np.exp(rng.uniform(np.log(0.55), np.log(1.6))))
        wb = colour * rng.uniform(0.82, 1.18, 3).astype(np.float32) * np.float32(exposure)
    else:
        exposure = float(rng.uniform(0.8, 1.2)) if noise else 1.0
        wb = colour * np.float32(exposure)
    lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * wb, 0, 255).astype(np.uint8)
    img = cv2.LUT(albedo, lut.reshape(256, 1, 3)).astype(np.float32)
    if effects and rng.random() < 0.5:
        gain = gain * _vignette(albedo.shape[0], albedo.shape[1], float(rng.uniform(0.15, 0.6)))
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
    if effects:
        out = _camera_effects(rng, out)
    return out


def _vignette(height: int, width: int, strength: float) -> np.ndarray:
    """Return a radial gain falling to 1 - `strength` in the image corners."""
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32) ** 2
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32) ** 2
    return 1.0 - np.float32(strength / 2.0) * np.add.outer(y, x)


def _camera_effects(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Apply motion blur, monochrome output and JPEG compression, each with some probability."""
    if rng.random() < 0.08:
        length = int(rng.integers(3, 10))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2),
                                      float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        rgb = cv2.filter2D(rgb, -1, kernel / max(float(kernel.sum()), 1e-6))
    if rng.random() < 0.1:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        rgb = cv2.merge([grey, grey, grey])
    if rng.random() < 0.3:
        ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 91))])
        if ok:
            rgb = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return rgb


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
