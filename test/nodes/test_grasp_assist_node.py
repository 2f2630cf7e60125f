"""grasp_assist_node as a separate process, fed synthetic RGB-D frames over real DDS."""

from __future__ import annotations

import dataclasses

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, PointCloud2
from visualization_msgs.msg import MarkerArray

from ros_harness import NodeProcess, wait_until
from seg_interfaces.msg import GraspCandidateArray
from seg_interfaces.srv import GetGraspCandidates
from seg_perception.conversions import numpy_to_image, pointcloud2_to_array
from seg_perception.nodes.synthetic_camera_node import depth_message
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

from nodes.grasp_feeder import GraspFeeder, problem_total, RELIABLE  # noqa: I100 (test helper)
from nodes.parameter_client import stamped

pytestmark = pytest.mark.ros

NODE = 'seg_perception.nodes.grasp_assist_node'


@pytest.fixture(scope='module')
def frames():
    cell = SyntheticCell(SyntheticConfig(width=640, height=480))
    return [cell.render(seed=s) for s in (11, 12, 13)]


@pytest.fixture(scope='module')
def running_node():
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5,
              'color_topic': 'color/image_raw'}
    with NodeProcess(NODE, params=params) as proc:
        yield proc


def test_candidates_cloud_poses_and_markers_share_the_depth_header(
        running_node, ros_probe, frames) -> None:
    candidates = ros_probe.subscribe(GraspCandidateArray, 'grasp/candidates', RELIABLE)
    clouds = ros_probe.subscribe(PointCloud2, 'grasp/graspable_points', RELIABLE)
    poses = ros_probe.subscribe(PoseArray, 'grasp/candidate_poses', RELIABLE)
    markers = ros_probe.subscribe(MarkerArray, 'grasp/markers', RELIABLE)
    feeder = GraspFeeder(ros_probe)
    for i, frame in enumerate(frames):
        feeder.send(frame, 100 + i, depth_encoding='16UC1' if i == 1 else '32FC1')
        candidates.wait_for(i + 1, timeout_s=30.0)
    got = candidates.wait_for(3, timeout_s=5.0)
    assert [m.header.stamp.sec for m in got] == [100, 101, 102]
    assert all(m.header.frame_id == 'camera_color_optical_frame' for m in got)
    assert any(len(m.candidates) > 0 for m in got)
    for msg in got:
        scores = [c.score for c in msg.candidates]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        for c in msg.candidates:
            assert c.class_name in ('box', 'polybag', 'envelope', 'cylinder')
            assert c.grasp_type in ('suction', 'parallel') and c.point_count > 0
            assert 0.1 < c.pose.position.z < 4.0
    cloud = clouds.wait_for(3, timeout_s=10.0)[-1]
    assert cloud.header.stamp.sec == 102
    points = pointcloud2_to_array(cloud)
    assert {'x', 'y', 'z', 'rgb', 'label', 'region', 'normal_x', 'normal_y', 'normal_z',
            'score'} <= set(points.dtype.names)
    assert len(points) > 1000 and set(np.unique(points['label'])) <= {2, 3, 4, 5}
    assert len(poses.wait_for(3, timeout_s=10.0)[-1].poses) == len(got[-1].candidates)
    assert markers.wait_for(3, timeout_s=10.0)[-1].markers[0].action == 3  # DELETEALL first


def test_service_answers_from_the_latest_frame(running_node, ros_probe, frames) -> None:
    feeder = GraspFeeder(ros_probe)
    feeder.send(frames[0], 200)
    client = ros_probe.node.create_client(GetGraspCandidates, 'grasp/get_grasp_candidates')
    assert client.wait_for_service(timeout_sec=30.0)

    def call(**kwargs):
        future = client.call_async(GetGraspCandidates.Request(**kwargs))
        assert wait_until(future.done, 20.0)
        return future.result()
    ok = call(class_names=['box'], max_candidates=2, timeout_s=10.0)
    assert ok.success, ok.message
    assert len(ok.candidates.candidates) <= 2
    assert all(c.class_name == 'box' for c in ok.candidates.candidates)
    bad = call(class_names=['tote'], max_candidates=0, timeout_s=0.0)
    assert not bad.success and 'tote' in bad.message


