"""ScanRefer descriptions + ScanNet frames -> the grounding dataset format (docs/DATA.md).

Input, per split a ScanRefer JSON (a list of ``{scene_id, object_id,
object_name, ann_id, description, ...}``), and a ScanNet directory with one
folder per scene as the ScanNet SensReader exports it::

    <scannet>/<scene_id>/color/<i>.jpg (or .png)      colour frames
    <scannet>/<scene_id>/depth/<i>.png                16-bit depth, millimetres
    <scannet>/<scene_id>/pose/<i>.txt                 4x4 camera-to-world (optical frame)
    <scannet>/<scene_id>/intrinsic/intrinsic_depth.txt   4x4 (or intrinsic_color.txt)
    <scannet>/<scene_id>/<scene_id>_bbox.npy          (M, 8) [cx, cy, cz, sx, sy, sz, nyu40_label, object_id]
    <scannet>/<scene_id>/<scene_id>.txt               optional ScanNet meta file; its ``axisAlignment``
                                                      moves poses into the frame of the boxes

ScanNet colour (1296x968) and depth (640x480) differ in resolution; colour is
resized to the depth image and the depth intrinsics are used, so every pixel
has a registered depth. Poses marked invalid by ScanNet (-inf) are skipped.
Frames go through the robot's scene memory (``scene_fusion``) like every other
source. "unique"/"multiple" follow ScanRefer: the target's NYU40 label is unique
in the scene or not.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import cv2
import numpy as np
from tqdm import tqdm

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.scene.keyframes import Keyframe
from w2r2_ros.scene.memory import SceneMemoryConfig
from w2r2_training.dataset_format import (
    DatasetError,
    DatasetWriter,
    GroundTruthObject,
    load_json,
    Manifest,
    Sample,
    make_sample,
)
from w2r2_training.scene_fusion import every_frame_memory, scene_record_from_frames

# NYU40 class names, indexed by the label id ScanNet/ScanRefer store in ``_bbox.npy`` (1-based).
NYU40_NAMES: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat",
    "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard",
    "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)


def _nyu40() -> dict[int, str]:
    return {i + 1: name for i, name in enumerate(NYU40_NAMES)}


@dataclass(frozen=True)
class ScanReferConfig:
    """``frame_skip``: use every n-th ScanNet frame (ScanNet is 30 Hz; 20 keeps ~1.5 views a second);
    ``max_frames``: at most this many of those, spread evenly over the scan (bounds memory: every
    fused frame is held until the keyframes are chosen, ~2 MB each at 640x480).
    ``label_names``: category name of each ``_bbox.npy`` label id (NYU40 by default)."""

    frame_skip: int = 20
    max_frames: int = 64
    keyframes_per_scene: int = 8
    label_names: Mapping[int, str] = field(default_factory=_nyu40)
    memory: SceneMemoryConfig = field(default_factory=lambda: every_frame_memory(depth_stride=3))
    model: ModelConfig = field(default_factory=ModelConfig)


_FIELDS = ("scene_id", "object_id", "object_name", "ann_id", "description")


def read_scanrefer_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The entries of a ScanRefer JSON file, with their fields checked (one-line DatasetError otherwise)."""
    path = Path(path)
    entries = load_json(path)
    if not isinstance(entries, list):
        raise DatasetError(path, "expected a JSON list of ScanRefer entries")
    checked = []
    for number, entry in enumerate(entries):
        where = f"entry {number}"
        if not isinstance(entry, dict):
            raise DatasetError(path, f"{where} is not an object")
        missing = [name for name in _FIELDS if name not in entry]
        if missing:
            raise DatasetError(path, f"{where} lacks {missing}")
        try:
            item = {
                "scene_id": str(entry["scene_id"]),
                "object_id": int(entry["object_id"]),
                "object_name": str(entry["object_name"]),
                "ann_id": int(entry["ann_id"]),
                "description": str(entry["description"]),
            }
        except (TypeError, ValueError) as exc:
            raise DatasetError(path, f"{where} has a bad value ({exc})") from None
        if not item["description"].strip():
            raise DatasetError(path, f"{where} (scene {item['scene_id']}, object {item['object_id']}) has an empty description")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", item["scene_id"]):
            raise DatasetError(path, f"{where} has an unusable scene_id {item['scene_id']!r}")
        checked.append(item)
    return checked


