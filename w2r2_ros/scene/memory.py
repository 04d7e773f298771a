"""SceneMemory: the thread-safe composition of sync, keyframes, voxel fusion and proposals.

The scene memory node writes (poses, images, clouds) while the grounding node
reads (:meth:`SceneMemory.snapshot`); one lock guards every state change and
every snapshot, so a reader never sees a half-updated state. Snapshots hold
copies or read-only arrays. Every buffer is bounded: poses, pending images and
frames waiting for their pose (``TimestampSync``), keyframes (``KeyframeBuffer``),
voxels (``VoxelMap``).

A frame whose pose has not arrived yet waits (``max_pose_wait_s``, see
``sync.py``): its writer gets a ``WAITING`` status, and the final status (fused,
or dropped and why) comes out of :meth:`SceneMemory.take_released` after the
call that settled it (usually :meth:`SceneMemory.add_pose`).

Fusing a frame costs tens of milliseconds and grows with the map (sorted voxel
arrays), clustering hundreds at 300k voxels. A node must not spend that in its
sensor callbacks, so with :meth:`SceneMemory.set_background_fusion` the writers
only sync and decide (keyframe, fuse or skip) and queue the frames and clouds to
fuse; a worker (``workers.SceneWorkers``) drains the queue with
:meth:`fuse_pending` and reclusters with :meth:`update_proposals`. The voxel map
has its own lock, so fusion and the copy that clustering starts from never
hold up the writers; without background fusion everything happens in the
caller, as tests and training want it.
"""
from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

import numpy as np

from w2r2_ros.geometry.boxes import oriented_iou_matrix
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.scene.depth_decimation import decimate_depth
from w2r2_ros.scene.depth_edges import drop_depth_edges, drop_depth_speckles
from w2r2_ros.scene.depth_noise import DepthNoise
from w2r2_ros.scene.keyframes import Keyframe, KeyframeBuffer, KeyframePolicy
from w2r2_ros.scene.proposals import Proposal, ProposalConfig, ProposalResult, ProposalWarning, segment_scene
from w2r2_ros.scene.sync import DropReason, SyncedFrame, SyncOutcome, TimestampSync

_CloudJob = tuple[float, np.ndarray, "np.ndarray | None"]  # stamp, map-frame points, colours
# Runs a function on arguments and returns its result: in the caller (the default), or e.g. in another
# process (``workers.SegmentationProcess``).
Runner = Callable[..., Any]
from w2r2_ros.scene.voxel_map import VoxelMap


@dataclass(frozen=True)
class SceneMemoryConfig:
    """Every threshold of the scene memory, with defaults for a 640x480 RGB-D camera at ~30 Hz."""

    sync_tolerance_s: float = 0.05
    max_pending_images: int = 8
    max_poses: int = 512
    # A frame newer than the newest pose waits this long (in image-stamp time) for its pose: over DDS
    # under load poses arrive 0.1-1.2 s after their images (bench/ingest.py). 0: look up at once.
    max_pose_wait_s: float = 1.0
    # At most this many frames wait for their pose (~2 MB each at 640x480: ~70 MB); the oldest is dropped beyond.
    max_pose_wait_frames: int = 32
    keyframe_policy: KeyframePolicy = field(default_factory=KeyframePolicy)
    max_keyframes: int = 32
    voxel_size: float = 0.05
    max_voxels: int = 200_000
    # Beyond max_voxels, voxels holding one reading that the last evict_grace_inserts fused frames did
    # not confirm are evicted first (scene/voxel_map.py), then the least recently updated.
    evict_grace_inserts: int = 10
    # Every depth_stride-th depth row and column is fused; 0: the smallest stride that keeps a frame
    # within depth_max_points (35k: stride 3 at 640x480, 2 at 320x240, 6 at 1280x720): a low-resolution
    # camera at stride 3 gave fragments (docs/PROPOSALS.md, "Sparse maps": recall at 320x240 is higher
    # at stride 2 in every held-out condition), while a frame's fusion cost stays that of a 640x480 one.
    depth_stride: int = 0
    depth_max_points: int = 35_000
    min_depth_m: float = 0.1
    max_depth_m: float = 6.0  # beyond: not fused (the keyframe keeps it for the model)
    # No map position (camera pose, cloud point, depth) lies farther than this from the origin: beyond
    # it a value is not physical (a pose at 1e38 m, a depth of 1e30 m) and would turn the model's
    # geometry into inf/NaN scores. Poses beyond are dropped (OUT_OF_RANGE), cloud points skipped and
    # depth pixels made invalid, in the keyframe too.
    max_coordinate_m: float = 1000.0
    # Frames that are not keyframes are fused at most this often (fusion costs tens of ms per frame).
    min_fuse_interval_s: float = 0.2
    # Voxels hit by fewer points than this are left out of proposals. 1 keeps thin parts (a lamp's
    # pole, chair legs) seen by a low-resolution camera; flying pixels are dropped before fusion
    # instead (depth_edge_ratio).
    proposal_min_hits: int = 1
    # Depth pixels that differ from a neighbour by more than this share of their depth (and 5 cm) are
    # flying pixels at a discontinuity and are not fused (scene/depth_edges.py); 0: fuse them.
    depth_edge_ratio: float = 0.04
    # The camera's axial noise model: readings that no neighbouring pixel confirms within
    # depth_noise.agree_sigmas sigmas (stray returns) are not fused when drop_depth_speckles
    # (scene/depth_edges.py).
    depth_noise: DepthNoise = field(default_factory=DepthNoise)
    drop_depth_speckles: bool = True
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    # A new proposal inherits the id of the previous proposal it overlaps most, if by at least this IoU.
    proposal_match_iou: float = 0.25
    # With background fusion, at most this many frames/clouds wait for the fusion worker; beyond, the
    # oldest is dropped and counted (DropReason.FUSION_BACKLOG).
    max_fusion_backlog: int = 16


