"""sensor_msgs/CameraInfo -> Intrinsics and geometry_msgs/Pose -> 4x4, for rclpy and ``rosbags`` messages alike.

Like ``image_codec``, these read only the fields both message kinds share and
raise :class:`InvalidMessage` with one line naming the problem.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import transform_from_quaternion
from w2r2_ros.sensors.errors import InvalidMessage

# A pinhole camera's field of view lies strictly between these (degrees). Focal lengths outside make
# back-projected points absurd (fx = 1e-30 puts every pixel at 1e30 m) and the model's scores NaN.
MIN_FOV_DEG = 1.0
MAX_FOV_DEG = 179.0


def camera_info_to_intrinsics(msg: Any) -> Intrinsics:
    """Pinhole intrinsics from CameraInfo.k (distortion is ignored: images are assumed rectified)."""
    k = np.asarray(msg.k, dtype=np.float64)
    if k.shape != (9,):
        raise InvalidMessage(f"CameraInfo: k has {k.size} values, expected 9")
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if not np.all(np.isfinite([fx, fy, cx, cy])) or fx <= 0 or fy <= 0:
        raise InvalidMessage(f"CameraInfo: k has invalid focal lengths fx={fx} fy={fy} (or non-finite centre)")
    if msg.width == 0 or msg.height == 0:
        raise InvalidMessage(f"CameraInfo: empty image size {msg.width}x{msg.height}")
    for name, focal, size in (("fx", fx, msg.width), ("fy", fy, msg.height)):
        fov = np.degrees(2.0 * np.arctan2(size / 2.0, focal))
        if not MIN_FOV_DEG <= fov <= MAX_FOV_DEG:
            raise InvalidMessage(
                f"CameraInfo: {name}={focal:g} for {size} pixels is a {fov:.3g} degree field of view, "
                f"outside [{MIN_FOV_DEG:g}, {MAX_FOV_DEG:g}]"
            )
    for name, centre, size in (("cx", cx, msg.width), ("cy", cy, msg.height)):
        if not -size <= centre <= 2 * size:
            raise InvalidMessage(f"CameraInfo: principal point {name}={centre:g} is far outside the {size}-pixel image")
    return Intrinsics(fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy), width=int(msg.width), height=int(msg.height))


def pose_to_matrix(pose: Any) -> np.ndarray:
    """geometry_msgs/Pose as a 4x4 float64 transform (child-to-parent, i.e. camera-to-map for a camera pose)."""
    t = [pose.position.x, pose.position.y, pose.position.z]
    q = [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
    if not np.all(np.isfinite(t)):
        raise InvalidMessage(f"Pose: non-finite position {t}")
    try:
        return transform_from_quaternion(np.asarray(t), np.asarray(q))
    except ValueError as error:
        raise InvalidMessage(f"Pose: orientation: {error}") from error
