"""Synthetic recordings as real rosbag2 files (sqlite3 and mcap), read back by rosbags and by rclpy."""
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transform_buffer import TransformBuffer
from w2r2_ros.sensors.compressed_codec import compressed_depth_to_depth, compressed_to_rgb
from w2r2_ros.recordings.bag_reader import BagError, BagTopics, read_bag, read_bag_frames
from w2r2_ros.sim.bag_writer import BagWriteConfig, write_bag
from w2r2_ros.sim.recording import Recording, record_scene
from w2r2_ros.sim.world import generate_scene

STORAGES = ("sqlite3", "mcap")


@pytest.fixture(scope="module")
def recording() -> Recording:
    scene = generate_scene("scene_0004", seed=1)
    return record_scene(scene, n_frames=4, intrinsics=Intrinsics.from_fov(96, 72, 70.0), fps=5.0)


def _bag_file(bag: Path) -> Path:
    (data,) = [p for p in bag.iterdir() if p.suffix in (".db3", ".mcap")]
    return data


@pytest.mark.parametrize("storage", STORAGES)
def test_frames_round_trip_through_a_bag(recording: Recording, tmp_path: Path, storage: str) -> None:
    bag = write_bag(recording, tmp_path / "bag", storage=storage)
    assert _bag_file(bag).suffix == {"sqlite3": ".db3", "mcap": ".mcap"}[storage]
    frames = read_bag_frames(bag)
    assert len(frames) == len(recording)
    for frame, stamp, pose, truth in zip(frames, recording.stamps, recording.poses, recording.frames):
        assert frame.stamp == pytest.approx(stamp, abs=1e-6)
        assert frame.intrinsics == recording.intrinsics
        np.testing.assert_array_equal(frame.rgb, truth.rgb)
        np.testing.assert_allclose(frame.depth, truth.depth, atol=5e-4 + 1e-6)  # 16UC1 millimetres
        np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-9)


