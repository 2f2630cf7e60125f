"""grasp_assist_node publishing in a robot frame (target_frame) over DDS, vs the camera frame."""

from __future__ import annotations

from geometry_msgs.msg import PoseArray
import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from ros_harness import NodeProcess, wait_until
from seg_interfaces.msg import GraspCandidateArray
from seg_interfaces.srv import GetGraspCandidates
from seg_perception.conversions import pointcloud2_to_array
from seg_perception.grasp.frames import quaternion_multiply, quaternion_to_matrix, RigidTransform
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

from nodes.grasp_feeder import GraspFeeder, problem_total, RELIABLE  # noqa: I100 (test helpers)
from nodes.parameter_client import ParameterClient, stamped

pytestmark = pytest.mark.ros

NODE = 'seg_perception.nodes.grasp_assist_node'
OPTICAL = 'camera_color_optical_frame'
#: A camera 1.2 m above the base, looking down (180 degrees about x), turned 90 degrees about z.
TRANSLATION_M = (0.4, -0.1, 1.2)
QUATERNION = tuple(float(v) for v in quaternion_multiply((0.0, 0.0, 0.5 ** 0.5, 0.5 ** 0.5),
                                                         (1.0, 0.0, 0.0, 0.0)))
BASE_FROM_CAMERA = RigidTransform.from_pose(TRANSLATION_M, QUATERNION)


def outputs(probe, ns: str) -> dict:
    return {name: probe.subscribe(msg_type, f'{ns}/grasp/{name}', RELIABLE)
            for name, msg_type in (('candidates', GraspCandidateArray),
                                   ('candidate_poses', PoseArray),
                                   ('graspable_points', PointCloud2), ('markers', MarkerArray))}


def xyz(msg) -> np.ndarray:
    points = pointcloud2_to_array(msg)
    return np.stack([points['x'], points['y'], points['z']], axis=-1).astype(np.float64)


def pose_parts(pose) -> tuple[np.ndarray, np.ndarray]:
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z]), quaternion_to_matrix((q.x, q.y, q.z, q.w))


@pytest.fixture(scope='module')
def frame():
    return SyntheticCell(SyntheticConfig(width=640, height=480)).render(seed=13)


def test_outputs_in_base_link_are_the_camera_frame_ones_transformed(ros_probe, frame) -> None:
    common = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5}
    base_params = {**common, 'target_frame': 'base_link',
                   'base_from_camera': [*TRANSLATION_M, *QUATERNION]}
    optical, base = outputs(ros_probe, '/optical'), outputs(ros_probe, '/base')
    with NodeProcess(NODE, params=common, remaps={'__ns': '/optical'}), \
            NodeProcess(NODE, params=base_params, remaps={'__ns': '/base'}) as base_node:
        for ns in ('/optical/', '/base/'):
            GraspFeeder(ros_probe, ns=ns, with_color=False).send(frame, 50)
        got = {name: (stamped(optical[name], 50, 60.0), stamped(base[name], 50, 60.0))
               for name in optical}
        cam, rob = got['candidates']
        assert cam.header.frame_id == OPTICAL and rob.header.frame_id == 'base_link'
        assert len(cam.candidates) == len(rob.candidates) > 0
        rotation, translation = BASE_FROM_CAMERA.rotation, np.array(TRANSLATION_M)
        for c, r in zip(cam.candidates, rob.candidates):
            (pc, rc), (pr, rr) = pose_parts(c.pose), pose_parts(r.pose)
            np.testing.assert_allclose(pr, rotation @ pc + translation, atol=1e-6)
            np.testing.assert_allclose(rr, rotation @ rc, atol=1e-6)
            assert (r.class_name, r.score, r.grasp_type) == (c.class_name, c.score, c.grasp_type)
            # Items lie below the camera and face up in the base frame.
            assert pr[2] < TRANSLATION_M[2] and rr[2, 2] > 0.5
        cam_poses, rob_poses = got['candidate_poses']
        assert rob_poses.header.frame_id == 'base_link'
        for c, r in zip(cam_poses.poses, rob_poses.poses):
            np.testing.assert_allclose(pose_parts(r)[0], rotation @ pose_parts(c)[0]
                                       + translation, atol=1e-6)
        cam_cloud, rob_cloud = got['graspable_points']
        assert rob_cloud.header.frame_id == 'base_link'
        np.testing.assert_allclose(xyz(rob_cloud), BASE_FROM_CAMERA.apply_points(xyz(cam_cloud)),
                                   atol=2e-5)
        # Hand-computed: a point 1 m in front of the camera's centre is 0.2 m above the base.
        np.testing.assert_allclose(BASE_FROM_CAMERA.apply_points(np.array([[0.0, 0.0, 1.0]])),
                                   [[0.4, -0.1, 0.2]], atol=1e-12)
        cam_markers, rob_markers = got['markers']
        assert {m.header.frame_id for m in rob_markers.markers} == {'base_link'}
        for c, r in zip(cam_markers.markers, rob_markers.markers):
            assert (c.ns, c.id) == (r.ns, r.id)
            for pc, pr in zip(c.points, r.points):
                np.testing.assert_allclose([pr.x, pr.y, pr.z], rotation @ [pc.x, pc.y, pc.z]
                                           + translation, atol=1e-5)
        # The service answers in the target frame as well.
        client = ros_probe.node.create_client(GetGraspCandidates,
                                              '/base/grasp/get_grasp_candidates')
        assert client.wait_for_service(timeout_sec=30.0)
        future = client.call_async(GetGraspCandidates.Request(max_candidates=1, timeout_s=5.0))
        assert wait_until(future.done, 20.0)
        assert future.result().candidates.header.frame_id == 'base_link'
        # Back to the optical frame at runtime, from the next frame on.
        params = ParameterClient(ros_probe, '/base/grasp_assist_node')
        assert params.set_value('target_frame', '').successful
        GraspFeeder(ros_probe, ns='/base/', with_color=False).send(frame, 51)
        assert stamped(base['candidates'], 51).header.frame_id == OPTICAL
        assert base_node.is_running()


