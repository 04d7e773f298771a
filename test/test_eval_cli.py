"""``w2r2-eval`` on a tiny real dataset and a real checkpoint: table, JSON, compare, bad input."""
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from w2r2_ros.model.checkpoint import save_checkpoint
from w2r2_ros.model.build import new_model
from w2r2_training.config import load_config
from w2r2_training.dataset import GroundingDataset
from w2r2_training.dataset_format import read_samples
from w2r2_training.eval_cli import main
from w2r2_training.synthetic_dataset import build_synthetic_dataset

pytestmark = pytest.mark.slow

TINY = Path(__file__).resolve().parents[1] / "configs" / "train_tiny.yaml"
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A 3-scene dataset and an (untrained, seeded) checkpoint of the tiny model for it."""
    config = load_config(TINY)
    root = tmp_path_factory.mktemp("eval") / "data"
    build_synthetic_dataset(root, model=config.model, progress=False, **{**config.data.synthetic_build, "n_train": 1})
    train = GroundingDataset(root, "train")
    model, text = new_model(dataclasses.replace(config.model, categories=tuple(train.categories)))
    checkpoint = save_checkpoint(model, text, root.parent / "ckpt", {"loss": "w2r2"})
    return root, checkpoint


def run_json(args: list[str], out: Path) -> dict:
    assert main([*args, "--threads", "1", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_table_and_json_cover_every_split_normal_and_ablated(tiny, tmp_path, capsys):
    root, checkpoint = tiny
    results = run_json(["--checkpoint", str(checkpoint), "--data", str(root), "--split", "all"], tmp_path / "r.json")
    printed = capsys.readouterr().out
    for row in ("normal", "3D-ablated", "gap", "oracle", "Acc@0.25", "Acc@0.5", "multiple"):
        assert row in printed
    assert set(results["splits"]) == set(SPLITS)
    for split in SPLITS:
        result = results["splits"][split]["w2r2"]
        samples = read_samples(root, split)
        overall = result["normal"]["overall"]
        assert overall["count"] == len(samples)
        assert result["normal"]["unique"]["count"] + result["normal"]["multiple"]["count"] == len(samples)
        assert result["normal"]["multiple"]["count"] == sum(s.split_label == "multiple" for s in samples)
        for k in ("acc@0.25", "acc@0.5"):
            assert result["gap"]["overall"][k] == pytest.approx(result["normal"]["overall"][k] - result["ablated"]["overall"][k])
            # The oracle is the best proposal IoU, which the dataset also records per sample.
            best_iou = np.array([s.target_iou for s in samples])
            assert result["oracle"]["overall"][k] == pytest.approx(np.mean(best_iou >= float(k[4:]) - 1e-6))


def test_batching_does_not_change_the_answers(tiny, tmp_path):
    root, checkpoint = tiny
    args = ["--checkpoint", str(checkpoint), "--data", str(root), "--split", "test"]
    one = run_json([*args, "--batch-size", "1"], tmp_path / "one.json")
    many = run_json([*args, "--batch-size", "16"], tmp_path / "many.json")
    assert one["splits"] == many["splits"]


def test_compare_shows_both_checkpoints(tiny, tmp_path, capsys):
    root, checkpoint = tiny
    twin = tmp_path / "twin"
    shutil.copytree(checkpoint, twin)
    results = run_json(
        ["--checkpoint", str(checkpoint), "--compare", str(twin), "--data", str(root), "--split", "val"], tmp_path / "c.json"
    )
    by_label = results["splits"]["val"]
    assert set(by_label) == {"ckpt", "twin"}
    assert by_label["ckpt"] == by_label["twin"]
    printed = capsys.readouterr().out
    assert "ckpt normal" in printed and "twin 3D-ablated" in printed


def test_missing_checkpoint_file_is_a_one_line_error(tiny, tmp_path, capsys):
    root, checkpoint = tiny
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    (broken / "model.safetensors").unlink()
    out = tmp_path / "r.json"
    assert main(["--checkpoint", str(broken), "--data", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.safetensors" in err[0] and err[0].startswith("w2r2-eval: error:")
    assert not out.exists()


def test_missing_dataset_is_a_one_line_error(tiny, tmp_path, capsys):
    _, checkpoint = tiny
    assert main(["--checkpoint", str(checkpoint), "--data", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.json" in err[0]
