"""ROS messages <-> numpy arrays and geometry types; conversions only, no algorithms.

``cv_bridge`` and ``sensor_msgs_py`` have no wheels here (docs ENVIRONMENT.md),
so the few conversions the nodes need are written with numpy. Every reader
validates the message it is given and raises :class:`InvalidMessage` (or its
subclass :class:`UnsupportedEncoding`) with one line naming the field and the
problem, so a node can log it and drop the frame.

Reading Image, CameraInfo and Pose fields is shared with bag reading and lives
in ``w2r2_ros.sensors`` (no rclpy there); it is re-exported here so that the
nodes find every message conversion in one place. This module adds what needs
the rclpy message types: building messages, stamps, PointCloud2 layouts.

Conventions follow ``w2r2_ros.geometry``: RGB is uint8 (H, W, 3) in RGB order,
depth is float32 metres with 0 or NaN invalid, poses are 4x4 camera-to-map.
"""
from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseStamped, TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import quaternion_from_transform
from w2r2_ros.sensors.camera_codec import camera_info_to_intrinsics, pose_to_matrix
from w2r2_ros.sensors.errors import InvalidMessage, UnsupportedEncoding
from w2r2_ros.sensors.image_codec import (
    DEPTH_ENCODINGS,
    RGB_ENCODINGS,
    depth_pixels,
    image_to_depth,
    image_to_rgb,
    is_big_endian,
    rgb_pixels,
)

__all__ = [  # the re-exported readers, and everything defined here
    "DEPTH_ENCODINGS",
    "RGB_ENCODINGS",
    "InvalidMessage",
    "UnsupportedEncoding",
    "camera_info_to_intrinsics",
    "cloud_to_structured",
    "cloud_to_xyz_rgb",
    "depth_to_image",
    "image_to_depth",
    "image_to_rgb",
    "intrinsics_to_camera_info",
    "make_header",
    "matrix_to_odometry",
    "matrix_to_pose",
    "matrix_to_pose_stamped",
    "matrix_to_transform_stamped",
    "odometry_to_matrix",
    "pack_rgb",
    "pose_stamped_to_matrix",
    "pose_to_matrix",
    "rgb_to_image",
    "seconds_to_stamp",
    "stamp_to_seconds",
    "structured_to_cloud",
    "xyz_rgb_to_cloud",
]


# PointField datatype -> numpy scalar type (byte order is added from is_bigendian).
_POINTFIELD_DTYPES = {
    PointField.INT8: np.int8,
    PointField.UINT8: np.uint8,
    PointField.INT16: np.int16,
    PointField.UINT16: np.uint16,
    PointField.INT32: np.int32,
    PointField.UINT32: np.uint32,
    PointField.FLOAT32: np.float32,
    PointField.FLOAT64: np.float64,
}
_NUMPY_TO_POINTFIELD = {np.dtype(v).name: k for k, v in _POINTFIELD_DTYPES.items()}


# --- stamps -----------------------------------------------------------------

def stamp_to_seconds(stamp: Time) -> float:
    """builtin_interfaces/Time as float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    """Float seconds as builtin_interfaces/Time (nanoseconds rounded, never 1e9)."""
    total_ns = int(round(seconds * 1e9))
    return Time(sec=total_ns // 1_000_000_000, nanosec=total_ns % 1_000_000_000)


def make_header(stamp: float | Time, frame_id: str) -> Header:
    """A std_msgs/Header from float seconds or a Time."""
    return Header(stamp=stamp if isinstance(stamp, Time) else seconds_to_stamp(stamp), frame_id=frame_id)


# --- images -----------------------------------------------------------------

def rgb_to_image(rgb: np.ndarray, stamp: float | Time, frame_id: str, encoding: str = "rgb8") -> Image:
    """An Image (rgb8 or bgr8, no row padding) from uint8 (H, W, 3) RGB."""
    return _make_image(rgb_pixels(rgb, encoding), stamp, frame_id, encoding)


def depth_to_image(depth: np.ndarray, stamp: float | Time, frame_id: str, encoding: str = "32FC1") -> Image:
    """An Image from float metres: 32FC1 as is, or 16UC1 millimetres (invalid and out-of-range -> 0)."""
    return _make_image(depth_pixels(depth, encoding), stamp, frame_id, encoding)


def _make_image(pixels: np.ndarray, stamp: float | Time, frame_id: str, encoding: str) -> Image:
    height, width = pixels.shape[:2]
    msg = Image(header=make_header(stamp, frame_id), height=height, width=width, encoding=encoding)
    msg.is_bigendian = int(is_big_endian(pixels.dtype))
    msg.step = pixels.strides[0]
    # array.array('B', bytes) is a memcpy; assigning a list would check every byte.
    msg.data = array.array("B", pixels.tobytes())
    return msg


# --- camera info ------------------------------------------------------------

def intrinsics_to_camera_info(intrinsics: Intrinsics, stamp: float | Time, frame_id: str) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera (plumb_bob with zero distortion)."""
    k = intrinsics.matrix
    p = np.zeros((3, 4))
    p[:, :3] = k
    return CameraInfo(
        header=make_header(stamp, frame_id),
        width=intrinsics.width,
        height=intrinsics.height,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=k.reshape(-1).tolist(),
        r=np.eye(3).reshape(-1).tolist(),
        p=p.reshape(-1).tolist(),
    )


