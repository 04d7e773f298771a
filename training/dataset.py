"""The grounding dataset as torch sees it: one item per (scene, description), batches for the model.

Scenes are read lazily and kept in memory once read (a scene is about 1.3 MB
at K = 8 frames of 128x96), so every description of a scene shares one copy of
its model inputs.
"""
from __future__ import annotations

import dataclasses
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
    GroundTruthObject,
    Manifest,
    Sample,
    SceneRecord,
    match_target,
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
    ``target_category`` is the target's category index (-1 if not in the list);
    ``anchor_proposals`` the proposal matching each of the sample's anchor objects
    (``Sample.anchor_ids``; ``match_target``), -1 where none matches, and
    ``anchor_categories`` their category indices (-1 if not in the list).
    Colours (indices in ``GroundingDataset.colours``, -1 = unknown): ``proposal_colours``
    (N,) of the matched GT objects as ``proposal_categories``; ``target_colour`` and
    ``anchor_colours`` the colour the description *says* for the target and each anchor,
    ``len(colours)`` ("not said") when it names the object without its colour.
    ``relation``: index of the sample's relation label in ``GroundingDataset.relations``, -1 when
    unlabelled or not in that list.
    """

    sample: Sample
    inputs: GroundingInputs
    proposal_categories: np.ndarray
    target_category: int
    gt_boxes: np.ndarray
    gt_object_ids: np.ndarray
    anchor_proposals: tuple[int, ...] = ()
    anchor_categories: tuple[int, ...] = ()
    proposal_colours: np.ndarray | None = None
    target_colour: int = -1
    anchor_colours: tuple[int, ...] = ()
    relation: int = -1

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
    ``anchor_target`` (B, A) is the proposal each anchor pointer of the model should
    pick: the first and the last anchor of the sample for A = 2 (the same one for a
    one-anchor relation), -1 where the sample names none or it matches no proposal;
    ``anchor_category`` (B, A) those anchors' category indices and ``target_category``
    (B,) the target's (-1: none, or not in the category list). ``proposal_colours``
    (B, N), ``target_colour`` (B,) and ``anchor_colour`` (B, A) are the items' colour
    labels (``GroundingItem``), padded with -1.
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
    anchor_target: torch.Tensor
    anchor_category: torch.Tensor
    target_category: torch.Tensor
    proposal_colours: torch.Tensor
    target_colour: torch.Tensor
    anchor_colour: torch.Tensor
    relation: torch.Tensor
    samples: list[Sample]

    def to(self, device: torch.device | str) -> "GroundingBatch":
        """The batch with every tensor (and the inputs) on ``device``; lists are shared."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return GroundingBatch(**{k: v.to(device) if hasattr(v, "to") else v for k, v in values.items()})


def said_colour(description: str, obj: GroundTruthObject, colours: Sequence[str]) -> int:
    """Index of the colour ``description`` gives ``obj`` ("the white plant"), ``len(colours)`` when it
    names the object's category without that colour, -1 when the object's colour is unknown."""
    if obj.color_name not in colours:
        return -1
    named = f"{obj.color_name} {obj.category.replace('_', ' ')}" in description.lower()
    return colours.index(obj.color_name) if named else len(colours)


class GroundingDataset(torch.utils.data.Dataset):
    """Samples of one split of a dataset written by ``dataset_format`` (any source).

    ``colours``: the colour words whose labels items carry (set ``ModelConfig.colours`` to
    it); empty (the default) gives every colour label -1. ``scene_colours`` lists the
    colours of a split's objects. ``relations``: likewise the relation names whose index items
    carry (``ModelConfig.relations``); ``sample_relations`` lists a split's.
    """

    def __init__(
        self, root: str | os.PathLike, split: str, colours: Sequence[str] = (), relations: Sequence[str] = ()
    ) -> None:
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
        self._colour_labels: dict[str, np.ndarray] = {}
        self.colours = list(colours)
        self.relations = list(relations)

    @property
    def colours(self) -> list[str]:
        return self._colours

    @colours.setter
    def colours(self, colours: Sequence[str]) -> None:
        self._colours = list(colours)
        self._colour_labels = {}

    @property
    def categories(self) -> list[str]:
        """The category list that ``proposal_categories`` indexes (set ``ModelConfig.categories`` to it)."""
        return list(self.manifest.categories)

    def texts(self) -> list[str]:
        """Every description of the split, in order (to build the tokenizer from the training split)."""
        return [s.description for s in self.samples]

    def scene(self, scene_id: str) -> SceneRecord:
        return self._scene(scene_id)[0]

    def scene_ids(self) -> list[str]:
        """Sorted ids of the scenes that the split's samples describe."""
        return sorted({sample.scene_id for sample in self.samples})

    def scene_colours(self) -> list[str]:
        """Sorted colour names of the objects of every scene of the split (reads them all)."""
        return sorted({o.color_name for scene_id in self.scene_ids() for o in self.scene(scene_id).objects if o.color_name})

    def oriented_proposal_boxes(self) -> np.ndarray:
        """(M, 7) every proposal box, turned in yaw, of every scene of the split (reads them all)."""
        return np.concatenate([self.scene(scene_id).oriented_proposal_boxes.reshape(-1, 7) for scene_id in self.scene_ids()])

    def sample_relations(self) -> list[str]:
        """Sorted relation labels of the split's samples ("colour", "nearest", ...; unlabelled ones left out)."""
        return sorted({sample.relation for sample in self.samples if sample.relation})

    def _scene(self, scene_id: str) -> tuple[SceneRecord, np.ndarray]:
        if scene_id not in self._scenes:
            record = read_scene(self.root, scene_id)
            labels = proposal_categories(record.proposal_boxes, record.objects, self.manifest.categories)
            self._scenes[scene_id] = (record, labels)
        return self._scenes[scene_id]

    def _proposal_colours(self, record: SceneRecord) -> np.ndarray:
        if record.scene_id not in self._colour_labels:
            self._colour_labels[record.scene_id] = proposal_categories(
                record.proposal_boxes, record.objects, self.colours, attribute="color_name"
            )
        return self._colour_labels[record.scene_id]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> GroundingItem:
        sample = self.samples[index]
        record, labels = self._scene(sample.scene_id)
        anchors = [record.object(a) for a in sample.anchor_ids]
        return GroundingItem(
            sample=sample,
            inputs=record.inputs,
            proposal_categories=labels,
            target_category=self._category_index.get(record.object(sample.object_id).category, -1),
            gt_boxes=record.gt_boxes,
            gt_object_ids=record.gt_object_ids,
            anchor_proposals=tuple(match_target(record.proposal_boxes, a.box)[0] for a in anchors),
            anchor_categories=tuple(self._category_index.get(a.category, -1) for a in anchors),
            proposal_colours=self._proposal_colours(record),
            target_colour=said_colour(sample.description, record.object(sample.object_id), self.colours),
            anchor_colours=tuple(said_colour(sample.description, a, self.colours) for a in anchors),
            relation=self.relations.index(sample.relation) if sample.relation in self.relations else -1,
        )


