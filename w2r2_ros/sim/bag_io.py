"""rosbag2 files of synthetic recordings, and reading RGB-D frames back from any such bag.

A synthetic recording is written with the topics and message types a robot's
RGB-D camera driver and localisation publish (docs/ARCHITECTURE.md, default
topics), in either rosbag2 storage format (sqlite3 ``.db3`` or ``.mcap``), so
the scene-memory node, the demo and training read simulated and real
recordings the same way. Pure Python through ``rosbags``: no ROS install and no
rclpy needed; the serialized bytes are the CDR a robot records. Image, CameraInfo
and Pose fields are read (and image pixels made) by ``w2r2_ros.sensors``, the
same code the nodes use on live messages.
"""
from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from w2r2_ros.geometry.camera import Intrinsics, backproject_depth
from w2r2_ros.geometry.transforms import quaternion_from_transform
from w2r2_ros.sensors.camera_codec import camera_info_to_intrinsics, pose_to_matrix
from w2r2_ros.sensors.errors import InvalidMessage
from w2r2_ros.sensors.image_codec import DEPTH_ENCODINGS, depth_pixels, image_to_depth, image_to_rgb, is_big_endian, rgb_pixels
from w2r2_ros.sim.recording import Recording

TYPESTORE: Typestore = get_typestore(Stores.ROS2_KILTED)
_STORAGE = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
_BAG_VERSION = 9  # rosbag2 metadata version written by Jazzy and Kilted

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"


# What a truncated or corrupt bag raises inside rosbags: its ReaderError, sqlite's errors,
# short reads, and the CDR decoder's struct/index errors on cut-off messages.
_DECODE_ERRORS = (struct.error, IndexError, ValueError, UnicodeDecodeError, AssertionError)
_READ_ERRORS = (ReaderError, sqlite3.Error, OSError, KeyError, EOFError) + _DECODE_ERRORS


class BagError(ValueError):
    """A bag that cannot be read or lacks what is asked of it; the message names the bag."""


@dataclass(frozen=True)
class BagTopics:
    """Topic names, the defaults of docs/ARCHITECTURE.md."""

    color: str = "/camera/color/image_raw"
    depth: str = "/camera/depth/image_raw"
    camera_info: str = "/camera/color/camera_info"
    pose: str = "/camera/pose"
    points: str = "/points"


@dataclass(frozen=True)
class BagWriteConfig:
    """How a recording becomes messages.

    ``depth_encoding``: ``16UC1`` (millimetres, what RealSense/OAK drivers
    publish) or ``32FC1`` (metres). ``points_every_n``: publish a map-frame
    ``PointCloud2`` every N frames (0: none), from every ``points_stride``-th
    pixel of each row and column.
    """

    depth_encoding: str = "16UC1"
    camera_frame_id: str = "camera_color_optical_frame"
    map_frame_id: str = "map"
    points_every_n: int = 0
    points_stride: int = 4


@dataclass(frozen=True)
class BagFrame:
    """One RGB-D frame from a bag with its matched pose: the fields of ``scene.keyframes.Keyframe``."""

    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    cam_to_world: np.ndarray


def _stamp_msg(stamp_ns: int):
    return TYPESTORE.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


def _header(stamp_ns: int, frame_id: str):
    return TYPESTORE.types["std_msgs/msg/Header"](stamp=_stamp_msg(stamp_ns), frame_id=frame_id)


