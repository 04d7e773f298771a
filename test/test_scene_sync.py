"""Pairing RGB, depth and pose by timestamp, and why frames are dropped."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import make_transform, motion_between
from w2r2_ros.scene.sync import DropReason, PoseHistory, TimestampSync

INTRINSICS = Intrinsics.from_fov(8, 6, 60.0)
RGB = np.zeros((6, 8, 3), dtype=np.uint8)
DEPTH = np.ones((6, 8), dtype=np.float32)


def _yaw(deg: float, x: float) -> np.ndarray:
    return make_transform(Rotation.from_euler("z", deg, degrees=True).as_matrix(), np.array([x, 0.0, 0.0]))


def test_pose_is_interpolated_between_neighbours_within_tolerance():
    history = PoseHistory(tolerance_s=0.05)
    assert history.add(1.00, _yaw(0, 0.0)) is None
    assert history.add(1.04, _yaw(40, 0.4)) is None
    pose = history.lookup(1.01)
    assert np.allclose(pose[:3, 3], [0.1, 0.0, 0.0])
    assert np.isclose(motion_between(_yaw(0, 0.0), pose)[1], 10.0)
    assert np.allclose(history.lookup(1.04), _yaw(40, 0.4))


def test_pose_falls_back_to_nearest_then_gives_up():
    history = PoseHistory(tolerance_s=0.05)
    history.add(1.0, _yaw(0, 0.0))
    history.add(2.0, _yaw(90, 1.0))
    assert np.allclose(history.lookup(1.03), _yaw(0, 0.0))  # the next pose is too far to interpolate
    assert np.allclose(history.lookup(1.96), _yaw(90, 1.0))
    assert history.lookup(1.5) is None
    assert history.lookup(0.9) is None
    assert history.lookup(2.2) is None


def test_invalid_and_backwards_poses_are_rejected():
    sync = TimestampSync(tolerance_s=0.05)
    nan_pose = np.eye(4)
    nan_pose[0, 3] = np.nan
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    assert sync.add_pose(1.0, nan_pose) is DropReason.INVALID_POSE
    assert sync.add_pose(1.0, sheared) is DropReason.INVALID_POSE
    assert sync.add_pose(1.0, np.eye(4)) is None
    assert sync.add_pose(0.5, np.eye(4)) is DropReason.STAMP_BACKWARDS
    assert len(sync.poses) == 1


def test_pose_history_is_bounded():
    history = PoseHistory(tolerance_s=0.01, max_poses=16)
    for k in range(1000):
        history.add(k * 0.01, _yaw(0, k * 0.01))
    assert len(history) == 16
    assert history.lookup(9.99) is not None and history.lookup(1.0) is None


def test_rgb_and_depth_pair_by_stamp_in_either_order():
    sync = TimestampSync(tolerance_s=0.02)
    sync.add_pose(0.49, np.eye(4))
    sync.add_pose(0.51, _yaw(0, 0.2))
    assert sync.add_rgb(0.50, RGB, INTRINSICS) == []  # waits for its depth
    (outcome,) = sync.add_depth(0.51, DEPTH)
    assert outcome.reason is None and outcome.stamp == 0.50  # a pair carries the colour stamp
    assert outcome.frame.intrinsics == INTRINSICS and outcome.frame.depth is DEPTH and outcome.frame.rgb is RGB
    assert np.allclose(outcome.frame.cam_to_world[:3, 3], [0.1, 0.0, 0.0])
    assert sync.add_depth(0.60, DEPTH) == []  # depth first, then its colour image
    (outcome,) = sync.add_rgb(0.605, RGB, INTRINSICS)
    assert outcome.stamp == 0.605 and outcome.reason is DropReason.NO_POSE  # poses end at 0.51
    assert sync.pending() == 0


def test_frame_without_pose_within_tolerance_is_dropped_with_reason():
    sync = TimestampSync(tolerance_s=0.02)
    sync.add_pose(0.0, np.eye(4))
    assert sync.add_depth(0.0, DEPTH) == []
    (paired,) = sync.add_rgb(0.01, RGB, INTRINSICS)
    assert paired.reason is None and np.allclose(paired.frame.cam_to_world, np.eye(4))
    sync.add_depth(0.5, DEPTH)
    (late,) = sync.add_rgb(0.5, RGB, INTRINSICS)
    assert late.frame is None and late.reason is DropReason.NO_POSE


def test_unpaired_images_are_dropped_and_queues_stay_bounded():
    sync = TimestampSync(tolerance_s=0.01, max_pending=3)
    sync.add_pose(0.0, np.eye(4))
    dropped = []
    for k in range(10):
        dropped += sync.add_rgb(k * 0.1, RGB, INTRINSICS)
    assert sync.pending() == 3
    assert [o.reason for o in dropped] == [DropReason.UNPAIRED] * 7
    # A depth image pairs with the waiting rgb at 0.8; the older rgb at 0.7 can no longer pair.
    outcomes = sync.add_depth(0.8, DEPTH)
    reasons = [o.reason for o in outcomes]
    assert reasons.count(DropReason.UNPAIRED) == 1 and reasons[-1] is DropReason.NO_POSE


def test_images_going_backwards_are_dropped():
    sync = TimestampSync(tolerance_s=0.05)
    sync.add_pose(1.0, np.eye(4))
    sync.add_pose(2.0, np.eye(4))
    assert sync.add_rgbd(2.0, RGB, DEPTH, INTRINSICS).reason is None
    assert sync.add_rgbd(1.0, RGB, DEPTH, INTRINSICS).reason is DropReason.STAMP_BACKWARDS
    sync.add_rgb(2.0, RGB, INTRINSICS)
    (outcome,) = sync.add_rgb(1.98, RGB, INTRINSICS)
    assert outcome.reason is DropReason.STAMP_BACKWARDS
    sync.reset()
    sync.add_pose(1.0, np.eye(4))
    assert sync.add_rgbd(1.0, RGB, DEPTH, INTRINSICS).reason is None


def test_explicit_pose_skips_the_history_but_is_checked():
    sync = TimestampSync(tolerance_s=0.05)
    outcome = sync.add_rgbd(5.0, RGB, DEPTH, INTRINSICS, cam_to_world=_yaw(30, 1.0))
    assert np.allclose(outcome.frame.cam_to_world, _yaw(30, 1.0))
    bad = np.full((4, 4), np.inf)
    assert sync.add_rgbd(6.0, RGB, DEPTH, INTRINSICS, cam_to_world=bad).reason is DropReason.INVALID_POSE


def test_frame_whose_pose_comes_later_waits_and_is_released_with_it():
    sync = TimestampSync(tolerance_s=0.05, max_pose_wait_s=1.0)
    assert sync.add_pose(0.0, _yaw(0, 0.0)) is None
    assert sync.add_rgbd(0.30, RGB, DEPTH, INTRINSICS).waiting
    assert sync.add_depth(0.33, DEPTH) == []
    (paired,) = sync.add_rgb(0.33, RGB, INTRINSICS)
    assert paired.waiting and paired.stamp == 0.33
    assert sync.awaiting_pose() == 2 and sync.take_released() == []
    assert sync.add_pose(0.31, _yaw(0, 0.31)) is None  # covers 0.30 (nearest: 0.0 is too far)
    (first,) = sync.take_released()
    assert first.stamp == 0.30 and np.allclose(first.frame.cam_to_world, _yaw(0, 0.31))
    assert first.frame.rgb is RGB and first.frame.intrinsics == INTRINSICS
    assert sync.add_pose(0.35, _yaw(40, 0.35)) is None  # 0.33 lies between 0.31 and 0.35: interpolated
    (second,) = sync.take_released()
    assert np.allclose(second.frame.cam_to_world[:3, 3], [0.33, 0.0, 0.0])
    assert np.isclose(motion_between(_yaw(0, 0.0), second.frame.cam_to_world)[1], 20.0)
    assert sync.awaiting_pose() == 0 and sync.take_released() == []


def test_frame_whose_pose_never_covers_it_is_dropped_when_a_newer_pose_arrives():
    sync = TimestampSync(tolerance_s=0.05, max_pose_wait_s=1.0)
    sync.add_pose(0.0, np.eye(4))
    assert sync.add_rgbd(0.30, RGB, DEPTH, INTRINSICS).waiting
    sync.add_pose(0.2, np.eye(4))  # still before the frame: it keeps waiting
    assert sync.take_released() == [] and sync.awaiting_pose() == 1
    sync.add_pose(0.5, np.eye(4))  # 0.2 s after the frame, 0.1 s before: no pose within tolerance
    (dropped,) = sync.take_released()
    assert dropped.stamp == 0.30 and dropped.frame is None and dropped.reason is DropReason.NO_POSE
    # Older than the pose history, or far ahead of a stalled pose stream: dropped at once, as before.
    assert sync.add_rgbd(0.35, RGB, DEPTH, INTRINSICS).reason is DropReason.NO_POSE
    assert sync.add_rgbd(1.6, RGB, DEPTH, INTRINSICS).reason is DropReason.NO_POSE
    assert sync.awaiting_pose() == 0


def test_frames_waiting_for_their_pose_time_out_and_stay_bounded():
    sync = TimestampSync(tolerance_s=0.05, max_pose_wait_s=0.5, max_pose_wait_frames=3)
    for stamp in (0.0, 0.1, 0.2, 0.3, 0.4):  # no pose yet at all (start-up): frames wait
        assert sync.add_rgbd(stamp, RGB, DEPTH, INTRINSICS).waiting
    overflow = sync.take_released()
    assert [(o.stamp, o.reason) for o in overflow] == [(0.0, DropReason.POSE_QUEUE_FULL), (0.1, DropReason.POSE_QUEUE_FULL)]
    assert sync.awaiting_pose() == 3
    assert sync.add_rgbd(0.85, RGB, DEPTH, INTRINSICS).waiting  # 0.2 and 0.3 have now waited over 0.5 s
    assert [(o.stamp, o.reason) for o in sync.take_released()] == [(0.2, DropReason.POSE_TIMEOUT), (0.3, DropReason.POSE_TIMEOUT)]
    sync.add_pose(0.86, np.eye(4))
    released = sync.take_released()
    assert [o.stamp for o in released] == [0.4, 0.85]
    assert released[0].reason is DropReason.NO_POSE and released[1].frame is not None
    sync.add_rgbd(0.9, RGB, DEPTH, INTRINSICS)
    sync.reset()
    assert sync.awaiting_pose() == 0 and sync.take_released() == []


def test_waiting_is_off_by_default_and_parameters_are_checked():
    sync = TimestampSync(tolerance_s=0.05)
    sync.add_pose(0.0, np.eye(4))
    assert sync.add_rgbd(0.3, RGB, DEPTH, INTRINSICS).reason is DropReason.NO_POSE
    with pytest.raises(ValueError, match="max_pose_wait_s"):
        TimestampSync(max_pose_wait_s=-1.0)
    with pytest.raises(ValueError, match="max_pose_wait_frames"):
        TimestampSync(max_pose_wait_frames=0)
