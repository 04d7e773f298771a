"""The scene memory's background threads: fusion, and segmentation into proposals.

A node's sensor callbacks must return within milliseconds whatever the map
size (a 30 Hz camera gives them 33 ms, and DDS drops what a busy reader does
not take), while fusing a frame grows with the map and clustering takes
hundreds of milliseconds at 300k voxels. So the node's callbacks only sync and
queue (``SceneMemory.set_background_fusion``), and two daemon threads do the
heavy work:

- **fusion**: drains the memory's queue of frames and clouds into the voxel map;
- **segmentation**: every ``period_s`` (the node's ``publish_rate_hz``), when the
  map changed since the last run, reclusters the latest copy of the voxel map
  (``SceneMemory.update_proposals``); a run that takes longer than the period
  simply delays the next one, so proposals lag on a huge map but ingest does not.
  With ``in_process=False`` (the node's default) the clustering itself runs in a
  child process (``SegmentationProcess``): a thread of this process would hold
  Python's GIL for most of a second at 300k voxels, and every sensor callback
  would wait for it; the copy goes through a pipe in milliseconds.

Stopping is bounded: a segmentation still running in the child ``grace_s`` (1 s) after ``stop()`` is
terminated with it (one log line), rather than waited for.

Both record how long each step took (bounded windows) for diagnostics and
``bench/ingest.py``; an exception in a step is handed to ``on_error`` and the
thread carries on. Plain threading: no rclpy here.
"""
from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any, Callable

from w2r2_ros.scene.memory import SceneMemory

_TIMING_WINDOW = 20_000


