"""A tf2-style transform tree in plain Python: static and dynamic transforms, interpolation, chain lookup.

What ``/tf`` and ``/tf_static`` carry: each transform says where a *child*
frame sits in its *parent* frame at a time; together they form a tree (every
frame has at most one parent). :meth:`TransformBuffer.lookup` walks the tree
from both frames up to their common ancestor and composes the links, each at the
requested time. It behaves as tf2's ``BufferCore`` does, so the node reads a
recording the same way here as with ``tf2_ros`` on a robot
(``w2r2_ros.ros.tf_listener`` picks ``tf2_ros`` there):

- static transforms hold at every time; dynamic ones are kept for
  ``cache_time_s`` behind the newest sample of their link and interpolated
  between the two samples around the requested time (translation linearly,
  rotation by slerp);
- no extrapolation: a time after the newest (or before the oldest) sample of a
  dynamic link raises :class:`ExtrapolationError`, which says whether it is the
  future (wait for data) or the past (the data is gone);
- ``stamp=None`` means "the latest time every link of the chain has", tf2's
  ``Time(0)``.

Choices where tf2 leaves room, and why:

- **Non-unit quaternions**: a quaternion whose norm is within
  ``quaternion_tolerance`` of 1 is normalised (float32 rounding and quaternions
  printed with a few decimals in launch files); anything further off (zero,
  NaN, a typo) is rejected with :class:`InvalidTransformError`, as tf2 rejects
  it: normalising a clearly wrong rotation would hide a broken publisher.
- **Cycles**: a transform that would make a frame its own ancestor is rejected
  at insertion (tf2 accepts it and fails every later lookup through the loop);
  the tree already in the buffer stays usable.
- **Re-parenting**: a frame that gets a new parent keeps only the new link (its
  older samples described another tree), as when a robot re-localises into a
  new map.

Every error is a :class:`TransformError` (a ``ValueError``) with one line that
names the frames and times involved. Thread-safe.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

import numpy as np

from w2r2_ros.geometry.transforms import make_transform, rotation_from_quaternion


# Float seconds resolve only ~0.24 us at today's epoch (ROS stamps are integer ns): times this close are equal.
STAMP_TOLERANCE_S = 1e-6


class TransformError(ValueError):
    """A transform that cannot be stored or looked up; the message says which frames and why."""


class UnknownFrameError(TransformError):
    """A frame that no transform has mentioned (yet)."""


class ConnectivityError(TransformError):
    """Both frames are known but lie in different trees."""


class ExtrapolationError(TransformError):
    """The requested time is outside the data of a dynamic link. ``future``: newer than its newest sample."""

    def __init__(self, message: str, future: bool) -> None:
        super().__init__(message)
        self.future = future


class InvalidTransformError(TransformError):
    """A transform refused at insertion: non-finite values, a non-unit quaternion, a self-parent or a cycle."""


@dataclass(frozen=True)
class TransformBufferConfig:
    """``cache_time_s``: how far behind its newest sample a dynamic link is kept (tf2's default, 10 s).
    ``quaternion_tolerance``: accepted ``| |q| - 1 |``; such quaternions are normalised, others refused."""

    cache_time_s: float = 10.0
    quaternion_tolerance: float = 1e-3


@dataclass
class _Link:
    """One child frame's transform to its parent: a single static one, or time-sorted samples."""

    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    rotations: list[np.ndarray] = field(default_factory=list)  # unit quaternions (x, y, z, w)


def checked_transform(
    parent: str, child: str, stamp: float, translation: np.ndarray, rotation_xyzw: np.ndarray, quaternion_tolerance: float
) -> tuple[str, str, np.ndarray, np.ndarray]:
    """``(parent, child, translation, unit quaternion)``, or InvalidTransformError saying what is wrong.

    A leading ``/`` is dropped from frame ids, as tf2 does (ROS 1 allowed it).
    """
    parent, child = parent.lstrip("/"), child.lstrip("/")
    name = f"'{parent}' -> '{child}'"
    if not parent or not child:
        raise InvalidTransformError(f"transform {name}: empty frame id")
    if parent == child:
        raise InvalidTransformError(f"transform {name}: a frame cannot be its own parent")
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    q = np.asarray(rotation_xyzw, dtype=np.float64).reshape(4)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q)) and np.isfinite(stamp)):
        raise InvalidTransformError(f"transform {name} at {stamp:.3f}: non-finite values t={t.tolist()} q={q.tolist()}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > quaternion_tolerance:
        raise InvalidTransformError(
            f"transform {name} at {stamp:.3f}: quaternion {q.tolist()} has norm {norm:.4f}, not 1 "
            f"(refused, as tf2 does; tolerance {quaternion_tolerance})"
        )
    return parent, child, t, q / norm


def slerp(q0: np.ndarray, q1: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions (x, y, z, w), along the shorter arc."""
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: a normalised lerp is exact to float precision and avoids 0/0
        q = q0 + fraction * (q1 - q0)
        return q / np.linalg.norm(q)
    angle = np.arccos(dot)
    return (np.sin((1.0 - fraction) * angle) * q0 + np.sin(fraction * angle) * q1) / np.sin(angle)


class TransformBuffer:
    """The transform tree (see the module docstring): :meth:`set_transform` in, :meth:`lookup` out."""

    def __init__(self, config: TransformBufferConfig = TransformBufferConfig()) -> None:
        self.config = config
        self._links: dict[str, _Link] = {}
        self._lock = threading.Lock()

    # --- input -----------------------------------------------------------------------------------

    def set_transform(
        self,
        parent: str,
        child: str,
        stamp: float,
        translation: np.ndarray,
        rotation_xyzw: np.ndarray,
        static: bool = False,
    ) -> None:
        """Store where ``child`` sits in ``parent`` at ``stamp`` (seconds); ``static`` holds at all times."""
        parent, child, t, q = checked_transform(parent, child, stamp, translation, rotation_xyzw,
                                                self.config.quaternion_tolerance)
        name = f"'{parent}' -> '{child}'"
        with self._lock:
            ancestor = parent
            while ancestor in self._links:
                ancestor = self._links[ancestor].parent
                if ancestor == child:
                    raise InvalidTransformError(
                        f"transform {name}: '{child}' is already an ancestor of '{parent}', this would close a cycle"
                    )
            link = self._links.get(child)
            if link is None or link.parent != parent or link.static != static:
                link = self._links[child] = _Link(parent, static)
            if static:
                link.stamps, link.translations, link.rotations = [stamp], [t], [q]
                return
            index = bisect.bisect_left(link.stamps, stamp)
            if index < len(link.stamps) and link.stamps[index] == stamp:
                link.translations[index], link.rotations[index] = t, q
            else:
                link.stamps.insert(index, stamp)
                link.translations.insert(index, t)
                link.rotations.insert(index, q)
            keep_from = bisect.bisect_left(link.stamps, link.stamps[-1] - self.config.cache_time_s)
            if keep_from > 0:
                del link.stamps[:keep_from], link.translations[:keep_from], link.rotations[:keep_from]

    def clear(self) -> None:
        """Forget the dynamic transforms; static ones stay, as in tf2 (a time jump backwards: bag loop,
        simulated clock restart; /tf_static is latched and would not come again)."""
        with self._lock:
            self._links = {child: link for child, link in self._links.items() if link.static}

    # --- output ----------------------------------------------------------------------------------

    def frames(self) -> set[str]:
        with self._lock:
            return set(self._links) | {link.parent for link in self._links.values()}

    def can_transform(self, target_frame: str, source_frame: str, stamp: float | None = None) -> bool:
        try:
            self.lookup(target_frame, source_frame, stamp)
        except TransformError:
            return False
        return True

    def lookup(self, target_frame: str, source_frame: str, stamp: float | None = None) -> np.ndarray:
        """The 4x4 transform that maps points in ``source_frame`` into ``target_frame`` at ``stamp``.

        For a camera: ``lookup("map", "camera_optical_frame", t)`` is its
        camera-to-map pose. ``stamp=None``: the latest time all links have.
        """
        target_frame, source_frame = target_frame.lstrip("/"), source_frame.lstrip("/")
        with self._lock:
            known = set(self._links) | {link.parent for link in self._links.values()}
            for frame in (target_frame, source_frame):
                if frame not in known:
                    listed = ", ".join(sorted(known)[:12]) or "none yet"
                    raise UnknownFrameError(f"frame '{frame}' does not exist in the tf tree (frames: {listed})")
            if target_frame == source_frame:
                return np.eye(4)
            source_chain, target_chain = self._chain(source_frame), self._chain(target_frame)
            common = next((frame for frame in source_chain if frame in target_chain), None)
            if common is None:
                raise ConnectivityError(
                    f"frames '{source_frame}' and '{target_frame}' are not connected: their trees have the roots "
                    f"'{source_chain[-1]}' and '{target_chain[-1]}'"
                )
            up_source = source_chain[: source_chain.index(common)]  # child frames from source up to below common
            up_target = target_chain[: target_chain.index(common)]
            if stamp is None:
                stamp = self._latest_common_time(up_source + up_target)
            common_from_source = self._compose(up_source, stamp, source_frame, target_frame)
            common_from_target = self._compose(up_target, stamp, source_frame, target_frame)
        return np.linalg.inv(common_from_target) @ common_from_source

    # --- internals (lock held) ---------------------------------------------------------------------

    def _chain(self, frame: str) -> list[str]:
        """``frame`` and its ancestors up to the root."""
        chain = [frame]
        while chain[-1] in self._links:
            chain.append(self._links[chain[-1]].parent)
        return chain

    def _latest_common_time(self, children: list[str]) -> float | None:
        dynamic = [self._links[c] for c in children if not self._links[c].static]
        return min(link.stamps[-1] for link in dynamic) if dynamic else None

    def _compose(self, children: list[str], stamp: float | None, source: str, target: str) -> np.ndarray:
        """parent-of-last <- ... <- first child, each link at ``stamp``."""
        result = np.eye(4)
        for child in reversed(children):
            result = result @ self._link_at(child, stamp, source, target)
        return result

    def _link_at(self, child: str, stamp: float | None, source: str, target: str) -> np.ndarray:
        link = self._links[child]
        if link.static or stamp is None:
            return make_transform(rotation_from_quaternion(link.rotations[-1]), link.translations[-1])
        first, last = link.stamps[0], link.stamps[-1]
        if stamp > last + STAMP_TOLERANCE_S or stamp < first - STAMP_TOLERANCE_S:
            future = stamp > last
            raise ExtrapolationError(
                f"looking up '{source}' in '{target}' at {stamp:.3f} would need extrapolation into the "
                f"{'future' if future else 'past'}: link '{link.parent}' -> '{child}' has data from {first:.3f} to {last:.3f}",
                future=future,
            )
        stamp = min(max(stamp, first), last)
        index = bisect.bisect_left(link.stamps, stamp)
        if link.stamps[index] - stamp <= STAMP_TOLERANCE_S:
            return make_transform(rotation_from_quaternion(link.rotations[index]), link.translations[index])
        t0, t1 = link.stamps[index - 1], link.stamps[index]
        fraction = (stamp - t0) / (t1 - t0)
        translation = (1.0 - fraction) * link.translations[index - 1] + fraction * link.translations[index]
        rotation = slerp(link.rotations[index - 1], link.rotations[index], fraction)
        return make_transform(rotation_from_quaternion(rotation), translation)


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) points mapped by a 4x4 transform, in the points' dtype."""
    points = np.asarray(points)
    rotation, translation = transform[:3, :3], transform[:3, 3]
    return (points @ rotation.T.astype(points.dtype) + translation.astype(points.dtype)).astype(points.dtype, copy=False)
