"""Pinhole cameras: depth back-projection and point projection."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera seen at another resolution (pixel-centre convention)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=width,
            height=height,
        )

    @staticmethod
    def from_fov(width: int, height: int, hfov_deg: float) -> "Intrinsics":
        fx = 0.5 * width / np.tan(np.deg2rad(hfov_deg) / 2.0)
        return Intrinsics(fx=fx, fy=fx, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0, width=width, height=height)


def pixel_rays(intrinsics: Intrinsics) -> np.ndarray:
    """Camera-frame ray directions with z = 1 for every pixel, shape (H, W, 3)."""
    u = np.arange(intrinsics.width, dtype=np.float32)
    v = np.arange(intrinsics.height, dtype=np.float32)
    uu, vv = np.meshgrid(u, v)
    x = (uu - intrinsics.cx) / intrinsics.fx
    y = (vv - intrinsics.cy) / intrinsics.fy
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def depth_to_world_map(depth: np.ndarray, intrinsics: Intrinsics, cam_to_world: np.ndarray) -> np.ndarray:
    """World coordinates of every pixel, shape (H, W, 3); NaN where depth is invalid.

    This is the per-pixel "Where" input of the model (W2R2.md: per-patch world
    coordinates are the mean of the valid pixels of a patch).
    """
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth shape {depth.shape} does not match intrinsics {intrinsics.height}x{intrinsics.width}")
    z = depth.astype(np.float32, copy=False)
    valid = np.isfinite(z) & (z > 0)
    cam = pixel_rays(intrinsics) * np.where(valid, z, np.nan)[..., None]
    rot = cam_to_world[:3, :3].astype(np.float32)
    trans = cam_to_world[:3, 3].astype(np.float32)
    return cam @ rot.T + trans


def backproject_depth(
    depth: np.ndarray, intrinsics: Intrinsics, cam_to_world: np.ndarray, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Valid depth pixels as world points.

    Returns ``(points (N, 3) float32, pixel_index (N,) int64)``; ``pixel_index``
    indexes the flattened (H, W) image so colours can be gathered with it.
    ``stride`` subsamples rows and columns (fusion does not need every pixel).
    """
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth shape {depth.shape} does not match intrinsics {intrinsics.height}x{intrinsics.width}")
    rows = np.arange(0, intrinsics.height, stride)
    cols = np.arange(0, intrinsics.width, stride)
    z = depth[::stride, ::stride].astype(np.float32, copy=False)
    valid = np.isfinite(z) & (z > 0)
    vv, uu = np.nonzero(valid)
    zs = z[vv, uu]
    u = cols[uu].astype(np.float32)
    v = rows[vv].astype(np.float32)
    cam = np.stack([(u - intrinsics.cx) / intrinsics.fx * zs, (v - intrinsics.cy) / intrinsics.fy * zs, zs], axis=-1)
    points = cam @ cam_to_world[:3, :3].astype(np.float32).T + cam_to_world[:3, 3].astype(np.float32)
    index = rows[vv].astype(np.int64) * intrinsics.width + cols[uu]
    return points.astype(np.float32, copy=False), index


def project_points(points: np.ndarray, intrinsics: Intrinsics, cam_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into the image: ``(uv (N, 2), depth (N,))``; depth <= 0 is behind the camera."""
    world_to_cam = np.linalg.inv(cam_to_world)
    cam = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsics.fx * cam[:, 0] / z + intrinsics.cx
        v = intrinsics.fy * cam[:, 1] / z + intrinsics.cy
    return np.stack([u, v], axis=-1), z
