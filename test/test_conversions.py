"""Message conversions: real rclpy message objects, serialised and deserialised as DDS would."""
import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import look_at
from w2r2_ros.ros.conversions import (
    InvalidMessage,
    UnsupportedEncoding,
    camera_info_to_intrinsics,
    cloud_to_structured,
    cloud_to_xyz_rgb,
    depth_to_image,
    image_to_depth,
    image_to_rgb,
    intrinsics_to_camera_info,
    matrix_to_odometry,
    matrix_to_pose_stamped,
    odometry_to_matrix,
    pose_stamped_to_matrix,
    rgb_to_image,
    seconds_to_stamp,
    stamp_to_seconds,
    structured_to_cloud,
    xyz_rgb_to_cloud,
)


def over_the_wire(msg):
    """The message as a subscriber receives it."""
    return deserialize_message(serialize_message(msg), type(msg))


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False) -> Image:
    """An Image built by hand, with ``pad`` garbage bytes at the end of every row."""
    dtype = pixels.dtype.newbyteorder(">" if big_endian else "<")
    rows = pixels.astype(dtype).reshape(pixels.shape[0], -1).view(np.uint8).reshape(pixels.shape[0], -1)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=int(big_endian))
    msg.step = padded.shape[1]
    msg.data = array.array("B", padded.tobytes())
    return msg


def test_stamps_round_trip_to_the_nanosecond():
    assert seconds_to_stamp(1.5) == Time(sec=1, nanosec=500_000_000)
    assert seconds_to_stamp(12.9999999999) == Time(sec=13, nanosec=0)
    for stamp in (Time(sec=0, nanosec=1), Time(sec=1700000000, nanosec=123_456_789), Time(sec=42, nanosec=999_999_999)):
        assert stamp_to_seconds(stamp) == pytest.approx(stamp.sec + stamp.nanosec / 1e9, abs=1e-9)
        back = seconds_to_stamp(stamp_to_seconds(stamp))
        assert abs((back.sec - stamp.sec) * 10**9 + back.nanosec - stamp.nanosec) <= 256  # float64 at 1.7e9 s


def test_rgb8_and_bgr8_read_as_rgb():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for encoding in ("rgb8", "bgr8"):
        msg = over_the_wire(rgb_to_image(rgb, 3.25, "cam", encoding=encoding))
        assert msg.encoding == encoding and msg.step == 21
        np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    bgr_by_hand = raw_image(rgb[..., ::-1].copy(), "bgr8")
    np.testing.assert_array_equal(image_to_rgb(bgr_by_hand), rgb)


def test_row_padding_is_skipped():
    rgb = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    np.testing.assert_array_equal(image_to_rgb(raw_image(rgb, "rgb8", pad=7)), rgb)
    depth_mm = np.array([[0, 1000, 2500], [65535, 1, 300]], dtype=np.uint16)
    depth = image_to_depth(raw_image(depth_mm, "16UC1", pad=2))
    np.testing.assert_allclose(depth, depth_mm.astype(np.float32) / 1000.0, rtol=1e-6)


def test_depth_16uc1_is_millimetres_with_zero_invalid_and_byte_order_honoured():
    depth_mm = np.array([[0, 1234], [4321, 65000]], dtype=np.uint16)
    for big_endian in (False, True):
        depth = image_to_depth(raw_image(depth_mm, "16UC1", big_endian=big_endian))
        assert depth.dtype == np.float32
        np.testing.assert_allclose(depth, [[0.0, 1.234], [4.321, 65.0]], rtol=1e-6)
    metres = np.array([[np.nan, 1.5], [0.0, 2.25]], dtype=np.float32)
    for big_endian in (False, True):
        np.testing.assert_array_equal(image_to_depth(raw_image(metres, "32FC1", big_endian=big_endian)), metres)


