"""Tests of the training data sources: seed rules, image folders, rosbag2 pairs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.classes import ClassSet
from seg_perception.training.datasets import (
    BagDataset,
    check_training_seeds,
    class_pixel_counts,
    DatasetError,
    EVAL_SEED_START,
    ImageFolderDataset,
    resize_pair,
    split_indices,
    SyntheticDataset,
)


def test_evaluation_seeds_are_never_used_for_training():
    with pytest.raises(DatasetError, match='held-out evaluation'):
        SyntheticDataset(range(EVAL_SEED_START - 2, EVAL_SEED_START + 1), size=(24, 32))
    with pytest.raises(DatasetError, match='>= 0'):
        check_training_seeds([-1, 3])
    with pytest.raises(DatasetError, match='empty'):
        check_training_seeds([])
    check_training_seeds(range(EVAL_SEED_START))  # up to the boundary is fine


def test_synthetic_frames_are_deterministic_and_resized(tmp_path: Path):
    data = SyntheticDataset([3, 4], size=(24, 32), render_size=(48, 64))
    rgb, labels = data[0]
    assert rgb.shape == (24, 32, 3) and labels.shape == (24, 32)
    again = SyntheticDataset([3, 4], size=(24, 32), render_size=(48, 64), cache=False)
    assert np.array_equal(again[0][0], rgb) and np.array_equal(again[0][1], labels)
    data.prerender(cache_dir=tmp_path)
    cached = list(tmp_path.glob('synthetic_*.npz'))
    assert len(cached) == 1
    reloaded = SyntheticDataset([3, 4], size=(24, 32), render_size=(48, 64))
    reloaded.prerender(cache_dir=tmp_path)
    assert np.array_equal(reloaded[1][1], data[1][1])
    counts = class_pixel_counts(data, num_classes=6)
    assert counts.sum() == 2 * 24 * 32 - np.count_nonzero(
        np.stack([data[0][1], data[1][1]]) >= 6)


def test_resize_pair_keeps_label_values():
    labels = np.zeros((40, 60), dtype=np.uint8)
    labels[:, 30:] = 4
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    out_rgb, out_lab = resize_pair(rgb, labels, (20, 30))
    assert out_rgb.shape == (20, 30, 3) and set(np.unique(out_lab)) == {0, 4}


def _write_folder(root: Path, n: int = 3, *, bad_id: bool = False) -> None:
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    for i in range(n):
        img = np.full((30, 40, 3), 40 * i, dtype=np.uint8)
        mask = np.full((30, 40), i % 6, dtype=np.uint8)
        if bad_id:
            mask[0, 0] = 77
        cv2.imwrite(str(root / 'images' / f'f{i}.jpg'), img)
        cv2.imwrite(str(root / 'masks' / f'f{i}.png'), mask)
    cv2.imwrite(str(root / 'images' / 'orphan.png'), np.zeros((30, 40, 3), np.uint8))


def test_image_folder_pairs_by_stem(tmp_path: Path):
    _write_folder(tmp_path)
    data = ImageFolderDataset(tmp_path, size=(15, 20), class_set=ClassSet.default())
    assert len(data) == 3  # the orphan image has no mask
    rgb, labels = data[2]
    assert rgb.shape == (15, 20, 3) and labels.shape == (15, 20)
    assert set(np.unique(labels)) == {2}


def test_image_folder_errors(tmp_path: Path):
    with pytest.raises(DatasetError, match='images/ and masks/'):
        ImageFolderDataset(tmp_path, size=(15, 20))
    _write_folder(tmp_path / 'bad', bad_id=True)
    data = ImageFolderDataset(tmp_path / 'bad', size=(15, 20), class_set=ClassSet.default())
    with pytest.raises(DatasetError, match='77'):
        data[0]


def test_split_is_disjoint_and_seeded():
    train, val = split_indices(20, val_fraction=0.25, seed=1)
    assert len(val) == 5 and not set(train) & set(val)
    assert (train, val) == split_indices(20, val_fraction=0.25, seed=1)


def _write_bag(path: Path) -> None:
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.LATEST)
    Image = ts.types['sensor_msgs/msg/Image']
    Header = ts.types['std_msgs/msg/Header']
    Time = ts.types['builtin_interfaces/msg/Time']

    def image(stamp_s: int, enc: str, array: np.ndarray):
        ch = 1 if array.ndim == 2 else array.shape[2]
        return Image(header=Header(stamp=Time(sec=stamp_s, nanosec=0), frame_id='cam'),
                     height=array.shape[0], width=array.shape[1], encoding=enc,
                     is_bigendian=0, step=array.shape[1] * ch,
                     data=np.ascontiguousarray(array).reshape(-1))

    with Writer(path, version=9) as writer:
        c_img = writer.add_connection('/cam/image', Image.__msgtype__, typestore=ts)
        c_lab = writer.add_connection('/cam/labels', Image.__msgtype__, typestore=ts)
        for s in range(3):
            bgr = np.zeros((8, 10, 3), np.uint8)
            bgr[..., 0] = 200  # blue in BGR
            writer.write(c_img, s * 10**9, ts.serialize_cdr(image(s, 'bgr8', bgr),
                                                            Image.__msgtype__))
            if s != 1:  # frame 1 has no label: it must be skipped
                lab = np.full((8, 10), s + 1, np.uint8)
                writer.write(c_lab, s * 10**9, ts.serialize_cdr(image(s, 'mono8', lab),
                                                                Image.__msgtype__))


def test_bag_dataset_matches_by_stamp_and_decodes_bgr(tmp_path: Path):
    bag = tmp_path / 'bag'
    _write_bag(bag)
    data = BagDataset(bag, image_topic='/cam/image', label_topic='/cam/labels', size=(8, 10))
    assert len(data) == 2
    rgb, labels = data[1]
    assert rgb[0, 0].tolist() == [0, 0, 200]  # RGB order
    assert set(np.unique(labels)) == {3}
    with pytest.raises(DatasetError, match='not in bag'):
        BagDataset(bag, image_topic='/nope', label_topic='/cam/labels', size=(8, 10))
