"""Walls and ceilings as large planar segments of the voxel graph, whatever their direction.

A wall is not where the map's bounding box ends (a map frame has any yaw, a map
may hold several rooms): it is a planar, vertical segment that is long and
tall; a ceiling is a planar, horizontal one high above the floor and wide.
Planar segments are grown on the voxel graph: two neighbouring voxels join
when their normals agree and each lies on the other's tangent plane. Furniture
faces are planar too but smaller: a counter front is ~0.9 m tall, a table top
~0.75 m high, so height, length and area tell structure from furniture.

Removing a wall removes the slab of voxels within the plane's margin over the
segment's extent, so what stands against it (a counter, a cabinet, a TV on it)
comes loose from it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2r2_ros.scene.floor_plane import fit_plane
from w2r2_ros.scene.voxel_graph import VoxelGraph


@dataclass(frozen=True)
class StructureConfig:
    # Neighbouring voxels are on one plane when their normals differ by less than this and each
    # centre lies within plane_offset_voxels of the other's tangent plane.
    plane_normal_deg: float = 20.0
    plane_offset_voxels: float = 0.6
    # Voxels whose surface variation exceeds this (edges, corners) never join a plane: without the
    # cut, region growing turns round a room's corners (every wall and the ceiling became one segment).
    max_curvature: float = 0.05
    # A wall: vertical within vertical_deg, at least this long and tall (metres), reaching this high.
    vertical_deg: float = 12.0
    wall_min_length_m: float = 1.0
    wall_min_height_m: float = 1.2
    wall_min_top_m: float = 1.6
    # A ceiling: horizontal within vertical_deg, this high above the floor, at least this area.
    ceiling_min_height_m: float = 1.8
    ceiling_min_area_m2: float = 1.0
    # Voxels within this of a structure plane (over its extent, plus extend_m) belong to it.
    margin_m: float = 0.05
    extend_m: float = 0.1


@dataclass(frozen=True)
class StructurePlane:
    kind: str  # "wall" or "ceiling"
    normal: np.ndarray
    offset: float
    n_voxels: int
    extent_m: tuple[float, float]  # length and height (wall) or the two sides (ceiling)


def planar_segments(
    centres: np.ndarray, normals: np.ndarray, curvature: np.ndarray, graph: VoxelGraph, usable: np.ndarray, voxel: float, config: StructureConfig
) -> np.ndarray:
    """A planar-segment label per voxel (region growing on the voxel graph); unusable voxels and
    voxels on edges and corners are alone."""
    usable = usable & (curvature <= config.max_curvature)
    r, c = graph.rows, graph.cols
    delta = centres[c] - centres[r]
    same_direction = np.abs(np.sum(normals[r] * normals[c], axis=1)) >= np.cos(np.radians(config.plane_normal_deg))
    limit = config.plane_offset_voxels * voxel
    coplanar = (np.abs(np.sum(delta * normals[r], axis=1)) <= limit) & (np.abs(np.sum(delta * normals[c], axis=1)) <= limit)
    keep = same_direction & coplanar & usable[r] & usable[c]
    return graph.components(keep)


def find_structure(
    heights: np.ndarray, centres: np.ndarray, labels: np.ndarray, voxel: float, config: StructureConfig
) -> tuple[list[StructurePlane], np.ndarray]:
    """Walls and ceilings among the planar segments ``labels`` of levelled ``centres`` (z up, floor at
    ``heights`` 0). Returns the planes and a mask of the voxels they take."""
    taken = np.zeros(len(centres), dtype=bool)
    planes: list[StructurePlane] = []
    counts = np.bincount(labels)
    # Segments too small to be a 1 m x 1.2 m wall or a 1 m2 ceiling are never examined.
    min_voxels = int(min(config.wall_min_length_m * config.wall_min_height_m, config.ceiling_min_area_m2) / voxel**2 * 0.5)
    order = np.argsort(labels, kind="stable")
    bounds = np.r_[0, np.cumsum(counts)]
    sin_vertical = np.sin(np.radians(config.vertical_deg))
    for label in np.flatnonzero(counts >= min_voxels):
        member = order[bounds[label] : bounds[label + 1]]
        points = centres[member]
        normal, offset = fit_plane(points)
        h = heights[member]
        if abs(normal[2]) <= sin_vertical:
            along = np.array([-normal[1], normal[0], 0.0]) / max(np.hypot(normal[0], normal[1]), 1e-12)
            u = points @ along
            length, height = float(u.max() - u.min()), float(h.max() - h.min())
            if length < config.wall_min_length_m or height < config.wall_min_height_m or h.max() < config.wall_min_top_m:
                continue
            slab = (np.abs(centres @ normal - offset) <= config.margin_m) & (
                np.abs(centres @ along - (u.max() + u.min()) / 2) <= length / 2 + config.extend_m
            ) & (heights >= h.min() - config.extend_m) & (heights <= h.max() + config.extend_m)
            planes.append(StructurePlane("wall", normal, offset, len(member), (length, height)))
        elif abs(normal[2]) >= np.cos(np.radians(config.vertical_deg)):
            if np.median(h) < config.ceiling_min_height_m or len(member) * voxel**2 < config.ceiling_min_area_m2:
                continue
            lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
            slab = heights >= float(np.median(h)) - config.margin_m
            planes.append(StructurePlane("ceiling", normal, offset, len(member), tuple(float(v) for v in hi - lo)))
        else:
            continue
        taken |= slab
        taken[member] = True
    return planes, taken
