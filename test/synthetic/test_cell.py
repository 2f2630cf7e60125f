"""Tests of the synthetic cell: determinism, contract, geometry consistency, noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seg_perception.classes import ClassSet
from seg_perception.synthetic import (ItemTruth, SyntheticCell, SyntheticConfig,
                                      SyntheticConfigError, SyntheticFrame)

CLASSES = ClassSet.default()
ITEM_IDS = {CLASSES.by_name(n).id for n in ('box', 'polybag', 'envelope', 'cylinder')}
SURFACE_IDS = {CLASSES.by_name('background').id, CLASSES.by_name('tote').id}


@pytest.fixture(scope='module')
def cell() -> SyntheticCell:
    return SyntheticCell(SyntheticConfig())


@pytest.fixture(scope='module')
def clean_cell() -> SyntheticCell:
    return SyntheticCell(SyntheticConfig(depth_noise=False, rgb_noise=False))


def _backproject(frame: SyntheticFrame, mask: np.ndarray) -> np.ndarray:
    v, u = np.nonzero(mask)
    z = frame.depth_m[v, u].astype(np.float64)
    K = frame.K
    return np.column_stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z])


def test_same_seed_is_bit_identical_and_other_seed_differs(cell):
    a, b, c = cell.render(11), cell.render(11), cell.render(12)
    for name in ('rgb', 'depth_m', 'labels', 'instances', 'K'):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert [t.instance_id for t in a.items] == [t.instance_id for t in b.items]
    assert not np.array_equal(a.rgb, c.rgb)
    assert not np.array_equal(a.labels, c.labels)


def test_shapes_and_dtypes(cell):
    f = cell.render(3)
    assert f.rgb.shape == (480, 640, 3) and f.rgb.dtype == np.uint8
    assert f.depth_m.shape == (480, 640) and f.depth_m.dtype == np.float32
    assert f.labels.shape == (480, 640) and f.labels.dtype == np.uint8
    assert f.instances.shape == (480, 640) and f.instances.dtype == np.uint16
    assert f.K.shape == (3, 3) and f.K.dtype == np.float64
    assert f.seed == 3 and isinstance(f.items, tuple)
    assert set(np.unique(f.labels)) <= set(CLASSES.ids)
    for t in f.items:
        assert isinstance(t, ItemTruth)
        assert t.pose_cam.shape == (4, 4)
        assert np.allclose(t.pose_cam[:3, :3] @ t.pose_cam[:3, :3].T, np.eye(3), atol=1e-9)
        assert t.top_face_polygon_cam.ndim == 2 and t.top_face_polygon_cam.shape[1] == 3
        assert abs(np.linalg.norm(t.top_face_normal_cam) - 1) < 1e-9
        assert t.top_face_normal_cam @ t.top_face_center_cam < 0   # faces the camera
        assert 0.0 <= t.visible_fraction <= 1.0
        assert CLASSES.by_id(t.class_id).name == t.class_name


def test_instances_unique_with_one_class_each_and_surface_present(cell):
    for seed in range(6):
        f = cell.render(seed)
        ids = [t.instance_id for t in f.items]
        assert len(ids) == len(set(ids)) and 0 not in ids
        assert np.all(np.isin(f.labels[f.instances == 0], list(SURFACE_IDS)))
        assert np.isin(f.labels, list(SURFACE_IDS)).any()
        truth = {t.instance_id: t.class_id for t in f.items}
        for iid in np.unique(f.instances[f.instances > 0]):
            classes = np.unique(f.labels[f.instances == iid])
            assert classes.tolist() == [truth[int(iid)]]


def test_stacked_item_occludes_the_one_below(clean_cell):
    """Wherever another item is seen inside an item's top face, it is nearer than that face."""
    checked = 0
    for seed in range(12):
        f = clean_cell.render(seed)
        for t in f.items:
            if t.class_name not in ('box', 'envelope'):
                continue
            K = f.K
            poly = t.top_face_polygon_cam
            p = poly[:, :2] / poly[:, 2:] * (K[0, 0], K[1, 1]) + (K[0, 2], K[1, 2])
            mask = np.zeros(f.labels.shape, np.uint8)
            cv2.fillPoly(mask, [np.round(p * 16).astype(np.int32)], 1, shift=4)
            mask = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
            n, c = t.top_face_normal_cam, t.top_face_center_cam
            rays = np.linalg.inv(K) @ np.vstack([np.nonzero(mask)[::-1], np.ones(mask.sum())])
            z_plane = (n @ c) / (n @ rays)
            other = (f.instances[mask] != t.instance_id) & (f.instances[mask] > 0)
            if other.any():
                checked += 1
                assert np.all(f.depth_m[mask][other] <= z_plane[other] + 1e-3)
    assert checked > 0


