"""Declared ROS parameters: one ``ParamSpec`` per parameter, declared with a full ``ParameterDescriptor``.

Why descriptors: ``ros2 param describe`` shows the type, range and meaning;
rclpy itself refuses an out-of-range, wrongly typed or read-only ``ros2 param
set`` with a reason, before any node code runs. A parameter is *live* when the
node applies a change while it runs (thresholds, top_k, rates); every other one
is read-only, because the node reads it once (topics, QoS depths, the memory's
sizes, the model), so a change needs a restart: set it in the params file or
with ``--ros-args -p name:=value``.

Precedence is rclpy's own: the declared default < ``--params-file`` < ``-p``
(later ``--ros-args`` entries win), so nodes are created without
``parameter_overrides`` from a params file (those would outrank the command
line; w2r2-bringup passes its params file as ``--params-file``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
_INT_LIMIT = 2**62
_RESTART = "read-only: a change needs a restart (params file or --ros-args -p)"


@dataclass(frozen=True)
class ParamSpec:
    """A parameter's default, meaning and limits. ``minimum``/``maximum`` bound numbers (inclusive);
    ``choices`` lists the allowed strings; ``live`` parameters may change while the node runs."""

    default: bool | int | float | str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    live: bool = False

    def descriptor(self, name: str) -> ParameterDescriptor:
        kind = type(self.default)
        constraints = []
        if self.choices:
            constraints.append(f"one of: {', '.join(self.choices)}")
        constraints.append("live: applied at once" if self.live else _RESTART)
        descriptor = ParameterDescriptor(
            name=name, type=_TYPES[kind], description=self.description,
            additional_constraints="; ".join(constraints), read_only=not self.live,
        )
        if kind is float and (self.minimum is not None or self.maximum is not None):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(self.minimum if self.minimum is not None else -float("inf")),
                to_value=float(self.maximum if self.maximum is not None else float("inf")), step=0.0)]
        elif kind is int and (self.minimum is not None or self.maximum is not None):
            descriptor.integer_range = [IntegerRange(
                from_value=int(self.minimum if self.minimum is not None else -_INT_LIMIT),
                to_value=int(self.maximum if self.maximum is not None else _INT_LIMIT), step=0)]
        return descriptor


def declare_parameters(node: Node, specs: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Declare every spec on ``node`` and return the values it starts with (defaults, params files, -p).

    A value from a params file or ``-p`` that breaks a descriptor (range, type) raises rclpy's
    ``InvalidParameterValueException`` naming the parameter; a string outside ``choices`` raises
    ValueError. Both stop the node before it does anything.
    """
    for name, spec in specs.items():
        node.declare_parameter(name, spec.default, spec.descriptor(name))
    values = {name: node.get_parameter(name).value for name in specs}
    problems = [_choice_problem(name, specs[name], value) for name, value in values.items()]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(f"{node.get_name()} parameters: {'; '.join(problems)}")
    return values


def _choice_problem(name: str, spec: ParamSpec, value: Any) -> str:
    if spec.choices and value not in spec.choices:
        return f"{name} is '{value}', expected one of {', '.join(spec.choices)}"
    return ""


def on_live_change(node: Node, specs: Mapping[str, ParamSpec], apply: Callable[[dict[str, Any]], str]) -> None:
    """Apply ``ros2 param set`` of live parameters through ``apply(changes) -> refusal ('' accepts)``.

    rclpy has already refused read-only, out-of-range and wrongly typed values
    (descriptors); this callback adds the choices and whatever ``apply`` checks
    across parameters (e.g. min < max). ``apply`` must change the node only when
    it accepts, so a refused set leaves everything as it was.
    """

    def callback(parameters: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in specs}
        problems = [_choice_problem(name, specs[name], value) for name, value in changes.items()]
        problems = [p for p in problems if p]
        reason = "; ".join(problems) or (apply(changes) if changes else "")
        if reason:
            node.get_logger().warning(f"parameter change refused: {reason}")
            return SetParametersResult(successful=False, reason=reason)
        if changes:
            node.get_logger().info(f"parameters changed: {', '.join(f'{k}={v!r}' for k, v in changes.items())}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)
