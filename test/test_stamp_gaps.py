"""Tests of StampGaps: frames lost in transport estimated from a camera's header stamps."""

from __future__ import annotations

import numpy as np

from seg_perception.monitoring import StampGaps

PERIOD_NS = 100_000_000  # 10 Hz


def test_a_steady_camera_loses_nothing():
    gaps = StampGaps()
    for k in range(50):
        gaps.add(1_000 * PERIOD_NS + k * PERIOD_NS + (k % 3) * 1_000_000)  # 1 ms jitter
    assert gaps.lost == 0 and gaps.lost_share() == 0.0


def test_random_transport_loss_is_estimated_within_a_few_percent():
    """UDP fragment loss is random: 46 % of a 10 Hz camera's frames, as measured here."""
    rng = np.random.default_rng(0)
    arrived = rng.random(600) > 0.46
    gaps = StampGaps()
    for k in np.flatnonzero(arrived):
        gaps.add(int(k) * PERIOD_NS)
    true_share = 1 - arrived[:np.flatnonzero(arrived)[-1] + 1].mean()
    assert abs(gaps.lost_share() - true_share) < 0.05, (gaps.lost_share(), true_share)


def test_a_camera_at_another_rate_is_not_a_lossy_one():
    """A steady 5 Hz camera is 5 Hz, not a 10 Hz one that loses every other frame."""
    gaps = StampGaps()
    for k in range(0, 200, 2):
        gaps.add(k * PERIOD_NS)
    assert gaps.lost == 0


def test_irregular_losses_are_counted_per_missing_frame():
    gaps = StampGaps()
    for k in range(10):
        gaps.add(k * PERIOD_NS)
    gaps.add(13 * PERIOD_NS)  # frames 10, 11, 12 lost
    gaps.add(14 * PERIOD_NS)
    assert gaps.lost == 3 and gaps.seen == 12


def test_clock_jumps_and_loops_are_not_losses():
    gaps = StampGaps()
    for k in range(10):
        gaps.add(k * PERIOD_NS)
    gaps.add(0)                     # a bag loop restarting
    gaps.add(10_000 * PERIOD_NS)    # an NTP step forward
    gaps.add(10_001 * PERIOD_NS)
    assert gaps.lost == 0
