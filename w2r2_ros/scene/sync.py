"""Pair RGB, depth and camera pose by timestamp.

RGB and depth arrive as separate streams: each image waits (in a bounded
queue) for its partner within ``tolerance_s``. The pose of a pair comes from a
bounded pose history: interpolated (linear translation, slerp rotation) when
the stamp lies between two poses that are both within tolerance, else the
nearest pose within tolerance, else the frame is dropped with ``NO_POSE``.

Poses often arrive *after* their images: over DDS under load a pose callback
runs 0.1-1.2 s after the images of the same instant (bench/ingest.py saw 20-57 %
of frames lost when lookup was immediate). So a pair newer than the newest pose
waits, in a queue of at most ``max_pose_wait_frames``, until a pose at or after
its stamp arrives; that pose settles it for good (later poses are later still):
it is released with the pose looked up as above, or dropped with ``NO_POSE``.
A waiting pair is dropped with ``POSE_TIMEOUT`` once an image stamped
``max_pose_wait_s`` or more after it arrives (it has waited that long), and the
oldest with ``POSE_QUEUE_FULL`` when the queue overflows. Waiting is measured in sensor time (image stamps), never
the wall clock, so a bag replayed at any speed syncs the same. A pair that is
already ``max_pose_wait_s`` or more ahead of the newest pose (the pose source
stalled or died) and a pair older than the pose history are dropped at once with
``NO_POSE``. ``max_pose_wait_s=0`` turns waiting off: every lookup is immediate.
Outcomes of pairs that waited are collected by :meth:`TimestampSync.take_released`.

Every drop carries a :class:`DropReason` so that a node can log a rate-limited
warning saying why. Stamps that go backwards are dropped, not reordered; after a
deliberate clock jump (a looped bag) the owner calls :meth:`TimestampSync.reset`.
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import make_transform


class DropReason(Enum):
    NO_POSE = "no camera pose within the sync tolerance"
    STAMP_BACKWARDS = "timestamp older than the previous one on the same stream"
    UNPAIRED = "no depth/rgb partner within the sync tolerance"
    INVALID_POSE = "camera pose is not a finite rigid 4x4 transform"
    POSE_TIMEOUT = "waited max_pose_wait_s for a camera pose that did not arrive"
    POSE_QUEUE_FULL = "too many frames waiting for their camera pose (max_pose_wait_frames), oldest dropped"
    FUSION_BACKLOG = "the fusion worker fell behind (max_fusion_backlog frames queued), oldest not fused"
    OUT_OF_RANGE = "camera position farther than max_coordinate_m from the map origin"


@dataclass(frozen=True)
class SyncedFrame:
    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    cam_to_world: np.ndarray


@dataclass(frozen=True)
class SyncOutcome:
    """What became of one image (or image pair): a synced frame, the reason it was dropped, or neither
    while the pair waits for its pose (its final outcome then comes from :meth:`TimestampSync.take_released`)."""

    stamp: float
    frame: SyncedFrame | None
    reason: DropReason | None

    @property
    def waiting(self) -> bool:
        return self.frame is None and self.reason is None


def is_rigid_transform(transform: np.ndarray, tolerance: float = 1e-3) -> bool:
    transform = np.asarray(transform, dtype=np.float64)
    if transform.shape != (4, 4) or not np.all(np.isfinite(transform)):
        return False
    rotation = transform[:3, :3]
    orthonormal = np.allclose(rotation @ rotation.T, np.eye(3), atol=tolerance)
    return bool(orthonormal and abs(np.linalg.det(rotation) - 1.0) < tolerance and np.allclose(transform[3], [0, 0, 0, 1]))


class PoseHistory:
    """The newest ``max_poses`` camera poses, in stamp order."""

    def __init__(self, tolerance_s: float, max_poses: int = 512) -> None:
        self.tolerance_s = tolerance_s
        self._stamps: deque[float] = deque(maxlen=max_poses)
        self._poses: deque[np.ndarray] = deque(maxlen=max_poses)

    def add(self, stamp: float, cam_to_world: np.ndarray) -> DropReason | None:
        if not is_rigid_transform(cam_to_world):
            return DropReason.INVALID_POSE
        if self._stamps and stamp < self._stamps[-1]:
            return DropReason.STAMP_BACKWARDS
        pose = np.array(cam_to_world, dtype=np.float64)
        if self._stamps and stamp == self._stamps[-1]:
            self._poses[-1] = pose
        else:
            self._stamps.append(float(stamp))
            self._poses.append(pose)
        return None

    def lookup(self, stamp: float) -> np.ndarray | None:
        """The pose at ``stamp`` (interpolated or nearest within tolerance), or None."""
        if not self._stamps:
            return None
        after = bisect.bisect_left(self._stamps, stamp)
        before = after - 1
        if after < len(self._stamps) and self._stamps[after] == stamp:
            return self._poses[after].copy()
        gap_before = stamp - self._stamps[before] if before >= 0 else np.inf
        gap_after = self._stamps[after] - stamp if after < len(self._stamps) else np.inf
        if gap_before <= self.tolerance_s and gap_after <= self.tolerance_s:
            return self._interpolate(before, after, stamp)
        if min(gap_before, gap_after) > self.tolerance_s:
            return None
        return (self._poses[before] if gap_before <= gap_after else self._poses[after]).copy()

    def _interpolate(self, before: int, after: int, stamp: float) -> np.ndarray:
        t0, t1 = self._stamps[before], self._stamps[after]
        p0, p1 = self._poses[before], self._poses[after]
        alpha = (stamp - t0) / (t1 - t0)
        rotations = Rotation.from_matrix(np.stack([p0[:3, :3], p1[:3, :3]]))
        rotation = Slerp([0.0, 1.0], rotations)([alpha]).as_matrix()[0]
        return make_transform(rotation, (1.0 - alpha) * p0[:3, 3] + alpha * p1[:3, 3])

    def newest_stamp(self) -> float | None:
        return self._stamps[-1] if self._stamps else None

    def newest(self) -> tuple[float, np.ndarray] | None:
        """(stamp, pose) of the newest pose, or None."""
        return (self._stamps[-1], self._poses[-1].copy()) if self._stamps else None

    def clear(self) -> None:
        self._stamps.clear()
        self._poses.clear()

    def __len__(self) -> int:
        return len(self._stamps)


@dataclass
class _Pending:
    stamp: float
    image: np.ndarray
    intrinsics: Intrinsics | None


@dataclass(frozen=True)
class _AwaitingPose:
    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics


class TimestampSync:
    """Pairs RGB with depth and looks up the camera pose; all buffers are bounded.

    ``max_pending`` images per stream wait for their partner; ``max_poses``
    poses are kept (512 is about 5 s of a 100 Hz odometry stream); at most
    ``max_pose_wait_frames`` pairs wait up to ``max_pose_wait_s`` for their pose
    (the default 0 looks poses up at once; ``SceneMemoryConfig`` turns waiting on).
    """

    def __init__(
        self,
        tolerance_s: float = 0.05,
        max_pending: int = 8,
        max_poses: int = 512,
        max_pose_wait_s: float = 0.0,
        max_pose_wait_frames: int = 32,
    ) -> None:
        if tolerance_s < 0 or max_pending < 1 or max_poses < 2 or max_pose_wait_s < 0 or max_pose_wait_frames < 1:
            raise ValueError(
                f"TimestampSync: need tolerance_s >= 0, max_pending >= 1, max_poses >= 2, max_pose_wait_s >= 0, "
                f"max_pose_wait_frames >= 1 (got {tolerance_s}, {max_pending}, {max_poses}, {max_pose_wait_s}, "
                f"{max_pose_wait_frames})"
            )
        self.tolerance_s = tolerance_s
        self.max_pending = max_pending
        self.max_pose_wait_s = max_pose_wait_s
        self.max_pose_wait_frames = max_pose_wait_frames
        self.poses = PoseHistory(tolerance_s, max_poses)
        self._rgb: deque[_Pending] = deque()
        self._depth: deque[_Pending] = deque()
        self._awaiting_pose: deque[_AwaitingPose] = deque()  # in stamp order
        self._released: list[SyncOutcome] = []
        self._last_stamp: dict[str, float] = {}

    def add_pose(self, stamp: float, cam_to_world: np.ndarray) -> DropReason | None:
        """Record a camera pose; returns why it was rejected, or None.

        Pairs waiting for a pose at or before ``stamp`` are settled by it; see :meth:`take_released`.
        """
        stamp = float(stamp)
        reason = self.poses.add(stamp, cam_to_world)
        if reason is None:
            while self._awaiting_pose and self._awaiting_pose[0].stamp <= stamp:
                waiting = self._awaiting_pose.popleft()
                self._released.append(self._looked_up(waiting.stamp, waiting.rgb, waiting.depth, waiting.intrinsics))
        return reason

    def take_released(self) -> list[SyncOutcome]:
        """Final outcomes (in stamp order) of pairs that waited for their pose, since the last call."""
        released, self._released = self._released, []
        return released

    def pose_at(self, stamp: float) -> np.ndarray | None:
        return self.poses.lookup(float(stamp))

    def add_rgb(self, stamp: float, rgb: np.ndarray, intrinsics: Intrinsics) -> list[SyncOutcome]:
        """Offer a colour image; returns the outcomes this caused (a synced pair and/or drops)."""
        return self._offer("rgb", _Pending(float(stamp), rgb, intrinsics), self._rgb, self._depth)

    def add_depth(self, stamp: float, depth: np.ndarray) -> list[SyncOutcome]:
        """Offer a depth image registered to the colour camera; returns the outcomes this caused."""
        return self._offer("depth", _Pending(float(stamp), depth, None), self._depth, self._rgb)

    def add_rgbd(
        self,
        stamp: float,
        rgb: np.ndarray,
        depth: np.ndarray,
        intrinsics: Intrinsics,
        cam_to_world: np.ndarray | None = None,
    ) -> SyncOutcome:
        """An already paired RGB-D frame: the pose is looked up unless given."""
        stamp = float(stamp)
        if self._went_backwards("rgbd", stamp):
            return SyncOutcome(stamp, None, DropReason.STAMP_BACKWARDS)
        if cam_to_world is None:
            return self._with_pose(stamp, rgb, depth, intrinsics)
        if not is_rigid_transform(cam_to_world):
            return SyncOutcome(stamp, None, DropReason.INVALID_POSE)
        return SyncOutcome(stamp, SyncedFrame(stamp, rgb, depth, intrinsics, np.array(cam_to_world, dtype=np.float64)), None)

    def reset(self) -> None:
        """Forget every pose, pending image, pair waiting for its pose, unread release and last stamp
        (after a deliberate clock jump)."""
        self.poses.clear()
        self._rgb.clear()
        self._depth.clear()
        self._awaiting_pose.clear()
        self._released.clear()
        self._last_stamp.clear()

    def pending(self) -> int:
        """Images waiting for their rgb/depth partner."""
        return len(self._rgb) + len(self._depth)

    def awaiting_pose(self) -> int:
        """Synced pairs waiting for their camera pose."""
        return len(self._awaiting_pose)

    def _went_backwards(self, stream: str, stamp: float) -> bool:
        if stamp < self._last_stamp.get(stream, -np.inf):
            return True
        self._last_stamp[stream] = stamp
        return False

    def _offer(self, stream: str, item: _Pending, own: deque[_Pending], other: deque[_Pending]) -> list[SyncOutcome]:
        if self._went_backwards(stream, item.stamp):
            return [SyncOutcome(item.stamp, None, DropReason.STAMP_BACKWARDS)]
        outcomes: list[SyncOutcome] = []
        partner = min(
            (p for p in other if abs(p.stamp - item.stamp) <= self.tolerance_s),
            key=lambda p: abs(p.stamp - item.stamp),
            default=None,
        )
        if partner is None:
            own.append(item)
            while len(own) > self.max_pending:
                outcomes.append(SyncOutcome(own.popleft().stamp, None, DropReason.UNPAIRED))
            return outcomes
        # The waiting images of this stream are all older than the new one, and those of the
        # other stream older than the partner: streams only move forward, so none can pair any more.
        while other[0] is not partner:
            outcomes.append(SyncOutcome(other.popleft().stamp, None, DropReason.UNPAIRED))
        other.popleft()
        outcomes.extend(SyncOutcome(p.stamp, None, DropReason.UNPAIRED) for p in own)
        own.clear()
        rgb, depth = (item, partner) if item.intrinsics is not None else (partner, item)
        outcomes.append(self._with_pose(rgb.stamp, rgb.image, depth.image, rgb.intrinsics))
        return outcomes

    def _with_pose(self, stamp: float, rgb: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics) -> SyncOutcome:
        """The pair with its pose now, or a waiting outcome when a pose still to come may cover it."""
        self._expire_waiting(stamp)
        newest = self.poses.newest_stamp()
        if self.max_pose_wait_s == 0 or (newest is not None and stamp <= newest):
            return self._looked_up(stamp, rgb, depth, intrinsics)
        if newest is not None and stamp - newest >= self.max_pose_wait_s:
            return SyncOutcome(stamp, None, DropReason.NO_POSE)
        self._awaiting_pose.append(_AwaitingPose(stamp, rgb, depth, intrinsics))
        if len(self._awaiting_pose) > self.max_pose_wait_frames:
            self._released.append(SyncOutcome(self._awaiting_pose.popleft().stamp, None, DropReason.POSE_QUEUE_FULL))
        return SyncOutcome(stamp, None, None)

    def _expire_waiting(self, now: float) -> None:
        """Drop the waiting pairs that an image stamped ``now`` shows to have waited ``max_pose_wait_s``."""
        while self._awaiting_pose and now - self._awaiting_pose[0].stamp >= self.max_pose_wait_s:
            self._released.append(SyncOutcome(self._awaiting_pose.popleft().stamp, None, DropReason.POSE_TIMEOUT))

    def _looked_up(self, stamp: float, rgb: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics) -> SyncOutcome:
        pose = self.poses.lookup(stamp)
        if pose is None:
            return SyncOutcome(stamp, None, DropReason.NO_POSE)
        return SyncOutcome(stamp, SyncedFrame(stamp, rgb, depth, intrinsics, pose), None)

