"""Depth image to map points at a point budget: one point per stride x stride block, the mean of its agreeing pixels.

Fusion cannot take every pixel of a 640x480 frame at 30 Hz, so a frame is
fused at a stride (``SceneMemoryConfig.depth_stride``). Taking one pixel per
block threw away the other stride^2 - 1 readings of the block, which are what
beats a real camera's noise down: the mean of n readings of one surface
scatters sqrt(n) times less. So each block gives the mean of the pixels whose
depth agrees with the block's median depth within the noise model's tolerance
(``DepthNoise.tolerance``): pixels of another surface in the block (an edge, a
leg in front of a wall) are left out, so no point lands between two surfaces.
KinectFusion (Newcombe et al. 2011) builds its depth pyramid the same way (the
average of the block's pixels within 3 sigma of its centre); the median is used
here because the centre pixel itself may be a hole or a stray reading. A block
whose sampled pixel is a hole still gives a point if any of its pixels is
valid, which matters on dark surfaces (a structured-light camera loses most of
their pixels). The point is the mean of the pixels' camera-frame points (exact:
no pixel position is rounded), its colour the mean of theirs. At stride 1 every
valid pixel is its own block: the frame's points as they are.
"""
from __future__ import annotations

import numpy as np

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.scene.depth_noise import DepthNoise


def _blocks(image: np.ndarray, stride: int) -> np.ndarray:
    """(H, W, ...) with H, W multiples of ``stride`` -> (H/s, W/s, s*s, ...)."""
    h, w = image.shape[:2]
    tail = image.shape[2:]
    out = image.reshape(h // stride, stride, w // stride, stride, *tail).swapaxes(1, 2)
    return out.reshape(h // stride, w // stride, stride * stride, *tail)


def decimate_depth(
    depth: np.ndarray, rgb: np.ndarray, intrinsics: Intrinsics, cam_to_world: np.ndarray, stride: int, noise: DepthNoise
) -> tuple[np.ndarray, np.ndarray]:
    """Map points (N, 3) float32 and their colours (N, 3) uint8 from ``depth`` (H, W) metres (NaN or <= 0:
    no reading) and ``rgb`` (H, W, 3) uint8: one point per ``stride`` x ``stride`` block with a valid pixel."""
    if depth.shape != (intrinsics.height, intrinsics.width) or rgb.shape[:2] != depth.shape:
        raise ValueError(f"depth {depth.shape} / rgb {rgb.shape} do not match intrinsics {intrinsics.height}x{intrinsics.width}")
    s = max(1, int(stride))
    h, w = depth.shape
    hp, wp = -(-h // s) * s, -(-w // s) * s
    z = np.full((hp, wp), np.nan, dtype=np.float32)
    z[:h, :w] = depth
    with np.errstate(invalid="ignore"):
        z[~(z > 0)] = np.nan
    zb = _blocks(z, s)
    valid = np.isfinite(zb)
    n_valid = valid.sum(axis=-1)
    ordered = np.sort(np.where(valid, zb, np.inf), axis=-1)
    median = np.take_along_axis(ordered, np.maximum((n_valid - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        agree = valid & (np.abs(zb - median[..., None]) <= noise.tolerance(median)[..., None])
    count = agree.sum(axis=-1)
    some = count > 0
    weight = agree[some].astype(np.float32)
    zs = np.where(agree[some], zb[some], 0.0)
    rows, cols = np.mgrid[0:hp, 0:wp].astype(np.float32)
    n = count[some].astype(np.float32)
    mean_z = zs.sum(axis=-1) / n
    mean_uz = (_blocks(cols, s)[some] * zs).sum(axis=-1) / n
    mean_vz = (_blocks(rows, s)[some] * zs).sum(axis=-1) / n
    cam = np.stack(
        [(mean_uz - intrinsics.cx * mean_z) / intrinsics.fx, (mean_vz - intrinsics.cy * mean_z) / intrinsics.fy, mean_z], axis=-1
    )
    rotation = np.asarray(cam_to_world, dtype=np.float32)
    points = cam @ rotation[:3, :3].T + rotation[:3, 3]
    colour = np.zeros((hp, wp, 3), dtype=np.float32)
    colour[:h, :w] = rgb
    mean_rgb = (_blocks(colour, s)[some] * weight[..., None]).sum(axis=-2) / n[:, None]
    return points.astype(np.float32, copy=False), np.clip(np.rint(mean_rgb), 0, 255).astype(np.uint8)
