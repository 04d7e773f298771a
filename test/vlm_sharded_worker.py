"""One process of the sharded-training test (test_vlm_sharded.py): train to ``stop`` steps, then resume the run
from its saved ``last/`` state in a new Trainer (a new DeepSpeed engine) and train to the config's ``steps``.

    accelerate launch --use_deepspeed --zero_stage 3 --num_processes 2 test/vlm_sharded_worker.py CONFIG DATA RUN STOP [key=value ...]
    python test/vlm_sharded_worker.py CONFIG DATA RUN 0 [key=value ...]        (one process, no stop)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from accelerate import PartialState

from w2r2_training.config import load_config
from w2r2_training.trainer import Trainer, seeded_and_deterministic, torch_threads


def main(argv: list[str]) -> None:
    config_path, data, run_dir, stop, *overrides = argv
    if "LOCAL_RANK" in os.environ and not torch.cuda.is_available():
        # accelerate picks no backend for DeepSpeed on a machine without an accelerator; DeepSpeed's CPU
        # accelerator communicates with gloo. (On GPUs nothing is needed: accelerate starts NCCL.)
        PartialState(backend="gloo")
    config = load_config(Path(config_path), overrides)
    with torch_threads(1), seeded_and_deterministic(config.seed):
        if int(stop):
            Trainer(config, Path(data), Path(run_dir)).fit(stop_at_step=int(stop), show_progress=False)
        trainer = Trainer(config, Path(data), Path(run_dir), resume=bool(int(stop)))
        trainer.fit(show_progress=False)
    trainer.accelerator.end_training()  # without it gloo aborts the process at exit


if __name__ == "__main__":
    main(sys.argv[1:])
