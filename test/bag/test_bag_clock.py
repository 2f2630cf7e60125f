"""Tests of `bag_player --clock`: a use_sim_time node lives in the bag's time, not wall time."""

from __future__ import annotations

from pathlib import Path
import time

import numpy as np
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from ros_harness import NodeProcess, wait_until
from seg_perception.bag import BagWriter, default_typestore
from seg_perception.bag.messages import image_message
from seg_perception.bag.playback import PlaybackClock
from seg_perception.nodes import bag_player

#: the bag's first log time: 5 s, far from any wall clock
FIRST_NS = 5_000_000_000
STEP_NS = 200_000_000
COUNT = 11  # 2 s of bag time


def _write_bag(path: Path) -> Path:
    typestore = default_typestore()
    with BagWriter(path, typestore=typestore) as writer:
        for i in range(COUNT):
            stamp_ns = FIRST_NS + i * STEP_NS
            writer.write('/clock_test/image', stamp_ns, image_message(
                typestore, np.full((2, 2), i, np.uint8), 'mono8', stamp_ns, 'cam'))
    return path


def test_playback_clock_runs_at_the_rate_from_the_first_message():
    now = [100.0]
    clock = PlaybackClock(rate=2.0, now_s=lambda: now[0], sleep_s=lambda s: None)
    assert clock.bag_time_ns() is None  # nothing published before playback starts
    clock.deadline_s(FIRST_NS)
    now[0] += 0.25
    assert clock.bag_time_ns() == FIRST_NS + 500_000_000  # 0.25 s wall at rate 2
    clock.next_pass(1_000_000_000)  # the next loop pass starts at 100.5 s wall
    assert clock.bag_time_ns() == FIRST_NS  # held at the start until then, never before it
    now[0] += 0.5
    assert clock.bag_time_ns() == FIRST_NS + 500_000_000


def test_clock_options_are_checked(tmp_path, capsys):
    assert bag_player.main([str(_write_bag(tmp_path / 'bag')), '--clock', '--clock-hz', '0']) == 1
    assert '--clock-hz > 0' in capsys.readouterr().err


def test_sim_time_node_follows_the_bag_clock(tmp_path, ros_probe):
    bag = _write_bag(tmp_path / 'bag')
    node = ros_probe.node
    clocks = ros_probe.subscribe(Clock, '/clock', QoSProfile(
        depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    node.set_parameters([Parameter('use_sim_time', Parameter.Type.BOOL, True)])
    assert node.get_clock().now().nanoseconds == 0  # sim time, no /clock yet

    def sim_ns() -> int:
        return node.get_clock().now().nanoseconds

    with NodeProcess('seg_perception.nodes.bag_player',
                     args=[str(bag), '--clock', '--clock-hz', '50', '--loop',
                           '--no-progress']) as player:
        assert wait_until(lambda: sim_ns() > 0, 30.0), player.output
        first = sim_ns()
        wall_first = time.monotonic()
        assert FIRST_NS <= first <= FIRST_NS + 2 * COUNT * STEP_NS, first
        assert wait_until(lambda: sim_ns() > first + 300_000_000, 10.0), player.output
        elapsed_ns = sim_ns() - first
        wall_ns = (time.monotonic() - wall_first) * 1e9
        assert player.stop() == 0, player.output
    # bag time runs at rate 1 (within the 20 ms clock period and scheduling jitter), and the
    # node never saw wall time
    assert abs(elapsed_ns - wall_ns) < 150_000_000, (elapsed_ns, wall_ns)
    stamps = [c.clock.sec * 1_000_000_000 + c.clock.nanosec for c in clocks.wait_for(1, 5.0)]
    assert stamps and all(FIRST_NS <= s < FIRST_NS + 4 * COUNT * STEP_NS for s in stamps)
