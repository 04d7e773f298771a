"""The synthetic grounding benchmark: sim scenes -> the robot's scene memory -> model inputs + descriptions.

Each scene is generated (``generate_scene``), filmed along an orbit
(``record_scene``), and its frames go through the robot's ``SceneMemory``
(``scene_fusion``), so training sees run-time proposals, not ground-truth boxes.
Descriptions come from ``referring`` (``phrasing="templates"``, the original generator)
or, with ``phrasing="human"``, from ``human_descriptions`` with a ``<split>_heldout``
twin of every split from ``heldout_descriptions`` (same scenes, same samples, words
never used for training); all are true and unambiguous by construction.

Splits are fixed by scene: train, val and test scene ids are disjoint. The
world is the original axis-aligned room with an ideal sensor unless the
config's world switches (``yaw_deg``, ``rooms``, ``touching``, ``sensor``;
``sim/conditions.py``) say otherwise; ground-truth boxes are in the map frame
(``SceneSpec.boxes``).
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.viewer import viewer_from_camera_pose
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.scene.keyframes import Keyframe
from w2r2_ros.scene.memory import SceneMemoryConfig
from w2r2_ros.sim.conditions import WorldConfig, make_world
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import SceneSpec, catalogue_categories, generate_scene
from w2r2_training.dataset_format import (
    HELDOUT_SUFFIX,
    DatasetError,
    DatasetWriter,
    GroundTruthObject,
    Manifest,
    Sample,
    SceneRecord,
    input_settings,
    make_sample,
    read_manifest,
    read_scene,
    scene_is_complete,
    write_scene,
)
from w2r2_training.heldout_descriptions import heldout_samples
from w2r2_training.human_descriptions import human_samples
from w2r2_training.phraser import PhrasingConfig
from w2r2_training.referring import ReferringConfig, ReferringSample, referring_samples
from w2r2_training.scene_fusion import every_frame_memory, scene_record_from_frames


PHRASINGS = ("templates", "human")


@dataclass(frozen=True)
class SyntheticDatasetConfig:
    """Sizes of the benchmark: about 2 CPU-seconds per scene, so the defaults (300/50/100 scenes) take
    7-8 minutes on two free cores (docs/DATA.md has the measurement). 16 frames of 320x240 are plenty
    for 5 cm fusion and for the model's 128x96 input.

    World switches (``sim.conditions.make_world``): ``yaw_deg`` range of the room yaw in the map,
    ``rooms`` range of connected rooms, ``touching`` furniture, ``sensor`` (``ideal`` or
    ``structured_light``), ``catalogue`` (``classic`` or ``scannet``: its class list is the
    dataset's categories). The defaults build the original world. ``splits``: the splits to build;
    the others keep their scene ids (numbering is unchanged) but are not built, so e.g. the test split
    can be rebuilt in another world with the same scenes as the full dataset's test split.

    ``phrasing``: ``"templates"`` (the original generator, map-fixed left/right) or ``"human"``
    (``human_descriptions``: viewer-relative relations, synonyms, fillers, typos at
    ``human_phrasing.typo_rate``...); with ``"human"`` every built split gets a ``<split>_heldout``
    twin (same scene ids) described by the held-out phraser, for evaluation only."""

    n_train: int = 300
    n_val: int = 50
    n_test: int = 100
    frames_per_scene: int = 16
    keyframes_per_scene: int = 8
    width: int = 320
    height: int = 240
    hfov_deg: float = 70.0
    seed: int = 0
    workers: int = 2
    yaw_deg: tuple[float, float] = (0.0, 0.0)
    rooms: tuple[int, int] = (1, 1)
    touching: bool = False
    sensor: str = "ideal"
    catalogue: str = "classic"
    splits: tuple[str, ...] = ("train", "val", "test")
    phrasing: str = "templates"
    referring: ReferringConfig = field(default_factory=ReferringConfig)
    human_phrasing: PhrasingConfig = field(default_factory=PhrasingConfig)
    memory: SceneMemoryConfig = field(default_factory=every_frame_memory)
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if min(self.n_train, self.n_val, self.n_test) < 0 or self.n_train + self.n_val + self.n_test == 0:
            raise ValueError("SyntheticDatasetConfig: scene counts must be >= 0 and not all 0")
        if self.frames_per_scene < 1 or not 1 <= self.keyframes_per_scene <= self.frames_per_scene:
            raise ValueError("SyntheticDatasetConfig: need 1 <= keyframes_per_scene <= frames_per_scene")
        if self.workers < 1:
            raise ValueError(f"SyntheticDatasetConfig: workers must be >= 1, got {self.workers}")
        self.world()  # a bad world switch fails here, not in a worker
        unknown = set(self.splits) - {"train", "val", "test"}
        if unknown or not self.splits:
            raise ValueError(f"SyntheticDatasetConfig: splits must be some of train, val, test; got {list(self.splits)}")
        if self.phrasing not in PHRASINGS:
            raise ValueError(f"SyntheticDatasetConfig: phrasing must be one of {PHRASINGS}, got {self.phrasing!r}")
        if isinstance(self.human_phrasing, dict):  # from a training config's data.synthetic_build
            try:
                object.__setattr__(self, "human_phrasing", PhrasingConfig(**self.human_phrasing))
            except TypeError as exc:
                raise ValueError(f"SyntheticDatasetConfig: human_phrasing: {exc}") from None

    def world(self) -> WorldConfig:
        """The scene generator's and renderer's settings these switches describe."""
        return make_world(tuple(self.yaw_deg), tuple(self.rooms), bool(self.touching), str(self.sensor), str(self.catalogue))

    def scene_ids(self) -> dict[str, list[str]]:
        """Scene ids per split: one running index, so no id is in two splits (a held-out twin,
        ``<split>_heldout``, has its split's ids)."""
        counts = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        ids, start = {}, 0
        for split, n in counts.items():
            if split in self.splits:
                ids[split] = [f"syn{i:05d}" for i in range(start, start + n)]
            start += n
        if self.phrasing == "human":
            ids.update({split + HELDOUT_SUFFIX: list(scene_ids) for split, scene_ids in list(ids.items())})
        return ids

    def generator_settings(self) -> dict[str, Any]:
        """What determines the dataset's content (not ``workers``): stored in the manifest, compared on resume."""
        return {
            "seed": self.seed,
            "frames_per_scene": self.frames_per_scene,
            "keyframes_per_scene": self.keyframes_per_scene,
            "width": self.width,
            "height": self.height,
            "hfov_deg": self.hfov_deg,
            "referring": dataclasses.asdict(self.referring),
            # Only a changed world is named, so a dataset of the original world keeps its settings.
            **({"world": json.loads(json.dumps(changes))} if (changes := self.world().changes()) else {}),
            **({"splits": list(self.splits)} if tuple(self.splits) != ("train", "val", "test") else {}),
            # Only a changed phrasing is named, so a templates dataset keeps its settings.
            **(
                {"phrasing": self.phrasing, "human_phrasing": dataclasses.asdict(self.human_phrasing)}
                if self.phrasing != "templates" else {}
            ),
        }

    def resume_key(self) -> dict[str, Any]:
        """Scenes left by an interrupted build are reused only when this matches."""
        return {**self.generator_settings(), "input_settings": input_settings(self.model)}


def _ground_truth(scene: SceneSpec) -> list[GroundTruthObject]:
    """Map-frame boxes (axis-aligned bounds of a turned room's object boxes), where the proposals are."""
    return [GroundTruthObject(o.object_id, o.category, box, o.color_name) for o, box in zip(scene.objects, scene.boxes())]


def build_scene_record(scene: SceneSpec, config: SyntheticDatasetConfig) -> SceneRecord:
    """Film one scene along its orbit, then fuse and prepare it (``scene_fusion``)."""
    intrinsics = Intrinsics.from_fov(config.width, config.height, config.hfov_deg)
    recording = record_scene(
        scene, config.frames_per_scene, intrinsics=intrinsics, seed=config.seed, render_config=config.world().render
    )
    frames = [
        Keyframe(float(stamp), frame.rgb, frame.depth, intrinsics, pose)
        for stamp, pose, frame in zip(recording.stamps, recording.poses, recording.frames)
    ]
    # Direction words are the view's at query time: the recording's last frame (w2r2_ros/geometry/viewer.py).
    return scene_record_from_frames(
        scene.scene_id, frames, _ground_truth(scene), config.memory, config.keyframes_per_scene, config.model,
        viewer=viewer_from_camera_pose(recording.poses[-1]),
    )


def scene_samples(scene: SceneSpec, record: SceneRecord, config: SyntheticDatasetConfig) -> dict[str, list[Sample]]:
    """The scene's samples by split suffix: ``{"": ...}`` for templates, ``{"": training words,
    HELDOUT_SUFFIX: held-out words}`` for human phrasing, whose directions are the record's viewer's (the
    recording's last camera pose, as the model sees it)."""

    def samples(described: list[ReferringSample]) -> list[Sample]:
        return [
            make_sample(record, s.object_id, s.ann_id, s.description, s.split_label, s.relation, s.anchor_ids)
            for s in described
        ]

    if config.phrasing == "templates":
        return {"": samples(referring_samples(scene, config.seed, config.referring))}
    viewer = record.inputs.viewer.numpy().astype(np.float64)
    args = (scene, viewer, config.seed, config.referring, config.human_phrasing)
    return {"": samples(human_samples(*args)), HELDOUT_SUFFIX: samples(heldout_samples(*args))}


def _build_one(job: tuple[str, SyntheticDatasetConfig, str]) -> tuple[str, dict[str, list[Sample]]]:
    """Worker: build (or, when already written, re-read) one scene; return its samples."""
    scene_id, config, staging = job
    scene = generate_scene(scene_id, config.seed, config.world().scene)
    if scene_is_complete(staging, scene_id):
        record = read_scene(staging, scene_id)
    else:
        record = build_scene_record(scene, config)
        write_scene(staging, record)
    return scene_id, scene_samples(scene, record, config)


def build_synthetic_dataset(
    root: str | os.PathLike,
    config: SyntheticDatasetConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    **settings: Any,
) -> Manifest:
    """Build the synthetic dataset at ``root``; keyword ``settings`` override ``SyntheticDatasetConfig`` fields
    (e.g. ``build_synthetic_dataset(root, n_train=300, n_val=50, n_test=100, frames_per_scene=16, seed=0, workers=2)``).

    Resumable: scenes already written by an interrupted build (in ``.<root>.partial``)
    are reused. When ``root`` already holds a dataset built with the same settings,
    nothing is done; with other settings it is an error unless ``overwrite``.
    """
    config = dataclasses.replace(config or SyntheticDatasetConfig(), **settings)
    root = Path(root)
    generator = config.generator_settings()
    if (root / "manifest.json").exists():
        existing = read_manifest(root)
        same_splits = existing.splits == config.scene_ids()
        if existing.generator == generator and existing.input_settings == input_settings(config.model) and same_splits:
            return existing
        if not overwrite:
            raise DatasetError(root, "holds a dataset built with other settings (pass overwrite to rebuild it)")
    writer = DatasetWriter(root, overwrite=True, resume_key=config.resume_key())
    split_ids = config.scene_ids()
    jobs = [(scene_id, config, str(writer.staging)) for split, ids in split_ids.items() for scene_id in ids
            if not split.endswith(HELDOUT_SUFFIX)]
    samples: dict[str, dict[str, list[Sample]]] = {}
    bar = tqdm(total=len(jobs), desc="synthetic scenes", unit="scene", disable=not progress)
    if config.workers > 1:
        with multiprocessing.get_context("spawn").Pool(config.workers) as pool:
            for scene_id, scene_samples_ in pool.imap_unordered(_build_one, jobs):
                samples[scene_id] = scene_samples_
                bar.update()
    else:
        for job in jobs:
            scene_id, scene_samples_ = _build_one(job)
            samples[scene_id] = scene_samples_
            bar.update()
    bar.close()
    split_samples = {
        split: [s for scene_id in ids for s in samples[scene_id][HELDOUT_SUFFIX if split.endswith(HELDOUT_SUFFIX) else ""]]
        for split, ids in split_ids.items()
    }
    categories = catalogue_categories(config.catalogue)
    return writer.finish_splits("synthetic", config.model, categories, split_ids, split_samples, generator)
