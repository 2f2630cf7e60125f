"""Tests of region splitting and measurement (plane normal, flatness, extents, area)."""

from __future__ import annotations

import numpy as np

from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.regions import (copy_masked, cross3, find_class_regions, find_regions,
                                          fit_plane_pca, region_pixels, write_pixels)
from seg_perception.grasp.scenes import DepthScene

CAM = PinholeCamera(fx=600.0, fy=600.0, cx=319.5, cy=239.5, width=640, height=480)


def _regions(scene: DepthScene, class_id: int = 2, min_pixels: int = 50, **kwargs):
    depth = scene.depth_m()
    xyz = BackProjector(CAM).organized(depth)
    mask = (scene.labels == class_id) & np.isfinite(depth)
    region_image = np.zeros(depth.shape, np.uint32)
    regions = find_regions(mask, xyz, CAM, class_id=class_id, class_name='box',
                           min_region_pixels=min_pixels, first_region_id=1,
                           region_image=region_image, **kwargs)
    return regions, region_image


def _angle_deg(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1, 1))))


def test_tilted_plane_normal_and_flatness():
    tilt = np.radians(30.0)
    normal = np.array([0.0, np.sin(tilt), -np.cos(tilt)])     # faces the camera, tilted about x
    scene = DepthScene(CAM).add_rectangle([0.05, 0.0, 1.0], normal, [1, 0, 0], (0.3, 0.2), 2)
    (region,), _ = _regions(scene)
    assert _angle_deg(region.normal, normal) < 0.1
    assert region.flatness_rms_m < 1e-4
    assert float(region.normal @ -region.centroid) > 0
    np.testing.assert_allclose(region.extent_m, (0.3, 0.2), atol=0.004)
    assert abs(region.major_axis[0]) > 0.999


def test_flatness_of_noisy_plane():
    scene = DepthScene(CAM).add_rectangle([0, 0, 1.0], [0, 0, -1], [1, 0, 0], (0.3, 0.2), 2)
    rng = np.random.default_rng(0)
    scene.depth = scene.depth + rng.normal(0, 0.002, scene.depth.shape)
    (region,), _ = _regions(scene)
    assert 0.0015 < region.flatness_rms_m < 0.0025


def test_area_of_fronto_parallel_rectangle():
    scene = DepthScene(CAM).add_rectangle([0, 0, 0.8], [0, 0, -1], [1, 0, 0], (0.2, 0.1), 2)
    (region,), region_image = _regions(scene)
    assert abs(region.area_m2 - 0.02) < 0.0006
    assert region.point_count == int((region_image == 1).sum())


def test_components_split_and_small_ones_dropped():
    scene = DepthScene(CAM)
    scene.add_rectangle([-0.2, 0, 1.0], [0, 0, -1], [1, 0, 0], (0.1, 0.1), 2)
    scene.add_rectangle([0.2, 0, 1.0], [0, 0, -1], [1, 0, 0], (0.1, 0.1), 2)
    scene.add_rectangle([0, 0.2, 1.0], [0, 0, -1], [1, 0, 0], (0.005, 0.005), 2)
    regions, region_image = _regions(scene, min_pixels=100)
    assert [r.region_id for r in regions] == [1, 2]
    assert set(np.unique(region_image)) == {0, 1, 2}
    assert regions[0].centroid[0] < 0 < regions[1].centroid[0]


def test_mask_crop_with_origin():
    scene = DepthScene(CAM).add_rectangle([0, 0, 1.0], [0, 0, -1], [1, 0, 0], (0.1, 0.1), 2)
    depth = scene.depth_m()
    xyz = BackProjector(CAM).organized(depth)
    mask = scene.labels == 2
    region_image = np.zeros(depth.shape, np.uint32)
    (region,) = find_regions(mask[100:, 200:], xyz, CAM, class_id=2, class_name='box',
                             min_region_pixels=10, first_region_id=7,
                             region_image=region_image, origin=(200, 100))
    np.testing.assert_array_equal(region_image == 7, mask)
    assert region.region_id == 7


def test_ransac_and_voxel_options_agree_with_pca():
    scene = DepthScene(CAM).add_rectangle([0, 0, 1.0], [0.2, 0, -1], [0, 1, 0], (0.2, 0.2), 2)
    (pca,), _ = _regions(scene)
    (ransac,), _ = _regions(scene, plane_fit='ransac', voxel_size_m=0.005)
    assert _angle_deg(pca.normal, ransac.normal) < 0.5


