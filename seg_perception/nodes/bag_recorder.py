"""`bag_recorder`: record ROS 2 topics, serialized as they arrive, into an MCAP rosbag2.

Subscriptions are raw (no decoding); types come from the ROS graph. SIGINT and SIGTERM end the
recording and the bag is finalised, so it stays readable. The bag logic lives in
seg_perception.bag.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Sequence

import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from seg_perception.bag.msgtypes import message_class
from seg_perception.bag.reader import BagError
from seg_perception.bag.writer import BagWriter
from seg_perception.nodes.bag_player import split_ros_args
from seg_perception.stop_signals import StopSignals

PROG = 'bag_recorder'
#: how long to keep taking queued messages after a stop request
DRAIN_S = 0.3


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument('topics', nargs='+', metavar='TOPIC', help='topics to record')
    parser.add_argument('-o', '--out', required=True, help='bag folder to create')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--timeout', type=float, default=10.0, metavar='SECONDS',
                        help='how long to wait for the topics to appear (default 10)')
    parser.add_argument('--duration', type=float, default=0.0, metavar='SECONDS',
                        help='stop after this long (default: until SIGINT/SIGTERM)')
    parser.add_argument('--qos', choices=('auto', 'reliable', 'best_effort'), default='auto',
                        help='subscription reliability; auto follows the publishers')
    parser.add_argument('--qos-depth', type=int, default=100, help='subscription queue depth')
    return parser


def _error(message: str) -> int:
    print(f'{PROG}: error: {message}', file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Record until stopped; return 0 when the bag was written, 1 with a one-line error."""
    own, ros_argv = split_ros_args(argv)
    args = build_parser().parse_args(own)
    with StopSignals((signal.SIGINT, signal.SIGTERM), repeat_interrupts=False) as stop:
        context = rclpy.Context()
        rclpy.init(args=ros_argv, context=context,
                   signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node('bag_recorder', context=context)
        try:
            types = _wait_for_types(node, args.topics, args.timeout, stop)
            if types is None:
                return 0
            return _record(node, args, types, stop)
        except BagError as exc:
            return _error(str(exc))
        finally:
            node.destroy_node()
            rclpy.try_shutdown(context=context)


def _wait_for_types(node: Node, topics: list[str], timeout_s: float,
                    stop: StopSignals) -> dict[str, str] | None:
    """Return topic -> type once every topic has a publisher; None if stopped meanwhile.

    A topic seen only through its subscribers is not enough: nothing can be recorded from it
    yet, and 'auto' QoS has no publisher to follow (it would fall back to best effort and could
    lose the first, large messages).
    """
    deadline = time.monotonic() + timeout_s
    wanted = [node.resolve_topic_name(t) for t in topics]
    while True:
        graph = dict(node.get_topic_names_and_types())
        types = {t: graph[t] for t in wanted if t in graph and node.count_publishers(t) > 0}
        if len(types) == len(wanted):
            break
        if stop.requested:
            return None
        if time.monotonic() >= deadline:
            missing = [t for t in wanted if t not in types]
            raise BagError(f'topic(s) {", ".join(missing)} had no publisher within {timeout_s}'
                           f' s; seen: {", ".join(sorted(graph)) or "(none)"}')
        time.sleep(0.05)
    result = {}
    for topic, names in types.items():
        if len(names) != 1:
            raise BagError(f'topic {topic} has several types: {", ".join(names)}')
        result[topic] = names[0]
    return result


def _qos(node: Node, topic: str, choice: str, depth: int) -> QoSProfile:
    """Return the subscription QoS; 'auto' is reliable only when every publisher is."""
    if choice == 'auto':
        infos = node.get_publishers_info_by_topic(topic)
        reliable = bool(infos) and all(
            i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    else:
        reliable = choice == 'reliable'
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT)


def _record(node: Node, args: argparse.Namespace, types: dict[str, str],
            stop: StopSignals) -> int:
    from rclpy.executors import SingleThreadedExecutor

    writer = BagWriter(args.out, storage=args.storage)
    try:
        for topic, msgtype in types.items():
            writer.add_topic(topic, msgtype)

        def make_callback(topic: str):
            def on_message(rawdata: bytes) -> None:
                writer.write_raw(topic, node.get_clock().now().nanoseconds, rawdata)
            return on_message

        for topic, msgtype in types.items():
            node.create_subscription(message_class(msgtype), topic, make_callback(topic),
                                     _qos(node, topic, args.qos, args.qos_depth), raw=True)
        node.get_logger().info(f'recording {", ".join(types)} into {args.out}')
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        end = time.monotonic() + args.duration if args.duration > 0 else float('inf')
        while not stop.requested and time.monotonic() < end and node.context.ok():
            executor.spin_once(timeout_sec=0.05)
        drain_end = time.monotonic() + DRAIN_S  # take what already arrived before closing
        while time.monotonic() < drain_end and node.context.ok():
            executor.spin_once(timeout_sec=0.01)
        executor.remove_node(node)
    finally:
        writer.close()
    print(f'{PROG}: wrote {writer.message_count} messages to {args.out}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