# update_proposals waits at most this long for a batch the fusion worker is inserting (an insert takes tens of ms).
_FUSED_WAIT_S = 5.0
# Unread statuses of frames released after waiting for their pose (take_released); ~30 s at 30 Hz.
_MAX_RELEASED = 1024


class FrameOutcome(Enum):
    KEYFRAME = "keyframe"  # stored as a keyframe and fused
    FUSED = "fused"  # fused into the voxel map only
    SKIPPED = "skipped"  # synced, but neither a keyframe nor due for fusion (min_fuse_interval_s)
    WAITING = "waiting"  # paired, waiting for its pose; its final status comes from take_released()
    DROPPED = "dropped"  # see the reason


@dataclass(frozen=True)
class IngestStatus:
    stamp: float
    outcome: FrameOutcome
    reason: DropReason | None = None

    @property
    def dropped(self) -> bool:
        return self.outcome is FrameOutcome.DROPPED

    def __str__(self) -> str:
        why = f" ({self.reason.value})" if self.reason is not None else ""
        return f"frame at {self.stamp:.3f}: {self.outcome.value}{why}"


@dataclass(frozen=True)
class SceneSnapshot:
    """A consistent copy of the scene: what the grounding model reads."""

    keyframes: tuple[Keyframe, ...]
    proposals: tuple[Proposal, ...]
    cloud_points: np.ndarray  # (0, 3) when taken with include_cloud=False
    cloud_colors: np.ndarray
    stamp: float | None
    n_voxels: int  # voxels in the memory, whether or not the cloud was copied
    # The newest camera pose (4x4, camera -> map) the memory holds, pose stream or keyframe: where the robot looks
    # now, the view "left" and "right" are meant from (w2r2_ros/geometry/viewer.py). None: no pose yet.
    camera_pose: np.ndarray | None = None

    def proposal_boxes(self) -> np.ndarray:
        """Axis-aligned bounds of the proposal boxes as an (N, 6) array, in ``proposals`` order."""
        if not self.proposals:
            return np.zeros((0, 6))
        return np.stack([p.box.as_array() for p in self.proposals])

    def oriented_proposal_boxes(self) -> np.ndarray:
        """Proposal boxes turned in yaw as an (N, 7) array ``[cx, cy, cz, sx, sy, sz, yaw]``, in ``proposals`` order."""
        if not self.proposals:
            return np.zeros((0, 7))
        return np.stack([p.box.as_oriented_array() for p in self.proposals])


