"""Named styles of the synthetic cell: the two cells of the domain-shift protocol.

A style is the synthetic cell with some SyntheticConfig overrides (camera, clutter) followed by
a photometric change seeded by the frame's seed: the synthetic cell draws totes of any colour
under any light, so a cell of one kind (light totes in diffuse light, or dark bins in hard
light) is made by re-lighting its frames. The change uses the rendered tote mask, which belongs
to the generator; nothing downstream of the renderer sees labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from seg_perception.synthetic import SyntheticCell, SyntheticConfig
from seg_perception.synthetic.frame import SyntheticFrame


@dataclass(frozen=True)
class Style:
    """A synthetic cell style: config overrides and a photometric change of each frame."""

    name: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    #: tote pixels: rgb -> lift + scale * rgb (a lighter or darker plastic)
    tote_scale: float = 1.0
    tote_lift: float = 0.0
    #: hard light: a brightness ramp across the frame from 1 - ramp to 1 + ramp, random direction
    ramp: float = 0.0
    gamma: float = 1.0
    colour_cast: tuple[float, float, float] = (1.0, 1.0, 1.0)


STYLES: dict[str, Style] = {
    'default': Style('default', 'the default randomised cell (what the shipped model saw)'),
    'light_diffuse': Style(
        'light_diffuse', 'style A: light grey totes, diffuse light, no shadows, one camera',
        config={'tote_probability': 1.0, 'neighbour_tote_probability': 0.0,
                'empty_probability': 0.0, 'max_items': 15, 'shadows': False,
                'camera_effects': False, 'tilt_range_deg': (0.0, 20.0),
                'fx_range_px': (560.0, 640.0)},
        tote_scale=0.35, tote_lift=150.0),
    'dark_hard': Style(
        'dark_hard', 'style B: dark bins, hard directional light with shadows, a wide-angle '
                     'camera looking in obliquely',
        config={'tote_probability': 1.0, 'neighbour_tote_probability': 0.0,
                'empty_probability': 0.0, 'max_items': 15, 'shadows': True,
                'camera_effects': False, 'tilt_range_deg': (15.0, 35.0),
                'fx_range_px': (420.0, 480.0)},
        tote_scale=0.25, ramp=0.55, gamma=1.25, colour_cast=(1.08, 1.0, 0.86)),
}


class StyleError(ValueError):
    """Raised for an unknown style name."""


def get_style(name: str) -> Style:
    """Return the style called `name`, or raise StyleError listing the known ones."""
    if name not in STYLES:
        raise StyleError(f'unknown synthetic style {name!r}; known: {", ".join(STYLES)}')
    return STYLES[name]


class StyledCell:
    """The synthetic cell in one style: `render(seed)` like SyntheticCell.render."""

    def __init__(self, style: str | Style, *, width: int = 640, height: int = 480,
                 **overrides: Any) -> None:
        self.style = get_style(style) if isinstance(style, str) else style
        kwargs = {**self.style.config, **overrides}
        self.cell = SyntheticCell(SyntheticConfig(width=width, height=height, **kwargs))
        self.tote_id = self.cell.label_of['tote']

    @property
    def config(self) -> SyntheticConfig:
        """Return the cell's SyntheticConfig."""
        return self.cell.config

    def render(self, seed: int) -> SyntheticFrame:
        """Render frame `seed` and apply the style (same seed -> same frame)."""
        frame = self.cell.render(seed=seed)
        return replace(frame, rgb=self.restyle(frame.rgb, frame.labels, seed))

    def restyle(self, rgb: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
        """Return the photometric change of one frame (uint8 RGB), seeded by `seed`."""
        s = self.style
        if (s.tote_scale, s.tote_lift, s.ramp, s.gamma, s.colour_cast) == (
                1.0, 0.0, 0.0, 1.0, (1.0, 1.0, 1.0)):
            return rgb
        img = rgb.astype(np.float32)
        tote = labels == self.tote_id
        img[tote] = s.tote_lift + s.tote_scale * img[tote]
        if s.ramp:
            rng = np.random.default_rng([int(seed), 0x5741])
            angle = rng.uniform(0, 2 * np.pi)
            h, w = labels.shape
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            t = ((xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)) / (0.5 * max(h, w))
            img *= (1.0 + s.ramp * np.clip(t, -1.0, 1.0))[..., None]
        img *= np.asarray(s.colour_cast, np.float32)
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** s.gamma
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)
