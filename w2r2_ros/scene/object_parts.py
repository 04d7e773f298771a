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
  object (legs, a counter's front, a cabinet's sides), unless it lies beside the
  surface at its level in another colour (a plant's top leaves just off a table);
- a part that rises from the surface's rim in the surface's colour (chromaticity)
  is the same object (a chair's back, a sofa's arm); one of another colour is
  another object (a box at a cabinet top's corner); when it meets several rims
  (the back of a chair pushed under a table leans on the table top's edge) it
  joins the surface nearest its bottom (the seat); one that also hangs under a
  second surface joins both if that one's colour matches the seat's (a sofa's
  arm side) or is a narrow slab's top (a sofa's back or arm, ``seat_wall_m``),
  else only the one it hangs under (the side of a cabinet that a table abuts);
- a part that touches the surface from above inside its footprint stands on it
  (a monitor, a mug): a different object;
- two supports that touch at the same height (within ``same_surface_m``) are
  one surface in several colours (a table top with a runner or placemats on
  it), unless each holds up parts of its own and their colours differ (two
  tables pushed together at one height, each on its own legs); at different
  heights they stay apart.

Parts that touch no surface join each other where their colours (chromaticity)
agree; then each group still small joins the one group it touches most, so two
big groups of two colours are two objects (a chair and the table it touches when
noise left neither a surface) and a fragment between two objects bridges none.
Such a group joins the object with a surface it touches most only if it is small
or touches it along much of itself in its colour (a plant against a cabinet, a
chair under a table of another colour stay apart), and never bridges two objects
that each have a surface.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix, diags, identity, tril
from scipy.sparse.linalg import ArpackError, eigsh

from w2r2_ros.geometry.boxes import min_area_rectangle
from w2r2_ros.scene.chromaticity import chromaticity
from w2r2_ros.scene.voxel_graph import VoxelGraph, connected_components_of, grow_into, mean_by_label


@dataclass(frozen=True)
class PartConfig:
    # Neighbouring voxels are on one part when their normals differ by less than this (degrees) and
    # their colours by less than colour_step (RGB distance, 0..1 per channel).
    normal_deg: float = 25.0
    colour_step: float = 0.12
    # Voxels of higher surface variation (edges, corners) are not grown through; they join the part
    # beside them afterwards. The bound is max_curvature or, on a noisy map (a real Kinect map's
    # surfaces are ~10 cm thick after fusion: median variation 0.13 against ~0 on renders), the
    # curvature_quantile of the map's own voxels, whichever is larger: edges stand out of the noise.
    max_curvature: float = 0.05
    curvature_quantile: float = 0.6
    # Region merging (merge_coplanar_parts): parts of at least coplanar_min_voxels whose planes agree.
    coplanar_deg: float = 15.0
    coplanar_voxels: float = 1.5
    coplanar_min_voxels: int = 5
    # A part under one surface and on another's rim joins both only if it runs along this share of
    # the upper surface (a sofa's arm side does, a chair back under a table's edge does not).
    span_fraction: float = 0.7
    # ...except under a slab's top: narrower than seat_wall_m across the part and at least
    # seat_wall_ratio times as long as wide (a box at the rim has a narrow top too). Such a part joins the
    # seat whatever the colours and however much of the top it runs along: it is a wall standing on the
    # seat (a sofa's back or arm under its own top), not the side of a deeper piece of furniture beside
    # it (a cabinet a table abuts, whose top runs on behind its face). A synthetic sofa's back is
    # 0.18-0.2 m thick and its arms 0.15-0.25 m by 0.6-0.8 m; a real one's back is 0.15-0.3 m;
    # bookshelves are 0.28 m deep or more. 0 switches it off.
    seat_wall_m: float = 0.3
    seat_wall_ratio: float = 2.0
    # A horizontal part (median |normal z| above cos(horizontal_deg)) of this area is a support surface.
    horizontal_deg: float = 25.0
    support_min_area_m2: float = 0.05
    # Touching supports whose levels differ by at most this (metres) are one surface. Kept tight: a
    # runner on a dining table lies within a centimetre of it, two tables pushed together seldom do.
    # ...unless their colours differ by more than colour_step, each is at least held_surface_min_m
    # across, and each holds up a part of its own (one that hangs under it, not under the other, and
    # reaches held_part_drop_m below it: a leg, a front): two tables pushed together at one height.
    # A runner or a placemat holds up nothing. The rim of a top, a voxel or two wide and blended with
    # the colour of the top's side, holds the corner legs but is no table; a table top seen in part
    # between what stands on and around it was 0.25 m across at its widest. A speck of a top's own
    # fused thickness (a real top is 10-15 cm thick) is no leg: on the dining-room recording the two
    # halves of a table either side of its runner each held 1-4-voxel specks at its level.
    # separate_held_surfaces False joins every such pair, as before.
    same_surface_m: float = 0.025
    separate_held_surfaces: bool = True
    held_surface_min_m: float = 0.2
    held_part_drop_m: float = 0.2
    # A group of parts with no surface joins the object it touches most when it has fewer voxels than
    # free_group_min_voxels, or touches it with at least attach_fraction contacts per voxel of its own and
    # their chromaticities agree within free_chroma_step.
    free_group_min_voxels: int = 40
    attach_fraction: float = 0.3
    # Free parts join each other when their chromaticities ((r, g) / (r + g + b), brightness left out)
    # agree within this; a group still smaller than free_group_min_voxels then joins the one group it
    # touches most (``_join_free_parts``). Measured on the development scenes' joins of free parts
    # (touching and all combined): parts of one object differed by 0.014 (median), parts of two objects
    # by 0.175; the faces of one object lit differently, by at most 0.07 (a worktop). 0 joins every
    # touching pair.
    free_chroma_step: float = 0.08
    # An object whose footprint is longer than this (metres) is a chain of touching furniture (a row of
    # desks joined by partitions, a table with the chairs around it); it is cut at its weakest contact
    # (normalized cut of its parts' contact graph) until every piece is this short. Single pieces of
    # furniture seldom pass 2.5 m (none of the synthetic world's, which end at 2.2 m); a long kitchen
    # counter cut in two keeps IoU 0.5 with each half. 0 switches the cut off.
    max_object_m: float = 2.5
    # Relations are judged with this tolerance in height, in voxels.
    height_tolerance_voxels: float = 1.5
    # A hanging part lies with at least this share of its voxels inside the support's footprint.
    hanging_fraction: float = 0.7
    # A part of another colour at a surface's edge is another object (a box or a lamp at the edge of a
    # cabinet top, a plant beside a table): it joins the surface at its rim only if their chromaticities
    # agree within part_chroma_step, and, lying beside the surface at its level (its bottom no lower than
    # beside_drop_voxels under it: no leg, side or front, which reach below), hangs under it only then.
    # Measured on the development scenes' joins (touching and all combined): a part rising from a seat's
    # rim and of the seat's object differed by at most 0.007 in nine joins of ten (0.067: a cabinet under
    # its worktop); one of another object, by 0.3 or more in three of four. 0 switches both tests off.
    part_chroma_step: float = 0.08
    beside_drop_voxels: float = 0.5
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


def _extents(part_cells: np.ndarray, support_cells: np.ndarray) -> tuple[float, float, float]:
    """Extents in cells, along the part's own main horizontal direction, of the part and of a
    support, and the support's extent across that direction."""
    xy = part_cells.astype(np.float64)
    centred = xy - xy.mean(axis=0)
    _, _, vt = np.linalg.svd(centred)  # full: two directions even for a part of one cell
    return np.ptp(xy @ vt[0]) + 1, np.ptp(support_cells @ vt[0]) + 1, np.ptp(support_cells @ vt[1]) + 1


def _width(cells: np.ndarray) -> float:
    """How wide, in cells, a part's footprint is at its widest point: the diameter of the largest disc
    inside it, holes filled (a strip along two edges of a top is an L whose bounding rectangle is wide;
    a top with a runner on it is a ring of narrow bands)."""
    origin = cells.min(axis=0) - 1
    grid = ndimage.binary_fill_holes(_footprint(cells, origin, tuple(cells.max(axis=0) - origin + 2)))
    return 2.0 * float(ndimage.distance_transform_edt(grid).max()) - 1.0


def split_parts(normals: np.ndarray, curvature: np.ndarray, colours: np.ndarray, graph: VoxelGraph, config: PartConfig) -> np.ndarray:
    """Part label per voxel: smooth patches of one colour, grown from the flat voxels, then the edge
    voxels given to the patch beside them."""
    r, c = graph.rows, graph.cols
    bound = max(config.max_curvature, float(np.quantile(curvature, config.curvature_quantile))) if len(curvature) else 0.0
    flat = curvature <= bound
    smooth = np.abs(np.sum(normals[r] * normals[c], axis=1)) >= np.cos(np.radians(config.normal_deg))
    rgb = np.asarray(colours, dtype=np.float64) / 255.0
    similar = np.linalg.norm(rgb[r] - rgb[c], axis=1) <= config.colour_step
    labels = graph.components(smooth & similar & flat[r] & flat[c])
    return grow_into(labels, flat, graph, keep=similar)


def merge_coplanar_parts(
    parts: np.ndarray, centres: np.ndarray, normals: np.ndarray, colours: np.ndarray, graph: VoxelGraph, voxel: float, config: PartConfig
) -> np.ndarray:
    """Region merging: neighbouring parts on one plane, of one colour, become one part.

    Region growing stops at edge voxels, so a face is cut wherever something touches it (the back of a
    chair pushed under a table is cut along the table top's edge into a piece below the top, which
    would then "hang" under it, and a piece above). Each part's plane is its centroid and the
    principal direction of its normals; two touching parts merge when their normals agree within
    ``coplanar_deg`` and each centroid lies within ``coplanar_voxels`` of the other's plane.
    """
    n_parts = int(parts.max()) + 1 if len(parts) else 0
    if n_parts < 2:
        return parts
    counts = np.bincount(parts, minlength=n_parts)
    centroid = mean_by_label(parts, centres, n_parts)
    rgb = mean_by_label(parts, colours, n_parts) / 255.0
    scatter = mean_by_label(parts, (normals[:, :, None] * normals[:, None, :]).reshape(-1, 9), n_parts).reshape(-1, 3, 3)
    _, vectors = np.linalg.eigh(scatter)
    plane_normal = vectors[:, :, -1]
    r, c = graph.rows, graph.cols
    pa, pb = parts[r], parts[c]
    across = pa != pb
    pairs = np.unique(np.stack([np.minimum(pa[across], pb[across]), np.maximum(pa[across], pb[across])], axis=1), axis=0)
    if len(pairs) == 0:
        return parts
    a, b = pairs[:, 0], pairs[:, 1]
    delta = centroid[b] - centroid[a]
    limit = config.coplanar_voxels * voxel
    merge = (
        (np.minimum(counts[a], counts[b]) >= config.coplanar_min_voxels)
        & (np.abs(np.sum(plane_normal[a] * plane_normal[b], axis=1)) >= np.cos(np.radians(config.coplanar_deg)))
        & (np.abs(np.sum(delta * plane_normal[a], axis=1)) <= limit)
        & (np.abs(np.sum(delta * plane_normal[b], axis=1)) <= limit)
        & (np.linalg.norm(rgb[a] - rgb[b], axis=1) <= config.colour_step)
    )
    return connected_components_of(a[merge], b[merge], n_parts)[parts]


def _footprint(cells: np.ndarray, origin: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    grid = np.zeros(shape, dtype=bool)
    grid[cells[:, 0] - origin[0], cells[:, 1] - origin[1]] = True
    return grid


def group_parts(
    parts: np.ndarray, heights: np.ndarray, normals: np.ndarray, colours: np.ndarray, graph: VoxelGraph, voxel: float, config: PartConfig
) -> np.ndarray:
    """Object label per voxel from part labels ``parts`` (see the module docstring for the rules)."""
    n_parts = int(parts.max()) + 1 if len(parts) else 0
    if n_parts < 2:
        return np.zeros(len(parts), dtype=np.int64)
    order = np.argsort(parts, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(parts, minlength=n_parts))]
    members = [order[bounds[i] : bounds[i + 1]] for i in range(n_parts)]
    mean_rgb = mean_by_label(parts, colours, n_parts)
    part_rgb, part_chroma = mean_rgb / 255.0, chromaticity(mean_rgb)

    def chroma_apart(a: int, b: int) -> bool:
        return _chroma_apart(part_chroma[a], part_chroma[b], config.part_chroma_step)
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
            cache[i] = (ndimage.binary_dilation(filled, structure=np.ones((3, 3), dtype=bool)), ndimage.binary_erosion(filled))
        return cache[i]

    tol = config.height_tolerance_voxels * voxel
    union = _UnionFind(n_parts)
    generic: list[tuple[int, int, int]] = []
    level_pairs: list[tuple[int, int, int]] = []  # touching supports at one level, and their contacts
    hangs: dict[int, list[int]] = {}
    hang_contacts: dict[tuple[int, int], int] = {}
    rims: dict[int, list[tuple[float, bool, int]]] = {}  # part -> (distance of its bottom to the rim, at its bottom, support)
    for key, start, count in zip(unique_keys, starts, pair_counts):
        a, b = divmod(int(key), n_parts)
        edges = pair_order[start : start + count]
        side = {a: r[edges], b: c[edges]}  # contact voxels on each side
        pa_, pb_ = info[a], info[b]
        if pa_.support and pb_.support:
            if abs(pa_.level - pb_.level) <= config.same_surface_m:
                level_pairs.append((a, b, int(count)))
            continue
        if not (pa_.support or pb_.support):
            generic.append((int(count), a, b))
            continue
        s, o = (a, b) if pa_.support else (b, a)
        sp, op = info[s], info[o]
        near, interior = footprint(s)
        if op.top <= sp.level + tol:  # below the surface
            o_cells = cells[members[o]] - origin
            beside = op.bottom >= sp.level - config.beside_drop_voxels * voxel and chroma_apart(s, o)
            if not beside and near[o_cells[:, 0], o_cells[:, 1]].mean() >= config.hanging_fraction:
                hangs.setdefault(o, []).append(s)
                hang_contacts[(o, s)] = int(count)
            continue
        contact = side[o]
        contact_cells = cells[contact] - origin
        if interior[contact_cells[:, 0], contact_cells[:, 1]].mean() > config.interior_fraction:
            continue  # stands on the surface: another object
        if chroma_apart(s, o):
            continue  # another object at the surface's edge
        at_bottom = np.median(heights[contact]) <= op.bottom + config.bottom_voxels * voxel
        rims.setdefault(o, []).append((abs(op.bottom - sp.level), bool(at_bottom), s))
    _join_level_surfaces(level_pairs, hangs, hang_contacts, info, cells, members, part_rgb, voxel, union, config)
    # A part hangs under every surface it is under (a leg under a top). At a rim it joins one surface:
    # the one its bottom is nearest (a chair's back, posts included, joins its seat, not the table top
    # it leans on), and only if it hangs under none, or meets that rim with its bottom (a sofa's arm
    # under the arm's top and on the seat's rim; not a table leg beside a chair's seat).
    # A part under several surfaces at different levels holds up the lowest of them; it hangs under a
    # higher one too only when that one has the lowest one's colour (a sofa's arm top over its seat:
    # one piece of furniture). The base of a chair pushed under a table is under its seat and under the
    # table top; hanging under both joined every tucked chair to its table.
    for o, above in hangs.items():
        lowest = min(above, key=lambda s: info[s].level)
        hangs[o] = [
            s for s in above
            if info[s].level <= info[lowest].level + config.same_surface_m
            or np.linalg.norm(part_rgb[s] - part_rgb[lowest]) <= config.colour_step
        ]
    for o in set(hangs) | set(rims):
        rim = min(rims[o]) if o in rims else None
        for s in hangs.get(o, []):
            # Under one surface and on another's rim with its bottom: one side of a sofa's arm (under
            # the arm's top along all of it, on the seat of the same colour), the back of a chair pushed
            # under a table (under a stretch of the table top's edge, on its seat), or the side of a
            # cabinet a table abuts (under the cabinet's top, on the table's rim, another colour).
            # Only the first joins both; the others join the surface they hang under... or their seat.
            # A top too narrow to be a cabinet's (seat_wall_m) makes the part a wall of the seat (a
            # sofa's back or arm, painted or lit darker than its seat): it joins both, whatever the
            # colours, and also when it is seen along only part of the top (an arm's inner face
            # half hidden by a cushion or by the view).
            if rim is None or not rim[1]:
                union.union(s, o)
                continue
            part_along, support_along, support_across = _extents(cells[members[o]], cells[members[s]])
            wall = support_across * voxel <= config.seat_wall_m and support_along >= config.seat_wall_ratio * support_across
            if wall or part_along >= config.span_fraction * support_along:
                union.union(s, o)
                if not wall and np.linalg.norm(part_rgb[s] - part_rgb[rim[2]]) > config.colour_step:
                    rim = None  # another object's surface at its foot
        if rim is not None and (o not in hangs or rim[1]):
            union.union(rim[2], o)
    # Parts that touch no surface first join each other (a plant's leaves and pot, a bin's sides;
    # two big groups of two colours stay apart, ``_join_free_parts``);
    # such a free group then joins the object with a surface it touches most, if it is small (an edge
    # strip, a stray fragment) or touches it along much of itself in its colour (a table's side seen
    # without its top). A plant or a bin standing against a cabinet touches it along a strip only, and a
    # chair pushed under a table, its seat not found under noise, is of another colour: both stay objects
    # of their own.
    anchored = np.array([union.find(i) != i or p.support for i, p in enumerate(info)])
    anchored = np.array([anchored[i] or anchored[union.find(i)] for i in range(n_parts)])
    roots_now = np.array([union.find(i) for i in range(n_parts)])
    anchored_root = np.zeros(n_parts, dtype=bool)
    anchored_root[roots_now[anchored]] = True
    free = ~anchored_root[roots_now]
    _join_free_parts(generic, free, members, mean_rgb, union, config)
    # Groups and objects as they are now: a free group's root holds free parts only, so its size and
    # colour are those of its root.
    root_of = np.array([union.find(i) for i in range(n_parts)])
    sizes = np.array([len(m) for m in members], dtype=np.float64)
    root_size = np.bincount(root_of, weights=sizes, minlength=n_parts)
    root_rgb = np.zeros((n_parts, 3))
    np.add.at(root_rgb, root_of, mean_rgb * sizes[:, None])
    root_chroma = chromaticity(root_rgb / np.maximum(root_size, 1.0)[:, None])
    touches = []
    for count, a, b in generic:
        if free[a] != free[b]:
            f, s = (a, b) if free[a] else (b, a)
            touches.append((int(root_of[f]), int(root_of[s]), count))
    best = _most_touched(touches)
    for f, (count, s) in best.items():
        alike = not _chroma_apart(root_chroma[f], root_chroma[s], config.free_chroma_step)
        if root_size[f] < config.free_group_min_voxels or (alike and count >= config.attach_fraction * root_size[f]):
            union.union(s, f)
    # Every part under its root, roots renumbered 0..K-1.
    roots = np.array([union.find(i) for i in range(n_parts)])
    _, object_of_part = np.unique(roots, return_inverse=True)
    return object_of_part[parts]


def _chroma_apart(a: np.ndarray, b: np.ndarray, step: float) -> bool:
    """Whether two chromaticities differ by more than ``step`` (0: never, the colour test off)."""
    return step > 0 and float(np.linalg.norm(a - b)) > step


def _join_free_parts(
    generic: list[tuple[int, int, int]], free: np.ndarray, members: list[np.ndarray], mean_rgb: np.ndarray,
    union: _UnionFind, config: PartConfig,
) -> None:
    """Join touching free parts (none holds or hangs under a surface) into groups.

    First the parts whose colours agree join, most contacts first (a group's colour is the mean of its
    parts', so the strongest contacts decide what it is before weak ones are weighed): two groups join
    when their mean chromaticities agree within ``free_chroma_step`` (a plant's leaves and its pot, a
    bin's sides). Then each group still small (fewer than ``free_group_min_voxels``: a fragment, a pole)
    joins the one group it touches most, whatever its colour. Small is judged on whole colour groups,
    and a small group joins one neighbour only, so a fragment between two objects (a strip of a cabinet
    top between a box and a lamp on it) joins one of them and bridges none. ``free_chroma_step`` 0 joins
    every touching pair.
    """
    rgb_sum = {i: mean_rgb[i] * len(members[i]) for i in np.flatnonzero(free)}
    size = {i: len(members[i]) for i in np.flatnonzero(free)}
    pairs = [(count, a, b) for count, a, b in sorted(generic, reverse=True) if free[a] and free[b]]
    for _, a, b in pairs:
        ra, rb = union.find(a), union.find(b)
        if ra == rb:
            continue
        if not _chroma_apart(chromaticity(rgb_sum[ra] / size[ra]), chromaticity(rgb_sum[rb] / size[rb]), config.free_chroma_step):
            root = union.union(ra, rb)
            other = rb if root == ra else ra
            rgb_sum[root] = rgb_sum[ra] + rgb_sum[rb]
            size[root] = size[ra] + size[rb]
            del rgb_sum[other], size[other]
    touches = []
    for count, a, b in pairs:
        ra, rb = union.find(a), union.find(b)
        if ra != rb:
            touches += [(ra, rb, count), (rb, ra, count)]
    best = _most_touched(touches)
    for g, (_, other) in best.items():
        if size[g] < config.free_group_min_voxels:
            union.union(g, other)


def _most_touched(touches: Iterable[tuple[int, int, int]]) -> dict[int, tuple[int, int]]:
    """For each group, ``(contacts, other)``: the group it touches most, its contacts summed over the
    ``(group, other, contacts)`` of its parts' pairs (the first of equals, in the order given)."""
    contact: dict[tuple[int, int], int] = {}
    for group, other, count in touches:
        contact[(group, other)] = contact.get((group, other), 0) + count
    best: dict[int, tuple[int, int]] = {}
    for (group, other), count in contact.items():
        if group not in best or count > best[group][0]:
            best[group] = (count, other)
    return best


def _join_level_surfaces(
    level_pairs: list[tuple[int, int, int]],
    hangs: dict[int, list[int]],
    hang_contacts: dict[tuple[int, int], int],
    info: list[_Part],
    cells: np.ndarray,
    members: list[np.ndarray],
    part_rgb: np.ndarray,
    voxel: float,
    union: _UnionFind,
    config: PartConfig,
) -> None:
    """Join the touching surfaces at one level (``level_pairs``: surface, surface, contacts) in ``union``,
    but for two tables pushed together, and keep the parts under both (``hangs``) under one of them.

    One surface in several colours (a table with a runner on it) is joined; two tables pushed together at
    one height each hold up a part that is not under the other and differ in colour (``PartConfig``
    says why each bound). What a narrow surface (a top's rim, blended with its side's colour) holds up
    counts as the wide one's it touches most; it joins every wide surface it touches, but not across the
    seam of two tables (which may meet through such a strip only). A part under two tables (a leg at
    the seam) then hangs under the one it touches most. ``cells[members[i]]`` is part i's footprint cells.
    """
    held_by: dict[int, set[int]] = {}
    for o, above in hangs.items():
        for s in above:
            if info[o].bottom <= info[s].level - config.held_part_drop_m:
                held_by.setdefault(s, set()).add(o)
    widths: dict[int, float] = {}

    def wide(i: int) -> bool:
        if i not in widths:
            widths[i] = _width(cells[members[i]]) * voxel
        return widths[i] >= config.held_surface_min_m

    beside: dict[int, list[tuple[int, int]]] = {}  # a narrow surface -> (contacts, wide surface) it touches
    wide_pairs: list[tuple[int, int]] = []
    for a, b, count in level_pairs:
        if not config.separate_held_surfaces or not (wide(a) or wide(b)):
            union.union(a, b)
        elif wide(a) and wide(b):
            wide_pairs.append((a, b))
        else:
            strip, surface = (b, a) if wide(a) else (a, b)
            beside.setdefault(strip, []).append((count, surface))
    most = {strip: max(touching, key=lambda pair: pair[0])[1] for strip, touching in beside.items()}
    for strip, surface in most.items():
        union.union(surface, strip)
        held_by.setdefault(surface, set()).update(held_by.get(strip, set()))
    for touching in beside.values():  # two tables that meet through a rim strip only
        wide_pairs += [(a, b) for i, (_, a) in enumerate(touching) for _, b in touching[i + 1:]]
    apart: set[tuple[int, int]] = set()
    for a, b in wide_pairs:
        own_a, own_b = held_by.get(a, set()), held_by.get(b, set())
        if np.linalg.norm(part_rgb[a] - part_rgb[b]) > config.colour_step and own_a - own_b and own_b - own_a:
            apart |= {(a, b), (b, a)}
        else:
            union.union(a, b)
    apart = {(union.find(a), union.find(b)) for a, b in apart}
    for strip, touching in beside.items():  # a narrow surface joins every wide one it touches but across a seam
        for _, surface in touching:
            if (union.find(most[strip]), union.find(surface)) not in apart:
                union.union(surface, strip)
    if apart:
        for o, above in hangs.items():
            by_root: dict[int, int] = {}
            for s in above:
                by_root[union.find(s)] = by_root.get(union.find(s), 0) + hang_contacts[(o, s)]
            hangs[o] = [s for s in above if not any(
                (union.find(s), t) in apart and count > by_root[union.find(s)] for t, count in by_root.items())]


def split_oversized(objects: np.ndarray, parts: np.ndarray, xy: np.ndarray, graph: VoxelGraph, config: PartConfig) -> np.ndarray:
    """Cut every object longer than ``config.max_object_m`` at its weakest link, until its pieces are short.

    The support relations join furniture that touches through a chain of parts (a partition rising
    from two desks' rims, a wall remnant over both). Such a chain's links are few contacts between
    parts, so the object's part graph (weights: voxel-graph edges between two parts) is cut by the
    normalized cut (Shi and Malik: the Fiedler vector of the normalized Laplacian, swept for the
    split of least ``cut/vol(A) + cut/vol(B)``), which prefers a weak cut between two substantial
    sides over trimming a fragment. ``xy`` holds the voxels' levelled horizontal coordinates; an object
    is measured by the long side of its footprint's minimum-area rectangle (a 2.2 x 1.6 m bed passes).
    """
    if config.max_object_m <= 0 or len(objects) == 0:
        return objects
    labels = objects.copy()
    order = np.argsort(labels, kind="stable")
    pending = np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)
    next_label = int(labels.max()) + 1
    while pending:
        member = pending.pop()
        span = xy[member].max(axis=0) - xy[member].min(axis=0)  # its diagonal bounds any box's long side
        if np.hypot(*span) <= config.max_object_m or not _too_long(xy[member], config.max_object_m):
            continue
        side = _normalized_cut(member, parts, graph)
        if side is None:
            continue
        labels[member[side]] = next_label
        next_label += 1
        pending.extend([member[side], member[~side]])
    _, renumbered = np.unique(labels, return_inverse=True)
    return renumbered


def _too_long(xy: np.ndarray, limit: float) -> bool:
    """Whether the long side of the footprint's minimum-area rectangle passes ``limit``."""
    return float(min_area_rectangle(xy)[1].max()) > limit


def _normalized_cut(member: np.ndarray, parts: np.ndarray, graph: VoxelGraph) -> np.ndarray | None:
    """The side (a mask over ``member``) of the normalized cut of these voxels' part contact graph;
    None when the object is one part or its parts do not touch."""
    inside = np.zeros(graph.n_voxels, dtype=bool)
    inside[member] = True
    r, c = graph.rows, graph.cols
    keep = inside[r] & inside[c] & (parts[r] != parts[c])
    ids, local = np.unique(parts[member], return_inverse=True)
    k = len(ids)
    if k < 2 or not keep.any():
        return None
    index = np.full(int(parts.max()) + 1, -1)
    index[ids] = np.arange(k)
    weights = coo_matrix((np.ones(int(keep.sum())), (index[parts[r[keep]]], index[parts[c[keep]]])), shape=(k, k)).tocsr()
    weights = weights + weights.T
    degree = np.asarray(weights.sum(axis=1)).ravel()
    connected = degree > 0
    if connected.sum() < 2:
        return None
    # Parts that touch no other part of the object (joined by a relation across a gap) stay with the
    # larger side.
    w = weights[connected][:, connected]
    d = degree[connected]
    scale = diags(1.0 / np.sqrt(d))
    laplacian = identity(len(d)) - scale @ w @ scale
    vector = None
    if len(d) > 64:  # the two smallest eigenpairs by shift-invert (the Laplacian is positive semi-definite)
        try:
            values, vectors = eigsh(laplacian.tocsc(), k=2, sigma=-1e-3)
            vector = vectors[:, np.argsort(values)[1]]
        except (ArpackError, RuntimeError):
            vector = None
    if vector is None:
        vector = np.linalg.eigh(laplacian.toarray())[1][:, 1]
    fiedler = vector / np.sqrt(d)
    order = np.argsort(fiedler, kind="stable")
    ordered = w[order][:, order]
    # cut(S + v) = cut(S) + d(v) - 2 w(v, S), over the prefixes S of the ordering.
    to_prefix = np.asarray(tril(ordered, k=-1).sum(axis=1)).ravel()
    cut = np.cumsum(d[order] - 2.0 * to_prefix)[:-1]
    volume = np.cumsum(d[order])[:-1]
    total = d.sum()
    ncut = cut / volume + cut / (total - volume)
    best = int(np.argmin(ncut))
    chosen = np.zeros(k, dtype=bool)
    chosen[np.flatnonzero(connected)[order[: best + 1]]] = True
    side = chosen[local]
    if side.sum() * 2 > len(member):
        side = ~side  # the smaller side gets the new label; unconnected parts stay with the larger
        side &= connected[local]
    return side if side.any() and not side.all() else None
