"""The 3D "Where" stream: sinusoidal encodings of world points and of proposal boxes (W2R2.md).

As in Video-3D LLM, a patch's world coordinate is encoded and *added* to its
patch feature; a proposal's box (centre, size) is encoded likewise and added to
its object token. With ``ablate_3d`` the model replaces these encodings by
zeros, which is the 2D-dominant pseudo-output of W2R2.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from w2r2_ros.model.config import ModelConfig


class FourierFeatures(nn.Module):
    """sin/cos of each coordinate at wavelengths spaced geometrically in [min, max] metres, plus the raw value.

    The wavelength range spans the scale of the problem: 0.1 m (an object's
    parts) to 16 m (a large room), so nearby and distant positions are both
    distinguishable.
    """

    def __init__(self, bands: int, min_wavelength: float, max_wavelength: float) -> None:
        super().__init__()
        wavelengths = torch.logspace(math.log10(min_wavelength), math.log10(max_wavelength), bands)
        self.register_buffer("frequencies", 2 * math.pi / wavelengths, persistent=False)

    def output_size(self, dims: int) -> int:
        return dims * (2 * self.frequencies.numel() + 1)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., d * (2 * bands + 1))."""
        angles = values.unsqueeze(-1) * self.frequencies
        return torch.cat([values, angles.sin().flatten(-2), angles.cos().flatten(-2)], dim=-1)


def log_size(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 6) boxes (centre, size) -> (..., 3) log size; sizes below 1 mm are clamped."""
    return torch.log(boxes[..., 3:6].clamp_min(1e-3))


# Features of ``box_shape``: log size (3), the two footprint log sizes sorted, centre height, base height.
SHAPE_FEATURES = 7


def box_shape(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 6) boxes -> (..., SHAPE_FEATURES): what a box says about *what* the object is, not where.

    Log size, the footprint's log sizes sorted (a sofa along x or along y is the same sofa),
    and the heights of the box's centre and base above the floor (z = 0): a lamp on a cabinet
    stands high. Horizontal position is left out: it says nothing about the category.
    """
    size = log_size(boxes)
    footprint = size[..., :2].sort(dim=-1).values
    base = boxes[..., 2:3] - 0.5 * boxes[..., 5:6]
    return torch.cat([size, footprint, boxes[..., 2:3], base], dim=-1)


def box_shape_statistics(boxes: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-feature mean and standard deviation (floored at 1e-3) of ``box_shape`` over boxes (M, 6), M >= 1:
    ``ModelConfig.shape_mean`` and ``shape_std`` from the training proposals."""
    if boxes.ndim != 2 or boxes.shape[0] == 0:
        raise ValueError(f"box_shape_statistics: need (M >= 1, 6) boxes, got {tuple(boxes.shape)}")
    shape = box_shape(boxes.double())
    return tuple(shape.mean(dim=0).tolist()), tuple(shape.std(dim=0, unbiased=False).clamp_min(1e-3).tolist())


class _EncodingMLP(nn.Sequential):
    """Two linear layers, then LayerNorm: the "Where" vector gets the same scale as the (LayerNorm-ed) "What"
    patch feature it is added to; a freshly initialised MLP's output is several times smaller, so geometry
    would start as a faint signal next to appearance."""

    def __init__(self, in_size: int, hidden_size: int) -> None:
        super().__init__(
            nn.Linear(in_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size), nn.LayerNorm(hidden_size)
        )


class PointEncoder(nn.Module):
    """World point (x, y, z) of a patch -> a hidden-size vector; zero where the patch has no valid depth."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fourier = FourierFeatures(config.fourier_bands, config.min_wavelength_m, config.max_wavelength_m)
        self.mlp = _EncodingMLP(self.fourier.output_size(3), config.hidden_size)

    def forward(self, xyz: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.fourier(xyz)) * valid.unsqueeze(-1).to(xyz.dtype)


class BoxEncoder(nn.Module):
    """Proposal box (centre, size) -> a hidden-size vector. Size is encoded as log-size: scale, not offset, matters."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fourier = FourierFeatures(config.fourier_bands, config.min_wavelength_m, config.max_wavelength_m)
        self.mlp = _EncodingMLP(self.fourier.output_size(3) + 3, config.hidden_size)

    def forward(self, boxes: torch.Tensor) -> torch.Tensor:
        centre, size = boxes[..., :3], boxes[..., 3:]
        return self.mlp(torch.cat([self.fourier(centre), torch.log(size.clamp_min(1e-3))], dim=-1))
