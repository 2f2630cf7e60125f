"""grasp_assist_node's runtime parameters over DDS: applied between frames, or refused with why."""

from __future__ import annotations

import math

import pytest
from rclpy.parameter import Parameter

from ros_harness import NodeProcess, wait_until
from seg_interfaces.msg import GraspCandidateArray
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

from nodes.grasp_feeder import GraspFeeder, RELIABLE  # noqa: I100 (test helpers)
from nodes.parameter_client import assert_refused, ParameterClient, stamped

pytestmark = pytest.mark.ros

NODE = 'seg_perception.nodes.grasp_assist_node'
NS = '/runtime_params'


@pytest.fixture(scope='module')
def frame():
    return SyntheticCell(SyntheticConfig(width=640, height=480)).render(seed=12)


@pytest.fixture(scope='module')
def running_node():
    params = {'qos_reliability': 'reliable', 'diagnostics_period_s': 0.5}
    with NodeProcess(NODE, params=params, remaps={'__ns': NS}) as proc:
        yield proc


@pytest.fixture
def client(running_node, ros_probe) -> ParameterClient:
    return ParameterClient(ros_probe, f'{NS}/grasp_assist_node')


@pytest.mark.parametrize('name, value, reason', [
    ('max_candidates', -5, 'max_candidates'),
    ('min_score', 5.0, 'min_score'),
    ('plane_fit', 'bogus', 'plane_fit'),
    ('graspable_classes', ['unicorn'], 'unicorn'),
    ('graspable_classes', ['box', 'box'], 'more than once'),
    ('min_score', math.nan, 'finite'),
    ('cup_radius_m', math.inf, 'finite'),
    ('workspace_min', [0.0, math.nan, 0.0], 'finite'),
    ('min_score', 5, 'type'),                       # an integer for a double: rclpy refuses it
    ('grasp_modes', ['box=teleport'], 'teleport'),
    ('base_from_camera', [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0], 'norm'),
    ('base_from_camera', [0.0, 0.0, 1.0], '7 numbers'),
    ('max_stamp_jump_s', 0.0, 'max_stamp_jump_s'),
    ('stale_after_s', -1.0, 'stale_after_s'),
    ('container_mode', 'magic', 'magic'),
    ('container_floor_bend', 1, 'type'),            # an integer for a bool
    ('target_frame', '/base_link', 'leading /'),
    ('depth_topic', 'other/depth', 'restart'),
    ('qos_reliability', 'best_effort', 'restart'),
    ('output_namespace', 'elsewhere', 'restart'),
])
def test_bad_or_fixed_values_are_refused_with_a_reason(client, running_node, name, value,
                                                       reason) -> None:
    assert_refused(client, running_node, name, value, reason)


def test_target_frame_without_an_extrinsic_needs_tf2(client) -> None:
    from seg_perception.nodes.grasp_assist_node import tf2_ros
    if tf2_ros is not None:
        pytest.skip('tf2_ros is importable: target_frame alone is accepted (tf2 lookups)')
    result = client.set_value('target_frame', 'base_link')
    assert not result.successful and 'base_from_camera' in result.reason, result.reason


def test_good_values_take_effect_on_the_next_frame(client, running_node, ros_probe,
                                                   frame) -> None:
    candidates = ros_probe.subscribe(GraspCandidateArray, f'{NS}/grasp/candidates', RELIABLE)
    feeder = GraspFeeder(ros_probe, ns=f'{NS}/', with_color=False)
    feeder.send(frame, 10)
    before = stamped(candidates, 10).candidates
    assert len(before) > 1 and len({c.class_name for c in before}) > 1
    ok = client.set_value('max_candidates', 1)
    assert ok.successful, ok.reason
    assert client.value('max_candidates') == 1
    feeder.send(frame, 11)
    assert len(stamped(candidates, 11).candidates) == 1
    # The class list: only boxes now, then back; the grasp service follows it as well.
    kept = before[0].class_name
    assert client.set_value('max_candidates', 20).successful
    assert client.set_value('graspable_classes', [kept]).successful
    feeder.send(frame, 12)
    got = stamped(candidates, 12).candidates
    assert got and {c.class_name for c in got} == {kept}
    # A stricter score floor drops the weaker candidates.
    floor = sorted(c.score for c in before)[len(before) // 2]
    everything = ['box', 'polybag', 'envelope', 'cylinder']
    assert client.set_value('graspable_classes', everything).successful
    assert client.set_value('min_score', float(floor)).successful
    feeder.send(frame, 13)
    got = stamped(candidates, 13).candidates
    assert got and min(c.score for c in got) >= floor and len(got) < len(before)
    assert client.set_value('min_score', 0.1).successful
    # The container step's floor model: a plane, then the bent floor again.
    assert client.set_value('container_floor_bend', False).successful
    assert client.value('container_floor_bend') is False
    feeder.send(frame, 14)
    assert stamped(candidates, 14).candidates
    assert client.set_value('container_floor_bend', True).successful
    assert running_node.is_running()
    assert 'parameters changed: min_score' in running_node.output


def test_several_parameters_change_together_or_not_at_all(client) -> None:
    """A set-parameters call is atomic: one bad value refuses the good ones beside it."""
    future = client.client.set_parameters_atomically([
        Parameter('max_candidates', value=3), Parameter('plane_fit', value='bogus')])
    assert wait_until(future.done, 20.0)
    assert not future.result().result.successful
    assert client.value('max_candidates') != 3
