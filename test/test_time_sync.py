"""Tests for the ROS-free approximate time synchroniser."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from seg_perception.time_sync import ApproximateTimeSynchronizer, stamp_ns, TimeSyncError

MS = 1_000_000


def _sync(num_inputs: int = 2, queue_size: int = 10, slop_ns: int = 0):
    sets: list[tuple] = []
    sync = ApproximateTimeSynchronizer(num_inputs=num_inputs, queue_size=queue_size,
                                       slop_ns=slop_ns, callback=lambda *m: sets.append(m))
    return sync, sets


def test_exact_sync_with_zero_slop():
    sync, sets = _sync(num_inputs=3)
    assert not sync.add(0, 100, 'rgb@100')
    assert not sync.add(1, 100, 'depth@100')
    assert not sync.add(1, 101, 'depth@101')
    assert sync.add(2, 100, 'info@100')
    assert sets == [('rgb@100', 'depth@100', 'info@100')]
    assert sync.emitted == 1 and sync.dropped == [0, 0, 0]


def test_approximate_sync_within_slop_picks_closest():
    sync, sets = _sync(slop_ns=10 * MS)
    sync.add(0, 100 * MS, 'rgb@100')
    sync.add(1, 95 * MS, 'depth@95')
    assert sets == [('rgb@100', 'depth@95')]
    sync.add(1, 140 * MS, 'depth@140')
    sync.add(1, 131 * MS, 'depth@131')
    sync.add(0, 133 * MS, 'rgb@133')
    assert sets[-1] == ('rgb@133', 'depth@131')


def test_boundary_of_slop_is_inclusive():
    sync, sets = _sync(slop_ns=5)
    sync.add(0, 100, 'a')
    sync.add(1, 105, 'b')
    assert sets == [('a', 'b')]


def test_no_sync_beyond_slop():
    sync, sets = _sync(slop_ns=10 * MS)
    sync.add(0, 100 * MS, 'rgb@100')
    sync.add(1, 111 * MS, 'depth@111')
    sync.add(1, 89 * MS, 'depth@89')
    assert sets == [] and sync.emitted == 0
    assert sync.queued(0) == 1 and sync.queued(1) == 2


def test_all_pairs_must_be_within_slop():
    sync, sets = _sync(num_inputs=3, slop_ns=10)
    sync.add(0, 100, 'a')
    sync.add(1, 92, 'b')      # within 10 of a
    sync.add(2, 108, 'c')     # within 10 of a, but 16 from b
    assert sets == []
    sync.add(1, 101, 'b2')
    assert sets == [('a', 'b2', 'c')]
    assert sync.dropped == [0, 1, 0]  # b (older than the emitted b2) is dropped


def test_queue_is_bounded_and_overflow_counts_as_dropped():
    sync, sets = _sync(queue_size=3)
    for stamp in range(10):
        sync.add(0, stamp, f'a{stamp}')
    assert sync.queued(0) == 3 and sync.dropped[0] == 7
    assert sync.add(1, 8, 'b8')
    assert sets == [('a8', 'b8')]
    assert sync.dropped == [8, 0] and sync.queued(0) == 1  # a7 dropped, a9 waits


def test_late_and_duplicate_messages_are_dropped():
    sync, sets = _sync()
    sync.add(0, 50, 'a50')
    sync.add(1, 50, 'b50')
    assert sync.add(0, 40, 'a40-late') is False
    assert sync.add(0, 50, 'a50-again') is False
    sync.add(1, 60, 'b60')
    sync.add(1, 60, 'b60-new')  # same stamp twice: the newer replaces the older
    sync.add(0, 60, 'a60')
    assert sets == [('a50', 'b50'), ('a60', 'b60-new')]
    assert sync.dropped == [2, 1]


def test_out_of_order_arrival_within_a_queue():
    sync, sets = _sync(slop_ns=2)
    sync.add(0, 300, 'a300')
    sync.add(0, 100, 'a100')
    sync.add(0, 200, 'a200')
    sync.add(1, 201, 'b201')
    assert sets == [('a200', 'b201')]
    assert sync.dropped == [1, 0]  # a100 can no longer be matched in order
    sync.add(1, 299, 'b299')
    assert sets[-1] == ('a300', 'b299')


def test_concurrent_adds_emit_each_pair_once():
    sync, sets = _sync(queue_size=1000)
    count = 500

    def feed(index: int) -> None:
        for stamp in range(count):
            sync.add(index, stamp, (index, stamp))

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sync.emitted == len(sets)
    assert all(a[1] == b[1] for a, b in sets)
    assert sync.emitted + max(sync.dropped) <= count
    assert sync.emitted + sync.dropped[0] + sync.queued(0) == count


@pytest.mark.parametrize('kwargs,match', [
    ({'num_inputs': 1}, 'num_inputs'), ({'queue_size': 0}, 'queue_size'),
    ({'slop_ns': -1}, 'slop_ns'), ({'callback': None}, 'callback')])
def test_invalid_settings_are_rejected(kwargs, match):
    settings = {'num_inputs': 2, 'queue_size': 5, 'slop_ns': 0, 'callback': print, **kwargs}
    with pytest.raises(TimeSyncError, match=match):
        ApproximateTimeSynchronizer(**settings)
    sync, _ = _sync()
    with pytest.raises(TimeSyncError, match='input_index 2'):
        sync.add(2, 0, None)


def test_stamp_ns_reads_a_header_stamp_as_nanoseconds():
    stamp = SimpleNamespace(sec=1_795_000_000, nanosec=999_999_999)
    assert stamp_ns(SimpleNamespace(header=SimpleNamespace(stamp=stamp))) == \
        1_795_000_000_999_999_999


SECOND = 1_000_000_000


def _jump_sync() -> tuple[ApproximateTimeSynchronizer, list[tuple]]:
    sets: list[tuple] = []
    sync = ApproximateTimeSynchronizer(num_inputs=2, queue_size=10, slop_ns=0,
                                       callback=lambda *m: sets.append(m),
                                       max_jump_ns=5 * SECOND)
    return sync, sets


def test_one_frame_from_the_far_future_does_not_stop_the_synchronizer():
    """The fuzzing fault: after a set stamped sec = 2e9, every normal set was 'too late'."""
    sync, sets = _jump_sync()
    for sec in (10, 11):
        sync.add(0, sec * SECOND, f'a{sec}')
        sync.add(1, sec * SECOND, f'b{sec}')
    future = 2_000_000_000 * SECOND
    sync.add(0, future, 'a_future')
    sync.add(1, future, 'b_future')
    for sec in (12, 13):
        sync.add(0, sec * SECOND, f'a{sec}')
        sync.add(1, sec * SECOND, f'b{sec}')
    assert sets[-2:] == [('a12', 'b12'), ('a13', 'b13')]
    assert sync.stamp_jumps == 2     # forward, then back


def test_backward_clock_jump_and_looping_bag_reset_the_synchronizer():
    sync, sets = _jump_sync()
    for loop in range(3):            # a bag replayed in a loop: stamps restart at 100 s
        for sec in range(100, 110):
            sync.add(0, sec * SECOND, (loop, sec))
            sync.add(1, sec * SECOND, (loop, sec))
    assert len(sets) == 30 and sync.stamp_jumps == 2
    # Without the limit the second and third loops are dropped as late.
    old_sets: list[tuple] = []
    old = ApproximateTimeSynchronizer(num_inputs=2, queue_size=10, slop_ns=0,
                                      callback=lambda *m: old_sets.append(m))
    for loop in range(3):
        for sec in range(100, 110):
            old.add(0, sec * SECOND, (loop, sec))
            old.add(1, sec * SECOND, (loop, sec))
    assert len(old_sets) == 10


def test_small_jumps_are_not_resets():
    sync, sets = _jump_sync()
    sync.add(0, 10 * SECOND, 'a')
    sync.add(0, 14 * SECOND, 'a2')
    sync.add(1, 14 * SECOND, 'b2')
    assert sets == [('a2', 'b2')] and sync.stamp_jumps == 0


def test_max_jump_must_exceed_the_slop():
    with pytest.raises(TimeSyncError, match='max_jump_ns'):
        ApproximateTimeSynchronizer(num_inputs=2, queue_size=2, slop_ns=10,
                                    callback=print, max_jump_ns=10)


def test_a_straggler_from_before_a_jump_does_not_reset_again():
    """After a jump to a new epoch, one late message of the old one is dropped, not a reset
    that would throw away the new epoch's half-matched set."""
    sync, sets = _jump_sync()
    sync.add(0, 10 * SECOND, 'a10')
    sync.add(1, 10 * SECOND, 'b10')
    sync.add(0, 100 * SECOND, 'a100')       # new epoch: held ...
    sync.add(1, 100 * SECOND, 'b100')       # ... confirmed, and matched
    sync.add(0, 101 * SECOND, 'a101')
    sync.add(1, 11 * SECOND, 'b11_late')   # straggler of the old epoch
    sync.add(1, 101 * SECOND, 'b101')
    assert sets == [('a10', 'b10'), ('a100', 'b100'), ('a101', 'b101')]
    assert sync.stamp_jumps == 1
