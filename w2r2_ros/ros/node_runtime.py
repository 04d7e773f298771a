"""Run rclpy nodes in-process: one context, a multi-threaded executor spinning in a thread.

There is no ``ros2 launch`` here (docs ENVIRONMENT.md), so tests, the bench and
the demo start their nodes in the same Python process. Each runtime owns its own
rclpy context, so several can coexist (a node under test and a publisher
pretending to be the robot talk over real DDS, as two processes would).

    with NodeRuntime() as runtime:
        node = runtime.add(SceneMemoryNode(context=runtime.context))
        runtime.wait_until(lambda: node.frames_received > 0, timeout_s=10.0)
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Callable, Sequence, TypeVar

import rclpy
import rclpy.logging
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from w2r2_ros.ros.callback_guard import one_line

NodeT = TypeVar("NodeT", bound=Node)


class NodeRuntime:
    """An rclpy context plus a ``SingleThreadedExecutor`` spun by a background thread.

    Single-threaded on purpose: rclpy's ``MultiThreadedExecutor`` spent most of a core
    on its own bookkeeping (py-spy: ``Future.done`` and ``_spin_once_impl``), and the
    scene memory node then received 311 of 1800 RGB frames in ``bench/ingest.py``; with
    this executor it received all 600 of a 20 s run at 41 % of a core. The model never
    runs in an executor callback (the grounding node has its own worker thread), so
    one thread is enough.

    Signal handlers are not installed by default: Ctrl-C then raises
    ``KeyboardInterrupt`` in the main thread as usual, and the caller's
    ``finally``/``with`` shuts the runtime down cleanly.
    """

    def __init__(
        self,
        args: Sequence[str] | None = None,
        domain_id: int | None = None,
        install_signal_handlers: bool = False,
    ) -> None:
        self.context = Context()
        rclpy.init(
            args=list(args) if args is not None else None,
            context=self.context,
            domain_id=domain_id,
            signal_handler_options=SignalHandlerOptions.ALL if install_signal_handlers else SignalHandlerOptions.NO,
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self._nodes: list[Node] = []
        self._thread: threading.Thread | None = None
        # Exceptions that escaped spin() (node callbacks are guarded, so these come from rclpy itself,
        # e.g. a message it cannot deserialise); the executor is spun again after each.
        self.spin_failures = 0
        self.last_spin_failure = ""

    def add(self, node: NodeT) -> NodeT:
        """Hand ``node`` (created with ``context=self.context``) to the executor; returns it. Safe while spinning."""
        self.executor.add_node(node)
        self._nodes.append(node)
        return node

    def start(self) -> "NodeRuntime":
        """Start spinning in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="node-runtime-spin", daemon=True)
            self._thread.start()
        return self

    def _spin(self) -> None:
        """Spin until shutdown; an exception that escapes ``spin()`` is logged and spinning resumes,
        since a dead spin thread leaves a live process that never handles a message again."""
        while self.context.ok():
            try:
                self.executor.spin()
                return
            except ExternalShutdownException:
                return
            except Exception as error:
                if not self.context.ok():
                    return
                self.spin_failures += 1
                self.last_spin_failure = one_line(error)
                rclpy.logging.get_logger("node_runtime").error(f"executor: {self.last_spin_failure}; spinning again")

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> bool:
        """Poll ``predicate`` until it holds or ``timeout_s`` passes; returns its last value."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() >= deadline:
                return bool(predicate())
            time.sleep(poll_s)
        return True

    def shutdown(self) -> None:
        """Stop the executor, destroy the nodes (newest first) and shut the context down.

        The context is shut down even when a node's destroy raises (the error is raised after): a context left
        alive keeps its DDS participant, whose publishers other nodes in the domain would go on hearing."""
        self.executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        try:
            for node in reversed(self._nodes):
                node.destroy_node()
        finally:
            self._nodes.clear()
            if self.context.ok():
                rclpy.shutdown(context=self.context)

    def __enter__(self) -> "NodeRuntime":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def stop_on_signals() -> threading.Event:
    """An event that SIGINT (Ctrl-C) and SIGTERM (what ``ros2 launch`` sends after SIGINT) set; call from the
    main thread, before anything slow (a model load), so that a signal never arrives unhandled.

    A program waits on it rather than relying on KeyboardInterrupt: whoever installed SIGINT's handler last,
    the process then stops (a CI run once saw SIGINT ignored and the process wait out a 60 s timeout), and it
    can stop gracefully (finish answering, then shut the runtime down).
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def wait_for(stop: threading.Event, runtime: NodeRuntime) -> None:
    """Block until ``stop`` is set or the runtime's context shuts down."""
    while runtime.context.ok() and not stop.wait(1.0):
        pass
