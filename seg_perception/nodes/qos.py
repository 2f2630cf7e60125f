"""QoS profiles from parameters: REP 2003 defaults, changeable by the user."""

from __future__ import annotations

from typing import Any, Callable

from rclpy.node import Node
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


#: Input reliability choices of the nodes: 'auto' follows the publishers of the topic.
INPUT_RELIABILITIES = ('auto', 'best_effort', 'reliable')


def publishers_reliability(node: Node, topic: str) -> str | None:
    """Return the reliability a subscriber of `topic` should use, None without publishers.

    'reliable' when every publisher is reliable, 'best_effort' when one is not (rosbag2's rule:
    a reliable subscriber would not match a best-effort publisher, and a best-effort one loses a
    reliable camera's large frames).
    """
    infos = node.get_publishers_info_by_topic(node.resolve_topic_name(topic))
    if not infos:
        return None
    reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    return 'reliable' if reliable else 'best_effort'


class FollowingSubscription:
    """A sensor subscription whose reliability follows the topic's publishers ('auto').

    With stock Fast DDS a 640x480 frame travels over UDP in fragments: a best-effort subscriber
    of a reliable camera loses about half the frames, a reliable one none. 'auto' subscribes with
    the publishers' reliability, re-checks every `check_period_s` (publishers come and go) and
    recreates the subscription when the answer changes; with no publisher yet it is best effort.
    'reliable' and 'best_effort' are fixed.
    """

    def __init__(self, node: Node, msg_type: Any, topic: str, callback: Callable[[Any], None],
                 *, reliability: str, depth: int, raw: bool = False,
                 check_period_s: float = 1.0,
                 on_change: Callable[[str, str], None] | None = None) -> None:
        if reliability not in INPUT_RELIABILITIES:
            raise ValueError(f'QoS reliability {reliability!r} is not one of '
                             f'{list(INPUT_RELIABILITIES)}')
        self._node, self._type, self.topic, self._callback = node, msg_type, topic, callback
        self.choice, self._depth, self._raw, self._on_change = reliability, depth, raw, on_change
        self.current = self._wanted()
        self.subscription = self._create(self.current)
        self.timer = (node.create_timer(check_period_s, self._check)
                      if reliability == 'auto' else None)

    def _wanted(self) -> str:
        if self.choice != 'auto':
            return self.choice
        return publishers_reliability(self._node, self.topic) or 'best_effort'

    def _create(self, reliability: str) -> Any:
        return self._node.create_subscription(self._type, self.topic, self._callback,
                                              sensor_qos(reliability, self._depth),
                                              raw=self._raw)

    def _check(self) -> None:
        wanted = self._wanted()
        if wanted == self.current:
            return
        self._node.destroy_subscription(self.subscription)
        self.subscription = self._create(wanted)
        previous, self.current = self.current, wanted
        if self._on_change is not None:
            self._on_change(previous, wanted)

    def destroy(self) -> None:
        """Destroy the subscription and its timer."""
        if self.timer is not None:
            self._node.destroy_timer(self.timer)
        self._node.destroy_subscription(self.subscription)
