"""Small scenes for the model tests: a camera in front of a flat wall with coloured rectangles on it.

Every pixel's world point is known in closed form, so the model inputs can be
checked against geometry, and the scenes are cheap enough for training steps.
"""
from __future__ import annotations

import numpy as np

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import look_at
from w2r2_ros.scene.keyframes import Keyframe
from w2r2_ros.scene.proposals import Proposal

WALL_X = 3.0  # the wall is the plane x = WALL_X, seen by cameras on the x = 0 plane looking along +x


def wall_keyframes(
    n_frames: int,
    rectangles: list[tuple[tuple[int, int, int], float, float, float, float]] = (),
    width: int = 160,
    height: int = 120,
    stamp0: float = 0.0,
) -> list[Keyframe]:
    """Keyframes of the wall from cameras at y = 0.1 * i, z = 1; ``rectangles`` are (rgb, y0, y1, z0, z1) on the wall."""
    intrinsics = Intrinsics.from_fov(width, height, 90.0)
    frames = []
    for i in range(n_frames):
        eye = np.array([0.0, 0.1 * i, 1.0])
        pose = look_at(eye, eye + np.array([1.0, 0.0, 0.0]))
        u, v = np.meshgrid(np.arange(width), np.arange(height))
        # Optical x is map -y, optical y is map -z: pixel (u, v) at depth WALL_X sees this wall point.
        wall_y = eye[1] - (u - intrinsics.cx) / intrinsics.fx * WALL_X
        wall_z = eye[2] - (v - intrinsics.cy) / intrinsics.fy * WALL_X
        rgb = np.full((height, width, 3), 90, np.uint8)
        for colour, y0, y1, z0, z1 in rectangles:
            rgb[(wall_y >= y0) & (wall_y <= y1) & (wall_z >= z0) & (wall_z <= z1)] = colour
        depth = np.full((height, width), WALL_X, np.float32)
        frames.append(Keyframe.create(stamp0 + i, rgb, depth, intrinsics, pose))
    return frames


def rectangle_box(y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """The (6,) box of a rectangle on the wall, 0.2 m deep."""
    return np.array([WALL_X, (y0 + y1) / 2, (z0 + z1) / 2, 0.2, y1 - y0, z1 - z0])


def proposals_from_boxes(boxes: np.ndarray, first_id: int = 10) -> list[Proposal]:
    return [
        Proposal(proposal_id=first_id + i, box=Box3D.from_array(box), n_points=100, mean_rgb=np.zeros(3))
        for i, box in enumerate(np.asarray(boxes).reshape(-1, 6))
    ]
