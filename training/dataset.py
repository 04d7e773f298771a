"""The grounding dataset as torch sees it: one item per (scene, description), batches for the model.

Scenes are read lazily and kept in memory once read (a scene is about 1.3 MB
at K = 8 frames of 128x96), so every description of a scene shares one copy of
its model inputs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from w2r2_ros.model.inputs import GroundingInputs, collate_inputs
from w2r2_training.dataset_format import (
    NO_TARGET,
    DatasetError,
    Manifest,
    Sample,
    SceneRecord,
    proposal_categories,
    read_manifest,
    read_samples,
    read_scene,
)


@dataclass(frozen=True)
class GroundingItem:
    """One description of one scene.

    ``target_proposal`` is -1 when no proposal overlaps the target at IoU >= 0.25
    ("no target" for training); ``proposal_categories`` (N,) is the category index
    of the GT object each proposal matches at IoU >= 0.5, else -1;
    ``target_category`` is the target's category index (-1 if not in the list).
    """

    sample: Sample
    inputs: GroundingInputs
    proposal_categories: np.ndarray
    target_category: int
    gt_boxes: np.ndarray
    gt_object_ids: np.ndarray

    @property
    def text(self) -> str:
        return self.sample.description

    @property
    def target_proposal(self) -> int:
        return self.sample.target_proposal

    @property
    def target_box(self) -> np.ndarray:
        return np.asarray(self.sample.target_box, dtype=np.float64)

    @property
    def split_label(self) -> str:
        return self.sample.split_label


@dataclass
class GroundingBatch:
    """A batch for ``W2R2GroundingModel``.

    ``target`` (B,) int64 indexes the model's logits (B, N + 1) over the N padded
    proposals plus a last "no target" column: a sample with no target proposal
    has ``target == N``. ``same_class_mask`` (B, N) marks proposals that are
    same-category distractors of the target (matched at IoU >= 0.5, not the target
    itself), for the optional label smoothing of the alignment loss.
    ``proposal_categories`` (B, N) is -1 for unmatched and padded proposals.
    """

    inputs: GroundingInputs
    text_ids: torch.Tensor
    text_mask: torch.Tensor
    target: torch.Tensor
    proposal_boxes: torch.Tensor
    target_boxes: torch.Tensor
    split_labels: list[str]
    same_class_mask: torch.Tensor
    proposal_categories: torch.Tensor
    samples: list[Sample]

    def to(self, device: torch.device | str) -> "GroundingBatch":
        return GroundingBatch(
            inputs=self.inputs.to(device),
            text_ids=self.text_ids.to(device),
            text_mask=self.text_mask.to(device),
            target=self.target.to(device),
            proposal_boxes=self.proposal_boxes.to(device),
            target_boxes=self.target_boxes.to(device),
            split_labels=self.split_labels,
            same_class_mask=self.same_class_mask.to(device),
            proposal_categories=self.proposal_categories.to(device),
            samples=self.samples,
        )


class GroundingDataset(torch.utils.data.Dataset):
    """Samples of one split of a dataset written by ``dataset_format`` (any source)."""

    def __init__(self, root: str | os.PathLike, split: str) -> None:
        self.root = Path(root)
        self.split = split
        self.manifest: Manifest = read_manifest(self.root)
        if split not in self.manifest.splits:
            raise DatasetError(self.root / "manifest.json", f"no split {split!r} (has {sorted(self.manifest.splits)})")
        self.samples = read_samples(self.root, split)
        scenes = set(self.manifest.splits[split])
        for sample in self.samples:
            if sample.scene_id not in scenes:
                raise DatasetError(self.root / f"{split}.jsonl", f"scene {sample.scene_id} is not listed in split {split}")
        self._category_index = {name: i for i, name in enumerate(self.manifest.categories)}
        self._scenes: dict[str, tuple[SceneRecord, np.ndarray]] = {}

    @property
    def categories(self) -> list[str]:
        """The category list that ``proposal_categories`` indexes (set ``ModelConfig.categories`` to it)."""
        return list(self.manifest.categories)

    def texts(self) -> list[str]:
        """Every description of the split, in order (to build the tokenizer from the training split)."""
        return [s.description for s in self.samples]

    def scene(self, scene_id: str) -> SceneRecord:
        return self._scene(scene_id)[0]

    def _scene(self, scene_id: str) -> tuple[SceneRecord, np.ndarray]:
        if scene_id not in self._scenes:
            record = read_scene(self.root, scene_id)
            labels = proposal_categories(record.proposal_boxes, record.objects, self.manifest.categories)
            self._scenes[scene_id] = (record, labels)
        return self._scenes[scene_id]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> GroundingItem:
        sample = self.samples[index]
        record, labels = self._scene(sample.scene_id)
        return GroundingItem(
            sample=sample,
            inputs=record.inputs,
            proposal_categories=labels,
            target_category=self._category_index.get(record.object(sample.object_id).category, -1),
            gt_boxes=record.gt_boxes,
            gt_object_ids=record.gt_object_ids,
        )


def collate_grounding(items: Sequence[GroundingItem], tokenizer: Any, max_text_len: int) -> GroundingBatch:
    """Batch items: inputs padded by ``collate_inputs``, texts tokenized by ``tokenizer.encode(texts, max_len)``."""
    inputs = collate_inputs([item.inputs for item in items])
    n = inputs.boxes.shape[1]
    text_ids, text_mask = tokenizer.encode([item.text for item in items], max_text_len)
    target = torch.tensor([n if item.target_proposal == NO_TARGET else item.target_proposal for item in items])
    categories = torch.full((len(items), n), -1, dtype=torch.long)
    for row, item in enumerate(items):
        categories[row, : len(item.proposal_categories)] = torch.from_numpy(item.proposal_categories)
    target_category = torch.tensor([item.target_category for item in items])
    same_class = (categories == target_category[:, None]) & (target_category[:, None] >= 0)
    has_target = target < n
    same_class[torch.arange(len(items))[has_target], target[has_target]] = False  # never the target itself
    return GroundingBatch(
        inputs=inputs,
        text_ids=text_ids,
        text_mask=text_mask,
        target=target.long(),
        proposal_boxes=inputs.boxes,
        target_boxes=torch.tensor(np.stack([item.target_box for item in items]), dtype=torch.float32),
        split_labels=[item.split_label for item in items],
        same_class_mask=same_class,
        proposal_categories=categories,
        samples=[item.sample for item in items],
    )
