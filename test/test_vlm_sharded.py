"""DeepSpeed ZeRO-3 training of the video-LLM kind (configs/accelerate/deepspeed_zero3.yaml) with 2 CPU processes
(DeepSpeed's CPU accelerator, gloo) on the tiny Qwen2.5-VL: the run stops at step 2 and is resumed in a new engine
to step 3. Its checkpoint must hold the whole trained tensors (each process holds only shards of them), load in one
process with the normal loader, and equal, with its optimizer state and losses, one process's uninterrupted run
with the same global batch.

The first DeepSpeed start on a machine compiles its shared-memory communication op (C++, cached in
~/.cache/torch_extensions): 2.5 minutes once on the loaded 2-core machine here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vlm_fixtures import build_vlm_dataset, free_port, write_base
from w2r2_ros.model.checkpoint import load_checkpoint
from w2r2_training.dataset import GroundingDataset, collate_grounding
from w2r2_training.trainer_state import load_trainer_state

pytest.importorskip("deepspeed")

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "train_vlm_tiny.yaml"
WORKER = REPO / "test" / "vlm_sharded_worker.py"
ZERO3_CONFIG = REPO / "configs" / "accelerate" / "deepspeed_zero3.yaml"  # the shipped file, fp32 and 2 processes here


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run directories of the ZeRO-3 run (2 processes, stopped at step 2 and resumed) and the one-process run."""
    root = tmp_path_factory.mktemp("vlm-zero3")
    base, data = write_base(root / "tiny-base"), build_vlm_dataset(root / "data")
    # Auxiliary losses off: their masked means over one process's half batch are not halves of the whole batch's.
    overrides = [
        f"vlm.base_model={base}", "steps=3", "eval_every=3", "batch_size=4", "texts_per_scene=2",
        "loss.category_weight=0", "loss.anchor_weight=0", "loss.text_category_weight=0", "loss.text_relation_weight=0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "test")}
    env.pop("ACCELERATE_USE_CPU", None)  # accelerate turns DeepSpeed off when told to use the CPU
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ZERO3_CONFIG),
              "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port())]
    out = {}
    for name, launcher, stop in (("zero3", launch, "2"), ("single", [sys.executable], "0")):
        out[name] = root / name
        done = subprocess.run(
            [*launcher, str(WORKER), str(TINY_CONFIG), str(data), str(out[name]), stop, *overrides],
            env=env, capture_output=True, text=True, timeout=400,
        )
        errors = [line for line in done.stderr.splitlines() if "Error" in line]
        assert done.returncode == 0, "\n".join(errors[:6]) or done.stderr[-3000:]
    out["data"] = data
    return out


def test_zero3_checkpoint_holds_whole_tensors_equal_to_one_process(runs):
    log = (runs["zero3"] / "train.log").read_text()
    assert "x2 DeepSpeed ZeRO-3" in log and "resumed from" in log and "at step 2" in log
    sharded = load_file(str(runs["zero3"] / "last" / "trained.safetensors"))
    alone = load_file(str(runs["single"] / "last" / "trained.safetensors"))
    assert set(sharded) == set(alone) and not any(name.startswith("backbone.") and "lora_" not in name for name in sharded)
    for name, tensor in alone.items():
        assert sharded[name].shape == tensor.shape, name  # not a shard, not an empty ZeRO-3 placeholder
        torch.testing.assert_close(sharded[name], tensor, atol=2e-5, rtol=1e-4)

    def losses(run: Path) -> list[float]:
        return [json.loads(line)["loss/total"] for line in (run / "train_metrics.jsonl").read_text().splitlines()]

    # Step 3 ran after the resume: equal only if the gathered optimizer state was put back into the new engine.
    assert losses(runs["zero3"]) == pytest.approx(losses(runs["single"]), rel=1e-4)
    state, reference = (load_trainer_state(runs[name] / "last").optimizer for name in ("zero3", "single"))
    assert state["state"].keys() == reference["state"].keys()
    for index, moments in reference["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(state["state"][index][key], moments[key], atol=1e-6, rtol=1e-4)
        assert float(state["state"][index]["step"]) == float(moments["step"]) == 3


def test_zero3_checkpoint_loads_in_one_process_and_answers_like_the_one_process_model(runs):
    dataset = GroundingDataset(runs["data"], "val")
    logits = []
    for name in ("zero3", "single"):
        model, tokenizer = load_checkpoint(runs[name] / "best")
        batch = collate_grounding([dataset[i] for i in range(4)], tokenizer, model.config.max_text_length)
        with torch.no_grad():
            logits.append(model(batch.inputs, batch.text_ids, batch.text_mask).logits)
    torch.testing.assert_close(logits[0], logits[1], atol=1e-4, rtol=1e-4)
