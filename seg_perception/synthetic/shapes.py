"""Planar-face geometry of items and surfaces (boxes, envelopes, cylinders, tote, decals)."""

from __future__ import annotations

import numpy as np

from seg_perception.synthetic.render import Face
from seg_perception.synthetic.scene import ItemSpec, SurfaceSpec
from seg_perception.synthetic.textures import MipTexture, TextureBank

CYLINDER_FACETS = 12
LID_SEGMENTS = 16


def _xf(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ T[:3, :3].T + T[:3, 3]


def cuboid_faces(T_wi: np.ndarray, size: np.ndarray, *, top: MipTexture, side: MipTexture,
                 label: int, instance: int, gloss: float, item: int,
                 with_bottom: bool = False) -> list[Face]:
    """Return the faces of a cuboid centred on the item origin (top = +z, length along x)."""
    hx, hy, hz = (float(v) / 2 for v in size)
    R = T_wi[:3, :3]

    def face(local: list, normal: tuple, tex: MipTexture, is_top: bool = False) -> Face:
        pts = _xf(T_wi, np.array(local, float))
        return Face(verts_w=pts, normal_w=R @ np.array(normal, float), texture=tex,
                    tex_quad_w=pts, label=label, instance=instance, gloss=gloss, item=item,
                    is_top=is_top)

    faces = [
        face([[-hx, hy, hz], [hx, hy, hz], [hx, -hy, hz], [-hx, -hy, hz]], (0, 0, 1), top, True),
        face([[hx, hy, hz], [hx, -hy, hz], [hx, -hy, -hz], [hx, hy, -hz]], (1, 0, 0), side),
        face([[-hx, -hy, hz], [-hx, hy, hz], [-hx, hy, -hz], [-hx, -hy, -hz]], (-1, 0, 0), side),
        face([[-hx, hy, hz], [hx, hy, hz], [hx, hy, -hz], [-hx, hy, -hz]], (0, 1, 0), side),
        face([[hx, -hy, hz], [-hx, -hy, hz], [-hx, -hy, -hz], [hx, -hy, -hz]], (0, -1, 0), side),
    ]
    if with_bottom:
        faces.append(face([[-hx, -hy, -hz], [hx, -hy, -hz], [hx, hy, -hz], [-hx, hy, -hz]],
                          (0, 0, -1), side))
    return faces


def cylinder_faces(T_wi: np.ndarray, length: float, radius: float, *, label_tex: MipTexture,
                   lid_tex: MipTexture, label: int, instance: int, gloss: float, item: int,
                   top_cap: int) -> list[Face]:
    """Return facets and caps of a cylinder along local x; cap `top_cap` (+1/-1) is the top.

    The first CYLINDER_FACETS faces are the side facets. They carry no gloss: the cell shades
    them per pixel with the true cylinder normal (smooth shading and highlight, see
    SyntheticCell._shade_cylinders), so a can does not look like a prism.
    """
    n = CYLINDER_FACETS
    R = T_wi[:3, :3]
    hl = length / 2
    ang = np.linspace(0, 2 * np.pi, n + 1)
    faces = []
    for k in range(n):
        a0, a1 = ang[k], ang[k + 1]
        c0, s0, c1, s1 = np.cos(a0), np.sin(a0), np.cos(a1), np.sin(a1)
        local = np.array([[-hl, radius * c0, radius * s0], [hl, radius * c0, radius * s0],
                          [hl, radius * c1, radius * s1], [-hl, radius * c1, radius * s1]])
        am = (a0 + a1) / 2
        pts = _xf(T_wi, local)
        faces.append(Face(verts_w=pts, normal_w=R @ np.array([0, np.cos(am), np.sin(am)]),
                          texture=label_tex, tex_quad_w=pts, label=label, instance=instance,
                          gloss=0.0, item=item, tex_rect=(0.0, k / n, 1.0, (k + 1) / n)))
    seg = np.linspace(0, 2 * np.pi, LID_SEGMENTS, endpoint=False)
    for sign in (1, -1):
        local = np.column_stack([np.full(LID_SEGMENTS, sign * hl), radius * np.cos(seg),
                                 radius * np.sin(seg)])
        square = np.array([[sign * hl, -radius, radius], [sign * hl, radius, radius],
                           [sign * hl, radius, -radius], [sign * hl, -radius, -radius]])
        faces.append(Face(verts_w=_xf(T_wi, local), normal_w=R @ np.array([sign, 0.0, 0.0]),
                          texture=lid_tex, tex_quad_w=_xf(T_wi, square), label=label,
                          instance=instance, gloss=gloss, item=item, is_top=sign == top_cap))
    return faces


def item_faces(item: ItemSpec, index: int, bank: TextureBank, label: int) -> list[Face]:
    """Return the planar faces of a box, envelope or cylinder item."""
    looks = item.looks
    if item.kind == 'box':
        if looks['retail']:
            top, side = bank.retail[looks['top']], bank.retail[looks['side']]
        else:
            top, side = bank.box_top[looks['top']], bank.box_side[looks['side']]
        return cuboid_faces(item.T_wi, item.size_m, top=top, side=side, label=label,
                            instance=item.instance_id, gloss=looks['gloss'], item=index)
    if item.kind == 'envelope':
        tex = bank.envelope[looks['texture']]
        return cuboid_faces(item.T_wi, item.size_m, top=tex, side=tex, label=label,
                            instance=item.instance_id, gloss=looks['gloss'], item=index)
    if item.kind == 'cylinder':
        # standing cylinders have local x pointing up; lying ones have no flat top
        return cylinder_faces(item.T_wi, float(item.size_m[0]), float(item.size_m[1]),
                              label_tex=bank.can[looks['label']], lid_tex=bank.lid[looks['lid']],
                              label=label, instance=item.instance_id, gloss=looks['gloss'],
                              item=index, top_cap=1 if item.standing else 0)
    raise ValueError(f'item kind {item.kind!r} has no planar faces')


def tote_faces(surf: SurfaceSpec, bank: TextureBank, label: int,
               offset_xy: tuple[float, float] = (0.0, 0.0)) -> list[Face]:
    """Return the floor, flared inner walls, rim and outer walls of the tote.

    `offset_xy` moves the tote in the world plane (a neighbouring tote of the same type).
    """
    tex = bank.tote[surf.tote_colour]
    lx, ly = (v / 2 for v in surf.floor_size_m)
    wh, fl, rim, gz = surf.wall_height_m, surf.flare_m, surf.rim_m, surf.ground_z_m
    gloss = surf.tote_gloss
    floor = np.array([[-lx, ly, 0], [lx, ly, 0], [lx, -ly, 0], [-lx, -ly, 0]], float)
    inner = np.array([[-lx - fl, ly + fl, wh], [lx + fl, ly + fl, wh], [lx + fl, -ly - fl, wh],
                      [-lx - fl, -ly - fl, wh]], float)
    outer = inner * (1, 1, 1) + np.sign(inner) * (rim, rim, 0)
    base = np.column_stack([outer[:, :2] - np.sign(outer[:, :2]) * fl * 0.8,
                            np.full(4, gz)])
    shift = np.array([offset_xy[0], offset_xy[1], 0.0])
    floor, inner, outer, base = floor + shift, inner + shift, outer + shift, base + shift
    faces = [Face(verts_w=floor, normal_w=np.array([0.0, 0, 1]), texture=tex, tex_quad_w=floor,
                  label=label, gloss=gloss * 0.8)]
    for k in range(4):
        j = (k + 1) % 4
        quad = np.array([floor[k], floor[j], inner[j], inner[k]])
        n = np.cross(quad[1] - quad[0], quad[3] - quad[0])
        n /= np.linalg.norm(n)
        if n @ (shift + np.array([0, 0, wh / 2]) - quad[0]) < 0:
            n = -n
        faces.append(Face(verts_w=quad, normal_w=n, texture=tex, tex_quad_w=quad, label=label,
                          gloss=gloss * 1.2))
        rq = np.array([inner[k], inner[j], outer[j], outer[k]])
        faces.append(Face(verts_w=rq, normal_w=np.array([0.0, 0, 1]), texture=tex,
                          tex_quad_w=rq, label=label, gloss=gloss))
        oq = np.array([outer[k], outer[j], base[j], base[k]])
        n = np.cross(oq[1] - oq[0], oq[3] - oq[0])
        n /= np.linalg.norm(n)
        if n @ (shift + np.array([0, 0, wh / 2]) - oq[0]) > 0:
            n = -n
        faces.append(Face(verts_w=oq, normal_w=n, texture=tex, tex_quad_w=oq, label=label,
                          gloss=gloss * 0.7))
    return faces


def back_wall_face(surf: SurfaceSpec, bank: TextureBank, label: int) -> list[Face]:
    """Return the vertical back wall of a shelf or cell beside a flat surface (background)."""
    if surf.back_wall is None:
        return []
    side, distance, height = surf.back_wall
    lx, ly = (v / 2 for v in surf.floor_size_m)
    half_len, off = (lx + 0.6, ly + distance) if side < 2 else (ly + 0.6, lx + distance)
    sign = 1.0 if side % 2 == 0 else -1.0
    a = np.array([-half_len, sign * off, surf.ground_z_m])
    b = np.array([half_len, sign * off, surf.ground_z_m])
    quad = np.array([a, b, b + (0, 0, height), a + (0, 0, height)])
    if side >= 2:
        quad = quad[:, [1, 0, 2]]
    normal = np.zeros(3)
    normal[1 if side < 2 else 0] = -sign
    tex = bank.ground[(surf.ground_texture + 5) % len(bank.ground)]
    return [Face(verts_w=quad, normal_w=normal, texture=tex, tex_quad_w=quad, label=label,
                 gloss=0.1)]


def decal_faces(surf: SurfaceSpec, bank: TextureBank, labels: dict[str, int]) -> list[Face]:
    """Return thin textured decals (stickers, stains, tape, marks) 1 mm above the surface."""
    faces = []
    for centre, size, yaw, tex, on_tote in surf.decals:
        c, s = np.cos(yaw), np.sin(yaw)
        hx, hy = size / 2
        local = np.array([[-hx, hy], [hx, hy], [hx, -hy], [-hx, -hy]])
        pts = np.column_stack([local @ np.array([[c, s], [-s, c]]) + centre[:2],
                               np.full(4, centre[2] + 0.001)])
        faces.append(Face(verts_w=pts, normal_w=np.array([0.0, 0, 1]), texture=bank.decal[tex],
                          tex_quad_w=pts, label=labels['tote' if on_tote else 'background'],
                          alpha=True, gloss=0.1))
    return faces


def bar_faces(surf: SurfaceSpec, bank: TextureBank, label: int) -> list[Face]:
    """Return aluminium profile bars of the cell frame (background)."""
    faces: list[Face] = []
    for centre, size, yaw in surf.bars:
        c, s = np.cos(yaw), np.sin(yaw)
        T = np.eye(4)
        T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
        T[:3, 3] = centre
        faces += cuboid_faces(T, size, top=bank.ground[4], side=bank.ground[4], label=label,
                              instance=0, gloss=0.5, item=-1)
    return faces
