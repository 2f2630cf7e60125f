"""Drawing of grasp candidates over an image (for docs, debugging and overlay topics)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.candidates import GraspCandidate

#: BGR-free RGB colours per candidate kind.
KIND_COLOURS = {'suction': (255, 40, 40), 'parallel': (40, 220, 255)}


def project(camera: PinholeCamera, points: np.ndarray) -> np.ndarray:
    """Return (N, 2) float pixel coordinates of (N, 3) camera-frame points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return np.stack([camera.fx * pts[:, 0] / pts[:, 2] + camera.cx,
                     camera.fy * pts[:, 1] / pts[:, 2] + camera.cy], axis=1)


def draw_candidates(rgb: np.ndarray, candidates: Sequence[GraspCandidate],
                    camera: PinholeCamera, *, axis_m: float = 0.04,
                    region_image: np.ndarray | None = None) -> np.ndarray:
    """Return a copy of `rgb` with candidates drawn: cup circles / jaw lines, normals, ranks.

    `camera` describes `rgb`'s resolution; `region_image` (same size), when given, tints regions.
    """
    out = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    if region_image is not None:
        tint = region_image > 0
        out[tint] = (0.6 * out[tint] + 0.4 * np.array([255, 255, 0])).astype(np.uint8)
    scale = max(out.shape[1] / 640.0, 1.0)
    thick = max(1, int(round(2 * scale)))
    for rank, cand in reversed(list(enumerate(candidates, start=1))):
        colour = KIND_COLOURS.get(cand.kind, (255, 255, 255))
        p0 = cand.position
        tip = p0 + cand.normal * axis_m
        (u0, v0), (u1, v1) = project(camera, np.stack([p0, tip]))
        c0 = (int(round(u0)), int(round(v0)))
        if cand.kind == 'parallel':
            half = cand.rotation[:, 1] * max(cand.extent_m[1], 0.02) * 0.7
            (ua, va), (ub, vb) = project(camera, np.stack([p0 - half, p0 + half]))
            cv2.line(out, (int(ua), int(va)), (int(ub), int(vb)), colour, thick + 1, cv2.LINE_AA)
        else:
            radius = max(3, int(round(0.015 * camera.fx / max(p0[2], 1e-3))))
            cv2.circle(out, c0, radius, colour, thick, cv2.LINE_AA)
        cv2.line(out, c0, (int(round(u1)), int(round(v1))), (255, 255, 255), thick, cv2.LINE_AA)
        cv2.putText(out, f'{rank}:{cand.score:.2f}', (c0[0] + 6, c0[1] - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (0, 0, 0), thick + 1, cv2.LINE_AA)
        cv2.putText(out, f'{rank}:{cand.score:.2f}', (c0[0] + 6, c0[1] - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, colour, 1, cv2.LINE_AA)
    return out