def test_fit_plane_pca_orients_normal_to_camera():
    pts = np.array([[0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]], float)
    fit = fit_plane_pca(pts)
    np.testing.assert_allclose(fit.normal, [0, 0, -1], atol=1e-9)


def test_pixel_helpers_match_boolean_indexing():
    """region_pixels / write_pixels (the fast gathers) agree with boolean indexing, any layout."""
    rng = np.random.default_rng(3)
    crop = rng.random((7, 9)) > 0.5
    index = region_pixels(crop, 4, 2, 20)
    image = np.zeros((12, 20), np.int64)
    image[2:9, 4:13][crop] = 1
    np.testing.assert_array_equal(index, np.flatnonzero(image))
    np.testing.assert_array_equal(np.cross([0.3, -1.0, 2.0], [1.5, 0.25, -0.5]),
                                  cross3([0.3, -1.0, 2.0], [1.5, 0.25, -0.5]))
    values = rng.random((index.size, 3)).astype(np.float32)
    for image in (np.zeros((12, 20, 3), np.float32),
                  np.zeros((20, 12, 3), np.float32).transpose(1, 0, 2)):   # not contiguous
        write_pixels(image, index, values)
        np.testing.assert_array_equal(image[2:9, 4:13][crop], values)
        write_pixels(image[..., 0], index, 7.0)
        assert (image[2:9, 4:13, 0][crop] == 7.0).all()


def test_one_pass_for_all_classes_matches_per_class_passes():
    """find_class_regions gives find_regions' regions, ids, order and pixels class by class.

    Classes apart (one labelling pass) and touching (a component of the union mixes classes:
    each class gets its own pass) alike.
    """
    rng = np.random.default_rng(5)
    depth = np.full((120, 160), 0.8, np.float32) + rng.normal(0, 1e-3, (120, 160)).astype(
        np.float32)
    xyz = BackProjector(CAM).organized(depth)
    labels = np.zeros((120, 160), np.uint8)
    labels[10:50, 10:70] = 2
    labels[60:110, 20:60] = 3
    labels[15:45, 90:150] = 3
    labels[70:100, 100:150] = 2
    labels[5:8, 5:9] = 3                       # below min_region_pixels
    for touching in (False, True):
        if touching:
            labels[50:60, 30:50] = 2           # joins the top box to a class-3 patch
        masks = [(c, f'c{c}', labels[4:116, 3:157] == c) for c in (3, 2)]
        expected_image = np.zeros((120, 160), np.uint32)
        expected, expected_pixels = [], []
        for class_id, name, mask in masks:
            expected += find_regions(mask, xyz, CAM, class_id=class_id, class_name=name,
                                     min_region_pixels=30, first_region_id=len(expected) + 1,
                                     region_image=expected_image, origin=(3, 4),
                                     pixels=expected_pixels)
        image = np.zeros((120, 160), np.uint32)
        pixels = []
        regions = find_class_regions(masks, xyz, CAM, min_region_pixels=30, first_region_id=1,
                                     region_image=image, origin=(3, 4), pixels=pixels)
        assert [(r.region_id, r.class_id, r.bbox, r.point_count) for r in regions] == [
            (r.region_id, r.class_id, r.bbox, r.point_count) for r in expected]
        assert len(regions) == 4
        for a, b in zip(regions, expected):
            np.testing.assert_array_equal(a.centroid, b.centroid)
            assert a.extent_m == b.extent_m
        np.testing.assert_array_equal(image, expected_image)
        for index, region in zip(pixels, regions):
            np.testing.assert_array_equal(index, np.flatnonzero(image == region.region_id))


def test_copy_masked_matches_numpy_copyto():
    rng = np.random.default_rng(1)
    src = rng.random((30, 40), dtype=np.float32)
    src[3, 4] = np.nan
    mask = rng.random((30, 40)) > 0.5
    image = np.zeros((50, 60), np.float32)
    expected = image.copy()
    np.copyto(expected[5:35, 10:50], src, where=mask)
    assert copy_masked(image[5:35, 10:50], src, mask) is not None
    np.testing.assert_array_equal(image, expected)
    # A strided destination or another dtype falls back to numpy.
    strided = np.zeros((30, 80), np.float32)[:, ::2]
    copy_masked(strided, src, mask)
    np.testing.assert_array_equal(strided, np.where(mask, src, np.float32(0.0)))
