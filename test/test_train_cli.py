"""Real tiny training runs through the real ``w2r2-train`` entry point (in-process ``main([...])``)."""
import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from w2r2_ros.model.checkpoint import load_checkpoint, load_checkpoint_metadata
from w2r2_ros.model.geometry_encoding import box_shape
from w2r2_ros.model.grounding_model import W2R2GroundingModel
from w2r2_ros.model.build import new_model
from w2r2_training.config import ConfigError, load_config
from w2r2_training.dataset import GroundingDataset, collate_grounding
from w2r2_training.train_cli import main
from w2r2_training.trainer import DualPass, SampleOrder, first_rows_of_scenes, keyframe_subset

pytestmark = pytest.mark.slow

TINY = Path(__file__).resolve().parents[1] / "configs" / "train_tiny.yaml"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "tiny"
    assert main(["--config", str(TINY), "--data", str(root), "--build-data", "--no-progress"]) == 0
    assert (root / "manifest.json").exists()
    return root


@pytest.fixture(scope="module")
def w2r2_run(tiny_data, tmp_path_factory) -> Path:
    """One uninterrupted tiny W2R2 run (6 steps, validation at steps 3 and 6)."""
    run = tmp_path_factory.mktemp("runs") / "w2r2"
    assert main(["--config", str(TINY), "--loss", "w2r2", "--data", str(tiny_data), "--out", str(run), "--no-progress"]) == 0
    return run


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("w2r2-train: error: ")
    return err[0]


