"""Class-agnostic 3D object proposals from the fused scene cloud, for any map yaw and any number of rooms.

The grounding model scores proposals, so its Acc@k can never beat the fraction
of objects that have a proposal at IoU >= k (W2R2.md, ScanRefer protocol).
Steps (each in its own module, each measured in docs/PROPOSALS.md):

1. Voxel graph and normals (``voxel_graph.py``, ``surface_normals.py``); isolated
   voxels (stray returns) take no part in anything.
2. Floor as a plane (``floor_plane.py``): gravity from the horizontal surfaces,
   a few degrees of tilt tolerated and levelled; heights above the floor
   replace z from here on.
3. Walls and ceilings as large planar segments (``structure.py``), in any
   direction, not at the map's bounding edges.
4. The rest into objects (``object_parts.py``): smooth one-colour parts joined
   by support relations, so touching furniture stays apart; then objects
   standing on a surface split off it and fragments hidden under an overhang
   merged (this module).
5. Boxes: gravity-aligned, turned in yaw to the minimum-area rectangle of the
   object's footprint, bottom snapped to the floor or the surface it stands on.

What went wrong on the way (no floor, a tilted map, only structure) comes back
as :class:`ProposalReport` reasons for the node to log; proposals are still made.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull

from w2r2_ros.geometry.boxes import Box3D, min_area_rectangle
from w2r2_ros.scene.chromaticity import chromaticity
from w2r2_ros.scene.floor_plane import FloorConfig, FloorPlane, find_floor, levelling_rotation
from w2r2_ros.scene.object_parts import PartConfig, group_parts, merge_coplanar_parts, split_oversized, split_parts
from w2r2_ros.scene.hidden_backs import HiddenBackConfig, WallView, extend_to_hidden_walls, wall_view
from w2r2_ros.scene.structure import StructureConfig, StructurePlane, find_structure
from w2r2_ros.scene.surface_normals import estimate_normals
from w2r2_ros.scene.voxel_graph import VoxelGraph, mean_by_label, voxel_graph
from w2r2_ros.scene.voxel_map import voxel_index_valid
from w2r2_ros.scene.wall_objects import WallObject, WallObjectConfig, find_wall_objects, wall_coloured


@dataclass(frozen=True)
class ProposalConfig:
    """Parameters of :func:`propose_objects` (metres unless named otherwise)."""

    voxel_size: float = 0.05
    floor: FloorConfig = field(default_factory=FloorConfig)
    structure: StructureConfig = field(default_factory=StructureConfig)
    parts: PartConfig = field(default_factory=PartConfig)
    wall_objects: WallObjectConfig = field(default_factory=WallObjectConfig)
    hidden_backs: HiddenBackConfig = field(default_factory=HiddenBackConfig)
    # Points closer than this to the floor belong to it; a noisy sensor's floor is thicker: plane_sigma_k
    # robust standard deviations of the heights within plane_window_m of it (never below plane_margin_m).
    plane_margin_m: float = 0.03
    plane_sigma_k: float = 3.0
    plane_window_m: float = 0.1
    remove_walls: bool = True
    # Clusters with fewer occupied voxels than this are noise.
    min_cluster_voxels: int = 8
    # A cluster whose bottom lies within this above the floor (or the surface it stands on) is extended
    # down to it (the plane margin cut its lowest centimetres off, and its underside is never seen).
    floor_snap_m: float = 0.08
    # Stacked objects: the z histogram bin that finds a cluster's top surface, the clearance above it
    # from which points belong to what stands on it, and how a part above must sit on the surface:
    # at least on_surface_fraction of its footprint cells over the surface, at most rim_fraction on its rim.
    surface_bin_m: float = 0.02
    surface_clearance_m: float = 0.015
    on_surface_fraction: float = 0.9
    rim_fraction: float = 0.34
    # Neighbouring voxels above a surface belong to different objects when their chromaticity
    # (r, g) / (r + g + b) differs by more than this.
    max_chroma_step: float = 0.05
    # Only clusters up to this wide are searched for objects standing on them (furniture).
    max_support_m: float = 4.0
    # An object resting on furniture (its lowest voxel at least resting_min_m above the floor, the
    # diagonal of its footprint's bounds at most resting_max_m) that holds several chromaticity regions
    # is several objects (a monitor and the box beside it on a desk, touching: their parts, none a
    # surface, joined each other). resting_min_m 0 switches it off.
    resting_min_m: float = 0.3
    resting_max_m: float = 1.0
    # A stand holds up the object above it and joins it (merge_overhangs): a cluster beneath another
    # (its top at most a voxel above the other's bottom and at most stand_gap_m below it), with no more
    # voxels than the other, inside the other's footprint widened by stand_margin_voxels (a monitor's
    # base and neck under its screen; a lamp's base under its shade when the pole was not seen).
    stand_gap_m: float = 0.5
    stand_margin_voxels: float = 2.0
    # Boxes grow by this many voxels beyond the voxel means (0: a voxel map keeps the mean of the
    # points in each voxel, which lies on the surface; a grid of cell centres would want 0.5).
    box_pad_voxels: float = 0.0
    # A box turned square to the walls found wins over the footprint's minimum-area rectangle when its
    # area is within this fraction of the minimum (furniture stands square to its room).
    wall_aligned_tolerance: float = 0.15
    # ... or when it is larger by no more than a strip this many voxels wide along the minimum's
    # perimeter: a footprint is known to about a voxel, so a small object's (a box, a lamp: a few voxels
    # across) has no direction of its own and stands square to the walls.
    wall_aligned_band_voxels: float = 1.0
    # Boxes are at least this big along every axis.
    min_box_size_m: float = 0.05
    # With hit counts (segment_scene's ``hits``): a voxel hit only once does not widen the box of an object
    # whose median voxel was hit at least this often (0: every voxel counts). Around a well-seen object a
    # single reading is a stray (a flying pixel two neighbours confirmed); a sparse map's voxels are all
    # hit once or twice, so none is left out there. 3, not 5: a dark object loses most of its pixels to
    # the sensor's holes (a dark bin's median voxel is hit 3 times in a 40-frame orbit) and its strays
    # widened its box by a voxel on every side (PROPOSALS.md, "Fifth round").
    box_single_hit_median: float = 3.0
    # With hit counts, on a noisy map: each side of a footprint moves in to the outermost voxel read at
    # least box_single_hit_median times, when what lies beyond it (voxels all read fewer times) holds at
    # most box_halo_share of the object's voxels and reaches no further out than the well-read voxels
    # reach across. A noisy sensor's strays (flying pixels at the object's silhouette, read once or twice)
    # ring an object with a sparse halo that widened a chair's box from 0.48 to 0.86 m; a far sofa whose
    # front alone was read well (0.2 m of its 0.86 m depth) keeps its seat and back. Heights are not
    # trimmed (a leg's foot is read seldom). A map is noisy when its floor is: the robust standard
    # deviation of its heights is box_halo_min_floor_sigma_m or more (0: every map with a floor). An ideal
    # sensor leaves no strays, and there a face read seldom (at a grazing angle, or far) is all the trim
    # would find; rendered floors are flat to 0.1 mm, the structured-light model's to 6.4-7.3 mm, two real
    # Kinect-class recordings' to 17 and 21 mm (PROPOSALS.md, "Sixteenth round"). The same bound tells
    # the wall objects' boxes a map is noisy (WallObjectConfig.noisy_front_quantile, "Seventeenth round").
    # box_halo_share 0 switches the trim off.
    box_halo_share: float = 0.1
    box_halo_min_floor_sigma_m: float = 0.002


@dataclass(frozen=True)
class Proposal:
    proposal_id: int
    box: Box3D
    n_points: int
    mean_rgb: np.ndarray


@dataclass(frozen=True)
class ProposalWarning:
    """Why proposals may be wrong: a stable ``kind`` (for rate limiting) and one sentence that names the
    cause and the parameter to change."""

    kind: str  # "no_floor", "tilted_floor" or "only_structure"
    message: str


@dataclass(frozen=True)
class ProposalReport:
    """What the segmentation found, and why it may be wrong (one sentence per reason, naming the
    parameter to change)."""

    floor: FloorPlane | None
    structure: tuple[StructurePlane, ...]
    reasons: tuple[ProposalWarning, ...]
    n_voxels: int
    n_isolated: int


@dataclass(frozen=True)
class ProposalResult:
    proposals: list[Proposal]
    report: ProposalReport
    # Per input point: the index of its proposal in ``proposals``, -1 for floor, structure, noise and
    # clusters too small to propose (what each proposal is made of, for pictures and tests).
    point_labels: np.ndarray


def _floor_sigma(heights: np.ndarray, config: ProposalConfig) -> float | None:
    """The floor's noise: the robust standard deviation (MAD) of the heights within ``plane_window_m`` of
    it, or None with too few of them."""
    near = heights[np.abs(heights) <= config.plane_window_m]
    if len(near) < 10:
        return None
    return float(1.4826 * np.median(np.abs(near)))


def segment_scene(
    points: np.ndarray, colors: np.ndarray | None, config: ProposalConfig = ProposalConfig(), hits: np.ndarray | None = None
) -> ProposalResult:
    """Object proposals (ids 0..N-1, largest first) and a report, from a fused cloud in ``map``.

    ``points`` (N, 3) (e.g. the voxel map's centres), ``colors`` (N, 3) uint8 or None, ``hits`` (N,) how many
    readings each point (voxel) holds, or None (boxes then take every voxel; see ``box_single_hit_median``).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"propose_objects points: expected (N, 3), got shape {points.shape}")
    colors = np.full(points.shape, 128, dtype=np.uint8) if colors is None else np.asarray(colors)
    if colors.shape != points.shape:
        raise ValueError(f"propose_objects colors: shape {colors.shape} does not match points {points.shape}")
    if hits is not None and len(hits) != len(points):
        raise ValueError(f"propose_objects hits: {len(hits)} for {len(points)} points")
    valid = voxel_index_valid(points, config.voxel_size)  # finite, and within the voxel key range
    points, colors = points[valid], colors[valid]
    empty = ProposalReport(None, (), (), 0, 0)
    if len(points) < config.min_cluster_voxels:
        return ProposalResult([], empty, np.full(len(valid), -1))
    voxel = config.voxel_size
    graph = voxel_graph(points, voxel)
    n = graph.n_voxels
    centres = mean_by_label(graph.inverse, points, n)
    rgb = mean_by_label(graph.inverse, colors, n)
    voxel_hits = None if hits is None else np.bincount(graph.inverse, weights=np.asarray(hits, float)[valid], minlength=n)
    surface = estimate_normals(centres, graph)
    usable = ~surface.isolated
    reasons: list[ProposalWarning] = []

    floor = find_floor(centres, surface.normals, usable, config.floor)
    if floor is None:
        base = float(np.percentile(centres[usable, 2], 1)) if usable.any() else float(centres[:, 2].min())
        reasons.append(ProposalWarning("no_floor",
            f"no floor plane found (no horizontal level of {config.floor.min_voxels} voxels or more): objects are "
            f"measured from the lowest points at z = {base:.2f} m; if the floor is in view, lower "
            f"proposals.floor.min_voxels, or check that gravity is along -z of the map frame"
        ))
        floor_plane = FloorPlane(np.array([0.0, 0.0, 1.0]), base, 0)
    else:
        floor_plane = floor
        if floor.tilt_deg > config.floor.max_tilt_deg:
            reasons.append(ProposalWarning("tilted_floor",
                f"the floor is tilted {floor.tilt_deg:.1f} deg from the map's x-y plane (more than "
                f"proposals.floor.max_tilt_deg = {config.floor.max_tilt_deg}): gravity is not along -z of the map "
                f"frame (a tilted camera pose?); proposals are levelled on the floor found"
            ))
    rotation = levelling_rotation(floor_plane.normal)
    level = centres @ rotation.T
    normals = surface.normals @ rotation.T
    heights = level[:, 2] - floor_plane.offset
    # How thick the floor is: plane_sigma_k times its noise, so a noisy sensor's floor is removed whole
    # rather than leaving speckle that joins every object into one.
    floor_sigma = _floor_sigma(heights[usable & (np.abs(normals[:, 2]) > 0.9)], config) if floor is not None else None
    margin = 0.0 if floor is None else max(config.plane_margin_m, config.plane_sigma_k * (floor_sigma or 0.0))
    noisy = floor_sigma is not None and floor_sigma >= config.box_halo_min_floor_sigma_m
    keep = usable & (heights > margin)

    planes: list[StructurePlane] = []
    walled: list[WallObject] = []
    if config.remove_walls and keep.any():
        planes, taken = find_structure(heights, level, normals, graph, keep, config.structure)
        walls = [p for p in planes if p.kind == "wall" and p.span is not None]
        # One colour test per wall serves both: the wall objects leave out what looks like any wall, and
        # what looks like a long wall beyond its slab is a remnant.
        coloured = wall_coloured(walls, level, heights, rgb, keep, voxel, config.wall_objects)
        wall_like, long_wall_like = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        for plane, mask in zip(walls, coloured):
            wall_like |= mask
            if plane.extent_m[0] >= config.parts.max_object_m:
                long_wall_like |= mask
        walled = find_wall_objects(walls, level, heights, rgb, graph, keep.copy(), wall_like, voxel, config.wall_objects, noisy)
        left = keep & ~taken
        keep &= ~(taken | _wall_remnants(long_wall_like & left, left, rgb, graph, config))
    on_walls = np.zeros(n, dtype=bool)
    for wall_object in walled:
        on_walls[wall_object.member] = True
    if not (keep & ~on_walls).any() and not walled:
        if len(planes) > 0 or floor is not None:
            reasons.append(ProposalWarning("only_structure",
                "the map holds only floor and wall/ceiling planes, no objects yet; if objects are in view, raise "
                "proposals.structure.wall_min_length_m / wall_min_height_m"
            ))
        report = ProposalReport(floor, tuple(planes), tuple(reasons), n, int((~usable).sum()))
        return ProposalResult([], report, np.full(len(valid), -1))

    index = np.flatnonzero(keep)
    sub = graph.subgraph(keep)
    levelled = np.column_stack([level[index, :2], heights[index]])  # x, y levelled; z = height above the floor
    parts = split_parts(normals[index], surface.curvature[index], rgb[index], sub, config.parts)
    parts = merge_coplanar_parts(parts, level[index], normals[index], rgb[index], sub, voxel, config.parts)
    objects = group_parts(parts, heights[index], normals[index], rgb[index], sub, voxel, config.parts)
    objects = split_oversized(objects, parts, levelled[:, :2], sub, config.parts)
    clusters: list[_Cluster] = []
    kept_rgb = rgb[index]
    for member in _split_by_label(objects) if len(index) else []:
        for piece in split_resting(levelled, kept_rgb, member, config):
            clusters.extend(split_stacked(levelled, kept_rgb, piece, config))
    clusters = merge_overhangs(levelled, clusters, config)
    # Wall objects leave the objects they were segmented with only now, so the object pipeline (its
    # curvature bound is a quantile of the voxels it sees) splits the rest of the room as without them.
    clusters = [_Cluster(c.member[~on_walls[index[c.member]]], c.support_z) for c in clusters]
    snap = config.floor_snap_m + max(margin - config.plane_margin_m, 0.0)  # the floor took a thicker slice
    clusters = sorted((c for c in clusters if len(c.member) >= config.min_cluster_voxels), key=lambda c: -len(c.member))
    wall_yaws = np.array([np.arctan2(p.normal[1], p.normal[0]) for p in planes if p.kind == "wall"])
    views = [_wall_view(p, level, heights, usable, config.hidden_backs)
             for p in planes if p.kind == "wall" and p.span is not None] if config.hidden_backs.enabled else []
    made = [
        (_box_of(levelled[c.member], rgb[index][c.member], 0.0 if c.support_z is None else c.support_z, snap, rotation,
                 floor_plane.offset, wall_yaws, config, None if voxel_hits is None else voxel_hits[index[c.member]], noisy,
                 views),
         index[c.member])
        for c in clusters
    ] + [(_wall_box(w, rgb[w.member], snap, rotation, floor_plane.offset), w.member) for w in walled]
    made.sort(key=lambda pair: -pair[0].n_points)
    proposals = [p for p, _ in made]
    voxel_labels = np.full(n, -1)
    for i, (_, member) in enumerate(made):
        voxel_labels[member] = i
    point_labels = np.full(len(valid), -1)
    point_labels[valid] = voxel_labels[graph.inverse]
    report = ProposalReport(floor, tuple(planes), tuple(reasons), n, int((~usable).sum()))
    return ProposalResult([Proposal(i, p.box, p.n_points, p.mean_rgb) for i, p in enumerate(proposals)], report, point_labels)


