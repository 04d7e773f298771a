"""Video-LLM checkpoints: the trained parameters in safetensors + a JSON naming the base; never the base's weights.

    config.json          {"format": "w2r2-video-llm", "model": ModelConfig, "vlm": VLMConfig, "metadata": ...}
    trained.safetensors  LoRA adapters, Where encoders, markers, heads (and the vision tower if it was trained)

``VLMConfig.base_model`` names the base (hub id or directory) and ``base_config_sha256`` the
hash of its config.json: loading finds the base (``W2R2_VLM_BASE`` names another copy of the
same base), refuses one with another hash, and fails in one line naming the base to provide
when it is absent. Nothing is pickled.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from w2r2_ros.model.checkpoint import VIDEO_LLM_FORMAT as FORMAT_NAME
from w2r2_ros.model.checkpoint import check_weights_match, read_weights, save_safetensors
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.vlm.base_model import BaseModelError, LoadedBase, canonical_base, load_base
from w2r2_ros.vlm.config import VLMConfig
from w2r2_ros.vlm.model import VLMTokenizer, W2R2VideoLLM

FORMAT_VERSION = 1
WEIGHTS_FILE = "trained.safetensors"
# Another location of the checkpoint's base (same config hash), e.g. where a robot keeps its models.
BASE_OVERRIDE_ENV = "W2R2_VLM_BASE"


def geometry_for(model_config: ModelConfig, loaded: LoadedBase) -> ModelConfig:
    """``model_config`` with what the base fixes: one "patch" per merged visual token, no further pooling,
    the LM's hidden size."""
    return dataclasses.replace(
        model_config,
        patch_size=loaded.layout.token_pixels,
        video_token_pool=1,
        hidden_size=int(loaded.model.config.text_config.hidden_size),
    )


def build_video_llm(
    model_config: ModelConfig, vlm_config: VLMConfig, dtype: torch.dtype = torch.float32, loaded: LoadedBase | None = None
) -> tuple[W2R2VideoLLM, VLMTokenizer]:
    """A fresh ``W2R2VideoLLM`` on the base ``vlm_config.base_model`` (its config hash recorded in the model's
    ``vlm_config``); ``model_config.patch_size``/``hidden_size``/``video_token_pool`` must match the base."""
    if loaded is None:
        loaded = load_base(vlm_config.base_model, dtype, vlm_config.base_config_sha256)
    vlm_config = dataclasses.replace(
        vlm_config, base_model=canonical_base(vlm_config.base_model), base_config_sha256=loaded.config_sha256
    )
    tokenizer = VLMTokenizer(loaded.tokenizer)
    model = W2R2VideoLLM(loaded.model, tokenizer, loaded.family, loaded.layout, model_config, vlm_config)
    return model, tokenizer


def save_video_llm(
    model: W2R2VideoLLM, directory: Path, metadata: dict[str, Any], state: dict[str, torch.Tensor] | None = None
) -> None:
    """Write config.json and trained.safetensors into ``directory`` (an empty staging directory: the caller
    swaps it into place, as ``save_checkpoint`` does for both kinds). ``state``: the tensors of
    ``model.trainable_state()`` gathered whole when the processes hold shards (ZeRO-3; the trainer's
    ``sharded_state.gather_weights``), else they are read from ``model``."""
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "vlm": model.vlm_config.to_dict(),
        "metadata": metadata,
    }
    text = json.dumps(document, indent=2, sort_keys=True)
    expected = model.trainable_state()
    if state is not None and set(state) != set(expected):
        raise ValueError("save_video_llm: the given state has other tensors than the model's trained ones")
    tensors = expected if state is None else state
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    save_safetensors(state, directory / WEIGHTS_FILE, metadata={"format": FORMAT_NAME})
    (directory / "config.json").write_text(text + "\n")


# Checkpoints written before the changes for DeepSpeed ZeRO-3 (model.py: ``LearnedTokens``, the (1,) logit scale).
_RENAMED = {"markers": "tokens.markers", "object_embedding": "tokens.object_embedding", "unseen_object": "tokens.unseen_object"}


def _upgraded(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = {_RENAMED.get(name, name): tensor for name, tensor in state.items()}
    return {n: v.reshape(1) if n.endswith("log_logit_scale") and v.dim() == 0 else v for n, v in state.items()}


def load_video_llm(
    directory: Path, document: dict[str, Any], device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[W2R2VideoLLM, VLMTokenizer]:
    """Model (eval mode, on ``device``) and tokenizer of a checkpoint whose config.json is ``document``.

    Raises ValueError (``CheckpointError`` from ``load_checkpoint``) with one line: base missing or
    different, weights missing or not matching the config.
    """
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory / 'config.json'}: format_version {document.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    try:
        model_config = ModelConfig.from_dict(document["model"])
        vlm_config = VLMConfig.from_dict(document["vlm"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{directory / 'config.json'}: bad model config ({error})") from None
    weights = directory / WEIGHTS_FILE
    state = read_weights(weights)
    state = _upgraded(state)
    base = os.environ.get(BASE_OVERRIDE_ENV) or vlm_config.base_model
    try:
        loaded = load_base(base, dtype, vlm_config.base_config_sha256)
    except BaseModelError as error:
        hint = "" if os.environ.get(BASE_OVERRIDE_ENV) else f" ({BASE_OVERRIDE_ENV}=<dir> names another copy of it)"
        raise ValueError(f"{directory}: needs base model {vlm_config.base_model}{hint}: {error}") from None
    model, tokenizer = build_video_llm(model_config, vlm_config, dtype, loaded)
    check_weights_match(weights, {n: tuple(t.shape) for n, t in state.items()}, {n: tuple(t.shape) for n, t in model.trainable_state().items()})
    model.load_state_dict(state, strict=False)
    return model.to(device).eval(), tokenizer
