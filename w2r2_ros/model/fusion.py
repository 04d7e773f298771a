"""Fusion: a `transformers` encoder over [GRD; text; video patch tokens; object tokens] (W2R2.md, "Fusion").

The backbone is built from ``ModelConfig.backbone`` with ``AutoModel.from_config``
and fed ``inputs_embeds``, so a bigger or different encoder is a config change.
Token types tell the four kinds of token apart (GRD 0, text 1, video 2, object 3).
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

GRD_TYPE, TEXT_TYPE, VIDEO_TYPE, OBJECT_TYPE = 0, 1, 2, 3


class FusionTransformer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.backbone = AutoModel.from_config(config.backbone_config(), **config.backbone_kwargs)
        self.grounding_token = nn.Parameter(torch.randn(config.hidden_size) * 0.02)

    def forward(
        self,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        video: torch.Tensor,
        video_mask: torch.Tensor,
        objects: torch.Tensor,
        object_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings (B, *, D) with masks (B, *) -> (GRD hidden state (B, D), object hidden states (B, N, D))."""
        b, length = text_mask.shape
        n_video, n_objects = video.shape[1], objects.shape[1]
        grd = self.grounding_token.expand(b, 1, -1)
        embeds = torch.cat([grd, text, video, objects], dim=1)
        mask = torch.cat([text_mask.new_ones(b, 1), text_mask, video_mask, object_mask], dim=1)
        device = embeds.device
        token_types = torch.cat(
            [
                torch.full((1,), GRD_TYPE, device=device),
                torch.full((length,), TEXT_TYPE, device=device),
                torch.full((n_video,), VIDEO_TYPE, device=device),
                torch.full((n_objects,), OBJECT_TYPE, device=device),
            ]
        ).expand(b, -1)
        positions = torch.zeros(embeds.shape[1], dtype=torch.long, device=device)
        positions[1 : 1 + length] = torch.arange(1, length + 1, device=device)
        hidden = self.backbone(
            inputs_embeds=embeds,
            attention_mask=mask.long(),
            token_type_ids=token_types,
            position_ids=positions.expand(b, -1),
        ).last_hidden_state
        return hidden[:, 0], hidden[:, hidden.shape[1] - n_objects :]
