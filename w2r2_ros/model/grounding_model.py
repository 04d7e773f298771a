"""W2R2GroundingModel: What (2D patch features) + Where (3D encodings) fused by a transformer; scores proposals.

One model serves both passes of W2R2 training (W2R2.md): the fused pass, and
with ``ablate_3d=True`` the 2D-dominant pseudo-output, in which every 3D
encoding (patch position encodings and proposal geometry encodings) is zero.
Box pooling still happens in the pseudo pass: it is how object tokens are
formed, not a model input, so that pass knows which patches belong to which
proposal but not where anything is.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.fusion import FusionTransformer
from w2r2_ros.model.geometry_encoding import BoxEncoder, PointEncoder
from w2r2_ros.model.grounding_head import CategoryHead, GroundingHead
from w2r2_ros.model.image_encoder import PatchImageEncoder
from w2r2_ros.model.inputs import GroundingInputs


@dataclass
class GroundingOutput:
    """logits (B, N + 1): proposal scores (``GroundingHead``), last column "no target", padded proposals at MASKED_LOGIT;
    object_mask (B, N); category_logits (B, N, C); query_embedding (B, D) and object_embeddings (B, N, D):
    the unit vectors whose cosines are the scores (for diagnostics such as t-SNE of the fused representation).
    """

    logits: torch.Tensor
    object_mask: torch.Tensor
    category_logits: torch.Tensor
    query_embedding: torch.Tensor
    object_embeddings: torch.Tensor

    @property
    def no_target_index(self) -> int:
        return self.logits.shape[-1] - 1


def video_pool_matrix(config: ModelConfig) -> torch.Tensor:
    """(P', P) matrix averaging each video_token_pool x video_token_pool block of the row-major patch grid."""
    v = config.video_token_pool
    rows = torch.arange(config.grid_height) // v
    cols = torch.arange(config.grid_width) // v
    token_of_patch = (rows[:, None] * (config.grid_width // v) + cols[None, :]).flatten()
    matrix = torch.nn.functional.one_hot(token_of_patch, config.video_tokens_per_frame).T.float()
    return matrix / matrix.sum(dim=1, keepdim=True)


class W2R2GroundingModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = PatchImageEncoder(config)
        self.point_encoder = PointEncoder(config)
        self.box_encoder = BoxEncoder(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=0)
        # Object token of a proposal that no keyframe patch falls into (not yet seen from this viewpoint set).
        self.unseen_object = nn.Parameter(torch.randn(config.hidden_size) * 0.02)
        self.fusion = FusionTransformer(config)
        self.grounding_head = GroundingHead(config)
        self.category_head = CategoryHead(config)
        self.register_buffer("video_pool_matrix", video_pool_matrix(config), persistent=False)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Patch features (F, P, D) of frames (F, 3, h, w): text-independent, so callers may cache them per keyframe."""
        return self.image_encoder(frames)

    def forward(
        self,
        inputs: GroundingInputs,
        text_ids: torch.Tensor,
        text_mask: torch.Tensor,
        ablate_3d: bool = False,
        patch_features: torch.Tensor | None = None,
    ) -> GroundingOutput:
        """Score the proposals of ``inputs`` for the texts ``text_ids``/``text_mask`` (B, L).

        ``inputs`` is a batch of B scenes, or one scene (batched or not) shared by all
        B texts. ``patch_features`` (B or 1, K, P, D) replaces ``encode_frames`` of
        ``inputs.frames`` when given (cached by ``Grounder``).
        """
        inputs = inputs.batched()
        cfg = self.config
        b_in, k, p = inputs.patch_valid.shape
        if patch_features is None:
            patch_features = self.encode_frames(inputs.frames.flatten(0, 1)).view(b_in, k, p, -1)
        b = text_ids.shape[0]
        if b_in != b:
            if b_in != 1:
                raise ValueError(f"W2R2GroundingModel: {b_in} scenes for {b} texts (need equal, or one scene)")
            inputs = GroundingInputs(**{name: t.expand(b, *t.shape[1:]) for name, t in vars(inputs).items()})
            patch_features = patch_features.expand(b, *patch_features.shape[1:])

        patch_xyz, boxes = self._centred(inputs)
        # Object tokens pool the *pre-Where* patch features: their "What" stays purely 2D,
        # and their "Where" comes from their own box encoding alone (see docs/MODEL.md).
        weights = inputs.box_patch_weights.flatten(2)
        total = weights.sum(-1, keepdim=True)
        pooled = torch.bmm(weights, patch_features.flatten(1, 2)) / total.clamp_min(1e-6)
        objects = torch.where(total > 0, pooled, self.unseen_object)

        if ablate_3d:
            video = patch_features
        else:
            video = patch_features + self.point_encoder(patch_xyz, inputs.patch_valid)
            objects = objects + self.box_encoder(boxes)
        video = self._pool_video_tokens(video)
        video_mask = inputs.frame_mask.repeat_interleave(cfg.video_tokens_per_frame, dim=1)

        grounding_state, object_states = self.fusion(
            self.word_embeddings(text_ids), text_mask, video, video_mask, objects, inputs.object_mask
        )
        category_logits = self.category_head(object_states)
        logits, query, keys = self.grounding_head(grounding_state, object_states, inputs.object_mask, category_logits)
        return GroundingOutput(
            logits=logits,
            object_mask=inputs.object_mask,
            category_logits=category_logits,
            query_embedding=query,
            object_embeddings=keys,
        )

    def _centred(self, inputs: GroundingInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch xyz and boxes with the scene's mean valid patch (x, y) subtracted (``center_xy``)."""
        if not self.config.center_xy:
            return inputs.patch_xyz, inputs.boxes
        valid = inputs.patch_valid.unsqueeze(-1).to(inputs.patch_xyz.dtype)
        count = valid.sum(dim=(1, 2)).clamp_min(1.0)
        centre = (inputs.patch_xyz * valid).sum(dim=(1, 2)) / count
        centre = centre * centre.new_tensor([1.0, 1.0, 0.0])
        boxes = torch.cat([inputs.boxes[..., :3] - centre[:, None], inputs.boxes[..., 3:]], dim=-1)
        return inputs.patch_xyz - centre[:, None, None], boxes

    def _pool_video_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, K, P, D) patch tokens -> (B, K * P', D) by averaging video_token_pool^2 neighbouring patches.

        A (P', P) averaging matrix, so the pooling is one matrix product (a mean over
        strided views of the grid is several times slower on CPU).
        """
        b, k, _, d = tokens.shape
        return torch.matmul(self.video_pool_matrix, tokens).reshape(b, k * self.video_pool_matrix.shape[0], d)
