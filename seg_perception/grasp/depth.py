"""Depth image decoding: one traits table for the encodings ROS depth cameras publish."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DepthError(ValueError):
    """A depth image that cannot be read; `reason` is the token nodes count it under."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class UnsupportedDepthEncodingError(DepthError):
    """Raised for a depth image encoding that has no entry in DEPTH_TRAITS."""


class DepthShapeError(DepthError):
    """Raised for a depth array whose shape or dtype does not fit its encoding."""


@dataclass(frozen=True)
class DepthTraits:
    """How one encoding stores depth (cf. depth_image_proc's DepthTraits)."""

    dtype: type
    metres_per_unit: float
    zero_is_invalid: bool
    float_encoding: bool


#: REP 118: 16-bit unsigned millimetres (0 = no return) or 32-bit float metres (NaN/inf invalid).
DEPTH_TRAITS: dict[str, DepthTraits] = {
    '16UC1': DepthTraits(dtype=np.uint16, metres_per_unit=0.001, zero_is_invalid=True,
                         float_encoding=False),
    'mono16': DepthTraits(dtype=np.uint16, metres_per_unit=0.001, zero_is_invalid=True,
                          float_encoding=False),
    '32FC1': DepthTraits(dtype=np.float32, metres_per_unit=1.0, zero_is_invalid=True,
                         float_encoding=True),
}


def depth_traits(encoding: str) -> DepthTraits:
    """Return the traits of `encoding`; raise UnsupportedDepthEncodingError if unknown."""
    try:
        return DEPTH_TRAITS[encoding]
    except KeyError:
        raise UnsupportedDepthEncodingError(
            f'unsupported depth encoding {encoding!r}; supported: {", ".join(DEPTH_TRAITS)}',
            reason=f'unsupported_depth_encoding:{encoding}') from None


def depth_to_metres(depth: np.ndarray, encoding: str, *,
                    metres_per_unit: float | None = None) -> np.ndarray:
    """Return depth as (H, W) float32 metres with NaN where the sensor gave no valid return.

    `metres_per_unit` overrides the integer encodings' millimetre scale (e.g. 1e-4 for sensors
    storing 0.1 mm units in 16UC1); float encodings are already metres.
    """
    traits = depth_traits(encoding)
    arr = np.asarray(depth)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise DepthShapeError(f'depth image must be (H, W), got shape {arr.shape}',
                              reason='depth_not_single_channel')
    if arr.dtype != traits.dtype:
        raise DepthShapeError(f'{encoding} depth must have dtype '
                              f'{np.dtype(traits.dtype).name}, got {arr.dtype}',
                              reason='depth_dtype_mismatch')
    if traits.float_encoding:
        out = arr.astype(np.float32, copy=True)
        out[~(out > 0.0)] = np.nan          # NaN, <= 0 (and -inf) invalid
        out[np.isposinf(out)] = np.nan
        return out
    scale = traits.metres_per_unit if metres_per_unit is None else float(metres_per_unit)
    if not scale > 0.0:
        raise ValueError(f'metres_per_unit must be positive, got {metres_per_unit}')
    out = np.multiply(arr, np.float32(scale), dtype=np.float32)
    out[arr == 0] = np.nan
    return out


def load_depth_file(path: str | Path, *, units_per_m: float = 1000.0,
                    shape: tuple[int, int] | None = None) -> np.ndarray:
    """Return float32 metres (NaN invalid) from a uint16 PNG (`units_per_m`) or a .npy file.

    A .npy file holds float32 metres (0 or NaN invalid). Raises ValueError with the reason for
    a missing file, another encoding or (when `shape` is given) another size.
    """
    import cv2
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'depth file {path} does not exist')
    if path.suffix == '.npy':
        try:
            raw = np.load(path)
        except ValueError as exc:
            raise ValueError(f'{path}: not a readable .npy array ({exc})') from exc
        if raw.ndim != 2 or raw.dtype.kind != 'f':
            raise ValueError(f'{path}: a .npy depth must be (H, W) float metres, got '
                             f'{raw.dtype} {raw.shape}')
        depth = np.where(np.isfinite(raw) & (raw > 0), raw, np.nan).astype(np.float32)
    else:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.ndim != 2 or raw.dtype != np.uint16:
            kind = 'unreadable' if raw is None else f'{raw.dtype} with shape {raw.shape}'
            raise ValueError(f'{path}: depth must be a single-channel uint16 PNG or a .npy of '
                             f'metres, got {kind}')
        depth = np.where(raw > 0, raw.astype(np.float32) / np.float32(units_per_m),
                         np.nan).astype(np.float32)
    if shape is not None and depth.shape != tuple(shape):
        raise ValueError(f'{path}: depth is {depth.shape[1]}x{depth.shape[0]}, expected '
                         f'{shape[1]}x{shape[0]}')
    return depth
