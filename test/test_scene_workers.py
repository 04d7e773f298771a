"""Fusion and segmentation off the writer's thread: same map and proposals as inline, nothing lost silently."""
import os
import threading
import time

import numpy as np
import pytest

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.scene.memory import SceneMemory, SceneMemoryConfig
from w2r2_ros.scene.proposals import ProposalConfig, propose_objects
from w2r2_ros.scene.sync import DropReason
from w2r2_ros.scene.workers import SceneWorkers, SegmentationCancelled, SegmentationProcess
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene

K = Intrinsics.from_fov(160, 120, 70.0)


@pytest.fixture(scope="module")
def recording():
    return record_scene(generate_scene("workers", seed=4), n_frames=12, intrinsics=K)


def _stream(memory: SceneMemory, recording) -> None:
    for stamp, pose, frame in zip(recording.stamps, recording.poses, recording.frames):
        memory.add_rgbd(float(stamp), frame.rgb, frame.depth, K, pose)
        memory.add_cloud(float(stamp), recording.poses[:1, :3, 3].astype(np.float32), np.full((1, 3), 7, np.uint8))


def _wait_caught_up(workers: SceneWorkers, timeout_s: float = 60.0) -> bool:
    start = time.monotonic()
    while not workers.caught_up() and time.monotonic() - start < timeout_s:
        time.sleep(0.05)
    return workers.caught_up()


def _box_set(proposals) -> np.ndarray:
    boxes = np.stack([p.box.as_array() for p in proposals])
    return boxes[np.lexsort(boxes.T[::-1])]


def test_background_fusion_builds_the_same_map_as_inline_fusion(recording):
    inline, deferred = SceneMemory(), SceneMemory(SceneMemoryConfig(max_fusion_backlog=64))
    deferred.set_background_fusion(True)
    _stream(inline, recording)
    _stream(deferred, recording)
    # The writers only queued: nothing is in the voxel map until the fusion worker's call.
    assert deferred.stats().voxels == 0 and deferred.stats().fusion_backlog > 0 and not deferred.fusion_idle()
    version = deferred.map_version
    assert deferred.fuse_pending() > 0 and deferred.fusion_idle() and deferred.map_version > version
    a, b = inline.snapshot(), deferred.snapshot()
    assert a.n_voxels == b.n_voxels
    # Ordered by voxel (a voxel's mean lies inside it): float ties between near-equal coordinates
    # would order the two maps' points differently.
    order_a, order_b = (np.lexsort(np.floor(s.cloud_points / SceneMemoryConfig().voxel_size).T) for s in (a, b))
    np.testing.assert_allclose(a.cloud_points[order_a], b.cloud_points[order_b], atol=0.02)
    # Keyframes were taken by the writers, as inline.
    assert len(a.keyframes) == len(b.keyframes)


def test_a_full_fusion_queue_drops_the_oldest_and_counts_it(recording):
    memory = SceneMemory(SceneMemoryConfig(max_fusion_backlog=3, min_fuse_interval_s=0.0))
    memory.set_background_fusion(True)
    _stream(memory, recording)  # 12 frames + 12 clouds, nobody fusing
    stats = memory.stats()
    assert stats.fusion_backlog == 3 and stats.dropped[DropReason.FUSION_BACKLOG] == 2 * len(recording.frames) - 3
    memory.set_background_fusion(False)  # switching off fuses what is queued, in the caller
    assert memory.fusion_idle() and memory.stats().voxels > 0


@pytest.mark.parametrize("in_process", [True, False])
def test_workers_fuse_and_segment_what_the_writers_queue(recording, in_process):
    memory = SceneMemory(SceneMemoryConfig(max_fusion_backlog=64))  # the writers here are faster than any camera
    errors = []
    workers = SceneWorkers(memory, period_s=0.05, on_error=lambda step, error: errors.append((step, error)), in_process=in_process)
    workers.start()
    try:
        _stream(memory, recording)
        assert _wait_caught_up(workers), (memory.stats(), errors)
    finally:
        workers.stop()
    assert errors == [] and workers.segmentations >= 1 and memory.stats().dropped == {}
    assert len(workers.timings_ms()["segmentation"]) == workers.segmentations and workers.timings_ms()["fusion"]
    # The workers' proposals are those of the final map, exactly. (That map is compared with inline fusion
    # above, to 2 cm: compared across the two maps, the float sums taken in another order can move a
    # borderline voxel in or out of a thin ceiling box and change its extent by 0.1-0.3 m.)
    got = _box_set(memory.snapshot().proposals)
    memory.update_proposals()
    assert len(got) > 3 and got.tolist() == _box_set(memory.snapshot().proposals).tolist()


