"""Resolve ROS message classes from type names ('sensor_msgs/msg/Image') without rclpy."""

from __future__ import annotations

import importlib
from typing import Any

from seg_perception.bag.reader import BagError

__all__ = ['message_class', 'split_type_name']


def split_type_name(msgtype: str) -> tuple[str, str, str]:
    """Return (package, interface kind, name) of 'pkg/msg/Name' (also 'pkg/Name')."""
    parts = msgtype.split('/')
    if len(parts) == 2:
        parts = [parts[0], 'msg', parts[1]]
    if len(parts) != 3 or not all(parts):
        raise BagError(f'malformed message type name {msgtype!r}; expected pkg/msg/Name')
    return parts[0], parts[1], parts[2]


def message_class(msgtype: str) -> Any:
    """Return the Python class of a ROS message type, importing its package."""
    try:
        from rosidl_runtime_py.utilities import get_message  # not on PyPI-only installs
    except ImportError:
        get_message = None
    if get_message is not None:
        try:
            return get_message(msgtype)
        except (AttributeError, ModuleNotFoundError, ValueError) as exc:
            raise BagError(f'message type {msgtype!r} is not installed: {exc}') from exc
    package, kind, name = split_type_name(msgtype)
    try:
        module = importlib.import_module(f'{package}.{kind}')
        return getattr(module, name)
    except (ImportError, AttributeError) as exc:
        raise BagError(f'message type {msgtype!r} is not installed ({exc})') from exc
