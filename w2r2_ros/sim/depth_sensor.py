"""What a real RGB-D depth sensor does to an exact depth image: range-dependent noise, holes, flying pixels.

The effects, each from the literature on structured-light / active-stereo
sensors (Kinect, RealSense), as plain functions of numpy arrays:

- **Axial noise growing with range**: sigma(z) = a + b (z - c)^2 (Nguyen et
  al. 2012 measured a = 0.0012, b = 0.0019, c = 0.4 m for the Kinect).
- **Holes on dark surfaces**: little infrared comes back from black materials.
- **Holes on grazing surfaces**: a pattern seen nearly edge-on cannot be matched;
  the chance of a hole grows from 0 at a threshold angle to 1 at 90 degrees.
- **Flying pixels at depth edges**: a pixel that straddles a foreground edge
  and the background reports a depth in between.

``render.render_rgbd`` applies them from ``RenderConfig``; they draw random
numbers only when switched on, so an ideal sensor's frames are unchanged.
"""
from __future__ import annotations

import numpy as np


def range_noise(
    depth: np.ndarray, base_m: float, per_m2: float, offset_m: float, rng: np.random.Generator
) -> np.ndarray:
    """``depth`` plus Gaussian noise of sigma ``base_m + per_m2 * (z - offset_m)^2`` (float32, clamped at 0)."""
    if base_m == 0.0 and offset_m == 0.0:  # the original k z^2 model, kept to the bit
        sigma = per_m2 * depth**2
    else:
        sigma = np.float32(base_m) + np.float32(per_m2) * (depth - np.float32(offset_m)) ** 2
    return np.maximum(depth + rng.standard_normal(depth.shape, dtype=np.float32) * sigma, 0.0)


def incidence_holes(cos_incidence: np.ndarray, threshold_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of pixels lost to grazing incidence: none below ``threshold_deg``, all at 90 degrees, linear between.

    ``cos_incidence``: |cos| of the angle between the viewing ray and the surface normal.
    """
    angle = np.degrees(np.arccos(np.clip(cos_incidence, 0.0, 1.0)))
    chance = np.clip((angle - threshold_deg) / max(90.0 - threshold_deg, 1e-6), 0.0, 1.0)
    return rng.random(cos_incidence.shape) < chance


def dark_holes(rgb: np.ndarray, luminance_below: float, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of pixels lost on dark surfaces: luminance (0-255) below ``luminance_below``, each with ``probability``."""
    luminance = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return (luminance < luminance_below) & (rng.random(luminance.shape) < probability)


def flying_pixels(depth: np.ndarray, edge_fraction: float, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Move pixels beside a depth edge to a depth between theirs and the neighbour's across the edge.

    An edge is a 4-neighbour whose depth differs by more than ``edge_fraction``
    times the pixel's own; each edge pixel flies with ``probability`` to
    ``z + u (z_neighbour - z)``, u uniform in [0, 1]. Invalid (0) pixels stay.
    """
    padded = np.pad(depth, 1, mode="edge")
    h, w = depth.shape
    neighbours = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
    jumps = np.where(neighbours > 0, neighbours - depth, 0.0)
    largest = np.take_along_axis(jumps, np.abs(jumps).argmax(axis=0)[None], axis=0)[0]
    edge = (depth > 0) & (np.abs(largest) > edge_fraction * depth)
    flies = edge & (rng.random((h, w)) < probability)
    out = depth.copy()
    out[flies] += rng.random(int(flies.sum()), dtype=np.float32) * largest[flies]
    return out
