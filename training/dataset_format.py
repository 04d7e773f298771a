"""The on-disk grounding dataset: one format for synthetic scenes, ScanRefer/ScanNet and rosbag2 recordings.

Layout (docs/DATA.md is the reference)::

    <root>/manifest.json              format name + version, model input settings, categories, splits, counts
    <root>/scenes/<scene_id>.safetensors  the scene's model inputs (``prepare_inputs``) + ground-truth boxes
    <root>/scenes/<scene_id>.json     the scene's objects (id, category, colour, box) and keyframe stamps
    <root>/<split>.jsonl              one ScanRefer-style sample per line

Every builder writes into a staging directory next to ``root`` and renames it
into place only when everything is written (``DatasetWriter``), so a failed
build never leaves a half-written dataset at ``root``. Bad input anywhere is a
``DatasetError`` whose message is one line naming the file and the problem.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from w2r2_ros.geometry.boxes import as_oriented, box_iou_matrix
from w2r2_ros.model.checkpoint import save_safetensors
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.inputs import GroundingInputs

FORMAT_NAME = "w2r2-grounding"
# 2: scene files hold box_colours (GroundingInputs.box_colours); 3: and the viewer (GroundingInputs.viewer);
# 4: and the proposals turned in yaw (GroundingInputs.oriented_boxes).
FORMAT_VERSION = 4
# Version 3 is still read: its proposals were stored as axis-aligned bounds only, which are yaw-0 boxes.
READABLE_VERSIONS = (3, 4)
SPLITS = ("train", "val", "test")
# A split's twin with other descriptions of the same scenes (held-out phrasings): the one split
# allowed to share scene ids, and only all of them.
HELDOUT_SUFFIX = "_heldout"
SPLIT_UNIQUE = "unique"
SPLIT_MULTIPLE = "multiple"
SPLIT_LABELS = (SPLIT_UNIQUE, SPLIT_MULTIPLE)
# ScanRefer counts a prediction at IoU >= 0.25; a sample whose best proposal is below
# that cannot be answered correctly by any proposal, so training treats it as "no target".
MIN_TARGET_IOU = 0.25
# A proposal is taken to *be* a GT object (for its category label) at IoU >= 0.5.
CATEGORY_MATCH_IOU = 0.5
NO_TARGET = -1

_INPUT_SETTINGS = ("image_width", "image_height", "patch_size", "depth_samples_per_patch", "box_margin_m")


class DatasetError(Exception):
    """Bad or inconsistent dataset input; the message is one line naming the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        message = f"{path}: {problem}".replace("\n", " ")
        super().__init__(message)


def input_settings(config: ModelConfig) -> dict[str, Any]:
    """The ModelConfig fields that shape ``prepare_inputs`` output: a dataset is only valid for these."""
    return {name: getattr(config, name) for name in _INPUT_SETTINGS}


@dataclass(frozen=True)
class GroundTruthObject:
    object_id: int
    category: str
    box: np.ndarray  # (6,) [cx, cy, cz, sx, sy, sz]
    color_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "object_id": int(self.object_id),
            "category": self.category,
            "color_name": self.color_name,
            "box": [float(v) for v in self.box],
        }


@dataclass
class SceneRecord:
    """One scene of the dataset: model inputs for all its queries and its ground truth.

    ``inputs.boxes`` are the proposal boxes (from the scene memory pipeline, the
    same one the robot runs), ``objects`` the annotated ground truth.
    """

    scene_id: str
    inputs: GroundingInputs
    objects: list[GroundTruthObject]
    keyframe_stamps: list[float] = field(default_factory=list)

    @property
    def proposal_boxes(self) -> np.ndarray:
        """(N, 6) axis-aligned bounds of the proposals (matching and IoU)."""
        return self.inputs.boxes.numpy().astype(np.float64)

    @property
    def oriented_proposal_boxes(self) -> np.ndarray:
        """(N, 7) the proposals turned in yaw (what the model reads the sizes of)."""
        return self.inputs.oriented_boxes.numpy().astype(np.float64)

    @property
    def gt_boxes(self) -> np.ndarray:
        if not self.objects:
            return np.zeros((0, 6))
        return np.stack([np.asarray(o.box, dtype=np.float64) for o in self.objects])

    @property
    def gt_object_ids(self) -> np.ndarray:
        return np.array([o.object_id for o in self.objects], dtype=np.int64)

    def object(self, object_id: int) -> GroundTruthObject:
        for obj in self.objects:
            if obj.object_id == object_id:
                return obj
        raise KeyError(object_id)


