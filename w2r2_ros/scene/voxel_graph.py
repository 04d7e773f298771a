"""The occupied voxels of a cloud as a graph: one node per voxel, an edge per pair of 26-neighbours.

Every segmentation step (floor, walls, object parts, objects) works on this
graph: connected components with an edge test are region growing, and the edges
between two segments are where they touch. Neighbours are found by looking up
each voxel's 13 "forward" neighbour keys among the sorted keys, so memory grows
with the occupied voxels, not with the cloud's extent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from w2r2_ros.scene.voxel_map import pack_voxel_keys, unpack_voxel_keys

# Half of the 26 neighbours of a voxel: each adjacent pair is found once.
_HALF_NEIGHBOURS = np.array(
    [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1) if (dx, dy, dz) > (0, 0, 0)]
)


@dataclass(frozen=True)
class VoxelGraph:
    """Voxels (one per occupied cell, points averaged) and their 26-neighbour edges ``(rows, cols)``."""

    cells: np.ndarray  # (V, 3) int64 voxel indices
    inverse: np.ndarray  # (N,) voxel of each input point
    rows: np.ndarray  # (E,) edge ends, rows < cols not guaranteed
    cols: np.ndarray

    @property
    def n_voxels(self) -> int:
        return len(self.cells)

    def components(self, keep: np.ndarray | None = None, n: int | None = None) -> np.ndarray:
        """Connected components (a label per voxel) over the edges where ``keep`` is True (all without)."""
        rows, cols = (self.rows, self.cols) if keep is None else (self.rows[keep], self.cols[keep])
        return connected_components_of(rows, cols, self.n_voxels if n is None else n)

    def subgraph(self, keep: np.ndarray) -> "VoxelGraph":
        """The graph of the voxels where ``keep`` is True, renumbered in order (``inverse`` is not kept)."""
        new_index = np.cumsum(keep) - 1
        both = keep[self.rows] & keep[self.cols]
        return VoxelGraph(self.cells[keep], np.zeros(0, np.int64), new_index[self.rows[both]], new_index[self.cols[both]])

    def degree(self) -> np.ndarray:
        return np.bincount(self.rows, minlength=self.n_voxels) + np.bincount(self.cols, minlength=self.n_voxels)


def connected_components_of(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """Connected components of the undirected graph with ``n`` nodes and edges ``(rows, cols)``."""
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def voxel_graph(points: np.ndarray, voxel_size: float) -> VoxelGraph:
    """The voxel graph of ``points`` (N, 3): points in one cell share a node (``inverse``)."""
    keys, inverse = np.unique(pack_voxel_keys(np.floor(points / voxel_size)), return_inverse=True)
    cells = unpack_voxel_keys(keys)
    rows, cols = [], []
    for offset in _HALF_NEIGHBOURS:
        neighbour = pack_voxel_keys(cells + offset)
        at = np.minimum(np.searchsorted(keys, neighbour), len(keys) - 1)
        hit = keys[at] == neighbour
        rows.append(np.flatnonzero(hit))
        cols.append(at[hit])
    return VoxelGraph(cells, inverse.reshape(-1), np.concatenate(rows), np.concatenate(cols))


def mean_by_label(labels: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-label means of (N, F) ``values`` (labels 0..n-1); rows of empty labels are 0."""
    counts = np.maximum(np.bincount(labels, minlength=n), 1)[:, None]
    values = np.asarray(values, dtype=np.float64).reshape(len(labels), -1)
    sums = np.stack([np.bincount(labels, weights=v, minlength=n) for v in values.T], axis=1)
    return sums / counts


def grow_into(labels: np.ndarray, labelled: np.ndarray, graph: VoxelGraph, rounds: int = 4, keep: np.ndarray | None = None) -> np.ndarray:
    """Give unlabelled voxels the label of a labelled neighbour, ``rounds`` rings deep, along the edges
    where ``keep`` is True (all without): the edge and corner voxels that region growing left out join
    a segment beside them; what is still unlabelled after that becomes components of its own."""
    labels = labels.copy()
    labelled = labelled.copy()
    r, c = graph.rows, graph.cols
    if keep is not None:
        r, c = r[keep], c[keep]
    for _ in range(rounds):
        into_c = labelled[r] & ~labelled[c]
        into_r = labelled[c] & ~labelled[r]
        if not (into_c.any() or into_r.any()):
            break
        labels[c[into_c]] = labels[r[into_c]]
        labels[r[into_r]] = labels[c[into_r]]
        labelled[c[into_c]] = True
        labelled[r[into_r]] = True
    if not labelled.all():
        rest = connected_components_of(r[~labelled[r] & ~labelled[c]], c[~labelled[r] & ~labelled[c]], graph.n_voxels)
        labels[~labelled] = labels.max(initial=-1) + 1 + rest[~labelled]
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(-1)
