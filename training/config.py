"""TrainConfig: everything a training run needs, from a YAML/JSON file plus ``key=value`` overrides.

A run is reproducible from its resolved config (saved as ``config.yaml`` in the run
directory), its dataset and its seed. The model and loss sections are the model's
``ModelConfig`` and the losses' ``W2R2LossConfig`` themselves, so a key added there is a
config key here without any change to this file.
"""
from __future__ import annotations

import dataclasses
import math
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.vlm.config import VLMConfig
from w2r2_training.losses import W2R2LossConfig
from w2r2_training.metrics import SPLITS, THRESHOLDS
from w2r2_training.synthetic_dataset import SyntheticDatasetConfig


MODEL_KINDS = ("embedded", "video_llm")


class ConfigError(ValueError):
    """A config file or override is wrong; the message is one line naming the source and the key."""


@dataclass
class DataConfig:
    """Where the training samples come from.

    ``synthetic``: when the ``--data`` directory holds no dataset, build the synthetic one
    there (keyword arguments for ``build_synthetic_dataset`` in ``synthetic_build``) instead
    of failing. ``val_max_samples`` caps the periodic validation (0 = the whole split; 256 samples take about
    10 CPU-seconds normal + ablated); the samples kept are spread evenly over the split and are
    the same at every validation.
    """

    synthetic: bool = True
    synthetic_build: dict[str, Any] = field(default_factory=dict)
    train_split: str = "train"
    val_split: str = "val"
    val_max_samples: int = 256

    def __post_init__(self) -> None:
        # Scalar sizes only. The model's input settings come from the model section (one source of
        # truth); the nested memory/referring configs keep the dataset module's defaults (human_phrasing,
        # a mapping of PhrasingConfig rates, may be given).
        nested = {"model", "memory", "referring"}
        allowed = {f.name for f in dataclasses.fields(SyntheticDatasetConfig)} - nested
        unknown = sorted(set(self.synthetic_build) - allowed)
        if unknown:
            raise ValueError(f"synthetic_build: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``lr * min_lr_ratio``.

    ``term_lr_scale``: the term MLPs of the category and colour heads (``W2R2GroundingModel.read_out_terms``:
    box shape, pixel colour) learn at ``lr * term_lr_scale``. Why: such a small expert on a few hand-made
    features, with its own loss, under-fits at the model's pace: inside the fourth model the shape term
    named 86 % of val objects while the same MLP trained alone named 90 % at lr 1e-3 and 93 % at lr 1e-2
    (docs/TRAINING.md, "Colours: the fifth model"). A higher learning rate for the whole model was worse.

    ``text_finetune_lr_scale``: the pretrained text encoder's top layers, when the model trains them
    (``ModelConfig.text_finetune_layers``), learn at ``lr * text_finetune_lr_scale``. Why 0.1: they start from
    weights that already know words training never uses, and the model's rate, 1e-3, is one for fresh layers;
    BERT-style encoders are fine-tuned at 1e-5 to 1e-4 (Devlin et al. 2019, appendix A.3), which keeps what
    pretraining learned while the task is learned. Not tuned here.
    """

    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    term_lr_scale: float = 1.0
    text_finetune_lr_scale: float = 0.1

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.term_lr_scale <= 0:
            raise ValueError(f"optim.lr and optim.term_lr_scale must be > 0, got {self.lr}, {self.term_lr_scale}")
        if self.text_finetune_lr_scale <= 0:
            raise ValueError(f"optim.text_finetune_lr_scale must be > 0, got {self.text_finetune_lr_scale}")


@dataclass
class TrainConfig:
    """One training run. ``best_metric`` names the validation number that picks ``best/``;
    ``num_threads`` is torch's CPU thread count (0 = torch's default, one per core);
    ``texts_per_scene``: a batch is made of groups of this many descriptions of one scene,
    whose keyframes are encoded once (``SampleOrder``; 1 = every sample drawn independently);
    ``train_keyframes``: each training step sees this many of a scene's keyframes, drawn at
    random (``keyframe_subset``; 0 = all of them). Validation always uses all.
    ``absent_fraction``: this share of each batch's rows asks a description in another scene of the batch that
    has no object of its target's category, answered "no target" (``with_absent_targets``): without such rows
    nothing teaches the model to say so, and a query about a missing (or never trained) class would get the
    nearest object with confidence.
    ``text_token_dropout``: each training row's text tokens after the first are hidden from the model with this
    probability (``drop_text_tokens``), a fresh draw every step: the one phraser's exact words stop being enough,
    so a sentence missing a word or with unseen filler still reads (embedded model only; 0 = off).
    ``model_kind``: ``embedded`` (``W2R2GroundingModel``, the CPU default) or ``video_llm``
    (``W2R2VideoLLM`` on the pretrained base of the ``vlm`` section; docs/VLM.md)."""

    seed: int = 0
    num_threads: int = 0
    steps: int = 2000
    batch_size: int = 16
    texts_per_scene: int = 4
    train_keyframes: int = 4
    absent_fraction: float = 0.0
    text_token_dropout: float = 0.0
    eval_every: int = 250
    eval_batch_size: int = 32
    log_every: int = 10
    best_metric: str = "normal/overall/acc@0.25"
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: W2R2LossConfig = field(default_factory=W2R2LossConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model_kind: str = "embedded"
    vlm: VLMConfig = field(default_factory=VLMConfig)

    def __post_init__(self) -> None:
        if self.num_threads < 0 or self.train_keyframes < 0:
            raise ValueError(f"num_threads and train_keyframes must be >= 0, got {self.num_threads}, {self.train_keyframes}")
        if not 0.0 <= self.absent_fraction < 1.0:
            raise ValueError(f"absent_fraction must be in [0, 1), got {self.absent_fraction}")
        if not 0.0 <= self.text_token_dropout < 1.0:
            raise ValueError(f"text_token_dropout must be in [0, 1), got {self.text_token_dropout}")
        if self.text_token_dropout and self.model_kind != "embedded":
            raise ValueError("text_token_dropout applies to the embedded model only (a causal LM reads its prompt in order)")
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(f"model_kind must be one of {MODEL_KINDS}, got {self.model_kind!r}")
        for name in ("steps", "batch_size", "texts_per_scene", "eval_every", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        mode, _, rest = self.best_metric.partition("/")
        split, _, threshold = rest.partition("/")
        if mode not in ("normal", "ablated") or split not in SPLITS or threshold not in {f"acc@{k:g}" for k in THRESHOLDS}:
            raise ValueError(
                f"best_metric {self.best_metric!r} is not <normal|ablated>/<{'|'.join(SPLITS)}>/acc@<{'|'.join(f'{k:g}' for k in THRESHOLDS)}>"
            )


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (tuples as lists), ready for YAML or JSON."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(values: Mapping[str, Any], source: str = "config") -> TrainConfig:
    """Build a TrainConfig; unknown keys and wrongly typed values raise ConfigError naming ``source``."""
    return _build(TrainConfig, values, source, prefix="")


def load_config(path: Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML or JSON config (or start from the defaults when ``path`` is None), then apply overrides."""
    values: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
        try:
            loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({first_line})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(loaded).__name__}")
        values = loaded
    config = config_from_dict(values, source)
    return apply_overrides(config, overrides)


