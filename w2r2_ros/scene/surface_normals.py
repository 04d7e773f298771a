"""Surface normals of a voxel cloud by local PCA, and which voxels are isolated.

A fused map is a set of voxel centres without a mesh; the normal of a voxel is
the direction of least variance of the voxels around it (the smallest
eigenvector of their covariance). The neighbourhood is the voxel graph's
26-neighbourhood grown ``rings`` times (rings=2: a 5x5x5 block), summed with
sparse matrix products, so the cost is linear in the voxels with no tree search.
Floor, walls and object parts are all told apart by normals, so they are
computed once per update. A voxel with fewer than ``min_neighbours`` direct
neighbours is *isolated*: a stray depth return (a flying pixel, a reflection,
one bad point at z = -2 m); every later step ignores it, which is what keeps a
handful of outliers from moving the floor or joining objects.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, identity

from w2r2_ros.scene.voxel_graph import VoxelGraph


@dataclass(frozen=True)
class SurfaceNormals:
    normals: np.ndarray  # (V, 3) unit, z >= 0: a sign is arbitrary without the cameras' viewpoints
    isolated: np.ndarray  # (V,) bool
    # Surface variation lambda_min / (lambda_0 + lambda_1 + lambda_2) of the neighbourhood (Pauly et al.
    # 2002): ~0 on a plane, up to 1/3 where surfaces meet; edges and corners are where segments end.
    curvature: np.ndarray  # (V,)


def estimate_normals(centres: np.ndarray, graph: VoxelGraph, rings: int = 2, min_neighbours: int = 3) -> SurfaceNormals:
    """Normals of the voxels of ``graph`` (``centres`` (V, 3), one per voxel).

    Normals are oriented z-up; the floor finder wants them so, and every other consumer compares
    directions up to sign.
    """
    n = graph.n_voxels
    normals = np.zeros((n, 3))
    normals[:, 2] = 1.0
    isolated = graph.degree() < min_neighbours
    curvature = np.zeros(n)
    if n == 0:
        return SurfaceNormals(normals, isolated, curvature)
    adjacency = coo_matrix(
        (np.ones(2 * len(graph.rows)), (np.r_[graph.rows, graph.cols], np.r_[graph.cols, graph.rows])), shape=(n, n)
    ).tocsr()
    reach = identity(n, format="csr") + adjacency
    block = reach
    for _ in range(rings - 1):
        block = block @ reach
    block.data[:] = 1.0  # membership, not path counts
    origin = centres.mean(axis=0)
    p = centres - origin  # well-conditioned sums far from the map origin
    count = np.asarray(block.sum(axis=1)).ravel()
    mean = (block @ p) / count[:, None]
    outer = (p[:, :, None] * p[:, None, :]).reshape(n, 9)
    second = (block @ outer).reshape(n, 3, 3) / count[:, None, None]
    covariance = second - mean[:, :, None] * mean[:, None, :]
    ok = count >= 3
    if ok.any():
        values, vectors = np.linalg.eigh(covariance[ok])
        normals[ok] = vectors[:, :, 0]
        values = np.clip(values, 0.0, None)
        curvature[ok] = values[:, 0] / np.maximum(values.sum(axis=1), 1e-12)
    normals *= np.where(normals[:, 2] < 0, -1.0, 1.0)[:, None]
    return SurfaceNormals(normals, isolated, curvature)
