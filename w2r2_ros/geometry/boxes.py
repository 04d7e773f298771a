"""3D boxes in the map frame: gravity-aligned, turned in yaw about z, and the ScanRefer IoU.

A box is ``center (3,)``, ``size (3,)`` along its own axes, and ``yaw`` (radians,
the angle from map x to the box's x axis, about map z). A furniture piece in a
room that is not aligned with ``map`` gets a tight box only when the box may
turn (the map frame of a robot has an arbitrary yaw).

Two array forms:
- (N, 6) ``[cx, cy, cz, sx, sy, sz]``: **axis-aligned bounds** in ``map``
  (:meth:`Box3D.as_array`). The model's inputs, the training data and the
  ScanRefer evaluation read boxes in this form; for a turned box it is the
  axis-aligned box around it.
- (N, 7) ``[cx, cy, cz, sx, sy, sz, yaw]``: the oriented box
  (:meth:`Box3D.as_oriented_array`), for messages, markers and
  :func:`oriented_iou_matrix`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError


@dataclass(frozen=True)
class Box3D:
    center: np.ndarray
    size: np.ndarray
    yaw: float = 0.0

    @property
    def aligned_size(self) -> np.ndarray:
        """Size of the axis-aligned box around this one (``size`` itself when ``yaw`` is 0)."""
        c, s = abs(np.cos(self.yaw)), abs(np.sin(self.yaw))
        sx, sy, sz = np.asarray(self.size, dtype=np.float64)
        return np.array([c * sx + s * sy, s * sx + c * sy, sz])

    @property
    def min_corner(self) -> np.ndarray:
        """Lower corner of the axis-aligned bounds."""
        return self.center - self.aligned_size / 2.0

    @property
    def max_corner(self) -> np.ndarray:
        """Upper corner of the axis-aligned bounds."""
        return self.center + self.aligned_size / 2.0

    @property
    def volume(self) -> float:
        return float(np.prod(self.size))

    def as_array(self) -> np.ndarray:
        """Axis-aligned bounds ``[cx, cy, cz, sx, sy, sz]`` (what the model and the evaluation read)."""
        return np.concatenate([self.center, self.aligned_size]).astype(np.float64)

    def as_oriented_array(self) -> np.ndarray:
        """``[cx, cy, cz, sx, sy, sz, yaw]``."""
        return np.concatenate([self.center, self.size, [self.yaw]]).astype(np.float64)

    def aligned(self) -> "Box3D":
        """The axis-aligned box around this one."""
        return Box3D(center=np.asarray(self.center, dtype=np.float64).copy(), size=self.aligned_size)

    @staticmethod
    def from_array(values: np.ndarray) -> "Box3D":
        """From 6 values (axis-aligned) or 7 (with yaw)."""
        values = np.asarray(values, dtype=np.float64)
        yaw = float(values[6]) if len(values) > 6 else 0.0
        return Box3D(center=values[:3].copy(), size=values[3:6].copy(), yaw=yaw)

    @staticmethod
    def from_points(points: np.ndarray) -> "Box3D":
        lo, hi = points.min(axis=0), points.max(axis=0)
        return Box3D(center=(lo + hi) / 2.0, size=hi - lo)


def as_oriented(boxes: np.ndarray) -> np.ndarray:
    """(N, 6) or (N, 7) boxes as (N, 7), yaw 0 where none is given."""
    boxes = np.asarray(boxes, dtype=np.float64)
    boxes = boxes.reshape(-1, boxes.shape[-1] if boxes.ndim else 6)
    if boxes.shape[1] == 6:
        boxes = np.concatenate([boxes, np.zeros((len(boxes), 1))], axis=1)
    if boxes.shape[1] != 7:
        raise ValueError(f"boxes: expected (N, 6) or (N, 7), got {boxes.shape}")
    return boxes


def aligned_bounds(boxes: np.ndarray) -> np.ndarray:
    """(N, 6) or (N, 7) boxes -> (N, 6) the axis-aligned bounds around each (``Box3D.aligned_size``, vectorised)."""
    boxes = as_oriented(boxes)
    c, s = np.abs(np.cos(boxes[:, 6])), np.abs(np.sin(boxes[:, 6]))
    sx, sy = boxes[:, 3], boxes[:, 4]
    return np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2], c * sx + s * sy, s * sx + c * sy, boxes[:, 5]], axis=1)


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every axis-aligned box of ``a`` (N, 6) with every box of ``b`` (M, 6): (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 6)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 6)
    a_lo, a_hi = a[:, None, :3] - a[:, None, 3:] / 2, a[:, None, :3] + a[:, None, 3:] / 2
    b_lo, b_hi = b[None, :, :3] - b[None, :, 3:] / 2, b[None, :, :3] + b[None, :, 3:] / 2
    overlap = np.clip(np.minimum(a_hi, b_hi) - np.maximum(a_lo, b_lo), 0.0, None).prod(axis=-1)
    union = a[:, None, 3:].prod(axis=-1) + b[None, :, 3:].prod(axis=-1) - overlap
    return np.where(union > 0, overlap / np.maximum(union, 1e-12), 0.0)


def box_iou(a: Box3D, b: Box3D) -> float:
    """3D IoU of two boxes, turned in yaw or not (the ScanRefer Acc@k criterion for yaw 0)."""
    return float(oriented_iou_matrix(a.as_oriented_array(), b.as_oriented_array())[0, 0])


def footprint_corners(boxes: np.ndarray) -> np.ndarray:
    """Floor-plane corners (N, 4, 2) of oriented boxes (N, 7), counter-clockwise."""
    boxes = as_oriented(boxes)
    local = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])[None] * boxes[:, None, 3:5]
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (N, 2, 2)
    return boxes[:, None, :2] + np.einsum("nij,nkj->nki", rot, local)


def _clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of convex polygon ``subject`` inside convex ``clip`` (both CCW)."""
    out = subject
    for k in range(len(clip)):
        if len(out) == 0:
            break
        a, b = clip[k], clip[(k + 1) % len(clip)]
        edge = b - a
        side = edge[0] * (out[:, 1] - a[1]) - edge[1] * (out[:, 0] - a[0])  # >= 0: inside (left of edge)
        nxt = np.roll(out, -1, axis=0)
        side_next = np.roll(side, -1)
        kept = []
        for p, q, sp, sq in zip(out, nxt, side, side_next):
            if sp >= 0:
                kept.append(p)
            if (sp >= 0) != (sq >= 0):
                kept.append(p + (q - p) * (sp / (sp - sq)))
        out = np.array(kept).reshape(-1, 2)
    return out


