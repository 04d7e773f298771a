"""ScanRefer + ScanNet files -> dataset: two rendered scenes written out in ScanNet's layout and read back."""
import json
import shutil

import cv2
import numpy as np
import pytest

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import make_transform
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import CATEGORIES, generate_scene
from w2r2_training.dataset_format import DatasetError, read_samples, read_scene, validate_dataset
from w2r2_training.referring import referring_samples
from w2r2_training.scanrefer import ScanReferConfig, build_scanrefer_dataset
from w2r2_training.scene_fusion import every_frame_memory

DEPTH_K = Intrinsics.from_fov(160, 120, 70.0)
LABELS = {10 + i: name for i, name in enumerate(CATEGORIES)}  # label ids as a _bbox.npy would store them
# 10 frames: every 2nd is 0, 2, 4, 6, 8; at most 4 of them, spread: 0, 2, 6, 8; frame 2 lost tracking.
CONFIG = ScanReferConfig(
    frame_skip=2, max_frames=4, keyframes_per_scene=4, label_names=LABELS, memory=every_frame_memory(depth_stride=1)
)
# ScanNet poses live in the scan's own frame; the meta file's axisAlignment maps them to the boxes' frame.
ALIGN = make_transform(np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), np.array([0.5, -0.25, 0.0]))


