"""The grasp-assist pipeline: labels + depth -> item clouds, regions and grasp candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
import time

import numpy as np

from seg_perception.classes import ClassSet
from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.candidates import generate_candidates, GraspCandidate
from seg_perception.grasp.config import GraspConfig
from seg_perception.grasp.container import (Container, container_keep_mask, ContainerConfig,
                                            ContainerDetector, ContainerStatus)
from seg_perception.grasp.fusion import fuse
from seg_perception.grasp.regions import find_class_regions, Region, region_pixels

#: Fields of the item cloud (PointCloud2-ready; rgb is PCL's packed 0x00RRGGBB float32).
POINT_DTYPE = np.dtype([('x', np.float32), ('y', np.float32), ('z', np.float32),
                        ('rgb', np.float32), ('label', np.uint16), ('region', np.uint32),
                        ('normal_x', np.float32), ('normal_y', np.float32),
                        ('normal_z', np.float32), ('score', np.float32)])

#: POINT_DTYPE's x, y, z seen as one 12-byte field.
_XYZ_VIEW = np.dtype({'names': ['xyz'], 'formats': ['V12'], 'offsets': [0],
                      'itemsize': POINT_DTYPE.itemsize})

STAGES = ('backprojection', 'container', 'fusion', 'regions', 'candidates', 'cloud', 'total')


@dataclass
class GraspResult:
    """Everything one frame produced, in the depth camera's optical frame."""

    #: Structured POINT_DTYPE array: (N,) fused item points, or (H, W) when organized (NaN xyz
    #: outside the items).
    points: np.ndarray
    candidates: list[GraspCandidate]
    regions: list[Region]
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: (H, W) uint32 region id per depth pixel (0 = none); None for an empty frame.
    region_image: np.ndarray | None = None
    #: The container the frame's items lie in (None: step off, or none seen).
    container: Container | None = None
    #: What the container step did (None when it is off).
    container_status: ContainerStatus | None = None

    @property
    def empty(self) -> bool:
        """Return True when no item surface was found."""
        return not self.regions

    @property
    def organized(self) -> bool:
        """Return True when `points` is an (H, W) organized cloud."""
        return self.points.ndim == 2

    def regions_summary(self) -> list[dict]:
        """Return JSON-friendly region descriptions."""
        return [r.summary() for r in self.regions]


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Return (...,) float32 holding PCL-packed 0x00RRGGBB bits (never NaN: the top byte is 0)."""
    arr = np.asarray(rgb, dtype=np.uint8)
    packed = ((arr[..., 0].astype(np.uint32) << 16) | (arr[..., 1].astype(np.uint32) << 8)
              | arr[..., 2].astype(np.uint32))
    return packed.view(np.float32)


class _ContainerFilter:
    """The container's per-pixel test as fusion calls it, timing itself.

    It runs inside fusion but belongs to the container step's cost.
    """

    def __init__(self, container: Container, xyz: np.ndarray, depth: np.ndarray,
                 config: ContainerConfig) -> None:
        self.container, self.xyz, self.depth, self.config = container, xyz, depth, config
        self.seconds = 0.0

    def __call__(self, index: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        mask = container_keep_mask(self.container, self.xyz, self.depth, index, self.config)
        self.seconds += time.perf_counter() - start
        return mask


class GraspPipeline:
    """Fuse labels with depth and propose grasps; one per camera stream (not thread-safe)."""

    def __init__(self, config: GraspConfig | None = None,
                 class_set: ClassSet | None = None,
                 container: ContainerConfig | ContainerDetector | None = None) -> None:
        self.config = config if config is not None else GraspConfig()
        if isinstance(container, ContainerConfig):
            container = ContainerDetector(container)
        #: The container step (None or mode 'none': off).
        self.container = container
        self.class_set = class_set if class_set is not None else ClassSet.default()
        self._classes = tuple(self.class_set.by_name(n) for n in self.config.graspable_classes)
        self._grasp_modes = {c.id: c.grasp for c in self._classes}
        self._projectors: dict[PinholeCamera, BackProjector] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self._dirty: dict[tuple[int, int], tuple[int, int, int, int]] = {}

    def _projector(self, camera: PinholeCamera) -> BackProjector:
        proj = self._projectors.get(camera)
        if proj is None:
            if len(self._projectors) > 8:
                self._projectors.clear()
            proj = self._projectors[camera] = BackProjector(camera)
        return proj

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """Return a reusable work array (results never alias it: the cloud copies from it)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buf

    def _frame_buffers(self, height: int,
                       width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the region id, score and normal images, cleared where the last frame wrote.

        The normals are (3, H, W): one contiguous plane per component.
        """
        region_image = self._buffer('region', (height, width), np.uint32)
        score_image = self._buffer('score', (height, width), np.float32)
        normal_image = self._buffer('normal', (3, height, width), np.float32)
        dirty = self._dirty.get((height, width))
        if dirty is None:
            region_image.fill(0)
            score_image.fill(0.0)
            normal_image.fill(np.nan)
        else:
            x, y, w, h = dirty
            region_image[y:y + h, x:x + w] = 0
            score_image[y:y + h, x:x + w] = 0.0
            normal_image[:, y:y + h, x:x + w] = np.nan
        return region_image, score_image, normal_image

    def process(self, labels: np.ndarray, depth_m: np.ndarray, camera: PinholeCamera,
                rgb: np.ndarray | None = None) -> GraspResult:
        """Return item points, regions and candidates for one frame.

        `labels` (class ids, any resolution: resized to the depth), `depth_m` (H, W) float32
        metres with NaN invalid, `camera` for the depth image (rescaled when sizes differ),
        `rgb` (H', W', 3) uint8 registered to the depth (resized when sizes differ).
        """
        t0 = time.perf_counter()
        depth = np.asarray(depth_m)
        if depth.ndim != 2:
            raise ValueError(f'depth_m must be (H, W), got shape {depth.shape}')
        if depth.dtype != np.float32:
            raise ValueError(f'depth_m must be float32 metres, got {depth.dtype}')
        labels_arr = np.asarray(labels)
        if labels_arr.ndim != 2:
            raise ValueError(f'labels must be (H, W) class ids, got shape {labels_arr.shape}')
        height, width = depth.shape
        projector = self._projector(camera)
        cam = projector.camera_for(width, height)
        xyz = projector.organized(depth, out=self._buffer('xyz', (height, width, 3), np.float32))
        t1 = time.perf_counter()
        container: Container | None = None
        keep: _ContainerFilter | None = None
        detector = self.container
        reason = ''
        if detector is not None and detector.config.mode != 'none':
            container, reason = detector.locate(depth, xyz)
            if container is not None:
                keep = _ContainerFilter(container, xyz, depth, detector.config)
        t2 = time.perf_counter()
        fused = fuse(labels_arr, depth, xyz, [c.id for c in self._classes], self.config,
                     container_keep=keep)
        t3 = time.perf_counter()
        region_image, score_image, normal_image = self._frame_buffers(height, width)
        pixels: list[np.ndarray] = []
        regions = find_class_regions(
            [(info.id, info.name, fused.masks[info.id]) for info in self._classes
             if info.id in fused.masks], xyz, cam,
            min_region_pixels=self.config.min_region_pixels, first_region_id=1,
            region_image=region_image, origin=fused.roi[:2], plane_fit=self.config.plane_fit,
            voxel_size_m=self.config.voxel_size_m, pixels=pixels)
        t4 = time.perf_counter()
        candidates = generate_candidates(regions, region_image, xyz, cam, self.config,
                                         self._grasp_modes, score_image, tuple(normal_image),
                                         pixels=pixels)
        status = None
        if detector is not None and detector.config.mode != 'none':
            removed = 0
            if container is not None:
                before = len(candidates)
                candidates = self._clear_of_walls(candidates, container, detector.config)
                removed = before - len(candidates)
            status = ContainerStatus(mode=detector.config.mode,
                                     found=container is not None and container.is_bin,
                                     reason=reason, removed_pixels=fused.container_removed,
                                     removed_candidates=removed)
        t5 = time.perf_counter()
        points = self._cloud(region_image, fused.labels, xyz, normal_image, score_image, rgb,
                             regions, fused.roi)
        t6 = time.perf_counter()
        self._dirty = {(height, width): fused.roi}
        keep_total = keep.seconds if keep is not None else 0.0
        timings = {'backprojection': t1 - t0, 'container': t2 - t1 + keep_total,
                   'fusion': t3 - t2 - keep_total,
                   'regions': t4 - t3, 'candidates': t5 - t4, 'cloud': t6 - t5,
                   'total': t6 - t0}
        return GraspResult(points=points, candidates=candidates, regions=regions,
                           timings_ms={k: v * 1e3 for k, v in timings.items()},
                           region_image=region_image.copy() if regions else None,
                           container=container, container_status=status)

    def _clear_of_walls(self, candidates: list[GraspCandidate], container: Container,
                        config: ContainerConfig) -> list[GraspCandidate]:
        """Drop candidates whose cup rim or fingers would touch a wall.

        A cup needs its radius between its centre and the wall; a parallel gripper half its
        largest opening (the fingers open across the item); both plus `wall_clearance_m`.
        """
        if not candidates or not container.walls:
            return candidates
        distance = container.wall_distance(np.stack([c.position for c in candidates]))
        need = {'suction': self.config.cup_radius_m,
                'parallel': self.config.gripper_max_opening_m / 2}
        return [c for c, d in zip(candidates, distance)
                if d >= need.get(c.kind, 0.0) + config.wall_clearance_m]

    def _cloud(self, region_image: np.ndarray, labels: np.ndarray, xyz: np.ndarray,
               normals: np.ndarray, score_image: np.ndarray, rgb: np.ndarray | None,
               regions: list[Region], roi: tuple[int, int, int, int]) -> np.ndarray:
        """Assemble the structured item cloud (points of kept regions, inside fusion's `roi`).

        `normals` is (3, H, W), one plane per component.
        """
        height, width = region_image.shape
        colour = None
        if rgb is not None:
            rgb_arr = np.asarray(rgb)
            if rgb_arr.ndim != 3 or rgb_arr.shape[2] != 3 or rgb_arr.dtype != np.uint8:
                raise ValueError(f'rgb must be (H, W, 3) uint8, got {rgb_arr.shape} '
                                 f'{rgb_arr.dtype}')
            if rgb_arr.shape[:2] != (height, width):
                import cv2
                rgb_arr = cv2.resize(rgb_arr, (width, height), interpolation=cv2.INTER_LINEAR)
            colour = rgb_arr
        if self.config.organized_cloud:
            cloud = np.zeros((height, width), dtype=POINT_DTYPE)
            keep = region_image > 0
            for i, name in enumerate('xyz'):
                cloud[name] = np.where(keep, xyz[..., i], np.nan)
            cloud['label'] = np.where(keep, labels, 0)
            cloud['region'] = region_image
            for i, name in enumerate(('normal_x', 'normal_y', 'normal_z')):
                cloud[name] = normals[i]
            cloud['score'] = score_image
            cloud['rgb'] = pack_rgb(colour) if colour is not None else 0.0
            return cloud
        if not regions:
            return np.zeros(0, dtype=POINT_DTYPE)
        # Region ids lie inside fusion's box: search it, not the whole frame (same row-major
        # order as flatnonzero over the frame).
        x, y, w, h = roi
        index = region_pixels(region_image[y:y + h, x:x + w] != 0, x, y, width)
        cloud = np.zeros(index.size, dtype=POINT_DTYPE)   # rgb 0 unless given (zeroed pages)
        # x, y, z as one 12-byte item per point: one gather and one write instead of three.
        cloud.view(_XYZ_VIEW)['xyz'] = xyz.reshape(-1, 3).view(_XYZ_VIEW['xyz'])[:, 0].take(index)
        cloud['label'] = labels.reshape(-1).take(index)
        cloud['region'] = region_image.reshape(-1).take(index)
        for i, name in enumerate(('normal_x', 'normal_y', 'normal_z')):
            cloud[name] = normals[i].reshape(-1).take(index)
        cloud['score'] = score_image.reshape(-1).take(index)
        if colour is not None:
            cloud['rgb'] = pack_rgb(colour.reshape(-1, 3)[index])
        return cloud
