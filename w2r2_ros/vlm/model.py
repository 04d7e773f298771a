"""W2R2VideoLLM: a pretrained video LLM (Qwen2.5-VL) that scores object proposals, with 3D "Where" added to its visual tokens.

The sequence the language model reads (docs/VLM.md)::

    <system + user header> [<vision_start> frame-1 tokens <vision_end>] ... [frame K]
    Objects: <objects> o_1 ... o_N </objects>
    <query text> <assistant header> <ground>

- frame tokens: the vision tower's merged tokens of each keyframe (one image per keyframe),
  plus a Where encoding of the world point of the depth samples inside the token's pixels;
- o_i: box-weighted mean of the visual tokens inside proposal i (before Where: its What is
  2D only) plus an encoding of its box (its Where) plus a learned "object" embedding;
- ``<objects>``, ``</objects>``, ``<ground>``: learned marker embeddings (not vocabulary
  entries: the base's embedding table and tokenizer stay untouched);
- ``<ground>`` comes last: a causal LM only sees what came before, so its hidden state has read
  the scene, the objects and the query. Objects are scored by the cosine of their hidden state
  with it (``VLMGroundingHeads``); object states come before the query, so they do not depend
  on it, and serving caches the whole scene prefix (KV cache + object states, ``VLMScene``):
  a further query over the same scene runs the LM over the query tokens only.

The visual features are computed with the model's own ``get_image_features``, changed (Where
added), and passed back in through ``mm_encoder_outputs`` with 3D rope positions from its own
``get_rope_index``: no fork of the model class. The 2D-only pass (``ablate_3d``) adds no
Where encoding anywhere (patch and box), as in ``W2R2GroundingModel``.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.geometry_encoding import FourierFeatures, log_size
from w2r2_ros.model.grounding_head import MASKED_LOGIT, MAX_LOGIT_SCALE
from w2r2_ros.model.grounding_model import GroundingOutput, centred_geometry
from w2r2_ros.model.inputs import GroundingInputs
from w2r2_ros.vlm.base_model import FamilyAdapter
from w2r2_ros.vlm.config import VLMConfig
from w2r2_ros.vlm.frames import VisionLayout, patchify_frames


class VLMTokenizer:
    """The base's tokenizer behind the ``encode(texts, max_length) -> (ids, mask)`` contract of ``QueryTokenizer``,
    so ``collate_grounding``, ``evaluate_model`` and ``Grounder`` serve both model kinds."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def ids(self, text: str) -> list[int]:
        """Token ids of ``text`` (special-token markup such as ``<|im_start|>`` included), no BOS/EOS added."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, L) int64 and mask (B, L) bool, right-padded; texts longer than ``max_length`` are cut."""
        rows = [self.ids(text)[:max_length] for text in texts]
        length = max(1, max((len(r) for r in rows), default=1))
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.bool)
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, : len(tokens)] = True
        return ids, mask

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)


