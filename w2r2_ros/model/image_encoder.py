"""The 2D "What" stream: a small CNN, trained from scratch, giving one feature per image patch."""
from __future__ import annotations

import torch
from torch import nn

from w2r2_ros.model.config import ModelConfig


class PatchImageEncoder(nn.Module):
    """Strided 3x3 convolutions down to the patch grid, then a 1x1 projection to the hidden size.

    No pretrained weights exist offline, so the encoder is small enough to train
    in minutes on CPU: with (16, 32, 64) channels it halves the resolution per
    stage until the 16-pixel patch grid (log2(16) = 4 stages, the last one to
    ``hidden_size``). GroupNorm rather than BatchNorm: batches are a few scenes
    and training/inference statistics must not differ.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        stages = config.patch_size.bit_length() - 1
        if 2**stages != config.patch_size:
            raise ValueError(f"ModelConfig: patch_size {config.patch_size} must be a power of two for the image encoder")
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
        self.project = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (F, 3, h, w) in [0, 1] -> patch features (F, P, D), patches in row-major grid order."""
        x = self.convs(frames * 2.0 - 1.0)
        x = x.flatten(2).transpose(1, 2)
        return self.norm(self.project(x))
