"""Pseudo-labels for a user's own cell from geometry and the current model, without labels.

Geometry decides *where* the items are; the model decides only *which* item class an item is:

* item pixels: what the grasp package's container step keeps (ContainerDetector +
  container_keep_mask): inside the bin and off its surfaces by more than the surface margin,
  or, with an empty-container frame (reference mode), in front of the empty bin's own depth;
* item instances: connected parts of those pixels split at depth discontinuities; each takes
  the majority class of the model's confident votes on it (or one `item` class), when most
  of its confident votes are item votes at all;
* the bin: pixels on a container plane (floor, walls) take the container class (`tote`; a
  support surface without walls, a table, takes `background`);
* elsewhere (outside the bin): the model's own label where it is confident and not an item;
* ignored (UNLABELED_ID, 255, which the losses skip): near depth edges, invalid depth, the band
  between the bin's surface and the margin, instances that are too small, too large (a fifth of
  the frame) or have no confident majority, and surface pixels the model confidently calls
  an item (a thin envelope on the floor is within the margin: neither label is trusted).

Nothing here is a second container detector: the planes and the keep test are the grasp
package's. Work is per frame on numpy arrays, vectorised (one bincount for every instance vote).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from seg_perception.classes import ClassSet
from seg_perception.constants import UNLABELED_ID
from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.container import Container, container_keep_mask, ContainerConfig, \
    ContainerDetector
from seg_perception.grasp.fusion import discontinuity_mask


class PseudoLabelError(ValueError):
    """Raised for inputs pseudo-labelling cannot use (sizes, dtypes, an unknown class)."""


@dataclass(frozen=True, kw_only=True)
class PseudoLabelConfig:
    """Thresholds of the pseudo-labels (physical units, or shares of the model's votes)."""

    #: a 4-neighbour depth jump larger than this separates two item instances
    edge_threshold_m: float = 0.01
    #: pixels ignored on either side of a depth edge (mixed pixels, misregistered colour)
    edge_ignore_px: int = 2
    #: a point within this distance of a container plane lies on the bin's surface
    surface_band_m: float = 0.004
    #: the model's max softmax probability needed for a vote or a non-item label
    min_confidence: float = 0.6
    #: share of an instance's confident votes its class needs
    min_vote_share: float = 0.5
    #: confident votes an instance needs (fewer: the instance is ignored)
    min_votes: int = 20
    #: smallest instance, pixels at 640x480 (scaled with the frame area)
    min_instance_px: int = 80
    #: largest instance, as a share of the frame: a bigger one is more likely a surface the
    #: container step did not model (a tote wall when only the floor was found) than an item
    max_instance_fraction: float = 0.2
    #: label every item instance with this class (a class set with one item class)
    single_item_class: str | None = None
    container: ContainerConfig = field(default_factory=ContainerConfig)

    def __post_init__(self) -> None:
        for name in ('edge_threshold_m', 'surface_band_m'):
            if not getattr(self, name) > 0:
                raise PseudoLabelError(f'{name} must be > 0, got {getattr(self, name)!r}')
        for name in ('min_confidence', 'min_vote_share', 'max_instance_fraction'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise PseudoLabelError(f'{name} must be in 0..1, got {getattr(self, name)!r}')
        if self.edge_ignore_px < 0 or self.min_votes < 1 or self.min_instance_px < 1:
            raise PseudoLabelError('edge_ignore_px must be >= 0, min_votes and '
                                   'min_instance_px >= 1')


@dataclass
class FramePseudoLabels:
    """The pseudo-labels of one frame and what they are made of."""

    #: (H, W) uint8 class ids, UNLABELED_ID where ignored; None when the frame is unusable
    labels: np.ndarray | None
    #: why the frame is unusable ('' when usable), or how the container was found
    reason: str
    usable: bool
    #: pixel counts: item, container, background (other non-item), ignored; instances kept
    #: and instances ignored
    stats: dict[str, int] = field(default_factory=dict)
    container: dict[str, Any] | None = None


class PseudoLabeler:
    """Pseudo-label the frames of one camera stream (the container is tracked between frames)."""

    def __init__(self, class_set: ClassSet, config: PseudoLabelConfig | None = None) -> None:
        self.config = config if config is not None else PseudoLabelConfig()
        self.class_set = class_set
        self.item_ids = np.array([c.id for c in class_set.graspable()], dtype=np.int64)
        if self.item_ids.size == 0:
            raise PseudoLabelError('the class set has no item class (no class with grasp modes)')
        self.container_id = _class_id(class_set, 'tote', fallback=0)
        self.surface_id = _class_id(class_set, 'background', fallback=0)
        self.single_id: int | None = None
        if self.config.single_item_class is not None:
            try:
                self.single_id = class_set.by_name(self.config.single_item_class).id
            except KeyError:
                raise PseudoLabelError(f'class {self.config.single_item_class!r} is not in the '
                                       'class set') from None
        self.num_ids = max(class_set.ids) + 1
        self.detector = ContainerDetector(self.config.container)
        self._projectors: dict[PinholeCamera, BackProjector] = {}

    def _xyz(self, depth_m: np.ndarray, camera: PinholeCamera) -> np.ndarray:
        projector = self._projectors.get(camera)
        if projector is None:
            projector = self._projectors[camera] = BackProjector(camera)
        return projector.organized(depth_m)

    def set_empty_container(self, depth_m: np.ndarray, camera: PinholeCamera) -> Container:
        """Use an empty-container frame (reference mode); raises ContainerError without a bin."""
        if self.config.container.mode != 'reference':
            raise PseudoLabelError("an empty-container frame needs container mode 'reference'")
        return self.detector.set_reference(depth_m, self._xyz(depth_m, camera))

    def label(self, depth_m: np.ndarray, camera: PinholeCamera, model_labels: np.ndarray,
              model_confidence: np.ndarray) -> FramePseudoLabels:
        """Return the pseudo-labels of one frame.

        depth_m (H, W) float32 metres (NaN invalid) registered to the colour image the model
        labelled; model_labels (H, W) uint8 class ids and model_confidence (H, W) uint8 (max
        softmax probability x 255) at the same size.
        """
        cfg = self.config
        depth = np.asarray(depth_m)
        if depth.ndim != 2 or depth.dtype != np.float32:
            raise PseudoLabelError(f'depth must be (H, W) float32 metres, got {depth.dtype} '
                                   f'{depth.shape}')
        if model_labels.shape != depth.shape or model_confidence.shape != depth.shape:
            raise PseudoLabelError(f'model output {model_labels.shape[::-1]} and depth '
                                   f'{depth.shape[::-1]} differ in size')
        xyz = self._xyz(depth, camera)
        container, reason = self.detector.locate(depth, xyz)
        if container is None:
            return FramePseudoLabels(None, f'no container: {reason}', False)
        valid = np.isfinite(depth)
        index = np.flatnonzero(valid)
        item = np.zeros(depth.shape, dtype=bool)
        item.ravel()[index] = container_keep_mask(container, xyz, depth, index, cfg.container)
        distances = np.stack([p.distance(xyz.reshape(-1, 3)[index]) for p in container.planes])
        band = np.float32(cfg.surface_band_m)
        on_plane = np.zeros(depth.shape, dtype=bool)
        on_plane.ravel()[index] = ((np.abs(distances) < band).any(axis=0)
                                   & (distances > -band).all(axis=0))
        inside = np.zeros(depth.shape, dtype=bool)      # not behind a wall or below the floor
        inside.ravel()[index] = (distances > -band).all(axis=0)

        edges = discontinuity_mask(depth, cfg.edge_threshold_m)
        if cfg.edge_ignore_px:
            size = 2 * cfg.edge_ignore_px + 1
            edges = cv2.dilate(edges.view(np.uint8), np.ones((size, size), np.uint8)).view(bool)
        trusted = valid & ~edges
        confident = model_confidence >= np.uint8(round(cfg.min_confidence * 255))
        model_item = np.isin(model_labels, self.item_ids)

        labels = np.full(depth.shape, UNLABELED_ID, dtype=np.uint8)
        surface = trusted & on_plane & ~item & ~(confident & model_item)
        labels[surface] = self.container_id if container.is_bin else self.surface_id
        outside = trusted & ~inside & ~item & confident & ~model_item
        labels[outside] = model_labels[outside]
        kept, dropped = self._label_items(labels, item & trusted, model_labels, confident,
                                          model_item)
        stats = {
            'item_px': int(np.count_nonzero(np.isin(labels, self.item_ids))),
            'container_px': int(np.count_nonzero(surface)),
            'background_px': int(np.count_nonzero(outside)),
            'ignored_px': int(np.count_nonzero(labels == UNLABELED_ID)),
            'instances': kept, 'ignored_instances': dropped,
        }
        return FramePseudoLabels(labels, reason, True, stats, container.summary())

    def _label_items(self, labels: np.ndarray, item: np.ndarray, model_labels: np.ndarray,
                     confident: np.ndarray, model_item: np.ndarray) -> tuple[int, int]:
        """Label each item instance with its vote (in place); return (kept, ignored) counts."""
        cfg = self.config
        count, comp, stats, _ = cv2.connectedComponentsWithStats(item.view(np.uint8),
                                                                 connectivity=4)
        if count <= 1:
            return 0, 0
        scale = labels.size / (640 * 480)
        area = stats[:, cv2.CC_STAT_AREA]
        big = (area >= max(4, round(cfg.min_instance_px * scale))) \
            & (area <= cfg.max_instance_fraction * labels.size)
        big[0] = False
        class_of = np.full(count, UNLABELED_ID, dtype=np.uint8)
        if self.single_id is not None:
            class_of[big] = self.single_id
        else:
            voters = item & confident
            votes = np.bincount(comp[voters].astype(np.int64) * self.num_ids
                                + model_labels[voters], minlength=count * self.num_ids)
            votes = votes.reshape(count, self.num_ids)
            item_votes = votes[:, self.item_ids]
            total = item_votes.sum(axis=1)
            best = self.item_ids[item_votes.argmax(axis=1)]
            share = item_votes.max(axis=1) / np.maximum(total, 1)
            # an instance most of whose confident votes say "not an item" is more likely a
            # surface the container step missed (a wall) merged with items: ignore it
            mostly_item = 2 * total >= votes.sum(axis=1)
            ok = big & (total >= cfg.min_votes) & (share >= cfg.min_vote_share) & mostly_item
            class_of[ok] = best[ok]
        labels[item] = class_of[comp[item]]
        kept = int(np.count_nonzero(class_of[1:] != UNLABELED_ID))
        return kept, int(count - 1 - kept)


def _class_id(class_set: ClassSet, name: str, *, fallback: int) -> int:
    try:
        return class_set.by_name(name).id
    except KeyError:
        return fallback


def score_against_truth(pseudo: np.ndarray, truth: np.ndarray,
                        item_ids: np.ndarray) -> dict[str, int]:
    """Return pixel counts comparing pseudo-labels with ground truth (for tests and reports).

    item_tp: labelled item where the truth is an item; item_fp: labelled item elsewhere;
    item_fn: true item pixels not labelled item (ignored or otherwise); class_correct: labelled
    pixels whose class equals the truth; labelled and ignored pixel counts.
    """
    labelled = pseudo != UNLABELED_ID
    p_item = np.isin(pseudo, item_ids)
    t_item = np.isin(truth, item_ids)
    return {'item_tp': int(np.count_nonzero(p_item & t_item)),
            'item_fp': int(np.count_nonzero(p_item & ~t_item)),
            'item_fn': int(np.count_nonzero(~p_item & t_item)),
            'item_class_correct': int(np.count_nonzero(p_item & (pseudo == truth))),
            'class_correct': int(np.count_nonzero(labelled & (pseudo == truth))),
            'labelled': int(np.count_nonzero(labelled)),
            'ignored': int(np.count_nonzero(~labelled))}
