"""Class-agnostic 3D object proposals from the fused scene cloud.

The grounding model scores proposals, so its Acc@k can never beat the fraction
of objects that have a proposal at IoU >= k (W2R2.md, ScanRefer protocol).
Indoor structure makes this a geometry problem: ``map`` is z up with the floor
near z = 0, so the floor is the lowest dominant horizontal plane, the ceiling
the highest, and walls are dominant vertical planes at the map's x/y extent.
With those removed, what is left are objects; they are clustered as connected
components of the occupied voxels (26-neighbourhood, a sparse graph).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.scene.voxel_map import pack_voxel_keys, unpack_voxel_keys, voxel_index_valid


@dataclass(frozen=True)
class ProposalConfig:
    """Parameters of :func:`propose_objects` (metres unless named otherwise)."""

    voxel_size: float = 0.05
    # A plane is "dominant" when its histogram bin holds this fraction of the points of the strongest bin.
    plane_min_fraction: float = 0.2
    # Points closer than this to the floor, ceiling or a wall plane belong to that plane.
    plane_margin_m: float = 0.03
    # The floor is searched for this high above the lowest point, walls this far inside the extent.
    plane_search_m: float = 0.5
    # Noisy sensors: a plane is plane_sigma_k robust standard deviations thick, measured on the points
    # within plane_window_m of it (the margin never drops below plane_margin_m).
    plane_sigma_k: float = 3.0
    plane_window_m: float = 0.1
    remove_ceiling: bool = True
    ceiling_min_height_m: float = 1.8
    ceiling_min_extent_m: float = 2.0
    remove_walls: bool = True
    # Clusters with fewer occupied voxels than this are noise; fragments smaller than min_fragment_voxels
    # are dropped even before parts of one object are merged.
    min_cluster_voxels: int = 8
    min_fragment_voxels: int = 3
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
    # Only clusters up to this wide (x or y) are searched for objects standing on them (furniture).
    max_support_m: float = 4.0
    # Boxes are at least this big along every axis (a cluster of coplanar voxel centres is one voxel thick).
    min_box_size_m: float = 0.05


@dataclass(frozen=True)
class Proposal:
    proposal_id: int
    box: Box3D
    n_points: int
    mean_rgb: np.ndarray


@dataclass(frozen=True)
class RoomPlanes:
    """Where the floor, ceiling and walls were found (None: not found)."""

    floor_z: float | None
    ceiling_z: float | None
    wall_x: tuple[float | None, float | None]
    wall_y: tuple[float | None, float | None]
    # Points this close to a plane belong to it: config.plane_margin_m, or wider for a noisy sensor.
    margin: float = 0.03


def _dominant_level(values: np.ndarray, lo: float, hi: float, bin_m: float, min_count: int, pick: str) -> float | None:
    """The lowest (``pick="low"``) or highest dense histogram bin of ``values`` within [lo, hi], refined to
    the median of its points; None when no bin holds ``min_count`` points."""
    inside = values[(values >= lo) & (values <= hi)]
    if len(inside) == 0:
        return None
    edges = np.arange(lo, hi + bin_m, bin_m)
    if len(edges) < 2:
        return None
    counts, edges = np.histogram(inside, bins=edges)
    dense = np.flatnonzero(counts >= max(min_count, 1))
    if len(dense) == 0:
        return None
    # Among the dense bins, the strongest one in the direction asked for: scan from that end and keep
    # the best of the first contiguous run of dense bins.
    order = dense if pick == "low" else dense[::-1]
    run = [order[0]]
    for b in order[1:]:
        if abs(b - run[-1]) > 1:
            break
        run.append(b)
    best = max(run, key=lambda b: counts[b])
    in_bin = inside[(inside >= edges[best]) & (inside <= edges[best + 1])]
    return float(np.median(in_bin))


def find_room_planes(points: np.ndarray, config: ProposalConfig) -> RoomPlanes:
    """Floor, ceiling and wall planes of a z-up room scan (histograms of z, then x and y)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    bin_m = config.plane_margin_m
    n = len(points)

    def level(axis: int, values: np.ndarray, pick: str) -> float | None:
        if pick == "low":
            a, b = lo[axis], lo[axis] + config.plane_search_m
        else:
            a, b = hi[axis] - config.plane_search_m, hi[axis]
        counts_all = np.histogram(values, bins=max(1, int(np.ceil((hi[axis] - lo[axis]) / bin_m))))[0]
        min_count = int(config.plane_min_fraction * counts_all.max()) if n else 0
        return _dominant_level(values, a, b, bin_m, min_count, pick)

    floor_z = level(2, points[:, 2], "low")
    margin = config.plane_margin_m
    if floor_z is not None:
        margin = max(margin, _plane_margin(points[:, 2], floor_z, config))
    walls: list[tuple[float | None, float | None]] = []
    above_floor = points[:, 2] > (floor_z if floor_z is not None else lo[2]) + margin
    for axis in (0, 1):
        if not config.remove_walls:
            walls.append((None, None))
            continue
        values = points[above_floor, axis]
        walls.append((level(axis, values, "low"), level(axis, values, "high")))
        for wall in walls[-1]:
            if wall is not None:
                margin = max(margin, _plane_margin(values, wall, config))
    ceiling_z = None
    if config.remove_ceiling:
        # Without the walls: the tops of the walls in view would otherwise pass for a ceiling.
        inner = ~structure_mask(points, RoomPlanes(None, None, walls[0], walls[1], margin))
        if inner.any():
            ceiling_z = _find_ceiling(points[inner], floor_z, config)
    return RoomPlanes(floor_z, ceiling_z, walls[0], walls[1], margin)


