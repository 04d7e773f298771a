"""TransformBuffer: the robot's tf tree (map -> odom -> base_link -> camera_link -> optical frame) and bad input."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from w2r2_ros.geometry.transform_buffer import (
    ConnectivityError,
    ExtrapolationError,
    InvalidTransformError,
    TransformBuffer,
    TransformBufferConfig,
    UnknownFrameError,
    transform_points,
)
from w2r2_ros.geometry.transform_waiter import TransformWaiter
from w2r2_ros.geometry.transforms import make_transform

OPTICAL = Rotation.from_euler("ZX", [-90, -90], degrees=True)  # REP 103: optical z forward from a body x forward


def _set(buffer: TransformBuffer, parent: str, child: str, stamp: float, transform: np.ndarray, static: bool = False) -> None:
    buffer.set_transform(parent, child, stamp, transform[:3, 3], Rotation.from_matrix(transform[:3, :3]).as_quat(), static)


def _pose(yaw_deg: float, xyz) -> np.ndarray:
    return make_transform(Rotation.from_euler("z", yaw_deg, degrees=True).as_matrix(), np.asarray(xyz, dtype=float))


def robot_tree() -> tuple[TransformBuffer, dict[str, np.ndarray]]:
    """Static camera mount and map->odom, odometry at 10 Hz from t=0 to t=1 (moving 1 m/s in x, turning 90 deg/s)."""
    buffer = TransformBuffer()
    static = {
        "base_link->camera_link": _pose(0, [0.2, 0.0, 1.1]),
        "camera_link->camera_optical_frame": make_transform(OPTICAL.as_matrix(), np.zeros(3)),
    }
    _set(buffer, "base_link", "camera_link", 0.0, static["base_link->camera_link"], static=True)
    _set(buffer, "camera_link", "camera_optical_frame", 0.0, static["camera_link->camera_optical_frame"], static=True)
    for i in range(11):
        t = i / 10
        _set(buffer, "map", "odom", t, _pose(5.0, [0.5 + 0.01 * t, -0.2, 0.0]))  # localisation drift
        _set(buffer, "odom", "base_link", t, _pose(90.0 * t, [t, 0.0, 0.0]))
    return buffer, static


def test_chain_lookup_composes_every_link_at_the_time_asked() -> None:
    buffer, static = robot_tree()
    got = buffer.lookup("map", "camera_optical_frame", 0.5)
    expected = (_pose(5.0, [0.505, -0.2, 0.0]) @ _pose(45.0, [0.5, 0, 0])
                @ static["base_link->camera_link"] @ static["camera_link->camera_optical_frame"])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # The inverse direction, and a lookup between two branches through their common ancestor.
    np.testing.assert_allclose(buffer.lookup("camera_optical_frame", "map", 0.5) @ got, np.eye(4), atol=1e-9)
    np.testing.assert_allclose(buffer.lookup("camera_link", "camera_optical_frame", 0.5), static["camera_link->camera_optical_frame"], atol=1e-12)


def test_interpolation_is_linear_in_translation_and_slerp_in_rotation() -> None:
    buffer = TransformBuffer()
    _set(buffer, "odom", "base_link", 1.0, _pose(0.0, [0, 0, 0]))
    _set(buffer, "odom", "base_link", 2.0, _pose(120.0, [2, 4, 0]))
    got = buffer.lookup("odom", "base_link", 1.25)
    np.testing.assert_allclose(got[:3, 3], [0.5, 1.0, 0.0], atol=1e-12)
    yaw = Rotation.from_matrix(got[:3, :3]).as_euler("xyz", degrees=True)[2]
    assert yaw == pytest.approx(30.0, abs=1e-9)  # constant angular rate: a quarter of the way is a quarter of the angle


def test_latest_common_time_when_no_stamp_is_given() -> None:
    buffer, _ = robot_tree()
    _set(buffer, "odom", "base_link", 1.5, _pose(0.0, [9, 9, 9]))  # odometry runs ahead of the map->odom link
    np.testing.assert_allclose(buffer.lookup("map", "base_link"), buffer.lookup("map", "base_link", 1.0), atol=1e-12)


def test_points_go_through_the_transform() -> None:
    transform = _pose(90.0, [1.0, 0.0, 0.0])
    out = transform_points(transform, np.array([[1.0, 0.0, 0.0]], dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[1.0, 1.0, 0.0]], atol=1e-6)


def test_unknown_frame_names_the_frame_and_the_known_ones() -> None:
    buffer, _ = robot_tree()
    with pytest.raises(UnknownFrameError, match="'camera_depth_frame' does not exist.*base_link"):
        buffer.lookup("map", "camera_depth_frame", 0.5)


def test_extrapolation_says_future_or_past_and_which_link() -> None:
    buffer, _ = robot_tree()
    with pytest.raises(ExtrapolationError, match="future.*'map' -> 'odom'|future.*'odom' -> 'base_link'") as future:
        buffer.lookup("map", "camera_optical_frame", 1.2)
    assert future.value.future
    with pytest.raises(ExtrapolationError, match="past") as past:
        buffer.lookup("map", "camera_optical_frame", -0.1)
    assert not past.value.future
    # Static links alone never extrapolate.
    buffer.lookup("base_link", "camera_optical_frame", 1e6)


def test_old_samples_leave_the_cache() -> None:
    buffer = TransformBuffer(TransformBufferConfig(cache_time_s=2.0))
    for t in range(6):
        _set(buffer, "odom", "base_link", float(t), _pose(0, [t, 0, 0]))
    buffer.lookup("odom", "base_link", 3.0)
    with pytest.raises(ExtrapolationError, match="past"):
        buffer.lookup("odom", "base_link", 2.5)


def test_disconnected_trees() -> None:
    buffer, _ = robot_tree()
    _set(buffer, "world", "other_robot", 0.0, np.eye(4), static=True)
    with pytest.raises(ConnectivityError, match="not connected.*'map'.*'world'|not connected.*'world'.*'map'"):
        buffer.lookup("map", "other_robot", 0.5)


def test_a_cycle_is_refused_and_the_tree_keeps_working() -> None:
    buffer, _ = robot_tree()
    before = buffer.lookup("map", "camera_optical_frame", 0.5)
    with pytest.raises(InvalidTransformError, match="cycle"):
        _set(buffer, "camera_optical_frame", "map", 0.5, np.eye(4))
    with pytest.raises(InvalidTransformError, match="own parent"):
        _set(buffer, "odom", "odom", 0.5, np.eye(4))
    np.testing.assert_allclose(buffer.lookup("map", "camera_optical_frame", 0.5), before)


def test_quaternions_near_unit_are_normalised_and_others_refused() -> None:
    buffer = TransformBuffer()
    buffer.set_transform("map", "odom", 0.0, [0, 0, 0], [0.0, 0.0, 0.7072, 0.7072], static=True)  # |q| = 1.00014
    rotation = buffer.lookup("map", "odom")[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    for bad in ([0, 0, 0, 0], [0, 0, 0.5, 0.5], [0, 0, np.nan, 1.0]):
        with pytest.raises(InvalidTransformError, match="quaternion|non-finite"):
            buffer.set_transform("map", "base_link", 0.0, [0, 0, 0], bad)
    assert "base_link" not in buffer.frames()


def test_waiter_releases_in_order_when_tf_catches_up_and_gives_up_after_max_wait() -> None:
    buffer = TransformBuffer()
    _set(buffer, "map", "camera", 0.0, _pose(0, [0, 0, 0]))
    waiter: TransformWaiter[str] = TransformWaiter(buffer, "map", max_wait_s=0.5, max_items=8)
    assert [r.payload for r in waiter.add(0.0, "camera", "a")] == ["a"]  # covered at once
    assert waiter.add(0.1, "camera", "b") == [] and waiter.add(0.2, "camera", "c") == []  # /tf not there yet
    _set(buffer, "map", "camera", 0.15, _pose(0, [1.5, 0, 0]))
    released = waiter.retry()
    assert [r.payload for r in released] == ["b"] and released[0].transform[0, 3] == pytest.approx(1.0)
    assert waiter.add(0.9, "camera", "d") == []  # "c" waited 0.7 s of stamp time behind "d": given up
    gave_up = waiter.take_gave_up()
    assert [g.payload for g in gave_up] == ["c"] and "future" in gave_up[0].problem
    with pytest.raises(ExtrapolationError, match="past"):  # waiting cannot bring back data older than the buffer
        TransformWaiter(buffer, "map", 0.5, 8).add(-1.0, "camera", "e")
    unknown: TransformWaiter[str] = TransformWaiter(buffer, "map", 0.5, 8)
    assert unknown.add(0.1, "camera_depth_frame", "f") == []
    assert [g.problem for g in unknown.clear()] == ["the scene memory was reset"]


def test_stamps_equal_to_the_nanosecond_match_despite_float_rounding() -> None:
    buffer = TransformBuffer()
    stamp = 1_700_000_000 + 123_456_789 * 1e-9  # as read from a ROS header (sec + nanosec)
    _set(buffer, "odom", "base_link", stamp, _pose(0, [1, 0, 0]))
    np.testing.assert_allclose(buffer.lookup("odom", "base_link", 1_700_000_000.123456789)[:3, 3], [1, 0, 0])
    with pytest.raises(ExtrapolationError, match="future"):
        buffer.lookup("odom", "base_link", stamp + 1e-5)
