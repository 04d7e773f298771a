"""The 2D "What" stream: a small CNN, trained from scratch, giving one feature per image patch."""
from __future__ import annotations

import torch
from torch import nn

from w2r2_ros.model.config import ModelConfig


class PatchImageEncoder(nn.Module):
    """Strided 3x3 convolutions down to the patch grid, plus the patch's raw colours, projected to the hidden size.

    No pretrained weights exist offline, so the encoder is small enough to train
    in minutes on CPU: with (16, 32, 64) channels it halves the resolution per
    stage until the 16-pixel patch grid (log2(16) = 4 stages, the last one to
    ``hidden_size``). GroupNorm rather than BatchNorm: batches are a few scenes
    and training/inference statistics must not differ.

    GroupNorm subtracts each image's mean, so the convolutions see colour only
    relative to the rest of the frame (walls and floor differ per room). Colour
    names are absolute, so the mean RGB of each 4x4-pixel cell of the patch
    (``colour_cells``^2 cells, 3 values each) joins the convolution features
    before the projection (docs/TRAINING.md, "Choices").
    """

    colour_cells = 4

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        stages = config.patch_size.bit_length() - 1
        if 2**stages != config.patch_size:
            raise ValueError(f"ModelConfig: patch_size {config.patch_size} must be a power of two for the image encoder")
        if config.patch_size < self.colour_cells:
            raise ValueError(f"ModelConfig: patch_size {config.patch_size} must be >= {self.colour_cells} (colour cells)")
        widths = list(config.image_channels)[: stages - 1]
        widths += [widths[-1]] * (stages - 1 - len(widths))
        layers: list[nn.Module] = []
        in_channels = 3
        for width in widths + [config.hidden_size]:
            layers += [
                nn.Conv2d(in_channels, width, kernel_size=3, stride=2, padding=1),
                nn.GroupNorm(num_groups=min(8, width), num_channels=width),
                nn.GELU(),
            ]
            in_channels = width
        self.convs = nn.Sequential(*layers)
        self.patch_size = config.patch_size
        self.project = nn.Linear(config.hidden_size + 3 * self.colour_cells**2, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (F, 3, h, w) in [0, 1] -> patch features (F, P, D), patches in row-major grid order."""
        x = self.convs(frames * 2.0 - 1.0).flatten(2).transpose(1, 2)
        return self.norm(self.project(torch.cat([x, self._patch_colours(frames)], dim=-1)))

    def _patch_colours(self, frames: torch.Tensor) -> torch.Tensor:
        """(F, P, 3 * cells^2): mean RGB of each cell of each patch, in [-1, 1]."""
        f, _, h, w = frames.shape
        cells = nn.functional.avg_pool2d(frames * 2.0 - 1.0, self.patch_size // self.colour_cells)
        c = self.colour_cells
        grid = cells.view(f, 3, h // self.patch_size, c, w // self.patch_size, c)
        return grid.permute(0, 2, 4, 1, 3, 5).reshape(f, (h // self.patch_size) * (w // self.patch_size), 3 * c * c)
