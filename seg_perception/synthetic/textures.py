"""Procedural texture bank of the synthetic cell, generated once per seed and reused per frame."""

from __future__ import annotations

from functools import lru_cache
import string

import cv2
import numpy as np

#: Edge length of the base (mip level 0) textures in texels.
TEXTURE_SIZE = 256
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN)

#: RGB colours of plastic totes: red, blue, grey, black, yellow, green, orange, light grey,
#: then white, dark grey, navy, dark green, milky translucent, charcoal and brown-red.
TOTE_COLOURS = ((178, 44, 30), (32, 72, 150), (110, 112, 115), (40, 40, 44), (215, 170, 30),
                (40, 110, 60), (210, 90, 25), (175, 178, 180), (232, 232, 228), (70, 72, 76),
                (28, 36, 70), (24, 60, 40), (205, 210, 212), (26, 26, 28), (120, 40, 30))
#: Indices into TOTE_COLOURS drawn per tote (translucent totes get a cloudy texture).
TOTE_COLOUR_CHOICES = tuple(range(len(TOTE_COLOURS)))
_TRANSLUCENT = 12


class MipTexture:
    """A texture with its mip chain, so small faces sample a pre-filtered level."""

    def __init__(self, image: np.ndarray) -> None:
        if image.shape[2] == 3:   # 4-channel warps are faster than 3-channel ones in OpenCV
            image = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
        self.levels: list[np.ndarray] = [np.ascontiguousarray(image)]
        while self.levels[-1].shape[0] > 16:
            self.levels.append(cv2.pyrDown(self.levels[-1]))

    def level_for(self, size_px: float) -> np.ndarray:
        """Return the smallest level at least `size_px` texels wide (the base one at most)."""
        best = self.levels[0]
        for level in self.levels[1:]:
            if level.shape[1] < size_px:
                break
            best = level
        return best


