"""Keyframes -> the Qwen2-VL-family vision tower's input: normalised, patchified pixels and ``grid_thw``.

Done here in torch instead of by the model's processor: in transformers 5.23 the
default (fast) Qwen2-VL image processor needs torchvision, whose registry build for
the CPU torch on these machines fails to load. The layout is the one the vision
tower's ``patch_embed`` reads (``view(-1, C, temporal_patch_size, patch, patch)``):
each keyframe is one image, its pixels repeated ``temporal_patch_size`` times (what
the processor does with a still image), cut into ``patch``-pixel patches ordered so
that the ``merge x merge`` patches of one merged token are contiguous and merged
tokens follow in row-major order. ``test/test_vlm_frames.py`` checks it against the
processor's PIL backend (no torchvision) and, where torchvision loads, its default one.

Frames arrive already resized (``prepare_keyframe`` at ``ModelConfig.image_width`` x
``image_height``, multiples of ``patch * merge``): a fixed size keeps every keyframe's
token grid, and so the per-token depth samples, the same as in training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# OpenAI CLIP's normalisation, which Qwen2-VL and Qwen2.5-VL use (their preprocessor_config.json).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class VisionLayout:
    """The vision tower's patch geometry (from its config) and the normalisation (from the preprocessor's)."""

    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    image_mean: tuple[float, ...] = CLIP_MEAN
    image_std: tuple[float, ...] = CLIP_STD

    @property
    def token_pixels(self) -> int:
        """Side in pixels of the square one merged visual token covers (28 for Qwen2.5-VL)."""
        return self.patch_size * self.merge_size


def patchify_frames(frames: torch.Tensor, layout: VisionLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames (F, 3, H, W) in [0, 1] -> pixel values (F * H/p * W/p, 3 * T * p * p) and grid_thw (F, 3).

    H and W must be multiples of ``layout.token_pixels``. The pixel values keep the frames' dtype
    (cast to the tower's dtype where it is used).
    """
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"patchify_frames: expected frames (F, 3, H, W), got {tuple(frames.shape)}")
    f, c, h, w = frames.shape
    if h % layout.token_pixels or w % layout.token_pixels:
        raise ValueError(f"patchify_frames: frame {w}x{h} is not a multiple of {layout.token_pixels} pixels (patch x merge)")
    still = frames.unsqueeze(1).expand(f, layout.temporal_patch_size, c, h, w)  # a still image: T copies
    return _patchify(still, layout), torch.tensor([[1, h // layout.patch_size, w // layout.patch_size]] * f,
                                                  dtype=torch.long, device=frames.device).reshape(f, 3)


def patchify_video(frames: torch.Tensor, layout: VisionLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames (F, 3, H, W) in [0, 1], F a multiple of the temporal patch -> one video's pixel values and
    video_grid_thw (1, 3): consecutive frames share a temporal patch (the Qwen2-VL video processor's layout).
    The model does not feed keyframes this way (docs/VLM.md); ``bench/vlm.py --vision-layouts`` measures it."""
    f, c, h, w = frames.shape
    t = layout.temporal_patch_size
    if f % t:
        raise ValueError(f"patchify_video: {f} frames is not a multiple of the temporal patch {t}")
    grid = torch.tensor([[f // t, h // layout.patch_size, w // layout.patch_size]], dtype=torch.long, device=frames.device)
    return _patchify(frames.reshape(f // t, t, c, h, w), layout), grid


def _patchify(groups: torch.Tensor, layout: VisionLayout) -> torch.Tensor:
    """(G, T, 3, H, W) in [0, 1] -> normalised (G * H/p * W/p, 3 * T * p * p) in ``patch_embed``'s order."""
    g, t, c, h, w = groups.shape
    p, m = layout.patch_size, layout.merge_size
    mean = groups.new_tensor(layout.image_mean).view(1, 1, 3, 1, 1)
    std = groups.new_tensor(layout.image_std).view(1, 1, 3, 1, 1)
    gh, gw = h // p, w // p
    patches = ((groups - mean) / std).reshape(g, t, c, gh // m, m, p, gw // m, m, p)
    # -> (G, gh/m, gw/m, m, m, C, T, p, p): merge groups row-major, the m x m patches of a group contiguous.
    return patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(g * gh * gw, c * t * p * p)