@pytest.mark.parametrize("storage", STORAGES)
def test_messages_come_in_time_order_with_ros_headers(recording: Recording, tmp_path: Path, storage: str) -> None:
    config = BagWriteConfig(depth_encoding="32FC1", points_every_n=2, points_stride=2, tf=False, odometry=False)
    bag = write_bag(recording, tmp_path / "bag", storage=storage, config=config)
    messages = list(read_bag(bag))
    stamps = [stamp for _, stamp, _ in messages]
    assert stamps == sorted(stamps)
    topics = BagTopics()
    all_topics = (topics.color, topics.depth, topics.camera_info, topics.pose, topics.points)
    counts = {t: sum(topic == t for topic, _, _ in messages) for t in all_topics}
    assert counts == {topics.color: 4, topics.depth: 4, topics.camera_info: 4, topics.pose: 4, topics.points: 2}
    for topic, stamp, msg in messages:
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
        expected_frame = "map" if topic in (topics.pose, topics.points) else "camera_color_optical_frame"
        assert msg.header.frame_id == expected_frame
    depth = [m for t, _, m in messages if t == topics.depth][0]
    assert depth.encoding == "32FC1"
    np.testing.assert_array_equal(np.frombuffer(bytes(depth.data), "<f4").reshape(72, 96), recording.frames[0].depth)
    # /points: float32 x, y, z and a float32-packed 0x00RRGGBB, in the map frame inside the room.
    cloud = [m for t, _, m in messages if t == topics.points][0]
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
    points = np.frombuffer(bytes(cloud.data), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    assert len(points) == cloud.width > 100
    half = recording.scene.room_size / 2
    assert np.all(np.abs(points["x"]) <= half[0] + 1e-3) and np.all(np.abs(points["y"]) <= half[1] + 1e-3)
    rgb = np.stack([(points["rgb"] >> s) & 255 for s in (16, 8, 0)], axis=1)
    assert {tuple(c) for c in rgb} <= {tuple(c) for c in recording.frames[0].rgb.reshape(-1, 3)}


@pytest.mark.parametrize("storage", STORAGES)
def test_rclpy_deserializes_the_recorded_bytes(recording: Recording, tmp_path: Path, storage: str) -> None:
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Odometry
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from tf2_msgs.msg import TFMessage

    bag = write_bag(recording, tmp_path / "bag", storage=storage, config=BagWriteConfig(points_every_n=4))
    ros_types = {
        "sensor_msgs/msg/Image": Image,
        "sensor_msgs/msg/CameraInfo": CameraInfo,
        "geometry_msgs/msg/PoseStamped": PoseStamped,
        "sensor_msgs/msg/PointCloud2": PointCloud2,
        "tf2_msgs/msg/TFMessage": TFMessage,
        "nav_msgs/msg/Odometry": Odometry,
    }
    seen = set()
    with Reader(bag) as reader:
        for connection, _, raw in reader.messages():
            msg = deserialize_message(raw, ros_types[connection.msgtype])
            seen.add(connection.msgtype)
            if connection.topic == "/camera/color/image_raw" and msg.header.stamp.nanosec == 0:
                assert (msg.height, msg.width, msg.encoding, msg.step) == (72, 96, "rgb8", 96 * 3)
                pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(72, 96, 3)
                np.testing.assert_array_equal(pixels, recording.frames[0].rgb)
            if connection.msgtype == "sensor_msgs/msg/Image" and msg.encoding == "16UC1":
                assert msg.step == 96 * 2 and len(msg.data) == 72 * 96 * 2
            if connection.msgtype == "sensor_msgs/msg/CameraInfo":
                assert msg.k[0] == pytest.approx(recording.intrinsics.fx) and msg.distortion_model == "plumb_bob"
            if connection.msgtype == "geometry_msgs/msg/PoseStamped":
                assert msg.header.frame_id == "map"
                q = msg.pose.orientation
                assert q.x**2 + q.y**2 + q.z**2 + q.w**2 == pytest.approx(1.0)
    assert seen == set(ros_types)


@pytest.mark.parametrize("storage", STORAGES)
def test_truncated_bag_gives_one_line_error_naming_it(recording: Recording, tmp_path: Path, storage: str) -> None:
    bag = write_bag(recording, tmp_path / "bag", storage=storage)
    data = _bag_file(bag)
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    with pytest.raises(BagError, match=str(bag)) as error:
        read_bag_frames(bag)
    assert "\n" not in str(error.value)


def test_missing_topics_and_bad_options_are_named(recording: Recording, tmp_path: Path) -> None:
    bag = write_bag(recording, tmp_path / "bag", topics=BagTopics(pose="/robot/pose"))
    with pytest.raises(BagError, match="no messages on /camera/pose"):
        read_bag_frames(bag)
    assert len(read_bag_frames(bag, BagTopics(pose="/robot/pose"))) == len(recording)
    with pytest.raises(BagError, match="nothing_here"):
        read_bag_frames(tmp_path / "nothing_here")
    with pytest.raises(ValueError, match="storage"):
        write_bag(recording, tmp_path / "x", storage="rosbag1")
    with pytest.raises(ValueError, match="depth_encoding"):
        write_bag(recording, tmp_path / "y", config=BagWriteConfig(depth_encoding="mono8"))


def test_robot_like_bag_has_tf_odometry_and_compressed_images(recording: Recording, tmp_path: Path) -> None:
    """/tf_static + /tf compose to the camera pose, Odometry is base_link in odom, images are compressed."""
    config = BagWriteConfig(color_format="jpeg", depth_format="compressedDepth", pose=False)
    bag = write_bag(recording, tmp_path / "bag", config=config)
    messages = list(read_bag(bag))
    topics = {topic for topic, _, _ in messages}
    assert topics == {"/camera/color/image_raw/compressed", "/camera/depth/image_raw/compressedDepth",
                      "/camera/color/camera_info", "/tf", "/tf_static", "/odom"}
    buffer = TransformBuffer()
    for topic, _, msg in messages:
        if topic in ("/tf", "/tf_static"):
            for t in msg.transforms:
                tr, r = t.transform.translation, t.transform.rotation
                buffer.set_transform(t.header.frame_id, t.child_frame_id, t.header.stamp.sec + t.header.stamp.nanosec * 1e-9,
                                     [tr.x, tr.y, tr.z], [r.x, r.y, r.z, r.w], static=topic == "/tf_static")
    for stamp, pose in zip(recording.stamps, recording.poses):
        np.testing.assert_allclose(buffer.lookup("map", "camera_color_optical_frame", float(stamp)), pose, atol=1e-9)
    odometry = [m for t, _, m in messages if t == "/odom"]
    assert (odometry[0].header.frame_id, odometry[0].child_frame_id) == ("odom", "base_link")
    colour = next(m for t, _, m in messages if t.endswith("/compressed"))
    assert np.abs(compressed_to_rgb(colour).astype(int) - recording.frames[0].rgb).mean() < 8
    depth = next(m for t, _, m in messages if t.endswith("/compressedDepth"))
    np.testing.assert_allclose(compressed_depth_to_depth(depth), recording.frames[0].depth, atol=5e-4 + 1e-6)
