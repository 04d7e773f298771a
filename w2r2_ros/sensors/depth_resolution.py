"""Depth at another resolution than the colour image: when it can be brought to the colour grid, and how.

Many RGB-D drivers publish depth registered to the colour camera (same optical
centre and field of view) but at their own resolution: a RealSense's aligned
depth at 848x480 beside 1280x720 colour after a profile change, a Kinect's
320x240 depth beside 640x480 colour. Such depth covers the same field of view
on a coarser or finer grid, so nearest-neighbour resampling to the colour size
puts every depth pixel on the colour pixel it belongs to (nearest: averaging
would invent depths across object edges). Depth with another aspect ratio
cannot be registered this way: its field of view differs, and it is refused.
"""
from __future__ import annotations

import numpy as np


def same_aspect(depth_size: tuple[int, int], colour_size: tuple[int, int], tolerance: float = 0.01) -> bool:
    """Whether (width, height) ``depth_size`` has the aspect ratio of ``colour_size`` within ``tolerance`` (relative)."""
    (dw, dh), (cw, ch) = depth_size, colour_size
    if min(dw, dh, cw, ch) <= 0:
        return False
    return abs((dw / dh) / (cw / ch) - 1.0) <= tolerance


def resample_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """``depth`` (H, W) on a ``height`` x ``width`` grid of the same field of view, by nearest pixel centre."""
    rows = np.minimum(((np.arange(height) + 0.5) * depth.shape[0] / height).astype(np.int64), depth.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * depth.shape[1] / width).astype(np.int64), depth.shape[1] - 1)
    return depth[rows[:, None], cols[None, :]]
