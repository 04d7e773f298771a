"""Fusion: a `transformers` encoder over [GRD; ANC...; text; video patch tokens; object tokens] (W2R2.md, "Fusion").

The backbone is built from ``ModelConfig.backbone`` with ``AutoModel.from_config``
and fed ``inputs_embeds``, so a bigger or different encoder is a config change.
Token types tell the four kinds of token apart (queries 0, text 1, video 2, object 3).
The query tokens are learned vectors plus their pooled text (``TextEncoder``): GRD,
whose state scores the proposals, and one ANC token per ``RelationHead`` anchor
pointer, whose state picks that anchor. Separate
tokens let each attend to its own words ("the chair" vs "the red table") instead of
packing target, relation and anchors into one vector.
Absolute position ids are used only by the text (1..L); every other token has
position 0, so the position table adds one shared learned vector to them. Video
and object tokens carry their "Where" in their geometry encodings instead, which
is why the number of keyframes may differ between training and inference.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel

from w2r2_ros.model.config import ModelConfig

QUERY_TYPE, TEXT_TYPE, VIDEO_TYPE, OBJECT_TYPE = 0, 1, 2, 3


class FusionTransformer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.backbone = AutoModel.from_config(config.backbone_config(), **config.backbone_kwargs)
        self.query_tokens = nn.Parameter(torch.randn(1 + config.relation_anchors, config.hidden_size) * 0.02)

    def forward(
        self,
        pooled_text: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        video: torch.Tensor,
        video_mask: torch.Tensor,
        objects: torch.Tensor,
        object_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings (B, *, D) with masks (B, *) -> (query hidden states (B, 1 + A, D): GRD then the
        anchors, object hidden states (B, N, D)). ``pooled_text`` (B, 1 + A, D) is added to the query
        tokens (``TextEncoder``)."""
        b, length = text_mask.shape
        n_queries = self.query_tokens.shape[0]
        n_video, n_objects = video.shape[1], objects.shape[1]
        queries = self.query_tokens + pooled_text
        embeds = torch.cat([queries, text, video, objects], dim=1)
        mask = torch.cat([text_mask.new_ones(b, n_queries), text_mask, video_mask, object_mask], dim=1)
        device = embeds.device
        token_types = torch.cat(
            [
                torch.full((n_queries,), QUERY_TYPE, device=device),
                torch.full((length,), TEXT_TYPE, device=device),
                torch.full((n_video,), VIDEO_TYPE, device=device),
                torch.full((n_objects,), OBJECT_TYPE, device=device),
            ]
        ).expand(b, -1)
        positions = torch.zeros(embeds.shape[1], dtype=torch.long, device=device)
        positions[n_queries : n_queries + length] = torch.arange(1, length + 1, device=device)
        hidden = self.backbone(
            inputs_embeds=embeds,
            attention_mask=mask.long(),
            token_type_ids=token_types,
            position_ids=positions.expand(b, -1),
        ).last_hidden_state
        return hidden[:, :n_queries], hidden[:, hidden.shape[1] - n_objects :]
