"""The synthetic logistics cell: samples a scene per seed and renders an RGB-D frame with truth."""

from __future__ import annotations

import cv2
import numpy as np

from seg_perception.classes import ClassSet
from seg_perception.synthetic.camera import look_at, sample_intrinsics
from seg_perception.synthetic.config import SyntheticConfig, SyntheticConfigError
from seg_perception.synthetic.frame import ItemTruth, SyntheticFrame
from seg_perception.synthetic.noise import compose_rgb, degrade_depth
from seg_perception.synthetic.render import Rasteriser
from seg_perception.synthetic.scene import (ItemSpec, sample_distractors, sample_items,
                                            sample_surface)
from seg_perception.synthetic.shading import light_field, Lighting, sample_lighting
from seg_perception.synthetic.shapes import (back_wall_face, bar_faces, CYLINDER_FACETS,
                                             decal_faces, item_faces, tote_faces)
from seg_perception.synthetic.textures import texture_bank

_NEEDED = ('background', 'tote', 'box', 'polybag', 'envelope', 'cylinder')


class SyntheticCell:
    """Procedural RGB-D renderer of a tote or conveyor with cluttered logistics items."""

    def __init__(self, config: SyntheticConfig | None = None, *,
                 class_set: ClassSet | None = None) -> None:
        self.config = config if config is not None else SyntheticConfig()
        if not isinstance(self.config, SyntheticConfig):
            raise SyntheticConfigError(
                f'config must be a SyntheticConfig, got {type(self.config).__name__}')
        self.class_set = class_set if class_set is not None else ClassSet.default()
        try:
            self.label_of = {name: self.class_set.by_name(name).id for name in _NEEDED}
        except KeyError as exc:
            raise SyntheticConfigError(f'class set lacks a class the cell renders: {exc}') from exc
        self.bank = texture_bank(self.config.texture_seed)

    def render(self, seed: int, *, empty: bool = False) -> SyntheticFrame:
        """Render the frame of `seed` (same seed and config -> bit-identical arrays).

        With `empty`, the same scene and camera without its items: the empty-container
        reference frame a user captures before the bin is filled (its sensor noise is its own).
        """
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f'seed must be a non-negative int, got {seed!r}')
        cfg = self.config
        rng = np.random.Generator(np.random.PCG64(int(seed)))
        bank = self.bank
        lab = self.label_of

        surf = sample_surface(rng, cfg.tote_probability,
                              neighbour_probability=cfg.neighbour_tote_probability)
        count = int(rng.integers(cfg.min_items, cfg.max_items + 1))
        if rng.random() < cfg.empty_probability:
            count = 0
        # Draws added after the cell's first release come from their own stream, so every
        # frame they leave alone (and the whole 'classic' split) renders as it did.
        later = np.random.Generator(np.random.PCG64([int(seed), 1]))
        items = sample_items(rng, surf, count, thin_rng=later,
                             thin_probability=cfg.thin_item_probability)
        if cfg.distractors:
            sample_distractors(rng, surf)
        if empty:
            items = []

        K = sample_intrinsics(rng, cfg)
        length, width = surf.floor_size_m
        target = np.array([rng.normal(0, 0.03 * length), rng.normal(0, 0.03 * width), 0.0])
        tilt = np.radians(cfg.tilt_range_deg[0] + (cfg.tilt_range_deg[1] - cfg.tilt_range_deg[0])
                          * rng.random() ** 1.5)
        lo, hi = cfg.camera_height_range_m
        height = lo + (hi - lo) * rng.random() ** 1.7   # close views are the common case
        R_cw, t_cw, centre = look_at(target_w=target, tilt_rad=tilt,
                                     azimuth_rad=rng.uniform(-np.pi, np.pi), height_m=height,
                                     roll_rad=rng.normal(0, 0.05))
        light = sample_lighting(rng, centre)
        light_c = R_cw @ light.dir_w

        r = Rasteriser(width=cfg.width, height=cfg.height, K=K)

        def shade_of(normal_w: np.ndarray) -> float:
            return light.ambient + light.diffuse * max(0.0, float(normal_w @ light.dir_w))

        # Front to back (top items first, ground last): hidden pixels fail the z-test early
        # and are never textured.
        top_fid: dict[int, int] = {}
        item_pixels: dict[int, int] = {}
        facet_fids: dict[int, list[int]] = {}   # cylinder item -> face ids of its side facets
        for index in range(len(items) - 1, -1, -1):
            item = items[index]
            if item.kind == 'polybag':
                fid, pixels = self._draw_polybag(r, item, R_cw, t_cw, light_c, light)
                top_fid[index], item_pixels[index] = fid, pixels
                continue
            for k, face in enumerate(item_faces(item, index, bank, lab[item.kind])):
                fid = r.draw_face(face, R_cw, t_cw, shade_of(face.normal_w))
                if item.kind == 'cylinder' and k < CYLINDER_FACETS and fid:
                    facet_fids.setdefault(index, []).append(fid)
                if face.is_top:
                    top_fid[index] = fid
                if fid:
                    item_pixels[index] = item_pixels.get(index, 0) + r.face_pixels[fid]
        for face in decal_faces(surf, bank, lab):
            r.draw_face(face, R_cw, t_cw, shade_of(face.normal_w))
        faces = tote_faces(surf, bank, lab['tote']) if surf.tote else []
        floor_fid = 0
        for k, face in enumerate(faces):
            fid = r.draw_face(face, R_cw, t_cw, shade_of(face.normal_w))
            floor_fid = fid if k == 0 else floor_fid
        for offset in surf.neighbours:
            for face in tote_faces(surf, bank, lab['tote'], offset_xy=offset):
                r.draw_face(face, R_cw, t_cw, shade_of(face.normal_w))
        for face in back_wall_face(surf, bank, lab['background']):
            r.draw_face(face, R_cw, t_cw, shade_of(face.normal_w))
        ground_tex = bank.ground[surf.ground_texture].levels[0]
        if not surf.tote:
            floor_fid = self._ground(r, surf, ground_tex, R_cw, t_cw, rng, shade_of)
        for pts, colour, width_m, _ in surf.cables:
            r.draw_polyline(pts_w=pts, R_cw=R_cw, t_cw=t_cw, colour=colour, width_m=width_m,
                            on_face=floor_fid)
        if surf.tote:
            for face in bar_faces(surf, bank, lab['background']):
                r.draw_face(face, R_cw, t_cw, shade_of(face.normal_w))
            self._ground(r, surf, ground_tex, R_cw, t_cw, rng, shade_of)
        labels, instances, shade, bag_spec = r.resolve()

        step = max(1, cfg.width // 160)
        gain, highlight = light_field(r, light, R_cw, t_cw, shadows=cfg.shadows, step=step)
        highlight += bag_spec
        for index, fids in facet_fids.items():
            self._shade_cylinder(r, items[index], fids, R_cw, t_cw, light, shade, highlight)
        gain *= shade
        albedo = r.albedo
        if surf.tote:      # any tote colour, not just the bank's: tint the tote's pixels
            lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * surf.tote_tint, 0, 255)
            tinted = cv2.LUT(albedo, lut.astype(np.uint8).reshape(256, 1, 3))
            cv2.copyTo(tinted, (labels == lab['tote']).view(np.uint8), albedo)
        if surf.tote and items and later.random() < cfg.camouflage_probability:
            camouflage_items(later, albedo, labels, instances, items, tote_label=lab['tote'])
        effects = cfg.camera_effects and later.random() >= cfg.clean_camera_probability
        rgb = compose_rgb(rng, bank, albedo, gain, highlight, light.colour, noise=cfg.rgb_noise,
                          effects=effects)
        depth = r.z
        if surf.tote and cfg.floor_sag_m > 0:
            depth = sag_floor(depth, r, surf, R_cw, t_cw,
                              np.random.Generator(np.random.PCG64([int(seed), 2]))
                              .uniform(-cfg.floor_sag_m, cfg.floor_sag_m))
        if cfg.depth_noise:
            depth = degrade_depth(rng, bank, depth, bag_spec)
        truths = tuple(self._truth(item, r, instances, R_cw, t_cw, top_fid.get(index, 0),
                                   item_pixels.get(index, 0)) for index, item in enumerate(items))
        up_c = R_cw[:, 2]       # world z (up) in the camera frame; the floor is world z = 0
        floor = np.append(up_c, -float(up_c @ t_cw))
        return SyntheticFrame(rgb=rgb, depth_m=depth, labels=labels, instances=instances,
                              K=K, items=truths, seed=int(seed), floor_plane_cam=floor,
                              in_tote=bool(surf.tote))

    @staticmethod
    def _shade_cylinder(r: Rasteriser, item: ItemSpec, fids: list[int], R_cw: np.ndarray,
                        t_cw: np.ndarray, light: Lighting, shade: np.ndarray,
                        highlight: np.ndarray) -> None:
        """Shade a cylinder's side facets per pixel with the true surface normal (in place).

        Flat-shaded facets make cans and bottles look like prisms (and like boxes to a
        network); the smooth Lambert gradient and the highlight stripe along the axis are what
        tells a cylinder apart in a real image.
        """
        boxes = np.array([r.face_bbox[f] for f in fids])
        x0, y0 = boxes[:, :2].min(axis=0)
        x1, y1 = boxes[:, 2:].max(axis=0)
        fid = r.face_id[y0:y1, x0:x1]
        mask = np.isin(fid, fids)
        if not mask.any():
            return
        z = r.z[y0:y1, x0:x1][mask]
        vv, uu = np.nonzero(mask)
        p_c = np.column_stack([r.ray_x[x0 + uu] * z, r.ray_y[y0 + vv] * z, z])
        R_ci = R_cw @ item.T_wi[:3, :3]
        t_ci = R_cw @ item.T_wi[:3, 3] + t_cw
        p_i = (p_c - t_ci) @ R_ci        # item frame: x is the axis
        n_i = np.column_stack([np.zeros_like(z), p_i[:, 1], p_i[:, 2]])
        n_i /= np.maximum(np.linalg.norm(n_i, axis=1, keepdims=True), 1e-9)
        n_c = n_i @ R_ci.T
        lambert = np.maximum(0.0, n_c @ (R_cw @ light.dir_w))
        sl = (slice(y0, y1), slice(x0, x1))
        shade[sl][mask] = light.ambient + light.diffuse * lambert
        to_light = (R_cw @ light.point_w + t_cw) - p_c
        to_light /= np.linalg.norm(to_light, axis=1, keepdims=True)
        half = to_light - p_c / np.linalg.norm(p_c, axis=1, keepdims=True)
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
        ndh = np.maximum(0.0, np.einsum('ij,ij->i', n_c, half))
        highlight[sl][mask] += float(item.looks['gloss']) * ndh ** light.shininess

    def _ground(self, r: Rasteriser, surf, texture: np.ndarray, R_cw, t_cw, rng,
                shade_of) -> int:
        return r.draw_ground(z_w=surf.ground_z_m, R_cw=R_cw, t_cw=t_cw, texture=texture,
                             texels_per_m=float(rng.uniform(400, 900)),
                             label=self.label_of['background'],
                             shade=shade_of(np.array([0.0, 0.0, 1.0])))

    def _draw_polybag(self, r: Rasteriser, item: ItemSpec, R_cw, t_cw, light_c, light):
        bank = self.bank
        looks = item.looks
        field = bank.bag_shape[looks['shape']]
        if 'albedo' not in looks:
            content = bank.bag_content[looks['content']].astype(np.float32)
            sheen = field[..., 0:1] * 40.0
            alb = content * (1 - looks['opacity']) + looks['tint'] * looks['opacity'] + sheen
            looks['albedo'] = cv2.cvtColor(np.clip(alb, 0, 255).astype(np.uint8),
                                           cv2.COLOR_RGB2RGBA)
        T_wb = item.T_wi.copy()
        T_wb[:3, 3] -= T_wb[:3, 2] * item.size_m[2] / 2     # base of the bag
        T_cb = np.eye(4)
        T_cb[:3, :3] = R_cw @ T_wb[:3, :3]
        T_cb[:3, 3] = R_cw @ T_wb[:3, 3] + t_cw
        return r.draw_heightfield(T_cw_item=T_cb, half_size=(item.size_m[0] / 2,
                                                             item.size_m[1] / 2),
                                  height_m=float(item.size_m[2]), field=field,
                                  albedo=looks['albedo'], label=self.label_of['polybag'],
                                  instance=item.instance_id, light_c=light_c,
                                  ambient=light.ambient, diffuse=light.diffuse,
                                  gloss=looks['gloss'], shininess=looks['shininess'])

    def _truth(self, item: ItemSpec, r: Rasteriser, instances: np.ndarray, R_cw: np.ndarray,
               t_cw: np.ndarray, fid: int, pixels: int) -> ItemTruth:
        T_cw = np.eye(4)
        T_cw[:3, :3], T_cw[:3, 3] = R_cw, t_cw
        pose = T_cw @ item.T_wi
        R, t = pose[:3, :3], pose[:3, 3]
        size = item.size_m
        if item.kind == 'cylinder':
            length, radius = float(size[0]), float(size[1])
            if item.standing:
                ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
                local = np.column_stack([np.full(16, length / 2), radius * np.cos(ang),
                                         radius * np.sin(ang)])
                centre_l, normal_l = np.array([length / 2, 0, 0]), np.array([1.0, 0, 0])
                top_size = np.array([2 * radius, 2 * radius])
            else:   # the crest strip a cup or fingers would approach (local z is world up)
                hw = radius * 0.35
                local = np.array([[-length / 2, hw, radius], [length / 2, hw, radius],
                                  [length / 2, -hw, radius], [-length / 2, -hw, radius]])
                centre_l, normal_l = np.array([0, 0, radius]), np.array([0, 0, 1.0])
                top_size = np.array([length, 2 * radius])
        else:
            hx, hy, hz = size / 2
            level = hz * (0.7 if item.kind == 'polybag' else 1.0)
            local = np.array([[-hx, hy, level], [hx, hy, level], [hx, -hy, level],
                              [-hx, -hy, level]])
            centre_l = np.array([0, 0, hz])
            normal_l = np.array([0, 0, 1.0])
            top_size = np.array(sorted(size[:2], reverse=True), float)
        normal = R @ normal_l
        centre = R @ centre_l + t
        if normal @ centre > 0:
            normal = -normal
        visible = 0.0
        if fid > 0:
            x0, y0, x1, y1 = r.face_bbox[fid]
            if item.kind in ('polybag',) or (item.kind == 'cylinder' and not item.standing):
                seen = int(np.count_nonzero(instances[y0:y1, x0:x1] == item.instance_id))
                total = pixels
            else:
                seen = int(np.count_nonzero(r.face_id[y0:y1, x0:x1] == fid))
                total = r.face_pixels[fid]
            visible = min(1.0, seen / total) if total else 0.0
        elif item.kind == 'cylinder' and not item.standing and pixels:
            seen = int(np.count_nonzero(instances == item.instance_id))
            visible = min(1.0, seen / pixels)
        return ItemTruth(instance_id=item.instance_id, class_id=self.label_of[item.kind],
                         class_name=item.kind, pose_cam=pose,
                         top_face_center_cam=centre, top_face_normal_cam=normal / np.linalg.norm(
                             normal), top_face_polygon_cam=local @ R.T + t,
                         top_face_size_m=top_size, visible_fraction=float(visible))