def _image_msg(stamp_ns: int, frame_id: str, pixels: np.ndarray, encoding: str):
    """An Image around the contiguous pixels of ``image_codec.rgb_pixels`` / ``depth_pixels``."""
    height, width = pixels.shape[:2]
    return TYPESTORE.types[IMAGE](
        header=_header(stamp_ns, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(is_big_endian(pixels.dtype)),
        step=pixels.strides[0],
        data=pixels.reshape(-1).view(np.uint8),
    )


def _camera_info_msg(stamp_ns: int, frame_id: str, k: Intrinsics):
    roi = TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return TYPESTORE.types[CAMERA_INFO](
        header=_header(stamp_ns, frame_id),
        height=k.height,
        width=k.width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array([k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]),
        r=np.eye(3).reshape(-1),
        p=np.array([k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def _pose_msg(stamp_ns: int, frame_id: str, cam_to_world: np.ndarray):
    t = cam_to_world[:3, 3]
    q = quaternion_from_transform(cam_to_world)
    types = TYPESTORE.types
    pose = types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
        orientation=types["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
    )
    return types[POSE_STAMPED](header=_header(stamp_ns, frame_id), pose=pose)


def _points_msg(stamp_ns: int, frame_id: str, points: np.ndarray, rgb: np.ndarray):
    """x, y, z float32 and the PCL convention for colour: 0x00RRGGBB bits stored in a float32 ``rgb`` field."""
    field = TYPESTORE.types["sensor_msgs/msg/PointField"]
    cloud = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    cloud["x"], cloud["y"], cloud["z"] = points[:, 0], points[:, 1], points[:, 2]
    rgb = rgb.astype(np.uint32)
    cloud["rgb"] = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    fields = [field(name=n, offset=4 * i, datatype=field.FLOAT32, count=1) for i, n in enumerate(("x", "y", "z", "rgb"))]
    return TYPESTORE.types[POINT_CLOUD2](
        header=_header(stamp_ns, frame_id),
        height=1,
        width=len(points),
        fields=fields,
        is_bigendian=False,
        point_step=16,
        row_step=16 * len(points),
        data=cloud.view(np.uint8),
        is_dense=True,
    )


def write_bag(
    recording: Recording,
    path: str | Path,
    storage: str = "sqlite3",
    topics: BagTopics = BagTopics(),
    config: BagWriteConfig = BagWriteConfig(),
) -> Path:
    """Write the recording as a rosbag2 folder at ``path`` (must not exist); returns it.

    Every frame gives a colour image (rgb8), a depth image, a CameraInfo (frame
    ``camera_frame_id``) and a PoseStamped of the optical frame in ``map``; all
    header stamps and bag timestamps are the recording's stamps.
    """
    if storage not in _STORAGE:
        raise ValueError(f"storage must be one of {sorted(_STORAGE)}, got {storage!r}")
    if config.depth_encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth_encoding must be one of {DEPTH_ENCODINGS}, got {config.depth_encoding!r}")
    path = Path(path)
    cam, world = config.camera_frame_id, config.map_frame_id
    with Writer(path, version=_BAG_VERSION, storage_plugin=_STORAGE[storage]) as writer:
        connections = {
            "color": writer.add_connection(topics.color, IMAGE, typestore=TYPESTORE),
            "depth": writer.add_connection(topics.depth, IMAGE, typestore=TYPESTORE),
            "info": writer.add_connection(topics.camera_info, CAMERA_INFO, typestore=TYPESTORE),
            "pose": writer.add_connection(topics.pose, POSE_STAMPED, typestore=TYPESTORE),
        }
        if config.points_every_n > 0:
            connections["points"] = writer.add_connection(topics.points, POINT_CLOUD2, typestore=TYPESTORE)

        def put(key: str, stamp_ns: int, msg, msgtype: str) -> None:
            writer.write(connections[key], stamp_ns, TYPESTORE.serialize_cdr(msg, msgtype))

        for index, (stamp, pose, frame) in enumerate(zip(recording.stamps, recording.poses, recording.frames)):
            ns = int(round(float(stamp) * 1e9))
            put("color", ns, _image_msg(ns, cam, rgb_pixels(frame.rgb), "rgb8"), IMAGE)
            depth = depth_pixels(frame.depth, config.depth_encoding)
            put("depth", ns, _image_msg(ns, cam, depth, config.depth_encoding), IMAGE)
            put("info", ns, _camera_info_msg(ns, cam, recording.intrinsics), CAMERA_INFO)
            put("pose", ns, _pose_msg(ns, world, pose), POSE_STAMPED)
            if config.points_every_n > 0 and index % config.points_every_n == 0:
                points, pixel = backproject_depth(frame.depth, recording.intrinsics, pose, stride=config.points_stride)
                put("points", ns, _points_msg(ns, world, points, frame.rgb.reshape(-1, 3)[pixel]), POINT_CLOUD2)
    return path


def read_bag(path: str | Path, topics: list[str] | None = None) -> Iterator[tuple[str, int, object]]:
    """Yield ``(topic, bag_timestamp_ns, message)`` in time order; messages are ``rosbags`` objects.

    ``topics=None`` reads every topic. Raises ``BagError`` naming the bag when
    it cannot be opened or a message cannot be decoded.
    """
    path = Path(path)
    try:
        with Reader(path) as reader:
            connections = [c for c in reader.connections if topics is None or c.topic in topics]
            for connection, timestamp, raw in reader.messages(connections=connections):
                try:
                    message = TYPESTORE.deserialize_cdr(raw, connection.msgtype)
                except _DECODE_ERRORS as error:
                    problem = f"cannot decode a {connection.msgtype} message on {connection.topic} ({error})"
                    raise BagError(f"{path}: {problem}") from None
                yield connection.topic, timestamp, message
    except BagError:
        raise
    except _READ_ERRORS as error:
        raise BagError(f"{path}: unreadable rosbag2 ({type(error).__name__}: {error})") from None


def _header_seconds(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _nearest(stamps: np.ndarray, stamp: float) -> int:
    index = int(np.searchsorted(stamps, stamp))
    candidates = [i for i in (index - 1, index) if 0 <= i < len(stamps)]
    return min(candidates, key=lambda i: abs(stamps[i] - stamp))


def read_bag_frames(path: str | Path, topics: BagTopics = BagTopics(), tolerance_s: float = 0.02) -> list[BagFrame]:
    """RGB-D frames of a bag: each colour image with the depth image, camera info and pose nearest in header stamp.

    Colour images without a depth image and a pose within ``tolerance_s`` are
    skipped (a real driver drops frames). Raises ``BagError`` naming the bag
    when it is unreadable, lacks one of the four topics, or no frame matches.
    """
    wanted = [topics.color, topics.depth, topics.camera_info, topics.pose]
    messages: dict[str, list] = {topic: [] for topic in wanted}
    for topic, _, msg in read_bag(path, wanted):
        messages[topic].append(msg)
    missing = [topic for topic in wanted if not messages[topic]]
    if missing:
        raise BagError(f"{path}: no messages on {', '.join(missing)}")

    def by_stamp(topic: str) -> tuple[np.ndarray, list]:
        msgs = sorted(messages[topic], key=_header_seconds)
        return np.array([_header_seconds(m) for m in msgs]), msgs

    depth_stamps, depth_msgs = by_stamp(topics.depth)
    info_stamps, info_msgs = by_stamp(topics.camera_info)
    pose_stamps, pose_msgs = by_stamp(topics.pose)
    frames = []
    for color in sorted(messages[topics.color], key=_header_seconds):
        stamp = _header_seconds(color)
        d, p = _nearest(depth_stamps, stamp), _nearest(pose_stamps, stamp)
        if abs(depth_stamps[d] - stamp) > tolerance_s or abs(pose_stamps[p] - stamp) > tolerance_s:
            continue
        try:
            intrinsics = camera_info_to_intrinsics(info_msgs[_nearest(info_stamps, stamp)])
            rgb, depth = image_to_rgb(color), image_to_depth(depth_msgs[d])
            cam_to_world = pose_to_matrix(pose_msgs[p].pose)
        except InvalidMessage as error:
            raise BagError(f"{path}: frame at stamp {stamp:.3f}: {error}") from None
        if rgb.shape[:2] != (intrinsics.height, intrinsics.width) or depth.shape != rgb.shape[:2]:
            raise BagError(
                f"{path}: image sizes rgb {rgb.shape[:2]} depth {depth.shape} do not match camera info "
                f"{intrinsics.height}x{intrinsics.width} at stamp {stamp:.3f}"
            )
        frames.append(BagFrame(stamp, rgb, depth, intrinsics, cam_to_world))
    if not frames:
        raise BagError(f"{path}: no colour image has a depth image and pose within {tolerance_s} s")
    return frames