def _polygon_area(polygon: np.ndarray) -> float:
    if len(polygon) < 3:
        return 0.0
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def oriented_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3D IoU of gravity-aligned boxes turned in yaw, (N, 7) x (M, 7) -> (N, M); (N, 6) means yaw 0.

    Footprint intersection (convex polygon clipping) times the overlap in z. Pairs whose axis-aligned
    bounds do not meet are skipped, so a scene's dozens of boxes cost a few hundred clippings at most.
    """
    a, b = as_oriented(a), as_oriented(b)
    iou = np.zeros((len(a), len(b)))
    if len(a) == 0 or len(b) == 0:
        return iou
    ca, cb = footprint_corners(a), footprint_corners(b)
    lo_a, hi_a, lo_b, hi_b = ca.min(1), ca.max(1), cb.min(1), cb.max(1)
    z_overlap = np.clip(
        np.minimum(a[:, None, 2] + a[:, None, 5] / 2, b[None, :, 2] + b[None, :, 5] / 2)
        - np.maximum(a[:, None, 2] - a[:, None, 5] / 2, b[None, :, 2] - b[None, :, 5] / 2),
        0.0,
        None,
    )
    meets = np.all((lo_a[:, None] <= hi_b[None]) & (lo_b[None] <= hi_a[:, None]), axis=-1) & (z_overlap > 0)
    vol_a, vol_b = a[:, 3:6].prod(1), b[:, 3:6].prod(1)
    for i, j in zip(*np.nonzero(meets)):
        if abs(a[i, 6] - b[j, 6]) < 1e-12:  # same yaw: an axis-aligned overlap in the boxes' frame
            rel = b[j, :2] - a[i, :2]
            c, s = np.cos(a[i, 6]), np.sin(a[i, 6])
            d = np.abs([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1]])
            area = float(np.prod(np.clip((a[i, 3:5] + b[j, 3:5]) / 2 - d, 0.0, np.minimum(a[i, 3:5], b[j, 3:5]))))
        else:
            area = _polygon_area(_clip_polygon(ca[i], cb[j]))
        inter = area * z_overlap[i, j]
        union = vol_a[i] + vol_b[j] - inter
        iou[i, j] = inter / union if union > 0 else 0.0
    return iou


def min_area_rectangle(
    xy: np.ndarray, preferred_yaws: np.ndarray | None = None, tolerance: float = 0.0, band: float = 0.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """The minimum-area rectangle around 2D points: ``(center (2,), size (2,), yaw)``.

    One side of the optimal rectangle lies on an edge of the convex hull (Freeman & Shapira 1975), so
    every hull edge direction is tried. A rectangle turned by one of ``preferred_yaws`` wins when its
    area is within ``tolerance`` (a fraction) of the minimum, or within a strip ``band`` wide (a length)
    along the minimum's perimeter: furniture stands square to its room's walls, a footprint seen only
    in part (an L of seat and back, a blob) has a diagonal minimum that fits the object worse, and a
    footprint known to a cell of a grid (``band``: the cell) has no measurable direction of its own
    when it is a few cells across. ``yaw`` is folded into [-pi/4, pi/4) so that a box turning a little
    between two updates keeps its axes (x stays x). Degenerate input (fewer than 3 distinct points,
    or collinear) gets the axis-aligned rectangle.
    """
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    try:
        hull = xy[ConvexHull(xy).vertices]
    except (QhullError, ValueError):
        return (lo + hi) / 2, hi - lo, 0.0
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    n_hull = len(angles)
    if preferred_yaws is not None and len(preferred_yaws):
        angles = np.r_[angles, np.mod(np.asarray(preferred_yaws, dtype=np.float64), np.pi / 2)]
    c, s = np.cos(angles), np.sin(angles)
    u = hull @ np.stack([c, s])  # (H, A): coordinate along each candidate x axis
    v = hull @ np.stack([-s, c])
    areas = (u.max(0) - u.min(0)) * (v.max(0) - v.min(0))
    k = int(np.argmin(areas))
    if len(angles) > n_hull:
        preferred = n_hull + int(np.argmin(areas[n_hull:]))
        perimeter = 2.0 * ((u[:, k].max() - u[:, k].min()) + (v[:, k].max() - v[:, k].min()))
        if areas[preferred] <= (1.0 + tolerance) * areas[k] + band * perimeter:
            k = preferred
    yaw = float(angles[k])
    u_mid, v_mid = (u[:, k].max() + u[:, k].min()) / 2, (v[:, k].max() + v[:, k].min()) / 2
    size = np.array([u[:, k].max() - u[:, k].min(), v[:, k].max() - v[:, k].min()])
    if yaw >= np.pi / 4:  # fold into [-pi/4, pi/4): turn the frame by -90 degrees, which swaps the sides
        yaw -= np.pi / 2
        size = size[::-1]
    center = np.array([c[k] * u_mid - s[k] * v_mid, s[k] * u_mid + c[k] * v_mid])
    return center, size, yaw


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Boolean (N_points, N_boxes): which points lie inside which boxes (boundaries included); (M, 6)
    boxes are axis-aligned, (M, 7) turned by their yaw."""
    boxes = as_oriented(boxes)
    rel = np.asarray(points, dtype=np.float64)[:, None, :] - boxes[None, :, :3]
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    local = np.stack([c * rel[..., 0] + s * rel[..., 1], -s * rel[..., 0] + c * rel[..., 1], rel[..., 2]], axis=-1)
    return np.all(np.abs(local) <= boxes[None, :, 3:6] / 2 + 1e-9, axis=-1)


# The 12 edges of a box as index pairs into ``box_corners`` (corner bit i set = max along axis i).
BOX_EDGES: tuple[tuple[int, int], ...] = tuple(
    (a, a | bit) for bit in (1, 2, 4) for a in range(8) if not a & bit
)


def box_corners(box: Box3D) -> np.ndarray:
    """The 8 corners of ``box``, shape (8, 3); corner ``i`` takes the max along the box's own axis ``k``
    when bit ``k`` of ``i`` is set (the box's axes are map x, y, z turned by ``yaw``)."""
    bits = (np.arange(8)[:, None] >> np.arange(3)[None, :]) & 1
    local = (bits - 0.5) * np.asarray(box.size, dtype=np.float64)[None, :]
    c, s = np.cos(box.yaw), np.sin(box.yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return np.asarray(box.center, dtype=np.float64)[None, :] + local @ rot.T
