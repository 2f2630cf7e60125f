"""Publish diagnostic_msgs/DiagnosticArray on /diagnostics from plain key-value snapshots."""

from __future__ import annotations

from typing import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

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