def test_segmentation_process_equals_the_function_and_survives_a_bad_request(recording):
    memory = SceneMemory()
    _stream(memory, recording)
    snapshot = memory.snapshot()
    points, colors = np.array(snapshot.cloud_points), np.array(snapshot.cloud_colors)
    segment = SegmentationProcess()
    try:
        got = segment(propose_objects, points, colors, ProposalConfig())
        assert len(got) > 3
        assert _box_set(got).tolist() == _box_set(propose_objects(points, colors, ProposalConfig())).tolist()
        with pytest.raises(ValueError, match=r"expected \(N, 3\)"):  # raised in the child, comes here
            segment(propose_objects, points[:, :2], colors, ProposalConfig())
        assert len(segment(propose_objects, points, colors, ProposalConfig())) == len(got)  # the child is still there
    finally:
        segment.close()


def test_a_failing_segmentation_is_reported_and_the_worker_carries_on(recording):
    memory = SceneMemory()
    errors = []
    workers = SceneWorkers(memory, period_s=0.02, on_error=lambda step, error: errors.append(step))
    calls = {"n": 0}
    real = memory.update_proposals

    def flaky(run=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("boom")
        return real(run)

    memory.update_proposals = flaky
    workers.start()
    try:
        _stream(memory, recording)
        _wait_caught_up(workers)
    finally:
        workers.stop()
    assert errors[:1] == ["segmentation"] and workers.caught_up() and len(memory.snapshot().proposals) > 0


def test_close_ends_a_segmentation_in_flight_instead_of_waiting_it_out():
    """A node's shutdown is bounded: close() during a long segmentation (a 1 cm map of over 500k voxels,
    clustered at 2 cm: seconds) gives it ``grace_s``, then terminates the child and says so; that update
    raises SegmentationCancelled (the old close() waited for its proposals). The next call gets a new child."""
    k = Intrinsics.from_fov(320, 240, 70.0)
    recording = record_scene(generate_scene("workers-large", seed=1), n_frames=16, intrinsics=k)
    memory = SceneMemory(SceneMemoryConfig(voxel_size=0.01, max_voxels=2_000_000, depth_stride=1, min_fuse_interval_s=0.0,
                                           proposals=ProposalConfig(voxel_size=0.02)))
    for stamp, pose, frame in zip(recording.stamps, recording.poses, recording.frames):
        memory.add_rgbd(float(stamp), frame.rgb, frame.depth, k, pose)
    assert memory.stats().voxels > 500_000
    lines = []
    segment = SegmentationProcess(grace_s=0.2, log=lines.append)
    small = np.array(memory.snapshot().cloud_points[:2000])
    try:
        segment(propose_objects, small, None, ProposalConfig())  # the child is up before the long call
        outcome = {}

        def update():
            try:
                outcome["proposals"] = memory.update_proposals(segment)
            except Exception as error:  # noqa: BLE001 - what the call ended with is the test's subject
                outcome["error"] = error

        caller = threading.Thread(target=update)
        caller.start()
        deadline = time.monotonic() + 60.0
        while not segment.busy and caller.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        pid = segment.pid
        assert segment.busy and pid is not None
        segment.close()
        caller.join(60.0)
        assert not caller.is_alive()
        assert isinstance(outcome.get("error"), SegmentationCancelled) and "proposals" not in outcome, outcome
        assert len(lines) == 1 and "terminating the child" in lines[0] and str(pid) in lines[0]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # ended and reaped
        assert memory.snapshot().proposals == ()  # nothing half-done was kept
        segment(propose_objects, small, None, ProposalConfig())  # a new child
        assert segment.pid not in (None, pid)
    finally:
        segment.close()
    assert segment.pid is None and len(lines) == 1  # an idle child is closed without a word
