"""The training loop: one straight loop of data, W2R2 (or baseline) step, periodic validation, checkpoints.

Run directory (everything written atomically, see ``run_files``)::

    config.yaml            the resolved TrainConfig (model section filled in from the data)
    train_metrics.csv/.jsonl   loss terms, learning rate, seconds per step, every ``log_every`` steps
    val_metrics.csv/.jsonl     Acc@0.25/0.5 normal and 3D-ablated (overall/unique/multiple) per validation
    curves.png             loss terms and validation accuracy
    best/                  checkpoint with the best ``best_metric`` so far
    last/                  checkpoint + trainer state (optimizer, LR schedule, step, RNG): ``--resume`` starts here
    train.log              what happened

``last/`` is first written at step 0, so a run that crashes at any point can be resumed.
The step is the only clock: the samples of step s are a pure function of (seed, s), and
the RNG streams are saved with the state, so a resumed run continues exactly like an
uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from w2r2_ros.model.checkpoint import load_checkpoint, save_checkpoint
from w2r2_ros.model.geometry_encoding import box_shape_statistics
from w2r2_ros.model.grounding_model import GroundingOutput, W2R2GroundingModel
from w2r2_ros.model.inputs import GroundingInputs
from w2r2_ros.model.build import new_model
from w2r2_ros.model.pretrained_text import PretrainedText, TextModelError
from w2r2_training.config import ConfigError, OptimConfig, TrainConfig, config_to_dict, load_config, save_config
from w2r2_training.curves import plot_training_curves
from w2r2_training.dataset import GroundingBatch, GroundingDataset, collate_grounding, with_absent_targets
from w2r2_training.evaluate import evaluate_model, evenly_spaced_indices
from w2r2_training.losses import w2r2_objective
from w2r2_training.run_files import MetricsLog, replace_directory, resolve_directory, tidy_run_directory
from w2r2_training.sharded_state import (
    fill_deepspeed_config,
    gather_optimizer_state,
    gather_weights,
    restore_optimizer_state,
    uses_deepspeed,
    zero_stage,
)
from w2r2_training.video_llm import freeze_unweighted_heads, new_video_llm
from w2r2_training.trainer_state import (
    TrainerState,
    TrainerStateError,
    capture_rng,
    load_trainer_state,
    optimizer_state_from_json,
    restore_rng,
    save_trainer_state,
    saved_step,
)

LOG = logging.getLogger("w2r2_training")
CONFIG_FILE = "config.yaml"
LAST_DIR = "last"
BEST_DIR = "best"
CURVES_FILE = "curves.png"
LOG_FILE = "train.log"


class TrainingError(Exception):
    """The run cannot start or continue (run directory in the way, nothing to resume); one line."""


@dataclass(frozen=True)
class TrainSummary:
    """What a finished (or stopped) run reports back."""

    run_dir: Path
    step: int
    best_step: int | None
    best_value: float
    last_validation: dict[str, float]
    seconds_per_step: float


def loss_kind(config: TrainConfig) -> str:
    """``baseline`` when the pseudo-label term is off (L_align alone, W2R2.md "Baseline"), else ``w2r2``."""
    return "w2r2" if config.loss.needs_pseudo_pass else "baseline"


@contextmanager
def seeded_and_deterministic(seed: int) -> Iterator[None]:
    """Seed python, numpy and torch, and ask torch for deterministic kernels where it has them.

    The deterministic-algorithms switch is process-wide; it is put back on exit so that a
    caller training in-process (tests, notebooks) keeps its own setting afterwards.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


