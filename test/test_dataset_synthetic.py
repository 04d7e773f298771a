"""The synthetic benchmark: build -> read round trip, splits by scene, target matching, resume, batches."""
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from safetensors.torch import load_file, save_file

from w2r2_ros.geometry.boxes import aligned_bounds, box_iou_matrix
from w2r2_ros.model.pretrained_text import PretrainedText
from w2r2_ros.sim.world import generate_scene
from w2r2_training.dataset import GroundingDataset, anchor_targets, collate_grounding
from w2r2_training.dataset_format import (
    DatasetError,
    DatasetWriter,
    match_target,
    read_manifest,
    read_samples,
    read_scene,
    validate_dataset,
    write_scene,
)
from w2r2_training.synthetic_dataset import SyntheticDatasetConfig, build_scene_record, build_synthetic_dataset

# Small enough to build in a few seconds: 4 scenes of 6 frames at 160x120.
SMALL = SyntheticDatasetConfig(
    n_train=2, n_val=1, n_test=1, frames_per_scene=6, keyframes_per_scene=4, width=160, height=120, workers=1
)


@pytest.fixture(scope="module")  # builds 4 scenes: about 10 s
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "data"
    build_synthetic_dataset(root, SMALL, progress=False)
    return root


def test_manifest_splits_are_disjoint_by_scene_and_counts_match(dataset_root):
    manifest = validate_dataset(dataset_root)
    assert manifest.source == "synthetic"
    ids = manifest.splits
    assert ids["train"] == ["syn00000", "syn00001"] and ids["val"] == ["syn00002"] and ids["test"] == ["syn00003"]
    for split in ("train", "val", "test"):
        samples = read_samples(dataset_root, split)
        assert {s.scene_id for s in samples} <= set(ids[split])
        assert manifest.counts[split]["samples"] == len(samples) > 0
        assert manifest.counts[split]["unique"] + manifest.counts[split]["multiple"] == len(samples)
    assert manifest.input_settings["image_width"] == 128 and "box_margin_m" in manifest.input_settings
    assert not (dataset_root.parent / f".{dataset_root.name}.partial").exists()


def test_scene_file_round_trips_the_model_inputs(dataset_root):
    scene = generate_scene("syn00002", SMALL.seed)
    built = build_scene_record(scene, SMALL)
    read = read_scene(dataset_root, "syn00002")
    for name in ("frames", "patch_xyz", "patch_valid", "boxes", "oriented_boxes", "box_patch_weights", "box_colours",
                 "frame_mask", "object_mask"):
        assert torch.equal(getattr(read.inputs, name), getattr(built.inputs, name)), name
    assert read.inputs.frames.dtype == torch.float32 and read.inputs.frames.shape[0] == SMALL.keyframes_per_scene
    np.testing.assert_allclose(read.gt_boxes, scene.boxes(), atol=1e-5)
    assert [o.category for o in read.objects] == [o.category for o in scene.objects]
    assert read.gt_object_ids.tolist() == [o.object_id for o in scene.objects]


def test_proposals_are_stored_turned_in_yaw_and_version_3_files_read_as_yaw_0(dataset_root, tmp_path):
    """Version 4 keeps each proposal's yaw box beside its axis-aligned bounds; a version-3 dataset (bounds only)
    still reads, its proposals as yaw-0 boxes; other versions are refused with a message."""
    read = read_scene(dataset_root, "syn00000")
    oriented = read.oriented_proposal_boxes
    assert oriented.shape == (len(read.proposal_boxes), 7) and np.any(np.abs(oriented[:, 6]) > 1e-3)
    np.testing.assert_allclose(aligned_bounds(oriented), read.proposal_boxes, atol=1e-4)
    old = tmp_path / "v3"
    shutil.copytree(dataset_root, old)
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "version": 3}))
    tensors = load_file(str(old / "scenes" / "syn00000.safetensors"))
    del tensors["oriented_boxes"]
    save_file(tensors, str(old / "scenes" / "syn00000.safetensors"))
    validate_dataset(old)
    v3 = read_scene(old, "syn00000")
    np.testing.assert_array_equal(v3.oriented_proposal_boxes[:, :6], v3.proposal_boxes)
    assert not np.any(v3.oriented_proposal_boxes[:, 6])
    (old / "manifest.json").write_text(json.dumps({**manifest, "version": 2}))
    with pytest.raises(DatasetError, match="format version 2, this code reads"):
        read_manifest(old)


