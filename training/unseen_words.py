"""Do words the training data never used ground like the trained class word? (issue 15)

Every sample of a split whose description names its target's class by a word of the fixed set
(``heldout_descriptions.UNSEEN_CLASS_WORDS``: sofa -> couch, lamp -> light, ...) is evaluated twice with one
checkpoint: as written, and with the class word swapped for its unseen synonym. Same scenes, proposals and
targets; only the word differs, so the gap is what the unseen word costs.

    python -m w2r2_training.unseen_words --checkpoint w2r2_ros/models/default --data data/scannet --split test
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from w2r2_ros.cli.exit_codes import run_reporting_errors
from w2r2_ros.model.checkpoint import CheckpointError, load_checkpoint
from w2r2_training.dataset import GroundingDataset
from w2r2_training.dataset_format import DatasetError
from w2r2_training.evaluate import evaluate_model
from w2r2_training.heldout_descriptions import UNSEEN_CLASS_WORDS, unseen_word_pairs
from w2r2_training.run_files import write_json_atomic
from w2r2_training.trainer import torch_threads


def unseen_word_accuracy(
    checkpoint: str | Path, data: str | Path, split: str, batch_size: int = 16, words: Mapping[str, str] = UNSEEN_CLASS_WORDS
) -> dict[str, Any]:
    """{"pairs": n, "trained": {"acc@0.25", "acc@0.5"}, "unseen": {...}, "per_class": {class: n}} over the split's
    samples that name their class by a class of ``words`` (class -> the word said instead; default the fixed set)."""
    model, tokenizer = load_checkpoint(checkpoint)
    dataset = GroundingDataset(data, split)
    dataset.manifest.check_model_config(model.config, Path(data) / "manifest.json")
    pairs = unseen_word_pairs(dataset.samples, words)
    if not pairs:
        raise DatasetError(Path(data) / f"{split}.jsonl", f"no description names a class of {sorted(words)}")
    out: dict[str, Any] = {"pairs": len(pairs), "per_class": {}}
    for side, samples in (("trained", [a for a, _ in pairs]), ("unseen", [b for _, b in pairs])):
        dataset.samples = samples
        result = evaluate_model(model, dataset, tokenizer, max_text_len=model.config.max_text_length, batch_size=batch_size)
        out[side] = {key: value for key, value in result.normal.as_dict()["overall"].items() if key.startswith("acc@")}
    for sample, _ in pairs:
        out["per_class"][sample.object_name] = out["per_class"].get(sample.object_name, 0) + 1
    return out


class WordsError(ValueError):
    """A ``--words`` file that is not a JSON object of class -> word strings."""


def read_words(path: Path) -> dict[str, str]:
    """The ``--words`` file: {class: word}."""
    try:
        words = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise WordsError(f"--words {path}: {error}") from None
    if not isinstance(words, dict) or not words or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                           for k, v in words.items()):
        raise WordsError(f"--words {path}: expected a non-empty JSON object of class name -> word, e.g. {{\"sofa\": \"couch\"}}")
    return words


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2r2_training.unseen_words", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--words", type=Path, help="a JSON object {class: word to say instead} (default: the fixed "
                        "set, heldout_descriptions.UNSEEN_CLASS_WORDS)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback instead of one line")
    args = parser.parse_args(argv)

    def run() -> int:
        words = UNSEEN_CLASS_WORDS if args.words is None else read_words(args.words)
        with torch_threads(args.threads):
            result = unseen_word_accuracy(args.checkpoint, args.data, args.split, words=words)
        print(f"{result['pairs']} descriptions naming {', '.join(f'{k} ({v})' for k, v in sorted(result['per_class'].items()))}")
        for side in ("trained", "unseen"):
            print(f"{side:>8} word: " + "  ".join(f"{k} {100 * v:.1f}" for k, v in result[side].items()))
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(args.out, result)
        return 0

    return run_reporting_errors("python -m w2r2_training.unseen_words", run, (CheckpointError, DatasetError, WordsError),
                                args.debug)


if __name__ == "__main__":
    sys.exit(main())
