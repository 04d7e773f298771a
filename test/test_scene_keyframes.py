"""Keyframe policy and the bounded keyframe buffer (the "scene video" the model reads)."""
import numpy as np
import pytest

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import look_at, make_transform
from w2r2_ros.scene.keyframes import Keyframe, KeyframeBuffer, KeyframePolicy
from scipy.spatial.transform import Rotation

INTRINSICS = Intrinsics.from_fov(16, 12, 60.0)


def _frame(stamp: float, pose: np.ndarray) -> Keyframe:
    rgb = np.full((12, 16, 3), int(stamp) % 256, dtype=np.uint8)
    depth = np.full((12, 16), 2.0, dtype=np.float32)
    return Keyframe.create(stamp, rgb, depth, INTRINSICS, pose)


def test_policy_keeps_first_frame_then_waits_for_motion_or_time():
    policy = KeyframePolicy(min_translation_m=0.3, min_rotation_deg=20.0, max_interval_s=4.0)
    start = look_at(np.array([0.0, 0.0, 1.5]), np.array([3.0, 0.0, 0.5]))
    assert policy.is_keyframe(None, 0.0, start)
    last = _frame(0.0, start)

    small_step = start.copy()
    small_step[:3, 3] += [0.1, 0.1, 0.0]
    assert not policy.is_keyframe(last, 1.0, small_step)

    moved = start.copy()
    moved[:3, 3] += [0.3, 0.1, 0.0]
    assert policy.is_keyframe(last, 1.0, moved)

    turned_a_little = start @ make_transform(Rotation.from_euler("y", 15, degrees=True).as_matrix(), np.zeros(3))
    turned = start @ make_transform(Rotation.from_euler("y", 25, degrees=True).as_matrix(), np.zeros(3))
    assert not policy.is_keyframe(last, 1.0, turned_a_little)
    assert policy.is_keyframe(last, 1.0, turned)

    assert policy.is_keyframe(last, 4.0, start)  # a still camera refreshes its view
    assert not policy.is_keyframe(last, 3.9, start)


def test_buffer_keeps_the_newest_k_in_order():
    buffer = KeyframeBuffer(max_keyframes=4)
    for k in range(10):
        buffer.add(_frame(float(k), np.eye(4)))
    assert len(buffer) == 4
    assert [f.stamp for f in buffer.keyframes()] == [6.0, 7.0, 8.0, 9.0]
    assert buffer.last.stamp == 9.0
    buffer.clear()
    assert len(buffer) == 0 and buffer.last is None


def test_keyframe_owns_read_only_copies():
    rgb = np.zeros((12, 16, 3), dtype=np.uint8)
    depth = np.ones((12, 16), dtype=np.float64)
    pose = np.eye(4)
    frame = Keyframe.create(1.0, rgb, depth, INTRINSICS, pose)
    rgb[:] = 255
    pose[0, 3] = 5.0
    assert frame.rgb.max() == 0 and frame.cam_to_world[0, 3] == 0.0
    assert frame.depth.dtype == np.float32
    with pytest.raises(ValueError):
        frame.rgb[0, 0, 0] = 1


def test_keyframe_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="depth"):
        Keyframe.create(0.0, np.zeros((12, 16, 3), np.uint8), np.zeros((10, 16), np.float32), INTRINSICS, np.eye(4))
    with pytest.raises(ValueError, match="intrinsics"):
        Keyframe.create(0.0, np.zeros((10, 16, 3), np.uint8), np.zeros((10, 16), np.float32), INTRINSICS, np.eye(4))
    with pytest.raises(ValueError, match="max_keyframes"):
        KeyframeBuffer(0)