def _read_matrix(path: Path) -> np.ndarray:
    try:
        matrix = np.loadtxt(path, dtype=np.float64)
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except ValueError as exc:
        raise DatasetError(path, f"not a 4x4 matrix of numbers ({exc})") from None
    if matrix.shape != (4, 4):
        raise DatasetError(path, f"expected a 4x4 matrix, got shape {matrix.shape}")
    return matrix


def _axis_alignment(scene_dir: Path, scene_id: str) -> np.ndarray:
    """ScanNet's ``axisAlignment`` (row-major 4x4 in ``<scene_id>.txt``), identity when absent."""
    meta = scene_dir / f"{scene_id}.txt"
    if not meta.exists():
        return np.eye(4)
    for line in meta.read_text().splitlines():
        if line.strip().startswith("axisAlignment"):
            try:
                values = np.array([float(v) for v in line.split("=", 1)[1].split()])
            except ValueError:
                raise DatasetError(meta, "axisAlignment is not 16 numbers") from None
            if values.size != 16:
                raise DatasetError(meta, f"axisAlignment has {values.size} numbers, expected 16")
            return values.reshape(4, 4)
    return np.eye(4)


def read_scannet_objects(scene_dir: Path, scene_id: str, label_names: Mapping[int, str]) -> list[GroundTruthObject]:
    """The instance boxes of ``<scene_id>_bbox.npy`` as ground-truth objects."""
    path = scene_dir / f"{scene_id}_bbox.npy"
    try:
        boxes = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(path, f"unreadable .npy file ({exc})") from None
    if boxes.ndim != 2 or boxes.shape[1] != 8 or not np.all(np.isfinite(boxes)):
        raise DatasetError(path, f"expected finite (M, 8) rows [cx, cy, cz, sx, sy, sz, label, object_id], got {boxes.shape}")
    objects = []
    for row in boxes:
        label = int(row[6])
        objects.append(GroundTruthObject(int(row[7]), label_names.get(label, f"label_{label}"), row[:6].astype(np.float64)))
    ids = [o.object_id for o in objects]
    if len(set(ids)) != len(ids):
        raise DatasetError(path, "object ids are not unique")
    return objects


def _frame_index(path: Path) -> int | None:
    return int(path.stem) if path.stem.isdigit() else None


def _intrinsics(scene_dir: Path, depth_shape: tuple[int, int]) -> Intrinsics:
    """Depth-camera intrinsics; from the colour intrinsics scaled to the depth image when only those exist."""
    folder = scene_dir / "intrinsic"
    height, width = depth_shape
    if (folder / "intrinsic_depth.txt").exists():
        k = _read_matrix(folder / "intrinsic_depth.txt")
        return Intrinsics(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], width=width, height=height)
    k = _read_matrix(folder / "intrinsic_color.txt")
    color = _first_color_size(scene_dir)
    full = Intrinsics(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], width=color[1], height=color[0])
    return full.scaled(width, height)


def _color_path(scene_dir: Path, index: int) -> Path:
    for suffix in (".jpg", ".png"):
        path = scene_dir / "color" / f"{index}{suffix}"
        if path.exists():
            return path
    raise DatasetError(scene_dir / "color", f"no colour image {index}.jpg or {index}.png")


