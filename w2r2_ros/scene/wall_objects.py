"""Objects on walls (doors, windows, pictures, curtains) as proposals of their own.

Wall removal (``structure.py``) takes the slab within a wall plane's thickness
(3-6 cm); what hangs on the wall stands 3-15 cm out of it, so it is either cut
away with the wall or left as a slab of its front face one voxel thick, whose
box (a few centimetres off the wall, too thin) does not match the object's.
Here every wall found is looked at in its own frame (u along the wall, depth
out of it, height above the floor):

1. The candidate voxels are those within ``band_m`` of the wall's plane, over
   its extent, less the ones that look like the wall: in the plane's slab or
   just in front of it (``wall_depth_margins`` thicknesses, the fused surface of
   a noisy sensor) and of the wall's own colour (within ``colour_step`` or
   ``wall_spread_k`` robust spreads of the wall's colours, whichever is larger).
   A picture the slab took comes back by its colour; the wall's colour noise
   does not.
2. Colour regions: connected components over the voxel graph of all kept
   voxels, cut where neighbours' colours differ by more than ``colour_step``. A
   region is on the wall when ``within_fraction`` of it lies in the band and
   few of its voxels touch kept voxels beyond the band (``max_contact_fraction``;
   both counted over voxels ``min_size_m`` above the floor or higher, so the
   floor's edge running on along the next wall does not count):
   books on a shelf or a sofa's back lie in the band too but belong to
   furniture that reaches out of it.
3. A region enclosed by another in (u, height) is part of it (a window's pane
   in its frame, a door's handle on its leaf, a canvas in its picture frame);
   regions side by side stay apart (a curtain beside its window).
4. Columns of a segment lying wholly below ``min_size_m`` above the floor are
   left out (the floor's edge). Segments smaller than ``min_voxels`` or
   ``min_size_m`` along the wall or in height are dropped (wall texture, a switch); longer than ``max_length_m``
   they are cut into their runs of columns at least ``min_size_m`` tall (a
   door whose colour runs on into a low strip at the wall's foot), and a piece
   still that long is the wall's own shading or a wall-long strip, not an object.
   Objects of near colours side by side (a curtain beside its window) are cut
   apart where their columns' bottom or top steps (``step_m``).

The box is turned with the wall and reaches from the wall plane (the object's
back lies on the wall; the sensor never sees it) to the segment's front; on a
noisy map from the wall's own surface around the segment to a high quantile of
its depths (``_box``). A region that fails a test stays with the general object
pipeline, so a wall object that is not found here is proposed as before.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2r2_ros.scene.structure import StructurePlane, wall_frame
from w2r2_ros.scene.voxel_graph import VoxelGraph


@dataclass(frozen=True)
class WallObjectConfig:
    enabled: bool = True
    # Wall objects stand 3-15 cm out of the wall (a door's handle, a sill, a curtain's folds); 20 cm
    # takes them with sensor noise and stays short of furniture depth (cabinets, shelves: 30 cm and more).
    band_m: float = 0.2
    # Voxels this many wall thicknesses (StructurePlane.margin) from the plane, of the wall's colour, are wall.
    wall_depth_margins: float = 2.0
    # Neighbouring voxels are one region when their RGB colours (0..1) differ by at most this.
    colour_step: float = 0.12
    # A voxel is of the wall's colour within max(colour_step, wall_spread_k robust spreads) of its median.
    wall_spread_k: float = 3.0
    # A region is on the wall when this share of its voxels lies in the band and at most
    # max_contact_fraction of them touch kept voxels beyond it.
    within_fraction: float = 0.9
    max_contact_fraction: float = 0.1
    # Smaller than 3 x 3 voxels, a segment cannot be told from texture or noise on the wall; longer than
    # max_length_m it is no door, window, picture or curtain.
    min_voxels: int = 9
    min_size_m: float = 0.15
    max_length_m: float = 3.0
    # Boxes are at least this deep (an object flush with the wall, a window's pane).
    min_depth_m: float = 0.04
    # On a noisy map (``find_wall_objects(noisy=True)``) a box reaches from the wall's own surface around
    # the segment (the median depth of the wall's voxels within local_wall_m of its extent) to this
    # quantile of the segment's depths, not to its outermost voxel (see ``_box``).
    noisy_front_quantile: float = 0.9
    local_wall_m: float = 0.5
    # On a noisy map the front is read per row and column of the segment, less the wall's own scatter
    # (``_profile_front``); a row or column with fewer voxels than this is too few to take a quantile of.
    noisy_profile: bool = True
    profile_min_voxels: int = 6
    # Objects side by side in one colour region (a curtain beside its window) are cut apart where their
    # columns' bottom or top steps by more than step_m (``_cut_at_steps``), and the floor's edge under a
    # window is left out of it (``_tall_runs``).
    step_cut: bool = True
    step_m: float = 0.3
    # On a noisy map a box stands on the side of the wall where the floor is: floor voxels along the segment
    # from band_m to band_m + side_floor_m out of the plane, side_floor_ratio times as many on one side
    # (``_box``; else the side of the segment's outermost voxel, as on an ideal map).
    side_floor_m: float = 1.0
    side_floor_ratio: float = 3.0
    # A region's share in the band and its contacts beyond are counted over its voxels min_size_m above the
    # floor or higher (``find_wall_objects``).
    floor_edge_unjudged: bool = True


@dataclass(frozen=True)
class WallObject:
    """A segment on a wall: its voxels and its box in the levelled frame (x, y, height above the floor)."""

    member: np.ndarray  # voxel indices
    center_xy: np.ndarray
    size: np.ndarray  # along the wall, out of it, height
    yaw: float  # of the box's first axis (along the wall) in the levelled frame
    bottom: float
    top: float


def wall_coloured(
    walls: list[StructurePlane] | tuple[StructurePlane, ...],
    level: np.ndarray,
    heights: np.ndarray,
    rgb: np.ndarray,
    candidate: np.ndarray,
    voxel: float,
    config: WallObjectConfig,
) -> list[np.ndarray]:
    """Per wall of ``walls``, the ``candidate`` voxels that are that wall: within ``wall_depth_margins``
    thicknesses of its plane, over its extent, and of its colour (within ``colour_step`` or ``wall_spread_k``
    robust spreads of the colours in the plane's slab, whichever is larger). ``segment_scene`` computes them
    once: their union is what ``find_wall_objects`` leaves out, the long walls' masks are their remnants."""
    colours = np.asarray(rgb, dtype=np.float64) / 255.0
    masks = []
    for plane in walls:
        normal, along, offset = wall_frame(plane)
        u, d = level[:, :2] @ along, level[:, :2] @ normal - offset
        u0, u1, h0, h1 = plane.span
        over = candidate & (u >= u0 - voxel) & (u <= u1 + voxel) & (heights <= h1 + voxel)
        slab = over & (np.abs(d) <= plane.margin)
        if not slab.any():
            masks.append(np.zeros(len(level), dtype=bool))
            continue
        median = np.median(colours[slab], axis=0)
        distance = np.linalg.norm(colours - median, axis=1)
        spread = 1.4826 * float(np.median(distance[slab]))
        near = over & (np.abs(d) <= config.wall_depth_margins * plane.margin)
        masks.append(near & (distance <= max(config.colour_step, config.wall_spread_k * spread)))
    return masks


def find_wall_objects(
    planes: list[StructurePlane] | tuple[StructurePlane, ...],
    level: np.ndarray,
    heights: np.ndarray,
    rgb: np.ndarray,
    graph: VoxelGraph,
    candidate: np.ndarray,
    wall_like: np.ndarray,
    voxel: float,
    config: WallObjectConfig,
    noisy: bool = False,
) -> list[WallObject]:
    """Wall objects among the ``candidate`` voxels (above the floor, not isolated; wall slabs included)
    of a levelled map, one list over all walls in ``planes``; ``wall_like`` marks the voxels that look like
    a wall (the union of ``wall_coloured`` over the same walls and candidates), which no object takes.
    ``noisy``: the map's depth scatters by centimetres (``_box``)."""
    walls = [p for p in planes if p.kind == "wall" and p.span is not None]
    if not config.enabled or not walls or not candidate.any():
        return []
    colours = np.asarray(rgb, dtype=np.float64) / 255.0
    frames, depth, band = [], [], []
    for plane in walls:
        normal, along, offset = wall_frame(plane)
        u, d = level[:, :2] @ along, level[:, :2] @ normal - offset
        u0, u1, h0, h1 = plane.span
        over = candidate & (u >= u0 - voxel) & (u <= u1 + voxel) & (heights <= h1 + voxel)
        if not (over & (np.abs(d) <= plane.margin)).any():
            frames.append(None), depth.append(d), band.append(np.zeros(len(level), dtype=bool))
            continue
        frames.append((normal, along, offset, u))
        depth.append(d)
        band.append(over & (np.abs(d) <= config.band_m))
    pool = candidate & ~wall_like
    r, c = graph.rows, graph.cols
    same = pool[r] & pool[c] & (np.linalg.norm(colours[r] - colours[c], axis=1) <= config.colour_step)
    regions = graph.components(same)
    n_regions = int(regions.max()) + 1
    # The floor's edge (under min_size_m) does not count when a region is judged: mixed colours along a wall's
    # foot join a door's region to a strip along the next wall, out of this one's band.
    judged = heights >= config.min_size_m if config.floor_edge_unjudged else np.ones(len(level), dtype=bool)
    size = np.bincount(regions[pool & judged], minlength=n_regions)
    groups: list[tuple[np.ndarray, int]] = []  # (voxels, wall)
    claimed = np.zeros(n_regions, dtype=bool)
    for k, (frame, d, in_band) in enumerate(zip(frames, depth, band)):
        if frame is None:
            continue
        in_band = in_band & pool
        share = np.bincount(regions[in_band & judged], minlength=n_regions) / np.maximum(size, 1)
        # Contacts with kept voxels beyond the band or of a region that reaches out of it (furniture: a
        # bed's headboard touches its mattress, books their shelf).
        beyond = candidate & ~wall_like & judged & ((np.abs(d) > config.band_m) | (share < config.within_fraction)[regions])
        touch = np.zeros(len(level), dtype=bool)
        for a, b in ((r, c), (c, r)):
            hit = in_band[a] & judged[a] & beyond[b]
            touch[a[hit]] = True
        contact = np.bincount(regions[touch], minlength=n_regions) / np.maximum(size, 1)
        on_wall = np.flatnonzero((share >= config.within_fraction) & (contact <= config.max_contact_fraction) & ~claimed)
        claimed[on_wall] = True
        members = [np.flatnonzero(in_band & (regions == i)) for i in on_wall]
        groups.extend((m, k) for m in _merge_enclosed([m for m in members if len(m)], frame[3], heights, voxel))
    # One wall can be found as several parallel planes (pieces beside a window): a segment enclosed by a
    # larger one of a parallel wall is part of it (a window's pane found on one, its frame on the other).
    groups.sort(key=lambda g: -len(g[0]))
    kept: list[tuple[np.ndarray, int]] = []
    for member, k in groups:
        for i, (target, t) in enumerate(kept):
            near = np.all(np.abs(depth[t][member]) <= config.band_m)  # the same wall, not the one opposite
            if near and abs(frames[k][0] @ frames[t][0]) >= np.cos(np.radians(20.0)) and len(
                _merge_enclosed([target, member], frames[t][3], heights, voxel)
            ) == 1:
                kept[i] = (np.concatenate([target, member]), t)
                break
        else:
            kept.append((member, k))
    # On a noisy map each wall's own voxels near its plane, found once per wall for all its segments.
    surfaces = {k: np.flatnonzero(wall_like & (np.abs(depth[k]) <= config.band_m)) for k in {k for _, k in kept}} if noisy else {}
    floor = np.flatnonzero(heights <= voxel) if noisy else None  # for every segment's side (``_box``)
    found = [
        _box(piece, frames[k], depth[k], heights, config, voxel, surfaces.get(k), floor)
        for member, k in kept
        for piece in _tall_runs(member, frames[k][3], heights, voxel, config)
    ]
    return [f for f in found if f is not None]


def _columns(member: np.ndarray, u: np.ndarray, heights: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The column (one voxel wide along the wall, counted from the segment's first) of each of the segment's
    voxels, and each column's lowest and highest voxel above the floor (inf and -inf where it holds none)."""
    along = u[member]
    column = np.floor((along - along.min()) / voxel).astype(np.int64)
    n = int(column.max()) + 1
    bottom, top = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(bottom, column, heights[member])
    np.maximum.at(top, column, heights[member])
    return column, bottom, top


def _tall_runs(member: np.ndarray, u: np.ndarray, heights: np.ndarray, voxel: float, config: WallObjectConfig) -> list[np.ndarray]:
    """A segment without the columns (one voxel wide along the wall) that lie wholly below ``min_size_m``
    above the floor, and, if still longer than ``max_length_m``, cut into its runs of tall columns.

    A door's colour runs on into a low strip along the foot of the wall (the floor's edge, a skirting
    board, joined by mixed colours on a noisy map): 1 m beyond a door on ScanNet-class scene 3500 with the
    sensor, 3.2-3.7 m long in all on other scenes (dropped as too long). Beyond the length limit, columns
    lower than ``min_size_m`` are left out and runs of the rest, apart by more than a voxel, are segments
    of their own. Within it the low columns stay unless at the floor (a window's sill is lower than its
    frame but belongs to it).

    With ``step_cut`` the voxels under ``min_size_m`` in a column whose other voxels begin more than two
    voxels higher are left out too: the floor's edge under a window, joined to it by a door beyond (the
    window was boxed to the floor, IoU 0.49, ScanNet-class development seed 3502 with the sensor), and
    every piece is cut where objects of near colours stand side by side (``_cut_at_steps``)."""
    column, _, high = _columns(member, u, heights, voxel)
    h = heights[member]
    keep = high[column] >= config.min_size_m  # columns of the wall's foot only: the floor's edge
    if config.step_cut:  # and the floor's edge under a column that starts higher up (a window over it)
        low = h < config.min_size_m
        low_top = np.full(len(high), -np.inf)
        np.maximum.at(low_top, column[low], h[low])
        rest_bottom = np.full(len(high), np.inf)
        np.minimum.at(rest_bottom, column[~low], h[~low])
        keep &= ~(low & (rest_bottom[column] - low_top[column] > 2.0 * voxel))
    member = member[keep]
    if len(member) == 0:
        return []
    along = u[member]
    if np.ptp(along) <= config.max_length_m:
        return _cut_at_steps(member, u, heights, voxel, config) if config.step_cut else [member]
    column, low, high = _columns(member, u, heights, voxel)
    n = len(low)
    tall = high - low >= config.min_size_m
    runs = np.cumsum(np.r_[True, np.diff(np.flatnonzero(tall)) > 2])  # a one-column gap stays in the run
    run_of_column = np.zeros(n, dtype=np.int64)
    run_of_column[np.flatnonzero(tall)] = runs
    label = run_of_column[column]
    pieces = [member[label == r] for r in np.unique(label[label > 0])]
    return [p for piece in pieces for p in _cut_at_steps(piece, u, heights, voxel, config)] if config.step_cut else pieces


def _cut_at_steps(member: np.ndarray, u: np.ndarray, heights: np.ndarray, voxel: float, config: WallObjectConfig) -> list[np.ndarray]:
    """A segment cut into objects side by side: its columns (one voxel wide along the wall) are split into
    runs where their bottom or top steps by more than ``step_m``; runs at least ``min_size_m`` wide whose
    columns are all that tall are anchors, and every other column joins the nearest anchor. Neighbouring
    anchors are cut apart unless seen columns as wide as ``min_size_m`` join them, when unseen columns that
    wide lie between them or when their columns' lowest bottoms or highest tops differ by more than
    ``step_m``.

    Objects of near colours side by side on a wall are one colour region: a window and the curtains beside
    it (a brown frame and orange curtains within ``colour_step``, ScanNet-class development seed 3900, boxed
    as one 2 m object), a window and a door joined by the floor's edge (seed 3502). Where one ends and the
    next begins, the columns' extent steps: a curtain reaches the floor, the window starts at its sill. What
    does not cut: a door's jambs under its lintel (a white leaf is the wall's colour, so the frame is all
    that is seen; the lintel's columns join the jambs), a door whose foot is hidden behind a chair in some
    columns, a curtain with a strip hidden behind a lamp (the runs either side reach as low and as high as
    each other). Development seeds 3500 and 3900 had three earlier variants split doors at their jambs or at
    a hidden foot and a curtain at a hidden column (docs/PROPOSALS.md, "Twenty-fourth round")."""
    column, bottom, top = _columns(member, u, heights, voxel)
    n = len(bottom)
    seen = np.flatnonzero(np.isfinite(bottom))
    step = (np.abs(np.diff(bottom[seen])) > config.step_m) | (np.abs(np.diff(top[seen])) > config.step_m)
    run = np.r_[0, np.cumsum(step)]
    first, last = seen[np.r_[0, np.flatnonzero(step) + 1]], seen[np.r_[np.flatnonzero(step), len(seen) - 1]]
    tall = np.array([np.all(top[seen[run == r]] - bottom[seen[run == r]] >= config.min_size_m) for r in range(len(first))])
    anchors = np.flatnonzero(((last - first + 1) * voxel >= config.min_size_m) & tall)
    if len(anchors) < 2:
        return [member]
    # Each column to the anchor run nearest to it (distance to the run's span, in columns).
    distance = np.maximum(first[anchors][None] - np.arange(n)[:, None], np.arange(n)[:, None] - last[anchors][None])
    nearest = np.argmin(np.maximum(distance, 0), axis=1)
    extent = np.array([[bottom[nearest == k].min(), top[nearest == k].max()] for k in range(len(anchors))])
    # Between neighbouring anchors: seen columns (a bridge) and unseen ones (a gap, the floor's edge left out).
    between = [np.arange(last[a] + 1, first[b]) for a, b in zip(anchors[:-1], anchors[1:])]
    bridge = np.array([np.isfinite(bottom[c]).sum() for c in between]) * voxel
    gap = np.array([len(c) for c in between]) * voxel - bridge
    # Anchors joined by a bridge as wide as min_size_m are one object's sides (a door's jambs under its lintel);
    # apart by a gap that wide they are two objects; otherwise two when they do not reach as low and as high
    # as each other (a door whose foot is hidden behind a chair in some columns does).
    cut = (bridge < config.min_size_m) & (
        (gap >= config.min_size_m) | (np.abs(np.diff(extent, axis=0)).max(axis=1) > config.step_m)
    )
    if not cut.any():
        return [member]
    owner = np.r_[0, np.cumsum(cut)][nearest]
    return [member[owner[column] == k] for k in range(int(owner.max()) + 1)]


def _profile_front(
    depth: np.ndarray, along: np.ndarray, up: np.ndarray, scatter: float, voxel: float, config: WallObjectConfig,
    fallback: float,
) -> float:
    """The front of a wall object on a noisy map: the largest, over its one-voxel rows (``up``) and columns
    (``along``) of at least ``profile_min_voxels``, of their ``noisy_front_quantile`` depth less ``scatter``;
    ``fallback`` when no row or column has that many.

    ``scatter`` is how far the wall's own voxels around the segment reach *behind* their median at the same
    quantile: nothing stands behind a wall, so that side is the sensor's scatter alone, while the side in front
    holds sills, curtains and anything else of the wall's colour. Taken from the segment's quantile it leaves
    where the surface is, not where its noise reaches: a flat picture 4 cm deep was boxed 9-10 cm deep by the
    segment's quantile alone (IoU 0.33-0.42, ScanNet-class development seed 3901 with the sensor). Rows and
    columns, not the whole segment: a window's sill (15 cm out, one row of voxels) holds a twentieth of the
    segment's voxels, under the quantile, but most of its row (the row read 17-18 cm, seed 3503). The whole
    segment's quantile less the scatter lost every window and door on development seeds (docs/PROPOSALS.md,
    "Seventeenth round"). What stays out of reach: a door's handle (3 cm tall, 12 cm wide), which sets a 9 cm
    deep door's box; doors are boxed 4-7 cm deep (seeds 3503, 3904, 3908)."""
    best = -np.inf
    for position in (along, up):
        cell = np.floor(position / voxel).astype(np.int64)
        order = np.argsort(cell, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(cell[order]) != 0])
        for values in np.split(depth[order], starts[1:]):
            if len(values) >= config.profile_min_voxels:
                best = max(best, float(np.quantile(values, config.noisy_front_quantile)))
    return best - scatter if np.isfinite(best) else fallback


def _merge_enclosed(members: list[np.ndarray], u: np.ndarray, heights: np.ndarray, voxel: float) -> list[np.ndarray]:
    """Regions of one wall merged by enclosure in (u, height): each joins the largest region whose extent
    holds its own (within a voxel). Largest by extent, not by voxels: a door's leaf has more voxels than
    the frame around it."""
    if not members:
        return []
    extent = np.array([[u[m].min(), heights[m].min(), u[m].max(), heights[m].max()] for m in members])
    order = np.argsort(-np.prod(extent[:, 2:] - extent[:, :2], axis=1), kind="stable")
    members, extent = [members[i] for i in order], extent[order]
    lo, hi = extent[:, :2], extent[:, 2:]
    encloses = np.all(lo[:, None] >= lo[None] - voxel, axis=-1) & np.all(hi[:, None] <= hi[None] + voxel, axis=-1)
    encloses &= np.tri(len(members), k=-1, dtype=bool)  # [i, j]: j (wider, earlier) encloses i
    owner = np.where(encloses.any(axis=1), np.argmax(encloses, axis=1), np.arange(len(members)))
    for _ in range(len(members)):  # follow chains to the largest enclosing region
        if np.array_equal(owner[owner], owner):
            break
        owner = owner[owner]
    return [np.concatenate([members[i] for i in np.flatnonzero(owner == j)]) for j in np.unique(owner)]


def _box(
    member: np.ndarray, frame: tuple[np.ndarray, np.ndarray, float, np.ndarray], depth: np.ndarray, heights: np.ndarray,
    config: WallObjectConfig, voxel: float, surface: np.ndarray | None = None, floor: np.ndarray | None = None,
) -> WallObject | None:
    """A segment's box, from the wall plane to its front; None when it is too small or too long.

    With ``surface`` and ``floor`` (on a noisy map: the indices of the wall's own voxels, wall-coloured and
    within ``band_m`` of its plane, and of the floor's voxels) the box reaches from the wall's own surface
    around the segment to ``noisy_front_quantile`` of the segment's depths. A structured-light camera seeing
    a wall from 4-6 m scatters its readings by 3-6 cm, so a picture 4 cm deep is fused as three or four voxel layers and its
    outermost voxel lies at the band's edge (boxes 12-20 cm deep, IoU under 0.3); and one plane fitted
    to a whole wall lies up to 4 cm off the wall's surface in places. A protruding part holding more than
    a tenth of the voxels (a curtain's folds) still sets the front. With ``noisy_profile`` the front is
    read row by row and column by column instead (``_profile_front``).

    The box stands on the side of the plane of the segment's outermost voxel (walls between rooms have two
    faces); on a noisy map, on the side where the floor is (``side_floor_m``, ``side_floor_ratio``), unless
    the segment lies wholly behind the wall's own surface on that side (its ``noisy_front_quantile`` voxel
    short of the wall's median: a recess, or two white boxes 12-17 cm behind the fitted plane in SUN3D
    fragment 1, which a box on the floor's side would have missed altogether). A noisy wall is fused several
    voxels thick and can be fitted as parallel planes inside that layer (three, 9 cm apart, on ScanNet-class
    development seed 4305 with the sensor); there the outermost stray lay behind the plane and the door's box
    was built into the wall (IoU 0.04). Two readings of the side from the segment's own voxels were tried and
    not kept (docs/PROPOSALS.md, "Twenty-fifth to twenty-seventh rounds"): a window's pane, or a black one's
    readings, lie deeper than the wall while its sill stands out."""
    normal, along, offset, u = frame
    u0, u1 = float(u[member].min()), float(u[member].max())
    bottom, top = float(heights[member].min()), float(heights[member].max())
    length, height = u1 - u0, top - bottom
    if len(member) < config.min_voxels or min(length, height) < config.min_size_m or length > config.max_length_m:
        return None
    d = depth[member]
    side = 1.0 if np.abs(d.max()) >= np.abs(d.min()) else -1.0  # walls between rooms have two faces
    out = side * d  # how far each voxel stands out of the wall, on the segment's side
    back, front = 0.0, float(np.max(out))
    if surface is not None:
        near = config.local_wall_m
        su, sh = u[surface], heights[surface]
        around = surface[(su >= u0 - near) & (su <= u1 + near) & (sh >= bottom - near) & (sh <= top + near)]
        floor_depth = depth[floor[(u[floor] >= u0) & (u[floor] <= u1)]]  # the floor along the segment, either side
        far = config.band_m + config.side_floor_m
        ahead = np.count_nonzero((floor_depth > config.band_m) & (floor_depth <= far))
        behind = np.count_nonzero((floor_depth < -config.band_m) & (floor_depth >= -far))
        if max(ahead, behind) >= config.min_voxels and max(ahead, behind) >= config.side_floor_ratio * min(ahead, behind):
            towards = 1.0 if ahead > behind else -1.0
            # Not when the segment lies wholly behind the wall's surface on that side (a recess): its box would
            # hold none of its voxels.
            q = config.noisy_front_quantile
            if len(around) < config.min_voxels or np.quantile(towards * d, q) > np.median(towards * depth[around]):
                side = towards
                out = side * d
        front = float(np.quantile(out, config.noisy_front_quantile))
        if len(around) >= config.min_voxels:
            wall = side * depth[around]
            back = float(np.median(wall))
            if config.noisy_profile:
                scatter = back - float(np.quantile(wall, 1.0 - config.noisy_front_quantile))
                front = _profile_front(out, u[member] - u0, heights[member] - bottom, scatter, voxel, config, front)
    reach = max(front - back, config.min_depth_m)
    centre = along * (u0 + u1) / 2 + normal * (offset + side * (back + reach / 2))
    return WallObject(member, centre, np.array([length, reach, height]), float(np.arctan2(along[1], along[0])), bottom, top)
