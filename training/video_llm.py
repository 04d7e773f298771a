"""A fresh video-LLM model for a training run (``TrainConfig.model_kind = "video_llm"``; docs/VLM.md).

The dataset must have been prepared for the base's token grid: ``model.patch_size`` is the
pixels of one merged visual token (28 for Qwen2.5-VL) and ``model.video_token_pool`` 1, so
that ``patch_xyz`` and the box pooling weights are per visual token. A config that says
otherwise is refused before anything trains.
"""
from __future__ import annotations

import dataclasses

from w2r2_ros.vlm.base_model import BaseModelError, load_base
from w2r2_ros.vlm.checkpoint import build_video_llm
from w2r2_ros.vlm.model import VLMTokenizer, W2R2VideoLLM
from w2r2_training.config import ConfigError, TrainConfig
from w2r2_training.dataset import GroundingDataset
from w2r2_training.losses import W2R2LossConfig


def new_video_llm(config: TrainConfig, train_set: GroundingDataset) -> tuple[W2R2VideoLLM, VLMTokenizer, TrainConfig]:
    """Model, tokenizer and the run's resolved config (categories from the data, the LM's hidden size, the base's hash)."""
    try:
        loaded = load_base(config.vlm.base_model, expected_sha256=config.vlm.base_config_sha256)
    except BaseModelError as error:
        raise ConfigError(f"vlm.base_model: {error}") from None
    token_pixels = loaded.layout.token_pixels
    if config.model.patch_size != token_pixels or config.model.video_token_pool != 1:
        raise ConfigError(
            f"model.patch_size must be {token_pixels} (one merged visual token of {config.vlm.base_model}) and "
            f"model.video_token_pool 1, got {config.model.patch_size} and {config.model.video_token_pool}"
        )
    model_config = dataclasses.replace(
        config.model,
        hidden_size=int(loaded.model.config.text_config.hidden_size),
        vocab_size=len(loaded.tokenizer),
        text_model="",  # the video LLM reads the text with its own language model
        categories=tuple(train_set.categories),
        colours=(),
        relations=(),
    )
    train_set.manifest.check_model_config(model_config, train_set.root / "manifest.json")
    model, tokenizer = build_video_llm(model_config, config.vlm, loaded=loaded)
    return model, tokenizer, dataclasses.replace(config, model=model_config, vlm=model.vlm_config)


def freeze_unweighted_heads(model: W2R2VideoLLM, loss: W2R2LossConfig) -> None:
    """Freeze the auxiliary heads whose loss weight is 0: they would get no gradient, which DDP refuses
    (every trained parameter must get one each step), and AdamW would only decay them. They are still saved."""
    heads = model.heads
    unused = [
        *([heads.category] if loss.category_weight == 0 else []),
        *([heads.anchor_query] if loss.anchor_weight == 0 else []),
        *([heads.target_category, heads.anchor_category] if loss.text_category_weight == 0 else []),
    ]
    for module in unused:
        module.requires_grad_(False)
