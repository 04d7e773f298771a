"""Training the video-LLM kind on a tiny random Qwen2.5-VL: W2R2 steps lower the loss, ``w2r2-train``/``w2r2-eval``
end to end from configs/train_vlm_tiny.yaml, and 2-process DDP (``accelerate launch``, gloo) equal to one process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vlm_fixtures import build_vlm_dataset, free_port, tiny_video_llm, write_base
from w2r2_ros.model.checkpoint import load_checkpoint, load_checkpoint_metadata
from w2r2_training import eval_cli, train_cli
from w2r2_training.config import TrainConfig
from w2r2_training.dataset import GroundingDataset, collate_grounding
from w2r2_training.trainer import DualPass, training_step_loss

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "train_vlm_tiny.yaml"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return write_base(tmp_path_factory.mktemp("vlm-train") / "tiny-base")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return build_vlm_dataset(tmp_path_factory.mktemp("vlm-data") / "data")


def test_w2r2_steps_lower_the_loss(base, data):
    dataset = GroundingDataset(data, "train")
    model, tokenizer = tiny_video_llm(base, categories=tuple(dataset.categories))
    items = [dataset[i] for i in range(0, len(dataset), len(dataset) // 6)][:6]
    batch = collate_grounding(items, tokenizer, 24)
    dual = DualPass(model).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    config = TrainConfig()
    assert config.loss.needs_pseudo_pass
    totals, aligns = [], []
    for _ in range(24):
        total, terms = training_step_loss(dual, batch, config)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(float(total.detach()))
        aligns.append(float(terms["align"].detach()))
    assert sum(totals[-3:]) / 3 < 0.6 * totals[0]
    assert sum(aligns[-3:]) / 3 < 0.6 * aligns[0]


def test_w2r2_train_and_eval_run_end_to_end_on_the_tiny_config(base, data, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--data", str(data), "--out", str(run), "--no-progress"]
    assert train_cli.main(["--config", str(TINY_CONFIG), *common, f"vlm.base_model={base}"]) == 0
    assert train_cli.main([*common, "--resume", "steps=8"]) == 0
    assert load_checkpoint_metadata(run / "last")["step"] == 8
    model, _ = load_checkpoint(run / "last")
    assert type(model).__name__ == "W2R2VideoLLM" and model.vlm_config.base_model == str(base)
    assert not list(run.rglob("model.safetensors"))  # never a copy of the base
    rows = [json.loads(line) for line in (run / "train_metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 9))
    capsys.readouterr()
    assert eval_cli.main(["--checkpoint", str(run / "best"), "--data", str(data), "--split", "test"]) == 0
    assert "3D-ablated" in capsys.readouterr().out


def test_a_dataset_for_another_token_grid_or_a_missing_base_is_one_line(base, data, tmp_path, capsys):
    other = Path(shutil.copytree(data, tmp_path / "data-16px"))
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["input_settings"]["patch_size"] = 16  # as built for the embedded model
    (other / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    args = ["--config", str(TINY_CONFIG), "--out", str(tmp_path / "run"), "--no-progress"]
    assert train_cli.main([*args, "--data", str(other), f"vlm.base_model={base}"]) == 2
    assert "dataset was prepared with patch_size=16, the model wants 28" in capsys.readouterr().err
    assert train_cli.main([*args, "--data", str(data), "vlm.base_model=nobody/absent-vlm"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "base model nobody/absent-vlm not found" in error


def test_two_process_ddp_trains_like_one_process_with_the_same_global_batch(base, data, tmp_path):
    """``accelerate launch`` with 2 CPU processes (gloo): both ranks end with the same weights, and the logged loss
    (averaged over ranks) equals one process's on the whole batch. The auxiliary losses are off: their masked means
    over a rank's half of the batch are not the halves of the whole batch's mean."""
    overrides = [
        f"vlm.base_model={base}", "steps=3", "eval_every=3", "batch_size=4", "texts_per_scene=2",
        "loss.category_weight=0", "loss.anchor_weight=0", "loss.text_category_weight=0", "loss.text_relation_weight=0",
    ]
    worker = str(REPO / "test" / "vlm_ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "test"), "ACCELERATE_USE_CPU": "true"}
    runs = {}
    for name, launcher in (
        # torchrun's launcher (--multi_gpu); ACCELERATE_USE_CPU makes accelerate run DDP on the CPU with gloo.
        ("ddp", [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                 "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]),
        ("single", [sys.executable]),
    ):
        out = tmp_path / name
        out.mkdir()
        done = subprocess.run(
            [*launcher, worker, str(TINY_CONFIG), str(data), str(out / "run"), str(out), *overrides],
            env=env, capture_output=True, text=True, timeout=400,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = out
    assert "x2;" in (runs["ddp"] / "run" / "train.log").read_text()  # two processes, one run

    ranks = [load_file(str(runs["ddp"] / f"rank{r}.safetensors")) for r in (0, 1)]
    assert set(ranks[0]) == set(ranks[1]) and all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    single = load_file(str(runs["single"] / "rank0.safetensors"))
    for name, tensor in single.items():
        torch.testing.assert_close(ranks[0][name], tensor, atol=2e-5, rtol=1e-4)

    def losses(out: Path) -> list[tuple[float, float]]:
        rows = [json.loads(line) for line in (out / "run" / "train_metrics.jsonl").read_text().splitlines()]
        return [(row["loss/total"], row["loss/align"]) for row in rows]

    ddp, alone = losses(runs["ddp"]), losses(runs["single"])
    assert len(ddp) == len(alone) == 3
    for (total_ddp, align_ddp), (total, align) in zip(ddp, alone):
        assert total_ddp == pytest.approx(total, rel=1e-4) and align_ddp == pytest.approx(align, rel=1e-4)