def _write_scannet_scene(folder, scene_id):
    scene = generate_scene(scene_id, seed=5)
    recording = record_scene(scene, n_frames=10, intrinsics=DEPTH_K, seed=5)
    d = folder / scene_id
    for sub in ("color", "depth", "pose", "intrinsic"):
        (d / sub).mkdir(parents=True)
    for i, (pose, frame) in enumerate(zip(recording.poses, recording.frames)):
        # colour at twice the depth resolution, as ScanNet's 1296x968 vs 640x480
        big = cv2.resize(frame.rgb, (320, 240), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(d / "color" / f"{i}.png"), big[..., ::-1])
        cv2.imwrite(str(d / "depth" / f"{i}.png"), np.round(frame.depth * 1000).astype(np.uint16))
        np.savetxt(d / "pose" / f"{i}.txt", np.linalg.inv(ALIGN) @ pose)
    np.savetxt(d / "pose" / "2.txt", np.full((4, 4), -np.inf))  # a frame ScanNet lost track of
    k = DEPTH_K
    np.savetxt(d / "intrinsic" / "intrinsic_depth.txt", np.array([[k.fx, 0, k.cx, 0], [0, k.fy, k.cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    (d / f"{scene_id}.txt").write_text("colorHeight = 968\naxisAlignment = " + " ".join(f"{v:.17g}" for v in ALIGN.reshape(-1)) + "\n")
    label = {name: i for i, name in LABELS.items()}
    rows = [list(o.box.as_array()) + [label[o.category], o.object_id] for o in scene.objects]
    np.save(d / f"{scene_id}_bbox.npy", np.array(rows))
    entries = [
        {"scene_id": scene_id, "object_id": str(s.object_id), "object_name": s.object_name.replace(" ", "_"),
         "ann_id": str(s.ann_id), "description": s.description, "token": s.description.split()}
        for s in referring_samples(scene, seed=0)
    ]
    return scene, entries


@pytest.fixture(scope="module")
def scannet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scannet")
    train_scene, train = _write_scannet_scene(folder, "scene0000_00")
    val_scene, val = _write_scannet_scene(folder, "scene0001_00")
    (folder / "train.json").write_text(json.dumps(train))
    (folder / "val.json").write_text(json.dumps(val))
    return folder, {"scene0000_00": train_scene, "scene0001_00": val_scene}, {"train": train, "val": val}


@pytest.fixture(scope="module")
def converted(scannet, tmp_path_factory):
    folder, _, _ = scannet
    root = tmp_path_factory.mktemp("out") / "scanrefer"
    build_scanrefer_dataset(root, folder, {"train": folder / "train.json", "val": folder / "val.json"}, CONFIG, progress=False)
    return root


def test_boxes_frames_and_descriptions_survive_the_conversion(scannet, converted):
    _, scenes, entries = scannet
    manifest = validate_dataset(converted)
    assert manifest.source == "scanrefer"
    assert manifest.splits == {"train": ["scene0000_00"], "val": ["scene0001_00"]}
    for split, scene_id in (("train", "scene0000_00"), ("val", "scene0001_00")):
        scene = scenes[scene_id]
        record = read_scene(converted, scene_id)
        np.testing.assert_allclose(record.gt_boxes, scene.boxes(), atol=1e-6)
        assert [o.category for o in record.objects] == [o.category for o in scene.objects]
        assert record.keyframe_stamps == [0.0, 6.0, 8.0]  # ScanNet frame numbers as stamps
        assert record.inputs.frames.shape[0] == 3
        # the aligned poses put the scene's surfaces where the boxes are: most valid patches of an
        # object-facing view lie inside the room and some inside object boxes
        xyz = record.inputs.patch_xyz[record.inputs.patch_valid].numpy()
        half = np.asarray(scene.room_size) / 2
        assert np.all(np.abs(xyz[:, :2]) <= half[:2] + 0.05) and np.all(xyz[:, 2] > -0.05)
        samples = read_samples(converted, split)
        assert [(s.object_id, s.ann_id, s.description) for s in samples] == [
            (int(e["object_id"]), int(e["ann_id"]), e["description"]) for e in entries[split]
        ]
        assert [s.object_name for s in samples] == [e["object_name"] for e in entries[split]]
        truth = {(r.object_id, r.ann_id): r.split_label for r in referring_samples(scene, seed=0)}
        assert all(s.split_label == truth[(s.object_id, s.ann_id)] for s in samples)


@pytest.mark.xfail(strict=False, reason=(
    "issue 13: on a map of 4 frames at 160x120 the plane-and-parts proposals leave unseen-top tables as "
    "separate legs and wall-side objects as slabs (37 % of targets reach IoU 0.25; the axis-aligned "
    "clustering reached over 50 %); docs/PROPOSALS.md"))
def test_most_converted_targets_have_a_proposal(scannet, converted):
    for split in ("train", "val"):
        samples = read_samples(converted, split)
        assert np.mean([s.target_iou >= 0.25 for s in samples]) > 0.5


def _broken_copy(scannet, tmp_path):
    folder, _, entries = scannet
    copy = tmp_path / "scannet"
    shutil.copytree(folder, copy)
    return copy, {split: [dict(e) for e in items] for split, items in entries.items()}


def _expect_error(tmp_path, scannet_dir, annotations, fragment):
    root = tmp_path / "out"
    with pytest.raises(DatasetError) as error:
        build_scanrefer_dataset(root, scannet_dir, annotations, CONFIG, progress=False)
    message = str(error.value)
    assert "\n" not in message and fragment in message, message
    assert not root.exists() and not (tmp_path / ".out.partial").exists()


def test_malformed_json(scannet, tmp_path):
    copy, _ = _broken_copy(scannet, tmp_path)
    (copy / "train.json").write_text('[{"scene_id": "scene0000_00",')
    _expect_error(tmp_path, copy, {"train": copy / "train.json"}, "train.json: malformed JSON")


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda e: e.update(description="   "), "empty description"),
        (lambda e: e.pop("ann_id"), "lacks ['ann_id']"),
        (lambda e: e.update(object_id="999"), "object_id 999 matches no object"),
        (lambda e: e.update(object_id="seven"), "bad value"),
    ],
)
def test_bad_annotation_entries(scannet, tmp_path, change, fragment):
    copy, entries = _broken_copy(scannet, tmp_path)
    change(entries["train"][3])
    (copy / "train.json").write_text(json.dumps(entries["train"]))
    _expect_error(tmp_path, copy, {"train": copy / "train.json"}, fragment)


def test_missing_scene_truncated_depth_and_scene_in_two_splits(scannet, tmp_path):
    copy, entries = _broken_copy(scannet, tmp_path)
    (copy / "both.json").write_text(json.dumps(entries["train"][:2]))
    _expect_error(tmp_path, copy, {"train": copy / "train.json", "val": copy / "both.json"}, "also in split train")
    depth = copy / "scene0000_00" / "depth" / "6.png"
    depth.write_bytes(depth.read_bytes()[:40])
    _expect_error(tmp_path, copy, {"train": copy / "train.json"}, "6.png: not a readable 16-bit")
    shutil.rmtree(copy / "scene0001_00")
    _expect_error(tmp_path, copy, {"val": copy / "val.json"}, "no ScanNet folder for scene scene0001_00")
