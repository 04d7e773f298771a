"""Walls and ceilings as large planar segments, whatever their direction.

A wall is not where the map's bounding box ends (a map frame has any yaw, a map
may hold several rooms): it is a planar, vertical segment that is long and
tall; a ceiling is a planar, horizontal one high above the floor and wide.
Furniture faces are planar too but smaller: a counter front is ~0.9 m tall, a
table top ~0.75 m high, so height, length and area tell structure from furniture.

Planes are found by one-point RANSAC on voxels with normals (Schnabel et al.
2007, with each voxel's own normal as the hypothesis): a seed voxel and its
normal define a plane; its support is the voxels within ``margin`` of it whose
normals agree. The best-supported plane is refitted, its connected pieces
judged, its voxels taken out, and the search repeats. Local region growing was
tried first: on noise-free renders it turned round every room corner (normals
blend over a few voxels there, and each step looked coplanar), and on a real
Kinect map (surfaces 10 cm thick after fusion) no voxel passed its flatness
test. A plane hypothesis that must hold for the whole segment does not chain.

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
    # A voxel supports a plane when it lies within margin_m of it and its normal is within normal_deg.
    margin_m: float = 0.06
    normal_deg: float = 25.0
    # Planes are searched until the best one has fewer voxels than this, or max_planes were taken.
    min_plane_voxels: int = 150
    max_planes: int = 40
    hypotheses: int = 128
    score_sample: int = 3000
    # A wall: vertical within vertical_deg and at least wall_min_length_m long. A plane with (almost)
    # nothing behind it, away from the bulk of the map (at most boundary_fraction of its own voxels or of
    # what is in front, whichever is more, within boundary_depth_m) bounds
    # the map: a wall as soon as it is boundary_min_height_m tall and reaches boundary_min_top_m (a
    # kitchen wall shows between counter and upper cabinets only). A plane with things behind it (a
    # wall between two rooms, but also a cabinet's front) must be wall_min_height_m tall and reach
    # wall_min_top_m.
    vertical_deg: float = 12.0
    wall_min_length_m: float = 1.0
    wall_min_height_m: float = 1.5
    wall_min_top_m: float = 1.8
    boundary_min_height_m: float = 0.5
    boundary_min_top_m: float = 1.2
    boundary_fraction: float = 0.1
    boundary_depth_m: float = 1.5
    # A tall plane is no wall where a surface parallel to it behind (within boundary_depth_m) rises more
    # than overtopped_m above its top along at least overtopped_fraction of its length: the room's wall
    # seen above a shower curtain, a wardrobe's or a refrigerator's front (0: no such test).
    overtopped_m: float = 0.15
    overtopped_fraction: float = 0.5
    # A plane is plane_sigma_k robust standard deviations of its voxels' distances thick, never less
    # than min_margin_m (a noise-free render) nor more than margin_m (the search margin).
    plane_sigma_k: float = 3.0
    min_margin_m: float = 0.03
    # A ceiling: horizontal within vertical_deg, this high above the floor, at least this area.
    ceiling_min_height_m: float = 1.8
    ceiling_min_area_m2: float = 1.0
    # The slab removed with a wall reaches this far beyond its segment's extent (voxels at a corner
    # have blended normals and are not in either wall's support).
    extend_m: float = 0.2


@dataclass(frozen=True)
class StructurePlane:
    kind: str  # "wall" or "ceiling"
    normal: np.ndarray
    offset: float
    margin: float  # voxels this close belong to it
    n_voxels: int
    extent_m: tuple[float, float]  # length and height (wall) or the two sides (ceiling)
    # A wall's segment along it (u = position along (-normal y, normal x)) and in height above the floor.
    span: tuple[float, float, float, float] | None = None  # u_min, u_max, h_min, h_max


def wall_frame(plane: StructurePlane) -> tuple[np.ndarray, np.ndarray, float]:
    """A wall's horizontal unit normal, the direction along it, and the plane's offset along that normal."""
    horizontal = np.hypot(plane.normal[0], plane.normal[1])
    normal = np.array([plane.normal[0], plane.normal[1]]) / max(horizontal, 1e-12)
    return normal, np.array([-normal[1], normal[0]]), plane.offset / max(horizontal, 1e-12)


def _best_plane(centres: np.ndarray, normals: np.ndarray, pool: np.ndarray, config: StructureConfig, rng: np.random.Generator) -> np.ndarray:
    """Support mask of the best one-point hypothesis among ``pool`` (indices), refitted once."""
    seeds = rng.choice(pool, size=min(config.hypotheses, len(pool)), replace=False)
    cos_n = np.cos(np.radians(config.normal_deg))
    p, n = centres[pool], normals[pool]
    # Hypotheses are scored on a sample (a plane of 150 voxels in 300k still gets ~2 votes per 4000).
    sample = pool if len(pool) <= config.score_sample else rng.choice(pool, size=config.score_sample, replace=False)
    ps, ns = centres[sample], normals[sample]
    best, best_count = None, -1
    for chunk in np.array_split(seeds, max(1, len(seeds) // 32)):
        seed_n = normals[chunk]  # (K, 3)
        distance = np.abs(ps @ seed_n.T - np.sum(centres[chunk] * seed_n, axis=1))  # (M, K)
        agree = np.abs(ns @ seed_n.T) >= cos_n
        counts = np.sum((distance <= config.margin_m) & agree, axis=0)
        k = int(np.argmax(counts))
        if counts[k] > best_count:
            best, best_count = chunk[k], int(counts[k])
    normal = normals[best]
    support = (np.abs((p - centres[best]) @ normal) <= config.margin_m) & (np.abs(n @ normal) >= cos_n)
    if support.sum() >= 3:
        normal, offset = fit_plane(p[support])
        support = (np.abs(p @ normal - offset) <= config.margin_m) & (np.abs(n @ normal) >= cos_n)
    return pool[support]


def find_structure(
    heights: np.ndarray, centres: np.ndarray, normals: np.ndarray, graph: VoxelGraph, usable: np.ndarray, config: StructureConfig
) -> tuple[list[StructurePlane], np.ndarray]:
    """Walls and ceilings among levelled ``centres`` (z up; ``heights`` above the floor). Returns the
    planes and a mask of the voxels they take."""
    rng = np.random.default_rng(0)  # the same map gives the same planes
    sin_v, cos_v = np.sin(np.radians(config.vertical_deg + config.normal_deg)), np.cos(np.radians(config.vertical_deg))
    # Only voxels that could be on a wall (normal near horizontal) or a ceiling (near vertical) seed planes.
    candidate = usable & ((np.abs(normals[:, 2]) <= sin_v) | (np.abs(normals[:, 2]) >= cos_v))
    taken = np.zeros(len(centres), dtype=bool)
    planes: list[StructurePlane] = []
    for _ in range(config.max_planes):
        pool = np.flatnonzero(candidate)
        if len(pool) < config.min_plane_voxels:
            break
        support = _best_plane(centres, normals, pool, config, rng)
        if len(support) < config.min_plane_voxels:
            break
        candidate[support] = False
        on_plane = np.zeros(len(centres), dtype=bool)
        on_plane[support] = True
        pieces = graph.components(on_plane[graph.rows] & on_plane[graph.cols])[support]
        for piece_label in np.unique(pieces):
            member = support[pieces == piece_label]
            if len(member) < config.min_plane_voxels:
                continue
            plane = _judge(member, heights, centres, normals, usable, config)
            if plane is None:
                continue
            planes.append(plane)
            taken |= _slab(plane, member, heights, centres, config)
    return planes, taken


def _judge(
    member: np.ndarray, heights: np.ndarray, centres: np.ndarray, normals: np.ndarray, usable: np.ndarray, config: StructureConfig
) -> StructurePlane | None:
    points, h = centres[member], heights[member]
    normal, offset = fit_plane(points)
    distance = points @ normal - offset
    margin = float(np.clip(config.plane_sigma_k * 1.4826 * np.median(np.abs(distance)), config.min_margin_m, config.margin_m))
    if abs(normal[2]) <= np.sin(np.radians(config.vertical_deg)):
        along = np.array([-normal[1], normal[0], 0.0]) / max(np.hypot(normal[0], normal[1]), 1e-12)
        u = points @ along
        length, height = float(u.max() - u.min()), float(h.max() - h.min())
        if length < config.wall_min_length_m:
            return None
        tall = height >= config.wall_min_height_m and h.max() >= config.wall_min_top_m and not _overtopped(
            normal, offset, margin, along, u, float(h.max()), centres, heights, normals, usable, config
        )
        bounds = height >= config.boundary_min_height_m and h.max() >= config.boundary_min_top_m and _bounds_map(
            normal, offset, margin, along, u, centres[usable], config
        )
        if tall or bounds:
            span = (float(u.min()), float(u.max()), float(h.min()), float(h.max()))
            return StructurePlane("wall", normal, offset, margin, len(member), (length, height), span)
    elif abs(normal[2]) >= np.cos(np.radians(config.vertical_deg)):
        lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
        sides = hi - lo
        if np.median(h) >= config.ceiling_min_height_m and sides[0] * sides[1] >= config.ceiling_min_area_m2:
            return StructurePlane("ceiling", normal, offset, margin, len(member), (float(sides[0]), float(sides[1])))
    return None


def _bounds_map(
    normal: np.ndarray, offset: float, margin: float, along: np.ndarray, u: np.ndarray, points: np.ndarray, config: StructureConfig
) -> bool:
    """Whether (almost) nothing of the map lies behind the plane, over its extent: a wall seen from
    the room, not the front of a cabinet with the wall behind it.

    "Behind" is the side away from most of the map (:func:`_ahead`). Nothing in front is no evidence
    of a wall: the front of a cabinet in an empty stretch of room has nothing in front of it either,
    and only the wall above it behind, which
    the old symmetric test (the emptier side) took for the room's outside. The few readings behind a
    real wall (range noise past its slab) are counted against the plane's own voxels and what is ahead.
    """
    across = points @ along
    within = (across >= u.min()) & (across <= u.max())
    distance = _ahead(normal, offset, points)[within]
    ahead = np.sum((distance > 2 * margin) & (distance <= config.boundary_depth_m))
    behind = np.sum((distance < -2 * margin) & (distance >= -config.boundary_depth_m))
    return behind <= config.boundary_fraction * max(ahead, len(u))


def _ahead(normal: np.ndarray, offset: float, points: np.ndarray) -> np.ndarray:
    """Signed distance of ``points`` from the plane, positive on the side of most of them (the room the
    plane is seen from; a plane's normal has no sign of its own), negative behind it."""
    distance = points @ normal - offset
    return distance if np.median(distance) >= 0 else -distance


def _overtopped(
    normal: np.ndarray, offset: float, margin: float, along: np.ndarray, u: np.ndarray, top: float,
    centres: np.ndarray, heights: np.ndarray, normals: np.ndarray, usable: np.ndarray, config: StructureConfig,
) -> bool:
    """Whether a surface parallel to the plane, behind it, rises above its top along most of its length.

    A wall reaches the top of what was seen of the room where it stands; the front of something
    standing before a wall (a shower curtain over a tub, a wardrobe, a refrigerator) has that wall
    behind it and above it. A wall between two rooms has the other room behind it, whose walls meet it
    at right angles (not parallel) and whose furniture is lower than it. "Behind" is the side away from
    the bulk of the map (:func:`_ahead`).
    """
    if config.overtopped_m <= 0:
        return False
    points = centres[usable]
    distance = _ahead(normal, offset, points)
    across = points @ along
    parallel = np.abs(normals[usable] @ normal) >= np.cos(np.radians(config.normal_deg))
    above = (
        parallel
        & (distance < -2 * margin)
        & (distance >= -config.boundary_depth_m)
        & (across >= u.min())
        & (across <= u.max())
        & (heights[usable] > top + config.overtopped_m)
    )
    bins = max(1, int(np.ceil((u.max() - u.min()) / 0.1)))
    covered = np.unique(np.minimum(((across[above] - u.min()) / 0.1).astype(int), bins - 1))
    return len(covered) >= config.overtopped_fraction * bins


def _slab(plane: StructurePlane, member: np.ndarray, heights: np.ndarray, centres: np.ndarray, config: StructureConfig) -> np.ndarray:
    """The voxels a structure plane takes: within its margin over its extent (a ceiling: and above it)."""
    near = np.abs(centres @ plane.normal - plane.offset) <= plane.margin
    if plane.kind == "ceiling":
        return near | (heights >= float(np.median(heights[member])))
    along = np.array([-plane.normal[1], plane.normal[0], 0.0]) / max(np.hypot(plane.normal[0], plane.normal[1]), 1e-12)
    u = centres[member] @ along
    h = heights[member]
    u_all = centres @ along
    return (
        near
        & (u_all >= u.min() - config.extend_m)
        & (u_all <= u.max() + config.extend_m)
        & (heights >= h.min() - config.extend_m)
        & (heights <= h.max() + config.extend_m)
    )
