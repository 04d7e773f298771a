"""Say when an input topic stays silent, and what the ROS graph offers instead.

A scene memory with nothing on its colour topic used to wait in silence (the
colour stream was published compressed, or under a RealSense driver's
``/camera/camera/...`` names). The watchdog checks every ``timeout_s`` which
expected topic has delivered nothing for that long and warns once per period
per topic, naming the topic, the type the node expects, the parameter that sets
it, and the topics of the graph that look like what was meant (the same topic
with another type, a ``/compressed`` variant, or the same name under another
namespace).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from rclpy.node import Node


@dataclass
class _Expected:
    topic: str
    type_name: str
    parameter: str
    last: float


def related_topics(topic: str, graph: list[tuple[str, list[str]]]) -> list[str]:
    """Topics of ``graph`` (``(name, types)`` pairs) that share ``topic``'s last two name parts, extend it
    (``.../compressed``) or are extended by it (the raw stream of a compressed one)."""
    tail = "/".join(topic.rstrip("/").split("/")[-2:])
    return [
        f"{name} ({', '.join(types)})"
        for name, types in graph
        if name != topic and (name.startswith(topic + "/") or topic.startswith(name + "/")
                              or name.rstrip("/").endswith("/" + tail))
    ]


class InputWatchdog:
    """Per-topic "nothing received" warnings for ``node`` (see the module docstring); ``warn(kind, line)`` logs."""

    def __init__(self, node: Node, timeout_s: float, warn: Callable[[str, str], object],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._node = node
        self.timeout_s = timeout_s
        self._warn = warn
        self._clock = clock
        self._lock = threading.Lock()
        self._expected: dict[str, _Expected] = {}

    def expect(self, stream: str, topic: str, type_name: str, parameter: str) -> None:
        with self._lock:
            self._expected[stream] = _Expected(topic, type_name, parameter, self._clock())

    def received(self, stream: str) -> None:
        with self._lock:
            if stream in self._expected:
                self._expected[stream].last = self._clock()

    def check(self) -> list[str]:
        """Warn about every silent topic; returns the lines (for tests)."""
        now = self._clock()
        with self._lock:
            silent = {s: e for s, e in self._expected.items() if now - e.last >= self.timeout_s}
        if not silent:
            return []
        graph = self._node.get_topic_names_and_types()
        types_by_topic = dict(graph)
        lines = []
        for stream, expected in silent.items():
            line = (f"nothing received on {expected.topic} ({expected.type_name}) for {now - expected.last:.1f} s; "
                    f"parameter {expected.parameter}")
            offered = [t for t in types_by_topic.get(expected.topic, []) if t != expected.type_name]
            if offered:
                line += f"; that topic is published as {', '.join(offered)}"
            elif expected.topic not in types_by_topic:
                line += "; nobody publishes it"
            related = related_topics(expected.topic, graph)
            if related:
                line += f"; similar topics: {', '.join(related[:4])}"
            self._warn(f"silent_{stream}", line)
            lines.append(line)
        return lines
