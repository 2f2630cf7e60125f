"""Integration tests of the bag player and recorder nodes across processes with real DDS."""

from __future__ import annotations

from pathlib import Path
import time

import numpy as np
import pytest
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from ros_harness import NodeProcess, SHARED_DATA, wait_until
from seg_perception.bag import BagReader
from seg_perception.conversions.image import image_to_numpy, numpy_to_image
from seg_perception.nodes import bag_player, bag_recorder

REALSENSE_BAG = SHARED_DATA / 'realsense_bag' / 'rs_ros2_mcap'
COLOR = '/device_0/sensor_1/Color_0/image/data'
COLOR_INFO = '/device_0/sensor_1/Color_0/info/camera_info'


@pytest.fixture
def realsense_bag() -> Path:
    if not REALSENSE_BAG.is_dir():
        pytest.skip(f'shared RealSense bag {REALSENSE_BAG} is absent')
    return REALSENSE_BAG


def _bag_colour_frame(bag: Path) -> np.ndarray:
    with BagReader(bag) as reader:
        return image_to_numpy(reader.deserialize(next(reader.messages(topics=[COLOR]))))


def test_player_publishes_the_realsense_frame_unchanged(realsense_bag, ros_probe):
    images = ros_probe.subscribe(Image, COLOR)
    with NodeProcess('seg_perception.nodes.bag_player',
                     args=[str(realsense_bag), '--loop', '--no-progress']) as player:
        received = images.wait_for(1, timeout_s=30.0)[0]
        assert player.is_running(), player.output
        assert player.stop() == 0, player.output
    assert (received.encoding, received.width, received.height) == ('rgb8', 640, 480)
    assert received.header.frame_id == '0'
    assert (received.header.stamp.sec, received.header.stamp.nanosec) == (360, 713523000)
    np.testing.assert_array_equal(image_to_numpy(received), _bag_colour_frame(realsense_bag))


def test_player_topic_selection_remap_and_rate(realsense_bag, ros_probe):
    infos = ros_probe.subscribe(CameraInfo, '/replay/color_info')
    images = ros_probe.subscribe(Image, COLOR)
    args = [str(realsense_bag), '--loop', '--rate', '4', '--no-progress', '--qos', 'reliable',
            '--topics', COLOR_INFO, '--remap', f'{COLOR_INFO}:=/replay/color_info']
    with NodeProcess('seg_perception.nodes.bag_player', args=args) as player:
        info = infos.wait_for(2, timeout_s=30.0)[0]
        assert player.stop() == 0, player.output
    assert len(images) == 0  # not selected
    assert info.header.stamp.sec == 0 and info.width == 640


def test_player_waits_for_subscribers_before_playing(realsense_bag, ros_probe):
    # The bag holds one colour frame: played before anyone subscribes, it would be lost.
    args = [str(realsense_bag), '--topics', COLOR, '--wait-for-subscribers', '1',
            '--wait-topics', COLOR, '--no-progress', '--qos', 'reliable']
    with NodeProcess('seg_perception.nodes.bag_player', args=args) as player:
        time.sleep(2.0)
        assert player.is_running(), player.output
        images = ros_probe.subscribe(Image, COLOR)
        assert len(images.wait_for(1, timeout_s=30.0)) == 1


def test_player_gives_up_waiting_with_a_one_line_error(realsense_bag, capsys):
    assert bag_player.main([str(realsense_bag), '--wait-for-subscribers', '1', '--wait-timeout',
                            '0.5', '--topics', COLOR_INFO, '--no-progress']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'fewer than 1 subscribers' in err[0] and COLOR_INFO in err[0]
    assert bag_player.main([str(realsense_bag), '--wait-for-subscribers', '1', '--topics',
                            COLOR_INFO, '--wait-topics', COLOR]) == 1
    assert 'not played' in capsys.readouterr().err


def test_player_errors_are_one_line(tmp_path, realsense_bag, capsys):
    assert bag_player.main([str(tmp_path / 'missing')]) == 1
    assert capsys.readouterr().err.strip() == (
        f"bag_player: error: bag '{tmp_path / 'missing'}' does not exist")
    assert bag_player.main([str(realsense_bag), '--topics', '/nope']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '/nope not in bag' in err[0] and COLOR in err[0]
    (tmp_path / 'corrupt').mkdir()
    (tmp_path / 'corrupt' / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}')
    assert bag_player.main([str(tmp_path / 'corrupt')]) == 1
    assert 'cannot open bag' in capsys.readouterr().err
    assert bag_player.main([str(realsense_bag), '--start-offset', '5']) == 1
    assert 'beyond the bag' in capsys.readouterr().err


def test_recorder_writes_a_readable_bag_on_sigint(tmp_path, ros_probe):
    topic = '/bag_recorder_test/image'
    publisher = ros_probe.node.create_publisher(Image, topic, 10)
    out = tmp_path / 'recorded'
    with NodeProcess('seg_perception.nodes.bag_recorder',
                     args=[topic, '-o', str(out), '--timeout', '20']) as recorder:
        ros_probe.wait_for_subscribers(publisher, timeout_s=30.0)
        frames = [np.full((3, 4), i, np.uint8) for i in range(5)]
        for frame in frames:
            msg = numpy_to_image(frame, 'mono8')
            msg.header.frame_id = 'cam'
            publisher.publish(msg)
        time.sleep(1.0)  # let the reliable messages arrive; the recorder also drains on stop
        assert recorder.stop() == 0, recorder.output
    assert wait_until(lambda: (out / 'metadata.yaml').exists(), 5.0)
    with BagReader(out) as reader:
        assert reader.topics[topic].msgtype == 'sensor_msgs/msg/Image'
        got = [image_to_numpy(reader.deserialize(m)) for m in reader.messages()]
    assert [int(g[0, 0]) for g in got] == list(range(5))


def test_recorder_waits_for_a_publisher_and_follows_its_reliability(tmp_path, ros_probe):
    # A subscriber makes the topic visible first; the recorder must not subscribe (best
    # effort, from no publisher) until a publisher shows up.
    topic = '/bag_recorder_test/late_publisher'
    ros_probe.subscribe(Image, topic)
    out = tmp_path / 'recorded'
    with NodeProcess('seg_perception.nodes.bag_recorder',
                     args=[topic, '-o', str(out), '--timeout', '20']) as recorder:
        time.sleep(1.5)
        assert 'recording' not in recorder.output and recorder.is_running(), recorder.output
        publisher = ros_probe.node.create_publisher(Image, topic, 10)  # reliable by default
        assert wait_until(lambda: 'recording' in recorder.output, 20.0), recorder.output
        assert wait_until(lambda: any(
            i.qos_profile.reliability == ReliabilityPolicy.RELIABLE
            for i in ros_probe.node.get_subscriptions_info_by_topic(topic)
            if i.node_name == 'bag_recorder'), 20.0)
        ros_probe.wait_for_subscribers(publisher, count=2, timeout_s=30.0)
        publisher.publish(numpy_to_image(np.zeros((480, 640, 3), np.uint8), 'rgb8'))
        time.sleep(1.0)
        assert recorder.stop() == 0, recorder.output
    with BagReader(out) as reader:
        assert reader.topics[topic].message_count == 1


def test_recorder_times_out_naming_missing_topics(tmp_path, capsys):
    assert bag_recorder.main(['/never/there', '-o', str(tmp_path / 'bag'),
                              '--timeout', '0.5']) == 1
    assert 'had no publisher within 0.5 s' in capsys.readouterr().err
    assert not (tmp_path / 'bag').exists()