def sag_floor(depth: np.ndarray, r: Rasteriser, surf, R_cw: np.ndarray, t_cw: np.ndarray,
              sag_m: float) -> np.ndarray:
    """Return depth with the tote's floor bent by `sag_m` at its centre, zero at its edges.

    Everything over the floor rides the bend (the items lie on it): each such pixel rises by
    s = sag cos(pi x / L) cos(pi y / W) at its world floor coordinates, moving along its ray
    (first order in the bend's slope, exact at its crest). Only depth changes: colour and
    labels stay those of the flat cell.
    """
    valid = np.isfinite(depth)
    rows, cols = np.nonzero(valid)
    z = depth[rows, cols].astype(np.float64)
    rays = np.column_stack([r.ray_x[cols], r.ray_y[rows], np.ones_like(z)])
    world = (rays * z[:, None] - t_cw) @ R_cw          # R_cw^T (p_c - t_cw), row-wise
    length, width = surf.floor_size_m
    over = (np.abs(world[:, 0]) < length / 2) & (np.abs(world[:, 1]) < width / 2) \
        & (world[:, 2] < surf.wall_height_m)
    height = sag_m * np.cos(np.pi * world[over, 0] / length) \
        * np.cos(np.pi * world[over, 1] / width)
    slope = rays[over] @ R_cw[:, 2]
    out = depth.copy()
    out[rows[over], cols[over]] = (z[over] + height / slope).astype(np.float32)
    return out


