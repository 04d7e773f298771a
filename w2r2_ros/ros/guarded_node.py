"""A node mixin: every subscription, timer and service callback guarded, and a /diagnostics watchdog.

    class SceneMemoryNode(GuardedCallbacks, Node): ...

``GuardedCallbacks`` overrides ``create_subscription``, ``create_timer`` and
``create_service`` so that each callback runs inside the node's :class:`CallbackGuard`
(``callback_guard.py``): whatever a message makes a callback raise, the executor keeps
spinning. It works the same over ``rclpy.lifecycle.LifecycleNode`` (the mixin only
wraps the callbacks handed to the base class).

:meth:`GuardedCallbacks.start_watchdog` starts a thread (not an executor callback: it must
run when the executor itself is stuck) that publishes a ``diagnostic_msgs/DiagnosticArray``
on ``/diagnostics`` every ``period_s``: level OK while every callback and job finishes within
``stall_s``, ERROR naming the one that does not (and an error line in the log when that
starts), with the caught-exception counts as key/values.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from w2r2_ros.ros.callback_guard import CallbackGuard
from w2r2_ros.ros.node_diagnostics import DIAGNOSTICS_TOPIC, status


class GuardedCallbacks:
    """Mixin for ``rclpy.node.Node`` (list it first among the bases); see the module docstring."""

    _guard: CallbackGuard | None = None
    _watchdog: "DiagnosticsWatchdog | None" = None

    @property
    def guard(self) -> CallbackGuard:
        """Created on first use: Node.__init__ already creates its parameter services through create_service."""
        if self._guard is None:
            self._guard = CallbackGuard(self.get_logger().warning)
        return self._guard

    def create_subscription(self, msg_type: Any, topic: str, callback: Callable[[Any], None], *args: Any, **kwargs: Any) -> Any:
        name = f"subscription {self.resolve_topic_name(topic)}"
        return super().create_subscription(msg_type, topic, self.guard.wrap(name, callback), *args, **kwargs)

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None], *args: Any, **kwargs: Any) -> Any:
        name = f"timer {getattr(callback, '__name__', 'callback')} ({timer_period_sec:g} s)"
        return super().create_timer(timer_period_sec, self.guard.wrap(name, callback), *args, **kwargs)

    def create_service(self, srv_type: Any, srv_name: str, callback: Callable[[Any, Any], Any], *args: Any, **kwargs: Any) -> Any:
        # A service must answer: after an error the caller gets the default (empty) response.
        fallback = lambda request, response: response  # noqa: E731
        name = f"service {self.resolve_service_name(srv_name)}"
        return super().create_service(srv_type, srv_name, self.guard.wrap(name, callback, fallback), *args, **kwargs)

    def start_watchdog(
        self, stall_s: float, period_s: float = 1.0, statuses: Callable[[], list[DiagnosticStatus]] | None = None
    ) -> "DiagnosticsWatchdog":
        """Publish this node's progress (``stall_s`` <= 0: not watched) and its own ``statuses()`` (node_diagnostics)
        on /diagnostics every ``period_s`` until the node is destroyed (``period_s`` <= 0: no publisher)."""
        self._watchdog = DiagnosticsWatchdog(self, self.guard, stall_s, period_s, statuses)
        if period_s > 0 and (stall_s > 0 or statuses is not None):
            self._watchdog.start()
        return self._watchdog

    def destroy_node(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
        super().destroy_node()


class DiagnosticsWatchdog:
    """Publishes ``node``'s progress (from ``guard``) and its ``statuses()`` on /diagnostics from a thread of its own:
    the node's one /diagnostics publisher."""

    def __init__(self, node: Any, guard: CallbackGuard, stall_s: float, period_s: float = 1.0,
                 statuses: Callable[[], list[DiagnosticStatus]] | None = None) -> None:
        self.node, self.guard, self.stall_s, self.period_s = node, guard, stall_s, period_s
        self._statuses = statuses
        self._publisher: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{node.get_name()}-watchdog", daemon=True)
        self._was_stalled: set[str] = set()

    def start(self) -> None:
        self._publisher = self.node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0 * self.period_s + 1.0)

    def status(self) -> DiagnosticStatus:
        """The node's progress now: OK, or ERROR naming what has been running longer than ``stall_s``."""
        stalled = self.guard.stalled(self.stall_s)
        errors = self.guard.error_counts()
        values = {f"errors: {name}": count for name, count in sorted(errors.items())}
        values.update({f"running: {name}": f"{age:.1f} s" for name, age in stalled})
        if stalled:
            level = DiagnosticStatus.ERROR
            message = "; ".join(f"{name} has been running for {age:.1f} s" for name, age in stalled) + \
                f" (no progress within watchdog_stall_s {self.stall_s:g} s)"
        else:
            level, message = DiagnosticStatus.OK, "every callback is making progress"
            if errors:
                message += f"; {sum(errors.values())} message(s) dropped after unexpected errors so far"
        return status(self.node, "progress", level, message, values)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            reports = []
            if self.stall_s > 0:
                reports.append(self.status())
                stalled = {name for name, _ in self.guard.stalled(self.stall_s)}
                for name in sorted(stalled - self._was_stalled):  # once per stall, when it starts
                    self.node.get_logger().error(f"watchdog: {name} has made no progress for {self.stall_s:g} s")
                self._was_stalled = stalled
            if self._statuses is not None:
                try:
                    reports += self._statuses()
                except Exception as error:  # a report must not stop the watchdog
                    self.guard.report("diagnostics", error)
            array = DiagnosticArray(status=reports)
            array.header.stamp = self.node.get_clock().now().to_msg()
            try:
                self._publisher.publish(array)
            except Exception:  # the context is shutting down under us: nothing left to report to
                return
