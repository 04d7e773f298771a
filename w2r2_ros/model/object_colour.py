"""The colour of a proposal as its own pixels show it: the "What" evidence of a colour name.

``GroundingInputs.box_colours`` holds, per proposal and keyframe, the mean colour of the
pixels of the depth samples inside the proposal's box; this module averages the kept
keyframes, weighted by how many samples each one has in the box grown by ``box_margin_m``
(``box_patch_weights``), and turns the mean into features for the colour head's pixel term (``CategoryHead``, ``ModelConfig.colour_pixels``).
"""
from __future__ import annotations

import torch

# Features of ``object_colour_features``: mean RGB mapped to [-1, 1] (3), chromaticity (3).
COLOUR_FEATURES = 6


def object_colour_features(box_colours: torch.Tensor, box_patch_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, K, 3) per-frame box colours and (B, N, K, P) pooling weights -> (features (B, N, COLOUR_FEATURES),
    seen (B, N) bool: some depth sample of the box is in some frame; features are 0 where not).

    A frame's weight is its summed patch fractions, i.e. its share of the depth samples in the *grown* box,
    while ``box_colours`` averages the samples in the box itself: so the result is close to, not exactly,
    the mean over every sample of the box, and a box whose samples all lie in the margin is "seen" with
    colour 0. Chromaticity (RGB divided by its sum) is
    the colour without its brightness: the renderer shades each face of a box differently, and a
    camera's exposure varies, while the colour name does not.
    """
    weights = box_patch_weights.sum(dim=-1)  # (B, N, K)
    total = weights.sum(dim=-1, keepdim=True)
    seen = total[..., 0] > 0
    rgb = torch.einsum("bnk,bnkc->bnc", weights, box_colours) / total.clamp_min(1e-6)
    chroma = rgb / rgb.sum(dim=-1, keepdim=True).clamp_min(1e-3)
    features = torch.cat([rgb * 2.0 - 1.0, chroma], dim=-1)
    return features * seen[..., None].to(features.dtype), seen
