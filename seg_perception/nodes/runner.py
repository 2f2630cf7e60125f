"""Run one node in its own process: spin until Ctrl-C, shut down cleanly, exit with a status."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Callable

import rclpy
from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None,
             threads: int = 1, main_thread_work: Callable[[Node], None] | None = None) -> int:
    """Create the node with `factory` and spin it; return 0, or 1 with a one-line reason.

    SIGINT and SIGTERM stop spinning, then the node is destroyed (its worker threads stop) while
    the ROS context is still valid, and only then is the context shut down, so no publisher
    outlives its context. Further signals during teardown are ignored (launch sends SIGINT
    twice). With `main_thread_work`, the executor spins in a background thread and the main
    thread runs `main_thread_work(node)` (it must return once the node is destroyed or stopped).
    Start-up errors (bad parameters, a missing model) end the process with the reason on
    stderr, so launch files and scripts see a non-zero exit status instead of a traceback.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    node = executor = None
    code = 0
    try:
        node = factory()
        executor = (MultiThreadedExecutor(num_threads=threads) if threads > 1
                    else SingleThreadedExecutor())
        executor.add_node(node)
        if main_thread_work is None:
            executor.spin()
        else:
            spinner = threading.Thread(target=executor.spin, name='executor', daemon=True)
            spinner.start()
            main_thread_work(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: B902 - start-up errors end the process with a reason
        print(f'{name}: error: {exc}', file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