def test_training_run_writes_metrics_curves_and_checkpoints(w2r2_run, tiny_data):
    config = yaml.safe_load((w2r2_run / "config.yaml").read_text())
    assert config["steps"] == 6 and config["loss"]["lambda_pl"] == 0.5

    train_rows = read_csv(w2r2_run / "train_metrics.csv")
    assert [int(r["step"]) for r in train_rows] == [1, 2, 3, 4, 5, 6]
    for row in train_rows:
        total = float(row["loss/total"])
        expected = (
            float(row["loss/align"])
            + 0.5 * float(row["loss/pseudo_label"])
            + 0.1 * float(row["loss/category"])
            + float(row["loss/anchor"])
            + float(row["loss/text_category"])
            + float(row["loss/text_relation"])
        )
        assert float(row["loss/text_relation"]) > 0  # the tiny scenes' samples carry relation labels
        assert total == pytest.approx(expected, rel=1e-5)
        assert float(row["loss/ce_2d"]) > 0  # the pseudo pass ran
    jsonl = [json.loads(line) for line in (w2r2_run / "train_metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in jsonl] == [1, 2, 3, 4, 5, 6]

    val_rows = read_csv(w2r2_run / "val_metrics.csv")
    assert [int(r["step"]) for r in val_rows] == [3, 6]
    for mode in ("normal", "ablated", "oracle"):
        for split in ("overall", "unique", "multiple"):
            for k in ("0.25", "0.5"):
                assert f"val/{mode}/{split}/acc@{k}" in val_rows[0]
    assert 0.0 <= float(val_rows[-1]["val/normal/overall/acc@0.25"]) <= 1.0

    assert (w2r2_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "resumed" not in (w2r2_run / "train.log").read_text()

    model, tokenizer = load_checkpoint(w2r2_run / "best")
    assert load_checkpoint_metadata(w2r2_run / "best")["loss"] == "w2r2"
    assert load_checkpoint_metadata(w2r2_run / "last")["step"] == 6
    assert model.config.hidden_size == 32 and tokenizer.identity["sha256"] == model.config.text_model_sha256
    # The category names' text embeddings travel with the weights: the loaded model scores them as trained.
    torch.testing.assert_close(model.names.categories.names, tokenizer.name_embeddings(model.config.categories))
    # The shape term's standardisation comes from the training scenes' proposals and travels with the checkpoint.
    boxes = GroundingDataset(tiny_data, "train").oriented_proposal_boxes()
    expected = box_shape(torch.from_numpy(boxes[:, :6]))
    assert model.config.shape_mean == pytest.approx(expected.mean(dim=0).tolist(), abs=1e-9)
    torch.testing.assert_close(model.category_head.shape_mean, expected.mean(dim=0).float())
    assert not any(p.name.startswith(".") for p in w2r2_run.iterdir()), "staging files left behind"


def test_resume_continues_exactly_like_an_uninterrupted_run(w2r2_run, tiny_data, tmp_path, capsys):
    run = tmp_path / "split"
    base = ["--data", str(tiny_data), "--out", str(run), "--no-progress"]
    assert main(["--config", str(TINY), *base, "--stop-at-step", "2"]) == 0
    assert load_checkpoint_metadata(run / "last")["step"] == 2
    assert not (run / "val_metrics.csv").exists()
    assert main([*base, "--resume"]) == 0
    assert "resumed from" in (run / "train.log").read_text()

    a = load_file(str(w2r2_run / "last" / "model.safetensors"))
    b = load_file(str(run / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = lambda path: [{k: v for k, v in r.items() if k.startswith("loss/")} for r in read_csv(path)]  # noqa: E731
    assert losses(run / "train_metrics.csv") == losses(w2r2_run / "train_metrics.csv")
    assert read_csv(run / "val_metrics.csv") == read_csv(w2r2_run / "val_metrics.csv")


def test_baseline_is_the_same_trainer_without_the_pseudo_pass(tiny_data, tmp_path):
    run = tmp_path / "baseline"
    args = ["--config", str(TINY), "--loss", "baseline", "--data", str(tiny_data), "--out", str(run), "--no-progress"]
    assert main([*args, "steps=2", "eval_every=2"]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["loss"]["lambda_pl"] == 0.0 and config["steps"] == 2
    rows = read_csv(run / "train_metrics.csv")
    assert all(float(r["loss/pseudo_label"]) == 0.0 for r in rows)
    assert "loss/ce_2d" not in rows[0]  # the 2D-only pass was never computed
    assert load_checkpoint_metadata(run / "best")["loss"] == "baseline"


def test_overrides_take_numbers_as_people_write_them():
    config = load_config(TINY, ["optim.lr=2e-3", "steps=7", "loss.margin=1", "model.backbone.num_hidden_layers=2"])
    assert config.optim.lr == 0.002 and config.steps == 7 and config.loss.margin == 1.0
    assert config.model.backbone["num_hidden_layers"] == 2 and config.model.backbone["intermediate_size"] == 64
    with pytest.raises(ConfigError, match="'optim.lr' must be a number"):
        load_config(TINY, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match="'steps' must be an integer"):
        load_config(TINY, ["steps=2.5"])


def test_unknown_config_key_is_one_line_and_writes_nothing(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 3\noptim:\n  learning_rate: 0.1\n")
    assert main(["--config", str(bad), "--data", str(tiny_data), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert str(bad) in line and "optim.learning_rate" in line
    assert main(["--config", str(TINY), "--data", str(tiny_data), "--out", str(out), "optim.lrr=1"]) == 2
    assert "optim.lrr" in one_error_line(capsys)
    assert not out.exists()


def test_missing_dataset_is_one_line_error(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--config", str(TINY), "--data", str(tmp_path / "none"), "--out", str(out), "data.synthetic=false"])
    assert code == 2
    assert "manifest.json" in one_error_line(capsys)
    assert not out.exists() and not (tmp_path / "none").exists()


def test_run_directory_misuse_is_refused(w2r2_run, tiny_data, tmp_path, capsys):
    assert main(["--config", str(TINY), "--data", str(tiny_data), "--out", str(w2r2_run)]) == 2
    assert "--resume" in one_error_line(capsys)
    assert main(["--data", str(tiny_data), "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "config.yaml" in one_error_line(capsys)


def test_corrupt_trainer_state_is_named(w2r2_run, tiny_data, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(w2r2_run, run)
    (run / "last" / "trainer_state.safetensors").write_bytes(b"not a safetensors file")
    assert main(["--data", str(tiny_data), "--out", str(run), "--resume", "--no-progress"]) == 2
    assert "trainer_state.safetensors" in one_error_line(capsys)


def test_an_optimizer_state_of_another_model_layout_is_named(w2r2_run, tiny_data, tmp_path, capsys):
    # What a run saved before the read-out terms had their own parameter group looks like: one group.
    run = tmp_path / "old"
    shutil.copytree(w2r2_run, run)
    path = run / "last" / "trainer_state.json"
    state = json.loads(path.read_text())
    groups = state["optimizer"]["param_groups"]
    assert len(groups) == 2
    groups[0]["params"] += groups.pop()["params"]
    path.write_text(json.dumps(state))
    assert main(["--data", str(tiny_data), "--out", str(run), "--resume", "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "last" in line and "optimizer state does not fit this model" in line


def test_sample_order_groups_descriptions_by_scene_and_covers_every_sample():
    scene_ids = [f"s{i % 3}" for i in range(15)]  # 3 scenes x 5 descriptions, interleaved
    order = SampleOrder(scene_ids, batch_size=5, seed=0, texts_per_scene=3)
    epoch = [i for step in range(3) for i in order.batch(step)]
    assert sorted(epoch) == list(range(15))  # one epoch = every sample once
    assert epoch == [i for step in range(3) for i in SampleOrder(scene_ids, 5, 0, 3).batch(step)]  # pure in (seed, step)
    runs = [scene_ids[epoch[0]]]
    for index in epoch[1:]:
        if scene_ids[index] != runs[-1]:
            runs.append(scene_ids[index])
    assert len(runs) <= 6  # each scene's 5 samples come in groups of 3 + 2, so at most 2 runs per scene
    assert sorted(SampleOrder(scene_ids, 15, 1, 1).batch(0)) == list(range(15))


def test_scene_rows_share_features_and_keyframe_subset_keeps_views_consistent(tiny_data):
    dataset = GroundingDataset(tiny_data, "train")
    scene_of = [s.scene_id for s in dataset.samples]
    first = [i for i, s in enumerate(scene_of) if s == scene_of[0]][:3]
    other = next(i for i, s in enumerate(scene_of) if s != scene_of[0])
    items = [dataset[i] for i in first + [other]]
    config = load_config(TINY).model
    torch.manual_seed(0)
    model, tokenizer = new_model(dataclasses.replace(config, categories=tuple(dataset.categories)))
    dual = DualPass(model).eval()
    batch = collate_grounding(items, tokenizer, config.max_text_length)
    rows = first_rows_of_scenes([item.sample.scene_id for item in items])
    assert rows.tolist() == [0, 0, 0, 3]
    with torch.no_grad():
        shared, _ = dual(batch.inputs, batch.text_ids, batch.text_mask, False, rows)
        separate, _ = dual(batch.inputs, batch.text_ids, batch.text_mask, False)
    torch.testing.assert_close(shared.logits, separate.logits)

    k = batch.inputs.frames.shape[1]
    assert keyframe_subset(batch.inputs, k, np.random.default_rng(0)) is batch.inputs
    subset = keyframe_subset(batch.inputs, k - 1, np.random.default_rng(0))
    assert subset.frames.shape[1] == k - 1 and subset.box_patch_weights.shape[2] == k - 1
    kept = [j for j in range(k) if any(torch.equal(batch.inputs.frames[0, j], f) for f in subset.frames[0])]
    assert len(kept) == k - 1
    torch.testing.assert_close(subset.patch_xyz, batch.inputs.patch_xyz[:, kept])
    torch.testing.assert_close(subset.box_patch_weights, batch.inputs.box_patch_weights[:, :, kept])
