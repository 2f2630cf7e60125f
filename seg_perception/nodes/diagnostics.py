"""Publish diagnostic_msgs/DiagnosticArray on /diagnostics from plain key-value snapshots."""

from __future__ import annotations

import re
from typing import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

#: Characters a reason token keeps (parts of it, such as an encoding name, come off the wire).
_TOKEN_UNSAFE = re.compile(r'[^A-Za-z0-9_.:-]')
LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
          'error': DiagnosticStatus.ERROR, 'stale': DiagnosticStatus.STALE}


class DiagnosticsPublisher:
    """Publish one DiagnosticArray per call, one status per monitored part of a node."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.hardware_id = node.get_fully_qualified_name()

    def publish(self, statuses: list[tuple[str, str, str, Mapping[str, object]]]) -> None:
        """Publish (name, level, message, values) tuples; level is ok, warn, error or stale."""
        msg = DiagnosticArray()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        for name, level, message, values in statuses:
            msg.status.append(DiagnosticStatus(
                level=LEVELS[level], name=f'{self._node.get_name()}: {name}', message=message,
                hardware_id=self.hardware_id,
                values=[KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]))
        self.publisher.publish(msg)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)


def reason_of(exc: Exception) -> str:
    """Return a refused input's reason token, which says what was wrong with it.

    The error's `reason` (conversion and depth errors carry one, e.g. 'step_too_small'), else
    the message's leading 'token:', else the error's class name; cut to 48 safe characters,
    since a wire-supplied encoding name can be part of it and it becomes a /diagnostics key.
    """
    reason = getattr(exc, 'reason', None)
    if not isinstance(reason, str) or not reason:
        head, sep, _ = str(exc).partition(':')
        reason = head if sep and head.isidentifier() else type(exc).__name__
    return _TOKEN_UNSAFE.sub('_', reason)[:48]