class WhereEncoder(nn.Module):
    """sin/cos features of world coordinates (``FourierFeatures``) -> MLP -> an LM-sized vector, added to a token.

    The output layer starts small (``VLMConfig.where_init_std``): the pretrained visual features
    dominate at step 0 and geometry grows in through training.
    """

    def __init__(self, in_dims: int, extra: int, model: ModelConfig, vlm: VLMConfig, out_size: int) -> None:
        super().__init__()
        self.fourier = FourierFeatures(model.fourier_bands, model.min_wavelength_m, model.max_wavelength_m)
        self.mlp = nn.Sequential(
            nn.Linear(self.fourier.output_size(in_dims) + extra, vlm.where_hidden), nn.GELU(), nn.Linear(vlm.where_hidden, out_size)
        )
        nn.init.normal_(self.mlp[-1].weight, std=vlm.where_init_std)
        nn.init.zeros_(self.mlp[-1].bias)

    def points(self, xyz: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(..., 3) world points -> (..., D), zero where ``valid`` is False (no depth in the token's pixels)."""
        return self.mlp(self.fourier(xyz)) * valid.unsqueeze(-1).to(xyz.dtype)

    def boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(..., 6) boxes (centre, size) -> (..., D): centre as sin/cos, size as log size."""
        return self.mlp(torch.cat([self.fourier(boxes[..., :3]), log_size(boxes)], dim=-1))


class LearnedTokens(nn.Module):
    """The input embeddings this kind adds to the language model's: the ``MARKERS`` (rows of ``markers``), the
    embedding added to every object token, and the token of an object that no keyframe sees.

    A module whose ``forward`` returns them, not parameters of ``W2R2VideoLLM`` read directly: DeepSpeed ZeRO-3
    gathers a module's sharded parameters for the backward pass through hooks on the module's output tensors,
    and ``W2R2VideoLLM`` returns a ``GroundingOutput``, which it cannot look into (its gradients then met empty
    shards: "The size of tensor a (0) must match ...").
    """

    def __init__(self, markers: int, hidden: int, scale: float) -> None:
        super().__init__()
        self.markers = nn.Parameter(torch.randn(markers, hidden) * scale)
        self.object_embedding = nn.Parameter(torch.randn(hidden) * scale)
        self.unseen_object = nn.Parameter(torch.randn(hidden) * scale)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(markers (M, D), object embedding (D,), unseen-object token (D,)): copies, since ZeRO-3 empties the
        parameters themselves when the module's forward returns."""
        return self.markers.clone(), self.object_embedding.clone(), self.unseen_object.clone()


class VLMGroundingHeads(nn.Module):
    """Scores and auxiliary read-outs from the ``<ground>`` and object hidden states, as ``GroundingOutput``.

    score_i = cos(W_q g, W_k h_i) / tau (tau learned from ``ModelConfig.temperature``, 1/tau capped
    at ``MAX_LOGIT_SCALE``, as in ``GroundingHead``), plus a "no target" logit from g in the last column;
    the category of each object (from h_i) and of the target and anchors the text names (from g), and
    ``relation_anchors`` anchor pointers (cosine of their own projection of g with the object keys), so the
    trainer's auxiliary losses apply to this kind unchanged.
    """

    def __init__(self, hidden: int, config: ModelConfig, vlm: VLMConfig) -> None:
        super().__init__()
        c, a, d = len(config.categories), config.relation_anchors, vlm.head_size
        self.anchors, self.categories = a, c
        # Shape (1,), not (): DeepSpeed's start-up broadcast views every parameter as bytes, which a 0-dim one cannot be.
        self.log_logit_scale = nn.Parameter(torch.full((1,), -math.log(config.temperature)))
        self.query = nn.Linear(hidden, d)
        self.key = nn.Linear(hidden, d)
        self.anchor_query = nn.Linear(hidden, a * d)
        self.no_target = nn.Linear(hidden, 1)
        self.category = nn.Linear(hidden, c)
        self.target_category = nn.Linear(hidden, c)
        self.anchor_category = nn.Linear(hidden, a * c)

    def read(self, ground: torch.Tensor, objects: torch.Tensor, object_mask: torch.Tensor) -> GroundingOutput:
        """ground (B, D), objects (B, N, D), object_mask (B, N) -> ``GroundingOutput`` (float32)."""
        return GroundingOutput(**self(ground, objects, object_mask))

    def forward(self, ground: torch.Tensor, objects: torch.Tensor, object_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """``read``'s fields as a dict: DeepSpeed ZeRO-3 finds a module's output tensors in tuples and dicts only,
        and a module whose outputs it cannot see breaks its backward hooks (``active_backward_submodules is empty``)."""
        ground, objects = ground.float(), objects.float()
        b = ground.shape[0]
        scale = self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        query = F.normalize(self.query(ground), dim=-1)
        keys = F.normalize(self.key(objects), dim=-1)
        scores = torch.einsum("bd,bnd->bn", query, keys) * scale
        scores = scores.masked_fill(~object_mask, MASKED_LOGIT)
        anchor_queries = F.normalize(self.anchor_query(ground).view(b, self.anchors, -1), dim=-1)
        anchor_logits = (torch.einsum("bad,bnd->ban", anchor_queries, keys) * scale).masked_fill(~object_mask[:, None], MASKED_LOGIT)
        return dict(
            logits=torch.cat([scores, self.no_target(ground)], dim=-1),
            object_mask=object_mask,
            category_logits=self.category(objects),
            query_embedding=query,
            object_embeddings=keys,
            anchor_logits=anchor_logits,
            target_category_logits=self.target_category(ground),
            anchor_category_logits=self.anchor_category(ground).view(b, self.anchors, self.categories),
        )


@dataclass
class VLMScene:
    """One scene's prefix, run once by ``W2R2VideoLLM.scene_tokens`` for serving: the language model's KV cache
    of [header, frames, objects], the objects' hidden states (1, N, D) with their mask, and the rope position
    the query starts at. ``forward(None, ..., scene=...)`` runs only the query tokens against it."""

    cache: Any
    object_states: torch.Tensor
    object_mask: torch.Tensor
    next_position: int
    ablated: bool


@dataclass
class _Layout:
    """Token ids (B, T), attention mask, and where the objects (B, N; 0 where padded), the three markers (B, 3)
    and the ``<ground>`` token (B,; -1 without the query) sit."""

    ids: torch.Tensor
    mask: torch.Tensor
    object_positions: torch.Tensor
    marker_positions: torch.Tensor


class W2R2VideoLLM(nn.Module):
    """The video-LLM kind with the interface of ``W2R2GroundingModel`` (``config``, ``encode_frames``,
    ``scene_tokens``, ``forward`` -> ``GroundingOutput``), so the trainer, ``evaluate_model`` and
    ``Grounder`` drive either kind.

    ``config`` is the input geometry (``ModelConfig``: frame size, one "patch" = one merged visual token,
    categories, text length; ``hidden_size`` = the LM's); ``vlm_config`` the rest.
    """

    MARKERS = ("objects_start", "objects_end", "ground")

    def __init__(
        self,
        base_model: nn.Module,
        tokenizer: VLMTokenizer,
        family: FamilyAdapter,
        layout: VisionLayout,
        config: ModelConfig,
        vlm_config: VLMConfig,
    ) -> None:
        super().__init__()
        hf_config = base_model.config
        hidden = int(hf_config.text_config.hidden_size)
        if config.patch_size != layout.token_pixels:
            raise ValueError(f"W2R2VideoLLM: model.patch_size must be {layout.token_pixels} (one merged visual token), got {config.patch_size}")
        if config.video_token_pool != 1 or config.hidden_size != hidden:
            raise ValueError(f"W2R2VideoLLM: model.video_token_pool must be 1 and hidden_size {hidden} (the LM's)")
        self.config, self.vlm_config, self.family, self.layout = config, vlm_config, family, layout
        self.tokenizer = tokenizer
        self.backbone = _with_lora(base_model, family, vlm_config)
        for parameter in self._qwen.visual.parameters():
            parameter.requires_grad_(vlm_config.train_vision)
        if vlm_config.gradient_checkpointing:
            base_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        self.where = WhereEncoder(3, 0, config, vlm_config, hidden)
        self.box_where = WhereEncoder(3, 3, config, vlm_config, hidden)
        scale = float(self._qwen.get_input_embeddings().weight.float().std())
        self.tokens = LearnedTokens(len(self.MARKERS), hidden, scale)
        self.heads = VLMGroundingHeads(hidden, config, vlm_config)
        self._prompt = {
            "header": tokenizer.ids(family.user_prefix.format(system=vlm_config.system_prompt)),
            "objects_intro": tokenizer.ids("\nObjects: "),
            "objects_outro": tokenizer.ids("\n"),
            "assistant": tokenizer.ids(family.assistant_prefix),
        }
        self._filler = tokenizer.pad_id
        self._vision_ids = (int(hf_config.vision_start_token_id), int(hf_config.image_token_id), int(hf_config.vision_end_token_id))
        if self._filler in self._vision_ids:
            raise ValueError("W2R2VideoLLM: the tokenizer's pad token is a vision token")

    # --- pieces -----------------------------------------------------------------------------

    @property
    def _qwen(self) -> nn.Module:
        """The ``*VLModel`` inside (vision tower + language model), LoRA layers in place."""
        model = self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone
        return model.model

    def read_out_terms(self) -> list[nn.Module]:
        """No separate-rate read-out terms in this kind (``parameter_groups``)."""
        return []

    def fine_tuned_pretrained(self) -> list[nn.Module]:
        """None at a separate rate in this kind: its LoRA layers learn at the model's (``parameter_groups``)."""
        return []

    def _autocast(self) -> contextlib.AbstractContextManager:
        device = self.tokens.markers.device
        if device.type == "cuda" and self.vlm_config.autocast_bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Visual tokens (F, P, D) of frames (F, 3, H, W) in [0, 1] from the vision tower (no grad while it is frozen)."""
        f = frames.shape[0]
        p = self.config.patches_per_frame
        if f == 0:
            return frames.new_zeros((0, p, self.config.hidden_size))
        pixel_values, grid = patchify_frames(frames.float(), self.layout)
        visual = self._qwen.visual
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.vlm_config.train_vision), self._autocast():
            out = self._qwen.get_image_features(pixel_values.to(visual.dtype), grid, return_dict=True)
        return torch.cat(out.pooler_output).view(f, p, -1)

    def patch_where(self, patch_xyz: torch.Tensor, patch_valid: torch.Tensor) -> torch.Tensor:
        """Where encodings (..., P, D) of visual tokens from their centred world points (``centred_geometry``):
        one keyframe's depends only on its own points and the scene centre, so ``Grounder`` caches it per keyframe."""
        with self._autocast():
            return self.where.points(patch_xyz, patch_valid)

    def _scene_embeddings(
        self, inputs: GroundingInputs, patch_features: torch.Tensor, ablate_3d: bool,
        patch_where: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Visual tokens (B, K, P, D) with Where added (``patch_where`` (B, K, P, D) when given, as cached by
        ``Grounder``), and object tokens (B, N, D)."""
        patch_xyz, boxes, _ = centred_geometry(inputs, self.config)
        weights = inputs.box_patch_weights.flatten(2).to(patch_features.dtype)
        total = weights.sum(-1, keepdim=True)
        pooled = torch.bmm(weights, patch_features.flatten(1, 2)) / total.clamp_min(1e-6)
        _, object_embedding, unseen_object = self.tokens()
        objects = torch.where(total > 0, pooled, unseen_object.to(pooled.dtype)) + object_embedding.to(pooled.dtype)
        visual = patch_features
        if not ablate_3d:
            if patch_where is None:
                patch_where = self.where.points(patch_xyz, inputs.patch_valid)
            visual = visual + patch_where.to(visual.dtype)
            objects = objects + self.box_where.boxes(boxes).to(objects.dtype)
        return visual, objects

    def _layout(
        self, frame_mask: torch.Tensor, object_mask: torch.Tensor, queries: list[list[int]] | None
    ) -> _Layout:
        """The token ids of each sample's sequence (module docstring), right-padded; ``queries`` None: the scene
        prefix only (up to the objects)."""
        vision_start, image, vision_end = self._vision_ids
        frame_tokens = [vision_start] + [image] * self.config.patches_per_frame + [vision_end]
        rows, objects, markers = [], [], []
        for b in range(frame_mask.shape[0]):
            ids = list(self._prompt["header"]) + frame_tokens * int(frame_mask[b].sum()) + self._prompt["objects_intro"]
            start = len(ids)
            valid = torch.nonzero(object_mask[b]).flatten().tolist()
            positions = [0] * object_mask.shape[1]
            for slot, index in enumerate(valid):
                positions[index] = start + 1 + slot
            ids += [self._filler] * (len(valid) + 2) + self._prompt["objects_outro"]
            ground = -1
            if queries is not None:
                ids += queries[b] + self._prompt["assistant"] + [self._filler]
                ground = len(ids) - 1
            rows.append(ids)
            objects.append(positions)
            markers.append([start, start + 1 + len(valid), ground])
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self._filler, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for b, row in enumerate(rows):
            ids[b, : len(row)] = torch.tensor(row)
            mask[b, : len(row)] = 1
        return _Layout(ids, mask, torch.tensor(objects, dtype=torch.long).view(len(rows), -1), torch.tensor(markers))

    def _run(
        self, layout: _Layout, visual: torch.Tensor, frame_mask: torch.Tensor, objects: torch.Tensor,
        object_mask: torch.Tensor, use_cache: bool,
    ) -> tuple[Any, torch.Tensor]:
        """The language model over ``layout`` with visual tokens, objects and markers in place -> (output, position ids)."""
        device = visual.device
        ids, mask = layout.ids.to(device), layout.mask.to(device)
        embed = self._qwen.get_input_embeddings()
        embeds = embed(ids)
        rows = torch.arange(ids.shape[0], device=device)
        has_query = bool((layout.marker_positions[:, 2] >= 0).all())
        marker_count = 3 if has_query else 2
        marker_positions = layout.marker_positions[:, :marker_count].to(device)
        embeds = embeds.index_put(
            (rows[:, None].expand_as(marker_positions), marker_positions),
            self.tokens()[0][:marker_count].to(embeds.dtype).expand(ids.shape[0], -1, -1),
        )
        valid_rows, valid_slots = torch.nonzero(object_mask, as_tuple=True)
        embeds = embeds.index_put(
            (valid_rows, layout.object_positions.to(device)[valid_rows, valid_slots]),
            objects[valid_rows, valid_slots].to(embeds.dtype),
        )
        image_rows, image_frames = torch.nonzero(frame_mask, as_tuple=True)
        images = int(image_rows.numel())
        grid = None
        encoder_outputs = None
        if images:
            features = visual[image_rows, image_frames].flatten(0, 1)
            grid = torch.tensor(
                [[1, self.config.grid_height * self.layout.merge_size, self.config.grid_width * self.layout.merge_size]] * images,
                dtype=torch.long, device=device,
            )
            from transformers.modeling_outputs import BaseModelOutputWithPooling

            encoder_outputs = {"image": BaseModelOutputWithPooling(pooler_output=(features,))}
        token_types = (ids == self._vision_ids[1]).int()
        position_ids, _ = self._qwen.get_rope_index(ids, token_types, image_grid_thw=grid, attention_mask=mask)
        output = self._qwen(
            input_ids=ids, inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids,
            mm_encoder_outputs=encoder_outputs, use_cache=use_cache,
        )
        return output, position_ids

    # --- the model's interface ---------------------------------------------------------------

    def scene_tokens(
        self, inputs: GroundingInputs, patch_features: torch.Tensor | None = None, ablate_3d: bool = False,
        patch_where: torch.Tensor | None = None,
    ) -> VLMScene:
        """Run one scene's prefix (header, frames, objects) once and keep it (``VLMScene``) for its queries;
        ``patch_features`` and ``patch_where`` (1, K, P, D), when given, are the keyframes' cached visual tokens and
        their Where encodings (``Grounder``)."""
        inputs = inputs.batched()
        if inputs.frames.shape[0] != 1:
            raise ValueError(f"W2R2VideoLLM.scene_tokens: one scene at a time, got {inputs.frames.shape[0]}")
        with self._autocast():
            if patch_features is None:
                patch_features = self.encode_frames(inputs.frames[0]).unsqueeze(0)
            visual, objects = self._scene_embeddings(inputs, patch_features, ablate_3d, patch_where)
            layout = self._layout(inputs.frame_mask, inputs.object_mask, None)
            output, positions = self._run(layout, visual, inputs.frame_mask, objects, inputs.object_mask, use_cache=True)
        hidden = output.last_hidden_state
        states = hidden[0, layout.object_positions[0].to(hidden.device)] * inputs.object_mask[0, :, None]
        return VLMScene(output.past_key_values, states.unsqueeze(0), inputs.object_mask, int(positions.max()) + 1, ablate_3d)

    def forward(
        self,
        inputs: GroundingInputs | None,
        text_ids: torch.Tensor,
        text_mask: torch.Tensor,
        ablate_3d: bool = False,
        patch_features: torch.Tensor | None = None,
        scene: VLMScene | None = None,
    ) -> GroundingOutput:
        """Score the proposals of ``inputs`` (B scenes, or one shared by the B texts) for the texts (B, L).

        ``patch_features`` (B or 1, K, P, D) replaces ``encode_frames`` of ``inputs.frames``; ``scene``
        (``scene_tokens`` with the same ``ablate_3d``) replaces ``inputs`` and runs only the query tokens.
        """
        queries = [row[mask].tolist() for row, mask in zip(text_ids.cpu(), text_mask.cpu())]
        if scene is not None:
            if scene.ablated != ablate_3d:
                raise ValueError(f"W2R2VideoLLM: scene made with ablate_3d={scene.ablated}, asked for {ablate_3d}")
            return self._answer(scene, queries)
        if inputs is None:
            raise ValueError("W2R2VideoLLM: give inputs or scene")
        inputs = inputs.batched()
        b, k, p = inputs.patch_valid.shape
        with self._autocast():
            if patch_features is None:
                patch_features = self.encode_frames(inputs.frames.flatten(0, 1)).view(b, k, p, -1)
            visual, objects = self._scene_embeddings(inputs, patch_features, ablate_3d)
            frame_mask, object_mask = inputs.frame_mask, inputs.object_mask
            if b != len(queries):
                if b != 1:
                    raise ValueError(f"W2R2VideoLLM: {b} scenes for {len(queries)} texts (need equal, or one scene)")
                n = len(queries)
                visual, objects = visual.expand(n, *visual.shape[1:]), objects.expand(n, *objects.shape[1:])
                frame_mask, object_mask = frame_mask.expand(n, -1), object_mask.expand(n, -1)
            layout = self._layout(frame_mask, object_mask, queries)
            output, _ = self._run(layout, visual, frame_mask, objects, object_mask, use_cache=False)
        hidden = output.last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        object_states = hidden[rows[:, None], layout.object_positions.to(hidden.device)]
        ground = hidden[rows, layout.marker_positions[:, 2].to(hidden.device)]
        return self.heads.read(ground, object_states, object_mask)

    def _answer(self, scene: VLMScene, queries: list[list[int]]) -> GroundingOutput:
        """Each query's tokens, the assistant header and ``<ground>`` against the scene's cached prefix."""
        grounds = []
        device = scene.object_states.device
        embed = self._qwen.get_input_embeddings()
        for query in queries:
            ids = torch.tensor([query + self._prompt["assistant"]], dtype=torch.long, device=device)
            with self._autocast():
                embeds = torch.cat([embed(ids), self.tokens()[0][2:3].to(embed.weight.dtype)[None]], dim=1)
                length = embeds.shape[1]
                positions = (scene.next_position + torch.arange(length, device=device)).view(1, 1, -1).expand(3, 1, -1)
                try:
                    output = self._qwen.language_model(
                        inputs_embeds=embeds, position_ids=positions, past_key_values=scene.cache, use_cache=True
                    )
                finally:
                    scene.cache.crop(-length)  # the cache holds the scene prefix again
            grounds.append(output.last_hidden_state[:, -1])
        b = len(queries)
        ground = torch.cat(grounds)
        return self.heads.read(ground, scene.object_states.expand(b, -1, -1), scene.object_mask.expand(b, -1))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint saves: the modules added to the base (Where encoders, markers, heads) and what trains
        inside it (LoRA; the vision tower with ``train_vision``); never the frozen base weights."""
        return {
            name: p.detach() for name, p in self.named_parameters() if p.requires_grad or not name.startswith("backbone.")
        }


def _with_lora(model: nn.Module, family: FamilyAdapter, config: VLMConfig) -> nn.Module:
    """``model`` frozen, with LoRA adapters on the language model's projections (``lora_rank`` 0: none)."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if config.lora_rank == 0:
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, bias="none",
        target_modules=family.lora_module_pattern(config.lora_projections),
    )
    with warnings.catch_warnings():  # peft 0.21 asks transformers 5.23 a deprecated question about checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, lora)


def iter_lora_module_names(model: nn.Module) -> Iterator[str]:
    """Names of the modules that carry a LoRA adapter (for checks and docs)."""
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and len(getattr(module, "lora_A")):
            yield name