def test_samples_point_at_the_best_proposal_or_no_target(dataset_root):
    samples = read_samples(dataset_root, "train")
    records = {scene_id: read_scene(dataset_root, scene_id) for scene_id in {s.scene_id for s in samples}}
    for sample in samples:
        record = records[sample.scene_id]
        target = record.object(sample.object_id)
        np.testing.assert_allclose(sample.target_box, target.box, atol=1e-5)
        ious = box_iou_matrix(record.proposal_boxes, target.box)[:, 0]
        assert sample.target_iou == pytest.approx(ious.max(), abs=1e-5)
        if ious.max() >= 0.25:
            assert sample.target_proposal == int(np.argmax(ious))
        else:
            assert sample.target_proposal == -1
        same = sum(o.category == target.category for o in record.objects)
        assert sample.split_label == ("unique" if same == 1 else "multiple")
    # The proposal pipeline finds most objects: most samples have a target proposal.
    assert np.mean([s.target_proposal >= 0 for s in samples]) > 0.5


def test_batches_follow_the_model_conventions(dataset_root):
    dataset = GroundingDataset(dataset_root, "train")
    assert dataset.categories == read_manifest(dataset_root).categories
    tokenizer = PretrainedText()
    items = [dataset[i] for i in range(0, len(dataset), 3)]
    batch = collate_grounding(items, tokenizer, max_text_len=16)
    b, n = batch.proposal_boxes.shape[:2]
    assert b == len(items) and batch.text_ids.shape[0] == b and batch.text_ids.shape[1] <= 16
    assert batch.inputs.frames.shape[:2] == (b, SMALL.keyframes_per_scene)
    for row, item in enumerate(items):
        n_real = int(batch.inputs.object_mask[row].sum())
        if item.target_proposal < 0:
            assert batch.target[row] == n  # the "no target" column of logits (B, N + 1)
        else:
            assert batch.target[row] == item.target_proposal < n_real
            assert not batch.same_class_mask[row, item.target_proposal]
        assert torch.all(batch.proposal_categories[row, n_real:] == -1)
        # same-class distractors: proposals matched to another object of the target's category
        record = dataset.scene(item.sample.scene_id)
        ious = box_iou_matrix(record.proposal_boxes, record.gt_boxes)
        for p in range(n_real):
            g = int(np.argmax(ious[p])) if ious.shape[1] else -1
            matched = g >= 0 and ious[p, g] >= 0.5
            category = record.objects[g].category if matched else None
            assert batch.proposal_categories[row, p] == (dataset.categories.index(category) if matched else -1)
            expected = matched and category == item.sample.object_name and p != item.target_proposal
            assert bool(batch.same_class_mask[row, p]) == expected
    np.testing.assert_allclose(batch.target_boxes.numpy(), np.stack([i.target_box for i in items]), atol=1e-6)
    assert batch.split_labels == [i.split_label for i in items]
    # Anchor pointers: the first and the last named anchor, as the proposal best overlapping its object.
    named = 0
    for row, item in enumerate(items):
        record = dataset.scene(item.sample.scene_id)
        expected, categories = [-1, -1], [-1, -1]
        if item.sample.anchor_ids:
            named += 1
            ends = (item.sample.anchor_ids[0], item.sample.anchor_ids[-1])
            expected = [match_target(record.proposal_boxes, record.object(a).box)[0] for a in ends]
            categories = [dataset.categories.index(record.object(a).category) for a in ends]
        assert batch.anchor_target[row].tolist() == expected
        assert batch.anchor_category[row].tolist() == categories
        assert batch.target_category[row] == dataset.categories.index(item.sample.object_name)
    assert named > 0


def test_relation_labels_index_the_given_relation_list(dataset_root):
    dataset = GroundingDataset(dataset_root, "train")
    relations = dataset.sample_relations()
    assert relations == sorted({s.relation for s in dataset.samples}) and len(relations) > 1
    tokenizer = PretrainedText()
    assert all(dataset[i].relation == -1 for i in range(len(dataset)))  # no list given: unlabelled
    dataset.relations = relations[1:]  # the first relation is not in the list: -1
    batch = collate_grounding([dataset[i] for i in range(len(dataset))], tokenizer, max_text_len=16)
    expected = [relations[1:].index(s.relation) if s.relation in relations[1:] else -1 for s in dataset.samples]
    assert batch.relation.tolist() == expected and -1 in expected and max(expected) == len(relations) - 2


def test_anchors_are_spread_over_the_pointers():
    assert anchor_targets((), 2) == [-1, -1]
    assert anchor_targets((7,), 2) == [7, 7]
    assert anchor_targets((7, 9), 2) == [7, 9]
    assert anchor_targets((7, 9), 1) == [7]
    assert anchor_targets((7, 8, 9), 3) == [7, 8, 9]


