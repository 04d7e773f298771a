"""``w2r2-train``: train the grounding model with the W2R2 objective or the baseline (docs/TRAINING.md).

    w2r2-train --config configs/train_default.yaml --loss w2r2 --data data/synthetic --out runs/w2r2
    w2r2-train --out runs/w2r2 --data data/synthetic --resume
    w2r2-train --config configs/train_tiny.yaml --data data/tiny --build-data
    w2r2-train --config configs/train_default.yaml --data data/lab --bag-annotations lab/annotations.json --out runs/lab

Bad input (config key or value, dataset, annotation file, run directory, checkpoint, a path
that is a directory) ends with one line on stderr naming the file and the problem, and exit
status 2; a failing environment (disk full, read-only filesystem, permission denied) with one
line and exit status 1. ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Sequence

from w2r2_ros.cli.exit_codes import run_reporting_errors
from w2r2_ros.model.checkpoint import CheckpointError
from w2r2_training.config import ConfigError, TrainConfig, apply_overrides, load_config
from w2r2_training.bag_dataset import BagDatasetConfig, build_bag_dataset
from w2r2_training.dataset_format import DatasetError, plain_name
from w2r2_training.scanrefer import ScanReferConfig, build_scanrefer_dataset
from w2r2_training.synthetic_dataset import build_synthetic_dataset
from w2r2_training.trainer import CONFIG_FILE, LOG, TrainingError, check_run_dir, loss_kind, train
from w2r2_training.trainer_state import TrainerStateError

INPUT_ERRORS = (ConfigError, DatasetError, CheckpointError, TrainerStateError, TrainingError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2r2-train",
        description="Train the W2R2 grounding model (or the L_align-only baseline) on a grounding dataset.",
        epilog="Overrides are section.key=value, e.g. steps=500 optim.lr=1e-3 loss.margin=0.5 model.hidden_size=96.",
    )
    parser.add_argument("--config", type=Path, help="YAML or JSON TrainConfig (default: built-in defaults)")
    parser.add_argument("--loss", choices=("w2r2", "baseline"), help="w2r2 (default) or baseline (loss.lambda_pl = 0)")
    parser.add_argument("--data", type=Path, required=True, help="dataset root (built here if missing and the config allows)")
    parser.add_argument("--out", type=Path, help="run directory (config, metrics, curves, checkpoints)")
    parser.add_argument("--seed", type=int, help="random seed (overrides the config's seed)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last saved state")
    parser.add_argument("--build-data", action="store_true", help="only build the dataset at --data, then exit")
    parser.add_argument(
        "--bag-annotations", type=Path, metavar="FILE",
        help="build --data (if missing) from annotated rosbag2 recordings (docs/DATA.md)",
    )
    parser.add_argument(
        "--scanrefer", action="append", default=[], metavar="SPLIT=JSON",
        help="build --data (if missing) from ScanRefer JSON files, e.g. --scanrefer train=ScanRefer_filtered_train.json",
    )
    parser.add_argument("--scannet", type=Path, metavar="DIR", help="ScanNet scenes folder for --scanrefer")
    parser.add_argument("--stop-at-step", type=int, metavar="N", help="save a resumable state after step N and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback instead of one line")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the file (or, on --resume, the run's saved config.yaml) + overrides + --seed/--loss."""
    if args.resume:
        if args.config is not None:
            raise ConfigError(f"--config {args.config}: --resume takes the config from {args.out / CONFIG_FILE}")
        config = load_config(args.out / CONFIG_FILE, args.overrides)
    else:
        config = load_config(args.config, args.overrides)
    if args.seed is not None:
        config = apply_overrides(config, [f"seed={args.seed}"])
    if args.resume:
        if args.loss is not None and args.loss != loss_kind(config):
            raise ConfigError(f"--loss {args.loss}: the run in {args.out} was started with --loss {loss_kind(config)}")
        return config
    if args.loss == "baseline":
        return dataclasses.replace(config, loss=dataclasses.replace(config.loss, lambda_pl=0.0))
    if loss_kind(config) != "w2r2":
        raise ConfigError(f"{args.config or 'defaults'}: loss.lambda_pl is 0, which is the baseline; set it > 0 for --loss w2r2")
    return config


