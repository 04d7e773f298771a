"""``w2r2-eval``: ScanRefer accuracy of a checkpoint, normal and 3D-ablated, optionally beside a second one.

    w2r2-eval --checkpoint runs/w2r2/best --data data/synthetic --split test --out results.json
    w2r2-eval --checkpoint runs/w2r2/best --compare runs/baseline/best --data data/synthetic --split val,test

Prints, per dataset split, a table with rows normal / 3D-ablated / gap / oracle and columns
Acc@0.25 and Acc@0.5 over overall / unique / multiple, and writes the same numbers as JSON.
Bad input ends with one line on stderr naming the file and the problem, exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from w2r2_ros.cli.exit_codes import run_reporting_errors
from w2r2_ros.model.checkpoint import CheckpointError, load_checkpoint, load_checkpoint_metadata
from w2r2_training.dataset import GroundingDataset
from w2r2_training.dataset_format import DatasetError, read_manifest
from w2r2_training.evaluate import (
    EvaluationResult,
    evaluate_model,
    evenly_spaced_indices,
    format_relation_table,
    format_table,
)
from w2r2_training.run_files import write_json_atomic
from w2r2_training.trainer import torch_threads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2r2-eval",
        description="Evaluate a W2R2 checkpoint (ScanRefer Acc@0.25/0.5; normal, 3D-ablated, gap, oracle).",
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory (e.g. runs/w2r2/best)")
    parser.add_argument("--data", type=Path, required=True, help="dataset root")
    parser.add_argument("--split", default="test", help="split name, comma-separated names, or 'all' (default: test)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--compare", type=Path, metavar="CKPT2", help="a second checkpoint to show side by side")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-samples", type=int, default=0, help="evaluate at most this many samples per split (0 = all)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback instead of one line")
    return parser


def _labels(paths: Sequence[Path]) -> list[str]:
    """Short names for the checkpoints: the loss they were trained with when that tells them apart."""
    losses = [str(load_checkpoint_metadata(p).get("loss", "")) for p in paths]
    if all(losses) and len(set(losses)) == len(losses):
        return losses
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


def _splits(data_root: Path, requested: str) -> list[str]:
    manifest = read_manifest(data_root)
    if requested == "all":
        return list(manifest.splits)
    return [s.strip() for s in requested.split(",") if s.strip()]


def evaluate_checkpoints(
    checkpoints: Sequence[Path],
    data_root: Path,
    splits: Sequence[str],
    *,
    batch_size: int = 16,
    max_samples: int = 0,
    device: str = "cpu",
) -> dict[str, dict[str, EvaluationResult]]:
    """``{split: {label: result}}`` for every checkpoint on every split."""
    models = [load_checkpoint(path, device) for path in checkpoints]
    labels = _labels(checkpoints)
    results: dict[str, dict[str, EvaluationResult]] = {}
    for split in splits:
        dataset = GroundingDataset(data_root, split)
        if len(dataset) == 0:
            raise DatasetError(data_root / f"{split}.jsonl", "no samples to evaluate")
        indices = evenly_spaced_indices(len(dataset), max_samples)
        results[split] = {}
        for label, (model, tokenizer) in zip(labels, models):
            dataset.manifest.check_model_config(model.config, data_root / "manifest.json")
            results[split][label] = evaluate_model(
                model, dataset, tokenizer, max_text_len=model.config.max_text_length,
                batch_size=batch_size, indices=indices, device=device,
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Bad input: one line, exit 2; a failing environment (e.g. --out on a full disk): one line, exit 1."""
    args = build_parser().parse_args(argv)
    return run_reporting_errors("w2r2-eval", lambda: run(args), (CheckpointError, DatasetError), args.debug)


def run(args: argparse.Namespace) -> int:
    checkpoints = [args.checkpoint] + ([args.compare] if args.compare is not None else [])
    with torch_threads(args.threads):
        results = evaluate_checkpoints(
            checkpoints, args.data, _splits(args.data, args.split),
            batch_size=args.batch_size, max_samples=args.max_samples, device=args.device,
        )
    for split, by_label in results.items():
        print(f"\n== {split} ({args.data}) ==")
        print(format_table(by_label))
        print()
        print(format_relation_table(by_label))
    if args.out is not None:
        document: dict[str, Any] = {
            "data": str(args.data),
            "checkpoints": {label: str(path) for label, path in zip(next(iter(results.values())), checkpoints)},
            "splits": {split: {label: r.as_dict() for label, r in by_label.items()} for split, by_label in results.items()},
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out, document)
        print(f"\nw2r2-eval: results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