def test_bad_inputs_are_counted_and_survived(running_node, ros_probe, frames) -> None:
    candidates = ros_probe.subscribe(GraspCandidateArray, 'grasp/candidates', RELIABLE)
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    feeder = GraspFeeder(ros_probe)
    frame = frames[2]
    # Labels at half resolution are scaled to the depth image, not refused.
    half = frame.labels[::2, ::2].copy()
    feeder.send(frame, 300, labels=half)
    assert stamped(candidates, 300).candidates
    # All-invalid depth and empty masks give empty results, not errors.
    empty_depth = dataclasses.replace(frame, depth_m=np.full_like(frame.depth_m, np.nan))
    # One at a time: the node keeps only the newest matched set (a one-slot mailbox), so a set
    # sent while the worker is busy may replace the one before it.
    feeder.send(empty_depth, 301)
    assert not stamped(candidates, 301).candidates
    feeder.send(frame, 302, labels=np.zeros_like(frame.labels))
    assert not stamped(candidates, 302).candidates
    # CameraInfo with zero P and K is refused with a warning and counted.
    zero_info = CameraInfo(width=640, height=480)
    feeder.send(frame, 303, info=zero_info)
    # Stamps that never match: nothing is emitted for them, drops are counted. (Within
    # max_stamp_jump_s: a larger jump would reset the synchronizer, a test of its own.)
    feeder.send(frame, 304, label_sec=306)
    assert wait_until(lambda: problem_total(diagnostics, 'problem:invalid_camera_info') >= 1,
                      15.0), running_node.output
    # The next matching frame flushes the unmatched 304 set, which is counted as dropped.
    feeder.send(frame, 305)
    assert wait_until(lambda: any(m.header.stamp.sec == 305 for m in candidates.messages), 30.0)
    assert wait_until(lambda: problem_total(diagnostics, 'sync_dropped') >= 1, 15.0)
    assert all(m.header.stamp.sec not in (303, 304) for m in candidates.messages)
    assert running_node.is_running()
    assert 'CameraInfo refused' in running_node.output


def test_unknown_depth_encoding_and_missing_camera_info_are_counted(ros_probe, frames) -> None:
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    # A namespace of its own, so the module's other node does not answer for this one.
    with NodeProcess(NODE, params={'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5},
                     remaps={'__ns': '/isolated'}) as proc:
        feeder = GraspFeeder(ros_probe, ns='/isolated/', with_color=False)
        frame = frames[0]
        # Depth and labels but no CameraInfo at all: reported as missing.
        header = numpy_to_image(frame.labels, 'mono8').header
        header.stamp.sec = 400
        feeder.labels.publish(numpy_to_image(frame.labels, 'mono8', header))
        feeder.depth.publish(depth_message(frame.depth_m, '32FC1', header))
        assert wait_until(lambda: problem_total(diagnostics, 'problem:missing_camera_info')
                          >= 1, 30.0)
        # A colour image where depth belongs: refused by its encoding, the reason says which.
        feeder.send(frame, 401, depth=numpy_to_image(frame.rgb, 'rgb8'))
        assert wait_until(lambda: problem_total(
            diagnostics, 'problem:bad_input:unsupported_depth_encoding:rgb8') >= 1, 30.0)
        # Labels that are not class ids (an overlay sent by mistake): named by encoding.
        feeder.send(frame, 402, labels_msg=numpy_to_image(frame.rgb, 'rgb8'))
        assert wait_until(lambda: problem_total(
            diagnostics, 'problem:bad_input:labels_encoding:rgb8') >= 1, 30.0)
        assert proc.is_running()


def test_bad_parameters_exit_with_a_reason() -> None:
    with NodeProcess(NODE, params={'grasp_modes': ['box=teleport']}) as proc:
        assert proc.wait(timeout_s=60.0) != 0
        assert 'teleport' in proc.output and 'Traceback' not in proc.output


def test_classes_come_from_label_info(ros_probe, frames) -> None:
    """A model whose classes are not the built-in ones (Pascal VOC, as the ONNX model in
    ../shared): with its LabelInfo, label id 5 is 'bottle', and candidates are on bottles."""
    from std_msgs.msg import ColorRGBA
    from seg_interfaces.msg import LabelInfo
    from seg_perception.nodes.qos import latched_qos
    voc = ('background aeroplane bicycle bird boat bottle bus car cat chair cow diningtable '
           'dog horse motorbike person pottedplant sheep sofa train tvmonitor').split()
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    candidates = ros_probe.subscribe(GraspCandidateArray, '/voc/grasp/candidates', RELIABLE)
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5,
              'graspable_classes': ['bottle'], 'grasp_modes': ['bottle=suction']}
    with NodeProcess(NODE, params=params, remaps={'__ns': '/voc'}) as proc:
        feeder = GraspFeeder(ros_probe, ns='/voc/', with_color=False)
        frame = frames[0]
        labels = np.where(frame.instances > 0, 5, 0).astype(np.uint8)
        # No LabelInfo yet: 'bottle' is not a built-in class, and the node says so.
        feeder.send(frame, 900, labels=labels)
        assert not stamped(candidates, 900).candidates
        assert wait_until(lambda: problem_total(diagnostics, 'problem:graspable_class_unknown')
                          >= 1, 20.0)
        info = LabelInfo(class_ids=list(range(21)), class_names=voc, unlabeled_id=255,
                         model_name='deeplabv3_mnv2_voc',
                         colors=[ColorRGBA(r=0.5, g=0.5, b=0.5, a=1.0)] * 21)
        publisher = ros_probe.node.create_publisher(LabelInfo,
                                                    '/voc/color/segmentation/label_info',
                                                    latched_qos())
        publisher.publish(info)
        assert wait_until(lambda: 'classes from LabelInfo' in proc.output, 20.0)
        feeder.send(frame, 901, labels=labels)
        got = stamped(candidates, 901).candidates
        assert got and {c.class_name for c in got} == {'bottle'}
        assert {c.class_id for c in got} == {5} and {c.grasp_type for c in got} == {'suction'}
        assert proc.is_running()


