"""A grounding result in another frame: the ``target_frame`` a query names (``base_link``, ``odom``, ...).

The model answers in the map frame; a robot's arm or planner wants the box
where it works. Each candidate's pose (centre and orientation) is mapped by the
map -> target transform; sizes stay, as they are along the box's own axes, and
an axis-aligned map box becomes a box turned by the frame's rotation.
"""
from __future__ import annotations

import copy

import numpy as np
from geometry_msgs.msg import Pose

from w2r2_ros.geometry.transforms import make_transform, quaternion_from_transform, rotation_from_quaternion
from w2r2_ros.ros.interfaces import GroundingResult


def pose_in_frame(pose: Pose, transform: np.ndarray) -> Pose:
    """``pose`` (in frame A) as a pose in frame B, given the 4x4 transform that maps A into B."""
    q = np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w], dtype=np.float64)
    norm = np.linalg.norm(q)
    rotation = rotation_from_quaternion(q / norm) if norm > 0 else np.eye(3)
    mapped = transform @ make_transform(rotation, np.array([pose.position.x, pose.position.y, pose.position.z]))
    out = Pose()
    out.position.x, out.position.y, out.position.z = (float(v) for v in mapped[:3, 3])
    out.orientation.x, out.orientation.y, out.orientation.z, out.orientation.w = (float(v) for v in quaternion_from_transform(mapped))
    return out


def result_in_frame(result: GroundingResult, target_frame: str, transform: np.ndarray) -> GroundingResult:
    """A copy of ``result`` with its header and every candidate in ``target_frame`` (``transform``: map -> target)."""
    moved = copy.deepcopy(result)
    moved.header.frame_id = target_frame
    for candidate in [moved.best, *moved.alternatives]:
        candidate.pose = pose_in_frame(candidate.pose, transform)
    return moved
