"""Test helper: set and read a running node's parameters over DDS with rclpy's parameter client."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient

from ros_harness import wait_until


class ParameterClient:
    """Talk to `<node>/set_parameters` and `<node>/get_parameters` from a test probe node."""

    def __init__(self, probe: Any, node_name: str, timeout_s: float = 30.0) -> None:
        self.client = AsyncParameterClient(probe.node, node_name)
        self.timeout_s = timeout_s
        if not self.client.wait_for_services(timeout_sec=timeout_s):
            raise AssertionError(f'{node_name}: parameter services absent after {timeout_s} s')

    def _wait(self, future: Any) -> Any:
        if not wait_until(future.done, self.timeout_s):
            raise AssertionError(f'no parameter service answer within {self.timeout_s} s')
        return future.result()

    def set_value(self, name: str, value: Any) -> SetParametersResult:
        """Set one parameter (its type from the Python value); return the node's answer."""
        return self._wait(self.client.set_parameters([Parameter(name, value=value)])).results[0]

    def value(self, name: str) -> Any:
        """Return a parameter's current value as a Python value (None: declared, never set)."""
        values = self._wait(self.client.get_parameters([name])).values
        return parameter_value_to_python(values[0]) if values else None


def assert_refused(client: ParameterClient, process: Any, name: str, value: Any,
                   reason: str) -> None:
    """Set a bad or fixed value: it must be refused naming `reason`, and the old value stays."""
    before = client.value(name)
    result = client.set_value(name, value)
    assert not result.successful, f'{name}={value!r} was accepted'
    assert reason in result.reason, result.reason
    assert client.value(name) == before          # refused means not stored either
    assert process.is_running()


def stamped(collector: Any, sec: int, timeout_s: float = 30.0) -> Any:
    """Return the first collected message stamped `sec` (late ones of earlier frames may lead).

    A MarkerArray has no header of its own: its first marker's counts.
    """
    def stamp_sec(msg: Any) -> int | None:
        header = msg.header if hasattr(msg, 'header') else (
            msg.markers[0].header if msg.markers else None)
        return None if header is None else header.stamp.sec

    def found() -> Any:
        return next((m for m in list(collector.messages) if stamp_sec(m) == sec), None)
    if not wait_until(lambda: found() is not None, timeout_s):
        raise AssertionError(f'no message stamped {sec} within {timeout_s} s')
    return found()
