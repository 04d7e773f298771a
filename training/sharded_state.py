"""The trained state of a run read and written through DeepSpeed, so that it is right when ZeRO shards it.

Under ZeRO-2 and ZeRO-3 (the stages the trainer accepts) each process keeps 1/N of the
optimizer's fp32 master weights and Adam moments and, under ZeRO-3, 1/N of every parameter:
outside a forward the module's own tensors are empty. Neither ``model.parameters()`` nor ``optimizer.state_dict()`` on one process
is then the run's state. The functions here are collective (every process calls them, in the
same order) and give the main process full, unsharded tensors:

- ``gather_weights``: the checkpoint's tensors, and only those (the LoRA adapters, Where
  encoders, markers, heads: the frozen base is never gathered, which for a 7B base would be
  15 GB on one process at every save). A trained parameter is read from DeepSpeed's fp32 master
  copy (``safe_get_full_fp32_param``: exact under bf16 too), a frozen one the checkpoint keeps
  (a head whose loss weight is 0) through ``zero.GatheredParameters``.
- ``gather_optimizer_state`` / ``restore_optimizer_state``: the AdamW state laid out exactly
  as a plain ``torch.optim.AdamW.state_dict()`` (state by parameter position, param_groups),
  the moments gathered and scattered per parameter with ``safe_get/set_full_optimizer_state``.

Why the trainer's own files and not accelerate's ``save_state`` (DeepSpeed's
``save_checkpoint``): that writes one pickle per process, which the project never reads back
(nothing unpickled), and ties the state to the number of processes. The optimizer's state
covers the trained parameters only (small with LoRA), so gathering it whole costs little, and
the same ``trainer_state`` files resume a run on any number of processes, with or without
DeepSpeed (a ZeRO-3 run can be continued on one GPU).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import nn

# The per-parameter AdamW moments; "step" is one counter for the whole run (every parameter steps together).
MOMENTS = ("exp_avg", "exp_avg_sq")


def uses_deepspeed(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type == DistributedType.DEEPSPEED


def zero_stage(accelerator: Accelerator) -> int:
    """The ZeRO stage of a DeepSpeed run (0 without DeepSpeed)."""
    if not uses_deepspeed(accelerator):
        return 0
    return int(accelerator.state.deepspeed_plugin.deepspeed_config.get("zero_optimization", {}).get("stage", 0))


def fill_deepspeed_config(accelerator: Accelerator, batch_size: int, grad_clip: float) -> None:
    """Give DeepSpeed the two numbers it cannot infer here (before ``prepare``): the per-process batch
    (accelerate takes it from a prepared DataLoader; the trainer draws its own batches) and the
    gradient clipping the trainer would apply (DeepSpeed clips inside its step)."""
    plugin = accelerator.state.deepspeed_plugin
    if plugin.is_auto("train_micro_batch_size_per_gpu"):
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = max(1, batch_size // accelerator.num_processes)
    if plugin.is_auto("gradient_clipping"):
        plugin.deepspeed_config["gradient_clipping"] = grad_clip


def _deepspeed_utils() -> Any:
    import deepspeed.utils

    return deepspeed.utils


def gather_weights(accelerator: Accelerator, model: nn.Module, names: Sequence[str]) -> dict[str, torch.Tensor] | None:
    """Full CPU copies of ``model``'s tensors ``names`` on the main process (None on the others). Collective."""
    parameters = dict(model.named_parameters())
    buffers = dict(model.named_buffers())  # never sharded: every process holds them whole
    trained = [n for n in names if n in parameters and parameters[n].requires_grad]
    frozen = [n for n in names if n in parameters and not parameters[n].requires_grad]
    main = accelerator.is_main_process
    state: dict[str, torch.Tensor] = {}
    ds = _deepspeed_utils() if uses_deepspeed(accelerator) else None
    for name in trained:
        full = ds.safe_get_full_fp32_param(parameters[name]) if ds is not None else None
        if full is None:  # not managed by a ZeRO optimizer: the module's own tensor is whole
            full = parameters[name].detach()
        if main:
            state[name] = full.detach().to("cpu", copy=True).contiguous()
    if frozen:
        import deepspeed

        with deepspeed.zero.GatheredParameters([parameters[n] for n in frozen], modifier_rank=None):
            if main:
                state.update({n: parameters[n].detach().to("cpu", copy=True).contiguous() for n in frozen})
    if main:
        state.update({n: buffers[n].detach().to("cpu", copy=True).contiguous() for n in names if n in buffers})
        missing = [n for n in names if n not in state]
        if missing:
            raise KeyError(f"gather_weights: the model has no tensor {missing[0]!r}")
    return state if main else None


