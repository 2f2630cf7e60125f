"""seg_interfaces is a real rosidl build: its messages travel between processes over DDS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ros_harness import BUILD_DIR, REPO_ROOT

pytest.importorskip('rclpy', reason='rclpy is not installed')

PUBLISHER = textwrap.dedent("""
    import time
    import rclpy
    from geometry_msgs.msg import Pose
    from seg_interfaces.msg import GraspCandidate, GraspCandidateArray
    rclpy.init()
    node = rclpy.create_node('grasp_array_publisher')
    pub = node.create_publisher(GraspCandidateArray, 'test/candidates', 10)
    msg = GraspCandidateArray()
    msg.header.frame_id = 'camera_color_optical_frame'
    msg.header.stamp.sec = 42
    cand = GraspCandidate(grasp_type='suction', class_id=2, class_name='box', region_id=7,
                          score=0.875, area_m2=0.02, flatness_rms_m=0.001, point_count=1234)
    cand.pose.position.z = 0.8
    cand.pose.orientation.w = 1.0
    cand.extent_m = [0.2, 0.1]
    msg.candidates = [cand]
    deadline = time.monotonic() + 30
    while rclpy.ok() and time.monotonic() < deadline:
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.1)
""")


def test_grasp_candidate_array_crosses_processes(ros_probe) -> None:
    from seg_interfaces.msg import GraspCandidateArray
    got = ros_probe.subscribe(GraspCandidateArray, 'test/candidates')
    log = open(BUILD_DIR / 'test_logs_interfaces.log', 'wb')
    proc = subprocess.Popen([sys.executable, '-c', PUBLISHER], cwd=REPO_ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        msg = got.wait_for(1, timeout_s=20.0)[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert msg.header.frame_id == 'camera_color_optical_frame'
    assert msg.header.stamp.sec == 42
    (cand,) = msg.candidates
    assert (cand.grasp_type, cand.class_name, cand.class_id, cand.region_id) == \
        ('suction', 'box', 2, 7)
    assert cand.score == pytest.approx(0.875)
    assert list(cand.extent_m) == pytest.approx([0.2, 0.1])
    assert cand.point_count == 1234 and cand.pose.position.z == pytest.approx(0.8)


def test_label_info_and_service_types_are_generated() -> None:
    from seg_interfaces.msg import LabelInfo
    from seg_interfaces.srv import GetGraspCandidates
    info = LabelInfo(class_ids=[0, 1], class_names=['background', 'tote'], unlabeled_id=255,
                     model_name='m', input_height=240, input_width=320)
    assert list(info.class_ids) == [0, 1]
    req = GetGraspCandidates.Request(class_names=['box'], max_candidates=3, timeout_s=1.0)
    assert req.max_candidates == 3
    assert hasattr(GetGraspCandidates.Response(), 'candidates')
