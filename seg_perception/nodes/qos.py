"""QoS profiles from parameters: REP 2003 defaults, changeable by the user."""

from __future__ import annotations

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)

RELIABILITY = {'reliable': ReliabilityPolicy.RELIABLE,
               'best_effort': ReliabilityPolicy.BEST_EFFORT}


def sensor_qos(reliability: str = 'best_effort', depth: int = 1) -> QoSProfile:
    """Return a QoS for sensor streams (REP 2003: best effort, keep last) with a small queue.

    A depth of 1 keeps only the newest frame, so a slow consumer never builds a backlog.
    """
    if reliability not in RELIABILITY:
        raise ValueError(f'QoS reliability {reliability!r} is not one of {sorted(RELIABILITY)}')
    if depth < 1:
        raise ValueError(f'QoS depth must be >= 1, got {depth}')
    profile = QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                         reliability=RELIABILITY[reliability],
                         durability=qos_profile_sensor_data.durability)
    return profile


def latched_qos() -> QoSProfile:
    """Return a transient-local, reliable QoS so late subscribers get the last message."""
    return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