def test_top_face_backprojects_onto_truth_plane(clean_cell):
    checked = 0
    for seed in range(10):
        f = clean_cell.render(seed)
        for t in f.items:
            if t.class_name not in ('box', 'envelope') or t.visible_fraction < 0.98:
                continue
            own = (f.instances == t.instance_id).astype(np.uint8)
            K = f.K
            poly = t.top_face_polygon_cam
            p = poly[:, :2] / poly[:, 2:] * (K[0, 0], K[1, 1]) + (K[0, 2], K[1, 2])
            top = np.zeros_like(own)
            cv2.fillPoly(top, [np.round(p * 16).astype(np.int32)], 1, shift=4)
            region = cv2.erode(top & own, np.ones((5, 5), np.uint8)).astype(bool)
            if region.sum() < 50:
                continue
            pts = _backproject(f, region)
            dist = (pts - t.top_face_center_cam) @ t.top_face_normal_cam
            assert np.abs(dist).max() < 0.003
            checked += 1
    assert checked >= 3


def test_items_stand_on_something(clean_cell):
    """Every item's lowest point is above the tote floor / table (no item below the surface)."""
    for seed in range(5):
        f = clean_cell.render(seed)
        assert f.items, 'expected items'
        for t in f.items:
            assert t.pose_cam[2, 3] > 0.3


def test_noise_holes_only_with_noise(cell, clean_cell):
    noisy, clean = cell.render(5), clean_cell.render(5)
    assert np.isnan(noisy.depth_m).any()
    assert not np.isnan(clean.depth_m).any()
    valid = np.isfinite(noisy.depth_m)
    assert np.array_equal(noisy.labels, clean.labels)
    diff = noisy.depth_m[valid] - clean.depth_m[valid]
    assert 0.0003 < float(np.std(diff)) < 0.01


def test_other_resolution_scales_intrinsics(cell):
    small = SyntheticCell(SyntheticConfig(width=320, height=240)).render(4)
    big = cell.render(4)
    assert small.rgb.shape == (240, 320, 3) and small.depth_m.shape == (240, 320)
    assert np.allclose(small.K[:2, :2], big.K[:2, :2] / 2)
    assert len(small.items) == len(big.items)
    agree = small.labels == big.labels[::2, ::2]
    assert agree.mean() > 0.9


def test_each_item_class_appears_often(cell):
    seen = dict.fromkeys(ITEM_IDS, 0)
    frames = 10
    for seed in range(frames):
        present = set(np.unique(cell.render(100 + seed).labels).tolist())
        for cid in ITEM_IDS:
            seen[cid] += cid in present
    assert min(seen.values()) >= frames // 2, seen


def test_bad_config_and_seed_are_rejected(cell):
    with pytest.raises(SyntheticConfigError, match='resolution'):
        SyntheticConfig(width=4, height=480)
    with pytest.raises(SyntheticConfigError, match='item count'):
        SyntheticConfig(min_items=5, max_items=2)
    with pytest.raises(TypeError):
        SyntheticConfig(640, 480)   # keyword-only
    with pytest.raises(ValueError, match='seed'):
        cell.render(-1)


def test_resolve_table_lookup_matches_take_beyond_256_faces():
    """Face ids above 255 fall back from cv2.LUT to np.take with the same per-pixel result."""
    from seg_perception.synthetic.render import Rasteriser
    r = Rasteriser(width=32, height=24, K=np.array([[30.0, 0, 15.5], [0, 30.0, 11.5],
                                                    [0, 0, 1]]))
    rng = np.random.default_rng(0)
    for count in (200, 300):
        r.face_label = rng.integers(0, 6, count).tolist()
        r.face_instance = rng.integers(0, 60000, count).tolist()
        r.face_shade = rng.random(count).astype(np.float32).tolist()
        r.face_is_bag = [False] * count
        r.face_id = rng.integers(0, count, (24, 32)).astype(np.int32)
        labels, instances, shade, spec = r.resolve()
        assert labels.dtype == np.uint8 and instances.dtype == np.uint16
        assert np.array_equal(labels, np.asarray(r.face_label, np.uint8)[r.face_id])
        assert np.array_equal(instances, np.asarray(r.face_instance, np.uint16)[r.face_id])
        assert np.array_equal(shade, np.asarray(r.face_shade, np.float32)[r.face_id])
        assert not spec.any()


