"""Rigid transforms as 4x4 matrices, and quaternion conversions (x, y, z, w order, as in ROS)."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def make_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = translation
    return transform


def transform_from_quaternion(translation: np.ndarray, quaternion_xyzw: np.ndarray) -> np.ndarray:
    """4x4 transform from a translation and a (x, y, z, w) quaternion; the quaternion is normalised."""
    q = np.asarray(quaternion_xyzw, dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"invalid quaternion {q.tolist()}")
    return make_transform(Rotation.from_quat(q / norm).as_matrix(), np.asarray(translation, dtype=np.float64))


def rotation_from_quaternion(q_xyzw: np.ndarray) -> np.ndarray:
    """3x3 rotation of a *unit* (x, y, z, w) quaternion (no normalisation, no scipy: the tf lookup's hot path)."""
    x, y, z, w = (float(v) for v in q_xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def quaternion_from_transform(transform: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternion of the rotation part of a 4x4 transform."""
    return Rotation.from_matrix(transform[:3, :3]).as_quat()


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """Camera-to-world transform of an optical frame (z forward, x right, y down) at ``eye`` looking at ``target``."""
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return make_transform(np.stack([right, down, forward], axis=1), eye)


def motion_between(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Translation (m) and rotation angle (deg) between two poses."""
    delta = np.linalg.inv(a) @ b
    translation = float(np.linalg.norm(delta[:3, 3]))
    cos_angle = np.clip((np.trace(delta[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)
    return translation, float(np.degrees(np.arccos(cos_angle)))