def _plane_margin(values: np.ndarray, level: float, config: ProposalConfig) -> float:
    """How thick a plane at ``level`` is (coordinate ``values`` along its normal): ``plane_sigma_k``
    robust standard deviations (MAD) of the points within ``plane_window_m`` of it, so a noisy
    sensor's floor is removed whole rather than leaving speckle that joins every object into one."""
    near = values[np.abs(values - level) <= config.plane_window_m]
    if len(near) < 10:
        return 0.0
    return float(config.plane_sigma_k * 1.4826 * np.median(np.abs(near - level)))


def _find_ceiling(points: np.ndarray, floor_z: float | None, config: ProposalConfig) -> float | None:
    """The highest horizontal plane, if it is a ceiling: at least ``ceiling_min_height_m`` above the
    floor and ``ceiling_min_extent_m`` wide. A camera at eye height sees little of the ceiling, so its
    density is judged against the points near the top of the map only, not against the floor."""
    z = points[:, 2]
    top = z.max()
    window = z >= top - config.plane_search_m
    bins = np.arange(top - config.plane_search_m, top + config.plane_margin_m, config.plane_margin_m)
    counts, edges = np.histogram(z[window], bins=bins)
    best = int(np.argmax(counts))
    in_bin = window & (z >= edges[best]) & (z <= edges[best + 1])
    ceiling_z = float(np.median(z[in_bin]))
    extent = points[in_bin, :2].max(axis=0) - points[in_bin, :2].min(axis=0)
    base = floor_z if floor_z is not None else z.min()
    if ceiling_z - base < config.ceiling_min_height_m or extent.max() < config.ceiling_min_extent_m:
        return None
    return ceiling_z


def structure_mask(points: np.ndarray, planes: RoomPlanes) -> np.ndarray:
    """True for points on the floor, ceiling or walls (or beyond them)."""
    margin = planes.margin
    mask = np.zeros(len(points), dtype=bool)
    if planes.floor_z is not None:
        mask |= points[:, 2] <= planes.floor_z + margin
    if planes.ceiling_z is not None:
        mask |= points[:, 2] >= planes.ceiling_z - margin
    for axis, (low, high) in ((0, planes.wall_x), (1, planes.wall_y)):
        if low is not None:
            mask |= points[:, axis] <= low + margin
        if high is not None:
            mask |= points[:, axis] >= high - margin
    return mask


# Half of the 26 neighbours of a voxel: each adjacent pair is found once.
_HALF_NEIGHBOURS = np.array(
    [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1) if (dx, dy, dz) > (0, 0, 0)]
)


def cluster_voxels(
    points: np.ndarray, voxel_size: float, features: np.ndarray | None = None, max_feature_step: float = np.inf
) -> np.ndarray:
    """Connected components (26-connectivity) of the voxels occupied by ``points``: a label per point.

    With ``features`` (N, F), two neighbouring voxels are only joined when their mean features differ
    by at most ``max_feature_step`` (Euclidean). The adjacency is found by looking up each voxel's
    neighbours among the sorted voxel keys, so memory grows with the number of occupied voxels, not
    with the cloud's extent.
    """
    keys, inverse = np.unique(pack_voxel_keys(np.floor(points / voxel_size)), return_inverse=True)
    inverse = inverse.reshape(-1)
    cells = unpack_voxel_keys(keys)
    voxel_features = None
    if features is not None:
        counts = np.bincount(inverse, minlength=len(keys))[:, None]
        voxel_features = np.stack(
            [np.bincount(inverse, weights=f, minlength=len(keys)) for f in np.asarray(features, float).T], axis=1
        ) / counts
    rows, cols = [], []
    for offset in _HALF_NEIGHBOURS:
        neighbour = pack_voxel_keys(cells + offset)
        at = np.minimum(np.searchsorted(keys, neighbour), len(keys) - 1)
        hit = keys[at] == neighbour
        row, col = np.flatnonzero(hit), at[hit]
        if voxel_features is not None:
            similar = np.linalg.norm(voxel_features[row] - voxel_features[col], axis=1) <= max_feature_step
            row, col = row[similar], col[similar]
        rows.append(row)
        cols.append(col)
    row, col = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(row), dtype=np.int8), (row, col)), shape=(len(keys), len(keys)))
    _, labels = connected_components(graph, directed=False)
    return labels[inverse]