@dataclass(frozen=True)
class MemoryStats:
    keyframes: int
    voxels: int
    proposals: int
    pending_images: int
    poses: int
    awaiting_pose: int
    dropped: dict[DropReason, int]
    fusion_backlog: int = 0  # frames and clouds queued for the fusion worker


def _call(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


def match_proposal_ids(
    previous: list[Proposal], current: list[Proposal], min_iou: float, next_id: int, max_centre_shift: float = 0.5
) -> tuple[list[Proposal], int]:
    """Give ``current`` the ids of the ``previous`` proposals they overlap most (greedy by oriented IoU),
    then, among those left, of the previous proposal whose centre is nearest if within
    ``max_centre_shift`` of the smaller box's largest side (a small object whose few voxels changed
    its box more than its place); new ids from ``next_id`` to the rest. Returns the renumbered
    proposals and the next free id."""
    ids = [-1] * len(current)
    if previous and current:
        now = np.stack([p.box.as_oriented_array() for p in current])
        before = np.stack([p.box.as_oriented_array() for p in previous])
        iou = oriented_iou_matrix(now, before)
        taken: set[int] = set()
        for flat in np.argsort(-iou, axis=None):
            i, j = np.unravel_index(flat, iou.shape)
            if iou[i, j] < min_iou:
                break
            if ids[i] < 0 and j not in taken:
                ids[i] = previous[j].proposal_id
                taken.add(j)
        shift = np.linalg.norm(now[:, None, :3] - before[None, :, :3], axis=-1)
        reach = max_centre_shift * np.minimum(now[:, None, 3:6].max(-1), before[None, :, 3:6].max(-1))
        for flat in np.argsort(shift, axis=None):
            i, j = np.unravel_index(flat, shift.shape)
            if shift[i, j] > reach[i, j]:
                continue
            if ids[i] < 0 and j not in taken:
                ids[i] = previous[j].proposal_id
                taken.add(j)
    renumbered = []
    for proposal, proposal_id in zip(current, ids):
        if proposal_id < 0:
            proposal_id, next_id = next_id, next_id + 1
        renumbered.append(Proposal(proposal_id, proposal.box, proposal.n_points, proposal.mean_rgb))
    return renumbered, next_id


def depth_stride_for(shape: tuple[int, ...], max_points: int) -> int:
    """The smallest stride at which a depth image of ``shape`` (rows, columns) gives at most
    ``max_points`` points."""
    stride = max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / max_points))))
    while (-(-shape[0] // stride)) * (-(-shape[1] // stride)) > max_points:
        stride += 1
    return stride


class SceneMemory:
    """Fuses an RGB-D + pose stream (and optional map-frame clouds) into keyframes, a voxel map and proposals."""

    def __init__(self, config: SceneMemoryConfig = SceneMemoryConfig()) -> None:
        if config.depth_stride < 0 or config.depth_max_points < 1 or config.min_depth_m < 0 or config.max_depth_m <= config.min_depth_m:
            raise ValueError(
                f"SceneMemoryConfig: need depth_stride >= 0, depth_max_points >= 1 and 0 <= min_depth_m < max_depth_m "
                f"(got {config.depth_stride}, {config.depth_max_points}, {config.min_depth_m}, {config.max_depth_m})"
            )
        if not config.max_coordinate_m > 0:
            raise ValueError(f"SceneMemoryConfig: max_coordinate_m must be > 0, got {config.max_coordinate_m}")
        self.config = config
        self._lock = threading.Lock()
        # The voxel map's own lock, taken after _lock when both are needed (never the other way round).
        self._voxel_lock = threading.Lock()
        self._background = False
        self._to_fuse: deque[SyncedFrame | _CloudJob] = deque()
        self._fuse_ready = threading.Event()
        self._fusing = 0  # jobs taken off the queue and not yet in the voxel map
        self._fused = threading.Condition(self._lock)  # notified whenever _fusing falls
        self._map_version = 0  # bumped by every fusion: the proposals worker reclusters only a changed map
        self._proposals_version = 0  # the map version the current proposals were segmented from
        self._sync = TimestampSync(
            config.sync_tolerance_s,
            config.max_pending_images,
            config.max_poses,
            config.max_pose_wait_s,
            config.max_pose_wait_frames,
        )
        self._keyframes = KeyframeBuffer(config.max_keyframes)
        self._voxels = VoxelMap(config.voxel_size, config.max_voxels, grace_inserts=config.evict_grace_inserts)
        self._proposals: tuple[Proposal, ...] = ()
        self._next_proposal_id = 0
        self._proposal_warnings: tuple[ProposalWarning, ...] = ()
        self._last_fused_stamp = -np.inf
        self._stamp: float | None = None
        self._dropped: Counter[DropReason] = Counter()
        # Final statuses of frames that waited for their pose, until take_released(); bounded so that a
        # writer that never reads them cannot grow it (they are counted in stats() all the same).
        self._released: deque[IngestStatus] = deque(maxlen=_MAX_RELEASED)

    # --- writers -------------------------------------------------------------------------------

    def add_pose(self, stamp: float, cam_to_world: np.ndarray) -> DropReason | None:
        """Record the camera (optical frame) pose at ``stamp``; returns why it was rejected, or None.

        Frames that were waiting for this pose are fused (or dropped) now; see :meth:`take_released`.
        """
        with self._lock:
            reason = self._out_of_range(cam_to_world) or self._sync.add_pose(stamp, cam_to_world)
            if reason is not None:
                self._dropped[reason] += 1
            self._ingest_released()
            return reason

    def add_rgbd(
        self,
        stamp: float,
        rgb: np.ndarray,
        depth: np.ndarray,
        intrinsics: Intrinsics,
        cam_to_world: np.ndarray | None = None,
    ) -> IngestStatus:
        """Ingest a registered RGB-D pair; without ``cam_to_world`` the pose comes from :meth:`add_pose`'s history
        (``WAITING``: the pose is still to come)."""
        _check_images(rgb, depth, intrinsics)
        depth = self._physical_depth(depth)
        with self._lock:
            if cam_to_world is not None and (reason := self._out_of_range(cam_to_world)) is not None:
                self._dropped[reason] += 1
                return IngestStatus(stamp, FrameOutcome.DROPPED, reason)
            status = self._ingest(self._sync.add_rgbd(stamp, rgb, depth, intrinsics, cam_to_world))
            self._ingest_released()
            return status

    def add_rgb(self, stamp: float, rgb: np.ndarray, intrinsics: Intrinsics) -> list[IngestStatus]:
        """Ingest a colour image alone; it waits for its depth partner. Returns the frames this completed or
        dropped (empty: the image is waiting)."""
        _check_images(rgb, None, intrinsics)
        with self._lock:
            statuses = [self._ingest(o) for o in self._sync.add_rgb(stamp, rgb, intrinsics)]
            self._ingest_released()
            return statuses

    def add_depth(self, stamp: float, depth: np.ndarray) -> list[IngestStatus]:
        """Ingest a depth image (registered to the colour camera) alone; see :meth:`add_rgb`."""
        _check_images(None, depth, None)
        depth = self._physical_depth(depth)
        with self._lock:
            statuses = [self._ingest(o) for o in self._sync.add_depth(stamp, depth)]
            self._ingest_released()
            return statuses

    def add_cloud(self, stamp: float, points: np.ndarray, colors: np.ndarray | None = None) -> int:
        """Fuse a point cloud already in ``map`` (N, 3) with optional uint8 RGB; returns the points fused
        (NaN/inf rows and rows beyond ``max_coordinate_m`` are skipped)."""
        points = np.asarray(points, dtype=np.float32)
        with np.errstate(invalid="ignore"):
            far = np.any(np.abs(points) > self.config.max_coordinate_m, axis=-1)
        if far.any():  # NaN rows are skipped by the voxel map itself
            points = points[~far]
            colors = None if colors is None else np.asarray(colors)[~far]
        with self._lock:
            self._stamp = float(stamp) if self._stamp is None else max(self._stamp, float(stamp))
            if self._background:
                self._queue((float(stamp), points, colors))
                return len(points)
        return self._insert_cloud((float(stamp), points, colors))

    def set_background_fusion(self, enabled: bool) -> None:
        """Queue fusion for :meth:`fuse_pending` (a worker thread) instead of fusing in the writer's call.

        Switching it off fuses whatever is still queued, in the caller.
        """
        with self._lock:
            self._background = bool(enabled)
        if not enabled:
            self.fuse_pending()

    def wait_for_fusion(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until a frame or cloud is queued for fusion; True if one is."""
        return self._fuse_ready.wait(timeout_s)

    def fuse_pending(self, max_jobs: int | None = None) -> int:
        """Fuse the queued frames and clouds (at most ``max_jobs``) in one voxel-map insert; returns how many.

        Called by the fusion worker (``workers.SceneWorkers``). One insert for the whole batch: an insert
        costs about the same for one frame or ten (it rewrites the sorted voxel arrays), so a worker that
        fell behind catches up instead of falling further behind.
        """
        with self._lock:
            count = len(self._to_fuse) if max_jobs is None else min(max_jobs, len(self._to_fuse))
            jobs = [self._to_fuse.popleft() for _ in range(count)]
            self._fusing += len(jobs)
            if not self._to_fuse:
                self._fuse_ready.clear()
        if not jobs:
            return 0
        try:
            self._fuse_jobs(jobs)
        finally:
            with self._lock:
                self._fusing -= len(jobs)
                self._fused.notify_all()
        return len(jobs)

    def fusion_idle(self) -> bool:
        """Nothing queued for fusion and nothing being fused: the voxel map holds every frame taken so far."""
        with self._lock:
            return not self._to_fuse and self._fusing == 0

    def _fuse_jobs(self, jobs: list[SyncedFrame | _CloudJob]) -> None:
        coloured: list[tuple[np.ndarray, np.ndarray]] = []
        plain: list[np.ndarray] = []
        for job in jobs:
            if isinstance(job, SyncedFrame):
                coloured.append(self._frame_points(job))
            elif job[2] is None:
                plain.append(job[1])
            else:
                coloured.append((job[1], np.asarray(job[2])))
        stamp = max(job.stamp if isinstance(job, SyncedFrame) else job[0] for job in jobs)
        with self._voxel_lock:
            if coloured:
                self._voxels.insert(np.concatenate([p for p, _ in coloured]), np.concatenate([c for _, c in coloured]), stamp=stamp)
            if plain:
                self._voxels.insert(np.concatenate(plain), None, stamp=stamp)
            self._map_version += 1

    @property
    def map_version(self) -> int:
        """Increases with every fusion into the voxel map (a cheap 'has the map changed' test)."""
        with self._voxel_lock:
            return self._map_version

    def update_proposals(self, run: Runner | None = None) -> tuple[Proposal, ...]:
        """Recompute proposals from the voxel map, keeping ids stable across updates.

        Clustering runs on a copy of the voxel map, outside every lock, so neither ingest nor fusion waits
        for it; the copy is taken under the voxel map's own lock only. ``run(function, *args)`` runs the
        segmentation (default: here, in the caller; ``workers.SegmentationProcess``: in a child process). Frames still queued for background fusion are fused
        first, in this call, so the proposals are those of every frame taken so far.
        """
        version, _, result = self._segment_versioned(run)
        current = result.proposals
        with self._lock:
            if version < self._proposals_version:
                # A segmentation of an older map (started before the frames or the reset that a later call
                # already saw) finished last: it never replaces newer proposals.
                return self._proposals
            self._proposals_version = version
            self._proposal_warnings = result.report.reasons
            matched, self._next_proposal_id = match_proposal_ids(
                list(self._proposals), current, self.config.proposal_match_iou, self._next_proposal_id
            )
            self._proposals = tuple(matched)
            return self._proposals

    def segment(self, run: Runner | None = None) -> tuple[np.ndarray, ProposalResult]:
        """The voxel map's points that proposals are made from (hit at least ``proposal_min_hits`` times) and
        their segmentation with the voxels' hit counts (proposals numbered 0..N-1, the report, a label per
        point), leaving the memory's proposals and ids as they are: what :meth:`update_proposals` computes,
        for tools that draw or inspect it (``bench/real_rgbd.py``). ``run`` as there."""
        _, points, result = self._segment_versioned(run)
        return points, result

    def _segment_versioned(self, run: Runner | None) -> tuple[int, np.ndarray, ProposalResult]:
        """:meth:`segment`, with the map version the points were copied at. The frames the fusion worker has
        taken off the queue are waited for (at most ``_FUSED_WAIT_S``): without them the copy missed a batch
        that was neither queued nor in the map yet."""
        self.fuse_pending()
        with self._fused:
            self._fused.wait_for(lambda: self._fusing == 0, timeout=_FUSED_WAIT_S)
        with self._voxel_lock:
            version = self._map_version
            points = self._voxels.points(self.config.proposal_min_hits)
            colors = self._voxels.colors(self.config.proposal_min_hits)
            hits = self._voxels.hits(self.config.proposal_min_hits)
        return version, points, (run or _call)(segment_scene, points, colors, self.config.proposals, hits)

    def proposal_warnings(self) -> tuple[ProposalWarning, ...]:
        """Why the last proposals may be wrong (no floor, a tilted map, only structure): for the node to
        log, rate limited; empty when all was well."""
        with self._lock:
            return self._proposal_warnings

    def reset(self) -> None:
        """Forget every pose, frame, keyframe, voxel and proposal, as if just created.

        For a new timeline: the clock jumped back (a looped bag, a restarted driver; see
        ``stamp_check.py``) or an operator asked for a fresh map. Proposal ids keep counting up,
        so an id seen before the reset never names a different object after it. Thread-safe; a
        snapshot taken before stays valid (it holds copies).
        """
        with self._lock, self._voxel_lock:
            self._sync.reset()
            self._keyframes.clear()
            self._voxels.clear()
            self._to_fuse.clear()
            self._map_version += 1
            self._proposals_version = self._map_version  # a segmentation still running on the old map is dropped
            self._proposals = ()
            self._proposal_warnings = ()
            self._last_fused_stamp = -np.inf
            self._stamp = None
            self._dropped.clear()
            self._released.clear()

    # --- readers -------------------------------------------------------------------------------

    def take_released(self) -> list[IngestStatus]:
        """Final statuses (fused or dropped) of frames that had waited for their pose, since the last call."""
        with self._lock:
            released = list(self._released)
            self._released.clear()
            return released

    def snapshot(self, include_cloud: bool = True) -> SceneSnapshot:
        """A copy of the scene: keyframes, proposals and stamp consistent with each other, the cloud as the
        voxel map was a moment later. ``include_cloud=False`` leaves the fused cloud out (empty arrays):
        copying up to ``max_voxels`` points costs milliseconds, and the grounding model reads only
        keyframes and proposals. The cloud is copied under the voxel map's lock, which writers never wait on."""
        with self._lock:
            keyframes, proposals, stamp = self._keyframes.keyframes(), self._proposals, self._stamp
            newest = self._sync.poses.newest()
        camera_pose = np.asarray(keyframes[-1].cam_to_world) if keyframes else None
        if newest is not None and (not keyframes or newest[0] >= keyframes[-1].stamp):
            camera_pose = newest[1]
        with self._voxel_lock:
            if include_cloud:
                points, colors = self._voxels.points(), self._voxels.colors()
            else:
                points, colors = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
            n_voxels = len(self._voxels)
        points.setflags(write=False)
        colors.setflags(write=False)
        return SceneSnapshot(keyframes, proposals, points, colors, stamp, n_voxels, camera_pose)

    def stats(self) -> MemoryStats:
        with self._voxel_lock:
            voxels = len(self._voxels)
        with self._lock:
            return MemoryStats(
                keyframes=len(self._keyframes),
                voxels=voxels,
                proposals=len(self._proposals),
                pending_images=self._sync.pending(),
                poses=len(self._sync.poses),
                awaiting_pose=self._sync.awaiting_pose(),
                dropped=dict(self._dropped),
                fusion_backlog=len(self._to_fuse),
            )

    # --- internals ------------------------------------------------------------------------------

    def _out_of_range(self, cam_to_world: np.ndarray) -> DropReason | None:
        translation = np.asarray(cam_to_world, dtype=np.float64)[:3, 3]
        with np.errstate(invalid="ignore"):
            return DropReason.OUT_OF_RANGE if np.any(np.abs(translation) > self.config.max_coordinate_m) else None

    def _physical_depth(self, depth: np.ndarray) -> np.ndarray:
        """``depth`` with pixels beyond ``max_coordinate_m`` made invalid (NaN); a copy only when some are."""
        with np.errstate(invalid="ignore"):
            far = depth > self.config.max_coordinate_m
        if not far.any():
            return depth
        depth = depth.astype(np.float32, copy=True)
        depth[far] = np.nan
        return depth

    # --- internals (called with the lock held) -------------------------------------------------

    def _ingest_released(self) -> None:
        self._released.extend(self._ingest(outcome) for outcome in self._sync.take_released())

    def _ingest(self, outcome: SyncOutcome) -> IngestStatus:
        if outcome.waiting:
            return IngestStatus(outcome.stamp, FrameOutcome.WAITING)
        if outcome.frame is None:
            assert outcome.reason is not None
            self._dropped[outcome.reason] += 1
            return IngestStatus(outcome.stamp, FrameOutcome.DROPPED, outcome.reason)
        frame = outcome.frame
        self._stamp = frame.stamp if self._stamp is None else max(self._stamp, frame.stamp)
        is_keyframe = self.config.keyframe_policy.is_keyframe(self._keyframes.last, frame.stamp, frame.cam_to_world)
        if is_keyframe:
            self._keyframes.add(Keyframe.create(frame.stamp, frame.rgb, frame.depth, frame.intrinsics, frame.cam_to_world))
        elif frame.stamp - self._last_fused_stamp < self.config.min_fuse_interval_s:
            return IngestStatus(frame.stamp, FrameOutcome.SKIPPED)
        self._last_fused_stamp = frame.stamp
        if self._background:
            self._queue(frame)
        else:
            self._fuse(frame)
        return IngestStatus(frame.stamp, FrameOutcome.KEYFRAME if is_keyframe else FrameOutcome.FUSED)

    def _queue(self, job: SyncedFrame | _CloudJob) -> None:
        if len(self._to_fuse) >= self.config.max_fusion_backlog:
            self._to_fuse.popleft()
            self._dropped[DropReason.FUSION_BACKLOG] += 1
        self._to_fuse.append(job)
        self._fuse_ready.set()

    # --- fusion (in the writer's call, or on the fusion worker: takes only the voxel lock) -------

    def _frame_points(self, frame: SyncedFrame) -> tuple[np.ndarray, np.ndarray]:
        """Map-frame points (N, 3) of a frame's depth within [min_depth_m, max_depth_m], and their colours:
        one per stride block (``decimate_depth``)."""
        depth = drop_depth_edges(frame.depth, self.config.depth_edge_ratio)
        if self.config.drop_depth_speckles:
            depth = drop_depth_speckles(depth, self.config.depth_noise)
        with np.errstate(invalid="ignore"):
            depth[~((depth >= self.config.min_depth_m) & (depth <= self.config.max_depth_m))] = np.nan
        stride = self.config.depth_stride or depth_stride_for(depth.shape, self.config.depth_max_points)
        return decimate_depth(depth, frame.rgb, frame.intrinsics, frame.cam_to_world, stride)

    def _fuse(self, frame: SyncedFrame) -> None:
        points, colors = self._frame_points(frame)
        with self._voxel_lock:
            self._voxels.insert(points, colors, stamp=frame.stamp)
            self._map_version += 1

    def _insert_cloud(self, job: _CloudJob) -> int:
        stamp, points, colors = job
        with self._voxel_lock:
            self._map_version += 1
            return self._voxels.insert(points, colors, stamp=stamp)


def _check_images(rgb: np.ndarray | None, depth: np.ndarray | None, intrinsics: Intrinsics | None) -> None:
    """One-line errors for images that cannot be fused (a stream problem, not a timing one)."""
    if rgb is not None:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb: expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
        if intrinsics is not None and rgb.shape[:2] != (intrinsics.height, intrinsics.width):
            raise ValueError(f"rgb: shape {rgb.shape[:2]} does not match intrinsics {intrinsics.height}x{intrinsics.width}")
    if depth is not None:
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise ValueError(f"depth: expected float metres (H, W), got {depth.dtype} {depth.shape}")
        if rgb is not None and depth.shape != rgb.shape[:2]:
            raise ValueError(f"depth: shape {depth.shape} does not match rgb {rgb.shape[:2]} (register depth to colour)")