def test_depth_builders_round_trip():
    metres = np.array([[0.5, 1.25], [np.nan, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(image_to_depth(over_the_wire(depth_to_image(metres, 1.0, "cam"))), metres)
    as_mm = image_to_depth(over_the_wire(depth_to_image(metres, 1.0, "cam", encoding="16UC1")))
    np.testing.assert_allclose(as_mm, [[0.5, 1.25], [0.0, 3.0]], rtol=1e-6)


def test_unsupported_encodings_and_inconsistent_sizes_raise_clear_errors():
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    mono = raw_image(np.zeros((4, 4), np.uint8), "mono8")
    with pytest.raises(UnsupportedEncoding, match="mono8"):
        image_to_rgb(mono)
    with pytest.raises(UnsupportedEncoding, match="rgb8"):
        image_to_depth(rgb_to_image(rgb, 0.0, "cam"))
    truncated = rgb_to_image(rgb, 0.0, "cam")
    truncated.data = truncated.data[:-3]
    with pytest.raises(InvalidMessage, match="data length"):
        image_to_rgb(truncated)
    short_step = rgb_to_image(rgb, 0.0, "cam")
    short_step.step = 4
    with pytest.raises(InvalidMessage, match="step"):
        image_to_rgb(short_step)


def test_camera_info_round_trip_and_zero_focal_rejected():
    intrinsics = Intrinsics.from_fov(640, 480, 70.0)
    msg = over_the_wire(intrinsics_to_camera_info(intrinsics, 2.0, "camera_color_optical_frame"))
    assert camera_info_to_intrinsics(msg) == intrinsics
    assert msg.header.frame_id == "camera_color_optical_frame"
    with pytest.raises(InvalidMessage, match="focal"):
        camera_info_to_intrinsics(CameraInfo(width=640, height=480))


def test_pose_and_odometry_give_the_camera_to_map_transform():
    cam_to_map = look_at(np.array([1.0, -2.0, 1.5]), np.array([3.0, 0.5, 0.4]))
    pose = over_the_wire(matrix_to_pose_stamped(cam_to_map, 5.0, "map"))
    np.testing.assert_allclose(pose_stamped_to_matrix(pose), cam_to_map, atol=1e-9)
    odom = over_the_wire(matrix_to_odometry(cam_to_map, 5.0, "map", "camera_color_optical_frame"))
    np.testing.assert_allclose(odometry_to_matrix(odom), cam_to_map, atol=1e-9)
    pose.pose.orientation.w = 0.0
    pose.pose.orientation.x = pose.pose.orientation.y = pose.pose.orientation.z = 0.0
    with pytest.raises(InvalidMessage, match="quaternion"):
        pose_stamped_to_matrix(pose)


def test_cloud_round_trip_keeps_points_and_colours():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(50, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (50, 3), dtype=np.uint8)
    msg = over_the_wire(xyz_rgb_to_cloud(points, colors, 1.0, "map"))
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"] and msg.point_step == 16
    xyz, rgb = cloud_to_xyz_rgb(msg)
    np.testing.assert_array_equal(xyz, points)
    np.testing.assert_array_equal(rgb, colors)


def test_cloud_with_unusual_layout_float64_padding_and_big_endian():
    """x, y, z as FLOAT64 at shuffled offsets, an extra field, uint32 rgba, 40-byte points, big-endian."""
    layout = np.dtype(
        {
            "names": ["intensity", "z", "x", "y", "rgba"],
            "formats": [">f4", ">f8", ">f8", ">f8", ">u4"],
            "offsets": [0, 4, 12, 20, 32],
            "itemsize": 40,
        }
    )
    cloud = np.zeros(6, dtype=layout)
    cloud["x"], cloud["y"], cloud["z"] = np.arange(6), np.arange(6) * 2.0, np.arange(6) * -1.0
    cloud["x"][2] = np.nan
    cloud["y"][4] = np.inf
    cloud["rgba"] = 0xFF000000 | (np.arange(6, dtype=np.uint32) << 16) | (7 << 8) | 9
    msg = over_the_wire(structured_to_cloud(cloud, 0.0, "map"))
    assert msg.is_bigendian and msg.point_step == 40
    assert {f.name: f.datatype for f in msg.fields}["x"] == PointField.FLOAT64
    xyz, rgb = cloud_to_xyz_rgb(msg)
    keep = np.array([0, 1, 3, 5])
    np.testing.assert_array_equal(xyz, np.stack([keep, keep * 2.0, keep * -1.0], axis=1).astype(np.float32))
    np.testing.assert_array_equal(rgb, np.stack([keep, np.full(4, 7), np.full(4, 9)], axis=1))
    assert cloud_to_structured(msg)["intensity"].dtype == np.float32


def test_organised_cloud_with_row_padding():
    cloud = np.zeros((2, 3), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    cloud["x"] = np.arange(6).reshape(2, 3)
    rows = cloud.view(np.uint8).reshape(2, -1)
    padded = np.concatenate([rows, np.zeros((2, 4), np.uint8)], axis=1)
    msg = PointCloud2(height=2, width=3, point_step=12, row_step=padded.shape[1])
    msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate("xyz")]
    msg.data = array.array("B", padded.tobytes())
    xyz, rgb = cloud_to_xyz_rgb(msg)
    assert rgb is None
    np.testing.assert_array_equal(xyz[:, 0], np.arange(6))


@pytest.mark.parametrize(
    "break_it, match",
    [
        (lambda m: setattr(m, "fields", [f for f in m.fields if f.name != "z"]), "no 'z' field"),
        (lambda m: setattr(m, "point_step", 12), "point_step 12 too small for field 'rgb'"),
        (lambda m: setattr(m, "data", m.data[:-1]), "data length"),
        (lambda m: setattr(m, "row_step", 8), "row_step"),
        (lambda m: setattr(m.fields[0], "datatype", PointField.UINT8), "'x' has datatype"),
    ],
)
def test_bad_clouds_raise_invalid_message(break_it, match):
    msg = xyz_rgb_to_cloud(np.zeros((4, 3)), np.zeros((4, 3), np.uint8), 0.0, "map")
    break_it(msg)
    with pytest.raises(InvalidMessage, match=match):
        cloud_to_xyz_rgb(msg)
