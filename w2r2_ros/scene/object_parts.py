"""Split what is left after floor and walls into objects, also where furniture touches.

Connected components join everything that touches: chairs tucked under a table,
a mug on it, a counter and the cabinet beside it. So the voxels are first cut
into *parts*, smooth surface patches of one colour (region growing on the voxel
graph: neighbours join when their normals and colours agree; the classic
over-segmentation that ScanNet's segments come from, with a normal and colour
test instead of Felzenszwalb's adaptive threshold, which is one vectorised
connected-components call). Parts are then joined into objects by how they
touch a *support surface* (a horizontal part of at least ``support_min_area_m2``:
a table top, a seat, a counter top, a shelf board):

- a part that hangs under the surface, inside its footprint, is the same
  object (legs, a counter's front, a cabinet's sides);
- a part that rises from the surface's rim, touching it with its bottom, is the
  same object (a chair's back, a sofa's arm);
- a part that touches the surface from above inside its footprint stands on it
  (a monitor, a mug): a different object;
- a part that touches the surface's rim with its middle (the back of a chair
  pushed under a table) is a different object;
- two supports at the same height that touch are one surface.

Parts that touch no surface join the object they touch most, but never bridge
two objects that each have a surface.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from w2r2_ros.scene.voxel_graph import VoxelGraph, grow_into


@dataclass(frozen=True)
class PartConfig:
    # Neighbouring voxels are on one part when their normals differ by less than this (degrees) and
    # their colours by less than colour_step (RGB distance, 0..1 per channel).
    normal_deg: float = 25.0
    colour_step: float = 0.12
    # Voxels of higher surface variation (edges, corners) are not grown through; they join the part
    # beside them afterwards.
    max_curvature: float = 0.05
    # A horizontal part (median |normal z| above cos(horizontal_deg)) of this area is a support surface.
    horizontal_deg: float = 25.0
    support_min_area_m2: float = 0.05
    # Relations are judged with this tolerance in height, in voxels.
    height_tolerance_voxels: float = 1.5
    # A hanging part lies with at least this share of its voxels inside the support's footprint.
    hanging_fraction: float = 0.7
    # A part touches a support "with its bottom" when its contact voxels are within this many voxels
    # of its lowest voxel; "from above inside" when more than interior_fraction of them are over the
    # support's footprint eroded by one voxel.
    bottom_voxels: float = 2.0
    interior_fraction: float = 0.5


@dataclass(frozen=True)
class _Part:
    bottom: float
    top: float
    level: float  # median height
    support: bool


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
        return a


def split_parts(normals: np.ndarray, curvature: np.ndarray, colours: np.ndarray, graph: VoxelGraph, config: PartConfig) -> np.ndarray:
    """Part label per voxel: smooth patches of one colour, grown from the flat voxels, then the edge
    voxels given to the patch beside them."""
    r, c = graph.rows, graph.cols
    flat = curvature <= config.max_curvature
    smooth = np.abs(np.sum(normals[r] * normals[c], axis=1)) >= np.cos(np.radians(config.normal_deg))
    rgb = np.asarray(colours, dtype=np.float64) / 255.0
    similar = np.linalg.norm(rgb[r] - rgb[c], axis=1) <= config.colour_step
    labels = graph.components(smooth & similar & flat[r] & flat[c])
    return grow_into(labels, flat, graph)


def _footprint(cells: np.ndarray, origin: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    grid = np.zeros(shape, dtype=bool)
    grid[cells[:, 0] - origin[0], cells[:, 1] - origin[1]] = True
    return grid


def group_parts(
    parts: np.ndarray, heights: np.ndarray, normals: np.ndarray, graph: VoxelGraph, voxel: float, config: PartConfig
) -> np.ndarray:
    """Object label per voxel from part labels ``parts`` (see the module docstring for the rules)."""
    n_parts = int(parts.max()) + 1 if len(parts) else 0
    if n_parts < 2:
        return np.zeros(len(parts), dtype=np.int64)
    order = np.argsort(parts, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(parts, minlength=n_parts))]
    members = [order[bounds[i] : bounds[i + 1]] for i in range(n_parts)]
    cos_h = np.cos(np.radians(config.horizontal_deg))
    support_min = config.support_min_area_m2 / voxel**2
    info = []
    for m in members:
        h = heights[m]
        info.append(
            _Part(float(h.min()), float(h.max()), float(np.median(h)),
                  len(m) >= support_min and float(np.median(np.abs(normals[m, 2]))) >= cos_h)
        )
    # Contacts: graph edges between different parts, grouped by (part, part).
    r, c = graph.rows, graph.cols
    across = parts[r] != parts[c]
    r, c = r[across], c[across]
    pa, pb = parts[r], parts[c]
    swap = pa > pb
    r, c = np.where(swap, c, r), np.where(swap, r, c)  # r in the lower-numbered part
    pa, pb = np.minimum(pa, pb), np.maximum(pa, pb)
    pair_key = pa.astype(np.int64) * n_parts + pb
    pair_order = np.argsort(pair_key, kind="stable")
    unique_keys, starts, pair_counts = np.unique(pair_key[pair_order], return_index=True, return_counts=True)

    cells = graph.cells[:, :2]
    origin = cells.min(axis=0) - 1
    shape = tuple(cells.max(axis=0) - origin + 2)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def footprint(i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in cache:
            grid = _footprint(cells[members[i]], origin, shape)
            filled = ndimage.binary_fill_holes(ndimage.binary_closing(grid, iterations=2)) | grid
            cache[i] = (ndimage.binary_dilation(filled), ndimage.binary_erosion(filled))
        return cache[i]

    tol = config.height_tolerance_voxels * voxel
    union = _UnionFind(n_parts)
    generic: list[tuple[int, int, int]] = []
    for key, start, count in zip(unique_keys, starts, pair_counts):
        a, b = divmod(int(key), n_parts)
        edges = pair_order[start : start + count]
        side = {a: r[edges], b: c[edges]}  # contact voxels on each side
        pa_, pb_ = info[a], info[b]
        if pa_.support and pb_.support:
            if abs(pa_.level - pb_.level) <= tol:
                union.union(a, b)
            continue
        if not (pa_.support or pb_.support):
            generic.append((int(count), a, b))
            continue
        s, o = (a, b) if pa_.support else (b, a)
        sp, op = info[s], info[o]
        near, interior = footprint(s)
        if op.top <= sp.level + tol:  # below the surface
            o_cells = cells[members[o]] - origin
            if near[o_cells[:, 0], o_cells[:, 1]].mean() >= config.hanging_fraction:
                union.union(s, o)
            continue
        contact = side[o]
        contact_cells = cells[contact] - origin
        on_interior = interior[contact_cells[:, 0], contact_cells[:, 1]].mean() > config.interior_fraction
        at_bottom = np.median(heights[contact]) <= op.bottom + config.bottom_voxels * voxel
        if op.bottom >= sp.level - tol and at_bottom and not on_interior:
            union.union(s, o)  # rises from the rim
    anchored = np.array([p.support for p in info])
    for _, a, b in sorted(generic, reverse=True):
        ra, rb = union.find(a), union.find(b)
        if ra == rb or (anchored[ra] and anchored[rb]):
            continue
        root = union.union(ra, rb)
        anchored[root] = anchored[ra] or anchored[rb]
    # Every part under its root, roots renumbered 0..K-1.
    roots = np.array([union.find(i) for i in range(n_parts)])
    _, object_of_part = np.unique(roots, return_inverse=True)
    return object_of_part[parts]
