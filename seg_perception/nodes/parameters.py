"""Declare a node's parameters from one table, with descriptions, and read them back as a dict."""

from __future__ import annotations

import array
from dataclasses import dataclass
import math
from typing import Any, Collection, Mapping, Sequence

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: default value, description, and whether it may change at runtime."""

    name: str
    default: Any
    description: str
    runtime: bool = False
    type_: Parameter.Type | None = None  # needed when the default is an empty list


def declare_parameters(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare every parameter of `specs` on `node` and return their current values."""
    for spec in specs:
        descriptor = ParameterDescriptor(
            description=spec.description + ('' if spec.runtime else ' (read at start-up)'),
            read_only=False)
        if spec.type_ is not None and spec.default in ([], ()):
            node.declare_parameter(spec.name, spec.type_, descriptor)
        else:
            node.declare_parameter(spec.name, spec.default, descriptor)
    return parameter_values(node, specs)


def parameter_values(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Return the current values of declared parameters (an unset list reads as [])."""
    values = {}
    for spec in specs:
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except Exception:  # noqa: B902 - uninitialised list parameter: the empty default
            values[spec.name] = []
        if values[spec.name] is None:
            values[spec.name] = []
    return values


def parameter_dict(params: Sequence[Parameter]) -> dict[str, Any]:
    """Return {name: value} for rclpy Parameters (as given to set-parameter callbacks)."""
    return {p.name: p.value for p in params}


def non_finite_parameters(values: Mapping[str, Any]) -> list[str]:
    """Return the names whose float (or float array) value holds NaN or infinity."""
    bad = []
    for name, value in values.items():
        items = value if isinstance(value, (list, tuple, array.array)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            bad.append(name)
    return bad


def merged_parameter_change(current: Mapping[str, Any], params: Sequence[Parameter],
                            runtime: Collection[str]) -> tuple[dict[str, Any] | None, str]:
    """Return (current values with the change applied, '') or (None, the reason to refuse).

    The shared first step of every node's set-parameters callback: parameters outside `runtime`
    (topics, QoS, files read once) need a restart, none may be unset, none may be non-finite.
    The node then validates the merged values with the code it ran at start-up.
    """
    changes = parameter_dict(params)
    unset = sorted(p.name for p in params if p.type_ == Parameter.Type.NOT_SET)
    if unset:
        return None, f'{", ".join(unset)} cannot be unset'
    fixed = sorted(name for name in changes if name not in runtime)
    if fixed:
        return None, f'{", ".join(fixed)} cannot change while running; restart the node'
    bad = non_finite_parameters(changes)
    if bad:
        return None, f'{", ".join(bad)} must be finite, got ' + ', '.join(
            f'{name}={changes[name]!r}' for name in bad)
    return {**current, **{name: _plain(value) for name, value in changes.items()}}, ''


def _plain(value: Any) -> Any:
    """Return array parameter values as lists (rclpy hands some over as array.array)."""
    return list(value) if isinstance(value, array.array) else value
