"""ScanRefer accuracy: Acc@0.25 / Acc@0.5 over overall, unique and multiple (W2R2.md "Evaluation").

A prediction is correct at k when the 3D IoU of its box with the ground-truth box is >= k.
A "no target" answer has no box, so it is wrong whenever a target exists. The oracle
(best proposal IoU >= k) is the ceiling set by the proposals: the gap between the oracle
and the model is the model's fault, the gap between 1.0 and the oracle the proposals'.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from w2r2_ros.geometry.boxes import box_iou_matrix

THRESHOLDS: tuple[float, ...] = (0.25, 0.5)
SPLITS: tuple[str, ...] = ("overall", "unique", "multiple")


@dataclass(frozen=True)
class SplitAccuracy:
    """Accuracy at each IoU threshold over the ``count`` samples of one split."""

    count: int
    accuracy: dict[float, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"count": self.count}
        out.update({f"acc@{k:g}": v for k, v in self.accuracy.items()})
        return out


@dataclass(frozen=True)
class AccuracyReport:
    """ScanRefer accuracies for the overall set and its unique / multiple splits."""

    overall: SplitAccuracy
    unique: SplitAccuracy
    multiple: SplitAccuracy

    def split(self, name: str) -> SplitAccuracy:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        return {name: self.split(name).as_dict() for name in SPLITS}


def predicted_box_ious(pred_boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """Per-sample IoU of a predicted (M, 6) box with its ground truth (M, 6).

    Rows of ``pred_boxes`` that are NaN mean "no target" and score IoU 0, i.e. wrong.
    """
    pred = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 6)
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 6)
    if pred.shape != gt.shape:
        raise ValueError(f"predicted boxes {pred.shape} and ground-truth boxes {gt.shape} differ in shape")
    ious = np.zeros(len(pred), dtype=np.float64)
    has_box = np.all(np.isfinite(pred), axis=1)
    for i in np.flatnonzero(has_box):
        ious[i] = box_iou_matrix(pred[i], gt[i])[0, 0]
    return ious


def oracle_ious(proposal_boxes: Sequence[np.ndarray], gt_boxes: np.ndarray) -> np.ndarray:
    """Per-sample best IoU of any proposal with the ground truth (0 when a sample has no proposal)."""
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 6)
    if len(proposal_boxes) != len(gt):
        raise ValueError(f"{len(proposal_boxes)} proposal sets for {len(gt)} ground-truth boxes")
    best = np.zeros(len(gt), dtype=np.float64)
    for i, proposals in enumerate(proposal_boxes):
        proposals = np.asarray(proposals, dtype=np.float64).reshape(-1, 6)
        if len(proposals):
            best[i] = box_iou_matrix(proposals, gt[i]).max()
    return best


def masked_accuracy(ious: np.ndarray, mask: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> SplitAccuracy:
    """Fraction of the samples selected by ``mask`` with IoU >= k; count 0 and accuracy NaN (not 0: nothing
    was measured) when the mask selects none."""
    n = int(mask.sum())
    acc = {float(k): (float(np.mean(ious[mask] >= k)) if n else float("nan")) for k in thresholds}
    return SplitAccuracy(count=n, accuracy=acc)


def accuracy_from_ious(
    ious: np.ndarray, is_multiple: np.ndarray, thresholds: Sequence[float] = THRESHOLDS
) -> AccuracyReport:
    """Fraction of samples with IoU >= k, overall and per unique / multiple split (``masked_accuracy``)."""
    ious = np.asarray(ious, dtype=np.float64).reshape(-1)
    multiple = np.asarray(is_multiple, dtype=bool).reshape(-1)
    if len(ious) != len(multiple):
        raise ValueError(f"{len(ious)} IoUs but {len(multiple)} unique/multiple labels")
    return AccuracyReport(
        overall=masked_accuracy(ious, np.ones_like(multiple), thresholds),
        unique=masked_accuracy(ious, ~multiple, thresholds),
        multiple=masked_accuracy(ious, multiple, thresholds),
    )


def grounding_accuracy(
    pred_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    is_multiple: np.ndarray,
    thresholds: Sequence[float] = THRESHOLDS,
) -> AccuracyReport:
    """ScanRefer Acc@k of predicted boxes (NaN rows = "no target", counted wrong)."""
    return accuracy_from_ious(predicted_box_ious(pred_boxes, gt_boxes), is_multiple, thresholds)


def oracle_accuracy(
    proposal_boxes: Sequence[np.ndarray],
    gt_boxes: np.ndarray,
    is_multiple: np.ndarray,
    thresholds: Sequence[float] = THRESHOLDS,
) -> AccuracyReport:
    """Upper bound of Acc@k given the proposals: a perfect chooser picks the best-overlapping one."""
    return accuracy_from_ious(oracle_ious(proposal_boxes, gt_boxes), is_multiple, thresholds)
