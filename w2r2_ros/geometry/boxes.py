"""Axis-aligned 3D boxes in the map frame and the ScanRefer IoU.

A box is ``center (3,)`` and ``size (3,)``; many boxes are an (N, 6) array
``[cx, cy, cz, sx, sy, sz]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box3D:
    center: np.ndarray
    size: np.ndarray

    @property
    def min_corner(self) -> np.ndarray:
        return self.center - self.size / 2.0

    @property
    def max_corner(self) -> np.ndarray:
        return self.center + self.size / 2.0

    @property
    def volume(self) -> float:
        return float(np.prod(self.size))

    def as_array(self) -> np.ndarray:
        return np.concatenate([self.center, self.size]).astype(np.float64)

    @staticmethod
    def from_array(values: np.ndarray) -> "Box3D":
        values = np.asarray(values, dtype=np.float64)
        return Box3D(center=values[:3].copy(), size=values[3:6].copy())

    @staticmethod
    def from_points(points: np.ndarray) -> "Box3D":
        lo, hi = points.min(axis=0), points.max(axis=0)
        return Box3D(center=(lo + hi) / 2.0, size=hi - lo)


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 6) with every box of ``b`` (M, 6): (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 6)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 6)
    a_lo, a_hi = a[:, None, :3] - a[:, None, 3:] / 2, a[:, None, :3] + a[:, None, 3:] / 2
    b_lo, b_hi = b[None, :, :3] - b[None, :, 3:] / 2, b[None, :, :3] + b[None, :, 3:] / 2
    overlap = np.clip(np.minimum(a_hi, b_hi) - np.maximum(a_lo, b_lo), 0.0, None).prod(axis=-1)
    union = a[:, None, 3:].prod(axis=-1) + b[None, :, 3:].prod(axis=-1) - overlap
    return np.where(union > 0, overlap / np.maximum(union, 1e-12), 0.0)


def box_iou(a: Box3D, b: Box3D) -> float:
    """3D IoU of two axis-aligned boxes (the ScanRefer Acc@k criterion)."""
    return float(box_iou_matrix(a.as_array(), b.as_array())[0, 0])


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Boolean (N_points, N_boxes): which points lie inside which boxes (boundaries included)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    lo = boxes[:, :3] - boxes[:, 3:] / 2
    hi = boxes[:, :3] + boxes[:, 3:] / 2
    p = points[:, None, :]
    return np.all((p >= lo[None]) & (p <= hi[None]), axis=-1)


# The 12 edges of a box as index pairs into ``box_corners`` (corner bit i set = max along axis i).
BOX_EDGES: tuple[tuple[int, int], ...] = tuple(
    (a, a | bit) for bit in (1, 2, 4) for a in range(8) if not a & bit
)


def box_corners(box: Box3D) -> np.ndarray:
    """The 8 corners of ``box``, shape (8, 3); corner ``i`` takes the max along axis ``k`` when bit ``k`` of ``i`` is set."""
    bits = (np.arange(8)[:, None] >> np.arange(3)[None, :]) & 1
    return np.where(bits == 1, box.max_corner[None, :], box.min_corner[None, :])