class SampleOrder:
    """Which training samples step s uses: an endless concatenation of seeded epochs.

    An epoch shuffles each scene's samples, cuts them into groups of ``texts_per_scene``
    and shuffles the groups, so a batch holds several descriptions of each of a few
    scenes. Their keyframes go through the image encoder once (``DualPass``), which is
    most of a step's cost, so grouping trains on several times more descriptions per
    CPU-second (docs/TRAINING.md, "Cost"). A pure function of (seed, step), so a resumed
    run needs no data-loader state.
    """

    def __init__(self, scene_ids: Sequence[str], batch_size: int, seed: int, texts_per_scene: int = 1) -> None:
        if len(scene_ids) < 1:
            raise ValueError("SampleOrder: the training split has no samples")
        self.n_samples, self.batch_size, self.seed = len(scene_ids), batch_size, seed
        self.texts_per_scene = texts_per_scene
        by_scene: dict[str, list[int]] = {}
        for index, scene_id in enumerate(scene_ids):
            by_scene.setdefault(scene_id, []).append(index)
        self._scenes = [np.asarray(indices) for indices in by_scene.values()]

    @lru_cache(maxsize=4)
    def _epoch(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        groups = []
        for indices in self._scenes:
            shuffled = rng.permutation(indices)
            groups += [shuffled[i : i + self.texts_per_scene] for i in range(0, len(shuffled), self.texts_per_scene)]
        return np.concatenate([groups[g] for g in rng.permutation(len(groups))])

    def batch(self, step: int) -> list[int]:
        start = step * self.batch_size
        return [int(self._epoch(p // self.n_samples)[p % self.n_samples]) for p in range(start, start + self.batch_size)]


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr_ratio`` at ``steps``."""
    warmup = config.optim.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    floor = config.optim.min_lr_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class DualPass(nn.Module):
    """Both passes of a W2R2 step in one ``forward``.

    The 2D patch features are computed once and shared: the 2D-only pseudo-output differs
    from the fused pass only by the removed 3D encodings (W2R2.md), and the image encoder's
    gradient gets both passes' contributions. One forward per backward also keeps a
    DistributedDataParallel wrapper (multi-GPU ``accelerate``) happy.
    """

    def __init__(self, model: W2R2GroundingModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        inputs: GroundingInputs,
        text_ids: torch.Tensor,
        text_mask: torch.Tensor,
        pseudo_pass: bool,
        scene_rows: torch.Tensor | None = None,
    ) -> tuple[GroundingOutput, GroundingOutput | None]:
        """``scene_rows`` (B,): for each sample, the first batch row holding the same scene; the keyframes of
        those rows alone go through the image encoder and their features are shared by the other rows."""
        b, k, p = inputs.patch_valid.shape
        if scene_rows is None:
            scene_rows = torch.arange(b, device=inputs.frames.device)
        unique_rows, row_of_sample = torch.unique(scene_rows, return_inverse=True)
        features = self.model.encode_frames(inputs.frames[unique_rows].flatten(0, 1)).view(len(unique_rows), k, p, -1)
        features = features[row_of_sample]
        fused = self.model(inputs, text_ids, text_mask, patch_features=features)
        pseudo = self.model(inputs, text_ids, text_mask, ablate_3d=True, patch_features=features) if pseudo_pass else None
        return fused, pseudo


def parameter_groups(model: W2R2GroundingModel, optim: OptimConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups: everything at ``optim.lr`` (first group: the rate the logs show), the model's
    read-out terms (``W2R2GroundingModel.read_out_terms``) at ``optim.lr * optim.term_lr_scale``, and its
    fine-tuned pretrained parts (``fine_tuned_pretrained``) at ``optim.lr * optim.text_finetune_lr_scale``; a
    group with no parameters is left out, so a model without them has the groups it always had."""
    terms = [p for module in model.read_out_terms() for p in module.parameters()]
    pretrained = [p for module in model.fine_tuned_pretrained() for p in module.parameters()]
    apart = {id(p) for p in terms + pretrained}
    trained = [p for p in model.parameters() if p.requires_grad and id(p) not in apart]  # a frozen base stays out
    groups: list[dict[str, Any]] = [{"params": trained}]
    if terms:
        groups.append({"params": terms, "lr": optim.lr * optim.term_lr_scale})
    if pretrained:
        groups.append({"params": pretrained, "lr": optim.lr * optim.text_finetune_lr_scale})
    return groups


def encode_descriptions(text: PretrainedText, texts: list[str], max_length: int, data_root: Path) -> str:
    """Run the frozen encoder (below the layers the model trains, ``PretrainedText.state_layer``) once over every
    description (kept in ``text``'s cache for the whole run), reusing and updating the states saved beside the
    dataset by an earlier run; -> a line for the log."""
    text.cache_size = None
    started = time.perf_counter()
    cache = text.cache_file(data_root, max_length)
    reused = text.load_states(cache, max_length)
    encoded = text.precompute(texts, max_length)
    if encoded:
        text.save_states(cache, texts, max_length)
    frozen = "frozen" if text.state_layer == text.layers else f"frozen below layer {text.state_layer}"
    return (f"text encoder {text.identity['name']} ({frozen}): {encoded} descriptions encoded, {reused} read from "
            f"{cache.name}, in {time.perf_counter() - started:.1f} s")


def keyframe_subset(inputs: GroundingInputs, n: int, rng: np.random.Generator) -> GroundingInputs:
    """The same random ``n`` of the K keyframes for every scene of a batch (all K when K <= n).

    Training on a few views at a time is an augmentation: an object token is pooled from
    different views at every visit, and objects outside them become ``unseen_object``, as
    at run time before the robot has looked around. It also halves the image encoder's
    work at n = K / 2. The batch shares one subset so rows of one scene still share features.
    """
    k = inputs.frames.shape[1]
    if k <= n:
        return inputs
    keep = torch.from_numpy(np.sort(rng.choice(k, size=n, replace=False)))
    return dataclasses.replace(
        inputs,
        frames=inputs.frames[:, keep],
        frame_mask=inputs.frame_mask[:, keep],
        patch_xyz=inputs.patch_xyz[:, keep],
        patch_valid=inputs.patch_valid[:, keep],
        box_patch_weights=inputs.box_patch_weights[:, :, keep],
        box_colours=inputs.box_colours[:, :, keep],
    )


def drop_text_tokens(text_mask: torch.Tensor, probability: float, rng: np.random.Generator) -> torch.Tensor:
    """(B, L) mask with each real token after the first (the encoder's [CLS]) hidden with ``probability``:
    an augmentation of the words, as ``keyframe_subset`` is of the views (``TrainConfig.text_token_dropout``)."""
    drop = torch.from_numpy(rng.random(tuple(text_mask.shape)) < probability).to(text_mask.device)
    drop[:, 0] = False
    return text_mask & ~drop


def first_rows_of_scenes(scene_ids: Sequence[str]) -> torch.Tensor:
    """(B,) index of the first row with the same scene id: rows of one scene share identical inputs."""
    first: dict[str, int] = {}
    return torch.tensor([first.setdefault(scene_id, row) for row, scene_id in enumerate(scene_ids)])


def training_step_loss(
    dual: nn.Module, batch: GroundingBatch, config: TrainConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """W2R2 objective of one batch; the baseline (lambda_pl = 0) skips the pseudo pass entirely."""
    scene_rows = first_rows_of_scenes([sample.scene_id for sample in batch.samples]).to(batch.target.device)
    fused, pseudo = dual(batch.inputs, batch.text_ids, batch.text_mask, config.loss.needs_pseudo_pass, scene_rows)
    # The dataset marks same-class distractors over the N proposals; the logits have N + 1
    # columns ("no target" last), which is never a distractor.
    same_class = torch.nn.functional.pad(batch.same_class_mask, (0, 1), value=False)
    # Unmatched and padded proposals are -1 in the dataset, "ignore" is -100 for cross-entropy.
    category_target = batch.proposal_categories.masked_fill(batch.proposal_categories < 0, -100)
    return w2r2_objective(
        fused.logits,
        None if pseudo is None else pseudo.logits,
        batch.target,
        config.loss,
        same_class_mask=same_class,
        category_logits=fused.category_logits,
        category_target=category_target,
        anchor_logits=fused.anchor_logits,
        anchor_target=batch.anchor_target,
        text_categories=(
            fused.target_category_logits, batch.target_category, fused.anchor_category_logits, batch.anchor_category
        ),
        colour_logits=fused.colour_logits,
        colour_target=batch.proposal_colours.masked_fill(batch.proposal_colours < 0, -100),
        text_colours=None
        if fused.target_colour_logits is None
        else (fused.target_colour_logits, batch.target_colour, fused.anchor_colour_logits, batch.anchor_colour),
        text_relation=None if fused.relation_logits is None else (fused.relation_logits, batch.relation),
        shape_category_logits=fused.shape_category_logits,
        pixel_colour_logits=fused.pixel_colour_logits,
    )


def _setup_logging(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    return handler


def check_run_dir(run_dir: Path, resume: bool) -> Path | None:
    """Refuse to train over an existing run (unless resuming); return the state directory to resume from.

    A run directory with a config but no saved state was stopped before its step-0 state was
    saved: there is nothing to lose, so ``--resume`` starts it from step 0 (with its saved
    config) and a fresh start may take the directory over.
    """
    tidy_run_directory(run_dir)  # what a killed save left
    state_dir = resolve_directory(run_dir / LAST_DIR)
    if resume:
        if state_dir is None and not (run_dir / CONFIG_FILE).exists():
            raise TrainingError(f"{run_dir / LAST_DIR}: no saved state to resume (start the run without --resume)")
        return state_dir
    if state_dir is not None:
        raise TrainingError(f"{run_dir}: already holds a run (pass --resume to continue it, or choose another --out)")
    return None


def run_finished(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` trained to the end: the step of its ``last/`` state reached the ``steps``
    of its own config.yaml. ``best/`` is no sign of it: the first validation writes it. A run with an
    unreadable config or state is not finished (``--resume`` then says what is wrong with it)."""
    state_dir = resolve_directory(Path(run_dir) / LAST_DIR)
    if state_dir is None or not (Path(run_dir) / CONFIG_FILE).is_file():
        return False
    try:
        return saved_step(state_dir) >= load_config(Path(run_dir) / CONFIG_FILE).steps
    except (ConfigError, TrainerStateError):
        return False


class Trainer:
    """Owns the model, optimizer, data and run directory of one training run.

    Build it inside ``seeded_and_deterministic`` (``train`` does): the initial weights
    draw from the seeded torch generator.
    """

    def __init__(self, config: TrainConfig, data_root: Path, run_dir: Path, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.data_root = Path(data_root)
        state_dir = check_run_dir(self.run_dir, resume)
        self._text_note = ""  # what encoding the descriptions cost, logged when training starts
        self.train_set = GroundingDataset(self.data_root, config.data.train_split)
        self.val_set = GroundingDataset(self.data_root, config.data.val_split)

        if state_dir is None and config.model_kind == "video_llm":
            model, tokenizer, config = new_video_llm(config, self.train_set)
        elif state_dir is None:
            shape_mean, shape_std = box_shape_statistics(torch.from_numpy(self.train_set.oriented_proposal_boxes()[:, :6]))
            model_config = dataclasses.replace(
                config.model,
                categories=tuple(self.train_set.categories),
                colours=tuple(self.train_set.scene_colours()),
                relations=tuple(self.train_set.sample_relations()),
                shape_mean=shape_mean,
                shape_std=shape_std,
            )
            self.train_set.manifest.check_model_config(model_config, self.data_root / "manifest.json")
            try:
                model, tokenizer = new_model(model_config, self.train_set.texts())
            except TextModelError as error:
                raise TrainingError(str(error)) from None
            config = dataclasses.replace(config, model=model.config)
        else:
            model, tokenizer = load_checkpoint(state_dir)
            self.train_set.manifest.check_model_config(model.config, self.data_root / "manifest.json")
        if isinstance(tokenizer, PretrainedText):
            # The frozen encoder's states of every description (below the layers the model trains) are computed once.
            self._text_note = encode_descriptions(tokenizer, self.train_set.texts() + self.val_set.texts(),
                                                  model.config.max_text_length, self.data_root)
        self.config, self.tokenizer, self.state_dir = config, tokenizer, state_dir
        self.train_set.colours = list(model.config.colours)
        self.train_set.relations = list(model.config.relations)

        if config.model_kind == "video_llm":
            freeze_unweighted_heads(model, config.loss)
        self.accelerator = Accelerator()
        if self.accelerator.distributed_type == DistributedType.FSDP:
            raise TrainingError("FSDP is not supported by this trainer (its validation and checkpoints read the unwrapped "
                                "model); shard with DeepSpeed ZeRO-3 instead: configs/accelerate/deepspeed_zero3.yaml")
        # Under DeepSpeed (ZeRO-2/3) the optimizer state, and under ZeRO-3 the parameters, are sharded over the
        # processes: every process takes part in saving and validating (sharded_state.py), the main one writes.
        self.sharded = uses_deepspeed(self.accelerator)
        if self.sharded and config.model_kind != "video_llm":
            raise TrainingError("DeepSpeed is for model_kind video_llm (tested there); train the embedded model on "
                                "one device or with DDP (accelerate launch --multi_gpu)")
        if self.sharded and zero_stage(self.accelerator) not in (2, 3):
            raise TrainingError(f"DeepSpeed ZeRO stage {zero_stage(self.accelerator)}: this trainer saves and resumes "
                                "stages 2 and 3 (configs/accelerate/deepspeed_zero2.yaml, deepspeed_zero3.yaml)")
        if self.sharded:
            fill_deepspeed_config(self.accelerator, config.batch_size, config.optim.grad_clip)
        groups = parameter_groups(model, config.optim)
        self._param_groups = [list(group["params"]) for group in groups]  # the optimizer's order, for sharded_state
        optimizer = torch.optim.AdamW(groups, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
        # Not passed to accelerator.prepare: its wrapper steps the schedule once per process.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(s, config))
        self.dual, self.optimizer = self.accelerator.prepare(DualPass(model), optimizer)
        self.model: W2R2GroundingModel = self.accelerator.unwrap_model(self.dual).model
        self.order = SampleOrder(
            [sample.scene_id for sample in self.train_set.samples], config.batch_size, config.seed, config.texts_per_scene
        )
        self.val_indices = evenly_spaced_indices(len(self.val_set), config.data.val_max_samples)
        self.train_log = MetricsLog(self.run_dir, "train_metrics")
        self.val_log = MetricsLog(self.run_dir, "val_metrics")
        self.step = 0
        self.best_step: int | None = None
        self.best_value = -math.inf
        self.last_validation: dict[str, float] = {}
        self._saved_step: int | None = None

    # --- state ---------------------------------------------------------------------------

    def _restore(self, state_dir: Path) -> None:
        state = load_trainer_state(state_dir)
        try:
            if self.sharded:
                restore_optimizer_state(self.optimizer, self._param_groups, optimizer_state_from_json(state.optimizer))
            else:
                self.optimizer.load_state_dict(optimizer_state_from_json(state.optimizer))
        except ValueError as exc:  # e.g. saved before the read-out terms had their own parameter group
            raise TrainingError(f"{state_dir}: the optimizer state does not fit this model ({exc}); start a new run") from None
        self.scheduler.load_state_dict(state.scheduler)
        restore_rng(state.rng)
        self.step = state.step
        self.best_step = state.extra.get("best_step")
        self.best_value = float(state.extra.get("best_value", -math.inf))
        self.last_validation = {
            k: math.nan if v is None else float(v) for k, v in state.extra.get("last_validation", {}).items()
        }
        if self.accelerator.is_main_process:  # it rewrites the files: two processes at once collide
            self.train_log.load(self.step)
            self.val_log.load(self.step)
        LOG.info("resumed from %s at step %d", state_dir, self.step)

    def _metadata(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "loss": loss_kind(self.config),
            "seed": self.config.seed,
            "data": str(self.data_root),
            "validation": {k: (v if math.isfinite(v) else None) for k, v in self.last_validation.items()},
            "train_config": config_to_dict(self.config),
        }

    def _staged_checkpoint(self, name: str) -> Path | None:
        """The model saved to ``.<name>.partial``, ready for ``replace_directory`` (None on the other processes).

        Sharded: collective, the checkpoint's tensors gathered whole onto the main process first."""
        state = gather_weights(self.accelerator, self.model, list(self._checkpoint_names())) if self.sharded else None
        if not self.accelerator.is_main_process:
            return None
        staging = self.run_dir / f".{name}.partial"
        if staging.exists():
            shutil.rmtree(staging)
        return save_checkpoint(self.model, self.tokenizer, staging, self._metadata(), state=state)

    def _checkpoint_names(self) -> Sequence[str]:
        """The tensors a checkpoint holds: the video LLM's trained and added ones (never the base), else all."""
        trainable_state = getattr(self.model, "trainable_state", None)
        return trainable_state().keys() if trainable_state is not None else self.model.state_dict().keys()

    def _save_last(self) -> None:
        """Checkpoint + trainer state, staged then swapped in, so ``last/`` is always complete.
        Sharded: collective (every process calls it), the main process writes."""
        staging = self._staged_checkpoint(LAST_DIR)
        optimizer_state = (
            gather_optimizer_state(self.accelerator, self.optimizer, self._param_groups)
            if self.sharded else self.optimizer.state_dict()
        )
        if staging is None:
            self._saved_step = self.step
            return
        extra = {
            "best_step": self.best_step,
            "best_value": self.best_value if math.isfinite(self.best_value) else None,
            "last_validation": {k: (v if math.isfinite(v) else None) for k, v in self.last_validation.items()},
        }
        if extra["best_value"] is None:
            extra.pop("best_value")
        save_trainer_state(
            staging,
            TrainerState(step=self.step, optimizer=optimizer_state, scheduler=self.scheduler.state_dict(),
                         rng=capture_rng(), extra=extra),
        )
        replace_directory(staging, self.run_dir / LAST_DIR)
        self._saved_step = self.step

    # --- loop ----------------------------------------------------------------------------

    def _batch(self, step: int) -> GroundingBatch:
        indices = self.order.batch(step)[self.accelerator.process_index :: self.accelerator.num_processes]
        items = [self.train_set[i] for i in indices]
        if self.config.absent_fraction:
            rng = np.random.default_rng([self.config.seed, step, 2])
            items = with_absent_targets(items, self.config.absent_fraction, rng, self._scene_categories)
        batch = collate_grounding(items, self.tokenizer, self.config.model.max_text_length, self.config.model.relation_anchors)
        if self.config.train_keyframes:
            rng = np.random.default_rng([self.config.seed, step, 1])
            batch = dataclasses.replace(batch, inputs=keyframe_subset(batch.inputs, self.config.train_keyframes, rng))
        if self.config.text_token_dropout:
            rng = np.random.default_rng([self.config.seed, step, 3])
            batch = dataclasses.replace(batch, text_mask=drop_text_tokens(batch.text_mask, self.config.text_token_dropout, rng))
        return batch.to(self.accelerator.device)

    def _scene_categories(self, scene_id: str) -> frozenset[str]:
        """The category names of a training scene's objects (the dataset keeps its scenes loaded)."""
        return frozenset(o.category for o in self.train_set.scene(scene_id).objects)

    def validate(self) -> dict[str, float]:
        result = evaluate_model(
            self.model,
            self.val_set,
            self.tokenizer,
            max_text_len=self.config.model.max_text_length,
            batch_size=self.config.eval_batch_size,
            indices=self.val_indices,
            device=self.accelerator.device,
        )
        return result.flat()

    def _after_validation(self, metrics: dict[str, float]) -> None:
        """Log the validation and keep the best checkpoint. Sharded: every process calls it with the same metrics."""
        self.last_validation = metrics
        if self.accelerator.is_main_process:
            self.val_log.append({"step": self.step, **{f"val/{k}": v for k, v in metrics.items()}})
            plot_training_curves(self.train_log.rows, self.val_log.rows, self.run_dir / CURVES_FILE)
            LOG.info(
                "step %d val: normal %s | 3D-ablated %s",
                self.step,
                " ".join(f"{k.split('/', 1)[1]}={v:.3f}" for k, v in metrics.items() if k.startswith("normal/overall")),
                " ".join(f"{k.split('/', 1)[1]}={v:.3f}" for k, v in metrics.items() if k.startswith("ablated/overall")),
            )
        value = metrics.get(self.config.best_metric, math.nan)
        if math.isfinite(value) and value > self.best_value:
            self.best_value, self.best_step = value, self.step
            staging = self._staged_checkpoint(BEST_DIR)
            if staging is not None:
                replace_directory(staging, self.run_dir / BEST_DIR)
                LOG.info("new best %s = %.4f at step %d -> %s", self.config.best_metric, value, self.step, self.run_dir / BEST_DIR)

    def fit(self, stop_at_step: int | None = None, show_progress: bool = True) -> TrainSummary:
        """Train to ``config.steps`` (or stop after ``stop_at_step``, saving a resumable state)."""
        config = self.config
        main = self.accelerator.is_main_process
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        handler = _setup_logging(self.run_dir) if main else None
        try:
            if self.state_dir is not None:
                self._restore(self.state_dir)
            if main:
                save_config(config, self.run_dir / CONFIG_FILE)  # on resume: with any new overrides
            if self.state_dir is None and (main or self.sharded):
                self._save_last()  # step 0: from here on the run is always resumable
            self._log_start()
            if self._text_note:
                LOG.info(self._text_note)
            end = config.steps if stop_at_step is None else min(config.steps, stop_at_step)
            seconds = self._loop(end, show_progress and main)
            if self._saved_step != self.step and (main or self.sharded):
                self._save_last()
            self.accelerator.wait_for_everyone()  # no process leaves (and may start another run) while main writes
            if main:
                LOG.info(
                    "stopped at step %d; files in %s: %s", self.step, self.run_dir,
                    ", ".join(sorted(p.name for p in self.run_dir.iterdir() if not p.name.startswith("."))),
                )
            return TrainSummary(self.run_dir, self.step, self.best_step, self.best_value, self.last_validation, seconds)
        finally:
            if handler is not None:
                LOG.removeHandler(handler)
                handler.close()

    def _log_start(self) -> None:
        n_params = sum(getattr(p, "ds_numel", p.numel()) for p in self.model.parameters())  # ZeRO-3: p is empty
        LOG.info(
            "data %s: train %d samples / %d scenes, val %d samples (%d used per validation) / %d scenes",
            self.data_root, len(self.train_set), len(self.train_set.manifest.splits[self.config.data.train_split]),
            len(self.val_set), len(self.val_indices), len(self.val_set.manifest.splits[self.config.data.val_split]),
        )
        LOG.info(
            "model %.2fM parameters, text %s, %d categories; device %s x%d%s; loss %s (lambda_pl %g, margin %g, %s)",
            n_params / 1e6, self.model.config.text_model or f"own/word-level ({self.model.config.vocab_size})",
            len(self.model.config.categories), self.accelerator.device, self.accelerator.num_processes,
            f" DeepSpeed ZeRO-{zero_stage(self.accelerator)}" if self.sharded else "", loss_kind(self.config), self.config.loss.lambda_pl, self.config.loss.margin,
            self.config.loss.form,
        )
        LOG.info("steps %d from %d, batch %d, run dir %s", self.config.steps, self.step, self.config.batch_size, self.run_dir)

    def _loop(self, end: int, show_progress: bool) -> float:
        config = self.config
        self.dual.train()
        elapsed, timed_steps = 0.0, 0
        with logging_redirect_tqdm(loggers=[LOG]), tqdm(
            total=config.steps, initial=self.step, disable=not show_progress, desc=loss_kind(config), dynamic_ncols=True
        ) as bar:
            while self.step < end:
                started = time.perf_counter()
                batch = self._batch(self.step)
                total, terms = training_step_loss(self.dual, batch, config)
                self.accelerator.backward(total)
                if config.optim.grad_clip > 0:
                    self.accelerator.clip_grad_norm_(self.model.parameters(), config.optim.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                step_seconds = time.perf_counter() - started
                elapsed, timed_steps = elapsed + step_seconds, timed_steps + 1
                # Averaged over the processes: the loss of the global batch (each process holds a slice of it).
                reduced = self.accelerator.reduce(torch.stack([value.detach().float() for value in terms.values()]), "mean")
                values = dict(zip(terms, reduced.tolist()))
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items() if k in ("total", "align", "pseudo_label")})
                if self.accelerator.is_main_process and (self.step % config.log_every == 0 or self.step == config.steps):
                    lr = self.optimizer.param_groups[0]["lr"]
                    self.train_log.append(
                        {"step": self.step, "lr": lr, "seconds_per_step": step_seconds,
                         **{f"loss/{k}": v for k, v in values.items()}}
                    )
                if self.step % config.eval_every == 0 or self.step == config.steps:
                    if self.accelerator.is_main_process or self.sharded:  # sharded: every process runs the forwards
                        self._after_validation(self.validate())
                        self._save_last()
                    self.accelerator.wait_for_everyone()
        return elapsed / max(1, timed_steps)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` CPU threads for torch ops (0 = leave torch's choice), restored on exit.

    On a small shared CPU, torch's default (one thread per core) can be many times slower
    than one thread: its worker threads wait on each other whenever another process holds
    a core (measured in docs/TRAINING.md).
    """
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(
    config: TrainConfig,
    data_root: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    stop_at_step: int | None = None,
    show_progress: bool = True,
) -> TrainSummary:
    """Train (or resume) one run; see the module docstring for what lands in ``run_dir``."""
    with torch_threads(config.num_threads), seeded_and_deterministic(config.seed):
        trainer = Trainer(config, data_root, run_dir, resume=resume)
        return trainer.fit(stop_at_step=stop_at_step, show_progress=show_progress)
