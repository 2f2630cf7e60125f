"""grasp_assist_node's container step, in a separate process over real DDS.

Labels are the synthetic ground truth with the tote relabelled 'box': the worst case of a model
that calls bin walls items. The container step must keep every candidate off the tote.
"""

from __future__ import annotations

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ros_harness import NodeProcess, wait_until
from seg_interfaces.msg import GraspCandidateArray
from seg_perception.classes import ClassSet
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

from nodes.grasp_feeder import GraspFeeder, problem_total, RELIABLE  # noqa: I100 (test helper)

pytestmark = pytest.mark.ros

NODE = 'seg_perception.nodes.grasp_assist_node'
CLASSES = ClassSet.default()


@pytest.fixture(scope='module')
def tote_frame():
    cell = SyntheticCell(SyntheticConfig(width=640, height=480))
    return next(f for f in (cell.render(s) for s in range(100000, 100050))
                if f.in_tote and len(f.items) >= 3)


def tote_as_box(frame) -> np.ndarray:
    box, tote = CLASSES.by_name('box').id, CLASSES.by_name('tote').id
    return np.where(frame.labels == tote, box, frame.labels).astype(np.uint8)


def container_status(diagnostics) -> dict[str, str] | None:
    for array in reversed(diagnostics.messages):
        for status in array.status:
            if status.name.endswith(': container'):
                return {'level': status.level, 'message': status.message,
                        **{kv.key: kv.value for kv in status.values}}
    return None


def test_auto_mode_keeps_candidates_off_the_tote(ros_probe, tote_frame) -> None:
    candidates = ros_probe.subscribe(GraspCandidateArray, '/auto/grasp/candidates', RELIABLE)
    markers = ros_probe.subscribe(MarkerArray, '/auto/grasp/markers', RELIABLE)
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5}
    with NodeProcess(NODE, params=params, remaps={'__ns': '/auto'}) as proc:
        feeder = GraspFeeder(ros_probe, ns='/auto/', with_color=False)
        feeder.send(tote_frame, 10, labels=tote_as_box(tote_frame))
        got = candidates.wait_for(1, timeout_s=60.0)[0].candidates
        assert got, 'items in the tote must still get candidates'
        # Every candidate lies on an item: its pose projects onto a pixel of an instance.
        K = tote_frame.K
        for c in got:
            p = c.pose.position
            u = int(round(K[0, 0] * p.x / p.z + K[0, 2]))
            v = int(round(K[1, 1] * p.y / p.z + K[1, 2]))
            assert tote_frame.instances[v, u] > 0, f'candidate at ({u}, {v}) is on the tote'
        marker_sets = markers.wait_for(1, timeout_s=30.0)
        assert any(m.ns == 'container' for m in marker_sets[0].markers)
        assert wait_until(lambda: (container_status(diagnostics) or {}).get('found') == 'True',
                          30.0)
        status = container_status(diagnostics)
        assert int(status['removed_pixels']) > 1000 and status['level'] == DiagnosticStatus.OK
        assert float(status['floor_residual_m']) < 0.01
        assert status['floor_bend_m'] != 'none', 'auto fits the floor with its bend'
        assert proc.is_running()


def test_no_container_and_invalid_depth_are_said_and_counted(ros_probe, tote_frame) -> None:
    """All-NaN depth: no container (counted, said once), empty results, node keeps going."""
    import dataclasses
    candidates = ros_probe.subscribe(GraspCandidateArray, '/nocont/grasp/candidates', RELIABLE)
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5}
    with NodeProcess(NODE, params=params, remaps={'__ns': '/nocont'}) as proc:
        feeder = GraspFeeder(ros_probe, ns='/nocont/', with_color=False)
        nan = dataclasses.replace(tote_frame, depth_m=np.full_like(tote_frame.depth_m, np.nan))
        for sec in (20, 21):
            feeder.send(nan, sec)
            candidates.wait_for(sec - 19, timeout_s=60.0)
        assert all(not m.candidates for m in candidates.messages)
        assert wait_until(lambda: problem_total(diagnostics, 'problem:no_container') >= 2, 30.0)
        status = container_status(diagnostics)
        assert status['found'] == 'False' and 'too few valid depth points' in status['reason']
        assert proc.output.count('no container in this depth frame') == 1
        # The next real frame finds the tote again.
        feeder.send(tote_frame, 22, labels=tote_as_box(tote_frame))
        assert wait_until(lambda: (container_status(diagnostics) or {}).get('found') == 'True',
                          30.0)
        assert proc.is_running()


def test_reference_file_of_another_size_is_refused_with_the_reason(ros_probe, tote_frame,
                                                                   tmp_path) -> None:
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    small = tmp_path / 'empty_320x240.npy'
    np.save(small, tote_frame.depth_m[::2, ::2].copy())
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5,
              'container_mode': 'reference', 'container_reference_file': str(small)}
    with NodeProcess(NODE, params=params, remaps={'__ns': '/refsize'}) as proc:
        feeder = GraspFeeder(ros_probe, ns='/refsize/', with_color=False)
        feeder.send(tote_frame, 30)
        assert wait_until(lambda: problem_total(
            diagnostics, 'problem:container_reference_refused') >= 1, 60.0)
        assert 'reference depth is 320x240, the depth images are 640x480' in proc.output
        assert proc.is_running()


def test_reference_file_of_another_encoding_stops_start_up(tmp_path, tote_frame) -> None:
    colour = tmp_path / 'colour.png'
    cv2.imwrite(str(colour), tote_frame.rgb)
    params = {'container_mode': 'reference', 'container_reference_file': str(colour)}
    with NodeProcess(NODE, params=params) as proc:
        assert proc.wait(timeout_s=60.0) != 0
        assert 'single-channel uint16 PNG' in proc.output and 'Traceback' not in proc.output


def test_reference_captured_by_service(ros_probe, tote_frame) -> None:
    """capture_container_reference takes the next depth frame as the empty container."""
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    candidates = ros_probe.subscribe(GraspCandidateArray, '/capture/grasp/candidates', RELIABLE)
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5,
              'container_mode': 'reference'}
    with NodeProcess(NODE, params=params, remaps={'__ns': '/capture'}) as proc:
        feeder = GraspFeeder(ros_probe, ns='/capture/', with_color=False)
        client = ros_probe.node.create_client(Trigger,
                                              '/capture/grasp/capture_container_reference')
        assert client.wait_for_service(timeout_sec=30.0)
        future = client.call_async(Trigger.Request())
        sec = 40
        while not future.done() and sec < 80:     # frames until the request has been served
            feeder.send(tote_frame, sec)
            sec += 1
            wait_until(future.done, 0.5)
        assert future.done() and future.result().success, future.result()
        assert 'reference container' in future.result().message
        # The captured frame is its own empty container: nothing of it is graspable.
        feeder.send(tote_frame, sec + 1, labels=tote_as_box(tote_frame))
        assert wait_until(lambda: any(m.header.stamp.sec == sec + 1
                                      for m in candidates.messages), 30.0)
        last = [m for m in candidates.messages if m.header.stamp.sec == sec + 1][-1]
        assert not last.candidates
        assert wait_until(lambda: (container_status(diagnostics) or {}).get('reason')
                          == 'reference', 30.0)
        assert proc.is_running()