def test_tf2_transform_at_the_frame_stamp(ros_probe, frame) -> None:
    """With tf2 (a ROS install): the transform from /tf_static; an unknown frame is counted."""
    tf2_ros = pytest.importorskip(
        'tf2_ros', reason='tf2_ros is not importable here (ROS PyPI wheels without tf2): the '
        'static base_from_camera path is tested instead')
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import TransformStamped
    broadcaster = tf2_ros.StaticTransformBroadcaster(ros_probe.node)
    tf = TransformStamped()
    tf.header.frame_id, tf.child_frame_id = 'base_link', OPTICAL
    t, q = tf.transform.translation, tf.transform.rotation
    t.x, t.y, t.z = TRANSLATION_M
    q.x, q.y, q.z, q.w = QUATERNION
    broadcaster.sendTransform(tf)
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5,
              'target_frame': 'base_link', 'tf_timeout_s': 0.5}
    with NodeProcess(NODE, params=params, remaps={'__ns': '/tf'}) as proc:
        got = outputs(ros_probe, '/tf')['candidates']
        feeder = GraspFeeder(ros_probe, ns='/tf/', with_color=False)
        feeder.send(frame, 60)
        msg = stamped(got, 60, 60.0)
        assert msg.header.frame_id == 'base_link' and msg.candidates
        assert all(c.pose.position.z < TRANSLATION_M[2] for c in msg.candidates)
        params_client = ParameterClient(ros_probe, '/tf/grasp_assist_node')
        assert params_client.set_value('target_frame', 'nowhere').successful
        feeder.send(frame, 61)
        assert wait_until(lambda: problem_total(diagnostics, 'problem:tf_unavailable') >= 1,
                          20.0), proc.output
        assert all(m.header.stamp.sec != 61 for m in got.messages)
        assert proc.is_running()


def test_a_bad_extrinsic_stops_the_node_at_start_up_with_the_reason() -> None:
    params = {'target_frame': 'base_link', 'base_from_camera': [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]}
    with NodeProcess(NODE, params=params, remaps={'__ns': '/bad_extrinsic'}) as proc:
        assert proc.wait(timeout_s=60.0) != 0
        assert 'base_from_camera' in proc.output and 'norm' in proc.output
        assert 'Traceback' not in proc.output