@dataclass(frozen=True)
class Sample:
    """One line of ``<split>.jsonl``: ScanRefer's fields plus the target box and its best proposal.

    ``target_proposal`` is the index of the proposal with the highest IoU with
    ``target_box`` (``target_iou``), or -1 ("no target" for training) when that IoU
    is below ``MIN_TARGET_IOU``. Evaluation always judges the predicted box against
    ``target_box``, never against the proposal.
    """

    scene_id: str
    object_id: int
    object_name: str
    ann_id: int
    description: str
    split_label: str
    target_box: tuple[float, ...]
    target_proposal: int
    target_iou: float
    relation: str = ""
    anchor_ids: tuple[int, ...] = ()

    def to_json(self) -> str:
        values = asdict(self)
        values["target_box"] = [round(float(v), 6) for v in self.target_box]
        values["anchor_ids"] = list(self.anchor_ids)
        values["target_iou"] = round(float(self.target_iou), 6)
        return json.dumps(values)

    @staticmethod
    def from_dict(values: dict[str, Any], where: str) -> "Sample":
        try:
            sample = Sample(
                scene_id=str(values["scene_id"]),
                object_id=int(values["object_id"]),
                object_name=str(values["object_name"]),
                ann_id=int(values["ann_id"]),
                description=str(values["description"]),
                split_label=str(values["split_label"]),
                target_box=tuple(float(v) for v in values["target_box"]),
                target_proposal=int(values["target_proposal"]),
                target_iou=float(values["target_iou"]),
                relation=str(values.get("relation", "")),
                anchor_ids=tuple(int(v) for v in values.get("anchor_ids", ())),
            )
        except KeyError as exc:
            raise DatasetError(where, f"missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise DatasetError(where, f"bad field value ({exc})") from None
        if not sample.description.strip():
            raise DatasetError(where, "empty description")
        if sample.split_label not in SPLIT_LABELS:
            raise DatasetError(where, f"split_label {sample.split_label!r} is not one of {SPLIT_LABELS}")
        if len(sample.target_box) != 6 or not np.all(np.isfinite(sample.target_box)):
            raise DatasetError(where, "target_box must be 6 finite numbers")
        return sample


def match_target(proposal_boxes: np.ndarray, target_box: np.ndarray, min_iou: float = MIN_TARGET_IOU) -> tuple[int, float]:
    """(index of the best-IoU proposal or NO_TARGET when below ``min_iou``, that best IoU)."""
    boxes = np.asarray(proposal_boxes, dtype=np.float64).reshape(-1, 6)
    if len(boxes) == 0:
        return NO_TARGET, 0.0
    ious = box_iou_matrix(boxes, np.asarray(target_box, dtype=np.float64))[:, 0]
    best = int(np.argmax(ious))
    return (best if ious[best] >= min_iou else NO_TARGET), float(ious[best])


def proposal_categories(
    proposal_boxes: np.ndarray, objects: Sequence[GroundTruthObject], categories: Sequence[str], attribute: str = "category"
) -> np.ndarray:
    """(N,) int64: index in ``categories`` of the ``attribute`` of the GT object each proposal matches at IoU >= 0.5, else -1.

    The label of the auxiliary category head ("What"), or with ``attribute="color_name"``
    of the colour head; values outside the list (also "" = unknown) are -1 too.
    """
    boxes = np.asarray(proposal_boxes, dtype=np.float64).reshape(-1, 6)
    labels = np.full(len(boxes), -1, dtype=np.int64)
    if len(boxes) == 0 or not objects:
        return labels
    gt = np.stack([np.asarray(o.box, dtype=np.float64) for o in objects])
    ious = box_iou_matrix(boxes, gt)
    best = ious.argmax(axis=1)
    index = {name: i for i, name in enumerate(categories)}
    for p, g in enumerate(best):
        if ious[p, g] >= CATEGORY_MATCH_IOU:
            labels[p] = index.get(getattr(objects[g], attribute), -1)
    return labels


@dataclass
class Manifest:
    """``manifest.json``: what the dataset is and how it was made."""

    source: str
    input_settings: dict[str, Any]
    categories: list[str]
    splits: dict[str, list[str]]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def check_model_config(self, config: ModelConfig, where: str | os.PathLike = "manifest.json") -> None:
        """Raise DatasetError when the dataset's inputs were prepared for other image/patch settings."""
        wanted = input_settings(config)
        for name, value in wanted.items():
            if self.input_settings.get(name) != value:
                raise DatasetError(
                    where, f"dataset was prepared with {name}={self.input_settings.get(name)!r}, the model wants {value!r}"
                )

    def scene_split(self) -> dict[str, str]:
        """Scene id -> its split (a ``HELDOUT_SUFFIX`` twin's scenes are its split's)."""
        return {scene_id: split for split, ids in self.splits.items() for scene_id in ids if self.base_split(split) == split}

    def base_split(self, split: str) -> str:
        """The split whose scenes ``split`` describes: itself, or for a twin ``test_heldout`` "test"."""
        base = split.removesuffix(HELDOUT_SUFFIX)
        return base if base != split and base in self.splits else split


def load_json(path: Path) -> Any:
    """A JSON file's content; a missing or malformed file is a one-line DatasetError naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except IsADirectoryError:
        raise DatasetError(path, "is a directory, expected a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"malformed JSON ({exc})") from None


def read_manifest(root: str | os.PathLike) -> Manifest:
    path = Path(root) / "manifest.json"
    data = load_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DatasetError(path, f"not a {FORMAT_NAME} manifest")
    if data.get("version") not in READABLE_VERSIONS:
        raise DatasetError(
            path, f"format version {data.get('version')!r}, this code reads {list(READABLE_VERSIONS)}: rebuild the dataset"
        )
    try:
        manifest = Manifest(**data)
    except TypeError as exc:
        raise DatasetError(path, f"bad manifest fields ({exc})") from None
    seen: dict[str, str] = {}
    for split, ids in manifest.splits.items():
        twin_of = manifest.base_split(split)
        if twin_of != split:
            if ids != manifest.splits[twin_of]:
                raise DatasetError(path, f"split {split} must have exactly the scenes of {twin_of}")
            continue
        for scene_id in ids:
            if scene_id in seen:
                raise DatasetError(path, f"scene {scene_id} is in both {seen[scene_id]} and {split}")
            seen[scene_id] = split
    return manifest


# Tensors of a scene file. Frames are stored as uint8 (what the resized image was
# before prepare_keyframe divided by 255), a quarter of the float32 size; loading
# multiplies by float32(1/255) as prepare_keyframe does, so the values are identical.
_SCENE_TENSORS = (
    "frames", "patch_xyz", "patch_valid", "proposal_boxes", "box_patch_weights", "box_colours", "viewer", "gt_boxes",
    "gt_object_ids",
)


# Split names and scene ids become file names inside the dataset directory: nothing else may.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def plain_name(name: str, what: str, where: str | os.PathLike) -> str:
    """``name`` if it is a plain file name (letters, digits, ``_ . -``, not starting with a dot), else a
    DatasetError: a split ``../escaped`` once wrote ``escaped.jsonl`` outside the dataset directory."""
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise DatasetError(where, f"{what} {name!r} is not a plain name (letters, digits, '_', '.', '-'; no path "
                                  f"separators, '..' or absolute paths): the dataset's files must stay inside it")
    return name


def _scene_paths(root: Path, scene_id: str) -> tuple[Path, Path]:
    plain_name(scene_id, "scene id", root)
    return root / "scenes" / f"{scene_id}.safetensors", root / "scenes" / f"{scene_id}.json"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_scene(root: str | os.PathLike, record: SceneRecord) -> None:
    """Write the scene's two files, each atomically; the tensor file last, so its presence marks a complete scene."""
    root = Path(root)
    tensor_path, json_path = _scene_paths(root, record.scene_id)
    tensor_path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "scene_id": record.scene_id,
        "objects": [o.to_dict() for o in record.objects],
        "keyframe_stamps": [float(s) for s in record.keyframe_stamps],
        "n_proposals": int(record.inputs.boxes.shape[0]),
    }
    _atomic_write_text(json_path, json.dumps(info))
    inputs = record.inputs
    tensors = {
        "frames": torch.round(inputs.frames * 255.0).clamp(0, 255).to(torch.uint8).contiguous(),
        "patch_xyz": inputs.patch_xyz.float().contiguous(),
        "patch_valid": inputs.patch_valid.bool().contiguous(),
        "proposal_boxes": inputs.boxes.float().contiguous(),
        "oriented_boxes": inputs.oriented_boxes.float().contiguous(),
        "box_patch_weights": inputs.box_patch_weights.float().contiguous(),
        "box_colours": inputs.box_colours.float().contiguous(),
        "viewer": inputs.viewer.float().reshape(3).contiguous(),
        "gt_boxes": torch.from_numpy(record.gt_boxes.astype(np.float32)).reshape(-1, 6),
        "gt_object_ids": torch.from_numpy(record.gt_object_ids),
    }
    tmp = tensor_path.with_name(tensor_path.name + ".tmp")
    save_safetensors(tensors, tmp, metadata={"format": FORMAT_NAME, "version": str(FORMAT_VERSION), "scene_id": record.scene_id})
    os.replace(tmp, tensor_path)


