"""Evaluate a grounding model on a dataset split: normal, 3D-ablated, their gap, and the proposal oracle.

Every checkpoint is evaluated twice (W2R2.md, "Diagnostic of 2D bias"): with its 3D
input, and with every 3D encoding removed (``ablate_3d=True``). A model that uses Where
loses much more in the second pass, mainly on the "multiple" split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from w2r2_training.dataset import GroundingBatch, GroundingDataset, collate_grounding
from w2r2_training.metrics import (
    SPLITS,
    THRESHOLDS,
    AccuracyReport,
    accuracy_from_ious,
    masked_accuracy,
    oracle_accuracy,
    predicted_box_ious,
)
from w2r2_training.referring import SPLIT_MULTIPLE


@dataclass(frozen=True)
class RelationAccuracy:
    """Acc@k of the samples whose description uses one relation (``Sample.relation``: "colour", "nearest", ...)."""

    count: int
    normal: dict[float, float]
    ablated: dict[float, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "normal": {f"acc@{k:g}": v for k, v in self.normal.items()},
            "ablated": {f"acc@{k:g}": v for k, v in self.ablated.items()},
        }


# Relation label of samples that record none (ScanRefer JSON, bag annotations).
UNLABELLED_RELATION = "unlabelled"


def relation_accuracy(
    normal_ious: np.ndarray, ablated_ious: np.ndarray, relations: Sequence[str]
) -> dict[str, RelationAccuracy]:
    """Per relation (sorted by name), the share of samples at IoU >= k, normal and 3D-ablated."""
    labels = np.asarray(relations)
    out: dict[str, RelationAccuracy] = {}
    for name in sorted(set(relations)):
        mask = labels == name
        normal = masked_accuracy(normal_ious, mask)
        out[name] = RelationAccuracy(
            count=normal.count, normal=normal.accuracy, ablated=masked_accuracy(ablated_ious, mask).accuracy
        )
    return out


@dataclass(frozen=True)
class EvaluationResult:
    """Accuracy of one model on one split of a dataset, normal and with 3D ablated, and per relation."""

    normal: AccuracyReport
    ablated: AccuracyReport
    oracle: AccuracyReport
    relations: dict[str, RelationAccuracy] = field(default_factory=dict)

    def gap(self, split: str, threshold: float) -> float:
        """Accuracy lost when 3D is ablated (normal - ablated): how much the model relies on Where."""
        return self.normal.split(split).accuracy[threshold] - self.ablated.split(split).accuracy[threshold]

    def as_dict(self) -> dict[str, Any]:
        gap = {
            split: {f"acc@{k:g}": _json_number(self.gap(split, k)) for k in THRESHOLDS} for split in SPLITS
        }
        return {
            "normal": _json_report(self.normal),
            "ablated": _json_report(self.ablated),
            "gap": gap,
            "oracle": _json_report(self.oracle),
            "relations": {name: r.as_dict() for name, r in self.relations.items()},
        }

    def flat(self) -> dict[str, float]:
        """``{"normal/overall/acc@0.25": ..., "ablated/multiple/acc@0.5": ..., ...}`` for metric logs."""
        out: dict[str, float] = {}
        for mode in ("normal", "ablated", "oracle"):
            report: AccuracyReport = getattr(self, mode)
            for split in SPLITS:
                for k, value in report.split(split).accuracy.items():
                    out[f"{mode}/{split}/acc@{k:g}"] = value
        return out


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json_report(report: AccuracyReport) -> dict[str, Any]:
    return {split: {k: _json_number(v) if isinstance(v, float) else v for k, v in d.items()} for split, d in report.as_dict().items()}


def evenly_spaced_indices(total: int, limit: int) -> list[int]:
    """``limit`` indices spread over ``range(total)`` (all of them when ``limit`` is 0 or >= total)."""
    if limit <= 0 or limit >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, limit).round()})


def _predicted_boxes(logits: torch.Tensor, batch: GroundingBatch) -> np.ndarray:
    """Box of the arg-max over proposals and "no target" (last column), NaN rows for "no target"."""
    choice = logits.argmax(dim=-1).cpu().numpy()
    boxes = batch.proposal_boxes.cpu().numpy().astype(np.float64)
    n = boxes.shape[1]
    out = np.full((len(choice), 6), np.nan)
    picked = choice < n
    out[picked] = boxes[np.flatnonzero(picked), choice[picked]]
    return out


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    dataset: GroundingDataset,
    tokenizer: Any,
    *,
    max_text_len: int,
    batch_size: int = 16,
    indices: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
) -> EvaluationResult:
    """Run the model over ``dataset`` (or the given sample ``indices``), normal and 3D-ablated.

    Every sample is judged against its annotated ``target_box``, also those whose target no
    proposal matches (training's "no target"): the protocol scores the box, not the proposal.
    The model is put in eval mode and restored to its previous mode afterwards.
    """
    was_training = model.training
    model.eval()
    order = list(range(len(dataset))) if indices is None else list(indices)
    normal, ablated, gt, multiple, proposals, relations = [], [], [], [], [], []
    try:
        for start in range(0, len(order), batch_size):
            items = [dataset[i] for i in order[start : start + batch_size]]
            batch = collate_grounding(items, tokenizer, max_text_len)
            inputs = batch.inputs.to(device)
            text_ids, text_mask = batch.text_ids.to(device), batch.text_mask.to(device)
            fused = model(inputs, text_ids, text_mask).logits
            no_3d = model(inputs, text_ids, text_mask, ablate_3d=True).logits
            normal.append(_predicted_boxes(fused, batch))
            ablated.append(_predicted_boxes(no_3d, batch))
            gt.append(batch.target_boxes.cpu().numpy().astype(np.float64))
            multiple.extend(label == SPLIT_MULTIPLE for label in batch.split_labels)
            relations.extend(sample.relation or UNLABELLED_RELATION for sample in batch.samples)
            valid = batch.inputs.object_mask.cpu().numpy()
            boxes = batch.proposal_boxes.cpu().numpy()
            proposals.extend(boxes[i][valid[i]] for i in range(len(valid)))
    finally:
        model.train(was_training)
    if not gt:
        raise ValueError("evaluate_model: no sample to evaluate")
    gt_boxes = np.concatenate(gt)
    is_multiple = np.asarray(multiple, dtype=bool)
    normal_ious = predicted_box_ious(np.concatenate(normal), gt_boxes)
    ablated_ious = predicted_box_ious(np.concatenate(ablated), gt_boxes)
    return EvaluationResult(
        normal=accuracy_from_ious(normal_ious, is_multiple),
        ablated=accuracy_from_ious(ablated_ious, is_multiple),
        oracle=oracle_accuracy(proposals, gt_boxes, is_multiple),
        relations=relation_accuracy(normal_ious, ablated_ious, relations),
    )


def format_table(results: dict[str, EvaluationResult]) -> str:
    """A text table: for each named result its normal, 3D-ablated and gap rows, then the oracle and counts.

    Accuracies are percentages; the oracle and the counts come from the first result (they
    depend on the data and proposals only, not on the model).
    """
    columns = [(k, split) for k in THRESHOLDS for split in SPLITS]
    header_k = "".join(f"{'Acc@' + format(k, 'g'):<27}" for k in THRESHOLDS)
    header_split = "".join(f"{split:>9}" for _, split in columns)
    label_width = max(14, *(len(name) + 12 for name in results))
    lines = [f"{'':<{label_width}}  {header_k}".rstrip(), f"{'':<{label_width}}{header_split}"]

    def row(label: str, values: list[float], signed: bool = False) -> str:
        cells = "".join(
            f"{'n/a':>9}" if not math.isfinite(v) else f"{100 * v:>+9.1f}" if signed else f"{100 * v:>9.1f}"
            for v in values
        )
        return f"{label:<{label_width}}{cells}"

    for name, result in results.items():
        prefix = f"{name} " if len(results) > 1 else ""
        lines.append(row(prefix + "normal", [result.normal.split(s).accuracy[k] for k, s in columns]))
        lines.append(row(prefix + "3D-ablated", [result.ablated.split(s).accuracy[k] for k, s in columns]))
        lines.append(row(prefix + "gap", [result.gap(s, k) for k, s in columns], signed=True))
    first = next(iter(results.values()))
    lines.append(row("oracle", [first.oracle.split(s).accuracy[k] for k, s in columns]))
    counts = ", ".join(f"{split} {first.normal.split(split).count}" for split in SPLITS)
    lines.append(f"samples: {counts}")
    return "\n".join(lines)


def format_relation_table(results: dict[str, EvaluationResult], threshold: float = 0.5) -> str:
    """Acc@``threshold`` per relation: one normal and one 3D-ablated column per named result."""
    names = sorted({name for result in results.values() for name in result.relations})
    header = "".join(f"{label[:12] + ' ' + mode:>22}" for label in results for mode in ("normal", "3D-abl."))
    lines = [f"Acc@{threshold:g} by relation", f"{'relation':<12}{'count':>7}{header}"]
    for name in names:
        cells, count = "", 0
        for result in results.values():
            r = result.relations.get(name)
            count = max(count, r.count if r else 0)
            cells += "".join(f"{100 * getattr(r, mode)[threshold]:>22.1f}" if r else f"{'n/a':>22}" for mode in ("normal", "ablated"))
        lines.append(f"{name:<12}{count:>7}{cells}")
    return "\n".join(lines)
