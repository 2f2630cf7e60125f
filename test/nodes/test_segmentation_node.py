"""segmentation_node as a separate process, driven over real DDS from this test process."""

from __future__ import annotations

import time

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ros_harness import NodeProcess, wait_until
from seg_interfaces.msg import LabelInfo
from seg_perception.conversions import image_to_numpy, numpy_to_image

pytestmark = pytest.mark.ros

NODE = 'seg_perception.nodes.segmentation_node'
# A registry model with random weights: real inference, fast to load; the default model's
# quality is tested elsewhere.
MODEL = 'unet_small'
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def node_params(**overrides):
    params = {'image_topics': ['cam0/image_raw'], 'model': MODEL, 'device': 'cpu',
              'classes_to_mask': ['box', 'cylinder'], 'qos_reliability': 'reliable',
              'warmup_iterations': 1, 'stale_after_s': 1.0, 'diagnostics_period_s': 0.5}
    params.update(overrides)
    return params


@pytest.fixture(scope='module')
def running_node():
    with NodeProcess(NODE, params=node_params()) as proc:
        yield proc


def rgb_frame(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_thirty_frames_in_thirty_labels_out(running_node, ros_probe) -> None:
    node = ros_probe.node
    pub = node.create_publisher(Image, 'cam0/image_raw', RELIABLE)
    labels = ros_probe.subscribe(Image, 'cam0/segmentation/labels', RELIABLE)
    box_masks = ros_probe.subscribe(Image, 'cam0/segmentation/masks/box', RELIABLE)
    overlays = ros_probe.subscribe(Image, 'cam0/segmentation/overlay', RELIABLE)
    ros_probe.wait_for_subscribers(pub, timeout_s=60.0)
    ros_probe.wait_for_publishers('cam0/segmentation/labels', timeout_s=60.0)
    sent = []
    for i in range(30):
        msg = numpy_to_image(rgb_frame(480, 640, i), 'rgb8')
        msg.header.frame_id = 'cam0_optical_frame'
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i, 12345
        pub.publish(msg)
        sent.append((msg.header.stamp.sec, msg.header.stamp.nanosec))
        # Lock-step, so a slow shared CI machine never drops a frame by design.
        labels.wait_for(i + 1, timeout_s=30.0)
    got = labels.wait_for(30, timeout_s=5.0)
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for m in got] == sent
    for m in got:
        assert (m.height, m.width, m.encoding) == (480, 640, 'mono8')
        assert m.header.frame_id == 'cam0_optical_frame'
        values = image_to_numpy(m)
        assert values.max() < 6 or (values == 255).any()  # class ids of 6 classes, or unlabeled
    # Masks and overlay are computed while subscribed; the node may see our subscription a
    # frame or two after we see its publisher, so compare by stamp.
    labels_by_stamp = {m.header.stamp.sec: image_to_numpy(m) for m in got}
    masks = box_masks.wait_for(20, timeout_s=10.0)
    for mask_msg in masks:
        mask = image_to_numpy(mask_msg)
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask == 255, labels_by_stamp[mask_msg.header.stamp.sec] == 2)
    assert overlays.wait_for(20, timeout_s=10.0)[-1].encoding == 'rgb8'


def test_label_info_reaches_a_late_subscriber(running_node, ros_probe) -> None:
    ros_probe.wait_for_publishers('cam0/segmentation/label_info', timeout_s=60.0)
    time.sleep(0.5)  # the node published long before this subscription exists
    info = ros_probe.subscribe(LabelInfo, 'cam0/segmentation/label_info', LATCHED)
    msg = info.wait_for(1, timeout_s=10.0)[0]
    assert list(msg.class_names) == ['background', 'tote', 'box', 'polybag', 'envelope',
                                     'cylinder']
    assert list(msg.class_ids) == [0, 1, 2, 3, 4, 5]
    assert msg.unlabeled_id == 255 and len(msg.colors) == 6


def _set_parameter(ros_probe, name: str, value: ParameterValue):
    client = ros_probe.node.create_client(SetParameters, '/segmentation_node/set_parameters')
    assert client.wait_for_service(timeout_sec=30.0)
    future = client.call_async(SetParameters.Request(
        parameters=[ParameterMsg(name=name, value=value)]))
    assert wait_until(future.done, 10.0)
    return future.result().results[0]