def test_a_frame_from_the_far_future_does_not_stop_the_node(running_node, ros_probe, frames):
    """Fuzzing fault: one set stamped sec = 2e9 made every later normal set 'too late'."""
    candidates = ros_probe.subscribe(GraspCandidateArray, 'grasp/candidates', RELIABLE)
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    feeder = GraspFeeder(ros_probe)
    feeder.send(frames[0], 600)
    assert wait_until(lambda: any(m.header.stamp.sec == 600 for m in candidates.messages), 30.0)
    feeder.send(frames[0], 2_000_000_000)
    assert wait_until(lambda: any(m.header.stamp.sec == 2_000_000_000
                                  for m in candidates.messages), 30.0)
    for sec in (601, 602):
        feeder.send(frames[1], sec)
        assert wait_until(lambda: any(m.header.stamp.sec == sec for m in candidates.messages),
                          30.0), f'normal frame {sec} after the future one was not processed'
    assert wait_until(lambda: problem_total(diagnostics, 'problem:stamp_jump') >= 1, 15.0)
    assert running_node.is_running()


def test_geometry_that_does_not_fit_is_refused(running_node, ros_probe, frames) -> None:
    """Fuzzing faults: a 320x240 CameraInfo beside 640x480 depth was used silently; a 1x1
    label image was stretched into 20 candidates; cx = 1e30 gave a NaN pose, fx = 1e30 an
    OverflowError. Each is now refused with its reason, and nothing is published for it."""
    from seg_perception.nodes.synthetic_camera_node import camera_info_msg
    candidates = ros_probe.subscribe(GraspCandidateArray, 'grasp/candidates', RELIABLE)
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    feeder = GraspFeeder(ros_probe)
    frame = frames[0]
    header = numpy_to_image(frame.labels, 'mono8').header
    small_info = camera_info_msg(frame.K * [[0.5], [0.5], [1]], 320, 240, header)

    def refused(key: str, send) -> None:
        # One at a time: the node's one-slot mailbox keeps only the newest matched set.
        before = problem_total(diagnostics, key)
        send()
        assert wait_until(lambda: problem_total(diagnostics, key) > before, 20.0), key

    refused('problem:bad_input:camera_info_size', lambda: feeder.send(frame, 700,
                                                                      info=small_info))
    refused('problem:bad_input:labels_size',
            lambda: feeder.send(frame, 701, labels=np.full((1, 1), 2, np.uint8)))
    for sec, index in ((702, 2), (703, 0)):
        K = frame.K.copy()
        K[0, index] = 1e30                       # cx, then fx
        info = camera_info_msg(K, 640, 480, header)
        info.p = [0.0] * 12                      # P unset: K is used
        refused('problem:invalid_camera_info', lambda: feeder.send(frame, sec, info=info))
    feeder.send(frame, 704)
    assert stamped(candidates, 704).candidates
    assert not any(m.header.stamp.sec in (700, 701, 702, 703) for m in candidates.messages)
    assert problem_total(diagnostics, 'problem:processing_error') == 0


def test_a_silent_upstream_is_reported_stale(ros_probe, frames) -> None:
    """Fuzzing fault: with segmentation_node killed the node said OK 'running' for ever."""
    from diagnostic_msgs.msg import DiagnosticStatus
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.3, 'stale_after_s': 1.0}
    with NodeProcess(NODE, params=params, remaps={'__ns': '/stale'}) as proc:
        feeder = GraspFeeder(ros_probe, ns='/stale/', with_color=False)
        feeder.send(frames[0], 800)

        def grasp_status():
            for array in reversed(diagnostics.messages):
                for status in array.status:
                    if status.hardware_id.startswith('/stale/') and status.name.endswith(
                            ': grasp'):
                        return status
            return None
        # Inputs go stale one after another (CameraInfo was sent first): wait for the labels.
        assert wait_until(lambda: grasp_status() is not None
                          and grasp_status().level == DiagnosticStatus.STALE
                          and 'no labels for' in grasp_status().message, 30.0)
        assert proc.is_running()
