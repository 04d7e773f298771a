"""VLMConfig: what the video-LLM kind adds to ``ModelConfig`` (the base model, LoRA, switches); saved as JSON.

The input geometry (frame size, one "patch" per *merged* visual token, depth samples per
token, categories, text length) stays in ``ModelConfig``, so the dataset builders, the
dataset manifest check, ``prepare_keyframe`` and ``Grounder`` serve both kinds unchanged
(docs/VLM.md, "Data").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# The language model's projections LoRA adapts. Qwen's vision blocks use the same names for their MLP
# (gate/up/down_proj), so the adapter selects them by path (``lora_module_pattern``), never by name alone.
LORA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class VLMConfig:
    """Sizes and switches of ``W2R2VideoLLM``.

    ``base_model``: a local directory or a hub id, loaded with ``from_pretrained`` (the hub
    only where there is internet; ``HF_HUB_OFFLINE=1`` is honoured). ``base_config_sha256``
    is filled in when the model is built: a checkpoint refuses a base whose config differs.
    ``train_vision`` unfreezes the vision tower (off: only LoRA, the Where encoders,
    the markers and the heads train). ``where_init_std``: the Where MLPs' output layers
    start this small, so at step 0 the pretrained visual features dominate and geometry
    grows in as it proves useful (a zero start would also zero its gradient path into
    the first layer: ``W2 = 0`` gives ``dL/dW1 = 0``).
    """

    base_model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    base_config_sha256: str = ""
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_projections: tuple[str, ...] = LORA_PROJECTIONS
    train_vision: bool = False
    gradient_checkpointing: bool = False
    # bf16 autocast when the model runs on a GPU (ignored on the CPU, where bf16 matmuls are slow).
    autocast_bf16: bool = True
    where_hidden: int = 256
    where_init_std: float = 0.02
    head_size: int = 256
    system_prompt: str = "You see a 3D scene as video frames and a list of objects. Find the object the user describes."

    def __post_init__(self) -> None:
        self.lora_projections = tuple(str(p) for p in self.lora_projections)
        if not self.base_model:
            raise ValueError("VLMConfig: base_model is empty (a local directory or a hub id)")
        if self.lora_rank < 0:
            raise ValueError(f"VLMConfig: lora_rank must be >= 0 (0 = no LoRA), got {self.lora_rank}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"VLMConfig: lora_dropout must be in [0, 1), got {self.lora_dropout}")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["lora_projections"] = list(self.lora_projections)
        return values

    @staticmethod
    def from_dict(values: dict[str, Any]) -> "VLMConfig":
        known = {f.name for f in fields(VLMConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"VLMConfig: unknown keys {unknown}")
        return VLMConfig(**values)
