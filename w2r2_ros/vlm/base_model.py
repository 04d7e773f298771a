"""The pretrained base of the video-LLM kind: where it is, which family it is, and whether it is the one a checkpoint expects.

A base is a local directory or a hub id, loaded with ``from_pretrained``; nothing is
downloaded when ``HF_HUB_OFFLINE=1`` (hub ids then resolve from the local cache only).
Its identity is the SHA-256 of its ``config.json`` with volatile keys removed
(``base_config_hash``): a checkpoint stores it and refuses a base with another
architecture or other special-token ids, whatever its name.

Family-specific parts live in ``FamilyAdapter`` (docs/VLM.md, "Qwen3-VL"): the model
class, where the language model's projections sit (LoRA selects them by path:
Qwen's vision MLP uses the same module names), the chat markup of the prompt, and
how the vision tower's patch geometry is read from its config.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from w2r2_ros.vlm.frames import CLIP_MEAN, CLIP_STD, VisionLayout

# Keys of a config.json that change with the writer (library version, dtype of the saved weights, where it was
# loaded from), not with the model.
VOLATILE_CONFIG_KEYS = frozenset({"transformers_version", "_name_or_path", "torch_dtype", "dtype", "use_cache", "architectures"})


class BaseModelError(ValueError):
    """The base model is missing, unreadable, of an unsupported family, or not the one a checkpoint was trained on."""


@dataclass(frozen=True)
class FamilyAdapter:
    """What differs between VLM families: model class, module paths, chat markup."""

    model_type: str
    model_class: str
    # Regex (``re.fullmatch`` on module names of the ``*ForConditionalGeneration`` model) of the language
    # model's decoder layers; LoRA targets ``<layer>.<self_attn|mlp>.<projection>`` under it only.
    language_layers: str
    user_prefix: str = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
    assistant_prefix: str = "<|im_end|>\n<|im_start|>assistant\n"

    def lora_module_pattern(self, projections: tuple[str, ...]) -> str:
        names = "|".join(re.escape(p) for p in projections)
        return rf"{self.language_layers}\.(self_attn|mlp)\.({names})"

    def vision_layout(self, hf_config: Any, preprocessor: dict[str, Any]) -> VisionLayout:
        vision = hf_config.vision_config
        return VisionLayout(
            patch_size=int(vision.patch_size),
            merge_size=int(vision.spatial_merge_size),
            temporal_patch_size=int(vision.temporal_patch_size),
            image_mean=tuple(float(v) for v in preprocessor.get("image_mean", CLIP_MEAN)),
            image_std=tuple(float(v) for v in preprocessor.get("image_std", CLIP_STD)),
        )


FAMILIES = {
    "qwen2_5_vl": FamilyAdapter(
        model_type="qwen2_5_vl",
        model_class="Qwen2_5_VLForConditionalGeneration",
        language_layers=r"model\.language_model\.layers\.\d+",
    ),
}


def family_of(model_type: str) -> FamilyAdapter:
    if model_type not in FAMILIES:
        raise BaseModelError(f"base model type {model_type!r} is not supported (supported: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[model_type]


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in sorted(value.items()) if k not in VOLATILE_CONFIG_KEYS}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    return value


def base_config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of a base's config.json content without ``VOLATILE_CONFIG_KEYS`` (at any depth)."""
    text = json.dumps(_strip_volatile(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_base(base: str) -> str:
    """A local base directory as an absolute path (a checkpoint then finds it from any working directory);
    a hub id as it is."""
    local = Path(base).expanduser()
    return str(local.resolve()) if local.is_dir() else base


def _base_file(base: str, name: str, required: bool) -> Path | None:
    """``name`` inside a local base directory, or from the hub (cache only under HF_HUB_OFFLINE=1)."""
    local = Path(base).expanduser()
    if local.is_dir():
        path = local / name
        if path.is_file():
            return path
        if required:
            raise BaseModelError(f"base model {base}: {name} missing (not a transformers model directory?)")
        return None
    if local.exists() or base.startswith((".", "/", "~")):
        raise BaseModelError(f"base model {base}: not a directory; give the base model's directory or a hub id")
    from transformers.utils import cached_file

    try:
        found = cached_file(base, name, _raise_exceptions_for_missing_entries=False)
    except (OSError, ValueError):  # no network, no such repository, gated: all "not here" for the caller
        found = None
    if found is None and required:
        raise _not_found(base)
    return None if found is None else Path(found)


def _not_found(base: str) -> BaseModelError:
    offline = " (HF_HUB_OFFLINE=1: only the local hub cache is searched)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
    return BaseModelError(
        f"base model {base} not found{offline}: download it where there is internet "
        f"(huggingface-cli download {base}) or give its local directory"
    )


def read_base_config(base: str) -> dict[str, Any]:
    """The base's config.json as a dict (one-line ``BaseModelError`` when it cannot be had)."""
    path = _base_file(base, "config.json", required=True)
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BaseModelError(f"base model {base}: unreadable config.json ({error})") from None
    if not isinstance(config, dict):
        raise BaseModelError(f"base model {base}: config.json is not a JSON object")
    return config


def read_preprocessor_config(base: str) -> dict[str, Any]:
    """The base's preprocessor_config.json (normalisation), or {} when it has none."""
    path = _base_file(base, "preprocessor_config.json", required=False)
    return {} if path is None else json.loads(path.read_text())


@dataclass
class LoadedBase:
    """A base model ready to wrap: the ``transformers`` model, its tokenizer, family and vision layout."""

    model: torch.nn.Module
    tokenizer: Any
    family: FamilyAdapter
    layout: VisionLayout
    config_sha256: str


def load_base(base: str, dtype: torch.dtype = torch.float32, expected_sha256: str = "") -> LoadedBase:
    """Load base model and tokenizer with ``from_pretrained``; refuse one whose config hash differs from
    ``expected_sha256`` (when given)."""
    config = read_base_config(base)
    digest = base_config_hash(config)
    if expected_sha256 and digest != expected_sha256:
        raise BaseModelError(
            f"base model {base}: config hash {digest[:12]} differs from the checkpoint's {expected_sha256[:12]} "
            "(another architecture or revision): give the base the checkpoint was trained on"
        )
    family = family_of(str(config.get("model_type", "")))
    import transformers

    model_class = getattr(transformers, family.model_class)
    model = model_class.from_pretrained(base, dtype=dtype)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    layout = family.vision_layout(model.config, read_preprocessor_config(base))
    return LoadedBase(model, tokenizer, family, layout, digest)
