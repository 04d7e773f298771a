"""Reading rosbag2 recordings (sqlite3 ``.db3`` or ``.mcap``): topics, messages, RGB-D frames.

General I/O, used by the demo (which streams a bag into the nodes), training
(which reads frames) and tests. Pure Python through ``rosbags``: no ROS install
and no rclpy needed. Image, CameraInfo and Pose fields are read by
``w2r2_ros.sensors``, the same code the nodes use on live messages. Every
problem with a bag raises :class:`BagError` with one line naming the bag.
"""
from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.sensors.camera_codec import camera_info_to_intrinsics, pose_to_matrix
from w2r2_ros.sensors.errors import InvalidMessage
from w2r2_ros.sensors.image_codec import image_to_depth, image_to_rgb

TYPESTORE: Typestore = get_typestore(Stores.ROS2_KILTED)

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
ODOMETRY = "nav_msgs/msg/Odometry"


# What a truncated or corrupt bag raises inside rosbags: its ReaderError, sqlite's errors,
# short reads, and the CDR decoder's errors on cut-off messages.
_DECODE_ERRORS = (SerdeError, struct.error, IndexError, ValueError, UnicodeDecodeError, AssertionError)
_READ_ERRORS = (ReaderError, sqlite3.Error, OSError, KeyError, EOFError) + _DECODE_ERRORS


class BagError(ValueError):
    """A bag that cannot be read or lacks what is asked of it; the message names the bag."""


@dataclass(frozen=True)
class BagTopics:
    """Topic names, the defaults of docs/ARCHITECTURE.md (``odometry``: a robot's base odometry)."""

    color: str = "/camera/color/image_raw"
    depth: str = "/camera/depth/image_raw"
    camera_info: str = "/camera/color/camera_info"
    pose: str = "/camera/pose"
    points: str = "/points"
    odometry: str = "/odom"
    tf: str = "/tf"
    tf_static: str = "/tf_static"


@dataclass(frozen=True)
class BagFrame:
    """One RGB-D frame from a bag with its matched pose: the fields of ``scene.keyframes.Keyframe``."""

    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    cam_to_world: np.ndarray


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


@dataclass(frozen=True)
class BagConnection:
    topic: str
    msgtype: str
    count: int


def bag_connections(path: str | Path) -> dict[str, BagConnection]:
    """Every topic of a bag with its type and message count, from its index (no message is read)."""
    path = Path(path)
    try:
        with Reader(path) as reader:
            found: dict[str, BagConnection] = {}
            for connection in reader.connections:
                previous = found.get(connection.topic)
                count = connection.msgcount + (previous.count if previous else 0)
                found[connection.topic] = BagConnection(connection.topic, connection.msgtype, count)
            return found
    except _READ_ERRORS as error:
        raise BagError(f"{path}: unreadable rosbag2 ({type(error).__name__}: {error})") from None


def read_bag_raw(path: str | Path, topics: list[str]) -> Iterator[tuple[str, str, int, bytes]]:
    """Yield ``(topic, msgtype, bag_timestamp_ns, CDR bytes)`` of ``topics`` in time order, one at a time.

    The bytes are what the robot published, ready for ``Publisher.publish``;
    each is decoded once on the way (and dropped), so a corrupt message raises
    ``BagError`` here rather than reaching a subscriber.
    """
    path = Path(path)
    try:
        with Reader(path) as reader:
            connections = [c for c in reader.connections if c.topic in topics]
            for connection, timestamp, raw in reader.messages(connections=connections):
                try:
                    TYPESTORE.deserialize_cdr(raw, connection.msgtype)
                except _DECODE_ERRORS as error:
                    problem = f"cannot decode a {connection.msgtype} message on {connection.topic} ({error})"
                    raise BagError(f"{path}: {problem}") from None
                yield connection.topic, connection.msgtype, timestamp, bytes(raw)
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