def apply_overrides(config: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """Apply ``section.key=value`` strings (values parsed as YAML: ``3``, ``1e-4``, ``true``, ``[a, b]``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.lr=1e-4")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        values = config_to_dict(config)
        node = values
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {item!r}: unknown key {key!r}")
            node = node[part]
        if parts[-1] not in node and not _is_free_mapping(config, parts[:-1]):
            raise ConfigError(f"override {item!r}: unknown key {key!r}")
        node[parts[-1]] = value
        config = config_from_dict(values, f"override {item!r}")
    return config


def save_config(config: TrainConfig, path: Path) -> None:
    from w2r2_training.run_files import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def _is_free_mapping(config: TrainConfig, parts: list[str]) -> bool:
    """True when ``parts`` leads to a dict-typed field (e.g. ``model.backbone``), whose keys are free."""
    node: Any = config
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return isinstance(node, dict)


def _build(cls: type, values: Any, source: str, prefix: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'top level'} must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix + str(unknown[0])!r} (known: {', '.join(sorted(known))})")
    kwargs = {name: _coerce(values[name], hints[name], source, prefix + name) for name in values}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: {exc}") from None


def _coerce(value: Any, hint: Any, source: str, key: str) -> Any:
    """Check one value against its field's type hint (ints are accepted where floats are expected)."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key + ".")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return value  # optional fields: the dataclass itself validates
    if hint is typing.Any:
        return value

    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key!r} must be {expected}, got {value!r}")

    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise wrong("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        if not math.isfinite(value):  # NaN passes every "> 0" check and poisons the run silently
            raise wrong("a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if origin is tuple or origin is list or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise wrong("a list")
        return tuple(value) if (origin is tuple or hint is tuple) else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise wrong("a mapping")
        return dict(value)
    return value