def test_rebuilding_is_a_no_op_and_other_settings_need_overwrite(dataset_root):
    stamp = (dataset_root / "manifest.json").stat().st_mtime_ns
    build_synthetic_dataset(dataset_root, SMALL, progress=False)
    assert (dataset_root / "manifest.json").stat().st_mtime_ns == stamp
    with pytest.raises(DatasetError, match="other settings"):
        build_synthetic_dataset(dataset_root, SMALL, seed=1, progress=False)


def test_an_interrupted_build_resumes_from_the_scenes_already_written(dataset_root, tmp_path):
    config = dataclasses.replace(SMALL, n_val=0, n_test=0)
    root = tmp_path / "data"
    # What an interrupted build leaves: finished scenes (one marked by its stamps) and a stray temp file.
    staging = DatasetWriter(root, resume_key=config.resume_key()).staging
    record = read_scene(dataset_root, "syn00000")
    record.keyframe_stamps = [-1.0, -2.0, -3.0, -4.0]
    write_scene(staging, record)
    write_scene(staging, read_scene(dataset_root, "syn00001"))
    (staging / "scenes" / "syn00002.safetensors.tmp").write_bytes(b"half a file")
    # Another build's leftovers (other settings) are never reused.
    DatasetWriter(tmp_path / "other", resume_key=dataclasses.replace(config, seed=9).resume_key())
    write_scene(tmp_path / ".other.partial", record)
    build_synthetic_dataset(tmp_path / "other", config, progress=False)
    assert read_scene(tmp_path / "other", "syn00000").keyframe_stamps[0] > 0
    manifest = build_synthetic_dataset(root, config, progress=False)
    assert read_scene(root, "syn00000").keyframe_stamps == [-1.0, -2.0, -3.0, -4.0]  # reused, not rebuilt
    assert read_scene(root, "syn00001").keyframe_stamps[0] > 0
    assert sorted(p.name for p in (root / "scenes").iterdir()) == [
        "syn00000.json", "syn00000.safetensors", "syn00001.json", "syn00001.safetensors"
    ]
    assert not staging.exists()
    assert read_samples(root, "train") == read_samples(dataset_root, "train")
    assert manifest.counts["train"] == read_manifest(dataset_root).counts["train"]


def test_corrupt_files_give_one_line_errors(dataset_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(dataset_root, root)
    (root / "scenes" / "syn00001.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(DatasetError) as error:
        read_scene(root, "syn00001")
    assert "syn00001.safetensors" in str(error.value) and "\n" not in str(error.value)
    (root / "val.jsonl").write_text('{"scene_id": "syn00002", "object_id": 0}\n{not json\n')
    with pytest.raises(DatasetError) as error:
        read_samples(root, "val")
    assert "val.jsonl:1" in str(error.value) and "\n" not in str(error.value)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"]["test"].append("syn00000")
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="syn00000 is in both train and test"):
        read_manifest(root)



def test_the_test_split_alone_in_a_turned_noisy_world(tmp_path):
    """`splits` builds one split with the scene ids it has in the full dataset; the world switches turn the rooms
    and add the depth sensor model, and the ground truth is in the map frame (where the proposals are)."""
    config = dataclasses.replace(SMALL, splits=("test",), yaw_deg=(30.0, 30.0), sensor="structured_light")
    manifest = build_synthetic_dataset(tmp_path / "turned", config, progress=False)
    assert manifest.splits == {"test": ["syn00003"]}
    assert manifest.generator["splits"] == ["test"]
    assert manifest.generator["world"]["scene.yaw_deg"] == [30.0, 30.0] and "render.depth_noise_base_m" in manifest.generator["world"]
    assert "world" not in SMALL.generator_settings() and "splits" not in SMALL.generator_settings()
    scene = generate_scene("syn00003", SMALL.seed, config.world().scene)
    read = read_scene(tmp_path / "turned", "syn00003")
    np.testing.assert_allclose(read.gt_boxes, scene.boxes(), atol=1e-5)
    plain = generate_scene("syn00003", SMALL.seed)
    assert scene.yaw_deg == 30.0 and not np.allclose(scene.boxes(), plain.boxes())
    # The proposals of the turned, noisy scene still find objects where the ground truth is.
    iou = box_iou_matrix(read.gt_boxes, read.proposal_boxes.reshape(-1, 6)).max(axis=1)
    assert np.mean(iou >= 0.25) > 0.3
    with pytest.raises(ValueError, match="splits"):
        SyntheticDatasetConfig(splits=("testing",))
