"""The floor as a plane: gravity from the map's horizontal surfaces, then the lowest large one.

REP 103 puts gravity along the map's -z, but a camera's pose estimate or a map
built from a tilted first frame often leaves it a few degrees off. So the up
direction is estimated from the normals of the map's horizontal surfaces
(floor, table tops, seats all face up), and the floor is the lowest height
along it that holds a large share of those surfaces. A plane fit on its
voxels gives the tilt; heights above that plane replace z in every later step.

Robustness: isolated voxels (stray returns) take no part; a level must hold at
least ``min_fraction`` of the strongest level's voxels and ``min_voxels`` in
all, so one, ten or a hundred scattered points below the floor cannot become
it (issue 16, finding 4).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FloorConfig:
    # Voxels whose normal is within this of the up direction count as horizontal surface.
    horizontal_deg: float = 20.0
    # Histogram bin of heights (metres) and what makes a level dense: a share of the strongest level's
    # count (a camera sees more table and ceiling than floor: the SUN3D study room had 13 %) and an
    # absolute minimum (80 voxels of 5 cm: 0.2 m2 of floor).
    bin_m: float = 0.03
    min_fraction: float = 0.05
    min_voxels: int = 80
    # Tilts up to this are taken as the map's own (a warning beyond it names this parameter).
    max_tilt_deg: float = 5.0


@dataclass(frozen=True)
class FloorPlane:
    normal: np.ndarray  # unit, up
    offset: float  # the plane is normal . p = offset
    n_voxels: int

    @property
    def tilt_deg(self) -> float:
        return float(np.degrees(np.arccos(np.clip(self.normal[2], -1.0, 1.0))))

    def height(self, points: np.ndarray) -> np.ndarray:
        return points @ self.normal - self.offset


def _up_direction(normals: np.ndarray, horizontal_deg: float) -> np.ndarray:
    """Mean direction of the near-vertical normals, refined twice in a narrowing cone around it."""
    up = np.array([0.0, 0.0, 1.0])
    for cone in (horizontal_deg, horizontal_deg / 2, horizontal_deg / 4):
        near = normals[normals @ up >= np.cos(np.radians(cone))]
        if len(near) < 3:
            break
        mean = near.sum(axis=0)
        up = mean / np.linalg.norm(mean)
    return up


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane (unit normal with z >= 0, offset) through (N, 3) points."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    normal = vt[-1] * (1.0 if vt[-1][2] >= 0 else -1.0)
    return normal, float(normal @ centre)


def find_floor(centres: np.ndarray, normals: np.ndarray, usable: np.ndarray, config: FloorConfig) -> FloorPlane | None:
    """The floor plane of a voxel map, or None when no horizontal level is large enough.

    ``usable``: voxels that may take part (not isolated). Candidates are voxels whose normal is within
    ``horizontal_deg`` of the estimated up direction; the floor is the lowest dense level of their
    heights, then a plane fit on the voxels of that level (twice, the second time on the voxels
    within 1.5 bins of the first fit).
    """
    horizontal = usable & (normals @ np.array([0.0, 0.0, 1.0]) >= np.cos(np.radians(config.horizontal_deg + config.max_tilt_deg)))
    if horizontal.sum() < config.min_voxels:
        return None
    up = _up_direction(normals[horizontal], config.horizontal_deg + config.max_tilt_deg)
    candidates = usable & (normals @ up >= np.cos(np.radians(config.horizontal_deg)))
    heights = centres[candidates] @ up
    if len(heights) < config.min_voxels:
        return None
    edges = np.arange(heights.min(), heights.max() + 2 * config.bin_m, config.bin_m)
    counts, edges = np.histogram(heights, bins=edges)
    # Two neighbouring bins together: a level that straddles a bin edge is not halved.
    paired = counts + np.r_[counts[1:], 0]
    dense = np.flatnonzero(paired >= max(config.min_voxels, config.min_fraction * paired.max()))
    if len(dense) == 0:
        return None
    level = dense[0]
    # The strongest pair in the first run of dense bins.
    run_end = level
    while run_end + 1 < len(paired) and run_end + 1 in set(dense.tolist()):
        run_end += 1
    level = level + int(np.argmax(paired[level : run_end + 1]))
    on_level = (heights >= edges[level]) & (heights < edges[level + 2])
    points = centres[candidates][on_level]
    normal, offset = fit_plane(points)
    near = usable & (np.abs(centres @ normal - offset) <= 1.5 * config.bin_m) & (normals @ normal >= np.cos(np.radians(config.horizontal_deg)))
    if near.sum() >= 3:
        normal, offset = fit_plane(centres[near])
    return FloorPlane(normal=normal, offset=offset, n_voxels=int(near.sum()))


def levelling_rotation(up: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) that takes ``up`` to +z by the shortest turn (Rodrigues)."""
    up = up / np.linalg.norm(up)
    axis = np.cross(up, [0.0, 0.0, 1.0])
    s, c = np.linalg.norm(axis), float(up[2])
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx
