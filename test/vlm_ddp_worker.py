"""One process of the 2-process DDP test (test_vlm_training.py): train, then write this rank's trained weights.

    accelerate launch --cpu --num_processes 2 test/vlm_ddp_worker.py CONFIG DATA RUN_DIR OUT [key=value ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import save_file

from w2r2_training.config import load_config
from w2r2_training.trainer import Trainer, seeded_and_deterministic, torch_threads


def main(argv: list[str]) -> None:
    config_path, data, run_dir, out, *overrides = argv
    config = load_config(Path(config_path), overrides)
    with torch_threads(1), seeded_and_deterministic(config.seed):
        trainer = Trainer(config, Path(data), Path(run_dir))
        trainer.fit(show_progress=False)
    state = {name: tensor.detach().contiguous() for name, tensor in trainer.model.trainable_state().items()}
    save_file(state, str(Path(out) / f"rank{trainer.accelerator.process_index}.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1:])
