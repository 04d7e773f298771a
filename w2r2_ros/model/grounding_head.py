"""Grounding and category heads on the fused hidden states (W2R2.md, "Fusion")."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from w2r2_ros.model.config import ModelConfig

# Logit given to padded proposals: far below any real score (|cos| * scale <= MAX_LOGIT_SCALE),
# yet finite so that 0 * logit stays 0 in label-smoothed losses.
MASKED_LOGIT = -1.0e4


# Upper bound of the learned logit scale 1 / tau (CLIP's bound): keeps the softmax from saturating.
MAX_LOGIT_SCALE = 100.0


class GroundingHead(nn.Module):
    """Score of proposal i = (cos(q, k_i) + match_i) / 2 / tau; plus a learned "no target" logit from the GRD state.

    q is a projection of the grounding token's hidden state, k_i of object token
    i's. match_i = sum_c p_i(c) t(c) in [0, 1] is the probability that object i
    has the category the query asks for: p_i is the object's ``CategoryHead``
    distribution (trained by the auxiliary category loss), t a category
    distribution read from the GRD state. It is the "What" half of grounding made
    explicit, so the cosine is left to tell same-category instances apart
    (docs/MODEL.md; on the dev set it learned a little faster early and kept
    the 3D-ablated accuracy higher, docs/TRAINING.md "Choices").
    Scores stay within [-1/tau, 1/tau]. tau is learned as in CLIP: it starts at
    ``ModelConfig.temperature`` and 1/tau is capped at ``MAX_LOGIT_SCALE``.
    The logits (B, N + 1) put "no target" in the last column, so one softmax
    covers "which proposal" and "none of them".
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.log_logit_scale = nn.Parameter(torch.tensor(-math.log(config.temperature)))
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.target_category = nn.Linear(config.hidden_size, len(config.categories))
        self.no_target = nn.Linear(config.hidden_size, 1)

    def forward(
        self,
        grounding_state: torch.Tensor,
        object_states: torch.Tensor,
        object_mask: torch.Tensor,
        category_logits: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (logits (B, N + 1), unit query (B, D), unit keys (B, N, D)); ``category_logits`` (B, N, C)."""
        query = F.normalize(self.query(grounding_state), dim=-1)
        keys = F.normalize(self.key(object_states), dim=-1)
        wanted = self.target_category(grounding_state).softmax(dim=-1)
        match = torch.einsum("bnc,bc->bn", category_logits.softmax(dim=-1), wanted)
        scale = self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        scores = (torch.einsum("bd,bnd->bn", query, keys) + match) * (0.5 * scale)
        scores = scores.masked_fill(~object_mask, MASKED_LOGIT)
        return torch.cat([scores, self.no_target(grounding_state)], dim=-1), query, keys


class CategoryHead(nn.Module):
    """Per-object category logits: the label of the answer, and an auxiliary training signal."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.classify = nn.Linear(config.hidden_size, len(config.categories))

    def forward(self, object_states: torch.Tensor) -> torch.Tensor:
        return self.classify(object_states)