def test_runtime_parameters_validated(running_node, ros_probe) -> None:
    bad = _set_parameter(ros_probe, 'classes_to_mask', ParameterValue(
        type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=['box', 'forklift']))
    assert not bad.successful and 'forklift' in bad.reason
    fixed = _set_parameter(ros_probe, 'model', ParameterValue(
        type=ParameterType.PARAMETER_STRING, string_value='other'))
    assert not fixed.successful and 'restart' in fixed.reason
    alpha = _set_parameter(ros_probe, 'overlay_alpha', ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE, double_value=1.5))
    assert not alpha.successful and 'overlay_alpha' in alpha.reason
    for value in (float('nan'), float('inf')):  # 'nan < 0' is False: a plain range check passes
        rate = _set_parameter(ros_probe, 'max_rate_hz', ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=value))
        assert not rate.successful and 'finite' in rate.reason
    ok = _set_parameter(ros_probe, 'classes_to_mask', ParameterValue(
        type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=['polybag']))
    assert ok.successful
    ros_probe.wait_for_publishers('cam0/segmentation/masks/polybag', timeout_s=10.0)


def _bad_messages() -> dict[str, Image]:
    wrong_encoding = numpy_to_image(np.zeros((4, 4), np.float32), '32FC1')
    empty = Image(height=0, width=0, encoding='rgb8', step=0)
    short = numpy_to_image(rgb_frame(10, 10, 0), 'rgb8')
    short.data = bytes(short.data)[:100]
    unknown = Image(height=2, width=2, encoding='yuv422_yuy2_weird', step=4, data=bytes(8))
    return {'wrong_encoding': wrong_encoding, 'empty': empty, 'short': short,
            'unknown': unknown}


def test_bad_frames_are_counted_and_the_node_keeps_going(running_node, ros_probe) -> None:
    pub = ros_probe.node.create_publisher(Image, 'cam0/image_raw', RELIABLE)
    labels = ros_probe.subscribe(Image, 'cam0/segmentation/labels', RELIABLE)
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    ros_probe.wait_for_subscribers(pub, timeout_s=30.0)
    for msg in _bad_messages().values():
        pub.publish(msg)
        time.sleep(0.3)  # one per worker pass, so none replaces another unprocessed
    odd = numpy_to_image(rgb_frame(479, 641, 7), 'bgr8')
    odd.header.stamp.sec = 77
    pub.publish(odd)
    out = labels.wait_for(1, timeout_s=30.0)[-1]
    assert (out.height, out.width, out.header.stamp.sec) == (479, 641, 77)
    assert running_node.is_running()

    def problems_reported() -> bool:
        for array in diagnostics.messages:
            for status in array.status:
                keys = {kv.key: kv.value for kv in status.values}
                total = sum(int(v) for k, v in keys.items() if k.startswith('problem:'))
                if 'cam0/image_raw' in status.name and total >= 4:
                    return True
        return False
    assert wait_until(problems_reported, 10.0), 'refused frames not counted in /diagnostics'
    assert running_node.output.count('frame refused') <= 4  # logged once per reason


def test_a_camera_that_stops_is_reported_stale(running_node, ros_probe) -> None:
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)

    def stale() -> bool:
        return any(s.level == DiagnosticStatus.STALE and 'cam0' in s.name
                   for a in diagnostics.messages for s in a.status)
    assert wait_until(stale, 15.0), 'no STALE status after the camera stopped'
    assert running_node.is_running()


@pytest.mark.parametrize('params, expected', [
    ({'model': '/nonexistent/model.pt'}, 'model.pt'),
    ({'classes_to_mask': ['forklift']}, 'forklift'),
    ({'precision': 'int3'}, 'precision'),
    ({'backend': 'tensorrt'}, 'backend'),
])
def test_start_up_errors_exit_non_zero_with_a_reason(params, expected) -> None:
    with NodeProcess(NODE, params=node_params(**params)) as proc:
        code = proc.wait(timeout_s=120.0)
        assert code != 0
        assert expected in proc.output and 'error' in proc.output
        assert 'Traceback' not in proc.output


