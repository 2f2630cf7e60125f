"""Configuration of the synthetic logistics cell."""

from __future__ import annotations

from dataclasses import dataclass


class SyntheticConfigError(ValueError):
    """Raised when a synthetic cell configuration is inconsistent."""


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """What the synthetic cell renders: resolution, clutter, camera and sensor ranges.

    Intrinsics are given for a 640x480 sensor and scale with the resolution, so a 320x240
    render sees the same scene as a 640x480 one.
    """

    width: int = 640
    height: int = 480
    min_items: int = 3
    max_items: int = 25                      # dense clutter: up to 25 items, heavy occlusion
    tote_probability: float = 0.7           # else a flat conveyor/table/shelf (background)
    empty_probability: float = 0.08          # a scene with nothing on it ("surface" != "item")
    neighbour_tote_probability: float = 0.35  # an empty tote beside the one in front
    fx_range_px: tuple[float, float] = (500.0, 650.0)   # at 640x480
    principal_jitter_px: float = 10.0                    # at 640x480
    tilt_range_deg: tuple[float, float] = (0.0, 35.0)
    camera_height_range_m: tuple[float, float] = (0.6, 1.3)
    distractors: bool = True                 # stickers, stains, tape, cables (surface label)
    depth_noise: bool = True                 # noise, edge/specular holes and dropouts
    rgb_noise: bool = True                   # sensor noise, blur and exposure jitter
    shadows: bool = True
    camera_effects: bool = True              # white balance, vignetting, monochrome, JPEG
    clean_camera_probability: float = 0.25   # a frame of a well-set camera: no camera effects
    camouflage_probability: float = 0.3      # tote frames with 1-3 items coloured like the tote
    thin_item_probability: float = 0.15      # cylinders that are thin rods (wires, handles)
    texture_seed: int = 0                    # seed of the texture bank (fixed per cell)
    #: Largest bend of a tote's floor in metres (up or down, zero at its edges; drawn per
    #: frame from its own stream). Real plastic totes sag and bulge by 1-3 cm; off (0) by
    #: default so every figure measured on the cell before stays as it was.
    floor_sag_m: float = 0.0

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 4096 and 16 <= self.height <= 4096):
            raise SyntheticConfigError(
                f'resolution {self.width}x{self.height} is outside 16..4096 pixels')
        if not 0 <= self.min_items <= self.max_items <= 64:
            raise SyntheticConfigError(
                f'item count range {self.min_items}..{self.max_items} must satisfy '
                '0 <= min_items <= max_items <= 64')
        for name in ('tote_probability', 'empty_probability', 'neighbour_tote_probability',
                     'clean_camera_probability', 'camouflage_probability',
                     'thin_item_probability'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SyntheticConfigError(f'{name} {value} not in 0..1')
        if not 0.0 <= self.floor_sag_m <= 0.1:
            raise SyntheticConfigError(f'floor_sag_m {self.floor_sag_m} not in 0..0.1')
        lo, hi = self.fx_range_px
        if not 50.0 <= lo <= hi:
            raise SyntheticConfigError(f'fx_range_px {self.fx_range_px} must be ordered, >= 50')
        lo, hi = self.tilt_range_deg
        if not 0.0 <= lo <= hi <= 45.0:
            raise SyntheticConfigError(f'tilt_range_deg {self.tilt_range_deg} not within 0..45')
        lo, hi = self.camera_height_range_m
        if not 0.4 <= lo <= hi <= 3.0:
            raise SyntheticConfigError(
                f'camera_height_range_m {self.camera_height_range_m} not within 0.4..3.0')
        if self.principal_jitter_px < 0:
            raise SyntheticConfigError(
                f'principal_jitter_px {self.principal_jitter_px} must be >= 0')
