"""Training data sources: the synthetic cell, an image folder with masks, a rosbag2.

Every source is a map-style dataset of (rgb (h, w, 3) uint8, labels (h, w) uint8) pairs already
at the training size, so batches stack without padding and augmentation runs on whole batches.
Images are resized bilinearly (as the inference engine does) and labels with nearest neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from pathlib import Path
import time
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from seg_perception.classes import ClassSet
from seg_perception.constants import UNLABELED_ID
from seg_perception.time_sync import stamp_ns

#: synthetic seeds from here up are reserved for held-out evaluation and never used in training
EVAL_SEED_START = 100_000
#: default first seed of the synthetic validation set (disjoint from training seeds 0..N-1)
VAL_SEED_START = 90_000
#: full resolution of the synthetic cell (what the evaluation renders)
SYNTHETIC_FULL_SIZE = (480, 640)
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')


class DatasetError(ValueError):
    """Raised when a training source is missing, malformed or breaks the seed rules."""


def resize_pair(rgb: np.ndarray, labels: np.ndarray,
                size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize an image bilinearly (like the engine) and its labels with nearest neighbour."""
    h, w = size_hw
    if rgb.shape[:2] != (h, w):
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        t = torch.nn.functional.interpolate(t, size=(h, w), mode='bilinear',
                                            align_corners=False)
        rgb = t[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    if labels.shape[:2] != (h, w):
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(labels)


def synthetic_code_version() -> str:
    """Return a hash of the synthetic cell's sources (a cached pool is stale when it changes)."""
    import seg_perception.synthetic as synthetic
    digest = hashlib.sha1()
    for path in sorted(Path(synthetic.__file__).parent.glob('*.py')):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def check_training_seeds(seeds: Sequence[int], *, what: str = 'training') -> None:
    """Raise DatasetError when any seed is negative or in the reserved evaluation range."""
    if len(seeds) == 0:
        raise DatasetError(f'{what} seed range is empty')
    lo, hi = min(seeds), max(seeds)
    if lo < 0:
        raise DatasetError(f'{what} seeds must be >= 0, got {lo}')
    if hi >= EVAL_SEED_START:
        raise DatasetError(f'{what} seed {hi} is in the held-out evaluation range '
                           f'(>= {EVAL_SEED_START}); those seeds are never used for training')


class SyntheticDataset(Dataset):
    """Frames of the synthetic cell for a list of seeds, rendered on demand and optionally cached.

    render_size: (h, w) the cell renders at; frames are then resized to `size` (h, w). Rendering
    at full 640x480 and downscaling gives exactly the input statistics of the evaluation; rendering
    directly at the training size is cheaper.
    """

    def __init__(self, seeds: Sequence[int], *, size: tuple[int, int],
                 render_size: tuple[int, int] | None = None, cache: bool = True,
                 what: str = 'training', config_kwargs: dict[str, Any] | None = None) -> None:
        self.seeds = [int(s) for s in seeds]
        check_training_seeds(self.seeds, what=what)
        self.size = (int(size[0]), int(size[1]))
        self.render_size = tuple(render_size) if render_size else self.size
        from seg_perception.synthetic import SyntheticCell, SyntheticConfig
        kwargs = dict(config_kwargs or {})
        self.config_kwargs = kwargs
        self.cell = SyntheticCell(SyntheticConfig(width=self.render_size[1],
                                                  height=self.render_size[0], **kwargs))
        self.cache = cache
        self._rgb: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._done: np.ndarray | None = None
        if cache:
            n = len(self.seeds)
            self._rgb = np.zeros((n, *self.size, 3), dtype=np.uint8)
            self._labels = np.zeros((n, *self.size), dtype=np.uint8)
            self._done = np.zeros(n, dtype=bool)

    def __len__(self) -> int:
        return len(self.seeds)

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Render frame `index` (no cache) at the training size."""
        frame = self.cell.render(seed=self.seeds[index])
        return resize_pair(frame.rgb, frame.labels, self.size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.cache:
            return self.render(index)
        assert self._done is not None and self._rgb is not None and self._labels is not None
        if not self._done[index]:
            self._rgb[index], self._labels[index] = self.render(index)
            self._done[index] = True
        return self._rgb[index], self._labels[index]

    def cache_key(self) -> str:
        """Return a short hash naming this pool (seeds, sizes, generator code) for caching."""
        text = (f'{self.seeds[0]}-{self.seeds[-1]}-{len(self.seeds)}-{self.size}-'
                f'{self.render_size}-{self.config_kwargs}-{synthetic_code_version()}')
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def prerender(self, *, cache_dir: Path | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  workers: int = 1) -> float:
        """Render every frame into memory (loading/saving an .npz in `cache_dir`); return s.

        `workers` > 1 renders in that many forked processes (rendering is single-threaded NumPy
        and OpenCV, so the pool scales with the cores); frames are identical either way.
        """
        if not self.cache:
            raise DatasetError('prerender needs cache=True')
        assert self._done is not None and self._rgb is not None and self._labels is not None
        start = time.perf_counter()
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f'synthetic_{self.cache_key()}.npz'
            if path.is_file():
                try:
                    with np.load(path) as data:
                        if data['rgb'].shape == self._rgb.shape:
                            self._rgb[:] = data['rgb']
                            self._labels[:] = data['labels']
                            self._done[:] = True
                except (OSError, KeyError, ValueError):
                    pass  # a broken cache is re-rendered below
        todo = np.flatnonzero(~self._done)
        if workers > 1 and len(todo) >= 200:   # below that, starting workers costs more
            self._render_parallel(todo, workers, progress)
        for k, i in enumerate(todo):
            if self._done[i]:
                continue
            self[int(i)]
            if progress is not None:
                progress(k + 1, len(todo))
        if path is not None and len(todo):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + '.tmp.npz')
            np.savez(tmp, rgb=self._rgb, labels=self._labels)
            tmp.replace(path)
        return time.perf_counter() - start

    def _render_parallel(self, todo: np.ndarray, workers: int,
                         progress: Callable[[int, int], None] | None) -> None:
        """Render the frames `todo` in `workers` spawned processes into the cache arrays.

        Spawned, not forked: a fork of a process whose torch/OpenCV thread pools already ran can
        deadlock in the child. Each worker builds an uncached copy of this pool's cell.
        """
        import multiprocessing
        assert self._done is not None and self._rgb is not None and self._labels is not None
        context = multiprocessing.get_context('spawn')
        recipe = (self.seeds, self.size, self.render_size, self.config_kwargs)
        with context.Pool(workers, initializer=_worker_init, initargs=(recipe,)) as pool:
            for k, (i, rgb, labels) in enumerate(pool.imap_unordered(
                    _worker_render, [int(i) for i in todo], chunksize=8)):
                self._rgb[i], self._labels[i] = rgb, labels
                self._done[i] = True
                if progress is not None:
                    progress(k + 1, len(todo))


_WORKER_DATASET: SyntheticDataset | None = None


def _worker_init(recipe: tuple) -> None:
    global _WORKER_DATASET
    cv2.setNumThreads(1)
    seeds, size, render_size, config_kwargs = recipe
    _WORKER_DATASET = SyntheticDataset(seeds, size=size, render_size=render_size, cache=False,
                                       config_kwargs=config_kwargs)


def _worker_render(index: int) -> tuple[int, np.ndarray, np.ndarray]:
    assert _WORKER_DATASET is not None
    rgb, labels = _WORKER_DATASET.render(index)
    return index, rgb, labels


class ImageFolderDataset(Dataset):
    """`root/images/<stem>.png|jpg` with `root/masks/<stem>.png` holding class ids (mono8)."""

    def __init__(self, root: str | Path, *, size: tuple[int, int],
                 class_set: ClassSet | None = None) -> None:
        root = Path(root)
        img_dir, mask_dir = root / 'images', root / 'masks'
        if not img_dir.is_dir() or not mask_dir.is_dir():
            raise DatasetError(f'{str(root)!r} must contain images/ and masks/ folders')
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        pairs = []
        for p in images:
            mask = mask_dir / f'{p.stem}.png'
            if mask.is_file():
                pairs.append((p, mask))
        if not pairs:
            raise DatasetError(f'no image/mask pairs with the same stem in {str(root)!r} '
                               f'({len(images)} images found)')
        self.pairs = pairs
        self.size = (int(size[0]), int(size[1]))
        self.valid_ids = None if class_set is None else set(class_set.ids) | {UNLABELED_ID}

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        img_path, mask_path = self.pairs[index]
        bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        labels = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        if bgr is None:
            raise DatasetError(f'cannot read image {str(img_path)!r}')
        if labels is None or labels.ndim != 2:
            raise DatasetError(f'mask {str(mask_path)!r} must be a single-channel PNG of ids')
        if labels.shape != bgr.shape[:2]:
            raise DatasetError(f'mask {str(mask_path)!r} is {labels.shape[::-1]}, image is '
                               f'{bgr.shape[1::-1]}')
        labels = labels.astype(np.uint8)
        if self.valid_ids is not None:
            bad = set(np.unique(labels).tolist()) - self.valid_ids
            if bad:
                raise DatasetError(f'mask {str(mask_path)!r} holds ids {sorted(bad)} that are '
                                   'not in the class set')
        return resize_pair(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), labels, self.size)


@dataclass(frozen=True)
class BagPair:
    """One image/label pair from a bag, matched by header stamp."""

    stamp_ns: int
    rgb: np.ndarray
    labels: np.ndarray


def _decode_image(msg: Any, *, want_rgb: bool) -> np.ndarray:
    """Decode a rosbags sensor_msgs/Image to RGB uint8 or to a mono8 label image."""
    from seg_perception.conversions.image import image_to_numpy
    encoding = str(msg.encoding).lower()
    image = np.asarray(image_to_numpy(msg))
    if not want_rgb:
        if image.ndim != 2 or image.dtype != np.uint8:
            raise DatasetError(f'label image must be mono8/8UC1, got encoding {msg.encoding!r}')
        return image.copy()
    if image.dtype != np.uint8:
        raise DatasetError(f'colour image must be 8-bit, got encoding {msg.encoding!r}')
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if encoding.startswith('bgr'):
        return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[..., :3])


def read_bag_pairs(path: str | Path, *, image_topic: str, label_topic: str,
                   tolerance_ns: int = 0) -> list[BagPair]:
    """Read a rosbag2 and return image/label pairs whose header stamps match (within tolerance)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import get_typestore, Stores
    path = Path(path)
    if not path.exists():
        raise DatasetError(f'bag {str(path)!r} does not exist')
    typestore = get_typestore(Stores.LATEST)
    images: dict[int, np.ndarray] = {}
    labels: dict[int, np.ndarray] = {}
    with Reader(path) as reader:
        topics = {c.topic: c for c in reader.connections}
        for topic in (image_topic, label_topic):
            if topic not in topics:
                raise DatasetError(f'topic {topic!r} not in bag {str(path)!r}; topics: '
                                   f'{", ".join(sorted(topics))}')
        conns = [c for c in reader.connections if c.topic in (image_topic, label_topic)]
        for conn, _, raw in reader.messages(connections=conns):
            msg = typestore.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == image_topic:
                images[stamp_ns(msg)] = _decode_image(msg, want_rgb=True)
            else:
                labels[stamp_ns(msg)] = _decode_image(msg, want_rgb=False)
    label_stamps = np.array(sorted(labels), dtype=np.int64)
    pairs = []
    for stamp, rgb in sorted(images.items()):
        if label_stamps.size == 0:
            break
        j = int(np.argmin(np.abs(label_stamps - stamp)))
        if abs(int(label_stamps[j]) - stamp) <= tolerance_ns:
            lab = labels[int(label_stamps[j])]
            if lab.shape != rgb.shape[:2]:
                raise DatasetError(f'label at {label_stamps[j]} ns is {lab.shape[::-1]}, image '
                                   f'is {rgb.shape[1::-1]}')
            pairs.append(BagPair(stamp_ns=stamp, rgb=rgb, labels=lab))
    if not pairs:
        raise DatasetError(f'no {image_topic!r}/{label_topic!r} pairs with matching header stamps '
                           f'(tolerance {tolerance_ns} ns) in {str(path)!r}')
    return pairs


class BagDataset(Dataset):
    """Image/label pairs from a rosbag2 (image topic + mono8 label topic), held in memory."""

    def __init__(self, path: str | Path, *, image_topic: str, label_topic: str,
                 size: tuple[int, int], tolerance_ns: int = 0) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.pairs = [resize_pair(p.rgb, p.labels, self.size) for p in read_bag_pairs(
            path, image_topic=image_topic, label_topic=label_topic, tolerance_ns=tolerance_ns)]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.pairs[index]


def split_indices(n: int, *, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split range(n) into disjoint, seeded train and validation index lists."""
    if n < 2:
        raise DatasetError(f'need at least 2 samples to split off validation, got {n}')
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, int(round(n * val_fraction))), n - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def class_pixel_counts(dataset: Dataset, *, num_classes: int,
                       max_samples: int = 200) -> np.ndarray:
    """Return the label histogram (num_classes,) over up to `max_samples` evenly spaced samples."""
    n = len(dataset)
    idx = np.linspace(0, n - 1, num=min(n, max_samples)).round().astype(int)
    counts = np.zeros(num_classes, dtype=np.int64)
    for i in np.unique(idx):
        lab = dataset[int(i)][1].reshape(-1)
        lab = lab[lab < num_classes]
        counts += np.bincount(lab, minlength=num_classes)[:num_classes]
    return counts
