"""Hold data whose transform has not arrived yet, and release it in order when ``/tf`` catches up.

A camera image stamped t usually arrives before the ``/tf`` message that
covers t (odometry is published after the image it was computed from, and a
bag interleaves them as received), so a lookup at t often fails with
"extrapolation into the future" for a few milliseconds. tf2_ros solves this
with a ``MessageFilter``; this is the same idea, small and rclpy-free: items
wait (at most ``max_wait_s`` of stamp time, at most ``max_items``) and are
retried after each ``/tf`` message; what comes out keeps the arrival order, so
its stamps increase.

Failures that waiting cannot fix (extrapolation into the past: the data is
older than the buffer's cache) are raised at once.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from w2r2_ros.geometry.transform_buffer import ExtrapolationError, TransformError

Payload = TypeVar("Payload")


class TransformLookup(Protocol):
    """What a waiter needs of a transform buffer: ``TransformBuffer`` or the tf2_ros adapter."""

    def lookup(self, target_frame: str, source_frame: str, stamp: float | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class Resolved(Generic[Payload]):
    stamp: float
    transform: np.ndarray  # maps the item's frame into the target frame
    payload: Payload


@dataclass(frozen=True)
class GaveUp(Generic[Payload]):
    stamp: float
    frame: str
    payload: Payload
    problem: str  # the last lookup error


@dataclass
class _Waiting(Generic[Payload]):
    stamp: float
    frame: str
    payload: Payload
    problem: str = ""


class TransformWaiter(Generic[Payload]):
    """Items stamped in some frame, waiting for its transform into ``target_frame`` (see the module docstring)."""

    def __init__(self, buffer: TransformLookup, target_frame: str, max_wait_s: float, max_items: int,
                 wait_for_frames: bool = True) -> None:
        self.buffer = buffer
        self.wait_for_frames = wait_for_frames  # False: an unknown or unconnected frame raises at once
        self.target_frame = target_frame
        self.max_wait_s = max_wait_s
        self.max_items = max_items
        self._waiting: deque[_Waiting[Payload]] = deque()
        self._gave_up: list[GaveUp[Payload]] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, stamp: float, frame: str, payload: Payload) -> list[Resolved[Payload]]:
        """Queue an item; returns every item (this one included) whose transform is now known, in order.

        Raises ``ExtrapolationError`` (past) at once: waiting would not help;
        without ``wait_for_frames``, any other lookup error of an item that
        would otherwise be looked up at once, too.
        Items that waited longer than ``max_wait_s`` behind ``stamp``, or
        beyond ``max_items``, move to :meth:`take_gave_up`.
        """
        if not self._waiting:  # the common case: nothing queued, look up at once
            try:
                return [Resolved(stamp, self.buffer.lookup(self.target_frame, frame, stamp), payload)]
            except ExtrapolationError as error:
                if not error.future:
                    raise
                problem = str(error)
            except TransformError as error:
                if not self.wait_for_frames:
                    raise
                problem = str(error)
            self._waiting.append(_Waiting(stamp, frame, payload, problem))
            return []
        self._waiting.append(_Waiting(stamp, frame, payload))
        while self._waiting and (len(self._waiting) > self.max_items or self._waiting[0].stamp < stamp - self.max_wait_s):
            self._give_up(self._waiting.popleft())
        return self.retry()

    def retry(self) -> list[Resolved[Payload]]:
        """After new transforms arrived: release every waiting item whose lookup now succeeds, in order.

        An item still stuck *before* one that resolves is given up: releasing it later would put
        its stamp behind the released one (an image in a frame the tree never had must not hold
        up the good ones behind it). Items of a frame already found waiting for future data are
        not looked up again (their later stamps would wait too).
        """
        released: list[Resolved[Payload]] = []
        stuck: list[_Waiting[Payload]] = []
        future_blocked: set[str] = set()
        while self._waiting:
            item = self._waiting.popleft()
            if item.frame in future_blocked:
                stuck.append(item)
                continue
            try:
                transform = self.buffer.lookup(self.target_frame, item.frame, item.stamp)
            except ExtrapolationError as error:
                if not error.future:
                    self._give_up(item, str(error))
                    continue
                item.problem = str(error)
                future_blocked.add(item.frame)
                stuck.append(item)
                continue
            except TransformError as error:
                item.problem = str(error)
                stuck.append(item)
                continue
            for earlier in stuck:
                self._give_up(earlier)
            stuck = []
            released.append(Resolved(item.stamp, transform, item.payload))
        self._waiting.extend(stuck)
        return released

    def take_gave_up(self) -> list[GaveUp[Payload]]:
        """Items dropped since the last call, each with the lookup error that kept it waiting."""
        gave_up, self._gave_up = self._gave_up, []
        return gave_up

    def clear(self) -> list[GaveUp[Payload]]:
        """Give up on everything waiting (a reset); returns it."""
        while self._waiting:
            self._give_up(self._waiting.popleft(), "the scene memory was reset")
        return self.take_gave_up()

    def _give_up(self, item: _Waiting[Payload], problem: str | None = None) -> None:
        why = problem or item.problem or f"no transform within {self.max_wait_s} s"
        self._gave_up.append(GaveUp(item.stamp, item.frame, item.payload, why))
