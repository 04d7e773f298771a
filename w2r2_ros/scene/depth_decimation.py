"""Depth image to map points at a point budget: one point per stride x stride block, its median-depth pixel.

Fusion cannot take every pixel of a 640x480 frame at 30 Hz, so a frame is
fused at a stride (``SceneMemoryConfig.depth_stride``). Taking the block's
first pixel threw away the other stride^2 - 1 readings, and with them what
beats a real camera down: each block now gives its pixel of median depth
among the valid ones. That is a real reading (its own position and colour, so
a clean image gives points as exact as before), a stray reading in the block
(a flying pixel, a speckle) is never chosen while most of the block agrees, the
median of 9 readings of one surface scatters about 0.4 times as much as one
reading, and a block whose first pixel is a hole still gives a point if any of
its pixels is valid, which matters on dark surfaces (a structured-light camera
loses most of their pixels). The mean of the block's agreeing pixels was
measured too (KinectFusion's pyramid, Newcombe et al. 2011): less noise (1/3),
but on ideal renders it moved points off the silhouettes and blended colours,
and mean best IoU fell by 0.02-0.03 in every noiseless condition
(docs/PROPOSALS.md, "Depth noise"). At stride 1 every valid pixel is its own block.
"""
from __future__ import annotations

import numpy as np

from w2r2_ros.geometry.camera import Intrinsics


def _blocks(image: np.ndarray, stride: int) -> np.ndarray:
    """(H, W) with H, W multiples of ``stride`` -> (H/s, W/s, s*s)."""
    h, w = image.shape
    return image.reshape(h // stride, stride, w // stride, stride).swapaxes(1, 2).reshape(h // stride, w // stride, stride * stride)


def decimate_depth(
    depth: np.ndarray, rgb: np.ndarray, intrinsics: Intrinsics, cam_to_world: np.ndarray, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Map points (N, 3) float32 and their colours (N, 3) uint8 from ``depth`` (H, W) metres (NaN or <= 0:
    no reading) and ``rgb`` (H, W, 3) uint8: one point per ``stride`` x ``stride`` block with a valid
    pixel, the block's pixel of median depth (the lower one of an even count)."""
    if depth.shape != (intrinsics.height, intrinsics.width) or rgb.shape[:2] != depth.shape:
        raise ValueError(f"depth {depth.shape} / rgb {rgb.shape} do not match intrinsics {intrinsics.height}x{intrinsics.width}")
    s = max(1, int(stride))
    h, w = depth.shape
    hp, wp = -(-h // s) * s, -(-w // s) * s
    z = np.full((hp, wp), np.inf, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        z[:h, :w] = np.where(depth > 0, depth, np.inf)  # NaN and <= 0 sort last
    zb = _blocks(z, s)
    n_valid = np.isfinite(zb).sum(axis=-1)
    some = n_valid > 0
    order = np.argsort(zb, axis=-1, kind="stable")
    pick = np.take_along_axis(order, ((n_valid - 1) // 2)[..., None].clip(0), axis=-1)[..., 0][some]
    block_row, block_col = np.nonzero(some)
    rows = block_row * s + pick // s
    cols = block_col * s + pick % s
    zs = z[rows, cols]
    cam = np.stack(
        [(cols - intrinsics.cx) / intrinsics.fx * zs, (rows - intrinsics.cy) / intrinsics.fy * zs, zs], axis=-1
    ).astype(np.float32)
    pose = np.asarray(cam_to_world, dtype=np.float32)
    points = cam @ pose[:3, :3].T + pose[:3, 3]
    return points.astype(np.float32, copy=False), rgb[rows, cols]
