"""The viewer frame: where "left", "right", "in front" and "behind" are measured from.

Choice (issue 15): direction words are relative to the camera's view at the time of the
query, the newest camera pose the robot has (on the robot: what its camera looks at when
the person asks; in the synthetic data: the last frame of the recording). It is observable
at run time, needs no words in the description, and does not depend on the map's yaw, so
a map turned about z changes nothing. ScanRefer's annotators used their own view of the
scene, which no robot can observe; a stated vantage point ("facing the bed") is rarer in
what people say to a robot and is left to the text.

A viewer is ``(x, y, yaw)`` in the map frame (REP 103: z up): the camera's position on the
floor plane and the heading of its optical axis (+z of the optical frame) projected on the
floor. The viewer frame has its origin there, +x forward (the way the camera looks), +y to
the viewer's left, z unchanged (height keeps its meaning).
"""
from __future__ import annotations

import numpy as np

VIEWER_SIZE = 3  # (x, y, yaw)


def viewer_from_camera_pose(camera_to_map: np.ndarray) -> np.ndarray:
    """(3,) ``[x, y, yaw]`` of an optical-frame camera pose (4x4, camera -> map).

    A camera looking straight down has no heading on the floor; its image's up direction
    (-y of the optical frame) is used instead, which is where the top of its picture points.
    """
    pose = np.asarray(camera_to_map, dtype=np.float64)
    if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
        raise ValueError(f"viewer_from_camera_pose: expected a finite 4x4 pose, got shape {pose.shape}")
    forward = pose[:3, 2]
    if np.hypot(forward[0], forward[1]) < 1e-3:
        forward = -pose[:3, 1]
    return np.array([pose[0, 3], pose[1, 3], np.arctan2(forward[1], forward[0])], dtype=np.float64)


def to_viewer_frame(points: np.ndarray, viewer: np.ndarray) -> np.ndarray:
    """Map-frame points (..., 3) or (..., 2) -> the viewer frame (x forward, y left); z is kept."""
    points = np.asarray(points, dtype=np.float64)
    x, y, yaw = (float(v) for v in np.asarray(viewer, dtype=np.float64).reshape(VIEWER_SIZE))
    c, s = np.cos(yaw), np.sin(yaw)
    dx, dy = points[..., 0] - x, points[..., 1] - y
    out = points.copy()
    out[..., 0] = c * dx + s * dy
    out[..., 1] = -s * dx + c * dy
    return out
