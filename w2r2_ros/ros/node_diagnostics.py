"""/diagnostics for the two nodes: input rates, drops by cause, memory, model state, last query latency.

Each node builds its own ``diagnostic_msgs/DiagnosticStatus`` (what
``rqt_robot_monitor`` and ``diagnostic_aggregator`` read) from counters it keeps
anyway; the node's watchdog (``guarded_node.DiagnosticsWatchdog``, its one
/diagnostics publisher) sends them with its progress status every
``diagnostics_period_s``. Values are strings, as the message defines them.
Rates are measured between two reports.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node

DIAGNOSTICS_TOPIC = "/diagnostics"


class RateMeter:
    """Per-stream message rates from cumulative counts, measured between two calls."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: tuple[float, dict[str, int]] | None = None

    def rates(self, counts: Mapping[str, int]) -> dict[str, float]:
        """Messages per second of each stream since the previous call (0 for the first call)."""
        now, counts = self._clock(), dict(counts)
        previous = self._last
        self._last = (now, counts)
        if previous is None or now <= previous[0]:
            return {name: 0.0 for name in counts}
        elapsed = now - previous[0]
        return {name: (count - previous[1].get(name, 0)) / elapsed for name, count in counts.items()}


def status(node: Node, topic: str, level: int, message: str, values: Mapping[str, object]) -> DiagnosticStatus:
    """A DiagnosticStatus named ``<node>: <topic>`` with string key/values."""
    name = node.get_fully_qualified_name().lstrip("/")
    return DiagnosticStatus(level=level, name=f"{name}: {topic}", message=message, hardware_id=name,
                            values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])
