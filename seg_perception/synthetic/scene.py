"""Random layout of the cell: surface (tote or conveyor), items resting on it, distractors."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from seg_perception.synthetic.textures import TOTE_COLOUR_CHOICES

#: Relative frequency of the item kinds in a frame.
ITEM_KINDS = ('box', 'polybag', 'envelope', 'cylinder')
_KIND_WEIGHTS = np.array([0.3, 0.27, 0.2, 0.23])
_GRID_M = 0.005   # placement height map resolution


@dataclass
class ItemSpec:
    """One item: kind, size, pose in the world (z up, origin at the item's centre) and looks."""

    kind: str
    instance_id: int
    size_m: np.ndarray            # (length, width, height); cylinders: (length, r, r)
    T_wi: np.ndarray              # (4, 4) world_from_item
    standing: bool = False        # cylinders: axis vertical
    looks: dict = field(default_factory=dict)


@dataclass
class SurfaceSpec:
    """The surface the items lie on."""

    tote: bool
    floor_size_m: tuple[float, float]          # inner tote floor, or item area on a conveyor
    wall_height_m: float = 0.0
    flare_m: float = 0.0
    rim_m: float = 0.0
    ground_z_m: float = 0.0
    tote_colour: int = 0
    tote_gloss: float = 0.15                   # matte (0.02) .. glossy (0.7) plastic
    tote_tint: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))  # RGB gains
    neighbours: list = field(default_factory=list)  # (dx, dy) world offsets of empty totes
    back_wall: tuple | None = None             # shelf/cell wall: (side, distance_m, height_m)
    ground_texture: int = 0
    bars: list = field(default_factory=list)       # (centre(3), size(3), yaw) background bars
    decals: list = field(default_factory=list)     # (centre(3), size(2), yaw, texture, on_tote)
    cables: list = field(default_factory=list)     # ((N,3) world points, rgb, width_m, on_tote)


def _pose(x: float, y: float, z: float, yaw: float, roll: float = 0.0,
          pitch: float = 0.0) -> np.ndarray:
    cz, sz = np.cos(yaw), np.sin(yaw)
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    T = np.eye(4)
    T[:3, :3] = Rz @ Ry @ Rx
    T[:3, 3] = (x, y, z)
    return T


def sample_surface(rng: np.random.Generator, tote_probability: float, *,
                   neighbour_probability: float = 0.0) -> SurfaceSpec:
    """Sample a tote (floor, flared walls, rim) on the ground, or a flat conveyor/table/shelf.

    Real cells show more than one container and more than one kind of surface: a neighbouring
    empty tote, a shelf's back wall, totes of any colour and finish. All of it is `tote` or
    `background`, so the network learns that a surface is not an item.
    """
    if rng.random() < tote_probability:
        length = rng.uniform(0.5, 0.8)
        width = rng.uniform(0.35, min(0.6, length))
        wall = rng.uniform(0.14, 0.32)
        surf = SurfaceSpec(tote=True, floor_size_m=(length, width), wall_height_m=wall,
                           flare_m=wall * np.tan(np.radians(rng.uniform(3, 12))),
                           rim_m=rng.uniform(0.015, 0.04), ground_z_m=-rng.uniform(0.01, 0.6),
                           tote_colour=int(rng.integers(len(TOTE_COLOUR_CHOICES))),
                           ground_texture=int(rng.integers(12)))
        surf.tote_gloss = float(np.exp(rng.uniform(np.log(0.02), np.log(0.7))))
        brightness = float(np.exp(rng.uniform(np.log(0.45), np.log(1.3))))
        surf.tote_tint = (brightness * rng.uniform(0.8, 1.2, 3)).astype(np.float32)
        if rng.random() < neighbour_probability:
            pitch_x = length + 2 * (surf.flare_m + surf.rim_m) + rng.uniform(0.005, 0.08)
            pitch_y = width + 2 * (surf.flare_m + surf.rim_m) + rng.uniform(0.005, 0.08)
            side = float(rng.choice([-1.0, 1.0]))
            surf.neighbours.append((side * pitch_x, 0.0) if rng.random() < 0.6
                                   else (0.0, side * pitch_y))
    else:
        surf = SurfaceSpec(tote=False, floor_size_m=(rng.uniform(0.45, 0.8),
                                                     rng.uniform(0.35, 0.6)),
                           ground_texture=int(rng.integers(12)))
        if rng.random() < 0.35:     # a shelf or the cell's wall behind the items
            surf.back_wall = (int(rng.integers(4)), float(rng.uniform(0.0, 0.12)),
                              float(rng.uniform(0.25, 0.9)))
    return surf