def _wall_remnants(near: np.ndarray, left: np.ndarray, rgb: np.ndarray, graph: VoxelGraph, config: ProposalConfig) -> np.ndarray:
    """What a wall's slab left of it: of the voxels ``near`` (a long wall's colour just in front of it:
    ``wall_objects.wall_coloured`` of the walls of ``parts.max_object_m`` or more, among the voxels ``left``
    after the slabs), those in a colour region of ``left`` that lies mostly there.

    A noisy camera's far wall is thicker than the slab taken with its plane (the margin is capped at
    6 cm; the Kinect's sigma is 2.6 cm at 4 m), and what is left of it joined the furniture against it.
    A region of the wall's colour that reaches out of that zone is furniture of the wall's colour (a
    white chair against a white wall) and stays whole; a wardrobe's front, tall enough to be taken for a
    wall, is shorter than the length asked.
    """
    if not near.any():
        return near
    colours = np.asarray(rgb, dtype=np.float64) / 255.0
    r, c = graph.rows, graph.cols
    same = left[r] & left[c] & (np.linalg.norm(colours[r] - colours[c], axis=1) <= config.wall_objects.colour_step)
    region = graph.components(same)
    share = np.bincount(region[near], minlength=graph.n_voxels) / np.maximum(np.bincount(region[left], minlength=graph.n_voxels), 1)
    return near & (share[region] >= 0.5)


