"""Run one node in its own process: spin until Ctrl-C, shut down cleanly, exit with a status."""

from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None,
             threads: int = 1) -> int:
    """Create the node with `factory` and spin it; return 0, or 1 with a one-line reason.

    Start-up errors (bad parameters, a missing model) end the process with the reason on stderr,
    so launch files and scripts see a non-zero exit status instead of a traceback.
    """
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = factory()
        if threads > 1:
            executor = MultiThreadedExecutor(num_threads=threads)
            executor.add_node(node)
            executor.spin()
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: B902 - start-up errors end the process with a reason
        print(f'{name}: error: {exc}', file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return code