def _footprint(size: np.ndarray, kind: str, standing: bool) -> tuple[float, float, float]:
    """Return the (length, width, height) of the item's axis-aligned bounds when resting."""
    if kind == 'cylinder':
        length, r = size[0], size[1]
        return (2 * r, 2 * r, length) if standing else (length, 2 * r, 2 * r)
    return float(size[0]), float(size[1]), float(size[2])


def _sample_size(rng: np.random.Generator, kind: str, scale: float) -> np.ndarray:
    if kind == 'box':
        length = rng.uniform(0.08, 0.32) * scale
        return np.array([length, rng.uniform(0.5, 1.0) * length * rng.uniform(0.7, 1.0),
                         rng.uniform(0.03, 0.18)])
    if kind == 'polybag':
        length = rng.uniform(0.12, 0.34) * scale
        return np.array([length, length * rng.uniform(0.45, 0.9), rng.uniform(0.015, 0.06)])
    if kind == 'envelope':
        length = rng.uniform(0.16, 0.34) * scale
        return np.array([length, length * rng.uniform(0.55, 0.8), rng.uniform(0.003, 0.018)])
    r = rng.uniform(0.022, 0.05)
    return np.array([rng.uniform(max(0.07, 2.2 * r), 0.26), r, r])


def sample_items(rng: np.random.Generator, surf: SurfaceSpec, count: int, *,
                 thin_rng: np.random.Generator | None = None,
                 thin_probability: float = 0.0) -> list[ItemSpec]:
    """Drop `count` items onto the surface, stacking on earlier ones via a height map.

    With `thin_rng`, a share `thin_probability` of the cylinders are thin rods lying down
    (radius 3-12 mm: pens, wires, tool handles; real bins hold whisks and scissors), drawn
    from that stream so a cell without them renders as before.
    """
    length, width = surf.floor_size_m
    gw, gh = int(np.ceil(length / _GRID_M)), int(np.ceil(width / _GRID_M))
    hmap = np.zeros((gh, gw), np.float32)
    scale = 1.15 * float(np.sqrt(length * width / 0.24)) ** 0.5
    items: list[ItemSpec] = []
    for idx in range(count):
        kind = str(rng.choice(ITEM_KINDS, p=_KIND_WEIGHTS))
        size = _sample_size(rng, kind, scale)
        standing = kind == 'cylinder' and rng.random() < 0.4
        if kind == 'cylinder' and thin_rng is not None and thin_probability > 0 \
                and thin_rng.random() < thin_probability:
            size[1] = size[2] = thin_rng.uniform(0.003, 0.012)
            standing = False
        fl, fw, fh = _footprint(size, kind, standing)
        placed = None
        for _ in range(6):
            yaw = rng.uniform(-np.pi, np.pi)
            c, s = abs(np.cos(yaw)), abs(np.sin(yaw))
            ext_x, ext_y = (c * fl + s * fw) / 2, (s * fl + c * fw) / 2
            if ext_x * 2 > length - 0.01 or ext_y * 2 > width - 0.01:
                fl_scale = 0.9
                size[:2] *= fl_scale if kind != 'cylinder' else 1.0
                fl, fw, fh = _footprint(size, kind, standing)
                continue
            x = rng.uniform(-length / 2 + ext_x + 0.005, length / 2 - ext_x - 0.005)
            y = rng.uniform(-width / 2 + ext_y + 0.005, width / 2 - ext_y - 0.005)
            corners = np.array([[fl, fw], [-fl, fw], [-fl, -fw], [fl, -fw]]) / 2
            R2 = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
            pts = corners @ R2.T + (x, y)
            grid = (pts + (length / 2, width / 2)) / _GRID_M
            mask = np.zeros_like(hmap, np.uint8)
            cv2.fillPoly(mask, [np.round(grid * 16).astype(np.int32)], 1, shift=4)
            cells = hmap[mask.view(bool)]
            if cells.size == 0:
                continue
            support = float(cells.max())
            supported = float(np.mean(cells >= support - 0.012))
            top = support + fh
            if support > 0 and (supported < 0.3 or (standing and supported < 0.8)):
                continue
            if surf.tote and top > surf.wall_height_m + 0.05:
                continue
            placed = (x, y, yaw, support, mask)
            break
        if placed is None:
            continue
        x, y, yaw, support, mask = placed
        if kind == 'cylinder':   # local x is the cylinder axis
            T = _pose(x, y, support + fh / 2, yaw, pitch=-np.pi / 2 if standing else 0.0)
        else:
            tilt = rng.normal(0, 0.03) if support > 0 else 0.0
            T = _pose(x, y, support + fh / 2, yaw, roll=tilt)
        item = ItemSpec(kind=kind, instance_id=len(items) + 1, size_m=size, T_wi=T,
                        standing=standing, looks=_sample_looks(rng, kind))
        item.looks['support_z'] = support
        items.append(item)
        rise = fh * (0.85 if kind == 'polybag' else 1.0)
        footprint = mask.view(bool)
        hmap[footprint] = np.maximum(hmap[footprint], support + rise)
        del idx
    return items