def propose_objects(points: np.ndarray, colors: np.ndarray | None, config: ProposalConfig = ProposalConfig()) -> list[Proposal]:
    """Object proposals (ids 0..N-1, largest first) from a fused cloud; :func:`segment_scene` without the report."""
    return segment_scene(points, colors, config).proposals


def cluster_voxels(
    points: np.ndarray, voxel_size: float, features: np.ndarray | None = None, max_feature_step: float = np.inf
) -> np.ndarray:
    """Connected components (26-connectivity) of the voxels occupied by ``points``: a label per point.

    With ``features`` (N, F), two neighbouring voxels are only joined when their mean features differ
    by at most ``max_feature_step`` (Euclidean).
    """
    graph = voxel_graph(points, voxel_size)
    keep = None
    if features is not None:
        voxel_features = mean_by_label(graph.inverse, features, graph.n_voxels)
        keep = np.linalg.norm(voxel_features[graph.rows] - voxel_features[graph.cols], axis=1) <= max_feature_step
    return graph.components(keep)[graph.inverse]


@dataclass
class _Cluster:
    member: np.ndarray  # indices into the object points
    support_z: float | None = None  # the surface it stands on, when split off a supporting object


def _split_by_label(labels: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return np.split(order, bounds)


def _cells(xy_index: np.ndarray, origin: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    grid = np.zeros(shape, dtype=bool)
    grid[xy_index[:, 0] - origin[0], xy_index[:, 1] - origin[1]] = True
    return grid


def _convex_fill(cells: np.ndarray) -> np.ndarray:
    """The cells inside the convex hull of the occupied ones: a surface with the shadows that the
    objects on it cast (seen from one side, the shadow reaches the rim) filled in."""
    occupied = np.argwhere(cells)
    if len(occupied) < 3 or np.linalg.matrix_rank(occupied - occupied[0]) < 2:
        return cells
    hull = ConvexHull(occupied)
    grid = np.argwhere(np.ones_like(cells))
    # Inside every facet's half-plane (normal . x + offset <= 0).
    inside = np.all(grid @ hull.equations[:, :2].T + hull.equations[:, 2] <= 1e-6, axis=1)
    filled = np.zeros_like(cells)
    filled[grid[inside, 0], grid[inside, 1]] = True
    return filled | cells


def split_stacked(
    points: np.ndarray, colors: np.ndarray, member: np.ndarray, config: ProposalConfig
) -> list[_Cluster]:
    """Split the objects standing on a cluster's dominant horizontal surface off it (a monitor on a table).

    The surface is the strongest peak of the cluster's z histogram (a table top seen from above is a
    plane). The parts above it are separate objects when their footprint lies inside the surface's
    footprint, away from its rim; parts rising from the rim (a chair's back, a sofa's arms, a headboard)
    stay: they are the same object. A part whose footprint overhangs the surface (a lamp's shade over its
    base) is not standing on it either.
    """
    p = points[member]
    voxel = config.voxel_size
    bin_m = config.surface_bin_m
    z = p[:, 2]
    extent = p.max(axis=0) - p.min(axis=0)
    if len(p) < 2 * config.min_cluster_voxels or extent[2] < 2 * voxel or extent[:2].max() > config.max_support_m:
        return [_Cluster(member)]
    counts, edges = np.histogram(z, bins=np.arange(z.min(), z.max() + 2 * bin_m, bin_m))
    peak = int(np.argmax(counts))
    on_surface = (z >= edges[peak]) & (z < edges[peak + 1])
    surface_z = float(np.median(z[on_surface]))
    above = z > surface_z + config.surface_clearance_m
    if not above.any():
        return [_Cluster(member)]
    xy = np.floor(p[:, :2] / voxel).astype(np.int64)
    origin = xy.min(axis=0) - 1
    shape = tuple(xy.max(axis=0) - origin + 2)
    surface = _convex_fill(_cells(xy[on_surface], origin, shape))
    interior = ndimage.binary_erosion(surface, structure=np.ones((3, 3), dtype=bool))
    above_index = np.flatnonzero(above)
    split: list[_Cluster] = []
    stays = np.ones(len(p), dtype=bool)
    for piece in _pieces_by_colour(p[above], colors[member[above_index]], config):
        if len(piece) < config.min_cluster_voxels:
            continue
        footprint = _cells(xy[above_index[piece]], origin, shape)
        n = footprint.sum()
        on_top = (footprint & surface).sum() >= config.on_surface_fraction * n
        off_rim = (footprint & ~interior).sum() <= config.rim_fraction * n
        if on_top and off_rim:
            split.append(_Cluster(member[above_index[piece]], support_z=surface_z))
            stays[above_index[piece]] = False
    return [_Cluster(member[stays])] + split


def split_resting(points: np.ndarray, colors: np.ndarray, member: np.ndarray, config: ProposalConfig) -> list[np.ndarray]:
    """An object resting on furniture, split into its connected pieces of one chromaticity (as what stands
    on a surface in :func:`split_stacked`): small objects side by side on a desk touch, and the parts of
    each (no surface among them) joined the others'. ``points`` are levelled (z = height above the floor)."""
    p = points[member]
    extent = p[:, :2].max(axis=0) - p[:, :2].min(axis=0)
    if config.resting_min_m <= 0 or p[:, 2].min() < config.resting_min_m or np.hypot(*extent) > config.resting_max_m:
        return [member]
    return [member[piece] for piece in _pieces_by_colour(p, colors[member], config)]


def _pieces_by_colour(points: np.ndarray, colors: np.ndarray, config: ProposalConfig) -> list[np.ndarray]:
    """Connected pieces of what stands on a surface; a piece whose colours form several regions (a
    plant beside a monitor, closer than a voxel) is split into them. Colour fragments too small to be
    an object rejoin the largest region of their piece."""
    pieces = []
    for piece in _split_by_label(cluster_voxels(points, config.voxel_size)):
        labels = cluster_voxels(points[piece], config.voxel_size, chromaticity(colors[piece]), config.max_chroma_step)
        regions = sorted(_split_by_label(labels), key=len, reverse=True)
        big = [r for r in regions if len(r) >= config.min_cluster_voxels]
        if len(big) < 2:
            pieces.append(piece)
            continue
        small = [r for r in regions if len(r) < config.min_cluster_voxels]
        big[0] = np.concatenate([big[0]] + small)
        pieces.extend(piece[r] for r in big)
    return pieces


def merge_overhangs(points: np.ndarray, clusters: list[_Cluster], config: ProposalConfig, max_fragment_share: float = 0.25) -> list[_Cluster]:
    """Merge a cluster into the one right above it when its footprint hides under that one's
    (a lamp's pole under its shade, a plant's pot under its leaves), a smaller cluster into one
    whose box contains it (a table leg), and a small one anywhere beneath another's footprint (the
    pieces of a thin pole a low-resolution camera sees with gaps): the surfaces that joined them (the
    shade's or the table top's underside) are seldom seen by a camera above them. The price: a small object under a
    table merges into the table. Footprints are the clusters' minimum-area rectangles (turned with
    the furniture, so a turned room does not widen them), a container is at most
    ``config.max_support_m`` wide (a leftover strip of wall holds everything in its axis-aligned box),
    and a contained fragment has at most ``max_fragment_share`` of its container's voxels (a leg, not
    a chair pushed under a table).

    A *stand* holds up what floats above it: a cluster with no more voxels than an object above it
    (one of ``min_cluster_voxels`` or more: two specks of a noisy map are no object), beneath it within
    ``stand_gap_m`` and inside its footprint widened by ``stand_margin_voxels``, joins it. A monitor's
    screen is 4 cm thick and its base 16 cm deep, so the one-voxel margin of the rules above left the
    base and neck a proposal of their own; a desk lamp's pole is one voxel wide and mostly isolated,
    which leaves its base and shade apart by the pole's length. The price: a small object right under
    a floating one (a box on a desk under a wall cabinet) joins it.
    """
    if len(clusters) < 2:
        return clusters
    n = len(clusters)
    sizes = np.array([len(c.member) for c in clusters])
    loose = np.array([c.support_z is None for c in clusters])
    lo = np.array([points[c.member].min(axis=0) for c in clusters])
    hi = np.array([points[c.member].max(axis=0) for c in clusters])
    z_lo, z_hi = lo[:, 2], hi[:, 2]
    voxel, max_container_m = config.voxel_size, config.max_support_m
    stand_gap, stand_margin = config.stand_gap_m, max(config.stand_margin_voxels, 1.0) * voxel
    # Only pairs whose axis-aligned footprints meet are looked at (a noisy map has thousands of specks).
    meets = np.all((lo[:, None, :2] <= hi[None, :, :2] + stand_margin) & (lo[None, :, :2] <= hi[:, None, :2] + stand_margin), axis=-1)
    np.fill_diagonal(meets, False)
    containers = np.flatnonzero(meets.any(axis=0) & (np.max(hi[:, :2] - lo[:, :2], axis=1) <= max_container_m))
    boxes = {j: _footprint_box(points[clusters[j].member]) for j in containers}
    # For each cluster, the one it merges into: the cluster it hangs right under, else the smallest
    # one that contains it (a chair's leg under a table top belongs to the chair, not to both).
    choice: dict[int, tuple[int, int]] = {}
    choice_target: dict[int, int] = {}
    for j, (centre, size, yaw) in boxes.items():
        if size.max() > max_container_m:
            continue
        c, s = np.cos(yaw), np.sin(yaw)
        for i in np.flatnonzero(meets[:, j]):
            if sizes[i] >= sizes[j] and not z_lo[i] < z_lo[j]:
                continue
            rel = points[clusters[i].member, :2] - centre
            local = np.abs(np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], axis=1))
            inside = np.all(local <= size / 2 + voxel)
            held = (config.min_cluster_voxels <= sizes[j] >= sizes[i] and z_lo[j] - stand_gap <= z_hi[i] <= z_lo[j] + voxel
                    and np.all(local <= size / 2 + stand_margin))
            if not (inside or held):
                continue
            hangs = inside and z_lo[i] < z_lo[j] and abs(z_hi[i] - z_lo[j]) <= voxel
            small = inside and loose[i] and sizes[i] <= max_fragment_share * sizes[j]
            contained = small and z_lo[i] >= z_lo[j] - voxel and z_hi[i] <= z_hi[j] + voxel
            beneath = small and z_hi[i] <= z_lo[j] + voxel  # a piece of a lamp's pole seen in pieces
            if hangs or contained or beneath or held:
                rank = (0 if hangs else 1 if contained else 2 if beneath else 3, int(sizes[j]))
                if i not in choice or rank < choice[i]:
                    choice[i] = rank
                    choice_target[i] = j
    below = list(choice_target)
    upper = [choice_target[i] for i in below]
    graph = coo_matrix((np.ones(len(below), dtype=np.int8), (below, upper)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    merged = []
    for indices in _split_by_label(group):
        supports = [clusters[i].support_z for i in indices if clusters[i].support_z is not None]
        merged.append(
            _Cluster(np.concatenate([clusters[i].member for i in indices]), min(supports) if supports else None)
        )
    return merged


def _footprint_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    return min_area_rectangle(points[:, :2])


def _box_of(
    points: np.ndarray,
    colors: np.ndarray,
    support_z: float,
    snap_m: float,
    rotation: np.ndarray,
    floor_offset: float,
    wall_yaws: np.ndarray,
    config: ProposalConfig,
    hits: np.ndarray | None = None,
    noisy: bool = False,
    walls: list[WallView] | None = None,
) -> Proposal:
    """The gravity-aligned box of an object's levelled voxels (x, y, height), turned in yaw to the
    minimum-area rectangle of their footprint (square to the walls when nearly as small), back in ``map``.
    With ``hits``, single-hit voxels of a well-seen object are left out of the extents (``box_single_hit_median``),
    and on a ``noisy`` map a sparse halo of voxels read seldom is trimmed off the footprint (``box_halo_share``).
    A box on the floor seen as its front only reaches back to a wall of ``walls`` it hides (``hidden_backs.py``)."""
    pad = config.box_pad_voxels * config.voxel_size
    n_points, mean_rgb = len(points), colors.mean(axis=0)
    if hits is not None and config.box_single_hit_median > 0 and np.median(hits) >= config.box_single_hit_median:
        repeated = hits > 1
        if repeated.sum() >= 3:
            points, hits = points[repeated], hits[repeated]
    centre_xy, size_xy, yaw = min_area_rectangle(
        points[:, :2], wall_yaws, config.wall_aligned_tolerance, config.wall_aligned_band_voxels * config.voxel_size
    )
    well_read = None if hits is None else hits >= config.box_single_hit_median
    if noisy and config.box_halo_share > 0 and well_read is not None and well_read.any():
        centre_xy, size_xy = _without_halo(points[:, :2], well_read, centre_xy, yaw, config.box_halo_share)
    lo, hi = points[:, 2].min() - pad, points[:, 2].max() + pad
    if 0 < lo - support_z <= snap_m:
        lo = support_z
    if walls and support_z == 0.0 and lo <= 0.0:  # standing on the floor
        centre_xy, size_xy = extend_to_hidden_walls(centre_xy, size_xy, yaw, lo, hi, walls, config.hidden_backs)
    size = np.maximum(np.r_[size_xy + 2 * pad, hi - lo], config.min_box_size_m)
    return Proposal(-1, _level_box_in_map(centre_xy, size, yaw, lo, hi, rotation, floor_offset), n_points, mean_rgb)


def _wall_view(plane: StructurePlane, level: np.ndarray, heights: np.ndarray, usable: np.ndarray, config: HiddenBackConfig) -> WallView:
    """``hidden_backs.WallView`` of a wall plane from the usable voxels within its margin."""
    on = usable & (np.abs(level @ plane.normal - plane.offset) <= plane.margin)
    return wall_view(plane, level[on, :2], heights[on], config.cell_m)


def _without_halo(xy: np.ndarray, well_read: np.ndarray, centre: np.ndarray, yaw: float, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The rectangle (``centre``, turned by ``yaw``) with each side moved in to the outermost ``well_read``
    point along its axis when the points beyond it are at most ``share`` of all and reach out no further
    than the well-read points span along that axis (at least one is well read); returns centre and size."""
    axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
    local = (xy - centre) @ axes.T
    limit = share * len(xy)
    lo, hi = local.min(axis=0), local.max(axis=0)
    core_lo, core_hi = local[well_read].min(axis=0), local[well_read].max(axis=0)
    core = core_hi - core_lo
    lo = np.where(((local < core_lo).sum(axis=0) <= limit) & (core_lo - lo <= core), core_lo, lo)
    hi = np.where(((local > core_hi).sum(axis=0) <= limit) & (hi - core_hi <= core), core_hi, hi)
    return centre + ((lo + hi) / 2) @ axes, hi - lo


def _wall_box(wall_object: WallObject, colors: np.ndarray, snap_m: float, rotation: np.ndarray, floor_offset: float) -> Proposal:
    """A wall object's box (turned with its wall, from the wall plane to its front) in ``map``; a bottom
    within ``snap_m`` of the floor reaches it (a door)."""
    lo, hi = wall_object.bottom, wall_object.top
    if lo <= snap_m:
        lo = 0.0
    size = np.r_[wall_object.size[:2], hi - lo]
    box = _level_box_in_map(wall_object.center_xy, size, wall_object.yaw, lo, hi, rotation, floor_offset)
    return Proposal(-1, box, len(wall_object.member), colors.mean(axis=0))


def _level_box_in_map(
    centre_xy: np.ndarray, size: np.ndarray, yaw: float, lo: float, hi: float, rotation: np.ndarray, floor_offset: float
) -> Box3D:
    """A box of the levelled frame (footprint centre and yaw, heights ``lo``..``hi`` above the floor) in ``map``."""
    centre = rotation.T @ np.r_[centre_xy, (lo + hi) / 2 + floor_offset]
    axis = rotation.T @ np.array([np.cos(yaw), np.sin(yaw), 0.0])
    return Box3D(center=centre, size=size, yaw=float(np.arctan2(axis[1], axis[0])))
