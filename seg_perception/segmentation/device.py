"""Torch devices by name, and what the CPU can do: one place for the engine and the trainer."""

from __future__ import annotations

import torch

__all__ = ['DeviceError', 'cpu_has_native_bf16', 'resolve_device']


class DeviceError(ValueError):
    """Raised for a device name that is malformed or names a device this machine lacks."""


def resolve_device(name: str, *, check_available: bool = True) -> torch.device:
    """Return the torch device for 'auto' | 'cpu' | 'cuda' | 'cuda:N' (auto: CUDA if present)."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got "
                          f'{name!r}') from exc
    if device.type not in ('cpu', 'cuda'):
        raise DeviceError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if check_available and device.type == 'cuda':
        if not torch.cuda.is_available():
            raise DeviceError(f'device {name!r} asked for but CUDA is not available')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f'device {name!r} does not exist '
                              f'({torch.cuda.device_count()} CUDA devices)')
    return device


def cpu_has_native_bf16() -> bool:
    """Return True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX).

    Without it oneDNN emulates bf16, and autocast is slower than fp32.
    """
    checks = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