def read_scene(root: str | os.PathLike, scene_id: str) -> SceneRecord:
    """Load one scene, checking that the tensors are consistent with each other and with the JSON."""
    tensor_path, json_path = _scene_paths(Path(root), scene_id)
    info = load_json(json_path)
    try:
        tensors = load_file(str(tensor_path))
    except FileNotFoundError:
        raise DatasetError(tensor_path, "file not found") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise DatasetError(tensor_path, f"unreadable safetensors file ({exc})") from None
    missing = [name for name in _SCENE_TENSORS if name not in tensors]
    if missing:
        raise DatasetError(tensor_path, f"missing tensors {missing}")
    frames = tensors["frames"]
    k = frames.shape[0]
    n = tensors["proposal_boxes"].shape[0]
    if "oriented_boxes" not in tensors:  # a version-3 file: axis-aligned proposals, yaw 0
        tensors["oriented_boxes"] = torch.from_numpy(as_oriented(tensors["proposal_boxes"].numpy())).float()
    p = tensors["patch_xyz"].shape[1] if tensors["patch_xyz"].dim() == 3 else -1
    expected = {
        "patch_xyz": (k, p, 3),
        "patch_valid": (k, p),
        "proposal_boxes": (n, 6),
        "oriented_boxes": (n, 7),
        "box_patch_weights": (n, k, p),
        "box_colours": (n, k, 3),
        "viewer": (3,),
    }
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise DatasetError(tensor_path, f"tensor {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
    try:
        objects = [
            GroundTruthObject(
                object_id=int(o["object_id"]),
                category=str(o["category"]),
                box=np.asarray(o["box"], dtype=np.float64).reshape(6),
                color_name=str(o.get("color_name", "")),
            )
            for o in info["objects"]
        ]
        stamps = [float(s) for s in info.get("keyframe_stamps", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(json_path, f"bad object entry ({exc!r})") from None
    ids = tensors["gt_object_ids"].tolist()
    if ids != [o.object_id for o in objects]:
        raise DatasetError(tensor_path, f"gt_object_ids {ids} do not match the objects of {json_path.name}")
    inputs = GroundingInputs(
        frames=frames.to(torch.float32) * (1.0 / 255.0),
        frame_mask=torch.ones(k, dtype=torch.bool),
        patch_xyz=tensors["patch_xyz"],
        patch_valid=tensors["patch_valid"],
        boxes=tensors["proposal_boxes"],
        oriented_boxes=tensors["oriented_boxes"],
        object_mask=torch.ones(n, dtype=torch.bool),
        box_patch_weights=tensors["box_patch_weights"],
        box_colours=tensors["box_colours"],
        viewer=tensors["viewer"],
    )
    return SceneRecord(scene_id=scene_id, inputs=inputs, objects=objects, keyframe_stamps=stamps)


def scene_is_complete(root: str | os.PathLike, scene_id: str) -> bool:
    """Whether a scene was fully written and reads back (resuming builds skip these)."""
    try:
        read_scene(root, scene_id)
    except DatasetError:
        return False
    return True


def write_samples(path: str | os.PathLike, samples: Iterable[Sample]) -> int:
    path = Path(path)
    lines = [s.to_json() for s in samples]
    _atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_samples(root: str | os.PathLike, split: str) -> list[Sample]:
    path = Path(root) / f"{plain_name(split, 'split', root)}.jsonl"
    if not path.exists():
        raise DatasetError(path, "file not found")
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}", f"malformed JSON ({exc})") from None
        if not isinstance(values, dict):
            raise DatasetError(f"{path}:{number}", "a sample must be a JSON object")
        samples.append(Sample.from_dict(values, f"{path}:{number}"))
    return samples


def make_sample(
    record: SceneRecord,
    object_id: int,
    ann_id: int,
    description: str,
    split_label: str | None = None,
    relation: str = "",
    anchor_ids: Sequence[int] = (),
    where: str | os.PathLike = "",
    object_name: str | None = None,
) -> Sample:
    """A sample for an object of ``record``, its target proposal matched by IoU.

    ``split_label`` defaults to ScanRefer's rule (``split_label_of``); ``object_name``
    defaults to the object's category (ScanRefer files bring their own)."""
    try:
        target = record.object(object_id)
    except KeyError:
        raise DatasetError(where or record.scene_id, f"object_id {object_id} matches no object of scene {record.scene_id}") from None
    if not description.strip():
        raise DatasetError(where or record.scene_id, f"empty description for object {object_id} (ann_id {ann_id})")
    proposal, iou = match_target(record.proposal_boxes, target.box)
    return Sample(
        scene_id=record.scene_id,
        object_id=int(object_id),
        object_name=target.category if object_name is None else object_name,
        ann_id=int(ann_id),
        description=" ".join(description.split()),
        split_label=split_label_of(record.objects, object_id) if split_label is None else split_label,
        target_box=tuple(float(v) for v in target.box),
        target_proposal=proposal,
        target_iou=iou,
        relation=relation,
        anchor_ids=tuple(int(a) for a in anchor_ids),
    )


def split_label_of(objects: Sequence[GroundTruthObject], object_id: int) -> str:
    """ScanRefer: "unique" iff the target is the only object of its category in the scene."""
    category = next(o.category for o in objects if o.object_id == object_id)
    return SPLIT_UNIQUE if sum(o.category == category for o in objects) == 1 else SPLIT_MULTIPLE


def count_samples(samples: Sequence[Sample], n_scenes: int) -> dict[str, int]:
    return {
        "scenes": n_scenes,
        "samples": len(samples),
        SPLIT_UNIQUE: sum(s.split_label == SPLIT_UNIQUE for s in samples),
        SPLIT_MULTIPLE: sum(s.split_label == SPLIT_MULTIPLE for s in samples),
        "no_target": sum(s.target_proposal == NO_TARGET for s in samples),
    }


class DatasetWriter:
    """Builds a dataset in ``.<name>.partial`` beside ``root`` and renames it to ``root`` at ``finish``.

    ``resume_key`` (what determines the content, e.g. the generator settings) lets an
    interrupted build keep the scenes already in the staging directory, but only when
    they were made with the same key; otherwise, and when it is None, staging starts
    empty. ``abort`` removes the staging directory. An existing ``root`` is replaced
    only when it is empty, or with ``overwrite=True`` when it is a dataset (has a
    manifest): nothing else is ever deleted.
    """

    _RESUME_FILE = "resume_key.json"

    def __init__(self, root: str | os.PathLike, overwrite: bool = False, resume_key: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.staging = self.root.parent / f".{self.root.name}.partial"
        if self.root.exists() and not self.root.is_dir():
            raise DatasetError(self.root, "exists and is not a directory")
        if self.root.exists() and any(self.root.iterdir()):
            if not (self.root / "manifest.json").exists():
                raise DatasetError(self.root, "exists, is not empty and is not a dataset; refusing to replace it")
            if not overwrite:
                raise DatasetError(self.root, "already holds a dataset (pass overwrite to replace it)")
        key = None if resume_key is None else json.dumps(resume_key, sort_keys=True)
        key_file = self.staging / self._RESUME_FILE
        if self.staging.exists() and (key is None or not key_file.exists() or key_file.read_text() != key):
            shutil.rmtree(self.staging)
        (self.staging / "scenes").mkdir(parents=True, exist_ok=True)
        if key is not None:
            _atomic_write_text(key_file, key)

    def write_scene(self, record: SceneRecord) -> None:
        write_scene(self.staging, record)

    def write_split(self, split: str, samples: Sequence[Sample]) -> None:
        write_samples(self.staging / f"{plain_name(split, 'split', self.root)}.jsonl", samples)

    def finish_splits(
        self,
        source: str,
        model: ModelConfig,
        categories: Sequence[str],
        splits: dict[str, list[str]],
        samples: dict[str, Sequence[Sample]],
        generator: dict[str, Any],
    ) -> Manifest:
        """Write every split's samples, count them, and ``finish`` with the manifest every builder writes."""
        counts = {}
        for split, split_samples in samples.items():
            self.write_split(split, split_samples)
            counts[split] = count_samples(split_samples, len(splits[split]))
        manifest = Manifest(
            source=source,
            input_settings=input_settings(model),
            categories=list(categories),
            splits=splits,
            counts=counts,
            generator=generator,
        )
        self.finish(manifest)
        return manifest

    def finish(self, manifest: Manifest) -> Path:
        """Write the manifest, drop scene files no split names, and move the dataset into place."""
        named = {scene_id for ids in manifest.splits.values() for scene_id in ids}
        for path in (self.staging / "scenes").iterdir():
            scene_id = path.name.removesuffix(".safetensors").removesuffix(".json")
            if scene_id not in named or path.name.endswith(".tmp"):
                path.unlink()
        (self.staging / self._RESUME_FILE).unlink(missing_ok=True)
        _atomic_write_text(self.staging / "manifest.json", manifest.to_json())
        if self.root.exists():
            shutil.rmtree(self.root)
        os.replace(self.staging, self.root)
        return self.root

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def validate_dataset(root: str | os.PathLike) -> Manifest:
    """Read everything once: the manifest, every scene, every sample (scene known, object known,
    proposal index in range). Raises DatasetError on the first problem."""
    root = Path(root)
    manifest = read_manifest(root)
    split_of = manifest.scene_split()
    objects: dict[str, set[int]] = {}
    proposals: dict[str, int] = {}
    for scene_id in split_of:
        record = read_scene(root, scene_id)
        objects[scene_id] = {o.object_id for o in record.objects}
        proposals[scene_id] = record.inputs.boxes.shape[0]
    for split in manifest.splits:
        for number, sample in enumerate(read_samples(root, split), start=1):
            where = root / f"{split}.jsonl:{number}"
            if split_of.get(sample.scene_id) != manifest.base_split(split):
                raise DatasetError(where, f"scene {sample.scene_id} is not a {split} scene")
            if sample.object_id not in objects[sample.scene_id]:
                raise DatasetError(where, f"object_id {sample.object_id} is not in scene {sample.scene_id}")
            if not NO_TARGET <= sample.target_proposal < proposals[sample.scene_id]:
                raise DatasetError(where, f"target_proposal {sample.target_proposal} out of range")
    return manifest
