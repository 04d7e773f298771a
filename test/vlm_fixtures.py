"""The video-LLM kind at toy size for tests: a tiny random Qwen2.5-VL base, a model on it, data at its token grid."""
from __future__ import annotations

import socket
from pathlib import Path

import torch

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.inputs import GroundingInputs
from w2r2_ros.vlm.checkpoint import build_video_llm
from w2r2_ros.vlm.config import VLMConfig
from w2r2_ros.vlm.model import VLMTokenizer, W2R2VideoLLM
from w2r2_ros.vlm.tiny_base import write_tiny_base
from w2r2_training.synthetic_dataset import build_synthetic_dataset

# 112 x 84 pixels = 4 x 3 merged visual tokens of 28 pixels (14-pixel patches merged 2 x 2).
GEOMETRY = {"image_width": 112, "image_height": 84, "patch_size": 28, "video_token_pool": 1, "max_text_length": 24}
CATEGORIES = ("chair", "table", "lamp")


def tiny_vlm_config(base: Path, **changes) -> VLMConfig:
    values = {"base_model": str(base), "lora_rank": 4, "lora_alpha": 8, "lora_dropout": 0.0, "where_hidden": 64, "head_size": 64}
    return VLMConfig(**{**values, **changes})


def tiny_video_llm(
    base: Path, seed: int = 0, categories: tuple[str, ...] = CATEGORIES, **changes
) -> tuple[W2R2VideoLLM, VLMTokenizer]:
    torch.manual_seed(seed)
    config = ModelConfig(**GEOMETRY, hidden_size=64, categories=categories)
    return build_video_llm(config, tiny_vlm_config(base, **changes))


def write_base(directory: Path) -> Path:
    return write_tiny_base(directory)


def build_vlm_dataset(root: Path) -> Path:
    """Two training scenes, one val, one test, prepared at the tiny base's token grid."""
    build_synthetic_dataset(
        root, model=ModelConfig(**GEOMETRY), n_train=2, n_val=1, n_test=1, frames_per_scene=4, keyframes_per_scene=2,
        width=160, height=120, progress=False, workers=1,
    )
    return root


def random_inputs(frames: int = 3, objects: int = 4, seed: int = 0) -> GroundingInputs:
    """One scene of random model inputs at ``GEOMETRY`` (12 tokens per frame)."""
    g = torch.Generator().manual_seed(seed)
    p = 12
    boxes = torch.cat([torch.randn(objects, 3, generator=g), torch.rand(objects, 3, generator=g) + 0.2], dim=1)
    return GroundingInputs(
        frames=torch.rand(frames, 3, 84, 112, generator=g),
        frame_mask=torch.ones(frames, dtype=torch.bool),
        patch_xyz=torch.randn(frames, p, 3, generator=g) * 2,
        patch_valid=torch.rand(frames, p, generator=g) > 0.2,
        boxes=boxes,
        oriented_boxes=torch.cat([boxes, torch.zeros(objects, 1)], dim=1),
        object_mask=torch.ones(objects, dtype=torch.bool),
        box_patch_weights=(torch.rand(objects, frames, p, generator=g) > 0.7).float(),
        box_colours=torch.rand(objects, frames, 3, generator=g),
        viewer=torch.tensor([0.3, -0.2, 0.7]),
    )


def free_port() -> int:
    """A free TCP port on the loopback for a multi-process launch's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