class SceneWorkers:
    """Fusion and segmentation threads over one SceneMemory; ``start()`` switches the memory to background fusion."""

    def __init__(
        self,
        memory: SceneMemory,
        period_s: float,
        on_error: Callable[[str, Exception], None] | None = None,
        in_process: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"SceneWorkers: period_s must be > 0, got {period_s}")
        self.memory = memory
        self.period_s = float(period_s)
        self._on_error = on_error or (lambda step, error: None)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._ms: dict[str, deque[float]] = {name: deque(maxlen=_TIMING_WINDOW) for name in ("fusion", "segmentation")}
        self._segmented_version = -1
        self._segmentations = 0
        # A daemonic process (e.g. a multiprocessing worker) may not start children: cluster in a thread there.
        self.in_process = in_process or multiprocessing.current_process().daemon
        self._segmenter = None if self.in_process else SegmentationProcess(log=log)

    def start(self) -> None:
        """Switch the memory to background fusion and start both threads (idempotent)."""
        if self._threads:
            return
        # CPython hands the GIL to a waiting thread only every switch interval (5 ms by default): a sensor
        # callback that needs it while a worker runs Python code could wait that long, several times over.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self.memory.set_background_fusion(True)
        self._stop.clear()
        for name, loop in (("fusion", self._fusion_loop), ("segmentation", self._segmentation_loop)):
            thread = threading.Thread(target=loop, name=f"scene-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop both threads; the memory fuses whatever is still queued in this call and fuses inline again.

        The segmentation child is closed first (bounded: ``SegmentationProcess.close``), so a segmentation in
        flight does not hold the join; and again after it, in case the thread started one in between."""
        self._stop.set()
        self._wake.set()
        if self._segmenter is not None:
            self._segmenter.close()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()
        if self._segmenter is not None:
            self._segmenter.close()
        self.memory.set_background_fusion(False)

    def request_segmentation(self) -> None:
        """Recluster now rather than at the next period (e.g. before answering a query)."""
        self._wake.set()

    def caught_up(self) -> bool:
        """Every frame taken so far is fused and the proposals were computed from that map."""
        return self.memory.fusion_idle() and self._segmented_version == self.memory.map_version

    @property
    def segmentations(self) -> int:
        """How many times the proposals were recomputed."""
        with self._lock:
            return self._segmentations

    def timings_ms(self) -> dict[str, list[float]]:
        """Recent durations of each fusion (one insert of the frames and clouds queued) and each segmentation, in ms."""
        with self._lock:
            return {name: list(values) for name, values in self._ms.items()}

    def _timed(self, step: str, work: Callable[[], object]) -> bool:
        """Run one step; record its duration if it did something. False when it did nothing or failed."""
        started = time.perf_counter()
        try:
            result = work()
        except SegmentationCancelled:  # stop() ended it; SegmentationProcess.close() logged that
            return False
        except Exception as error:  # noqa: BLE001 - a worker must outlive one bad step; the node logs it
            self._on_error(step, error)
            return False
        if result is not None and result != 0:
            with self._lock:
                self._ms[step].append((time.perf_counter() - started) * 1e3)
        return result is not None and result != 0

    def _fusion_loop(self) -> None:
        while not self._stop.is_set():
            if self.memory.wait_for_fusion(0.1):
                self._timed("fusion", self.memory.fuse_pending)

    def _segmentation_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.period_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            version = self.memory.map_version
            if version == self._segmented_version:
                continue
            if self._timed("segmentation", lambda: self.memory.update_proposals(self._segmenter) is not None):
                self._segmented_version = version
                with self._lock:
                    self._segmentations += 1


class SegmentationCancelled(RuntimeError):
    """``SegmentationProcess.close()`` ended the child while this call's segmentation ran."""


def _serve(connection: Connection) -> None:
    """The child's loop: ``(function, args)`` in, ``(True, result)`` or ``(False, exception)`` out; ``None`` or a
    closed pipe ends it. Ctrl-C is the parent's to handle: the parent ends this process (``close()``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        function, args = request
        try:
            reply = (True, function(*args))
        except Exception as error:  # noqa: BLE001 - raised again in the parent
            reply = (False, error)
        try:
            connection.send(reply)
        except Exception as error:  # noqa: BLE001 - e.g. an exception that does not pickle: say what it was
            connection.send((False, RuntimeError(f"segmentation process: {type(error).__name__}: {error}")))


class _Child:
    """One spawned child running ``_serve`` and the parent's end of its pipe."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process running DDS threads
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs,), name="w2r2-segmentation", daemon=True)
        self.process.start()
        theirs.close()  # the child's end lives in the child only: its death is an EOF here
        self.idle = threading.Event()
        self.idle.set()
        self.cancelled = False

    def stop(self, timeout_s: float) -> None:
        """Ask an idle child to exit; terminate it if it has not within ``timeout_s``."""
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(timeout_s)
        self.terminate()
        self.connection.close()

    def terminate(self) -> None:
        """SIGTERM, then SIGKILL if it is still there a second later; reaped either way."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)


class SegmentationProcess:
    """A runner for ``SceneMemory.update_proposals``: ``(function, *args) -> function(*args)`` in one child process.

    The child is spawned (no fork of a process running DDS threads) on the first call and again after it
    died; an exception of the function is raised here as it was there. Calls are serialised. ``close()``
    is bounded: a segmentation in flight gets ``grace_s`` to finish, then the child is terminated (one line
    to ``log``) and that call raises ``SegmentationCancelled``, so a node's shutdown never waits out a
    segmentation of a huge map. A call after ``close()`` spawns a new child.
    """

    def __init__(self, grace_s: float = 1.0, log: Callable[[str], None] | None = None) -> None:
        if grace_s < 0:
            raise ValueError(f"SegmentationProcess: grace_s must be >= 0, got {grace_s}")
        self.grace_s = float(grace_s)
        self._log = log or logging.getLogger(__name__).warning
        self._calls = threading.Lock()  # one request in the pipe at a time
        self._lock = threading.Lock()  # guards _child
        self._child: _Child | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first call and after ``close()``)."""
        with self._lock:
            return None if self._child is None else self._child.process.pid

    @property
    def busy(self) -> bool:
        """A call is in flight."""
        with self._lock:
            return self._child is not None and not self._child.idle.is_set()

    def __call__(self, function: Callable[..., Any], *args: Any) -> Any:
        with self._calls:
            with self._lock:
                if self._child is None:
                    self._child = _Child()
                child = self._child
                child.idle.clear()  # under the lock: close() sees this call once it has taken the child
            try:
                child.connection.send((function, args))
                ok, value = child.connection.recv()
            except (EOFError, OSError):
                with self._lock:
                    if self._child is child:
                        self._child = None  # a new child on the next call
                child.terminate()
                child.connection.close()
                if child.cancelled:
                    raise SegmentationCancelled("the segmentation was stopped by close()") from None
                raise RuntimeError("the segmentation process died (it is restarted on the next update)") from None
            finally:
                child.idle.set()
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """End the child: at once when idle; a segmentation in flight gets ``grace_s``, then the child is terminated."""
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        if child.idle.wait(self.grace_s):
            child.stop(timeout_s=max(self.grace_s, 1.0))
            return
        child.cancelled = True
        self._log(f"segmentation process: a segmentation still running {self.grace_s:g} s after close(); "
                  f"terminating the child (pid {child.process.pid}); its proposals are dropped")
        child.terminate()  # the call in flight sees the pipe close and raises SegmentationCancelled
