"""The trainer's resumable state (optimizer, LR schedule, step, RNG streams) saved without pickle.

Tensors go to ``trainer_state.safetensors``, everything else to ``trainer_state.json``.
``torch.save`` would be shorter but unpickling runs arbitrary code, and the house rule is
that nothing this project reads back is a pickle. Restoring all four RNG streams (python,
numpy, torch CPU, torch CUDA) is what makes ``--resume`` continue exactly as an
uninterrupted run would (dropout masks included).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from w2r2_ros.model.checkpoint import save_safetensors

TENSORS_FILE = "trainer_state.safetensors"
JSON_FILE = "trainer_state.json"
STATE_VERSION = 1


class TrainerStateError(Exception):
    """A trainer state file is missing or inconsistent; one line naming the file."""


@dataclass
class TrainerState:
    """What a resumed run needs besides the model weights (those live in the checkpoint beside it)."""

    step: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def capture_rng() -> dict[str, Any]:
    """The state of every random stream a training step can draw from."""
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": numpy_state[0], "key": torch.from_numpy(numpy_state[1].astype(np.int64)),
                  "pos": int(numpy_state[2]), "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _split_tensors(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested structure by ``{"__tensor__": key}`` and collect it in ``tensors``."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(value, dict):
        return {str(k): _split_tensors(v, f"{prefix}/{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_tensors(v, f"{prefix}/{i}", tensors) for i, v in enumerate(value)]
    return value


def _join_tensors(value: Any, tensors: dict[str, torch.Tensor], where: Path) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            key = value["__tensor__"]
            if key not in tensors:
                raise TrainerStateError(f"{where / TENSORS_FILE}: missing tensor {key!r}")
            return tensors[key]
        return {k: _join_tensors(v, tensors, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_tensors(v, tensors, where) for v in value]
    return value


def save_trainer_state(directory: Path, state: TrainerState) -> None:
    """Write the two state files into ``directory`` (the caller makes the directory swap atomic)."""
    directory = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    document = {
        "version": STATE_VERSION,
        "step": state.step,
        "optimizer": _split_tensors(state.optimizer, "optimizer", tensors),
        "scheduler": _split_tensors(state.scheduler, "scheduler", tensors),
        "rng": _split_tensors(state.rng, "rng", tensors),
        "extra": state.extra,
    }
    save_safetensors(tensors, directory / TENSORS_FILE)
    (directory / JSON_FILE).write_text(json.dumps(document), encoding="utf-8")


def saved_step(directory: Path) -> int:
    """The step of the state in ``directory``, read from its JSON alone (no tensors): how far a run got."""
    json_path = Path(directory) / JSON_FILE
    try:
        return int(json.loads(json_path.read_text(encoding="utf-8"))["step"])
    except FileNotFoundError:
        raise TrainerStateError(f"{json_path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TrainerStateError(f"{json_path}: no step in it ({exc})") from None


def load_trainer_state(directory: Path) -> TrainerState:
    """Read what ``save_trainer_state`` wrote; problems raise TrainerStateError naming the file."""
    directory = Path(directory)
    json_path, tensor_path = directory / JSON_FILE, directory / TENSORS_FILE
    try:
        document = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainerStateError(f"{json_path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainerStateError(f"{json_path}: malformed JSON ({exc})") from None
    try:
        tensors = load_file(str(tensor_path))
    except FileNotFoundError:
        raise TrainerStateError(f"{tensor_path}: file not found") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise TrainerStateError(f"{tensor_path}: unreadable safetensors file ({exc})") from None
    if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
        raise TrainerStateError(f"{json_path}: not a version {STATE_VERSION} trainer state")
    try:
        return TrainerState(
            step=int(document["step"]),
            optimizer=_join_tensors(document["optimizer"], tensors, directory),
            scheduler=_join_tensors(document["scheduler"], tensors, directory),
            rng=_join_tensors(document["rng"], tensors, directory),
            extra=document.get("extra", {}),
        )
    except KeyError as exc:
        raise TrainerStateError(f"{json_path}: missing field {exc.args[0]!r}") from None


def optimizer_state_from_json(state: dict[str, Any]) -> dict[str, Any]:
    """JSON turned the optimizer's per-parameter keys (ints) into strings; turn them back."""
    return {"state": {int(k): v for k, v in state["state"].items()}, "param_groups": state["param_groups"]}
