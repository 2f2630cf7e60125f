"""Watch one live topic for a while: its publishers' QoS, the messages' rate and size.

Used by `seg_perception doctor --topic`. The subscription is raw (serialized bytes, no
decoding), so any message type is measured at its size on the wire, and it takes the
publishers' reliability (qos.publishers_reliability), so it matches every publisher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from seg_perception.bag.msgtypes import message_class
from seg_perception.nodes.qos import publishers_reliability, sensor_qos

#: How long to wait for a first publisher before calling a topic unpublished (a loaded machine
#: can take seconds to discover); the duration is counted from then.
DISCOVERY_S = 10.0


@dataclass(frozen=True)
class PublisherInfo:
    """One publisher of the topic as the ROS graph reports it."""

    node: str  # fully qualified node name
    reliability: str  # 'reliable' | 'best_effort' | other policy names
    durability: str  # 'volatile' | 'transient_local' | ...


@dataclass
class TopicObservation:
    """What `observe_topic` saw: publishers, and each message's arrival time and size."""

    topic: str
    duration_s: float
    types: list[str] = field(default_factory=list)
    publishers: list[PublisherInfo] = field(default_factory=list)
    subscribed_reliability: str | None = None
    arrivals_s: list[float] = field(default_factory=list)  # monotonic seconds
    sizes_bytes: list[int] = field(default_factory=list)


def _policy_name(policy: object) -> str:
    name = getattr(policy, 'name', str(policy))
    return name.lower()


def _publishers(infos: list) -> list[PublisherInfo]:
    return [PublisherInfo(node=(i.node_namespace.rstrip('/') + '/' + i.node_name),
                          reliability=_policy_name(ReliabilityPolicy(i.qos_profile.reliability)),
                          durability=_policy_name(DurabilityPolicy(i.qos_profile.durability)))
            for i in infos]


def observe_topic(topic: str, duration_s: float) -> TopicObservation:
    """Subscribe to `topic` for `duration_s` seconds (after discovery) and report what came.

    Waits up to DISCOVERY_S for a first publisher; without one it returns at once.
    """
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    node = executor = None
    observation = TopicObservation(topic=topic, duration_s=duration_s)
    try:
        node = rclpy.create_node('seg_perception_doctor', context=context,
                                 start_parameter_services=False)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        name = node.resolve_topic_name(topic)
        observation.topic = name
        deadline = time.monotonic() + DISCOVERY_S
        while time.monotonic() < deadline and not node.get_publishers_info_by_topic(name):
            executor.spin_once(timeout_sec=0.05)
        infos = node.get_publishers_info_by_topic(name)
        observation.types = sorted({i.topic_type for i in infos})
        observation.publishers = _publishers(infos)
        if not infos or len(observation.types) != 1:
            return observation
        reliability = publishers_reliability(node, name) or 'best_effort'
        observation.subscribed_reliability = reliability
        lock = threading.Lock()

        def on_message(raw: bytes) -> None:
            with lock:
                observation.arrivals_s.append(time.monotonic())
                observation.sizes_bytes.append(len(raw))
        node.create_subscription(message_class(observation.types[0]), name, on_message,
                                 sensor_qos(reliability, 10), raw=True)
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=min(0.05, max(0.0, end - time.monotonic())))
        # Asked again: a node's name reaches the graph after its endpoints (until then
        # '_NODE_NAME_UNKNOWN_'), and publishers may have come or gone meanwhile.
        observation.publishers = (_publishers(node.get_publishers_info_by_topic(name))
                                  or observation.publishers)
        return observation
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
