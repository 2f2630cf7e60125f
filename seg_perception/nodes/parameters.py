"""Declare a node's parameters from one table, with descriptions, and read them back as a dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

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
