"""The 2D-shortcut split (docs/SHORTCUT_SPLIT.md): a derived dataset in which the most visible instance of the
named category is always the target for training and never the target for testing.

Visibility of a proposal = its ``box_patch_weights`` summed over keyframes and patches (patch units), a cue the
model's 3D-ablated pass can read (object tokens are pooled from the patches in each box). The derived dataset
shares the source's scene files (hard links, copies across file systems) and writes filtered train/val/test
samples, so ``w2r2-train --data <derived>`` and ``w2r2-eval`` need nothing new.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from w2r2_ros.cli.exit_codes import run_reporting_errors
from w2r2_training.dataset_format import (
    MIN_TARGET_IOU,
    NO_TARGET,
    SPLIT_MULTIPLE,
    DatasetError,
    DatasetWriter,
    Sample,
    SceneRecord,
    count_samples,
    match_target,
    read_manifest,
    read_samples,
    read_scene,
)

DEFAULT_RATIO = 1.25
PROG = "python -m w2r2_training.shortcut_split"


def proposal_visibility(record: SceneRecord) -> np.ndarray:
    """(N,) patch-equivalents of each proposal's depth samples over all keyframes."""
    return record.inputs.box_patch_weights.sum(dim=(1, 2)).numpy().astype(np.float64)


def distractor_visibility(record: SceneRecord, sample: Sample, visibility: np.ndarray) -> np.ndarray:
    """Visibility of each same-category distractor's best proposal (0 when none reaches IoU 0.25)."""
    boxes = record.proposal_boxes
    out = []
    for obj in record.objects:
        if obj.category != sample.object_name or obj.object_id == sample.object_id:
            continue
        index, _ = match_target(boxes, np.asarray(obj.box), MIN_TARGET_IOU)
        out.append(0.0 if index == NO_TARGET else float(visibility[index]))
    return np.asarray(out, dtype=np.float64)


def shortcut_holds(record: SceneRecord, sample: Sample, visibility: np.ndarray, ratio: float) -> bool | None:
    """True when the target is the most visible instance by ``ratio``, False when some distractor is by
    ``ratio`` more visible than it, None otherwise (no target proposal, or neither holds clearly)."""
    if sample.target_proposal == NO_TARGET:
        return None
    target = float(visibility[sample.target_proposal])
    others = distractor_visibility(record, sample, visibility)
    if others.size == 0 or target >= ratio * others.max():
        return True
    if others.max() >= ratio * target:
        return False
    return None


def filter_split(root: Path, split: str, keep_shortcut: bool, ratio: float) -> list[Sample]:
    """The split's samples that the design keeps: with ``keep_shortcut`` the unique samples and the multiple
    ones where the shortcut holds (train/val); without, the multiple ones where it clearly fails (test)."""
    records: dict[str, tuple[SceneRecord, np.ndarray]] = {}
    kept = []
    for sample in read_samples(root, split):
        if sample.scene_id not in records:
            record = read_scene(root, sample.scene_id)
            records[sample.scene_id] = (record, proposal_visibility(record))
        record, visibility = records[sample.scene_id]
        holds = shortcut_holds(record, sample, visibility, ratio)
        if keep_shortcut and holds:
            kept.append(sample)
        elif not keep_shortcut and sample.split_label == SPLIT_MULTIPLE and holds is False:
            kept.append(sample)
    return kept


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def build_shortcut_dataset(source: str | os.PathLike, out: str | os.PathLike, ratio: float = DEFAULT_RATIO,
                           overwrite: bool = False) -> dict[str, dict[str, int]]:
    """Write the derived dataset at ``out``; returns its per-split counts."""
    if ratio <= 1.0:
        raise ValueError(f"shortcut_split: ratio must be > 1, got {ratio}")
    source = Path(source)
    manifest = read_manifest(source)
    missing = [s for s in ("train", "val", "test") if s not in manifest.splits]
    if missing:
        raise DatasetError(source / "manifest.json", f"needs splits train, val and test; missing {missing}")
    writer = DatasetWriter(out, overwrite=overwrite)
    splits = {s: list(manifest.splits[s]) for s in ("train", "val", "test")}
    for ids in splits.values():
        for scene_id in ids:
            for suffix in (".safetensors", ".json"):
                _link_or_copy(source / "scenes" / f"{scene_id}{suffix}", writer.staging / "scenes" / f"{scene_id}{suffix}")
    samples = {
        "train": filter_split(source, "train", True, ratio),
        "val": filter_split(source, "val", True, ratio),
        "test": filter_split(source, "test", False, ratio),
    }
    counts = {}
    for split, split_samples in samples.items():
        writer.write_split(split, split_samples)
        counts[split] = count_samples(split_samples, len(splits[split]))
    generator = dict(manifest.generator, shortcut_split={"source": str(source.resolve()), "ratio": ratio})
    writer.finish(replace(manifest, splits=splits, counts=counts, generator=generator))
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="a built dataset with train, val and test splits")
    parser.add_argument("--out", required=True, help="where to write the derived dataset")
    parser.add_argument("--ratio", type=float, default=DEFAULT_RATIO, help="visibility ratio that makes an instance clearly the most visible")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already at --out")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback instead of one line")
    args = parser.parse_args(argv)

    def run() -> int:
        for split, values in build_shortcut_dataset(args.source, args.out, args.ratio, args.overwrite).items():
            print(f"{split}: {values}")
        return 0

    return run_reporting_errors(PROG, run, (DatasetError, ValueError), args.debug)


if __name__ == "__main__":
    sys.exit(main())