def _scanrefer_annotations(items: Sequence[str]) -> dict[str, Path]:
    annotations = {}
    for item in items:
        split, sep, path = item.partition("=")
        if not sep or not split or not path:
            raise ConfigError(f"--scanrefer {item!r}: expected SPLIT=JSON, e.g. train=ScanRefer_filtered_train.json")
        annotations[plain_name(split, "--scanrefer split", item)] = Path(path)
    return annotations


def ensure_dataset(args: argparse.Namespace, config: TrainConfig) -> None:
    """Build the dataset at ``--data`` when it holds none: from bags, from ScanRefer, or synthetic.

    The builders are the dataset modules' own; the model section of the config gives
    the input settings (image size, patches) the dataset is prepared for.
    """
    data_root, progress = args.data, not args.no_progress
    annotations = _scanrefer_annotations(args.scanrefer)
    if args.scanrefer and args.scannet is None:
        raise ConfigError("--scanrefer needs --scannet DIR (the ScanNet scenes folder)")
    if (data_root / "manifest.json").exists():
        if args.scanrefer or args.bag_annotations is not None:
            LOG.info("%s already holds a dataset: using it, not rebuilding it from the given sources", data_root)
        return
    if args.bag_annotations is not None:
        LOG.info("building %s from the recordings in %s", data_root, args.bag_annotations)
        build_bag_dataset(data_root, args.bag_annotations, BagDatasetConfig(model=config.model), progress=progress)
    elif annotations:
        LOG.info("building %s from ScanRefer %s and ScanNet %s", data_root, args.scanrefer, args.scannet)
        build_scanrefer_dataset(
            data_root, args.scannet, annotations, ScanReferConfig(model=config.model),
            progress=progress,
        )
    elif config.data.synthetic:
        LOG.info("no dataset at %s: building the synthetic one (%s)", data_root, config.data.synthetic_build or "defaults")
        try:
            build_synthetic_dataset(data_root, model=config.model, progress=progress, **config.data.synthetic_build)
        except ValueError as exc:  # SyntheticDatasetConfig rejects bad sizes
            raise ConfigError(f"data.synthetic_build: {exc}") from None
    else:
        raise DatasetError(data_root / "manifest.json", "no dataset here (data.synthetic is false, so none is built)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if args.out is None and not args.build_data:
        parser.error("--out is required (except with --build-data)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("w2r2-train: %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    try:
        return run_reporting_errors("w2r2-train", lambda: run(args), INPUT_ERRORS, args.debug)
    except KeyboardInterrupt:
        print(f"w2r2-train: interrupted; resume with --resume --out {args.out}", file=sys.stderr)
        return 130
    finally:
        LOG.removeHandler(handler)


def run(args: argparse.Namespace) -> int:
    """Build the dataset if needed, then train; errors go up to ``main`` to become one line."""
    config = resolve_config(args)
    if not args.build_data:
        check_run_dir(args.out, args.resume)  # before a possibly long dataset build
    ensure_dataset(args, config)
    if args.build_data:
        LOG.info("dataset ready at %s", args.data)
        return 0
    summary = train(
        config, args.data, args.out, resume=args.resume, stop_at_step=args.stop_at_step,
        show_progress=not args.no_progress,
    )
    best = "none" if summary.best_step is None else f"{summary.best_value:.4f} at step {summary.best_step}"
    print(
        f"w2r2-train: step {summary.step}/{config.steps}, best {config.best_metric} {best}, "
        f"{summary.seconds_per_step:.3f} s/step; run in {summary.run_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
