"""TextEncoder: query words -> contextual token states, and one pooled text vector per fusion query token.

Why a text-only stage before the fusion (docs/TRAINING.md, "Choices"): in the joint
fusion a query token's attention starts spread over a hundred video and object tokens
and the few words of the query, so the words that matter ("nearest", "the plant")
reached the GRD state only faintly, and relations were learned far more slowly than
colours. Here the words are first contextualised among themselves (a ``transformers``
encoder from ``ModelConfig.text_backbone``: positions make "the chair near the plant"
differ from "the plant near the chair"), then each query token (GRD, ANC...) gets an
attention-pooled summary of them with its own learned pooling vector: a short path
through which the grounding token learns to read the relation and each anchor
pointer its anchor's words.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoModel

from w2r2_ros.model.config import ModelConfig


class TextEncoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=0)
        self.encoder = AutoModel.from_config(config.text_backbone_config(), **config.backbone_kwargs)
        self.pooling = nn.Parameter(torch.randn(1 + config.relation_anchors, config.hidden_size) * 0.02)
        self.scale = 1.0 / math.sqrt(config.hidden_size)

    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and mask (B, L) -> (token states (B, L, D), pooled text per query token (B, 1 + A, D))."""
        states = self.encoder(inputs_embeds=self.word_embeddings(text_ids), attention_mask=text_mask.long()).last_hidden_state
        weights = torch.einsum("qd,bld->bql", self.pooling, states) * self.scale
        weights = weights.masked_fill(~text_mask[:, None, :], -1.0e4).softmax(dim=-1)
        return states, torch.einsum("bql,bld->bqd", weights, states)