def _tote_frames_with_items(cell: SyntheticCell, seeds: range) -> list[SyntheticFrame]:
    return [f for f in (cell.render(s) for s in seeds) if f.in_tote and f.items]


def test_camouflaged_items_take_the_totes_colour():
    """With camouflage every tote frame has an item recoloured toward the tote's colour."""
    plain = SyntheticCell(SyntheticConfig(camouflage_probability=0.0, rgb_noise=False,
                                          camera_effects=False))
    camo = SyntheticCell(SyntheticConfig(camouflage_probability=1.0, rgb_noise=False,
                                         camera_effects=False))
    tote_id = CLASSES.by_name('tote').id

    def distances_to_tote(frame: SyntheticFrame) -> np.ndarray:
        rgb = frame.rgb.astype(np.float64)
        tote = rgb[frame.labels == tote_id].mean(axis=0)
        out = []
        for t in frame.items:
            mask = frame.instances == t.instance_id
            out.append(np.linalg.norm(rgb[mask].mean(axis=0) - tote) if mask.any() else np.inf)
        return np.array(out)

    frames = _tote_frames_with_items(camo, range(8))
    assert len(frames) >= 3
    for f in frames:
        before = plain.render(f.seed)
        assert np.array_equal(before.labels, f.labels)   # geometry untouched, colour only
        after, was = distances_to_tote(f), distances_to_tote(before)
        finite = np.isfinite(was)
        assert np.any(after[finite] < 0.7 * was[finite]), (f.seed, was, after)
        assert np.count_nonzero(after[finite] < was[finite] - 1.0) <= 3


def test_thin_items_are_thin_lying_cylinders():
    cell = SyntheticCell(SyntheticConfig(thin_item_probability=1.0))
    radii = [t.top_face_size_m[1] / 2 for s in range(6) for t in cell.render(s).items
             if t.class_name == 'cylinder']
    assert radii and max(radii) <= 0.012 + 1e-9


def test_classic_split_renders_without_the_later_randomisation():
    """Frames of a cell without the later draws stay those of the cell before them."""
    from seg_perception.evaluation.offline import SCENE_SPLITS
    classic = SyntheticConfig(**SCENE_SPLITS['classic'])
    assert classic.camouflage_probability == 0 and classic.thin_item_probability == 0
    for name in ('clean_camera_probability', 'camouflage_probability', 'thin_item_probability'):
        with pytest.raises(SyntheticConfigError, match=name):
            SyntheticConfig(**{name: 1.5})


def test_empty_render_is_the_same_scene_without_its_items(cell):
    """The empty-bin reference frame: same camera and container, no item pixel."""
    seed = next(s for s in range(100000, 100050)
                if (f := cell.render(s)).in_tote and len(f.items) >= 3)
    full, empty = cell.render(seed), cell.render(seed, empty=True)
    assert not empty.items and not np.any(empty.instances)
    item_ids = [c.id for c in cell.class_set.graspable()]
    assert not np.isin(empty.labels, item_ids).any()
    np.testing.assert_array_equal(empty.K, full.K)
    np.testing.assert_array_equal(empty.floor_plane_cam, full.floor_plane_cam)
    # Where the full frame sees the tote, the empty frame sees it at the same depth.
    tote = (full.labels == cell.class_set.by_name('tote').id) & np.isfinite(full.depth_m) \
        & np.isfinite(empty.depth_m)
    assert np.median(np.abs(full.depth_m[tote] - empty.depth_m[tote])) < 0.005


def test_floor_sag_moves_only_the_depth_of_what_lies_in_the_tote(cell):
    """A sagging floor changes the depth over the floor, never colour or labels."""
    seed = next(s for s in range(100000, 100050) if cell.render(s).in_tote)
    flat = SyntheticCell(SyntheticConfig(depth_noise=False)).render(seed)
    bent = SyntheticCell(SyntheticConfig(depth_noise=False, floor_sag_m=0.03)).render(seed)
    np.testing.assert_array_equal(bent.rgb, flat.rgb)
    np.testing.assert_array_equal(bent.labels, flat.labels)
    moved = np.abs(bent.depth_m - flat.depth_m)
    assert 0.001 < np.nanmax(moved) < 0.06
    with pytest.raises(SyntheticConfigError, match='floor_sag_m'):
        SyntheticConfig(floor_sag_m=0.2)
