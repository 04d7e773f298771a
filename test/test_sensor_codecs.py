"""One reader for sensor messages from rclpy (live) and rosbags (bags): same fields, same pixels."""
import array
import subprocess
import sys

import numpy as np
import pytest
from sensor_msgs.msg import Image

from w2r2_ros.sensors.camera_codec import camera_info_to_intrinsics
from w2r2_ros.sensors.errors import InvalidMessage, UnsupportedEncoding
from w2r2_ros.sensors.image_codec import depth_pixels, image_to_depth, image_to_rgb, rgb_pixels
from w2r2_ros.recordings.bag_reader import IMAGE, TYPESTORE


def rclpy_image(pixels: np.ndarray, encoding: str) -> Image:
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=0)
    msg.step = pixels.strides[0]
    msg.data = array.array("B", pixels.tobytes())
    return msg


def rosbags_image(pixels: np.ndarray, encoding: str):
    stamp = TYPESTORE.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0)
    header = TYPESTORE.types["std_msgs/msg/Header"](stamp=stamp, frame_id="cam")
    msg = TYPESTORE.types[IMAGE](header=header, height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                                 is_bigendian=0, step=pixels.strides[0], data=pixels.reshape(-1).view(np.uint8))
    # Through CDR bytes and back, as read_bag gives it.
    return TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(msg, IMAGE), IMAGE)


@pytest.mark.parametrize("make", [rclpy_image, rosbags_image])
def test_rclpy_and_rosbags_images_decode_alike(make):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    metres = np.array([[0.0, 1.234], [np.nan, 65.5]], dtype=np.float32)
    for encoding in ("rgb8", "bgr8"):
        np.testing.assert_array_equal(image_to_rgb(make(rgb_pixels(rgb, encoding), encoding)), rgb)
    alpha = np.concatenate([rgb, np.full((6, 5, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_to_rgb(make(alpha, "rgba8")), rgb)
    np.testing.assert_array_equal(image_to_rgb(make(np.ascontiguousarray(alpha[..., [2, 1, 0, 3]]), "bgra8")), rgb)
    np.testing.assert_array_equal(image_to_depth(make(depth_pixels(metres, "32FC1"), "32FC1")), metres)
    mm = depth_pixels(metres, "16UC1")
    assert mm.tolist() == [[0, 1234], [0, 65500]]
    for encoding in ("16UC1", "mono16"):
        np.testing.assert_allclose(image_to_depth(make(mm, encoding)), [[0.0, 1.234], [0.0, 65.5]], rtol=1e-6)
    with pytest.raises(UnsupportedEncoding, match="mono8"):
        image_to_rgb(make(np.zeros((2, 2), np.uint8), "mono8"))
    with pytest.raises(UnsupportedEncoding, match="bgr8"):
        image_to_depth(make(rgb, "bgr8"))


def test_out_of_range_depth_is_written_invalid_not_clipped():
    assert depth_pixels(np.array([[70.0, -1.0, np.inf]], np.float32), "16UC1").tolist() == [[0, 0, 0]]


def test_inconsistent_camera_info_raises_one_line():
    info = TYPESTORE.types["sensor_msgs/msg/CameraInfo"]  # a rosbags message: the decoder reads attributes only
    good = rosbags_camera_info(np.array([50.0, 0, 16, 0, 50.0, 12, 0, 0, 1]), info)
    k = camera_info_to_intrinsics(good)
    assert (k.fx, k.cy, k.width, k.height) == (50.0, 12.0, 32, 24)
    with pytest.raises(InvalidMessage, match="focal"):
        camera_info_to_intrinsics(rosbags_camera_info(np.zeros(9), info))


def rosbags_camera_info(k: np.ndarray, info_type):
    stamp = TYPESTORE.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0)
    roi = TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return info_type(header=TYPESTORE.types["std_msgs/msg/Header"](stamp=stamp, frame_id="cam"), height=24, width=32,
                     distortion_model="plumb_bob", d=np.zeros(5), k=k, r=np.eye(3).reshape(-1), p=np.zeros(12),
                     binning_x=0, binning_y=0, roi=roi)


def test_codecs_and_bag_reading_import_no_rclpy():
    code = ("import sys, w2r2_ros.sensors.image_codec, w2r2_ros.sensors.camera_codec, w2r2_ros.recordings.bag_reader, "
            "w2r2_ros.sensors.compressed_codec, w2r2_ros.geometry.transform_waiter, w2r2_ros.sim.bag_writer; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
