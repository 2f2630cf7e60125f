"""Rendered frames of the synthetic cell and the ground truth of each item."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ItemTruth:
    """Ground truth of one rendered item, in the camera's optical frame (x right, y down, z fwd).

    The top face is the face a suction cup would approach: the box or envelope top, the lid of a
    standing cylinder, the upper crest line strip of a lying cylinder, the upper surface of a
    polybag (its outline lifted to the bag's mean top height).
    """

    instance_id: int
    class_id: int
    class_name: str
    pose_cam: np.ndarray               # (4, 4) float64 camera_from_item
    top_face_center_cam: np.ndarray    # (3,) float64 metres
    top_face_normal_cam: np.ndarray    # (3,) unit, points out of the face toward the camera side
    top_face_polygon_cam: np.ndarray   # (N, 3) float64 outline of the top face
    top_face_size_m: np.ndarray        # (2,) length, width
    visible_fraction: float            # visible top-face pixels / top-face pixels if unoccluded


@dataclass(frozen=True)
class SyntheticFrame:
    """One RGB-D frame of the synthetic cell with exact labels and instances."""

    rgb: np.ndarray          # (H, W, 3) uint8 RGB
    depth_m: np.ndarray      # (H, W) float32 metres along the optical axis, NaN = invalid
    labels: np.ndarray       # (H, W) uint8 class ids of the class set
    instances: np.ndarray    # (H, W) uint16, 0 = surface, unique per item
    K: np.ndarray            # (3, 3) float64 intrinsics
    items: tuple[ItemTruth, ...]
    seed: int
    #: The plane the items rest on (tote floor or flat surface) in the camera frame: (nx, ny, nz,
    #: d) with n . p + d = 0, n unit and pointing to the camera side (d > 0).
    floor_plane_cam: np.ndarray | None = None
    #: True when the items lie in a tote (else on a flat conveyor, table or shelf).
    in_tote: bool = False

    @property
    def height(self) -> int:
        """Return the image height in pixels."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """Return the image width in pixels."""
        return int(self.rgb.shape[1])