def test_corrupt_model_file_is_refused(tmp_path) -> None:
    model = tmp_path / 'broken.pt'
    model.write_bytes(b'not a checkpoint')
    (tmp_path / 'broken.json').write_text('{"arch": "unet_small"')
    with NodeProcess(NODE, params=node_params(model=str(model))) as proc:
        assert proc.wait(timeout_s=120.0) != 0
        assert 'broken' in proc.output and 'Traceback' not in proc.output


def test_two_cameras_one_compressed_are_segmented_at_their_own_sizes(ros_probe) -> None:
    from sensor_msgs.msg import CompressedImage
    from seg_perception.conversions import numpy_to_compressed
    params = node_params(image_topics=['left/image_raw', 'right/image_raw/compressed'])
    left_out = ros_probe.subscribe(Image, 'left/segmentation/labels', RELIABLE)
    right_out = ros_probe.subscribe(Image, 'right/segmentation/labels', RELIABLE)
    with NodeProcess(NODE, params=params) as proc:
        left = ros_probe.node.create_publisher(Image, 'left/image_raw', RELIABLE)
        right = ros_probe.node.create_publisher(CompressedImage, 'right/image_raw/compressed',
                                                RELIABLE)
        ros_probe.wait_for_subscribers(left, timeout_s=60.0)
        ros_probe.wait_for_subscribers(right, timeout_s=60.0)
        for i in range(3):
            msg = numpy_to_image(rgb_frame(240, 320, i), 'rgb8')
            msg.header.stamp.sec = 500 + i
            jpeg = numpy_to_compressed(rgb_frame(120, 160, i), 'jpeg')
            jpeg.header.stamp.sec = 600 + i
            left.publish(msg)
            right.publish(jpeg)
            left_out.wait_for(i + 1, timeout_s=30.0)
            right_out.wait_for(i + 1, timeout_s=30.0)
        assert proc.is_running()
    assert [(m.height, m.width) for m in left_out.messages] == [(240, 320)] * 3
    assert [(m.height, m.width) for m in right_out.messages] == [(120, 160)] * 3
    assert [m.header.stamp.sec for m in right_out.messages] == [600, 601, 602]


def test_oversized_and_bomb_images_are_refused_before_decoding(ros_probe) -> None:
    """Fuzzing fault: a PNG announcing 16000x16000 was decoded (7.7 s stall, 2.6 GB)."""
    from sensor_msgs.msg import CompressedImage
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    params = node_params(image_topics=['big/image_raw', 'bomb/image_raw/compressed'],
                         max_input_pixels=100_000)
    with NodeProcess(NODE, params=params, remaps={'__ns': '/limits'}) as proc:
        raw = ros_probe.node.create_publisher(Image, '/limits/big/image_raw', RELIABLE)
        packed = ros_probe.node.create_publisher(CompressedImage,
                                                 '/limits/bomb/image_raw/compressed', RELIABLE)
        ros_probe.wait_for_subscribers(raw, timeout_s=60.0)
        ros_probe.wait_for_subscribers(packed, timeout_s=60.0)
        raw.publish(numpy_to_image(rgb_frame(480, 640, 0), 'rgb8'))   # 307,200 px > 100,000
        ok, buf = cv2.imencode('.png', np.zeros((8, 8), np.uint8))
        data = bytearray(buf.tobytes())
        data[16:24] = (16000).to_bytes(4, 'big') * 2                   # IHDR: 16000 x 16000
        packed.publish(CompressedImage(format='png', data=bytes(data)))

        def refused() -> int:
            by_camera = {}  # counted per camera: one refusal each
            for array in diagnostics.messages:
                for status in array.status:
                    for kv in status.values:
                        if kv.key == 'problem:bad_input:too_many_pixels':
                            by_camera[status.name] = max(by_camera.get(status.name, 0),
                                                         int(kv.value))
            return sum(by_camera.values())
        assert wait_until(lambda: refused() >= 2, 30.0), proc.output
        assert 'over max_input_pixels 100000' in proc.output and proc.is_running()
