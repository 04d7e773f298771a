"""The 2D-shortcut split (docs/SHORTCUT_SPLIT.md) on a small real synthetic dataset."""
import numpy as np
import pytest

from w2r2_training.dataset_format import (
    MIN_TARGET_IOU,
    NO_TARGET,
    SPLIT_MULTIPLE,
    DatasetError,
    match_target,
    read_manifest,
    read_samples,
    read_scene,
    validate_dataset,
)
from w2r2_training.shortcut_split import PROG, build_shortcut_dataset, main
from w2r2_training.synthetic_dataset import SyntheticDatasetConfig, build_synthetic_dataset

SMALL = SyntheticDatasetConfig(
    n_train=3, n_val=1, n_test=4, frames_per_scene=6, keyframes_per_scene=4, width=160, height=120, workers=1
)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("shortcut") / "source"
    build_synthetic_dataset(root, SMALL, progress=False)
    return root


def _most_visible_instance_is_target(root, sample) -> bool:
    """Independent of the module: the same-category GT object whose best proposal has most depth samples."""
    record = read_scene(root, sample.scene_id)
    weights = record.inputs.box_patch_weights.numpy()
    best_id, best = None, -1.0
    for obj in record.objects:
        if obj.category != sample.object_name:
            continue
        index, _ = match_target(record.proposal_boxes, np.asarray(obj.box), MIN_TARGET_IOU)
        seen = 0.0 if index == NO_TARGET else float(weights[index].sum())
        if seen > best:
            best_id, best = obj.object_id, seen
    return best_id == sample.object_id


def test_train_rewards_the_shortcut_and_test_punishes_it(source, tmp_path):
    out = tmp_path / "derived"
    counts = build_shortcut_dataset(source, out)
    validate_dataset(out)
    manifest, original = read_manifest(out), read_manifest(source)
    assert manifest.splits == {s: original.splits[s] for s in ("train", "val", "test")}
    assert manifest.generator["shortcut_split"]["ratio"] == 1.25
    train, test = read_samples(out, "train"), read_samples(out, "test")
    assert counts["train"]["samples"] == len(train) and counts["test"]["samples"] == len(test)
    train_multiple = [s for s in train if s.split_label == SPLIT_MULTIPLE]
    assert train_multiple and test, "the small dataset should give samples on both sides"
    assert all(s.target_proposal != NO_TARGET for s in train + test)
    assert all(_most_visible_instance_is_target(out, s) for s in train_multiple)
    assert all(s.split_label == SPLIT_MULTIPLE and not _most_visible_instance_is_target(out, s) for s in test)
    # Filtering only: every kept sample is a source sample, and the source is untouched.
    source_test = {s.to_json() for s in read_samples(source, "test")}
    assert {s.to_json() for s in test} <= source_test
    assert len(read_samples(source, "train")) > len(train)


def test_bad_arguments_give_one_line_errors(source, tmp_path, capsys):
    with pytest.raises(ValueError, match="ratio"):
        build_shortcut_dataset(source, tmp_path / "x", ratio=1.0)
    assert main(["--source", str(tmp_path / "missing"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error: ") and err.count("\n") == 1
    build_shortcut_dataset(source, tmp_path / "z")
    with pytest.raises(DatasetError, match="already holds a dataset"):
        build_shortcut_dataset(source, tmp_path / "z")
