"""The tf tree a mobile robot would publish for a simulated camera trajectory.

A robot does not publish its camera pose: it publishes ``/tf_static`` (the
camera mount ``base_link -> camera_link`` and the optical frame
``camera_link -> camera_color_optical_frame``) and ``/tf`` (odometry
``odom -> base_link``, and localisation's correction ``map -> odom``, which
drifts). This splits each simulated camera-to-map pose into that chain, so
tests and bags exercise the same lookups as a robot; composing the chain gives
the pose back exactly (up to float rounding).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from w2r2_ros.geometry.transforms import make_transform

# REP 103: the optical frame (z forward, x right, y down) inside a body frame (x forward, y left, z up).
OPTICAL_IN_LINK = make_transform(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), np.zeros(3))


@dataclass(frozen=True)
class RobotFrames:
    """Frame names (a RealSense driver's optical frame by default) and the simulated mount and drift."""

    map: str = "map"
    odom: str = "odom"
    base: str = "base_link"
    camera_link: str = "camera_link"
    optical: str = "camera_color_optical_frame"
    mount_xyz: tuple[float, float, float] = (0.15, 0.0, 1.2)
    drift_m_per_s: tuple[float, float] = (0.02, -0.015)  # map -> odom translation drift
    drift_deg_per_s: float = 0.5  # map -> odom yaw drift


Transform = tuple[str, str, np.ndarray]  # parent, child, 4x4 (child in parent)


def static_transforms(frames: RobotFrames = RobotFrames()) -> list[Transform]:
    """``/tf_static``: the camera mount and the optical frame."""
    return [
        (frames.base, frames.camera_link, make_transform(np.eye(3), np.asarray(frames.mount_xyz))),
        (frames.camera_link, frames.optical, OPTICAL_IN_LINK),
    ]


def map_to_odom(elapsed_s: float, frames: RobotFrames = RobotFrames()) -> np.ndarray:
    """The localisation correction ``elapsed_s`` into the recording: a slow drift in x, y and yaw."""
    yaw = Rotation.from_euler("z", frames.drift_deg_per_s * elapsed_s, degrees=True).as_matrix()
    dx, dy = frames.drift_m_per_s
    return make_transform(yaw, np.array([dx * elapsed_s, dy * elapsed_s, 0.0]))


def dynamic_transforms(cam_to_map: np.ndarray, elapsed_s: float, frames: RobotFrames = RobotFrames()) -> list[Transform]:
    """``/tf`` at one instant: ``map -> odom`` (drifting) and ``odom -> base_link`` such that the chain
    ``map -> odom -> base_link -> camera_link -> optical`` is ``cam_to_map``."""
    mount, optical = (transform for _, _, transform in static_transforms(frames))
    map_odom = map_to_odom(elapsed_s, frames)
    odom_base = np.linalg.inv(map_odom) @ cam_to_map @ np.linalg.inv(mount @ optical)
    return [(frames.map, frames.odom, map_odom), (frames.odom, frames.base, odom_base)]
