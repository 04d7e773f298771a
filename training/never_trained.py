"""How often does a checkpoint answer a class it was never trained on? (issue 15: "a class the model was never
trained on gets NOT_FOUND or a low score, not a confident wrong label")

Each name is asked as "the <name>" in each of the split's first ``--scenes`` scenes, none of which holds such an
object (the names are checked against the checkpoint's categories). An answer counts as given, as the grounding
node decides it, when the best proposal's probability beats "no target" and reaches ``--threshold`` (the node's
``score_threshold``); every given answer is a wrong one.

    python -m w2r2_training.never_trained --checkpoint w2r2_ros/models/default --data data/scannet4 --split test
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from w2r2_ros.cli.exit_codes import run_reporting_errors
from w2r2_ros.model.checkpoint import CheckpointError, load_checkpoint
from w2r2_training.dataset import GroundingDataset
from w2r2_training.dataset_format import DatasetError
from w2r2_training.run_files import write_json_atomic
from w2r2_training.trainer import torch_threads

# Objects of neither world's catalogue (docs/SYNTHETIC_WORLD.md) nor synonyms of one.
NEVER_TRAINED = ("piano", "guitar", "bicycle", "dog", "microwave", "washing machine", "car", "ladder", "fireplace",
                 "skateboard")


class NeverTrainedError(ValueError):
    """A name asked that the checkpoint was trained on."""


def answered_rates(
    checkpoint: str | Path, data: str | Path, split: str, names: Sequence[str] = NEVER_TRAINED, scenes: int = 30,
    threshold: float = 0.2,
) -> dict[str, Any]:
    """{"scenes": n, "threshold": t, "answered": {name: share of scenes answered}, "mean": their mean}."""
    model, text = load_checkpoint(checkpoint)
    trained = set(model.config.categories) & set(names)
    if trained:
        raise NeverTrainedError(f"{sorted(trained)}: categories of this checkpoint, not never-trained names")
    dataset = GroundingDataset(data, split)
    scene_ids = dataset.scene_ids()[:scenes]
    if not scene_ids:
        raise DatasetError(Path(data) / f"{split}.jsonl", "no scenes")
    states, mask = text.encode([f"the {name}" for name in names], model.config.max_text_length)
    answered = torch.zeros(len(names))
    for scene_id in scene_ids:
        with torch.no_grad():
            probabilities = model(dataset.scene(scene_id).inputs, states, mask).logits.softmax(dim=-1)
        best = probabilities[:, :-1].max(dim=-1).values
        answered += ((best > probabilities[:, -1]) & (best >= threshold)).float()
    rates = (answered / len(scene_ids)).tolist()
    return {"scenes": len(scene_ids), "threshold": threshold, "answered": dict(zip(names, rates)),
            "mean": sum(rates) / len(rates)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2r2_training.never_trained", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--names", nargs="+", default=list(NEVER_TRAINED), help="class names to ask (default: %(default)s)")
    parser.add_argument("--scenes", type=int, default=30, help="the split's first N scenes")
    parser.add_argument("--threshold", type=float, default=0.2, help="the grounding node's score_threshold")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback instead of one line")
    args = parser.parse_args(argv)

    def run() -> int:
        with torch_threads(args.threads):
            result = answered_rates(args.checkpoint, args.data, args.split, args.names, args.scenes, args.threshold)
        print(f"answered (a wrong object) in {result['scenes']} scenes, threshold {result['threshold']}:")
        for name, rate in result["answered"].items():
            print(f"  {name:>20} {100 * rate:5.1f} %")
        print(f"  {'mean':>20} {100 * result['mean']:5.1f} %")
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(args.out, result)
        return 0

    return run_reporting_errors("python -m w2r2_training.never_trained", run, (CheckpointError, DatasetError, NeverTrainedError),
                                args.debug)


if __name__ == "__main__":
    sys.exit(main())
