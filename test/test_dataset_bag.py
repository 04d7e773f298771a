"""rosbag2 recordings + annotation file -> dataset, with real bags written by the sim's bag writer."""
import json
import shutil

import numpy as np
import pytest

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.scene.memory import SceneMemoryConfig
from w2r2_ros.recordings.bag_reader import BagTopics
from w2r2_ros.sim.bag_writer import write_bag
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene
from w2r2_training.bag_dataset import BagDatasetConfig, build_bag_dataset
from w2r2_training.dataset import GroundingDataset
from w2r2_training.dataset_format import DatasetError, read_samples, read_scene, validate_dataset
from w2r2_training.referring import referring_samples

K = Intrinsics.from_fov(160, 120, 70.0)
# The robot memory with every depth pixel fused: these frames are 160x120, not 640x480.
CONFIG = BagDatasetConfig(keyframes_per_scene=4, memory=SceneMemoryConfig(max_keyframes=256, depth_stride=1))


def _annotation(scene, bag, split):
    return {
        "scene_id": scene.scene_id,
        "bag": bag,
        "split": split,
        "objects": [{"object_id": o.object_id, "object_name": o.category, "box": o.box.as_array().tolist()} for o in scene.objects],
        "descriptions": [
            {"object_id": s.object_id, "ann_id": s.ann_id, "description": s.description} for s in referring_samples(scene, seed=0)
        ],
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two scenes, one bag in each storage format, and their annotation file."""
    folder = tmp_path_factory.mktemp("bags")
    scenes = [generate_scene(name, seed=11) for name in ("lab_0", "lab.1")]  # ids may hold dots
    entries = []
    for scene, storage, split in zip(scenes, ("sqlite3", "mcap"), ("train", "val")):
        # 8 frames at 5 fps around the room: every frame moves enough to be a keyframe
        write_bag(record_scene(scene, n_frames=8, intrinsics=K, seed=11), folder / "bags" / scene.scene_id, storage=storage)
        entries.append(_annotation(scene, f"bags/{scene.scene_id}", split))
    (folder / "annotations.json").write_text(json.dumps(entries))
    return folder, scenes, entries


def test_bags_become_a_dataset(recorded, tmp_path):
    folder, scenes, entries = recorded
    root = tmp_path / "data"
    manifest = build_bag_dataset(root, folder / "annotations.json", CONFIG, progress=False)
    assert validate_dataset(root) == manifest
    assert manifest.source == "rosbag2"
    assert manifest.splits == {"train": ["lab_0"], "val": ["lab.1"]}
    assert manifest.categories == sorted({o.category for s in scenes for o in s.objects})
    for scene, entry in zip(scenes, entries):
        record = read_scene(root, scene.scene_id)
        np.testing.assert_allclose(record.gt_boxes, scene.boxes(), atol=1e-9)
        assert record.inputs.frames.shape[0] == 4
        stamps = record.keyframe_stamps
        assert stamps == sorted(stamps) and stamps[0] >= 1.7e9  # the recording's stamps, through the bag
        samples = read_samples(root, entry["split"])
        assert [(s.object_id, s.ann_id, s.description) for s in samples] == [
            (d["object_id"], d["ann_id"], d["description"]) for d in entry["descriptions"]
        ]
        truth = {(r.object_id, r.ann_id): r.split_label for r in referring_samples(scene, seed=0)}
        assert all(s.split_label == truth[(s.object_id, s.ann_id)] for s in samples)
        assert np.mean([s.target_proposal >= 0 for s in samples]) > 0.5
    item = GroundingDataset(root, "val")[0]
    assert item.inputs.boxes.shape[0] == len(item.proposal_categories) > 0


def _expect_error(tmp_path, annotation_file, fragment):
    root = tmp_path / "out"
    with pytest.raises(DatasetError) as error:
        build_bag_dataset(root, annotation_file, CONFIG, progress=False)
    message = str(error.value)
    assert "\n" not in message and fragment in message, message
    assert str(annotation_file.name) in message
    assert not root.exists() and not (tmp_path / ".out.partial").exists()


def _copy(recorded, tmp_path):
    folder, _, entries = recorded
    copy = tmp_path / "input"
    shutil.copytree(folder, copy)
    return copy, json.loads(json.dumps(entries))


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda e: e[0]["descriptions"][2].update(object_id=99), "names object 99, which is not in objects"),
        (lambda e: e[1]["descriptions"][0].update(description=" "), "is empty"),
        (lambda e: e[0]["objects"][0].pop("box"), "lacks 'box'"),
        (lambda e: e[0]["objects"][1].update(box=[0, 0, 0, 1, 1]), "bad object or description"),
        (lambda e: e[0].update(bag="bags/nowhere"), "unreadable rosbag2"),
    ],
)
def test_bad_annotations(recorded, tmp_path, change, fragment):
    copy, entries = _copy(recorded, tmp_path)
    change(entries)
    (copy / "annotations.json").write_text(json.dumps(entries))
    _expect_error(tmp_path, copy / "annotations.json", fragment)


def test_malformed_annotation_json(recorded, tmp_path):
    copy, _ = _copy(recorded, tmp_path)
    (copy / "annotations.json").write_text('[{"scene_id": "lab_0", "bag": ')
    _expect_error(tmp_path, copy / "annotations.json", "malformed JSON")


@pytest.mark.parametrize("bag", ["lab_0", "lab.1"])  # sqlite3 and mcap
def test_truncated_bag(recorded, tmp_path, bag):
    copy, entries = _copy(recorded, tmp_path)
    (copy / "annotations.json").write_text(json.dumps([e for e in entries if e["scene_id"] == bag]))
    data = next(p for p in (copy / "bags" / bag).iterdir() if p.suffix in (".db3", ".mcap"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    _expect_error(tmp_path, copy / "annotations.json", f"scene {bag}: ")


def test_bag_without_the_depth_topic(recorded, tmp_path):
    copy, entries = _copy(recorded, tmp_path)
    scene = generate_scene("lab_0", seed=11)
    shutil.rmtree(copy / "bags" / "lab_0")
    write_bag(record_scene(scene, n_frames=3, intrinsics=K, seed=11), copy / "bags" / "lab_0", topics=BagTopics(depth="/other/depth"))
    _expect_error(tmp_path, copy / "annotations.json", "no messages on /camera/depth/image_raw")
