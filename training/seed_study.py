"""W2R2 against the baseline over seeds: train every (loss, seed) with one recipe, evaluate each run on named
test sets, and report mean and spread (issue 15: "3 seeds each, mean and spread").

    python -m w2r2_training.seed_study --config configs/train_default.yaml --data data/scannet \
        --out runs/seeds --seeds 0 1 2 --parallel 2 \
        --eval test=data/scannet:test --eval heldout=data/scannet:test_heldout@1500

Runs are ``w2r2-train``/``w2r2-eval`` subprocesses (the commands a user types), ``--parallel`` at a time, each
with one torch thread. A run that trained to its configured steps (its ``last/`` state's step, see
``trainer.run_finished``) is not trained again and an evaluation whose JSON exists is not redone; an interrupted
run is resumed (``w2r2-train --resume``) and its evaluations are redone, so an interrupted study continues where
it stopped. Writes ``<out>/study.json`` (every run's numbers and the summary)
and prints the summary table: per test set and loss, Acc@0.25 / Acc@0.5 overall, unique and multiple as
mean ± sample standard deviation over seeds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from w2r2_training.run_files import resolve_directory, write_json_atomic
from w2r2_training.trainer import CONFIG_FILE, LAST_DIR, run_finished

LOSSES = ("w2r2", "baseline")
COLUMNS = ("overall", "unique", "multiple")
THRESHOLDS = ("acc@0.25", "acc@0.5")


@dataclass(frozen=True)
class EvalSet:
    """A named test set: a dataset root, one of its splits, and at most ``max_samples`` of its samples
    (evenly spaced, as ``w2r2-eval --max-samples``; 0 = all)."""

    name: str
    data: Path
    split: str
    max_samples: int = 0

    @staticmethod
    def parse(text: str) -> "EvalSet":
        name, sep, rest = text.partition("=")
        rest, at, limit = rest.partition("@")
        data, sep2, split = rest.rpartition(":")
        if not sep or not sep2 or not name or not data or not split or (at and not limit.isdigit()):
            raise argparse.ArgumentTypeError(f"--eval wants NAME=DATA:SPLIT or NAME=DATA:SPLIT@MAX_SAMPLES, got {text!r}")
        return EvalSet(name, Path(data), split, int(limit) if at else 0)


def _bin(name: str) -> str:
    """The console script beside this interpreter (the venv's), so subprocesses run the same install."""
    return str(Path(sys.executable).with_name(name))


def _run(command: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {done.returncode}; see {log}")


def run_one(args: argparse.Namespace, loss: str, seed: int) -> dict[str, Any]:
    """Train (unless done) and evaluate (unless done) one run; returns {eval set name: eval JSON}."""
    run_dir = args.out / f"{loss}_s{seed}"
    log = args.out / "logs" / f"{loss}_s{seed}.log"
    started = time.monotonic()
    if not run_finished(run_dir):
        command = [_bin("w2r2-train"), "--loss", loss, "--seed", str(seed), "--data", str(args.data),
                   "--out", str(run_dir), "--no-progress", *args.overrides]
        if (run_dir / CONFIG_FILE).exists() or resolve_directory(run_dir / LAST_DIR) is not None:
            command.append("--resume")  # the run's own config.yaml (w2r2-train refuses --config with --resume)
            print(f"seed_study: {loss} seed {seed}: resuming the unfinished run in {run_dir}", flush=True)
        else:
            command[1:1] = ["--config", str(args.config)]
        for stale in (run_dir / "eval").glob("*.json"):  # made from an unfinished run's best/
            stale.unlink()
        _run(command, log)
    results = {}
    for eval_set in args.eval:
        path = run_dir / "eval" / f"{eval_set.name}.json"
        if not path.exists():
            _run([_bin("w2r2-eval"), "--checkpoint", str(run_dir / "best"), "--data", str(eval_set.data),
                  "--split", eval_set.split, "--max-samples", str(eval_set.max_samples), "--out", str(path),
                  "--threads", "1"], log)
        document = json.loads(path.read_text())
        results[eval_set.name] = next(iter(document["splits"][eval_set.split].values()))
    print(f"seed_study: {loss} seed {seed} done in {time.monotonic() - started:.0f} s", flush=True)
    return results


def summarise(runs: dict[str, dict[int, dict[str, Any]]], eval_sets: Sequence[EvalSet]) -> dict[str, Any]:
    """{eval set: {loss: {column: {threshold: {mean, sd, values}}}}} over the seeds of each loss."""
    summary: dict[str, Any] = {}
    for eval_set in eval_sets:
        by_loss = {}
        for loss, seeds in runs.items():
            table = {}
            for column in COLUMNS:
                table[column] = {}
                for threshold in THRESHOLDS:
                    values = [seeds[s][eval_set.name]["normal"][column][threshold] for s in sorted(seeds)]
                    values = [v for v in values if v is not None]
                    table[column][threshold] = {
                        "mean": statistics.fmean(values) if values else None,
                        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "values": values,
                    }
            by_loss[loss] = table
        summary[eval_set.name] = by_loss
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """One row per (test set, loss): Acc@0.25 and Acc@0.5 in percent, mean ± sd over seeds."""
    header = f"{'test set':<16} {'loss':<9}" + "".join(f" {c + ' ' + t[4:]:>17}" for c in COLUMNS for t in THRESHOLDS)
    lines = [header, "-" * len(header)]
    for name, by_loss in summary.items():
        for loss, table in by_loss.items():
            cells = []
            for column in COLUMNS:
                for threshold in THRESHOLDS:
                    cell = table[column][threshold]
                    cells.append("n/a" if cell["mean"] is None else f"{100 * cell['mean']:.1f} ± {100 * cell['sd']:.1f}")
            lines.append(f"{name:<16} {loss:<9}" + "".join(f" {c:>17}" for c in cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2r2_training.seed_study", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the training recipe (YAML)")
    parser.add_argument("--data", type=Path, required=True, help="training dataset root")
    parser.add_argument("--out", type=Path, required=True, help="study directory (one run directory per loss and seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES))
    parser.add_argument("--eval", type=EvalSet.parse, action="append", required=True, metavar="NAME=DATA:SPLIT",
                        help="a test set to evaluate every run on (repeatable)")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (each uses one torch thread)")
    parser.add_argument("overrides", nargs="*", help="config overrides passed to w2r2-train (section.key=value)")
    args = parser.parse_args(argv)
    if args.parallel < 1:
        parser.error("--parallel must be >= 1")
    args.overrides = list(args.overrides) + ["num_threads=1"]
    jobs = [(loss, seed) for seed in args.seeds for loss in args.losses]
    runs: dict[str, dict[int, dict[str, Any]]] = {loss: {} for loss in args.losses}
    try:
        if not (args.data / "manifest.json").exists():  # built once here, not by parallel runs racing for it
            _run([_bin("w2r2-train"), "--config", str(args.config), "--data", str(args.data), "--build-data",
                  *args.overrides], args.out / "logs" / "build_data.log")
        with ThreadPoolExecutor(args.parallel) as pool:
            for (loss, seed), result in zip(jobs, pool.map(lambda job: run_one(args, *job), jobs)):
                runs[loss][seed] = result
    except RuntimeError as exc:
        print(f"seed_study: error: {exc}", file=sys.stderr)
        return 1
    summary = summarise(runs, args.eval)
    write_json_atomic(args.out / "study.json", {
        "config": str(args.config), "data": str(args.data), "seeds": args.seeds, "overrides": args.overrides,
        "eval": {e.name: {"data": str(e.data), "split": e.split, "max_samples": e.max_samples} for e in args.eval},
        "runs": {loss: {str(s): r for s, r in seeds.items()} for loss, seeds in runs.items()},
        "summary": summary,
    })
    print(format_summary(summary))
    print(f"\nseed_study: written to {args.out / 'study.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