def with_absent_targets(
    items: Sequence[GroundingItem], fraction: float, rng: np.random.Generator, categories_of: Any
) -> list[GroundingItem]:
    """``items`` with about ``fraction`` of them replaced by an absent-target row: the row's description asked
    in the scene of another row that has no object of the description's target category (``categories_of(scene_id)``
    -> set of category names), with "no target" as the answer. What the text names (target and anchor
    categories, colours, relation) stays labelled; the anchors' proposals are unknown there (-1)."""
    out = list(items)
    for row in np.flatnonzero(rng.random(len(items)) < fraction):
        item = items[row]
        hosts = [other for other in items if other.sample.scene_id != item.sample.scene_id
                 and item.sample.object_name not in categories_of(other.sample.scene_id)]
        if not hosts:
            continue
        host = hosts[int(rng.integers(len(hosts)))]
        sample = dataclasses.replace(item.sample, scene_id=host.sample.scene_id, target_proposal=NO_TARGET,
                                     target_iou=0.0, anchor_ids=())
        out[row] = dataclasses.replace(
            host, sample=sample, target_category=item.target_category, anchor_categories=item.anchor_categories,
            anchor_proposals=(NO_TARGET,) * len(item.anchor_proposals), target_colour=item.target_colour,
            anchor_colours=item.anchor_colours, relation=item.relation,
        )
    return out


def anchor_targets(anchor_values: Sequence[int], pointers: int) -> list[int]:
    """Spread a sample's per-anchor values over the model's pointers: pointer a gets anchor
    round(a * (n - 1) / (A - 1)); -1 for every pointer when the sample names no anchor."""
    if not anchor_values:
        return [NO_TARGET] * pointers
    last = len(anchor_values) - 1
    return [anchor_values[round(a * last / max(pointers - 1, 1))] for a in range(pointers)]


def collate_grounding(items: Sequence[GroundingItem], tokenizer: Any, max_text_len: int, anchor_pointers: int = 2) -> GroundingBatch:
    """Batch items: inputs padded by ``collate_inputs``, texts tokenized by ``tokenizer.encode(texts, max_len)``;
    ``anchor_pointers`` = ``ModelConfig.relation_anchors``."""
    inputs = collate_inputs([item.inputs for item in items])
    n = inputs.boxes.shape[1]
    text_ids, text_mask = tokenizer.encode([item.text for item in items], max_text_len)
    target = torch.tensor([n if item.target_proposal == NO_TARGET else item.target_proposal for item in items])
    categories = torch.full((len(items), n), -1, dtype=torch.long)
    colours = torch.full((len(items), n), -1, dtype=torch.long)
    for row, item in enumerate(items):
        categories[row, : len(item.proposal_categories)] = torch.from_numpy(item.proposal_categories)
        if item.proposal_colours is not None:
            colours[row, : len(item.proposal_colours)] = torch.from_numpy(item.proposal_colours)
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
        anchor_target=torch.tensor([anchor_targets(item.anchor_proposals, anchor_pointers) for item in items]).long(),
        anchor_category=torch.tensor([anchor_targets(item.anchor_categories, anchor_pointers) for item in items]).long(),
        target_category=target_category.long(),
        proposal_colours=colours,
        target_colour=torch.tensor([item.target_colour for item in items]).long(),
        anchor_colour=torch.tensor([anchor_targets(item.anchor_colours, anchor_pointers) for item in items]).long(),
        relation=torch.tensor([item.relation for item in items]).long(),
        samples=[item.sample for item in items],
    )
