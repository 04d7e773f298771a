"""SceneMemory: statuses, stable proposal ids, bounded memory under long streams, concurrent readers."""
import threading
import time

import numpy as np
import pytest

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import look_at
from w2r2_ros.scene.keyframes import KeyframePolicy
from w2r2_ros.scene.memory import FrameOutcome, SceneMemory, SceneMemoryConfig, depth_stride_for, match_proposal_ids
from w2r2_ros.scene.proposals import Proposal
from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.scene.sync import DropReason
from w2r2_ros.sim.render import render_rgbd
from w2r2_ros.sim.trajectory import orbit_trajectory
from w2r2_ros.sim.world import generate_scene

SMALL = Intrinsics.from_fov(32, 24, 70.0)


def _wall_frame(distance: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.zeros((24, 32, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    return rgb, np.full((24, 32), distance, dtype=np.float32)


def _pose(x: float) -> np.ndarray:
    return look_at(np.array([x, 0.0, 1.0]), np.array([x + 3.0, 0.0, 1.0]))


def test_statuses_keyframe_fused_skipped_and_dropped():
    config = SceneMemoryConfig(
        keyframe_policy=KeyframePolicy(min_translation_m=0.55, min_rotation_deg=30.0, max_interval_s=100.0),
        min_fuse_interval_s=0.5,
    )
    memory = SceneMemory(config)
    rgb, depth = _wall_frame()
    for k in range(11):
        assert memory.add_pose(k * 0.1, _pose(k * 0.1)) is None
    assert memory.add_rgbd(0.0, rgb, depth, SMALL).outcome is FrameOutcome.KEYFRAME
    assert memory.add_rgbd(0.1, rgb, depth, SMALL).outcome is FrameOutcome.SKIPPED
    assert memory.add_rgbd(0.5, rgb, depth, SMALL).outcome is FrameOutcome.FUSED
    assert memory.add_rgbd(0.6, rgb, depth, SMALL).outcome is FrameOutcome.KEYFRAME  # moved 0.6 m
    no_pose = memory.add_rgbd(5.0, rgb, depth, SMALL)
    assert no_pose.dropped and no_pose.reason is DropReason.NO_POSE and "no camera pose" in str(no_pose)
    backwards = memory.add_rgbd(0.2, rgb, depth, SMALL)
    assert backwards.reason is DropReason.STAMP_BACKWARDS
    assert memory.add_pose(0.05, _pose(0.0)) is DropReason.STAMP_BACKWARDS
    stats = memory.stats()
    assert stats.keyframes == 2 and stats.dropped == {DropReason.NO_POSE: 1, DropReason.STAMP_BACKWARDS: 2}
    # An explicit pose needs no history.
    assert memory.add_rgbd(7.0, rgb, depth, SMALL, cam_to_world=_pose(3.0)).outcome is FrameOutcome.KEYFRAME


def test_separate_rgb_and_depth_streams_are_paired():
    memory = SceneMemory()
    rgb, depth = _wall_frame()
    memory.add_pose(1.0, _pose(0.0))
    assert memory.add_rgb(1.0, rgb, SMALL) == []
    (status,) = memory.add_depth(1.01, depth)
    assert status.outcome is FrameOutcome.KEYFRAME and status.stamp == 1.0
    assert len(memory.snapshot().keyframes) == 1


def test_invalid_depth_values_are_not_fused():
    memory = SceneMemory(SceneMemoryConfig(depth_stride=1, voxel_size=0.02, max_depth_m=5.0))
    rgb, depth = _wall_frame(2.0)
    depth[0, :] = np.nan
    depth[1, :] = np.inf
    depth[2, :] = 0.0
    depth[3, :] = -1.0
    depth[4, :] = 50.0  # beyond max_depth_m
    status = memory.add_rgbd(0.0, rgb, depth, SMALL, cam_to_world=_pose(0.0))
    assert status.outcome is FrameOutcome.KEYFRAME
    snapshot = memory.snapshot()
    assert len(snapshot.cloud_points) > 0 and np.all(np.isfinite(snapshot.cloud_points))
    assert np.allclose(snapshot.cloud_points[:, 0], 2.0, atol=0.011)  # only the wall 2 m ahead
    assert np.isnan(snapshot.keyframes[0].depth[0]).all()  # the keyframe keeps what the sensor said


def test_bad_images_raise_clear_errors():
    memory = SceneMemory()
    rgb, depth = _wall_frame()
    with pytest.raises(ValueError, match="rgb"):
        memory.add_rgbd(0.0, rgb.astype(np.float32), depth, SMALL, cam_to_world=_pose(0))
    with pytest.raises(ValueError, match="depth"):
        memory.add_rgbd(0.0, rgb, (depth * 1000).astype(np.uint16), SMALL, cam_to_world=_pose(0))
    with pytest.raises(ValueError, match="depth"):
        memory.add_rgbd(0.0, rgb, depth[:10], SMALL, cam_to_world=_pose(0))


def test_memory_stays_bounded_over_thousands_of_frames_and_clouds():
    config = SceneMemoryConfig(max_keyframes=8, max_voxels=3_000, max_poses=64, max_pending_images=4,
                               min_fuse_interval_s=0.0)
    memory = SceneMemory(config)
    rng = np.random.default_rng(0)
    rgb, depth = _wall_frame()
    for k in range(2000):
        stamp = k * 0.05
        memory.add_pose(stamp, _pose(k * 0.2))
        if k % 3 == 0:
            memory.add_rgbd(stamp, rgb, depth + rng.uniform(0, 1), SMALL)
        elif k % 3 == 1:
            memory.add_rgb(stamp, rgb, SMALL)  # never paired: must not pile up
        else:
            memory.add_cloud(stamp, rng.uniform(-50, 50, (200, 3)), rng.integers(0, 256, (200, 3), dtype=np.uint8))
        if k % 500 == 0:
            memory.update_proposals()
    stats = memory.stats()
    assert stats.keyframes == 8 and stats.voxels == 3_000 and stats.poses == 64 and stats.pending_images <= 4
    assert stats.dropped[DropReason.UNPAIRED] >= 660
    snapshot = memory.snapshot()
    assert len(snapshot.cloud_points) == len(snapshot.cloud_colors) == 3_000
    assert snapshot.stamp == pytest.approx(1998 * 0.05)  # the last fused frame (1999 only queued an image)


def test_proposal_ids_follow_their_boxes():
    def proposal(center_x: float) -> Proposal:
        return Proposal(-1, Box3D(np.array([center_x, 0.0, 0.5]), np.ones(3)), 10, np.zeros(3))

    first, next_id = match_proposal_ids([], [proposal(0.0), proposal(3.0)], 0.25, 0)
    assert [p.proposal_id for p in first] == [0, 1] and next_id == 2
    second, next_id = match_proposal_ids(first, [proposal(6.0), proposal(3.1), proposal(0.2)], 0.25, next_id)
    assert [p.proposal_id for p in second] == [2, 1, 0] and next_id == 3


@pytest.mark.parametrize("height, width, stride", [(480, 640, 3), (240, 320, 2), (720, 1280, 6), (120, 160, 1), (24, 32, 1)])
def test_depth_stride_follows_the_point_budget(height, width, stride):
    """With depth_stride 0 a frame is fused at the smallest stride that keeps it within depth_max_points,
    and a plane seen head-on then fills as many voxels as that many points can."""
    assert depth_stride_for((height, width), SceneMemoryConfig().depth_max_points) == stride
    memory = SceneMemory(SceneMemoryConfig(voxel_size=0.001))  # a voxel per point
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    memory.add_rgbd(0.0, rgb, np.full((height, width), 2.0, dtype=np.float32), Intrinsics.from_fov(width, height, 70.0), _pose(0.0))
    memory.fuse_pending()
    assert memory.stats().voxels == -(-height // stride) * -(-width // stride)


def test_rendered_scene_gives_stable_proposals_and_consistent_snapshots_under_concurrent_reads():
    scene = generate_scene("memory_test", 5)
    intrinsics = Intrinsics.from_fov(160, 120, 70.0)
    poses = orbit_trajectory(scene, 24, 0)
    memory = SceneMemory(SceneMemoryConfig(depth_stride=1))
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            snapshot = memory.snapshot()
            if len(snapshot.cloud_points) != len(snapshot.cloud_colors):
                errors.append("cloud points and colours differ in length")
            if snapshot.cloud_points.flags.writeable or any(k.rgb.flags.writeable for k in snapshot.keyframes):
                errors.append("snapshot arrays are writeable")
            if len({p.proposal_id for p in snapshot.proposals}) != len(snapshot.proposals):
                errors.append("duplicate proposal ids")
            time.sleep(0.001)  # pacing only: leave the writer some of the interpreter

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for k, pose in enumerate(poses):
            frame = render_rgbd(scene, intrinsics, pose)
            memory.add_pose(k * 0.5, pose)
            assert not memory.add_rgbd(k * 0.5, frame.rgb, frame.depth, intrinsics).dropped
            if k == 16:
                early = {p.proposal_id: p.box for p in memory.update_proposals()}
    finally:
        done.set()
        thread.join()
    assert errors == []
    late = memory.update_proposals()
    again = memory.update_proposals()
    assert [p.proposal_id for p in again] == [p.proposal_id for p in late]
    kept = [p for p in late if p.proposal_id in early]
    assert len(kept) >= len(early) // 2  # most objects seen early keep their ids
    for p in kept:
        assert np.linalg.norm(p.box.center - early[p.proposal_id].center) < 0.5


def test_fusion_fuses_the_block_medians_of_the_frame():
    from w2r2_ros.scene.depth_decimation import decimate_depth
    from w2r2_ros.scene.voxel_map import VoxelMap

    scene = generate_scene("fusion_test", 2)
    intrinsics = Intrinsics.from_fov(160, 120, 70.0)
    pose = orbit_trajectory(scene, 4, 0)[0]
    frame = render_rgbd(scene, intrinsics, pose)
    memory = SceneMemory(SceneMemoryConfig(depth_stride=3, max_depth_m=20.0, depth_edge_ratio=0.0, drop_depth_speckles=False))
    memory.add_rgbd(0.0, frame.rgb, frame.depth, intrinsics, cam_to_world=pose)
    expected = VoxelMap()
    expected.insert(*decimate_depth(frame.depth, frame.rgb, intrinsics, pose, 3))
    snapshot = memory.snapshot()
    assert len(expected) > 1000
    assert np.allclose(snapshot.cloud_points, expected.points(), atol=1e-5)
    assert np.array_equal(snapshot.cloud_colors, expected.colors())


def test_frames_whose_pose_comes_later_are_fused_when_it_arrives():
    memory = SceneMemory(SceneMemoryConfig(min_fuse_interval_s=0.0))
    rgb, depth = _wall_frame()
    memory.add_pose(0.0, _pose(0.0))
    assert memory.add_rgbd(0.3, rgb, depth, SMALL).outcome is FrameOutcome.WAITING
    assert memory.add_rgb(0.38, rgb, SMALL) == []
    (waiting,) = memory.add_depth(0.38, depth)
    assert waiting.outcome is FrameOutcome.WAITING and memory.stats().awaiting_pose == 2
    assert memory.stats().voxels == 0 and memory.take_released() == []
    assert memory.add_pose(0.35, _pose(0.35)) is None
    (first,) = memory.take_released()
    assert first.stamp == 0.3 and first.outcome is FrameOutcome.KEYFRAME
    assert np.allclose(memory.snapshot().keyframes[0].cam_to_world, _pose(0.35))
    memory.add_pose(2.0, _pose(2.0))  # 0.38 lies 0.03 s after 0.35: nearest pose within tolerance
    (second,) = memory.take_released()
    assert second.stamp == 0.38 and not second.dropped and memory.stats().awaiting_pose == 0
    memory.add_rgbd(2.5, rgb, depth, SMALL)
    memory.add_pose(3.0, _pose(3.0))  # never covers 2.5
    (lost,) = memory.take_released()
    assert lost.reason is DropReason.NO_POSE and memory.stats().dropped == {DropReason.NO_POSE: 1}


def test_snapshot_can_leave_the_cloud_out():
    memory = SceneMemory()
    rgb, depth = _wall_frame()
    memory.add_rgbd(0.0, rgb, depth, SMALL, cam_to_world=_pose(0.0))
    full, light = memory.snapshot(), memory.snapshot(include_cloud=False)
    assert len(full.cloud_points) > 0 and full.n_voxels == len(full.cloud_points) == light.n_voxels
    assert light.cloud_points.shape == (0, 3) and light.cloud_colors.shape == (0, 3)
    assert len(light.keyframes) == len(full.keyframes) == 1 and light.stamp == full.stamp


def test_flying_pixels_at_depth_edges_are_not_fused():
    """A foreground edge over a far wall, with readings in between (flying pixels): those are dropped,
    the surfaces are kept, and so is a pole one pixel wide in front of the wall."""
    from w2r2_ros.scene.depth_edges import drop_depth_edges

    depth = np.full((20, 20), 3.0, np.float32)
    depth[:, :10] = 1.0
    depth[5:15, 10] = 2.0  # between the two surfaces
    depth[:, 15] = 1.5  # a pole
    out = drop_depth_edges(depth, ratio=0.04)
    assert np.isnan(out[5:15, 10]).all() and np.isfinite(out[:, :10]).all()
    assert np.isfinite(out[:, 15]).all() and np.isnan(out[:, 14]).all() and np.isnan(out[:, 16]).all()
    assert np.isfinite(out[:, 12:14]).all() and np.isfinite(out[:, 17:]).all()
    assert np.array_equal(drop_depth_edges(depth, ratio=0.0), depth)


def test_holes_are_no_depth_edges():
    """A dark surface loses pixels to holes (0 in a 16-bit image, or NaN): the pixels beside a hole are
    not behind it, so they are kept; the holes come back as NaN."""
    from w2r2_ros.scene.depth_edges import drop_depth_edges

    rng = np.random.default_rng(0)
    depth = np.full((30, 40), 2.0, np.float32)
    holes = rng.random(depth.shape) < 0.6
    depth[holes] = 0.0
    depth[0, 0] = np.nan
    out = drop_depth_edges(depth, ratio=0.04)
    assert np.isnan(out[holes]).all() and np.isnan(out[0, 0])
    assert np.array_equal(out[~holes & np.isfinite(depth)], depth[~holes & np.isfinite(depth)])


def test_readings_no_neighbour_confirms_are_dropped():
    """A stray reading among holes (a flying pixel whose object lost its pixels) and one floating in
    front of a wall are dropped; a noisy wall and a pole one pixel wide in front of it are kept."""
    from w2r2_ros.scene.depth_edges import drop_depth_speckles
    from w2r2_ros.scene.depth_noise import DepthNoise

    noise = DepthNoise()
    depth = (3.0 + float(noise.sigma(np.float32(3.0))) * np.random.default_rng(3).standard_normal((20, 20))).astype(np.float32)
    depth[:, 15] = 1.5  # the pole
    depth[2:5, 2:5] = np.nan
    depth[3, 3] = 2.4  # alone among holes
    depth[10, 5] = 2.7  # alone in front of the wall
    out = drop_depth_speckles(depth, noise)
    assert np.isnan(out[3, 3]) and np.isnan(out[10, 5])
    assert np.isfinite(out[:, 15]).all()
    assert np.isfinite(out).sum() == np.isfinite(depth).sum() - 2


def test_proposal_ids_stay_when_the_same_frames_come_again():
    """A room turned 30 degrees in the map, then its last frames again, later, from the same poses:
    every proposal keeps its id and its box (within IoU 0.9: a voxel seen once is left out of a well-seen
    object's box, ProposalConfig.box_single_hit_median, and the frames seen again make some such voxels
    count; 0.94 for one box here)."""
    from w2r2_ros.geometry.boxes import oriented_iou_matrix
    from w2r2_ros.sim.conditions import CONDITIONS
    from w2r2_ros.sim.recording import record_scene

    intrinsics = Intrinsics.from_fov(320, 240, 70.0)
    world = CONDITIONS["yaw30"]
    recording = record_scene(generate_scene("node_turned_room", 3, world.scene), n_frames=24, intrinsics=intrinsics,
                             render_config=world.render)
    memory = SceneMemory(SceneMemoryConfig())
    for frame, pose, stamp in zip(recording.frames, recording.poses, recording.stamps):
        memory.add_rgbd(float(stamp), frame.rgb, frame.depth, intrinsics, pose)
    before = {p.proposal_id: p.box.as_oriented_array() for p in memory.update_proposals()}
    stamp = float(recording.stamps[-1])
    for frame, pose in zip(recording.frames[-3:], recording.poses[-3:]):
        stamp += 1.0
        memory.add_rgbd(stamp, frame.rgb, frame.depth, intrinsics, pose)
    after = {p.proposal_id: p.box.as_oriented_array() for p in memory.update_proposals()}
    assert len(before) > 8 and set(after) == set(before)
    for proposal_id, box in before.items():
        assert oriented_iou_matrix(box, after[proposal_id])[0, 0] > 0.9, proposal_id


def test_segment_gives_the_proposals_update_would_without_touching_them():
    """SceneMemory.segment: the points proposals are made from (those hit proposal_min_hits times) and their
    segmentation, the same boxes update_proposals makes; the memory's own proposals stay as they were."""
    scene = generate_scene("segment_view", 4)
    intrinsics = Intrinsics.from_fov(160, 120, 70.0)
    memory = SceneMemory(SceneMemoryConfig(proposal_min_hits=2))
    for k, pose in enumerate(orbit_trajectory(scene, 8, 0)):
        frame = render_rgbd(scene, intrinsics, pose)
        memory.add_rgbd(float(k), frame.rgb, frame.depth, intrinsics, pose)
    points, result = memory.segment()
    assert memory.snapshot().proposals == ()
    assert len(points) == len(result.point_labels) < memory.stats().voxels
    updated = memory.update_proposals()
    assert len(updated) == len(result.proposals) > 2
    for mine, theirs in zip(result.proposals, updated):
        assert np.allclose(mine.box.as_oriented_array(), theirs.box.as_oriented_array())


def test_a_segmentation_of_an_older_map_never_replaces_newer_proposals():
    """The proposals worker copies the map, then segments outside every lock; a call that copied the map after
    more frames (or after a reset) can finish first. The older result, finishing last, is dropped."""
    scene = generate_scene("stale_segmentation", 4)
    intrinsics = Intrinsics.from_fov(160, 120, 70.0)
    memory = SceneMemory(SceneMemoryConfig())
    frames = [(pose, render_rgbd(scene, intrinsics, pose)) for pose in orbit_trajectory(scene, 8, 0)]
    for k, (pose, frame) in enumerate(frames[:2]):
        memory.add_rgbd(float(k), frame.rgb, frame.depth, intrinsics, pose)
    copied, release = threading.Event(), threading.Event()

    def held_back(function, *args):  # the old map's segmentation waits until the newer one is stored
        copied.set()
        release.wait(60)
        return function(*args)

    old = threading.Thread(target=memory.update_proposals, args=(held_back,))
    old.start()
    assert copied.wait(60)
    for k, (pose, frame) in enumerate(frames[2:], start=2):
        memory.add_rgbd(float(k), frame.rgb, frame.depth, intrinsics, pose)
    newer = [p.box.as_oriented_array() for p in memory.update_proposals()]
    release.set()
    old.join(60)
    assert [p.box.as_oriented_array().tolist() for p in memory.snapshot().proposals] == [b.tolist() for b in newer]
    # The same after a reset: what was segmented before it does not come back.
    copied.clear(), release.clear()
    old = threading.Thread(target=memory.update_proposals, args=(held_back,))
    old.start()
    assert copied.wait(60)
    memory.reset()
    release.set()
    old.join(60)
    assert memory.snapshot().proposals == ()


def test_proposals_wait_for_the_batch_the_fusion_worker_is_inserting():
    """With background fusion, the worker takes queued frames off the queue before it inserts them; proposals
    asked for meanwhile are those of every frame taken, not of a map missing that batch."""
    scene = generate_scene("inflight_fusion", 4)
    intrinsics = Intrinsics.from_fov(160, 120, 70.0)
    frames = [(pose, render_rgbd(scene, intrinsics, pose)) for pose in orbit_trajectory(scene, 8, 0)]
    reference = SceneMemory(SceneMemoryConfig())
    for k, (pose, frame) in enumerate(frames):
        reference.add_rgbd(float(k), frame.rgb, frame.depth, intrinsics, pose)
    want = [p.box.as_oriented_array().tolist() for p in reference.update_proposals()]

    memory = SceneMemory(SceneMemoryConfig())
    memory.set_background_fusion(True)
    for k, (pose, frame) in enumerate(frames):
        memory.add_rgbd(float(k), frame.rgb, frame.depth, intrinsics, pose)
    taken, insert = threading.Event(), threading.Event()
    fuse_jobs = memory._fuse_jobs

    def slow_insert(jobs):  # the worker has the batch off the queue, and inserts it a moment later
        taken.set()
        insert.wait(60)
        fuse_jobs(jobs)

    memory._fuse_jobs = slow_insert
    worker = threading.Thread(target=memory.fuse_pending)
    worker.start()
    assert taken.wait(60)
    threading.Timer(0.3, insert.set).start()
    got = [p.box.as_oriented_array().tolist() for p in memory.update_proposals()]
    worker.join(60)
    assert len(got) == len(want) > 2 and np.allclose(got, want, atol=1e-6)  # one insert of the batch, not eight: rounding
