"""rosbag2 files of synthetic recordings, written as a robot would record them.

A synthetic recording is written with the topics and message types a robot's
RGB-D camera driver, tf and localisation publish (docs/ARCHITECTURE.md,
default topics), in either rosbag2 storage format (sqlite3 ``.db3`` or
``.mcap``), so the scene-memory node, the demo and training read simulated and
real recordings the same way (``w2r2_ros.recordings.bag_reader``). Pure Python
through ``rosbags``: no ROS install and no rclpy needed; the serialized bytes
are the CDR a robot records.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from w2r2_ros.geometry.camera import Intrinsics, backproject_depth
from w2r2_ros.geometry.transforms import quaternion_from_transform
from w2r2_ros.recordings.bag_reader import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    ODOMETRY,
    POINT_CLOUD2,
    POSE_STAMPED,
    TF_MESSAGE,
    TYPESTORE,
    BagTopics,
)
from w2r2_ros.sensors.compressed_codec import depth_to_compressed_depth, rgb_to_compressed
from w2r2_ros.sensors.image_codec import DEPTH_ENCODINGS, depth_pixels, is_big_endian, rgb_pixels
from w2r2_ros.sim.recording import Recording
from w2r2_ros.sim.robot_tf import RobotFrames, dynamic_transforms, static_transforms

_STORAGE = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
_BAG_VERSION = 9  # rosbag2 metadata version written by Jazzy and Kilted


@dataclass(frozen=True)
class BagWriteConfig:
    """How a recording becomes messages.

    ``depth_encoding``: ``16UC1`` (millimetres, what RealSense/OAK drivers
    publish) or ``32FC1`` (metres). ``points_every_n``: publish a map-frame
    ``PointCloud2`` every N frames (0: none), from every ``points_stride``-th
    pixel of each row and column.

    Like a robot's recording: ``tf`` writes ``/tf_static`` (camera mount) and
    ``/tf`` (``map -> odom`` drifting, ``odom -> base_link``; ``sim.robot_tf``)
    and ``odometry`` an Odometry of ``base_link`` in ``odom`` on
    ``topics.odometry``. ``color_format``: ``raw`` (rgb8 Image), or ``jpeg`` /
    ``png`` (CompressedImage on ``<color>/compressed``); ``depth_format``:
    ``raw`` or ``compressedDepth`` (on ``<depth>/compressedDepth``);
    ``pose``: False leaves out the PoseStamped.
    """

    depth_encoding: str = "16UC1"
    camera_frame_id: str = "camera_color_optical_frame"
    map_frame_id: str = "map"
    points_every_n: int = 0
    points_stride: int = 4
    pose: bool = True
    tf: bool = True
    odometry: bool = True
    color_format: str = "raw"
    depth_format: str = "raw"


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


def _compressed_msg(stamp_ns: int, frame_id: str, image_format: str, data: bytes):
    return TYPESTORE.types[COMPRESSED_IMAGE](header=_header(stamp_ns, frame_id), format=image_format,
                                            data=np.frombuffer(data, dtype=np.uint8))


def _tf_msg(stamp_ns: int, transforms: list[tuple[str, str, np.ndarray]]):
    types = TYPESTORE.types
    entries = []
    for parent, child, transform in transforms:
        t, q = transform[:3, 3], quaternion_from_transform(transform)
        entries.append(types["geometry_msgs/msg/TransformStamped"](
            header=_header(stamp_ns, parent), child_frame_id=child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
                rotation=types["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))))
    return types[TF_MESSAGE](transforms=entries)


def _odometry_msg(stamp_ns: int, parent: str, child: str, transform: np.ndarray):
    types = TYPESTORE.types
    pose = _pose_msg(stamp_ns, parent, transform).pose
    zero = types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)
    return types[ODOMETRY](
        header=_header(stamp_ns, parent), child_frame_id=child,
        pose=types["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](
            twist=types["geometry_msgs/msg/Twist"](linear=zero, angular=zero), covariance=np.zeros(36)),
    )


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

    Every frame gives a colour image, a depth image, a CameraInfo (frame
    ``camera_frame_id``), a PoseStamped of the optical frame in ``map``, and
    (``config``) /tf and Odometry; all header stamps and bag timestamps are the
    recording's stamps (/tf_static once, at the first).
    """
    if storage not in _STORAGE:
        raise ValueError(f"storage must be one of {sorted(_STORAGE)}, got {storage!r}")
    if config.depth_encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth_encoding must be one of {DEPTH_ENCODINGS}, got {config.depth_encoding!r}")
    if config.color_format not in ("raw", "jpeg", "png") or config.depth_format not in ("raw", "compressedDepth"):
        raise ValueError(f"color_format must be raw, jpeg or png and depth_format raw or compressedDepth, "
                         f"got {config.color_format!r}, {config.depth_format!r}")
    path = Path(path)
    cam, world = config.camera_frame_id, config.map_frame_id
    frames = RobotFrames(map=world, optical=cam)
    compressed_color, compressed_depth = config.color_format != "raw", config.depth_format != "raw"
    with Writer(path, version=_BAG_VERSION, storage_plugin=_STORAGE[storage]) as writer:
        def connect(topic: str, msgtype: str):
            return writer.add_connection(topic, msgtype, typestore=TYPESTORE)

        connections = {
            "color": connect(f"{topics.color}/compressed", COMPRESSED_IMAGE) if compressed_color else connect(topics.color, IMAGE),
            "depth": (connect(f"{topics.depth}/compressedDepth", COMPRESSED_IMAGE) if compressed_depth
                      else connect(topics.depth, IMAGE)),
            "info": connect(topics.camera_info, CAMERA_INFO),
        }
        if config.pose:
            connections["pose"] = connect(topics.pose, POSE_STAMPED)
        if config.tf:
            connections["tf"], connections["tf_static"] = connect(topics.tf, TF_MESSAGE), connect(topics.tf_static, TF_MESSAGE)
        if config.odometry:
            connections["odometry"] = connect(topics.odometry, ODOMETRY)
        if config.points_every_n > 0:
            connections["points"] = connect(topics.points, POINT_CLOUD2)

        def put(key: str, stamp_ns: int, msg, msgtype: str) -> None:
            writer.write(connections[key], stamp_ns, TYPESTORE.serialize_cdr(msg, msgtype))

        start = float(recording.stamps[0]) if len(recording.stamps) else 0.0
        for index, (stamp, pose, frame) in enumerate(zip(recording.stamps, recording.poses, recording.frames)):
            ns = int(round(float(stamp) * 1e9))
            chain = dynamic_transforms(pose, float(stamp) - start, frames)
            put("info", ns, _camera_info_msg(ns, cam, recording.intrinsics), CAMERA_INFO)  # a driver sends it first
            if config.tf:
                if index == 0:
                    put("tf_static", ns, _tf_msg(ns, static_transforms(frames)), TF_MESSAGE)
                put("tf", ns, _tf_msg(ns, chain), TF_MESSAGE)
            if config.odometry:
                put("odometry", ns, _odometry_msg(ns, frames.odom, frames.base, chain[1][2]), ODOMETRY)
            if config.pose:
                put("pose", ns, _pose_msg(ns, world, pose), POSE_STAMPED)
            if compressed_color:
                put("color", ns, _compressed_msg(ns, cam, *rgb_to_compressed(frame.rgb, config.color_format)), COMPRESSED_IMAGE)
            else:
                put("color", ns, _image_msg(ns, cam, rgb_pixels(frame.rgb), "rgb8"), IMAGE)
            if compressed_depth:
                depth_msg = _compressed_msg(ns, cam, *depth_to_compressed_depth(frame.depth, config.depth_encoding))
                put("depth", ns, depth_msg, COMPRESSED_IMAGE)
            else:
                depth = depth_pixels(frame.depth, config.depth_encoding)
                put("depth", ns, _image_msg(ns, cam, depth, config.depth_encoding), IMAGE)
            if config.points_every_n > 0 and index % config.points_every_n == 0:
                points, pixel = backproject_depth(frame.depth, recording.intrinsics, pose, stride=config.points_stride)
                put("points", ns, _points_msg(ns, world, points, frame.rgb.reshape(-1, 3)[pixel]), POINT_CLOUD2)
    return path
