"""W2R2GroundingModel: What (2D patch features) + Where (3D encodings) fused by a transformer; scores proposals.

One model serves both passes of W2R2 training (W2R2.md): the fused pass, and
with ``ablate_3d=True`` the 2D-dominant pseudo-output, in which every 3D
encoding (patch position encodings, proposal geometry encodings and the
``RelationHead``'s geometry) is zero.
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
from w2r2_ros.model.grounding_head import CategoryHead, GroundingHead, NameMatch
from w2r2_ros.model.image_encoder import PatchImageEncoder
from w2r2_ros.model.inputs import GroundingInputs
from w2r2_ros.model.object_colour import object_colour_features
from w2r2_ros.model.relation_head import RelationHead
from w2r2_ros.model.text_encoder import TextEncoder


@dataclass
class GroundingOutput:
    """logits (B, N + 1): proposal scores (``GroundingHead``), last column "no target", padded proposals at MASKED_LOGIT;
    object_mask (B, N); category_logits (B, N, C); query_embedding (B, D) and object_embeddings (B, N, D):
    the unit vectors whose cosines are the scores (for diagnostics such as t-SNE of the fused representation);
    anchor_logits (B, A, N): the ``RelationHead``'s anchor pointers (supervised where the data names anchors);
    target_category_logits (B, C) and anchor_category_logits (B, A, C): the categories the text names for the
    target and each anchor (read from the pooled text; supervised where the data gives them);
    colour_logits (B, N, K), target_colour_logits (B, K + 1) and anchor_colour_logits (B, A, K + 1): the
    same for colours (last class: no colour said), None when ``ModelConfig.colours`` is empty;
    relation_logits (B, R): which of ``ModelConfig.relations`` the text asks for, None when that list is empty;
    shape_category_logits (B, N, C): the ``CategoryHead``'s box-shape term alone (part of category_logits),
    None without it (``ModelConfig.category_shape``) or in the 3D-ablated pass;
    pixel_colour_logits (B, N, K): the colour head's pixel-colour term alone (part of colour_logits), None
    without it (``ModelConfig.colour_pixels``) or without colours;
    target_match (B, N): how well each object is the category and colour the query names (``NameMatch.match``);
    object_category (B, N, 384) and target_category (B, 384): the objects' and the query target's category
    features in the pretrained text space (open vocabulary only, else None; ``score_names``).
    """

    logits: torch.Tensor
    object_mask: torch.Tensor
    category_logits: torch.Tensor
    query_embedding: torch.Tensor
    object_embeddings: torch.Tensor
    anchor_logits: torch.Tensor
    target_category_logits: torch.Tensor
    anchor_category_logits: torch.Tensor
    colour_logits: torch.Tensor | None = None
    target_colour_logits: torch.Tensor | None = None
    anchor_colour_logits: torch.Tensor | None = None
    relation_logits: torch.Tensor | None = None
    shape_category_logits: torch.Tensor | None = None
    pixel_colour_logits: torch.Tensor | None = None
    target_match: torch.Tensor | None = None
    object_category: torch.Tensor | None = None
    target_category: torch.Tensor | None = None

    @property
    def no_target_index(self) -> int:
        return self.logits.shape[-1] - 1


@dataclass
class SceneTokens:
    """What the fusion and heads read from a batch of scenes, before any text: video tokens (B, K * P', D) with
    their mask, object tokens (B, N, D) with their mask, the centred proposal boxes (B, N, 6), the proposals'
    pixel colours (``object_colour_features``: (B, N, COLOUR_FEATURES) and whether any frame shows them
    (B, N)), and whether the 3D encodings were zeroed (``ablate_3d``)."""

    video: torch.Tensor
    video_mask: torch.Tensor
    objects: torch.Tensor
    boxes: torch.Tensor
    object_mask: torch.Tensor
    object_colours: torch.Tensor
    object_seen: torch.Tensor
    ablated: bool

    def expand(self, b: int) -> "SceneTokens":
        """One scene's tokens shared by ``b`` texts (views, no copies)."""
        tensors = (self.video, self.video_mask, self.objects, self.boxes, self.object_mask, self.object_colours, self.object_seen)
        return SceneTokens(*(t.expand(b, *t.shape[1:]) for t in tensors), ablated=self.ablated)


def video_pool_matrix(config: ModelConfig) -> torch.Tensor:
    """(P', P) matrix averaging each video_token_pool x video_token_pool block of the row-major patch grid."""
    v = config.video_token_pool
    rows = torch.arange(config.grid_height) // v
    cols = torch.arange(config.grid_width) // v
    token_of_patch = (rows[:, None] * (config.grid_width // v) + cols[None, :]).flatten()
    matrix = torch.nn.functional.one_hot(token_of_patch, config.video_tokens_per_frame).T.float()
    return matrix / matrix.sum(dim=1, keepdim=True)


def to_viewer(points: torch.Tensor, viewer: torch.Tensor) -> torch.Tensor:
    """Map-frame points (B, ..., 3) -> the frame of the viewers (B, 3) ``[x, y, yaw]``: x forward, y left, z kept
    (``w2r2_ros.geometry.viewer.to_viewer_frame`` in torch, batched)."""
    shape = (points.shape[0],) + (1,) * (points.dim() - 2)
    x, y, yaw = (viewer[:, i].reshape(shape).to(points.dtype) for i in range(3))
    c, s = torch.cos(yaw), torch.sin(yaw)
    dx, dy = points[..., 0] - x, points[..., 1] - y
    return torch.stack([c * dx + s * dy, -s * dx + c * dy, points[..., 2]], dim=-1)


def viewer_sizes(oriented_boxes: torch.Tensor, viewer: torch.Tensor) -> torch.Tensor:
    """Sizes (B, N, 3) of boxes turned in yaw (B, N, 7) along the viewer's axes as far as a box's own axes allow:
    its own sx and sy, swapped when the viewer looks closer to the box's y axis than to its x axis. A permutation
    of the box's own sizes, so no size is distorted, and a map turned by any yaw under the box and the viewer
    gives the same sizes (the axis-aligned bounds of a turned box grow instead). Yaw-0 boxes: the bounds."""
    sizes = oriented_boxes[..., 3:6]
    relative = oriented_boxes[..., 6] - viewer[:, 2:3]
    sideways = torch.cos(relative).abs() < torch.sin(relative).abs()
    return torch.where(sideways[..., None], sizes[..., [1, 0, 2]], sizes)


def scene_centre(patch_xyz: torch.Tensor, patch_valid: torch.Tensor) -> torch.Tensor:
    """(B, 3) the mean valid patch (x, y) of each scene (points (B, K, P, 3), any frame), z = 0."""
    valid = patch_valid.unsqueeze(-1).to(patch_xyz.dtype)
    count = valid.sum(dim=(1, 2)).clamp_min(1.0)
    centre = (patch_xyz * valid).sum(dim=(1, 2)) / count
    return centre * centre.new_tensor([1.0, 1.0, 0.0])


def centred_geometry(inputs: GroundingInputs, config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the model reads of the geometry of batched ``inputs``: (patch xyz (B, K, P, 3), boxes (B, N, 6), the
    centre (B, 3) that was subtracted).

    With ``ModelConfig.viewer_frame`` the points and box centres are first expressed in the viewer frame
    (``inputs.viewer``; box sizes by ``viewer_sizes`` from ``inputs.oriented_boxes``), so a map turned about z
    gives the same numbers; with ``center_xy`` the scene's mean valid patch (x, y) in that frame is then
    subtracted: the origin sits at the middle of what the keyframes see, the axes stay the viewer's (forward, left).
    """
    patch_xyz, boxes = inputs.patch_xyz, inputs.boxes
    if config.viewer_frame:
        patch_xyz = to_viewer(patch_xyz, inputs.viewer)
        boxes = torch.cat([to_viewer(boxes[..., :3], inputs.viewer), viewer_sizes(inputs.oriented_boxes, inputs.viewer)], dim=-1)
    if not config.center_xy:
        return patch_xyz, boxes, patch_xyz.new_zeros((patch_xyz.shape[0], 3))
    centre = scene_centre(patch_xyz, inputs.patch_valid)
    boxes = torch.cat([boxes[..., :3] - centre[:, None], boxes[..., 3:]], dim=-1)
    return patch_xyz - centre[:, None, None], boxes, centre


class W2R2GroundingModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = PatchImageEncoder(config)
        self.point_encoder = PointEncoder(config)
        self.box_encoder = BoxEncoder(config)
        self.text_encoder = TextEncoder(config)
        # Object token of a proposal that no keyframe patch falls into (not yet seen from this viewpoint set).
        self.unseen_object = nn.Parameter(torch.randn(config.hidden_size) * 0.02)
        self.fusion = FusionTransformer(config)
        self.grounding_head = GroundingHead(config)
        self.relation_head = RelationHead(config)
        self.names = NameMatch(config)
        self.category_head = CategoryHead(config, shape=config.category_shape)
        # The "What" of an object also has a colour; colours are named in the queries (ModelConfig.colours).
        self.colour_head = CategoryHead(config, len(config.colours), pixels=config.colour_pixels) if config.colours else None
        self.register_buffer("video_pool_matrix", video_pool_matrix(config), persistent=False)

    def read_out_terms(self) -> list[nn.Module]:
        """The term MLPs of the category and colour heads (box shape, pixel colour): small experts on a few
        hand-made features, with their own losses. The trainer gives them a higher learning rate
        (``OptimConfig.term_lr_scale``, where the reason is written)."""
        heads = [head for head in (self.category_head, self.colour_head) if head is not None]
        return [mlp for head in heads for mlp in head.term_mlps()]

    def fine_tuned_pretrained(self) -> list[nn.Module]:
        """The parts started from pretrained weights: the text encoder's top layers when they are ours
        (``ModelConfig.text_finetune_layers``). The trainer gives them a smaller learning rate
        (``OptimConfig.text_finetune_lr_scale``, where the reason is written)."""
        return [self.text_encoder.pretrained_layers] if hasattr(self.text_encoder, "pretrained_layers") else []

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Patch features (F, P, D) of frames (F, 3, h, w): text-independent, so callers may cache them per keyframe."""
        return self.image_encoder(frames)

    def scene_tokens(
        self, inputs: GroundingInputs, patch_features: torch.Tensor | None = None, ablate_3d: bool = False
    ) -> SceneTokens:
        """The text-independent fusion inputs of ``inputs`` (a batch of scenes, or one scene).

        ``patch_features`` (B, K, P, D) replaces ``encode_frames`` of ``inputs.frames`` when
        given. ``Grounder`` keeps the result while keyframes and proposals stay the same, so a
        further question about the scene runs only the text encoder, the fusion and the heads.
        """
        inputs = inputs.batched()
        cfg = self.config
        b, k, p = inputs.patch_valid.shape
        if patch_features is None:
            patch_features = self.encode_frames(inputs.frames.flatten(0, 1)).view(b, k, p, -1)
        patch_xyz, boxes, _ = centred_geometry(inputs, cfg)
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
        colours, seen = object_colour_features(inputs.box_colours, inputs.box_patch_weights)
        return SceneTokens(
            video=self._pool_video_tokens(video),
            video_mask=inputs.frame_mask.repeat_interleave(cfg.video_tokens_per_frame, dim=1),
            objects=objects,
            boxes=boxes,
            object_mask=inputs.object_mask,
            object_colours=colours,
            object_seen=seen,
            ablated=ablate_3d,
        )

    def forward(
        self,
        inputs: GroundingInputs | None,
        text_ids: torch.Tensor,
        text_mask: torch.Tensor,
        ablate_3d: bool = False,
        patch_features: torch.Tensor | None = None,
        scene: SceneTokens | None = None,
    ) -> GroundingOutput:
        """Score the proposals of ``inputs`` for the texts ``text_ids``/``text_mask`` (B, L).

        ``inputs`` is a batch of B scenes, or one scene (batched or not) shared by all
        B texts. ``patch_features`` (B or 1, K, P, D) replaces ``encode_frames`` of
        ``inputs.frames`` when given (cached by ``Grounder``). ``scene`` (``scene_tokens``,
        made with the same ``ablate_3d``) replaces ``inputs`` and ``patch_features``.
        """
        if scene is None:
            if inputs is None:
                raise ValueError("W2R2GroundingModel: give inputs or scene")
            scene = self.scene_tokens(inputs, patch_features, ablate_3d)
        elif scene.ablated != ablate_3d:
            raise ValueError(f"W2R2GroundingModel: scene tokens made with ablate_3d={scene.ablated}, asked for {ablate_3d}")
        b_in, b = scene.video.shape[0], text_ids.shape[0]
        if b_in != b:
            if b_in != 1:
                raise ValueError(f"W2R2GroundingModel: {b_in} scenes for {b} texts (need equal, or one scene)")
            scene = scene.expand(b)
        video, video_mask, objects, boxes = scene.video, scene.video_mask, scene.objects, scene.boxes
        object_mask = scene.object_mask

        text, pooled_text = self.text_encoder(text_ids, text_mask)
        query_states, object_states = self.fusion(
            pooled_text, text, text_mask, video, video_mask, objects, object_mask
        )
        grounding_state = query_states[:, 0]
        names = self.names
        shape_features = None if scene.ablated else self.category_head.shape_logits(boxes)
        object_category = self.category_head(object_states, objects, shape_features)
        pixel_features, colour_logits = None, None
        if self.colour_head is not None:
            pixel_features = self.colour_head.pixel_logits(scene.object_colours, scene.object_seen)
            colour_logits = names.colour_logits(self.colour_head(object_states, objects, pixel_features))
        target_features, target_colour = self.grounding_head.read_target(pooled_text[:, 0], names)
        category_logits, target_category_logits = names.category_logits(object_category), names.category_logits(target_features)
        # Which proposals a relation compares (RelationHead ranks): those that are what the query names.
        candidates = None
        if self.config.relation_ranks:
            candidates = names.probability(
                category_logits, target_category_logits[:, None], colour_logits,
                None if target_colour is None else target_colour[:, None],
            )[:, 0].detach()
        relation_scores, anchor_logits, anchor_category_logits, anchor_colour_logits = self.relation_head(
            pooled_text, query_states[:, 1:], object_states, names, object_category, boxes, object_mask, ablate_3d,
            colour_logits, candidates,
        )
        logits, query, keys, match = self.grounding_head(
            grounding_state, object_states, object_mask, names, object_category, relation_scores,
            (target_features, target_colour), colour_logits,
        )
        return GroundingOutput(
            logits=logits,
            object_mask=object_mask,
            category_logits=category_logits,
            query_embedding=query,
            object_embeddings=keys,
            anchor_logits=anchor_logits,
            target_category_logits=target_category_logits,
            anchor_category_logits=anchor_category_logits,
            colour_logits=colour_logits,
            target_colour_logits=target_colour,
            anchor_colour_logits=anchor_colour_logits,
            relation_logits=self.relation_head.classify_relation(pooled_text),
            shape_category_logits=names.category_logits(shape_features),
            pixel_colour_logits=names.colour_logits(pixel_features),
            target_match=match,
            object_category=object_category if self.config.open_vocabulary else None,
            target_category=target_features if self.config.open_vocabulary else None,
        )

    def set_names(self, categories: torch.Tensor, colours: torch.Tensor) -> None:
        """Store the text embeddings (``PretrainedText.name_embeddings``) of ``config.categories`` and
        ``config.colours`` (open vocabulary only; they are saved with the weights)."""
        if self.names.categories is None:
            raise ValueError("W2R2GroundingModel.set_names: this model has fixed-class heads (no text_model)")
        self.names.categories.names.copy_(categories)
        if self.names.colours is not None:
            self.names.colours.names.copy_(colours)

    def score_names(self, features: torch.Tensor, name_embeddings: torch.Tensor) -> torch.Tensor:
        """Logits (..., M) of category features (``GroundingOutput.object_category``/``target_category``) against
        any names' text embeddings (M, 384): how the open vocabulary is asked about names it was not trained on."""
        if self.names.categories is None:
            raise ValueError("W2R2GroundingModel.score_names: this model has fixed-class heads (no text_model)")
        return self.names.categories.score(features, name_embeddings)

    def _pool_video_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, K, P, D) patch tokens -> (B, K * P', D) by averaging video_token_pool^2 neighbouring patches.

        A (P', P) averaging matrix, so the pooling is one matrix product (a mean over
        strided views of the grid is several times slower on CPU).
        """
        b, k, _, d = tokens.shape
        return torch.matmul(self.video_pool_matrix, tokens).reshape(b, k * self.video_pool_matrix.shape[0], d)
