"""Warnings that say what went wrong without flooding the log.

A node fed a bad stream at 30 Hz would otherwise print 30 identical lines a
second. :class:`RateLimitedWarner` emits at most one line per *kind* of problem
per ``period_s`` and tells, on the next line it does emit, how many of that kind
it held back in between.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable


class RateLimitedWarner:
    """Per-kind rate limiting of warnings; thread-safe.

    ``log`` receives the finished line (e.g. ``node.get_logger().warning``).
    ``emitted`` and ``suppressed`` count lines per kind, and ``last_message``
    keeps the newest line emitted per kind, so tests and diagnostics can see what
    was said.
    """

    def __init__(self, log: Callable[[str], object], period_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._log = log
        self.period_s = period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_emit: dict[str, float] = {}
        self._held_back: Counter[str] = Counter()
        self.emitted: Counter[str] = Counter()
        self.suppressed: Counter[str] = Counter()
        self.last_message: dict[str, str] = {}

    def warn(self, kind: str, message: str) -> bool:
        """Log ``message`` unless a ``kind`` warning went out less than ``period_s`` ago; returns whether it did."""
        now = self._clock()
        with self._lock:
            last = self._last_emit.get(kind)
            if last is not None and now - last < self.period_s:
                self._held_back[kind] += 1
                self.suppressed[kind] += 1
                return False
            held_back = self._held_back.pop(kind, 0)
            if held_back:
                message = f"{message} ({held_back} more '{kind}' suppressed in the last {now - last:.1f} s)"
            self._last_emit[kind] = now
            self.emitted[kind] += 1
            self.last_message[kind] = message
        self._log(message)
        return True
