"""Z-buffered rasterisation of textured planar faces and height-field items, vectorised."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from seg_perception.synthetic.textures import MipTexture

_TEX_UNIT = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


@dataclass
class Face:
    """A planar polygon with a texture, drawn with per-pixel analytic depth."""

    verts_w: np.ndarray                 # (N, 3) world polygon, convex or simple
    normal_w: np.ndarray                # (3,) outward unit normal
    texture: MipTexture
    tex_quad_w: np.ndarray              # (4, 3) world points at texture corners TL, TR, BR, BL
    label: int
    instance: int = 0
    gloss: float = 0.0                  # specular strength of the low-res highlight pass
    tex_rect: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)   # u0, v0, u1, v1
    alpha: bool = False                 # texture has an alpha channel that cuts the face
    item: int = -1                      # index of the owning item, -1 for surfaces
    is_top: bool = False


class Rasteriser:
    """Accumulate depth, labels, instances, albedo and shading of one frame."""

    def __init__(self, *, width: int, height: int, K: np.ndarray) -> None:
        self.width, self.height = width, height
        self.K = K
        self.interp = cv2.INTER_NEAREST
        self.fx, self.fy, self.cx, self.cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        self.u = np.arange(width, dtype=np.float32)
        self.v = np.arange(height, dtype=np.float32)
        self.ray_x = ((self.u - self.cx) / self.fx).astype(np.float32)
        self.ray_y = ((self.v - self.cy) / self.fy).astype(np.float32)
        self.z = np.full((height, width), np.inf, np.float32)
        self.face_id = np.zeros((height, width), np.int32)
        self.albedo_rgba = np.zeros((height, width, 4), np.uint8)   # 4 channels copy faster
        self._fid_fill = np.empty((height, width), np.int32)
        self.bag_shade = np.ones((height, width), np.float32)    # written by height fields
        self.bag_spec = np.zeros((height, width), np.float32)
        self.normals_c: list[np.ndarray] = [np.array([0.0, 0.0, -1.0])]
        self.gloss: list[float] = [0.0]
        self.face_bbox: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)]
        self.face_pixels: list[int] = [0]
        self.face_label: list[int] = [0]
        self.face_instance: list[int] = [0]
        self.face_shade: list[float] = [1.0]
        self.face_is_bag: list[bool] = [False]

    @property
    def albedo(self) -> np.ndarray:
        """Return the (H, W, 3) uint8 RGB albedo drawn so far."""
        return cv2.cvtColor(self.albedo_rgba, cv2.COLOR_RGBA2RGB)

    def project(self, pts_c: np.ndarray) -> np.ndarray:
        """Project (N, 3) camera points to pixels."""
        z = pts_c[:, 2:3]
        return pts_c[:, :2] / z * (self.fx, self.fy) + (self.cx, self.cy)

    def _bbox(self, p: np.ndarray) -> tuple[int, int, int, int] | None:
        x0 = max(0, int(np.floor(p[:, 0].min())))
        x1 = min(self.width, int(np.ceil(p[:, 0].max())) + 1)
        y0 = max(0, int(np.floor(p[:, 1].min())))
        y1 = min(self.height, int(np.ceil(p[:, 1].max())) + 1)
        if x0 >= x1 or y0 >= y1:
            return None
        return x0, y0, x1, y1

    def _new_face(self, normal_c: np.ndarray, gloss: float, bbox, pixels: int, label: int,
                  instance: int, shade: float, bag: bool = False) -> int:
        self.normals_c.append(normal_c)
        self.gloss.append(gloss)
        self.face_bbox.append(bbox)
        self.face_pixels.append(pixels)
        self.face_label.append(label)
        self.face_instance.append(instance)
        self.face_shade.append(shade)
        self.face_is_bag.append(bag)
        return len(self.normals_c) - 1

    def resolve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (labels, instances, shade, bag_spec) per pixel from the face id buffer."""
        fid = self.face_id
        count = len(self.face_label)
        if count <= 256:    # 8-bit face ids: table look-ups run as cv2.LUT
            index = fid.astype(np.uint8)

            def per_pixel(values: list, dtype: type) -> np.ndarray:
                table = np.zeros(256, dtype)
                table[:count] = values
                return cv2.LUT(index, table)
        else:
            def per_pixel(values: list, dtype: type) -> np.ndarray:
                return np.take(np.asarray(values, dtype), fid)
        labels = per_pixel(self.face_label, np.uint8)
        instances = per_pixel(self.face_instance, np.uint16)
        shade = per_pixel(self.face_shade, np.float32)
        spec = np.zeros_like(shade)
        for k in np.flatnonzero(self.face_is_bag):
            x0, y0, x1, y1 = self.face_bbox[k]
            sel = cv2.compare(fid[y0:y1, x0:x1], float(k), cv2.CMP_EQ)
            cv2.copyTo(self.bag_shade[y0:y1, x0:x1], sel, shade[y0:y1, x0:x1])
            cv2.copyTo(self.bag_spec[y0:y1, x0:x1], sel, spec[y0:y1, x0:x1])
        return labels, instances, shade, spec

    @staticmethod
    def _tight(vis: np.ndarray) -> tuple[int, int, int, int] | None:
        """Return the (x0, y0, x1, y1) box of the non-zero pixels of a uint8 mask, or None."""
        x, y, w, h = cv2.boundingRect(vis)
        return (x, y, x + w, y + h) if w else None

    def inverse_depth(self, normal_c: np.ndarray, dist: float, x0: int, y0: int, x1: int,
                      y1: int) -> np.ndarray:
        """Return 1/z over a pixel box for the plane n . X = dist (camera coordinates)."""
        a = float(normal_c[0]) / self.fx / dist
        b = float(normal_c[1]) / self.fy / dist
        c = (float(normal_c[2]) - float(normal_c[0]) * self.cx / self.fx
             - float(normal_c[1]) * self.cy / self.fy) / dist
        col = self.v[y0:y1] * np.float32(b) + np.float32(c)
        return np.add.outer(col, self.u[x0:x1] * np.float32(a))

    def draw_face(self, face: Face, R_cw: np.ndarray, t_cw: np.ndarray, shade: float) -> int:
        """Rasterise one face with z-test; return its face id (0 when culled or off-screen)."""
        verts_c = face.verts_w @ R_cw.T + t_cw
        normal_c = R_cw @ face.normal_w
        dist = float(normal_c @ verts_c[0])
        if dist > -1e-6 or verts_c[:, 2].min() < 0.05:   # back-facing, edge-on or behind
            return 0
        p = self.project(verts_c)
        box = self._bbox(p)
        if box is None:
            return 0
        x0, y0, x1, y1 = box
        vis = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(vis, [np.round((p - (x0, y0)) * 16).astype(np.int32)], 1, cv2.LINE_8,
                     shift=4)
        pixels = cv2.countNonZero(vis) if face.item >= 0 else 0
        with np.errstate(divide='ignore'):
            zs = np.reciprocal(self.inverse_depth(normal_c, dist, x0, y0, x1, y1))
        vis &= zs < self.z[y0:y1, x0:x1]
        fid = self._new_face(normal_c, face.gloss, box, pixels, face.label, face.instance, shade)
        tight = self._tight(vis)
        if tight is None:
            return fid
        tx0, ty0, tx1, ty1 = tight
        quad_p = self.project(face.tex_quad_w @ R_cw.T + t_cw) - (x0 + tx0, y0 + ty0)
        size_px = float(max(np.abs(quad_p[1] - quad_p[0]).max(),
                            np.abs(quad_p[3] - quad_p[0]).max()))
        u0, v0, u1, v1 = face.tex_rect
        span = max(u1 - u0, v1 - v0)
        tex = face.texture.level_for(size_px / max(span, 1e-3))
        th, tw = tex.shape[:2]
        src = (np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]]) * (tw, th)).astype(np.float32)
        Hm = cv2.getPerspectiveTransform(src, quad_p.astype(np.float32))
        warped = cv2.warpPerspective(tex, Hm, (tx1 - tx0, ty1 - ty0), flags=self.interp,
                                     borderMode=cv2.BORDER_REFLECT)
        vis = vis[ty0:ty1, tx0:tx1]
        if face.alpha:
            vis &= warped[..., 3] > 127
        self._write(fid, (slice(y0 + ty0, y0 + ty1), slice(x0 + tx0, x0 + tx1)),
                    zs[ty0:ty1, tx0:tx1], warped, vis)
        return fid

    def _write(self, fid: int, sl: tuple[slice, slice], z: np.ndarray, albedo: np.ndarray,
               mask: np.ndarray) -> None:
        """Write depth, face id and RGBA albedo of face `fid` where `mask` is non-zero."""
        fill = self._fid_fill[sl]
        fill.fill(fid)
        cv2.copyTo(z, mask, self.z[sl])
        cv2.copyTo(fill, mask, self.face_id[sl])
        cv2.copyTo(albedo, mask, self.albedo_rgba[sl])

    def draw_ground(self, *, z_w: float, R_cw: np.ndarray, t_cw: np.ndarray, texture: np.ndarray,
                    texels_per_m: float, label: int, shade: float) -> int:
        """Fill every still empty pixel with the infinite horizontal plane z = z_w (world)."""
        normal_c = R_cw[:, 2]           # world up in camera coordinates
        dist = float(normal_c @ (R_cw @ np.array([0.0, 0.0, z_w]) + t_cw))
        if dist > -1e-6:
            raise ValueError(f'camera is not above the ground plane z={z_w} m')
        W, H = self.width, self.height
        fid = self._new_face(normal_c, 0.05, (0, 0, W, H), W * H, label, 0, shade)
        empty = cv2.compare(self.z, np.inf, cv2.CMP_EQ)    # 255 where nothing is drawn yet
        tight = self._tight(empty)
        if tight is None:
            return fid
        x0, y0, x1, y1 = tight
        inv = self.inverse_depth(normal_c, dist, x0, y0, x1, y1)
        corners = np.array([[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]], np.float64)
        z_c = dist / (normal_c[0] * (corners[:, 0] - self.cx) / self.fx
                      + normal_c[1] * (corners[:, 1] - self.cy) / self.fy + normal_c[2])
        pts_c = np.column_stack([(corners[:, 0] - self.cx) / self.fx * z_c,
                                 (corners[:, 1] - self.cy) / self.fy * z_c, z_c])
        pts_w = (pts_c - t_cw) @ R_cw
        src = (pts_w[:, :2] * texels_per_m).astype(np.float32)
        Hm = cv2.getPerspectiveTransform(src, (corners - (x0, y0)).astype(np.float32))
        warped = cv2.warpPerspective(texture, Hm, (x1 - x0, y1 - y0), flags=self.interp,
                                     borderMode=cv2.BORDER_WRAP)
        vis = empty[y0:y1, x0:x1]
        sl = (slice(y0, y1), slice(x0, x1))
        self._write(fid, sl, np.reciprocal(inv), warped, vis)
        return fid

    def draw_heightfield(self, *, T_cw_item: np.ndarray, half_size: tuple[float, float],
                         height_m: float, field: np.ndarray, albedo: np.ndarray, label: int,
                         instance: int, light_c: np.ndarray, ambient: float, diffuse: float,
                         gloss: float, shininess: float) -> tuple[int, int]:
        """Ray-cast a height field item (z up in the item frame, base at z=0).

        `field` is (S, S, 4) float32: height 0..1, d/dx, d/dy per unit map coordinate, inside;
        `albedo` is (S, S, 3) uint8 over the same map. Returns (face id, unoccluded pixels).
        """
        hx, hy = half_size
        corners = np.array([[sx * hx, sy * hy, sz * height_m] for sx in (-1, 1)
                            for sy in (-1, 1) for sz in (0, 1)])
        pts_c = corners @ T_cw_item[:3, :3].T + T_cw_item[:3, 3]
        if np.any(pts_c[:, 2] < 0.05):
            return 0, 0
        box = self._bbox(self.project(pts_c))
        if box is None:
            return 0, 0
        x0, y0, x1, y1 = box
        R_ic = T_cw_item[:3, :3].T.astype(np.float32)        # camera -> item rotation
        o = (-T_cw_item[:3, :3].T @ T_cw_item[:3, 3]).astype(np.float32)   # camera in item
        rx = self.ray_x[x0:x1][None, :]
        ry = self.ray_y[y0:y1][:, None]
        dx = R_ic[0, 0] * rx + (R_ic[0, 1] * ry + R_ic[0, 2])
        dy = R_ic[1, 0] * rx + (R_ic[1, 1] * ry + R_ic[1, 2])
        dz = R_ic[2, 0] * rx + (R_ic[2, 1] * ry + R_ic[2, 2])
        inv_dz = np.float32(1.0) / dz
        S = field.shape[0]
        kx, ky = np.float32((S - 1) / (2 * hx)), np.float32((S - 1) / (2 * hy))
        cxm = np.float32((S - 1) / 2)
        h = np.full(dz.shape, height_m, np.float32)
        hmap = field[..., 0] * np.float32(height_m)
        t, mx, my = np.empty_like(dz), np.empty_like(dz), np.empty_like(dz)

        def march() -> None:
            # in place, same float32 operations as t = (h - oz) / dz, mx = (ox + t dx) kx + c
            np.subtract(h, np.float32(o[2]), out=t)
            np.multiply(t, inv_dz, out=t)
            for m, d, k, o_m in ((mx, dx, kx, o[0]), (my, dy, ky, o[1])):
                np.multiply(t, d, out=m)
                m += np.float32(o_m)
                m *= k
                m += cxm

        for _ in range(4):
            march()
            h = cv2.remap(hmap, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0.0)
        march()
        smp = cv2.remap(field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=(0.0, 0.0, 0.0, 0.0))
        inside = smp[..., 3] > 0.5
        zs = t   # rays have unit z in the camera frame, so the ray parameter is the depth
        zb = self.z[y0:y1, x0:x1]
        vis = inside & (zs < zb) & (zs > 0)
        fid = self._new_face(T_cw_item[:3, 2], 0.0, box, int(np.count_nonzero(inside)), label,
                             instance, 1.0, bag=True)
        if not vis.any():
            return fid, int(np.count_nonzero(inside))
        # normals in the item frame -> camera frame
        sx = smp[..., 1] * np.float32(height_m / hx)
        sy = smp[..., 2] * np.float32(height_m / hy)
        inv_n = 1.0 / np.sqrt(sx * sx + sy * sy + 1.0)
        R = T_cw_item[:3, :3].astype(np.float32)
        light_c = np.asarray(light_c, np.float32)
        nx = (-R[0, 0] * sx - R[0, 1] * sy + R[0, 2]) * inv_n
        ny = (-R[1, 0] * sx - R[1, 1] * sy + R[1, 2]) * inv_n
        nz = (-R[2, 0] * sx - R[2, 1] * sy + R[2, 2]) * inv_n
        lam = np.maximum(nx * light_c[0] + ny * light_c[1] + nz * light_c[2], 0.0)
        vx, vy = -rx, -ry
        vn = 1.0 / np.sqrt(vx * vx + vy * vy + 1.0)
        hx_, hy_, hz_ = light_c[0] + vx * vn, light_c[1] + vy * vn, light_c[2] - vn
        hn = 1.0 / np.sqrt(hx_ * hx_ + hy_ * hy_ + hz_ * hz_)
        ndh = np.maximum((nx * hx_ + ny * hy_ + nz * hz_) * hn, 0.0)
        spec = np.float32(gloss) * ndh ** np.float32(shininess)
        col = cv2.remap(albedo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = vis.view(np.uint8)
        sl = (slice(y0, y1), slice(x0, x1))
        self._write(fid, sl, zs, col, mask)
        cv2.copyTo((ambient + diffuse * lam).astype(np.float32), mask, self.bag_shade[sl])
        cv2.copyTo(spec.astype(np.float32), mask, self.bag_spec[sl])
        return fid, int(np.count_nonzero(inside))

    def draw_polyline(self, *, pts_w: np.ndarray, R_cw: np.ndarray, t_cw: np.ndarray,
                      colour: tuple[int, int, int], width_m: float, on_face: int) -> None:
        """Paint a thin flat line (cable) onto the pixels of face `on_face` (depth unchanged)."""
        pts_c = pts_w @ R_cw.T + t_cw
        if on_face <= 0 or np.any(pts_c[:, 2] < 0.05):
            return
        p = self.project(pts_c)
        box = self._bbox(p)
        if box is None:
            return
        x0, y0, x1, y1 = (max(0, box[0] - 8), max(0, box[1] - 8), min(self.width, box[2] + 8),
                          min(self.height, box[3] + 8))
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        thick = max(1, int(round(width_m * self.fx / float(np.mean(pts_c[:, 2])))))
        cv2.polylines(mask, [np.round((p - (x0, y0)) * 16).astype(np.int32)], False, 1, thick,
                      cv2.LINE_8, shift=4)
        vis = mask.view(bool) & (self.face_id[y0:y1, x0:x1] == on_face)
        self.albedo_rgba[y0:y1, x0:x1, :3][vis] = colour
