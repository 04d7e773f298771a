"""Furniture standing against a wall reaches back to it where no camera saw behind it.

A tall cabinet, a wardrobe or a refrigerator against a wall is seen from the room: its front,
seldom its top (above the camera), and its sides only at grazing angles, which a
structured-light sensor drops, or not at all when something stands beside it (ScanNet-class
development scene 3908, ideal depth: a cabinet 1.38 x 0.58 x 1.91 m boxed as its front, IoU
0.26). Its depth is then not in the map, but the wall tells it: the stretch of wall behind the
object was never seen, because the object hides it from every viewpoint. An object that stands
free before a wall leaves the wall behind it in view from the side, between its legs or above it;
one whose sides were read knows its depth, and may stand off the wall with the wall behind it
hidden all the same (a cabinet 0.26 m before its wall), so only a box seen no deeper than its
front is extended.

So a box standing on the floor, square to a wall (within ``aligned_deg``), no deeper than
``max_seen_depth_m`` across it, whose back lies ``min_gap_m`` to ``max_gap_m`` before the wall,
over whose extent (in the wall's length and height) at most ``max_seen_fraction`` of the wall's
``cell_m`` cells hold a voxel of the wall, is extended back to the wall's plane.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2r2_ros.scene.structure import StructurePlane, wall_frame


@dataclass(frozen=True)
class HiddenBackConfig:
    enabled: bool = True
    # The back must lie between min_gap_m and max_gap_m before the wall: closer, the wall's slab took
    # a few centimetres of it and furniture may stand that far off the wall (ideal depth: extending
    # those lost 0.03-0.1 IoU each on development scenes).
    min_gap_m: float = 0.15
    max_gap_m: float = 0.8
    # Only a box seen as little more than its front is extended (at most this deep across the wall): one
    # whose sides were read knows its depth, and may stand off the wall with the wall behind it hidden.
    max_seen_depth_m: float = 0.2
    aligned_deg: float = 10.0
    cell_m: float = 0.1
    max_seen_fraction: float = 0.2
    # At least this many wall cells lie behind the object, else the test says nothing (a small object).
    min_cells: int = 6


@dataclass(frozen=True)
class WallView:
    """A wall in the levelled frame: unit horizontal ``normal``, ``offset`` (normal . xy on the plane),
    ``along`` (-normal y, normal x), its ``span`` (u_min, u_max, height_min, height_max) and the
    (u, height) cells of ``cell_m`` that hold one of its voxels."""

    normal: np.ndarray
    offset: float
    along: np.ndarray
    span: tuple[float, float, float, float]
    seen: frozenset[tuple[int, int]]


def wall_view(plane: StructurePlane, xy: np.ndarray, heights: np.ndarray, cell_m: float) -> WallView:
    """The view of a wall ``plane`` (with a span) from its voxels ``xy`` (levelled x, y) and ``heights``."""
    assert plane.span is not None
    normal, along, offset = wall_frame(plane)
    cells = np.floor(np.column_stack([xy @ along, heights]) / cell_m).astype(np.int64)
    return WallView(normal, offset, along, plane.span, frozenset(map(tuple, cells.tolist())))


def extend_to_hidden_walls(
    centre: np.ndarray, size: np.ndarray, yaw: float, lo: float, hi: float, walls: list[WallView], config: HiddenBackConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The footprint (``centre``, ``size`` along the box's own axes, turned by ``yaw``) of a box standing on
    the floor from ``lo`` to ``hi``, extended back to the first wall of ``walls`` it stands against with the
    wall behind it unseen; unchanged where there is none."""
    if not config.enabled:
        return centre, size
    axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
    for wall in walls:
        k = int(np.argmax(np.abs(axes @ wall.normal)))
        if abs(float(axes[k] @ wall.normal)) < np.cos(np.radians(config.aligned_deg)):
            continue
        signed = float(centre @ wall.normal) - wall.offset
        side = 1.0 if signed >= 0 else -1.0
        gap = abs(signed) - size[k] / 2
        if not config.min_gap_m <= gap <= config.max_gap_m or size[k] > config.max_seen_depth_m:
            continue
        corners = centre + np.array([[sx * size[0] / 2, sy * size[1] / 2] for sx in (-1, 1) for sy in (-1, 1)]) @ axes
        u = corners @ wall.along
        u0, u1, h0, h1 = wall.span
        if u.min() < u0 - config.cell_m or u.max() > u1 + config.cell_m:
            continue
        cu = np.arange(np.floor(u.min() / config.cell_m) + 1, np.floor(u.max() / config.cell_m))
        ch = np.arange(np.floor(max(lo, h0) / config.cell_m) + 1, np.floor(min(hi, h1) / config.cell_m))
        if len(cu) * len(ch) < config.min_cells:
            continue
        seen = sum((int(a), int(b)) in wall.seen for a in cu for b in ch)
        if seen > config.max_seen_fraction * len(cu) * len(ch):
            continue
        grown = size.copy()
        grown[k] += gap
        return centre - side * wall.normal * gap / 2, grown
    return centre, size
