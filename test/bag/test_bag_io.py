"""Tests for the ROS-free bag reader and writer (rosbags), including the real RealSense bag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from seg_perception.bag import BagError, BagReader, BagWriter, default_typestore
from seg_perception.bag.messages import camera_info_message, image_message
from seg_perception.bag.msgtypes import message_class
from seg_perception.bag.playback import (
    loop_period_ns,
    parse_remaps,
    play_messages,
    PlaybackClock,
    SINGLE_MESSAGE_PERIOD_NS,
)
from seg_perception.conversions.image import image_to_numpy

REALSENSE_BAG = (Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data' / 'realsense_bag'
                 / 'rs_ros2_mcap')
COLOR = '/device_0/sensor_1/Color_0/image/data'
DEPTH = '/device_0/sensor_0/Depth_0/image/data'


def _write_small_bag(path: Path, frames: int = 3, storage: str = 'mcap') -> list[np.ndarray]:
    typestore = default_typestore()
    images = [np.full((4, 6, 3), i, np.uint8) for i in range(frames)]
    with BagWriter(path, typestore=typestore, storage=storage) as writer:
        for i, image in enumerate(images):
            stamp_ns = 1_000_000_000 + i * 100_000_000
            writer.write('/cam/color/image_raw', stamp_ns,
                         image_message(typestore, image, 'rgb8', stamp_ns, 'cam'))
            writer.write('/cam/color/camera_info', stamp_ns,
                         camera_info_message(typestore, np.eye(3), 6, 4, stamp_ns, 'cam'))
    return images


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_write_then_read_round_trip(tmp_path, storage):
    images = _write_small_bag(tmp_path / 'bag', storage=storage)
    with BagReader(tmp_path / 'bag') as reader:
        assert {n: (t.msgtype, t.message_count) for n, t in reader.topics.items()} == {
            '/cam/color/camera_info': ('sensor_msgs/msg/CameraInfo', 3),
            '/cam/color/image_raw': ('sensor_msgs/msg/Image', 3)}
        assert reader.message_count == 6 and reader.duration_ns == 200_000_000
        messages = list(reader.messages(topics=['/cam/color/image_raw']))
        assert [m.log_time_ns for m in messages] == [1_000_000_000, 1_100_000_000, 1_200_000_000]
        for message, image in zip(messages, images):
            np.testing.assert_array_equal(image_to_numpy(reader.deserialize(message)), image)
            ros_msg = deserialize_message(message.rawdata, Image)  # rmw-compatible CDR
            np.testing.assert_array_equal(image_to_numpy(ros_msg), image)
        later = list(reader.messages(start_offset_ns=150_000_000))
        assert [m.log_time_ns for m in later] == [1_200_000_000] * 2


def test_interrupted_writer_leaves_a_readable_bag(tmp_path):
    typestore = default_typestore()
    with pytest.raises(KeyboardInterrupt):
        with BagWriter(tmp_path / 'bag', typestore=typestore) as writer:
            for i in range(5):
                writer.write('/labels', i, image_message(
                    typestore, np.full((2, 2), i, np.uint8), 'mono8', i, 'cam'))
                if i == 2:
                    raise KeyboardInterrupt
    with BagReader(tmp_path / 'bag') as reader:
        assert reader.topics['/labels'].message_count == 3
        assert [m.log_time_ns for m in reader.messages()] == [0, 1, 2]


def test_writer_errors(tmp_path):
    (tmp_path / 'exists').mkdir()
    with pytest.raises(BagError, match='exists already'):
        BagWriter(tmp_path / 'exists')
    with BagWriter(tmp_path / 'bag') as writer:
        with pytest.raises(BagError, match="'nope_msgs/msg/X' is not in the typestore"):
            writer.add_topic('/x', 'nope_msgs/msg/X')
        with pytest.raises(BagError, match='/y is not registered'):
            writer.write_raw('/y', 0, b'\x00\x01\x00\x00')
        with pytest.raises(BagError, match='rosbags message object'):
            writer.write('/y', 0, Image())
    with pytest.raises(BagError, match='closed'):
        writer.write_raw('/y', 0, b'')


def test_missing_and_corrupt_bags_raise_bag_error(tmp_path):
    with pytest.raises(BagError, match='does not exist'):
        BagReader(tmp_path / 'missing')
    (tmp_path / 'garbage').mkdir()
    (tmp_path / 'garbage' / 'metadata.yaml').write_text('not: [a, bag')
    with pytest.raises(BagError, match='cannot open bag'):
        BagReader(tmp_path / 'garbage')
    _write_small_bag(tmp_path / 'truncated')
    mcap = tmp_path / 'truncated' / 'truncated.mcap'
    mcap.write_bytes(mcap.read_bytes()[:200])
    with pytest.raises(BagError, match=r"cannot (open bag|read messages of bag) '.*truncated'"):
        with BagReader(tmp_path / 'truncated') as reader:
            list(reader.messages())


def test_unknown_topic_names_available_ones(tmp_path):
    _write_small_bag(tmp_path / 'bag')
    with BagReader(tmp_path / 'bag') as reader:
        with pytest.raises(BagError, match=r'/nope not in bag .*available: /cam/color/camera'):
            list(reader.messages(topics=['/nope']))


def test_play_messages_loops_and_clock_scales_time(tmp_path):
    _write_small_bag(tmp_path / 'bag', frames=2)
    loops = []
    with BagReader(tmp_path / 'bag') as reader:
        stream = play_messages(reader, topics=['/cam/color/image_raw'], loop=True,
                               on_loop=loops.append)
        stamps = [next(stream).log_time_ns for _ in range(5)]
    assert stamps == [1_000_000_000, 1_100_000_000] * 2 + [1_000_000_000]
    assert loops == [200_000_000] * 2  # span 0.1 s plus one mean gap
    assert loop_period_ns(5, 5, 1) == SINGLE_MESSAGE_PERIOD_NS
    fake_now = [10.0]
    clock = PlaybackClock(rate=2.0, now_s=lambda: fake_now[0],
                          sleep_s=lambda s: fake_now.__setitem__(0, fake_now[0] + s))
    assert clock.wait_for(1_000_000_000) and fake_now[0] == 10.0
    assert clock.wait_for(1_500_000_000) and fake_now[0] == pytest.approx(10.25)
    assert not clock.wait_for(9_000_000_000, should_stop=lambda: True)
    clock.next_pass(1_000_000_000)  # the next pass starts 0.5 s (at rate 2) after the first
    assert clock.wait_for(1_000_000_000) and fake_now[0] == pytest.approx(10.5)
    with pytest.raises(BagError, match='rate must be > 0'):
        PlaybackClock(rate=0.0)


def test_remaps_and_message_classes():
    assert parse_remaps(['/a:=/b', 'c:=d']) == {'/a': '/b', 'c': 'd'}
    with pytest.raises(BagError, match="malformed remap '/a=/b'"):
        parse_remaps(['/a=/b'])
    assert message_class('sensor_msgs/msg/Image') is Image
    with pytest.raises(BagError, match='nope_msgs/msg/X'):
        message_class('nope_msgs/msg/X')


@pytest.fixture
def realsense_bag() -> Path:
    if not REALSENSE_BAG.is_dir():
        pytest.skip(f'shared RealSense bag {REALSENSE_BAG} is absent')
    return REALSENSE_BAG


def test_realsense_bag_topics_and_colour_frame(realsense_bag):
    with BagReader(realsense_bag) as reader:
        topics = reader.topics
        assert topics[COLOR].msgtype == 'sensor_msgs/msg/Image'
        assert topics[COLOR].message_count == 1 and topics[DEPTH].message_count == 2
        assert reader.message_count == 5
        (colour,) = list(reader.messages(topics=[COLOR]))
        msg = reader.deserialize(colour)
        assert (msg.encoding, msg.width, msg.height, msg.header.frame_id) == (
            'rgb8', 640, 480, '0')
        rgb = image_to_numpy(msg)
        assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
        assert 20 < rgb.mean() < 235 and rgb.std() > 10  # a real scene, not a blank frame
        depth = image_to_numpy(reader.deserialize(next(reader.messages(topics=[DEPTH]))))
        assert depth.dtype == np.uint16 and depth.shape == (480, 640) and depth.max() > 0
