"""rosbag2 recordings + an annotation file -> the grounding dataset format (docs/DATA.md).

A robot's own recordings become training data: each bag (sqlite3 or mcap)
holds RGB, depth, camera_info and pose topics (``recordings.bag_reader.BagTopics``); the
annotation file names, per scene, its bag, its objects with boxes in ``map``,
and the descriptions::

    [
      {"scene_id": "lab_0001", "bag": "bags/lab_0001", "split": "train",
       "objects": [{"object_id": 0, "object_name": "chair", "box": [cx, cy, cz, sx, sy, sz]}],
       "descriptions": [{"object_id": 0, "ann_id": 0, "description": "the chair by the door"}]}
    ]

``bag`` is relative to the annotation file; ``split`` defaults to "train".
The frames go through the robot's scene memory with its default keyframe
policy (``scene_fusion``), exactly as the scene memory node would see them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.scene.memory import SceneMemoryConfig
from w2r2_ros.recordings.bag_reader import BagError, BagTopics, read_bag_frames
from w2r2_training.dataset_format import (
    DatasetError,
    DatasetWriter,
    GroundTruthObject,
    load_json,
    Manifest,
    Sample,
    make_sample,
    plain_name,
)
from w2r2_training.scene_fusion import scene_record_from_frames


def _robot_memory() -> SceneMemoryConfig:
    """The scene memory node's defaults, but keeping enough keyframes to cover a whole recording."""
    return SceneMemoryConfig(max_keyframes=256)


@dataclass(frozen=True)
class BagDatasetConfig:
    topics: BagTopics = field(default_factory=BagTopics)
    sync_tolerance_s: float = 0.02
    keyframes_per_scene: int = 8
    memory: SceneMemoryConfig = field(default_factory=_robot_memory)
    model: ModelConfig = field(default_factory=ModelConfig)


@dataclass(frozen=True)
class BagScene:
    scene_id: str
    bag: Path
    split: str
    objects: list[GroundTruthObject]
    descriptions: list[dict[str, Any]]


def _require(entry: dict, key: str, where: str, path: Path) -> Any:
    if key not in entry:
        raise DatasetError(path, f"{where} lacks {key!r}")
    return entry[key]


def read_bag_annotations(path: str | os.PathLike) -> list[BagScene]:
    """Parse and check the annotation file (one-line DatasetError naming it on any problem)."""
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, list) or not data:
        raise DatasetError(path, "expected a non-empty JSON list of scenes")
    scenes, seen = [], set()
    for number, entry in enumerate(data):
        where = f"scene entry {number}"
        if not isinstance(entry, dict):
            raise DatasetError(path, f"{where} is not an object")
        scene_id = str(_require(entry, "scene_id", where, path))
        where = f"scene {scene_id}"
        plain_name(scene_id, f"{where}: scene_id", path)
        if scene_id in seen:
            raise DatasetError(path, f"{where}: scene_id is repeated")
        seen.add(scene_id)
        try:
            objects = [
                GroundTruthObject(
                    object_id=int(_require(o, "object_id", f"{where} object", path)),
                    category=str(_require(o, "object_name", f"{where} object", path)),
                    box=np.asarray(_require(o, "box", f"{where} object", path), dtype=np.float64).reshape(6),
                    color_name=str(o.get("color_name", "")),
                )
                for o in _require(entry, "objects", where, path)
            ]
            descriptions = [
                {
                    "object_id": int(_require(d, "object_id", f"{where} description", path)),
                    "ann_id": int(_require(d, "ann_id", f"{where} description", path)),
                    "description": str(_require(d, "description", f"{where} description", path)),
                }
                for d in _require(entry, "descriptions", where, path)
            ]
        except (TypeError, ValueError, AttributeError) as exc:
            raise DatasetError(path, f"{where}: bad object or description ({exc})") from None
        ids = [o.object_id for o in objects]
        if len(set(ids)) != len(ids):
            raise DatasetError(path, f"{where}: object ids are not unique")
        for obj in objects:
            if not np.all(np.isfinite(obj.box)) or np.any(obj.box[3:] <= 0):
                raise DatasetError(path, f"{where}: object {obj.object_id} box must be finite with positive size")
        for d in descriptions:
            if d["object_id"] not in ids:
                raise DatasetError(path, f"{where}: description ann_id {d['ann_id']} names object {d['object_id']}, which is not in objects")
            if not d["description"].strip():
                raise DatasetError(path, f"{where}: description ann_id {d['ann_id']} of object {d['object_id']} is empty")
        bag = path.parent / str(_require(entry, "bag", where, path))
        split = plain_name(str(entry.get("split", "train")), f"{where}: split", path)
        scenes.append(BagScene(scene_id, bag, split, objects, descriptions))
    return scenes


def build_bag_dataset(
    root: str | os.PathLike,
    annotation_file: str | os.PathLike,
    config: BagDatasetConfig = BagDatasetConfig(),
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Manifest:
    """Convert annotated rosbag2 recordings into a dataset at ``root``.

    Any bad input (unreadable or truncated bag, missing topics, bad annotations)
    raises ``DatasetError`` and leaves nothing at ``root``.
    """
    annotation_file = Path(annotation_file)
    scenes = read_bag_annotations(annotation_file)
    writer = DatasetWriter(root, overwrite=overwrite)
    try:
        samples: dict[str, list[Sample]] = {}
        splits: dict[str, list[str]] = {}
        for scene in tqdm(scenes, desc="bag scenes", unit="scene", disable=not progress):
            try:
                frames = read_bag_frames(scene.bag, config.topics, config.sync_tolerance_s)
            except BagError as exc:
                raise DatasetError(annotation_file, f"scene {scene.scene_id}: {exc}") from None
            record = scene_record_from_frames(
                scene.scene_id, frames, scene.objects, config.memory, config.keyframes_per_scene, config.model
            )
            writer.write_scene(record)
            splits.setdefault(scene.split, []).append(scene.scene_id)
            samples.setdefault(scene.split, []).extend(
                make_sample(record, d["object_id"], d["ann_id"], d["description"], where=annotation_file) for d in scene.descriptions
            )
        manifest = writer.finish_splits(
            "rosbag2",
            config.model,
            sorted({o.category for s in scenes for o in s.objects}),
            splits,
            samples,
            {"annotations": str(annotation_file), "keyframes_per_scene": config.keyframes_per_scene},
        )
    except BaseException:
        writer.abort()
        raise
    return manifest