def _noise(rng: np.random.Generator, size: int, scale: int) -> np.ndarray:
    """Return smooth noise in about -1..1 made by upsampling a coarse random grid."""
    coarse = rng.standard_normal((max(2, size // scale), max(2, size // scale))).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _fbm(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return multi-octave smooth noise with unit-ish amplitude."""
    out = np.zeros((size, size), np.float32)
    for scale, amp in ((64, 0.5), (16, 0.3), (4, 0.2)):
        out += amp * _noise(rng, size, scale)
    return out


def _shade(base: np.ndarray, field: np.ndarray, amount: float) -> np.ndarray:
    """Modulate an RGB base colour (or image) by a scalar field."""
    img = np.asarray(base, np.float32) * (1.0 + amount * field[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def _text(img: np.ndarray, rng: np.random.Generator, colour, x: int, y: int, scale: float,
          n: int = 6, thick: int = 1) -> None:
    chars = string.ascii_uppercase + string.digits
    word = ''.join(rng.choice(list(chars), size=n))
    cv2.putText(img, word, (x, y), _FONTS[int(rng.integers(len(_FONTS)))], scale,
                tuple(int(c) for c in colour), thick, cv2.LINE_AA)


def _barcode(img: np.ndarray, rng: np.random.Generator, x: int, y: int, w: int, h: int) -> None:
    pos = x
    while pos < x + w:
        bar = int(rng.integers(1, 4))
        if rng.random() < 0.55:
            cv2.rectangle(img, (pos, y), (min(pos + bar - 1, x + w), y + h), (20, 20, 20), -1)
        pos += bar


def _shipping_label(img: np.ndarray, rng: np.random.Generator, x: int, y: int, w: int,
                    h: int) -> None:
    cv2.rectangle(img, (x, y), (x + w, y + h), (238, 238, 232), -1)
    for row in range(3):
        _text(img, rng, (30, 30, 30), x + 4, y + 12 + 11 * row, 0.33, n=int(rng.integers(5, 11)))
    _barcode(img, rng, x + 4, y + h // 2 + 2, w - 8, h // 2 - 6)


def _cardboard(rng: np.random.Generator, white: bool, top: bool) -> np.ndarray:
    s = TEXTURE_SIZE
    base = np.array((236, 232, 222) if white else
                    (int(rng.integers(165, 205)), int(rng.integers(120, 150)),
                     int(rng.integers(75, 100))), np.float32)
    fibre = cv2.resize(rng.standard_normal((s // 8, s)).astype(np.float32), (s, s))
    img = _shade(np.broadcast_to(base, (s, s, 3)), 0.05 * fibre + 0.08 * _fbm(rng, s), 1.0)
    if rng.random() < 0.35:  # printed brand mark
        _text(img, rng, (int(rng.integers(0, 90)),) * 3, int(rng.integers(10, 90)),
              int(rng.integers(40, 220)), float(rng.uniform(0.6, 1.3)), n=5, thick=2)
    if top:
        tape = ((200, 160, 100) if rng.random() < 0.6
                else tuple(int(v) for v in rng.integers(60, 240, 3)))
        half = int(rng.integers(14, 26))
        cv2.rectangle(img, (0, s // 2 - half), (s, s // 2 + half), tape, -1)
        img[s // 2 - half:s // 2 - half + 2] = np.clip(img[s // 2 - half] * 1.2 + 10, 0, 255)
        if rng.random() < 0.75:
            w, h = int(rng.integers(80, 130)), int(rng.integers(50, 80))
            x = int(rng.integers(5, s - w - 5))
            y = int(rng.choice([int(rng.integers(4, max(5, s // 2 - half - h - 2))),
                                int(rng.integers(s // 2 + half + 2, s - h - 4))]))
            _shipping_label(img, rng, x, y, w, h)
    return img


def _retail(rng: np.random.Generator) -> np.ndarray:
    s = TEXTURE_SIZE
    c0 = rng.integers(0, 256, 3).astype(np.float32)
    c1 = rng.integers(0, 256, 3).astype(np.float32)
    t = np.linspace(0, 1, s, dtype=np.float32)[:, None, None]
    img = (c0 * (1 - t) + c1 * t).repeat(s, axis=1).astype(np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = (int(v) for v in rng.integers(0, s - 40, 2))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(20, 160)),
                                        y + int(rng.integers(15, 100))), col, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(10, 60)), col, -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 4))):
        col = ((255, 255, 255) if rng.random() < 0.5
               else tuple(int(v) for v in rng.integers(0, 256, 3)))
        _text(img, rng, col, int(rng.integers(0, 80)), int(rng.integers(30, s - 10)),
              float(rng.uniform(0.6, 1.6)), n=int(rng.integers(3, 8)), thick=2)
    if rng.random() < 0.4:
        _barcode(img, rng, s - 70, s - 40, 60, 30)
    return img


def _envelope(rng: np.random.Generator) -> np.ndarray:
    s = TEXTURE_SIZE
    kind = rng.integers(5)
    if kind == 0:    # white paper
        base = (240, 240, 236)
    elif kind == 1:  # kraft paper
        base = (196, 158, 110)
    elif kind == 2:  # bubble mailer, yellow
        base = (226, 204, 120)
    elif kind == 3:  # poly mailer, grey/white/black
        base = tuple([int(rng.choice([70, 150, 225]))] * 3)
    else:            # coloured poly mailer
        base = tuple(int(v) for v in rng.integers(40, 230, 3))
    img = _shade(np.broadcast_to(np.array(base, np.float32), (s, s, 3)), _fbm(rng, s), 0.05)
    if kind == 2:
        bumps = _noise(rng, s, 6)
        img = _shade(img, np.sin(bumps * 6.0), 0.05)
    # flap edge line and address label
    y = int(rng.integers(20, 60))
    cv2.line(img, (0, y), (s, y), tuple(int(v * 0.8) for v in base), 2, cv2.LINE_AA)
    if rng.random() < 0.8:
        w, h = int(rng.integers(90, 140)), int(rng.integers(55, 85))
        _shipping_label(img, rng, int(rng.integers(30, s - w - 5)),
                        int(rng.integers(y + 10, s - h - 5)), w, h)
    if rng.random() < 0.4:
        cv2.rectangle(img, (s - 50, 10), (s - 15, 50),
                      tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
    return img


def _can_label(rng: np.random.Generator) -> np.ndarray:
    """Return a label wrapped around a cylinder: u around the circumference, v along the axis."""
    s = TEXTURE_SIZE
    if rng.random() < 0.25:  # bare metal can
        v = np.cos(np.linspace(0, 12, s, dtype=np.float32))[:, None]
        grey = 150 + 50 * v + 10 * _fbm(rng, s)
        return np.clip(np.repeat(grey[..., None], 3, axis=2), 0, 255).astype(np.uint8)
    img = _retail(rng)
    if rng.random() < 0.5:  # bottle: cap band at one end
        cap = tuple(int(v) for v in rng.integers(0, 256, 3))
        img[:, :int(rng.integers(15, 40))] = cap
    return img


def _lid(rng: np.random.Generator) -> np.ndarray:
    s = TEXTURE_SIZE
    col = rng.integers(30, 240, 3)
    img = np.broadcast_to(col.astype(np.uint8), (s, s, 3)).copy()
    cv2.circle(img, (s // 2, s // 2), s // 2 - 6, tuple(int(v * 0.75) for v in col), 6,
               cv2.LINE_AA)
    if rng.random() < 0.5:
        cv2.circle(img, (s // 2, s // 2), s // 5, tuple(int(v * 1.1 % 255) for v in col), -1)
    return img


def _tote_plastic(rng: np.random.Generator, colour, translucent: bool = False) -> np.ndarray:
    s = TEXTURE_SIZE
    # Translucent plastic shows blurred, low-contrast shapes of what lies behind it.
    amount = 0.22 if translucent else 0.06
    img = _shade(np.broadcast_to(np.array(colour, np.float32), (s, s, 3)), _fbm(rng, s), amount)
    scratches = np.zeros((s, s), np.uint8)
    for _ in range(12):
        p = rng.integers(0, s, 4)
        cv2.line(scratches, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), 1, 1)
    img[scratches > 0] = np.clip(img[scratches > 0].astype(np.int16) + 12, 0, 255)
    return img


def _ground(rng: np.random.Generator, kind: int) -> np.ndarray:
    s = TEXTURE_SIZE
    if kind == 0:    # carpet
        base = np.array((84, 88, 80), np.float32)
        field = 0.25 * rng.standard_normal((s, s)).astype(np.float32) + 0.2 * _fbm(rng, s)
    elif kind == 1:  # concrete
        base = np.array((150, 148, 142), np.float32)
        field = 0.15 * _fbm(rng, s) + 0.06 * rng.standard_normal((s, s)).astype(np.float32)
    elif kind == 2:  # conveyor belt, black rubber ribs
        base = np.array((48, 50, 52), np.float32)
        ribs = np.sin(np.arange(s, dtype=np.float32) * 2 * np.pi / 16)[:, None]
        field = 0.25 * np.repeat(ribs, s, axis=1) + 0.1 * _fbm(rng, s)
    elif kind == 3:  # wood table
        base = np.array((170, 125, 80), np.float32)
        grain = _noise(rng, s, 32)[:, :1] * 8 + np.arange(s, dtype=np.float32)[None, :] * 0.0
        field = 0.2 * np.sin(grain * 3 + _noise(rng, s, 64) * 2) + 0.05 * _fbm(rng, s)
    elif kind == 4:  # grey steel
        base = np.array((165, 170, 175), np.float32)
        field = 0.08 * cv2.resize(rng.standard_normal((s, 8)).astype(np.float32), (s, s))
    else:            # green/blue conveyor or mat
        base = rng.integers(40, 140, 3).astype(np.float32)
        field = 0.12 * _fbm(rng, s)
    return _shade(np.broadcast_to(base, (s, s, 3)), field, 1.0)


def _decal(rng: np.random.Generator) -> np.ndarray:
    """Return an RGBA decal: sticker, stain, tape scrap or printed mark."""
    s = TEXTURE_SIZE // 2
    img = np.zeros((s, s, 4), np.uint8)
    kind = rng.integers(4)
    if kind == 0:    # sticker
        col = tuple(int(v) for v in rng.integers(0, 256, 3)) + (255,)
        cv2.rectangle(img, (8, 20), (s - 8, s - 20), col, -1)
        _text(img, rng, (255, 255, 255, 255), 14, s // 2 + 6, 0.7, n=4, thick=2)
    elif kind == 1:  # stain
        blob = (_noise(rng, s, 16) + 1.2 - np.hypot(*np.mgrid[-1:1:s * 1j, -1:1:s * 1j]) * 2.2)
        col = (int(rng.integers(60, 120)), int(rng.integers(45, 90)), int(rng.integers(20, 60)))
        img[..., :3] = col
        img[..., 3] = np.where(blob > 0, 255, 0).astype(np.uint8)
    elif kind == 2:  # tape scrap
        col = (200, 165, 105) if rng.random() < 0.6 else (230, 230, 225)
        cv2.rectangle(img, (0, s // 2 - 14), (s, s // 2 + 14), col + (255,), -1)
    else:            # printed arrow/mark
        col = tuple(int(v) for v in rng.integers(0, 120, 3)) + (255,)
        cv2.arrowedLine(img, (10, s // 2), (s - 10, s // 2), col, 8, cv2.LINE_AA, tipLength=0.35)
    return img


def _polybag(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """Return (size, size, 4) float32: height 0..1, d/dx, d/dy (per unit map coord), inside."""
    n = int(rng.integers(7, 12))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.78, 0.98, n)
    c = (size - 1) / 2
    pts = np.stack([c + c * rad * np.cos(ang), c + c * rad * np.sin(ang)], axis=1)
    pts = np.clip(pts, 0, size - 1)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_AA, shift=4)
    mask = (cv2.GaussianBlur(mask.astype(np.float32), (0, 0), size / 24) > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5).astype(np.float32)
    prof = 1.0 - np.exp(-dist / (size * float(rng.uniform(0.08, 0.16))))
    wrinkle = np.zeros((size, size), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(int(rng.integers(4, 9))):
        a = rng.uniform(0, np.pi)
        freq = rng.uniform(6, 20)
        phase = rng.uniform(0, 2 * np.pi)
        wrinkle += np.sin((np.cos(a) * xx + np.sin(a) * yy) * freq + phase) * rng.uniform(.3, 1)
    wrinkle = cv2.GaussianBlur(wrinkle, (0, 0), 1.2) * (_noise(rng, size, 24) * 0.5 + 0.6)
    height = prof * (1.0 + 0.12 * wrinkle) + 0.06 * mask
    height = np.clip(height, 0.0, None) * mask
    height = (height / max(float(height.max()), 1e-6)).astype(np.float32)
    grad_scale = (size - 1) / 2.0   # map texels per unit normalised coordinate
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) / 8.0 * grad_scale
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 8.0 * grad_scale
    inside = mask.astype(np.float32)
    return np.dstack([height, gx, gy, inside]).astype(np.float32)


class TextureBank:
    """Every texture the renderer samples, generated once from a fixed seed."""

    def __init__(self, *, seed: int = 0) -> None:
        rng = np.random.Generator(np.random.PCG64(seed))
        self.seed = seed
        self.box_top = [MipTexture(_cardboard(rng, rng.random() < 0.25, True))
                        for _ in range(16)]
        self.box_side = [MipTexture(_cardboard(rng, rng.random() < 0.25, False))
                         for _ in range(8)]
        self.retail = [MipTexture(_retail(rng)) for _ in range(20)]
        self.envelope = [MipTexture(_envelope(rng)) for _ in range(16)]
        self.can = [MipTexture(_can_label(rng)) for _ in range(16)]
        self.lid = [MipTexture(_lid(rng)) for _ in range(8)]
        self.tote = [MipTexture(_tote_plastic(rng, c, k == _TRANSLUCENT))
                     for k, c in enumerate(TOTE_COLOURS)]
        self.ground = [MipTexture(_ground(rng, k % 6)) for k in range(12)]
        self.decal = [MipTexture(_decal(rng)) for _ in range(16)]
        self.bag_shape = [_polybag(rng) for _ in range(12)]
        self.bag_content = [cv2.resize(_retail(rng), (96, 96), interpolation=cv2.INTER_AREA)
                            for _ in range(8)]
        # Sensor-noise banks: random crops of these replace per-frame random draws.
        self.noise_n = 640
        self.gauss = rng.standard_normal((self.noise_n * 2, self.noise_n * 2)).astype(np.float32)
        self.rgb_noise = rng.standard_normal((self.noise_n * 2, self.noise_n * 2, 3),
                                             dtype=np.float32)
        self.dropout = rng.random((128, 128)).astype(np.float32)


@lru_cache(maxsize=4)
def texture_bank(seed: int = 0) -> TextureBank:
    """Return the (cached) texture bank for `seed`."""
    return TextureBank(seed=seed)
