"""`bag_player`: play a rosbag2 into ROS 2 with its original timing (serialized, no decoding).

Messages are published as the CDR bytes stored in the bag, so stamps, frame ids and every other
field stay as recorded. The bag logic (reading, timing, selection) lives in seg_perception.bag.
Corrupt MCAP chunks (CRC mismatch) are reported one line each and skipped; the exit status is 1
then unless --allow-corrupt. With --clock, /clock carries the bag's playback time, so nodes run
with use_sim_time:=true live in the bag's time, as with `ros2 bag play --clock`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable, Sequence

import rclpy
from rclpy.duration import Duration
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from seg_perception.bag.msgtypes import message_class
from seg_perception.bag.playback import parse_remaps, play_messages, PlaybackClock
from seg_perception.bag.reader import BagDamage, BagError, BagReader
from seg_perception.nodes.qos import RELIABILITY
from seg_perception.stop_signals import StopSignals

PROG = 'bag_player'
#: Seconds to wait at the end for reliable subscribers to acknowledge the last messages.
LINGER_S = 2.0
#: /clock rate when --clock-hz is not given (ros2 bag play's default)
CLOCK_HZ = 40.0


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument('bag', help='rosbag2 folder (or .mcap / .db3 file)')
    parser.add_argument('--rate', type=float, default=1.0, help='speed factor (default 1.0)')
    parser.add_argument('--loop', action='store_true', help='play again and again')
    parser.add_argument('--start-offset', type=float, default=0.0, metavar='SECONDS',
                        help='skip this many seconds from the start of the bag')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC', help='play only these topics')
    parser.add_argument('--remap', nargs='+', default=[], metavar='FROM:=TO',
                        help='publish a bag topic under another name')
    parser.add_argument('--qos', choices=sorted(RELIABILITY), default='reliable',
                        help='publisher reliability (default reliable)')
    parser.add_argument('--qos-depth', type=int, default=10, help='publisher queue depth')
    parser.add_argument('--delay', type=float, default=0.0, metavar='SECONDS',
                        help='wait this long after creating publishers (discovery)')
    parser.add_argument('--wait-for-subscribers', type=int, default=0, metavar='N',
                        help='before playing, wait until each --wait-topics topic has N '
                             'subscribers (a fixed --delay can lose the first messages on a busy '
                             'machine)')
    parser.add_argument('--wait-topics', nargs='+', metavar='TOPIC',
                        help='bag topics --wait-for-subscribers applies to (default: all played)')
    parser.add_argument('--wait-timeout', type=float, default=60.0, metavar='SECONDS',
                        help='give up (exit 1) when --wait-for-subscribers is not met by then')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--allow-corrupt', action='store_true',
                        help='exit 0 when corrupt chunks were skipped (still reported)')
    parser.add_argument('--clock', action='store_true',
                        help="publish the bag's playback time on /clock (rosgraph_msgs/Clock) "
                             'for nodes run with use_sim_time:=true')
    parser.add_argument('--clock-hz', type=float, default=CLOCK_HZ, metavar='HZ',
                        help=f'/clock publishing rate with --clock (default {CLOCK_HZ:g})')
    return parser


def _error(message: str) -> int:
    print(f'{PROG}: error: {message}', file=sys.stderr)
    return 1


def split_ros_args(argv: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Return (own arguments, rclpy init arguments) of a command line without the program.

    Only what follows --ros-args goes to rclpy: rcl would take a bare 'from:=to' (as in our
    --remap option) for a node remapping.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--ros-args' not in argv:
        return argv, [PROG]
    index = argv.index('--ros-args')
    return argv[:index], [PROG, *argv[index:]]


def main(argv: Sequence[str] | None = None) -> int:
    """Play the bag; return 0 when done or interrupted, 1 with a one-line error otherwise."""
    own, ros_argv = split_ros_args(argv)
    args = build_parser().parse_args(own)
    if args.start_offset < 0 or not args.rate > 0 or args.qos_depth < 1 or args.delay < 0 \
            or args.wait_for_subscribers < 0 or not args.wait_timeout > 0 \
            or not args.clock_hz > 0:
        return _error('--start-offset, --delay and --wait-for-subscribers must be >= 0, --rate, '
                      '--wait-timeout and --clock-hz > 0, --qos-depth >= 1')
    damage = BagDamage(on_report=lambda line: print(f'{PROG}: {line}', file=sys.stderr))
    try:
        reader = BagReader(args.bag, damage=damage)
    except BagError as exc:
        return _error(str(exc))
    try:
        status = _play(reader, args, ros_argv)
    except BagError as exc:
        status = _error(str(exc))
    finally:
        reader.close()
    closing = damage.exit_line(args.allow_corrupt)
    if closing:
        print(f'{PROG}: {closing}', file=sys.stderr)
    return 1 if damage and not args.allow_corrupt else status


def _play(reader: BagReader, args: argparse.Namespace, argv: list[str]) -> int:
    topics = reader.check_topics(args.topics) if args.topics else list(reader.topics)
    remaps = parse_remaps(args.remap)
    unknown = sorted(set(remaps) - set(topics))
    if unknown:
        raise BagError(f'remapped topic(s) {", ".join(unknown)} are not played; '
                       f'played: {", ".join(topics)}')
    if int(round(args.start_offset * 1e9)) > reader.duration_ns:
        raise BagError(f"--start-offset {args.start_offset} s is beyond the bag's duration "
                       f'({reader.duration_ns * 1e-9:.3f} s)')
    # SIGINT/SIGTERM set a flag that the loop polls between messages: rclpy's own handler would
    # shut the context down under a publish() in progress, which then fails with a traceback.
    with StopSignals((signal.SIGINT, signal.SIGTERM)) as stop:
        return _publish(reader, args, argv, topics, remaps, stop)


def _publish(reader: BagReader, args: argparse.Namespace, argv: list[str], topics: list[str],
             remaps: dict[str, str], stop: StopSignals) -> int:
    from tqdm import tqdm

    classes = {t: message_class(reader.topics[t].msgtype) for t in topics}
    start_offset_ns = int(round(args.start_offset * 1e9))
    per_pass = sum(reader.topics[t].message_count for t in topics)
    qos = QoSProfile(depth=args.qos_depth, history=HistoryPolicy.KEEP_LAST,
                     reliability=RELIABILITY[args.qos])
    context = rclpy.Context()
    rclpy.init(args=argv, context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('bag_player', context=context)
    progress = None
    stop_clock = threading.Event()
    clock_thread = None
    try:
        publishers = {t: node.create_publisher(classes[t], remaps.get(t, t), qos) for t in topics}
        clock = PlaybackClock(rate=args.rate)
        clock_thread = _start_clock(node, clock, args.clock_hz, stop_clock) if args.clock \
            else None

        def stopped() -> bool:
            return stop.requested or not context.ok()

        if args.wait_for_subscribers:
            deadline = time.monotonic() + args.wait_timeout
            waited = reader.check_topics(args.wait_topics) if args.wait_topics else topics
            unplayed = sorted(set(waited) - set(topics))
            if unplayed:
                raise BagError(f'--wait-topics {", ".join(unplayed)} are not played')
            while True:
                missing = [t for t in waited
                           if publishers[t].get_subscription_count() < args.wait_for_subscribers]
                if not missing:
                    break
                if time.monotonic() > deadline:
                    raise BagError(f'fewer than {args.wait_for_subscribers} subscribers on '
                                   f'{", ".join(missing)} after {args.wait_timeout:g} s')
                if not _sleep(0.05, stopped):
                    return 0
        if not _sleep(args.delay, stopped):
            return 0
        progress = tqdm(total=None if start_offset_ns else per_pass, unit='msg',
                        desc=f'playing {args.bag}',
                        disable=args.no_progress, file=sys.stderr)

        def next_pass(period_ns: int) -> None:
            clock.next_pass(period_ns)
            progress.reset()

        for message in play_messages(reader, topics=topics, start_offset_ns=start_offset_ns,
                                     loop=args.loop, on_loop=next_pass):
            if not clock.wait_for(message.log_time_ns, should_stop=stopped):
                break
            rawdata = message.rawdata
            publishers[message.topic].publish(
                rawdata if isinstance(rawdata, bytes) else bytes(rawdata))
            progress.update(1)
        else:
            _linger(publishers.values(), reliable=args.qos == 'reliable')
    except KeyboardInterrupt:
        pass
    finally:
        stop_clock.set()
        if clock_thread is not None:
            clock_thread.join(timeout=5.0)
        if progress is not None:
            progress.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return 0


def _start_clock(node: Any, clock: PlaybackClock, hz: float,
                 stop: threading.Event) -> threading.Thread:
    """Publish the playback time on /clock at `hz` from a thread, until `stop` is set.

    A thread, so the time also runs while the player sleeps until the next message is due;
    nothing is published before the first message starts the playback time.
    """
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    # what rclpy's and rclcpp's time sources subscribe with (depth 1, best effort)
    publisher = node.create_publisher(Clock, '/clock', QoSProfile(
        depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT))

    def run() -> None:
        while not stop.wait(1.0 / hz):
            now_ns = clock.bag_time_ns()
            if now_ns is None:
                continue
            sec, nanosec = divmod(now_ns, 1_000_000_000)
            try:
                publisher.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))
            except Exception:  # noqa: B902 - the context shut down under us: playback ended
                return

    thread = threading.Thread(target=run, name='bag_player_clock', daemon=True)
    thread.start()
    return thread


def _linger(publishers: Iterable[Any], *, reliable: bool) -> None:
    """Let the last messages reach their subscribers before the publishers go away."""
    if reliable:
        for pub in publishers:
            pub.wait_for_all_acked(Duration(seconds=LINGER_S))
    time.sleep(0.3)


def _sleep(seconds: float, stopped: Callable[[], bool]) -> bool:
    """Sleep `seconds` in short steps; return False when ROS shut down meanwhile."""
    deadline = time.monotonic() + seconds
    while not stopped():
        remaining = deadline - time.monotonic()
        if remaining <= 0.0:
            return True
        time.sleep(min(remaining, 0.05))
    return False


if __name__ == '__main__':
    sys.exit(main())
