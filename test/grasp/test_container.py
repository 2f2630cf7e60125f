"""Container detection from depth: synthetic ground truth, modes, tracking, bad input, pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seg_perception.classes import ClassSet
from seg_perception.grasp import GraspPipeline, PinholeCamera
from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.container import (_make_plane, _rim_share, Container,
                                            container_keep_mask, ContainerConfig,
                                            ContainerDetector, ContainerError, DecimatedCloud,
                                            fit_floor_bend, RIMMED_FLOOR)
from seg_perception.grasp.scenes import DepthScene
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

CLASSES = ClassSet.default()


def cloud_of(frame):
    camera = PinholeCamera.from_matrix(frame.K, frame.width, frame.height)
    return camera, BackProjector(camera).organized(frame.depth_m)


def floor_visible_fraction(frame, xyz: np.ndarray) -> float:
    """Fraction of pixels labelled tote that lie on the true floor plane."""
    n, d = frame.floor_plane_cam[:3], frame.floor_plane_cam[3]
    on_floor = np.abs(xyz.reshape(-1, 3) @ n + d) < 0.004
    return float(np.mean(on_floor & (frame.labels.ravel() == CLASSES.by_name('tote').id)))


@pytest.fixture(scope='module')
def cell() -> SyntheticCell:
    return SyntheticCell(SyntheticConfig())


def test_floor_plane_within_3_degrees_and_1_cm_on_held_out_tote_frames(cell) -> None:
    """Held-out tote frames (seeds >= 100000) where >= 5 % of the pixels are floor.

    The goal is 95 % of frames; measured 98.8 % over seeds 100000..100399 and 96.5 % on the
    fresh seeds 160000..160399 (94.8 % on both 120000.. and 140000..; docs/grasp.md), so
    this guards 95 % on the first 160 seeds (99 of 100 frames).
    """
    checked, good, misses = 0, 0, []
    for seed in range(100000, 100160):
        frame = cell.render(seed)
        if not frame.in_tote:
            continue
        _, xyz = cloud_of(frame)
        if floor_visible_fraction(frame, xyz) < 0.05:
            continue
        checked += 1
        container, reason = ContainerDetector().locate(frame.depth_m, xyz)
        if container is None or container.floor is None:
            misses.append((seed, reason))
            continue
        normal, offset = frame.floor_plane_cam[:3], frame.floor_plane_cam[3]
        angle = np.degrees(np.arccos(min(1.0, float(container.floor.normal @ normal))))
        if angle <= 3.0 and abs(container.floor.offset - offset) <= 0.01:
            good += 1
        else:
            misses.append((seed, f'{angle:.1f} deg, {container.floor.offset - offset:+.3f} m'))
    assert checked >= 60
    assert good / checked >= 0.95, f'{good}/{checked} floors right; misses {misses}'


def kept_shares(cell, seeds, container_of) -> tuple[float, float]:
    """Return the shares of item and of tote pixels the container step keeps on tote frames.

    `container_of(seed, frame, camera, xyz)` returns (container, config), or None to skip.
    """
    kept_item, kept_tote, items, totes = 0, 0, 0, 0
    tote_id = CLASSES.by_name('tote').id
    item_ids = [c.id for c in CLASSES.graspable()]
    for seed in seeds:
        frame = cell.render(seed)
        if not frame.in_tote:
            continue
        camera, xyz = cloud_of(frame)
        found = container_of(seed, frame, camera, xyz)
        if found is None:
            continue
        container, config = found
        index = np.flatnonzero(np.isfinite(frame.depth_m))
        keep = container_keep_mask(container, xyz, frame.depth_m, index, config)
        labels = frame.labels.ravel()[index]
        is_item, is_tote = np.isin(labels, item_ids), labels == tote_id
        kept_item += int(np.count_nonzero(keep & is_item))
        kept_tote += int(np.count_nonzero(keep & is_tote))
        items += int(np.count_nonzero(is_item))
        totes += int(np.count_nonzero(is_tote))
    assert items > 0 and totes > 0
    return kept_item / items, kept_tote / totes


def test_detected_container_keeps_items_and_drops_the_tote(cell) -> None:
    """Where a bin is found, the container step drops the tote's pixels and keeps the items'."""
    def detected(seed, frame, camera, xyz):
        detector = ContainerDetector()
        container, _ = detector.locate(frame.depth_m, xyz)
        return (container, detector.config) if container is not None and container.is_bin \
            else None
    item_share, tote_share = kept_shares(cell, range(100000, 100040), detected)
    assert tote_share < 0.06, 'tote surfaces must not survive the container step'
    # 0.925 measured (0.921 while every floor-outline edge bounded the interior).
    assert item_share > 0.9, 'the container step must keep most item pixels'


def _bin_over_a_hidden_floor(walls: str) -> Container:
    """A bin 0.6 x 0.4 m whose floor (1 m below a downward camera) shows only a 10 cm patch.

    `walls`: which of the four walls were found ('x' the two at x = +-0.3 m, 'xy' all four).
    """
    side = np.linspace(-0.05, 0.05, 11)
    patch = np.stack(np.meshgrid(side, side), -1).reshape(-1, 2)
    patch = np.column_stack([patch, np.ones(len(patch))])
    floor = _make_plane(patch, np.array([0.0, 0.0, -1.0]), 1.0)
    found = [_make_plane(patch, np.array([-sign, 0.0, 0.0]), 0.3) for sign in (1, -1)]
    if 'y' in walls:
        found += [_make_plane(patch, np.array([0.0, -sign, 0.0]), 0.2) for sign in (1, -1)]
    return Container(floor=floor, walls=tuple(found), source='detected')


def test_walls_bound_the_interior_where_items_hide_the_floor() -> None:
    """A full bin shows little floor: the hull of what is seen is not the bin's edge.

    Where a wall was found it bounds that side; a side without a wall keeps the floor's
    outline (its wall may be too oblique to see). Before, every outline edge bounded the
    interior: an item standing 20 cm from the visible patch was cut away.
    """
    over_hidden_floor = np.array([[0.2, 0.0, 0.9], [-0.25, 0.0, 0.95], [0.0, 0.15, 0.9]],
                                 np.float32)
    boxed = _bin_over_a_hidden_floor('xy')
    assert boxed.open_floor_edges[0].shape[0] == 0
    assert boxed.interior(over_hidden_floor, 0.01).tolist() == [True, True, True]
    beyond = np.array([[0.35, 0.0, 0.9], [0.0, 0.25, 0.9], [0.0, 0.0, 1.02]], np.float32)
    assert not boxed.interior(beyond, 0.01).any(), 'past a wall or under the floor'
    half = _bin_over_a_hidden_floor('x')
    normals, _ = half.open_floor_edges
    assert normals.shape[0] >= 2 and np.all(np.abs(normals[:, 1]) > np.cos(np.radians(45)))
    # +-x: the walls bound it; +y: no wall found there, the visible floor's edge does.
    assert half.interior(over_hidden_floor, 0.01).tolist() == [True, True, False]


def test_tracking_follows_the_container_and_reset_forgets_it(cell) -> None:
    frame = next(f for f in (cell.render(s) for s in range(100000, 100050))
                 if f.in_tote and ContainerDetector().locate(f.depth_m, cloud_of(f)[1])[0])
    _, xyz = cloud_of(frame)
    detector = ContainerDetector()
    first, reason = detector.locate(frame.depth_m, xyz)
    assert first is not None and first.source == 'detected', reason
    second, reason = detector.locate(frame.depth_m, xyz)
    assert reason == 'tracked' and second.source == 'tracked'
    assert float(second.floor.normal @ first.floor.normal) > 0.999
    # A bin that has not moved keeps its planes' outlines (not recomputed every frame; the
    # first tracked frame may still refit a wall whose detected patch lost points to an
    # earlier plane) ...
    third, reason = detector.locate(frame.depth_m, xyz)
    assert reason == 'tracked'
    assert all(a.outline_m is b.outline_m for a, b in zip(second.planes, third.planes))
    # ... one that moved (the whole scene 5 mm further away) gets them refitted.
    camera = PinholeCamera.from_matrix(frame.K, frame.width, frame.height)
    moved_depth = frame.depth_m + np.float32(0.005)
    moved, reason = detector.locate(moved_depth, BackProjector(camera).organized(moved_depth))
    assert reason == 'tracked' and moved.floor.outline_m is not third.floor.outline_m
    assert abs(moved.floor.offset - third.floor.offset) > 0.002
    detector.reset()
    assert detector.locate(frame.depth_m, xyz)[0].source == 'detected'


def test_no_container_in_view_and_no_depth() -> None:
    """A table with boxes on it is a support surface, not a bin; all-NaN depth is nothing."""
    camera = PinholeCamera(fx=600.0, fy=600.0, cx=320.0, cy=240.0, width=640, height=480)
    scene = DepthScene(camera).add_plane((0, 0, 0.9), (0, 0, -1.0), 0)
    for x, y in ((-0.15, -0.05), (0.1, 0.08)):
        scene.add_box((x, y, 0.82), (0.12, 0.08, 0.08), CLASSES.by_name('box').id)
    depth = scene.depth_m()
    xyz = BackProjector(camera).organized(depth)
    container, reason = ContainerDetector().locate(depth, xyz)
    assert container is not None and not container.is_bin, reason
    assert 'support surface' in reason
    nan = np.full_like(depth, np.nan)
    assert ContainerDetector().locate(nan, xyz) == (None, 'too few valid depth points')


def _top_down_depth(*, rim: bool) -> tuple[PinholeCamera, np.ndarray]:
    """A camera 1.6 m above the ground looking straight down at a bin (or a block).

    With `rim`, a bin whose 30 cm walls are vertical (unseen from straight above): the rim's top
    at 1.1 m rings the floor at 1.3 m, an item on the floor. Without, a block whose top is at
    1.3 m: its edges fall away to the ground.
    """
    camera = PinholeCamera(fx=550.0, fy=550.0, cx=320.0, cy=240.0, width=640, height=480)
    depth = np.full((480, 640), 1.6, np.float32)
    if rim:
        depth[120:360, 160:480] = 1.1
    depth[136:344, 176:464] = 1.3
    if rim:
        depth[200:260, 250:330] = 1.22
    return camera, depth


def test_floor_inside_a_rim_when_no_wall_plane_is_seen() -> None:
    """Seen from straight above, a bin's floor is the level surface ringed by its rim.

    The lowest surface (the ground) would otherwise be taken: items would count as inside a
    container that is the room. A block's top, whose edges fall away, stays an item.
    """
    for rim, offset in ((True, 1.3), (False, 1.6)):
        camera, depth = _top_down_depth(rim=rim)
        xyz = BackProjector(camera).organized(depth)
        container, reason = ContainerDetector().locate(depth, xyz)
        assert container is not None and container.floor is not None, reason
        assert not container.is_bin
        assert reason == (RIMMED_FLOOR if rim else 'no wall in view: support surface only')
        assert float(container.floor.normal @ (0, 0, -1.0)) > 0.999
        assert container.floor.offset == pytest.approx(offset, abs=0.005)


def test_rim_share_counts_rising_points_around_a_patch_seen_whole() -> None:
    camera, depth = _top_down_depth(rim=True)
    xyz = BackProjector(camera).organized(depth)
    cloud = DecimatedCloud.from_depth(depth, xyz, 8)
    config = ContainerConfig()
    normal = np.array([0.0, 0.0, -1.0])

    def share(level_m: float, **kwargs) -> float:
        mask = np.abs(cloud.points[:, 2] - level_m) < 0.004
        plane = _make_plane(cloud.points[mask].astype(np.float64), normal, level_m)
        return _rim_share(cloud, mask, plane, config, **kwargs)
    assert share(1.3) == 1.0          # the floor: the rim and the item rise around it
    assert share(1.1) == 0.0          # the rim's top: the floor and the ground fall away
    assert share(1.6) == 0.0          # the ground touches the image border: not seen whole
    assert share(1.6, whole=False) == 1.0   # the bin rises out of it


@pytest.mark.parametrize('seed, reason', [(120173, RIMMED_FLOOR), (120038, 'detected')])
def test_floor_of_bins_in_the_cell_seen_over_their_rims(cell, seed, reason) -> None:
    """120173: a bin far below the camera, its walls too steep to fit; 120038: a neighbouring
    bin's floor at the same height, the ground seen between the two bins (inside the floor's
    outline, which spans both) lies beyond the rim. Both took the ground for the floor before.
    """
    frame = cell.render(seed)
    _, xyz = cloud_of(frame)
    container, found = ContainerDetector().locate(frame.depth_m, xyz)
    assert found == reason
    normal, offset = frame.floor_plane_cam[:3], frame.floor_plane_cam[3]
    assert float(container.floor.normal @ normal) > np.cos(np.radians(3))
    assert container.floor.offset == pytest.approx(offset, abs=0.01)


def test_reference_mode(cell) -> None:
    """An empty-container frame gives the planes once; a frame of another size is refused."""
    frame = next(f for f in (cell.render(s) for s in range(100000, 100050)) if f.in_tote)
    _, xyz = cloud_of(frame)
    detector = ContainerDetector(ContainerConfig(mode='reference'))
    assert detector.locate(frame.depth_m, xyz) == (None, 'no reference frame yet')
    detector.set_reference(frame.depth_m, xyz)
    container, reason = detector.locate(frame.depth_m, xyz)
    assert reason == 'reference' and container.reference_depth_m is not None
    # The reference frame itself holds no item: nothing in front of its own surface.
    index = np.flatnonzero(np.isfinite(frame.depth_m))
    keep = container_keep_mask(container, xyz, frame.depth_m, index, detector.config)
    assert not keep.any()
    small = frame.depth_m[::2, ::2].copy()
    container, reason = detector.locate(small, xyz[::2, ::2])
    assert container is None and 'reference frame is 640x480' in reason
    with pytest.raises(ContainerError, match='float32'):
        detector.set_reference(frame.depth_m.astype(np.float64), xyz)
    with pytest.raises(ContainerError, match='no valid pixel'):
        detector.set_reference(np.full_like(frame.depth_m, np.nan), xyz)


def test_reference_mode_keeps_items_and_drops_the_empty_bin(cell) -> None:
    """Held-out tote frames, each with its own empty-bin frame (same camera, own noise).

    Measured over seeds 100000..100199: 96.9 % of the item pixels kept, 0.06 % of the tote's
    (96.6 % / 0.03 % while the planes alone bounded the interior: items over the part of the
    floor out of view or hidden in the empty frame were cut away).
    """
    def from_empty_frame(seed, frame, camera, xyz):
        empty = cell.render(seed, empty=True)
        detector = ContainerDetector(ContainerConfig(mode='reference'))
        detector.set_reference(empty.depth_m, BackProjector(camera).organized(empty.depth_m))
        container, reason = detector.locate(frame.depth_m, xyz)
        assert reason == 'reference'
        return container, detector.config
    item_share, tote_share = kept_shares(cell, range(100000, 100040), from_empty_frame)
    assert tote_share < 0.005 and item_share > 0.95


def test_floor_bend_follows_a_sagging_floor_and_is_not_extrapolated() -> None:
    """A floor 1 m below the camera sagging 2 cm at its centre: the bend recovers it."""
    x, y = np.meshgrid(np.linspace(-0.3, 0.3, 61), np.linspace(-0.2, 0.2, 41))
    sag = 0.02 * np.cos(np.pi * x / 0.6) * np.cos(np.pi * y / 0.4)     # up = towards camera
    points = np.column_stack([x.ravel(), y.ravel(), 1.0 - sag.ravel()]).astype(np.float32)
    flat = points[np.abs(sag.ravel()) < 0.004].astype(np.float64)      # what the plane fits
    floor = _make_plane(flat, np.array([0.0, 0.0, -1.0]), 1.0, extent=points.astype(float))
    walls = tuple(_make_plane(flat, np.array([-sign, 0.0, 0.0]), 0.3) for sign in (1, -1))
    container = Container(floor=floor, walls=walls, source='detected')
    bend = fit_floor_bend(points, container, 0.008)
    assert bend is not None and bend.residual_m < 0.002
    # A quadratic is not a cosine: 1.9 mm RMS, 5.6 mm at worst, well inside the 1 cm margin.
    error = bend.height(points) - sag.ravel()
    assert np.sqrt(np.mean(error ** 2)) < 0.003 and np.abs(error).max() < 0.006
    assert bend.high_m == pytest.approx(0.02, abs=0.004)
    far = np.array([[2.0, 2.0, 1.0]], np.float32)
    assert bend.low_m <= float(bend.height(far)[0]) <= bend.high_m, 'clamped, not extrapolated'
    # An item 1.5 cm above the sagging centre is inside a bent floor, not a plane's margin
    # (the plane through the edges is 2 cm below the centre).
    item = np.array([[0.0, 0.0, 1.0 - 0.02 - 0.015]], np.float32)
    plane_only = Container(floor=floor, walls=walls, source='detected')
    on_floor = np.array([[0.0, 0.0, 1.0 - 0.02]], np.float32)
    assert plane_only.interior(on_floor, 0.01).tolist() == [True], 'the plane keeps the floor'
    bent = Container(floor=floor, walls=walls, source='detected', floor_bend=bend)
    assert bent.interior(on_floor, 0.01).tolist() == [False]
    assert bent.interior(item, 0.01).tolist() == [True]


def test_floor_relief_sets_the_margin_from_the_floor_under_a_point() -> None:
    """A ribbed floor (5 mm ribs 20 cm apart, which no quadratic follows): the relief does.

    8 mm above a rib crest is on the floor (within the 1 cm margin), 12 mm above a trough is
    an item; measured from the bend alone, the first stands 13 mm above it, the second 7 mm.
    """
    x, y = np.meshgrid(np.linspace(-0.3, 0.3, 61), np.linspace(-0.2, 0.2, 41))
    rib = 0.005 * np.cos(2 * np.pi * x / 0.2)                         # up = towards camera
    points = np.column_stack([x.ravel(), y.ravel(), 1.0 - rib.ravel()]).astype(np.float32)
    floor = _make_plane(points.astype(np.float64), np.array([0.0, 0.0, -1.0]), 1.0)
    walls = tuple(_make_plane(points.astype(np.float64), np.array([-sign, 0.0, 0.0]), 0.3)
                  for sign in (1, -1))
    container = Container(floor=floor, walls=walls, source='detected')
    bend = fit_floor_bend(points, container, 0.008)
    assert bend is not None and bend.relief_m > 0.003 and bend.residual_m < 0.0015
    centre = np.abs(x.ravel()) < 0.15                                # away from the grid's edge
    error = bend.height(points) - rib.ravel()
    assert np.abs(error[centre]).max() < 0.0015, 'the relief follows the ribs'
    on_crest = np.array([[0.0, 0.0, 1.0 - 0.005 - 0.008]], np.float32)
    in_trough = np.array([[0.1, 0.0, 1.0 + 0.005 - 0.012]], np.float32)
    bent = Container(floor=floor, walls=walls, source='detected', floor_bend=bend)
    assert bent.interior(on_crest, 0.01).tolist() == [False]
    assert bent.interior(in_trough, 0.01).tolist() == [True]
    # Only points near the margin look the relief up: the result is the full lookup's.
    rng = np.random.default_rng(0)     # over the floor's outline, between the walls
    cloud = np.column_stack([rng.uniform(-0.25, 0.25, 5000), rng.uniform(-0.15, 0.15, 5000),
                             rng.uniform(0.96, 1.01, 5000)])
    cloud = cloud.astype(np.float32)
    full = (floor.distance(cloud) - bend.height(cloud)) > np.float32(0.01)
    full &= np.all(np.stack([w.distance(cloud) for w in walls]) > np.float32(0.01), axis=0)
    assert np.array_equal(bent.interior(cloud, 0.01), full)


def test_floor_bend_drops_a_sagging_floor_and_keeps_the_items(cell) -> None:
    """Held-out tote frames whose floors bend by up to 2.5 cm (SyntheticConfig.floor_sag_m).

    Over seeds 100000..100199 the plane alone kept 2.2 % of the floor's pixels as items, the
    bent floor 0.9 %; item pixels kept 74.3 % / 74.2 % (on flat floors 85.2 % / 85.1 %).
    """
    sagging = SyntheticCell(SyntheticConfig(floor_sag_m=0.025))
    flat = SyntheticCell(SyntheticConfig(depth_noise=False))
    tote_id = CLASSES.by_name('tote').id
    item_ids = [c.id for c in CLASSES.graspable()]
    kept = {False: [0, 0, 0, 0], True: [0, 0, 0, 0]}
    for seed in range(100000, 100060):
        frame = sagging.render(seed)
        if not frame.in_tote:
            continue
        truth = flat.render(seed)
        camera, xyz = cloud_of(frame)
        normal, offset = truth.floor_plane_cam[:3], truth.floor_plane_cam[3]
        heights = BackProjector(camera).organized(truth.depth_m).reshape(-1, 3) @ normal + offset
        floor_px = (truth.labels.ravel() == tote_id) & (np.abs(heights) < 0.002)
        for bend in (False, True):
            detector = ContainerDetector(ContainerConfig(floor_bend=bend))
            container, _ = detector.locate(frame.depth_m, xyz)
            if container is None or not container.is_bin or container.floor is None:
                continue
            assert (container.floor_bend is not None) == bend
            index = np.flatnonzero(np.isfinite(frame.depth_m))
            keep = container_keep_mask(container, xyz, frame.depth_m, index, detector.config)
            on_floor, item = floor_px[index], np.isin(frame.labels.ravel()[index], item_ids)
            counts = kept[bend]
            counts[0] += int(np.count_nonzero(keep & on_floor))
            counts[1] += int(np.count_nonzero(on_floor))
            counts[2] += int(np.count_nonzero(keep & item))
            counts[3] += int(np.count_nonzero(item))
    floor_plane, floor_bent = kept[False][0] / kept[False][1], kept[True][0] / kept[True][1]
    assert floor_bent < 0.6 * floor_plane, (floor_plane, floor_bent)
    assert kept[True][2] / kept[True][3] > kept[False][2] / kept[False][3] - 0.01


@pytest.mark.parametrize('kwargs, message', [
    ({'mode': 'bogus'}, 'not one of'), ({'surface_margin_m': float('nan')}, 'finite'),
    ({'surface_margin_m': -0.01}, '>= 0'), ({'decimation_px': 0}, '>= 1'),
    ({'plane_threshold_m': 0.0}, '> 0'), ({'min_plane_fraction': 1.5}, '(0, 1)'),
    ({'floor_bend': 1}, 'bool')])
def test_bad_configuration_is_refused(kwargs, message) -> None:
    with pytest.raises(ContainerError, match=message.replace('(', r'\(').replace(')', r'\)')):
        ContainerConfig(**kwargs)


def test_pipeline_removes_container_pixels_and_reports_it(cell) -> None:
    """With ground-truth labels whose tote pixels are relabelled 'box', only auto mode stops
    grasps on the tote: every candidate then lies on a real item."""
    frame = next(f for f in (cell.render(s) for s in range(100000, 100050))
                 if f.in_tote and len(f.items) >= 3)
    camera, _ = cloud_of(frame)
    box = CLASSES.by_name('box').id
    labels = np.where(frame.labels == CLASSES.by_name('tote').id, box, frame.labels)
    labels = labels.astype(np.uint8)
    plain = GraspPipeline(class_set=CLASSES).process(labels, frame.depth_m, camera)
    assert plain.container_status is None
    on_tote = [c for c in plain.candidates if frame.instances[c.pixel[1], c.pixel[0]] == 0]
    assert on_tote, 'without the container step the tote gets candidates (the failure fixed)'
    gated = GraspPipeline(class_set=CLASSES, container=ContainerConfig()).process(
        labels, frame.depth_m, camera)
    status = gated.container_status
    assert status.found and status.removed_pixels > 0 and 'container' in gated.timings_ms
    assert gated.candidates
    assert all(frame.instances[c.pixel[1], c.pixel[0]] > 0 for c in gated.candidates)
    distance = gated.container.wall_distance(np.stack([c.position for c in gated.candidates]))
    assert np.all(distance >= 0.015)


def test_mode_none_is_the_plain_pipeline(cell) -> None:
    frame = cell.render(100003)
    camera, _ = cloud_of(frame)
    off = GraspPipeline(class_set=CLASSES, container=ContainerConfig(mode='none'))
    result = off.process(frame.labels, frame.depth_m, camera)
    assert result.container is None and result.container_status is None


def test_arc2017_frames_in_reference_mode(shared_data: Path) -> None:
    """The real ARC tote with its empty-tote frame: the reference container removes the tote."""
    from seg_perception.evaluation.arc2017 import FRAMES, load_depth
    sub, _, depth_name, empty_name, k_name, _ = FRAMES['tote']
    depth = load_depth(shared_data / sub / depth_name)
    empty = load_depth(shared_data / sub / empty_name)
    K = np.loadtxt(shared_data / sub / k_name).reshape(3, 3)
    projector = BackProjector(PinholeCamera.from_matrix(K, 640, 480))
    detector = ContainerDetector(ContainerConfig(mode='reference'))
    reference = detector.set_reference(empty, projector.organized(empty))
    assert reference.floor is not None and len(reference.walls) >= 2
    index = np.flatnonzero(np.isfinite(empty))
    keep = container_keep_mask(reference, projector.organized(empty), empty, index,
                               detector.config)
    assert not keep.any()
    xyz = projector.organized(depth)
    index = np.flatnonzero(np.isfinite(depth))
    assert container_keep_mask(reference, xyz, depth, index, detector.config).mean() > 0.2


def test_arc2017_frames_in_auto_mode(shared_data: Path) -> None:
    """The real ARC frames, container detected from their own depth alone.

    The kept pixels must hold most of the items and not much else (masks from the empty frames,
    evaluation.arc2017; measured precision / recall 0.99 / 0.87 tote, 0.54 / 0.94 and 0.96 /
    0.66 the bin views): a wall taken for the floor (recall 0.08) fails.
    """
    from seg_perception.evaluation.arc2017 import FRAMES, load_frame
    for stem in FRAMES:
        frame = load_frame(shared_data, stem)
        depth, K, items, scored = frame['depth_m'], frame['K'], frame['items'], frame['scored']
        xyz = BackProjector(PinholeCamera.from_matrix(K, 640, 480)).organized(depth)
        detector = ContainerDetector()
        container, reason = detector.locate(depth, xyz)
        assert container is not None and len(container.walls) >= 2, (stem, reason)
        index = np.flatnonzero(scored)
        keep = np.zeros(depth.size, bool)
        keep[index] = container_keep_mask(container, xyz, depth, index, detector.config)
        keep = keep.reshape(depth.shape)
        precision = (keep & items).sum() / keep.sum()
        recall = (keep & items).sum() / (items & scored).sum()
        assert precision > 0.45 and recall > 0.6, (stem, precision, recall)
