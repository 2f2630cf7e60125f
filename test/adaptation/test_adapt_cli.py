"""`seg_perception adapt` end to end on small bags, and its refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seg_perception.adaptation.arc_bag import write_arc_tote_bag
from seg_perception.bag.messages import camera_info_message, image_message
from seg_perception.bag.reader import default_typestore
from seg_perception.bag.synthetic_to_bag import topic_names, write_synthetic_bag
from seg_perception.bag.writer import BagWriter
from seg_perception.cli import main
from seg_perception.conversions.encodings import RGB8, TYPE_32FC1
from seg_perception.segmentation.model_spec import load_checkpoint
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

TOPICS = topic_names('camera')
SHARED = Path(__file__).resolve().parents[3] / 'shared' / 'data'
FAST = ['--iterations', '3', '--val-every', '3', '--log-every', '3', '--warmup', '1',
        '--batch-size', '2', '--eval-frames', '1', '--threads', '2', '--no-progress']


def _adapt(bag: Path, out: Path, *extra: str) -> int:
    return main(['adapt', '--bag', str(bag), '--image-topic', TOPICS['rgb'], '--depth-topic',
                 TOPICS['depth'], '--camera-info-topic', TOPICS['color_info'],
                 '--out', str(out), *extra])


@pytest.fixture(scope='module')
def small_bag(tmp_path_factory) -> Path:
    """Six synthetic frames at 320x240, seeds apart from training and evaluation seeds."""
    folder = tmp_path_factory.mktemp('bags')
    write_synthetic_bag(folder / 'cell', frames=6, seed=50_000, rate_hz=10.0, width=320,
                        height=240, progress=False)
    return folder / 'cell'


def _write_bag(path: Path, frames, K: np.ndarray) -> None:
    """Write (rgb, depth_m) frames with one CameraInfo each."""
    store = default_typestore()
    with BagWriter(path, typestore=store) as writer:
        for i, (rgb, depth) in enumerate(frames):
            stamp = 1_000_000_000 + i * 100_000_000
            writer.write(TOPICS['rgb'], stamp, image_message(store, rgb, RGB8, stamp, 'cam'))
            writer.write(TOPICS['depth'], stamp, image_message(store, depth, TYPE_32FC1, stamp,
                                                               'cam'))
            writer.write(TOPICS['color_info'], stamp, camera_info_message(
                store, K, depth.shape[1], depth.shape[0], stamp, 'cam'))


def _nothing_written(out: Path) -> bool:
    return not out.exists() and not out.with_name(out.name + '.partial').exists()


def test_adapt_writes_a_loadable_model_and_a_report(tmp_path: Path, small_bag: Path, capsys):
    out = tmp_path / 'adapted'
    assert _adapt(small_bag, out, '--min-frames', '4', *FAST) == 0, capsys.readouterr().err
    for name in ('model.pt', 'model.json', 'report.md', 'report.json', 'pseudo_labels.png',
                 'before_after.png', 'curves.png', 'train/train_state.pt'):
        assert (out / name).is_file(), name
    assert not out.with_name('adapted.partial').exists()
    model, spec = load_checkpoint(out / 'model.pt')
    assert spec.arch == 'unet_small'
    report = json.loads((out / 'report.json').read_text())
    assert report['frames']['usable'] >= 4 and report['frames']['val'] >= 1
    assert report['training']['iterations'] == 3
    assert 0.0 < report['pseudo_labels']['ignored_share'] < 1.0
    assert report['synthetic']['before']['miou'] is not None
    assert 'adapted on' in capsys.readouterr().out


def test_missing_depth_topic_is_one_line_and_writes_nothing(tmp_path, small_bag, capsys):
    out = tmp_path / 'x'
    code = main(['adapt', '--bag', str(small_bag), '--image-topic', TOPICS['rgb'],
                 '--depth-topic', '/camera/aligned_depth/image_raw', '--camera-info-topic',
                 TOPICS['color_info'], '--out', str(out), '--no-progress'])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert 'no depth image topic' in err and _nothing_written(out)
    code = main(['adapt', '--bag', str(small_bag), '--image-topic', TOPICS['rgb'],
                 '--depth-topic', TOPICS['depth'], '--camera-info-topic', TOPICS['rgb'],
                 '--out', str(out), '--no-progress'])
    assert code == 1 and 'not sensor_msgs/msg/CameraInfo' in capsys.readouterr().err
    assert _nothing_written(out)


def test_too_few_frames_and_an_existing_out_folder_are_refused(tmp_path, small_bag, capsys):
    out = tmp_path / 'few'
    assert _adapt(small_bag, out, '--min-frames', '50', '--no-progress') == 1
    assert 'too few frames to adapt' in capsys.readouterr().err and _nothing_written(out)
    out.mkdir()
    assert _adapt(small_bag, out, '--no-progress') == 1
    assert 'exists' in capsys.readouterr().err


def test_unregistered_depth_no_container_and_no_items_are_refused(tmp_path: Path, capsys):
    cell = SyntheticCell(SyntheticConfig(width=160, height=120, tote_probability=1.0,
                                         empty_probability=1.0))
    frames = [cell.render(seed=s) for s in range(3)]
    K = frames[0].K
    bag = tmp_path / 'sizes'
    _write_bag(bag, [(f.rgb, f.depth_m[::2, ::2].copy()) for f in frames], K)
    assert _adapt(bag, tmp_path / 'a', '--no-progress') == 1
    err = capsys.readouterr().err
    assert 'registered' in err and '160x120' in err and _nothing_written(tmp_path / 'a')
    bag = tmp_path / 'flat'
    _write_bag(bag, [(f.rgb, np.full(f.depth_m.shape, 0.0, np.float32)) for f in frames], K)
    assert _adapt(bag, tmp_path / 'b', '--no-progress') == 1
    assert 'no container found' in capsys.readouterr().err and _nothing_written(tmp_path / 'b')
    bag = tmp_path / 'empty'      # empty totes, no stickers or cables, clean depth: no item
    clean = SyntheticCell(SyntheticConfig(width=160, height=120, tote_probability=1.0,
                                          empty_probability=1.0, distractors=False,
                                          depth_noise=False))
    _write_bag(bag, [(f.rgb, np.nan_to_num(f.depth_m)) for f in (
        clean.render(seed=s) for s in range(3))], K)
    assert _adapt(bag, tmp_path / 'c', '--min-frames', '2', '--no-progress') == 1
    assert 'no usable pseudo-labels' in capsys.readouterr().err
    assert _nothing_written(tmp_path / 'c')


@pytest.mark.skipif(not (SHARED / 'arc2017_tote').is_dir(), reason='../shared/data is absent')
def test_real_bags_run_through_and_say_why_they_are_too_small(tmp_path: Path, capsys):
    bag = tmp_path / 'arc'
    write_arc_tote_bag(SHARED, bag)
    assert _adapt(bag, tmp_path / 'arc_out', '--empty-container-frame', '0',
                  '--no-progress') == 1
    assert 'too few frames to adapt: 1 of 2' in capsys.readouterr().err
    realsense = SHARED / 'realsense_bag' / 'rs_ros2_mcap'
    code = main(['adapt', '--bag', str(realsense), '--image-topic',
                 '/device_0/sensor_1/Color_0/image/data', '--depth-topic',
                 '/device_0/sensor_0/Depth_0/image/data', '--camera-info-topic',
                 '/device_0/sensor_0/Depth_0/info/camera_info', '--stamp-tolerance-ms', '150',
                 '--out', str(tmp_path / 'rs_out'), '--no-progress'])
    assert code == 1 and 'no container found' in capsys.readouterr().err
    assert _nothing_written(tmp_path / 'arc_out') and _nothing_written(tmp_path / 'rs_out')