def _sample_looks(rng: np.random.Generator, kind: str) -> dict:
    if kind == 'box':
        retail = rng.random() < 0.45
        return {'retail': retail, 'top': int(rng.integers(20 if retail else 16)),
                'side': int(rng.integers(20 if retail else 8)), 'gloss': float(
                    rng.uniform(0.15, 0.5) if retail else rng.uniform(0.0, 0.06))}
    if kind == 'polybag':
        palette = ((235, 235, 235), (120, 120, 125), (30, 30, 32), (180, 200, 230),
                   tuple(int(v) for v in rng.integers(20, 255, 3)))
        tint = palette[int(rng.integers(len(palette)))]
        return {'shape': int(rng.integers(12)), 'content': int(rng.integers(8)),
                'tint': np.array(tint, np.float32), 'opacity': float(rng.uniform(0.35, 0.95)),
                'gloss': float(rng.uniform(0.5, 1.0)), 'shininess': float(rng.uniform(20, 80))}
    if kind == 'envelope':
        return {'texture': int(rng.integers(16)), 'gloss': float(rng.uniform(0.0, 0.3))}
    return {'label': int(rng.integers(16)), 'lid': int(rng.integers(8)),
            'gloss': float(rng.uniform(0.2, 0.8))}


def sample_distractors(rng: np.random.Generator, surf: SurfaceSpec) -> None:
    """Add stickers, stains, tape scraps, marks and cables, and bars or rails beside it.

    The bars are the cell's frame beside a tote, or conveyor rails beside a flat surface
    (background).
    """
    length, width = surf.floor_size_m
    for _ in range(int(rng.integers(0, 5))):
        size = rng.uniform(0.03, 0.12, 2)
        centre = np.array([rng.uniform(-length / 2, length / 2) * 0.85,
                           rng.uniform(-width / 2, width / 2) * 0.85, 0.0])
        surf.decals.append((centre, size, rng.uniform(-np.pi, np.pi), int(rng.integers(16)),
                            surf.tote))
    for _ in range(int(rng.integers(0, 3))):
        n = 6
        start = np.array([rng.uniform(-length / 2, length / 2) * 0.8,
                          rng.uniform(-width / 2, width / 2) * 0.8])
        steps = np.cumsum(rng.normal(0, 0.05, (n, 2)) + rng.normal(0, 0.04, 2), axis=0)
        pts = np.clip(start + steps, [-length / 2 * 0.95, -width / 2 * 0.95],
                      [length / 2 * 0.95, width / 2 * 0.95])
        pts3 = np.column_stack([pts, np.full(n, 0.0)])
        colour = ((20, 20, 20) if rng.random() < 0.5
                  else tuple(int(v) for v in rng.integers(0, 255, 3)))
        surf.cables.append((pts3, colour, rng.uniform(0.004, 0.01), surf.tote))
    for _ in range(int(rng.integers(0, 4))):
        side = rng.choice([-1, 1])
        along_x = rng.random() < 0.5
        off = (length if along_x else width) / 2 + surf.flare_m + surf.rim_m + \
            rng.uniform(0.03, 0.3)
        size = np.array([rng.uniform(1.0, 2.0), rng.uniform(0.03, 0.06),
                         rng.uniform(0.03, 0.06)])
        if along_x:
            centre = np.array([side * off, rng.uniform(-0.2, 0.2), 0.0])
            yaw = np.pi / 2
        else:
            centre = np.array([rng.uniform(-0.2, 0.2), side * off, 0.0])
            yaw = 0.0
        centre[2] = surf.ground_z_m + size[2] / 2 + rng.uniform(0, max(
            0.0, -surf.ground_z_m + surf.wall_height_m * 0.8))
        surf.bars.append((centre, size, yaw))