def propose_objects(points: np.ndarray, colors: np.ndarray | None, config: ProposalConfig = ProposalConfig()) -> list[Proposal]:
    """Object proposals (ids 0..N-1, largest first) from a fused cloud, e.g. the voxel map's centres.

    ``points`` (N, 3) in ``map`` (z up, floor near 0), ``colors`` (N, 3) uint8 or None.
    Steps: remove floor, ceiling and walls; connected components; split objects standing on a
    component's top surface off it; merge parts hidden under an overhang (a lamp's pole under its shade);
    drop tiny clusters; box each cluster, its bottom snapped to the floor or surface it stands on.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"propose_objects points: expected (N, 3), got shape {points.shape}")
    colors = np.full(points.shape, 128, dtype=np.uint8) if colors is None else np.asarray(colors)
    if colors.shape != points.shape:
        raise ValueError(f"propose_objects colors: shape {colors.shape} does not match points {points.shape}")
    valid = voxel_index_valid(points, config.voxel_size)  # finite, and within the voxel key range
    points, colors = points[valid], colors[valid]
    if len(points) < config.min_cluster_voxels:
        return []
    planes = find_room_planes(points, config)
    objects = ~structure_mask(points, planes)
    points, colors = points[objects], colors[objects]
    if len(points) == 0:
        return []
    labels = cluster_voxels(points, config.voxel_size)
    clusters: list[_Cluster] = []
    for member in _split_by_label(labels):
        if len(member) >= config.min_fragment_voxels:
            clusters.extend(split_stacked(points, colors, member, config))
    clusters = merge_overhangs(points, clusters, config.voxel_size)
    snap = config.floor_snap_m + planes.margin - config.plane_margin_m  # the floor took a thicker slice
    proposals = [
        _box_of(points[c.member], colors[c.member], planes.floor_z if c.support_z is None else c.support_z, snap, config)
        for c in clusters
        if len(c.member) >= config.min_cluster_voxels
    ]
    proposals.sort(key=lambda p: -p.n_points)
    return [Proposal(i, p.box, p.n_points, p.mean_rgb) for i, p in enumerate(proposals)]


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


def chromaticity(colors: np.ndarray) -> np.ndarray:
    """(r, g) / (r + g + b): colour without brightness, so the faces of one object, lit differently,
    and its darker parts (legs, a lamp's pole) agree."""
    rgb = np.asarray(colors, dtype=np.float64) + 1.0
    return rgb[:, :2] / rgb.sum(axis=1, keepdims=True)


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


def merge_overhangs(points: np.ndarray, clusters: list[_Cluster], voxel: float) -> list[_Cluster]:
    """Merge a cluster into the one right above it when its footprint hides under that one's
    (a lamp's pole under its shade, a plant's pot under its leaves), and a cluster into a bigger one
    whose box contains it (a table leg): the surfaces that joined them (the shade's or the table
    top's underside) are seldom seen by a camera above them. The price: a small object under a
    table merges into the table."""
    if len(clusters) < 2:
        return clusters
    lo = np.array([np.floor(points[c.member].min(axis=0) / voxel) for c in clusters])
    hi = np.array([np.floor(points[c.member].max(axis=0) / voxel) for c in clusters])
    # [below, upper] pairs, vectorised: the top of one within a voxel of the bottom of the other,
    # and its xy extent inside the other's (one voxel of slack).
    touches = (hi[:, None, 2] + 1 >= lo[None, :, 2]) & (hi[:, None, 2] <= lo[None, :, 2] + 1)
    starts_lower = lo[:, None, 2] < lo[None, :, 2]
    hidden = np.all((lo[:, None, :2] >= lo[None, :, :2] - 1) & (hi[:, None, :2] <= hi[None, :, :2] + 1), axis=-1)
    # A fragment inside another cluster's box (a far table leg, seen under the top that joins it);
    # never what was just split off the surface it stands on.
    inside = np.all((lo[:, None] >= lo[None] - 1) & (hi[:, None] <= hi[None] + 1), axis=-1)
    sizes = np.array([len(c.member) for c in clusters])
    loose = np.array([c.support_z is None for c in clusters])
    fragment = inside & (sizes[:, None] < sizes[None, :]) & loose[:, None]
    below, upper = np.nonzero((touches & starts_lower & hidden) | fragment)
    n = len(clusters)
    graph = coo_matrix((np.ones(len(below), dtype=np.int8), (below, upper)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    merged = []
    for indices in _split_by_label(group):
        supports = [clusters[i].support_z for i in indices if clusters[i].support_z is not None]
        merged.append(
            _Cluster(np.concatenate([clusters[i].member for i in indices]), min(supports) if supports else None)
        )
    return merged


def _box_of(
    points: np.ndarray, colors: np.ndarray, support_z: float | None, snap_m: float, config: ProposalConfig
) -> Proposal:
    lo, hi = points.min(axis=0), points.max(axis=0)
    if support_z is not None and 0 < lo[2] - support_z <= snap_m:
        lo[2] = support_z
    return Proposal(
        proposal_id=-1,
        box=Box3D(center=(lo + hi) / 2, size=np.maximum(hi - lo, config.min_box_size_m)),
        n_points=len(points),
        mean_rgb=colors.mean(axis=0),
    )