def camouflage_items(rng: np.random.Generator, albedo: np.ndarray, labels: np.ndarray,
                     instances: np.ndarray, items: list[ItemSpec], *, tote_label: int,
                     min_tote_px: int = 500) -> None:
    """Recolour 1-3 items in the tote's own colour, keeping their print (in place).

    Real bins hold items the colour of the bin (pink scissors and a pink whisk in a red ARC
    tote): colour alone must not say "tote". Each chosen item keeps its texture's relative
    brightness, takes the mean colour of the visible tote and blends it in by 60-95 %.
    """
    tote_px = labels == tote_label
    if np.count_nonzero(tote_px) < min_tote_px:
        return
    tote_rgb = albedo[tote_px].reshape(-1, 3).mean(axis=0)
    seen = np.bincount(instances.ravel(), minlength=len(items) + 1)
    visible = [item.instance_id for item in items if seen[item.instance_id] > 0]
    if not visible:
        return
    chosen = rng.choice(visible, size=min(len(visible), int(rng.integers(1, 4))),
                        replace=False)
    for instance_id in chosen:
        mask = (instances == instance_id) & ~tote_px
        pixels = albedo[mask].astype(np.float32)
        luma = pixels.mean(axis=1, keepdims=True)
        relative = luma / max(float(luma.mean()), 1.0)
        target = tote_rgb[None, :] * relative * np.float32(rng.uniform(0.75, 1.3))
        alpha = np.float32(rng.uniform(0.6, 0.95))
        albedo[mask] = np.clip(alpha * target + (1 - alpha) * pixels, 0, 255).astype(np.uint8)


def colourise_depth(depth_m: np.ndarray) -> np.ndarray:
    """Return an RGB visualisation of a depth image (NaN black)."""
    valid = np.isfinite(depth_m)
    if not valid.any():
        return np.zeros(depth_m.shape + (3,), np.uint8)
    lo, hi = np.percentile(depth_m[valid], [1, 99])
    norm = np.clip((np.nan_to_num(depth_m, nan=hi) - lo) / max(hi - lo, 1e-6), 0, 1)
    img = cv2.applyColorMap((255 - norm * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    img[~valid] = 0
    return np.ascontiguousarray(img)
