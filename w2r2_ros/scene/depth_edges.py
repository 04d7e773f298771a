"""Flying pixels: depth readings between a foreground edge and the background behind it.

Structured-light and time-of-flight cameras mix the two surfaces at a depth
discontinuity and report depths in between; fused over many frames these form
veils of voxels that join objects to the walls behind them and to each other.
A pixel that lies behind a 4-neighbour by more than ``ratio`` of its own depth
(and ``min_jump_m``) sits on the far side of such a discontinuity and is
dropped before fusion: flying pixels, and the background's pixel along an
object's silhouette, which a 5 cm voxel does not miss. The near side is kept:
a lamp's pole or a chair's leg one or two pixels wide is nearer than both its
neighbours (dropping both sides took the poles off every lamp at 320x240).
Measured on structured-light renders in docs/PROPOSALS.md.
"""
from __future__ import annotations

import numpy as np


def drop_depth_edges(depth: np.ndarray, ratio: float, min_jump_m: float = 0.05) -> np.ndarray:
    """``depth`` (H, W) float metres with the pixels at depth discontinuities set to NaN (a copy)."""
    out = np.array(depth, dtype=np.float32, copy=True)
    if ratio <= 0 or out.ndim != 2 or min(out.shape) < 2:
        return out
    with np.errstate(invalid="ignore"):
        limit = np.maximum(ratio * out, min_jump_m)
        edge = np.zeros(out.shape, dtype=bool)
        down = out[1:] - out[:-1]  # > 0: the lower pixel is farther; NaN (invalid) compares False
        right = out[:, 1:] - out[:, :-1]
        edge[1:] |= down > limit[1:]
        edge[:-1] |= -down > limit[:-1]
        edge[:, 1:] |= right > limit[:, 1:]
        edge[:, :-1] |= -right > limit[:, :-1]
    out[edge] = np.nan
    return out
