"""Callbacks that cannot kill the executor, and a record of which ones are making progress.

rclpy lets an exception raised in a subscription, timer or service callback escape
``Executor.spin()``; the thread spinning the nodes then dies while the process stays up, so a
respawn never triggers and no message is handled again (a PointCloud2 whose ``x`` field had
``count: 3`` did exactly that: issue 16, finding 1). Every callback of our nodes therefore runs
inside :meth:`CallbackGuard.wrap`: an unexpected exception becomes one counted, rate-limited
warning with the exception's one-line summary, the message is dropped and the node keeps serving.

The guard also records when each callback (and any other long-running job, e.g. the grounding
model's worker, through :meth:`CallbackGuard.busy`) started and finished, so that a watchdog
(``diagnostics_watchdog.py``) can say when one of them stops making progress. No rclpy here.
"""
from __future__ import annotations

import functools
import inspect
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from w2r2_ros.ros.rate_limited_log import RateLimitedWarner


def one_line(error: BaseException, limit: int = 300) -> str:
    """``Type: message`` of an exception on one line, at most ``limit`` characters (for logs and results)."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CallbackGuard:
    """Wraps callbacks so that an exception drops one message instead of the executor; thread-safe.

    ``errors`` counts the exceptions caught per callback name; ``warnings`` is the
    rate-limited warner they are reported through (one line per callback per period).
    """

    def __init__(self, log: Callable[[str], object], period_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.warnings = RateLimitedWarner(log, period_s=period_s)
        self._clock = clock
        self._lock = threading.Lock()
        self.errors: Counter[str] = Counter()
        self._running: dict[str, float] = {}  # name -> when the call in progress started
        self._completed: Counter[str] = Counter()

    def wrap(self, name: str, callback: Callable[..., Any], fallback: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """``callback`` guarded: on an exception, count and report it and return ``fallback(*args)`` (or None).

        ``fallback`` exists for services, whose callback must return a response message.
        """

        if inspect.iscoroutinefunction(callback):  # e.g. a service that awaits the model's answer

            @functools.wraps(callback)
            async def guarded_coroutine(*args: Any) -> Any:
                with self.busy(name):
                    try:
                        return await callback(*args)
                    except Exception as error:
                        self.report(name, error)
                        return fallback(*args) if fallback is not None else None

            return guarded_coroutine

        @functools.wraps(callback)
        def guarded(*args: Any) -> Any:
            with self.busy(name):
                try:
                    return callback(*args)
                except Exception as error:  # the point of the guard: nothing escapes into the executor
                    self.report(name, error)
                    return fallback(*args) if fallback is not None else None

        return guarded

    def report(self, name: str, error: BaseException) -> None:
        """Count ``error`` against ``name`` and warn (rate-limited) that its message was dropped."""
        with self._lock:
            self.errors[name] += 1
            total = self.errors[name]
        self.warnings.warn(
            name, f"{name}: dropped one message after an unexpected error ({one_line(error)}); "
            f"{total} so far, the node keeps running"
        )

    @contextmanager
    def busy(self, name: str) -> Iterator[None]:
        """Mark ``name`` as in progress for the duration of the block (what the watchdog reads)."""
        with self._lock:
            self._running[name] = self._clock()
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(name, None)
                self._completed[name] += 1

    def stalled(self, older_than_s: float) -> list[tuple[str, float]]:
        """The calls in progress for longer than ``older_than_s``, with how long, longest first."""
        now = self._clock()
        with self._lock:
            running = [(name, now - started) for name, started in self._running.items()]
        return sorted(((name, age) for name, age in running if age > older_than_s), key=lambda item: -item[1])

    def error_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.errors)

    def completed_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._completed)