# --- poses ------------------------------------------------------------------

def pose_stamped_to_matrix(msg: PoseStamped) -> np.ndarray:
    """The camera-to-map transform carried by a PoseStamped."""
    return pose_to_matrix(msg.pose)


def odometry_to_matrix(msg: Odometry) -> np.ndarray:
    """The pose part of an Odometry (``child_frame_id`` in ``header.frame_id``) as a 4x4 transform."""
    return pose_to_matrix(msg.pose.pose)


def matrix_to_pose(transform: np.ndarray) -> Pose:
    """A 4x4 rigid transform as geometry_msgs/Pose."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in transform[:3, 3])
    q = quaternion_from_transform(np.asarray(transform, dtype=np.float64))
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def matrix_to_pose_stamped(transform: np.ndarray, stamp: float | Time, frame_id: str) -> PoseStamped:
    return PoseStamped(header=make_header(stamp, frame_id), pose=matrix_to_pose(transform))


def matrix_to_transform_stamped(transform: np.ndarray, stamp: float | Time, parent: str, child: str) -> TransformStamped:
    """A 4x4 transform (``child`` in ``parent``) as a /tf entry."""
    msg = TransformStamped(header=make_header(stamp, parent), child_frame_id=child)
    pose = matrix_to_pose(transform)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        pose.position.x, pose.position.y, pose.position.z)
    msg.transform.rotation = pose.orientation
    return msg


def matrix_to_odometry(transform: np.ndarray, stamp: float | Time, frame_id: str, child_frame_id: str) -> Odometry:
    odom = Odometry(header=make_header(stamp, frame_id), child_frame_id=child_frame_id)
    odom.pose.pose = matrix_to_pose(transform)
    return odom


# --- point clouds -----------------------------------------------------------

def cloud_to_structured(msg: PointCloud2, stride: int = 1) -> np.ndarray:
    """Every ``stride``-th point of a PointCloud2 as a 1-D structured array with the message's fields.

    Any layout is read: fields at any offsets, any ``point_step`` and ``row_step``
    (row padding is skipped), either byte order. The result is a copy in native
    byte order, row-major; only the points kept are copied, so a huge cloud read
    with a stride costs what the points kept cost.
    """
    point_step, width, height = int(msg.point_step), int(msg.width), int(msg.height)
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for field in msg.fields:
        if field.datatype not in _POINTFIELD_DTYPES:
            raise InvalidMessage(f"PointCloud2: field '{field.name}' has unknown datatype {field.datatype}")
        base = np.dtype(_POINTFIELD_DTYPES[field.datatype]).newbyteorder(order)
        count = max(int(field.count), 1)
        end = field.offset + base.itemsize * count
        if end > point_step:
            raise InvalidMessage(
                f"PointCloud2: point_step {point_step} too small for field '{field.name}' (offset {field.offset}, ends at {end})"
            )
        if field.name in names:
            raise InvalidMessage(f"PointCloud2: field '{field.name}' appears twice")
        names.append(field.name)
        formats.append(base if count == 1 else (base, (count,)))
        offsets.append(int(field.offset))
    if point_step == 0:
        raise InvalidMessage("PointCloud2: point_step is 0")
    if msg.row_step < width * point_step:
        raise InvalidMessage(f"PointCloud2: row_step {msg.row_step} < width*point_step {width * point_step}")
    if len(msg.data) != msg.row_step * height:
        raise InvalidMessage(
            f"PointCloud2: data length {len(msg.data)} != row_step*height {msg.row_step * height}"
            f" (width {width}, height {height}, point_step {point_step})"
        )
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, msg.row_step)[:, : width * point_step]
    points = np.ascontiguousarray(rows).view(dtype).reshape(-1)[:: max(int(stride), 1)]
    native = np.dtype([(name, points.dtype.fields[name][0].newbyteorder("=")) for name in names])
    out = np.empty(points.shape, dtype=native)
    for name in names:
        out[name] = points[name]
    return out


def cloud_to_xyz_rgb(msg: PointCloud2, stride: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """Finite points of a cloud (every ``stride``-th) as ``(xyz (N, 3) float32, rgb (N, 3) uint8 or None)``.

    x, y, z must be FLOAT32 or FLOAT64. Colour is read from a packed ``rgb`` or
    ``rgba`` field (float32 or uint32 holding 0x00RRGGBB, the PCL convention) when
    present. Points with any non-finite coordinate are dropped.
    """
    fields = {field.name: field for field in msg.fields}
    for axis in "xyz":
        if axis not in fields:
            raise InvalidMessage(f"PointCloud2: no '{axis}' field (fields: {sorted(fields)})")
        if fields[axis].datatype not in (PointField.FLOAT32, PointField.FLOAT64):
            raise InvalidMessage(f"PointCloud2: field '{axis}' has datatype {fields[axis].datatype}, need FLOAT32 or FLOAT64")
        if fields[axis].count > 1:  # 0 means 1 in the wild; several values per point is not a coordinate
            raise InvalidMessage(f"PointCloud2: field '{axis}' has count {fields[axis].count}, need 1")
    points = cloud_to_structured(msg, stride)
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=-1).astype(np.float32)
    finite = np.all(np.isfinite(xyz), axis=1)
    color_name = next((name for name in ("rgb", "rgba") if name in fields), None)
    colors = None
    if color_name is not None:
        packed = points[color_name]
        if packed.dtype.itemsize != 4 or packed.ndim != 1:
            raise InvalidMessage(f"PointCloud2: field '{color_name}' must be one packed 4-byte value per point")
        bits = packed.view(np.uint32)
        colors = np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1).astype(np.uint8)[finite]
    return xyz[finite], colors


def structured_to_cloud(points: np.ndarray, stamp: float | Time, frame_id: str) -> PointCloud2:
    """An unorganised (height 1) PointCloud2 from a 1-D structured array; its layout (offsets, itemsize) is kept."""
    points = np.asarray(points).reshape(-1)
    if points.dtype.names is None:
        raise ValueError("structured_to_cloud: expected a structured array")
    fields = []
    for name in points.dtype.names:
        field_dtype, offset = points.dtype.fields[name][:2]
        base, count = (field_dtype.base, int(np.prod(field_dtype.shape))) if field_dtype.shape else (field_dtype, 1)
        if base.name not in _NUMPY_TO_POINTFIELD:
            raise ValueError(f"structured_to_cloud: field '{name}' has dtype {base} with no PointField type")
        fields.append(PointField(name=name, offset=offset, datatype=_NUMPY_TO_POINTFIELD[base.name], count=count))
    big_endian = any(is_big_endian(points.dtype.fields[n][0].base) for n in points.dtype.names)
    msg = PointCloud2(header=make_header(stamp, frame_id), height=1, width=len(points), fields=fields)
    msg.is_bigendian = big_endian
    msg.point_step = points.dtype.itemsize
    msg.row_step = points.dtype.itemsize * len(points)
    msg.is_dense = True
    msg.data = array.array("B", np.ascontiguousarray(points).tobytes())
    return msg


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """uint8 (N, 3) RGB as float32 values whose bits are 0x00RRGGBB (the PCL/RViz ``rgb`` field)."""
    c = np.asarray(colors, dtype=np.uint32)
    return ((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).astype(np.uint32).view(np.float32)


def xyz_rgb_to_cloud(points: np.ndarray, colors: np.ndarray | None, stamp: float | Time, frame_id: str) -> PointCloud2:
    """A PointCloud2 with float32 x, y, z and (when ``colors`` is given) a packed float32 rgb, as RViz reads it."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    names = ["x", "y", "z"] + (["rgb"] if colors is not None else [])
    out = np.empty(len(points), dtype=np.dtype({"names": names, "formats": [np.float32] * len(names)}))
    out["x"], out["y"], out["z"] = points[:, 0], points[:, 1], points[:, 2]
    if colors is not None:
        colors = np.asarray(colors).reshape(-1, 3)
        if len(colors) != len(points):
            raise ValueError(f"xyz_rgb_to_cloud: {len(colors)} colours for {len(points)} points")
        out["rgb"] = pack_rgb(colors)
    return structured_to_cloud(out, stamp, frame_id)