def _inner_torch_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer under accelerate's and DeepSpeed's wrappers (DeepSpeed keeps the one it was
    given, its param_groups now holding this process's flat fp32 partitions)."""
    inner = optimizer
    while hasattr(inner, "optimizer"):  # accelerate's wrapper, then DeepSpeed's ZeRO optimizer
        inner = inner.optimizer
    return inner


def _zero_optimizer(optimizer: Any) -> Any:
    """DeepSpeed's ZeRO optimizer under accelerate's wrapper."""
    zero = optimizer
    while not hasattr(zero, "fp32_partitioned_groups_flat") and not hasattr(zero, "single_partition_of_fp32_groups"):
        zero = zero.optimizer  # AttributeError past the innermost: not a ZeRO optimizer
    return zero


def _flat_partitions(optimizer: Any) -> list[torch.Tensor]:
    """This process's flat fp32 partitions: the tensors the inner optimizer's state is keyed by."""
    zero = _zero_optimizer(optimizer)
    if hasattr(zero, "fp32_partitioned_groups_flat"):  # ZeRO-3
        return list(zero.fp32_partitioned_groups_flat)
    return list(zero.single_partition_of_fp32_groups)  # ZeRO-1/2


def gather_optimizer_state(
    accelerator: Accelerator, optimizer: Any, groups: Sequence[Sequence[nn.Parameter]]
) -> dict[str, Any] | None:
    """The state a single-process ``torch.optim.AdamW`` over ``groups`` (the model's parameter groups, in the
    order they were given to the optimizer) would have; on the main process, None on the others. Collective."""
    ds = _deepspeed_utils()
    inner = _inner_torch_optimizer(optimizer)
    steps = [s["step"] for s in inner.state.values() if "step" in s]
    state: dict[int, dict[str, torch.Tensor]] = {}
    index = 0
    for group in groups:
        for parameter in group:
            if steps:  # AdamW creates its state at the first step
                moments = {key: ds.safe_get_full_optimizer_state(parameter, key) for key in MOMENTS}
                state[index] = {"step": torch.as_tensor(steps[0], dtype=torch.float32).detach().clone().cpu(),
                                **{key: value.detach().to("cpu", copy=True) for key, value in moments.items()}}
            index += 1
    if not accelerator.is_main_process:
        return None
    param_groups, index = [], 0
    for saved, group in zip(inner.param_groups, groups):
        param_groups.append({**{k: v for k, v in saved.items() if k != "params"}, "params": list(range(index, index + len(group)))})
        index += len(group)
    return {"state": state, "param_groups": param_groups}


def restore_optimizer_state(optimizer: Any, groups: Sequence[Sequence[nn.Parameter]], saved: dict[str, Any]) -> None:
    """Put ``saved`` (``gather_optimizer_state``'s layout, or a plain AdamW's) into DeepSpeed's partitioned
    optimizer. Collective: every process passes the same ``saved``. Raises ValueError when it does not fit."""
    ds = _deepspeed_utils()
    inner = _inner_torch_optimizer(optimizer)
    sizes = [len(group) for group in groups]
    saved_sizes = [len(group["params"]) for group in saved["param_groups"]]
    if saved_sizes != sizes or len(inner.param_groups) != len(sizes):
        raise ValueError(f"saved parameter groups of sizes {saved_sizes}, this model has {sizes}")
    for group, saved_group in zip(inner.param_groups, saved["param_groups"]):
        group.update({k: v for k, v in saved_group.items() if k not in ("params",)})
    if not saved["state"]:
        return
    step = float(next(iter(saved["state"].values()))["step"])
    for flat in _flat_partitions(optimizer):
        entry = inner.state[flat]  # empty until the first step under ZeRO-3: made here, in place otherwise
        if "step" not in entry:
            entry.update({key: torch.zeros_like(flat) for key in MOMENTS})
        entry["step"] = torch.tensor(step, dtype=torch.float32)
    link = getattr(_zero_optimizer(optimizer), "_lazy_init_hp_params_optimizer_state", None)
    if link is not None:  # ZeRO-1/2 point each parameter at its slice of the state when it is first made
        link()
    parameters = [p for group in groups for p in group]
    for index, parameter in enumerate(parameters):
        for key in MOMENTS:
            value = saved["state"][index][key]
            if tuple(value.shape) != tuple(getattr(parameter, "ds_shape", parameter.shape)):
                raise ValueError(f"saved {key} of parameter {index} has shape {tuple(value.shape)}")
            if hasattr(parameter, "ds_id"):
                _set_zero3_optimizer_state(parameter, value.to(torch.float32), key)
            else:
                ds.safe_set_full_optimizer_state(parameter, value.to(torch.float32), key)


def _set_zero3_optimizer_state(parameter: nn.Parameter, value: torch.Tensor, key: str) -> None:
    """``safe_set_full_optimizer_state`` for a ZeRO-3 parameter, whose shards are padded to equal sizes: DeepSpeed
    0.19.8's own cuts this process's shard out of the unpadded value and fails on the last process when the
    parameter's size is not a multiple of the number of processes ("start (1) + length (1) exceeds dimension size")."""
    zero = parameter._z3_optimizer
    shard, _ = zero._get_fp32_opt_state_partition(parameter, release_swap_buffers=False, optim_state_key=key)
    rank, size = zero._get_param_partition_rank(parameter), shard.numel()
    flat = torch.nn.functional.pad(value.flatten(), (0, max(0, size * (rank + 1) - value.numel())))
    shard.data.copy_(flat.narrow(0, size * rank, size).to(shard.device))