def _first_color_size(scene_dir: Path) -> tuple[int, int]:
    first = min((p for p in (scene_dir / "color").iterdir() if _frame_index(p) is not None), key=_frame_index)
    image = cv2.imread(str(first), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(first, "unreadable image")
    return image.shape[:2]


def scannet_frames(scene_dir: Path, scene_id: str, frame_skip: int, max_frames: int) -> Iterator[Keyframe]:
    """Every ``frame_skip``-th frame (at most ``max_frames``, evenly spread) of a ScanNet scene folder,
    registered and in the boxes' frame."""
    depth_dir = scene_dir / "depth"
    if not depth_dir.is_dir():
        raise DatasetError(depth_dir, "missing (not a ScanNet scene folder?)")
    indices = sorted(i for i in (_frame_index(p) for p in depth_dir.glob("*.png")) if i is not None)
    if not indices:
        raise DatasetError(depth_dir, "no depth images")
    align = _axis_alignment(scene_dir, scene_id)
    intrinsics: Intrinsics | None = None
    chosen = indices[:: max(1, frame_skip)]
    if len(chosen) > max_frames:
        chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, max_frames).round().astype(int)]
    for index in chosen:
        pose = _read_matrix(scene_dir / "pose" / f"{index}.txt")
        if not np.all(np.isfinite(pose)):
            continue  # ScanNet marks frames without tracking with -inf poses
        depth_path = depth_dir / f"{index}.png"
        raw = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.ndim != 2 or raw.dtype != np.uint16:
            raise DatasetError(depth_path, "not a readable 16-bit single-channel PNG")
        color_path = _color_path(scene_dir, index)
        bgr = cv2.imread(str(color_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(color_path, "unreadable image")
        if intrinsics is None:
            intrinsics = _intrinsics(scene_dir, raw.shape)
        if bgr.shape[:2] != raw.shape:
            bgr = cv2.resize(bgr, (raw.shape[1], raw.shape[0]), interpolation=cv2.INTER_AREA)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        depth = raw.astype(np.float32) / 1000.0
        yield Keyframe(float(index), rgb, depth, intrinsics, align @ pose)


def build_scanrefer_dataset(
    root: str | os.PathLike,
    scannet_dir: str | os.PathLike,
    annotations: Mapping[str, str | os.PathLike],
    config: ScanReferConfig = ScanReferConfig(),
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Manifest:
    """Convert ScanRefer splits (``{"train": "ScanRefer_filtered_train.json", "val": ...}``) into a dataset at ``root``.

    A scene belongs to the split whose file annotates it; a scene annotated in two
    split files is an error (splits are by scene). Any bad input raises
    ``DatasetError`` and leaves nothing at ``root``.
    """
    scannet_dir = Path(scannet_dir)
    entries = {split: read_scanrefer_json(path) for split, path in annotations.items()}
    split_of: dict[str, str] = {}
    for split, items in entries.items():
        for item in items:
            other = split_of.setdefault(item["scene_id"], split)
            if other != split:
                raise DatasetError(annotations[split], f"scene {item['scene_id']} is also in split {other} (splits are by scene)")
    writer = DatasetWriter(root, overwrite=overwrite)
    try:
        samples: dict[str, list[Sample]] = {split: [] for split in entries}
        categories: set[str] = set()
        for scene_id in tqdm(sorted(split_of), desc="ScanRefer scenes", unit="scene", disable=not progress):
            scene_dir = scannet_dir / scene_id
            if not scene_dir.is_dir():
                raise DatasetError(scene_dir, f"no ScanNet folder for scene {scene_id}")
            objects = read_scannet_objects(scene_dir, scene_id, config.label_names)
            record = scene_record_from_frames(
                scene_id,
                scannet_frames(scene_dir, scene_id, config.frame_skip, config.max_frames),
                objects,
                config.memory,
                config.keyframes_per_scene,
                config.model,
            )
            if record.inputs.frames.shape[0] == 0:
                raise DatasetError(scene_dir / "pose", "no frame with a valid pose")
            writer.write_scene(record)
            categories.update(o.category for o in objects)
            split = split_of[scene_id]
            for item in (i for i in entries[split] if i["scene_id"] == scene_id):
                samples[split].append(
                    make_sample(
                        record,
                        item["object_id"],
                        item["ann_id"],
                        item["description"],
                        where=annotations[split],
                        object_name=item["object_name"],
                    )
                )
        splits = {split: sorted(s for s, sp in split_of.items() if sp == split) for split in entries}
        manifest = writer.finish_splits(
            "scanrefer",
            config.model,
            sorted(categories),
            splits,
            samples,
            {
                "scannet_dir": str(scannet_dir),
                "frame_skip": config.frame_skip,
                "max_frames": config.max_frames,
                "keyframes_per_scene": config.keyframes_per_scene,
            },
        )
    except BaseException:
        writer.abort()
        raise
    return manifest
