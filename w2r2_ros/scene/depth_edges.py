"""Depth readings that are no surface: flying pixels between a foreground edge and the background behind it, speckles.

Structured-light and time-of-flight cameras mix the two surfaces at a depth
discontinuity and report depths in between; fused over many frames these form
veils of voxels that join objects to the walls behind them and to each other.
A pixel that lies behind a 4-neighbour by more than ``ratio`` of its own depth
(and ``min_jump_m``) sits on the far side of such a discontinuity and is
dropped before fusion: flying pixels, and the background's pixel along an
object's silhouette, which a 5 cm voxel does not miss. The near side is kept:
a lamp's pole or a chair's leg one or two pixels wide is nearer than both its
neighbours (dropping both sides took the poles off every lamp at 320x240).
Invalid pixels (0, negative or NaN: holes on dark or grazing surfaces, a
16-bit image's 0) are no depth and so no edge: compared as 0, every pixel next
to a hole lay "behind" it and was dropped, which took most of a dark surface
(60 % holes) off the map. Measured on structured-light renders in
docs/PROPOSALS.md.
"""
from __future__ import annotations

import numpy as np

from w2r2_ros.scene.depth_noise import DepthNoise


def drop_depth_edges(depth: np.ndarray, ratio: float, min_jump_m: float = 0.05) -> np.ndarray:
    """``depth`` (H, W) float metres with the pixels at depth discontinuities and the invalid ones (<= 0)
    set to NaN (a copy)."""
    out = np.array(depth, dtype=np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        out[~(out > 0)] = np.nan
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


def drop_depth_speckles(depth: np.ndarray, noise: DepthNoise) -> np.ndarray:
    """``depth`` (H, W) with every reading that no 8-neighbour confirms (none within ``noise.tolerance``)
    set to NaN (a copy).

    A surface is seen by several neighbouring pixels; a reading alone at its depth is a stray return: a
    flying pixel whose neighbours on the object are holes (so the edge test above had nothing to compare
    it with), a multipath or dropout artefact. Fused over many frames such readings form a halo of
    single-hit voxels around every object that widened its box by 5-15 cm on structured-light renders
    (docs/PROPOSALS.md, "Depth noise"); OpenCV's ``filterSpeckles`` does the same for stereo disparity
    with regions of one pixel.
    """
    out = np.array(depth, dtype=np.float32, copy=True)
    if out.ndim != 2 or min(out.shape) < 2:
        return out
    h, w = out.shape
    padded = np.pad(out, 1, constant_values=np.nan)
    tolerance = noise.tolerance(out)
    confirmed = np.zeros(out.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    confirmed |= np.abs(padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] - out) <= tolerance
    out[~confirmed] = np.nan
    return out
