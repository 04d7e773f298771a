"""RGB-D frames of one scene -> the robot's scene memory -> one dataset scene (model inputs + ground truth).

Every dataset source (synthetic orbits, ScanNet frames, rosbag2 recordings)
goes through ``SceneMemory``, the pipeline the robot runs: voxel fusion,
class-agnostic proposals, keyframes. Training therefore sees the proposals the
robot will see (merged, missed and clipped ones included), never ground-truth
boxes as proposals. The model reads ``keyframes_per_scene`` keyframes spread
evenly over the scene's keyframes. The query is taken to be asked at the end of the recording: the
viewer (``w2r2_ros.geometry.viewer``) is the newest frame's camera pose, as on the robot.
"""
from __future__ import annotations

from typing import Iterable, Protocol, Sequence

import numpy as np

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.viewer import viewer_from_camera_pose
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.inputs import prepare_inputs
from w2r2_ros.scene.keyframes import Keyframe, KeyframePolicy
from w2r2_ros.scene.memory import SceneMemory, SceneMemoryConfig, SceneSnapshot
from w2r2_training.dataset_format import GroundTruthObject, SceneRecord


class RGBDFrame(Protocol):
    """A registered RGB-D frame with its pose (``Keyframe`` and ``recordings.bag_reader.BagFrame`` fit)."""

    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    cam_to_world: np.ndarray


def every_frame_memory(max_keyframes: int = 256, depth_stride: int = 1) -> SceneMemoryConfig:
    """Scene memory that keeps and fuses every frame it is given: for frame sets that are already
    sparse views (a 16-view orbit, every 20th ScanNet frame). ``depth_stride`` 1 suits 320x240
    frames, 3 (the robot's default) 640x480 ones: either way about one point per 5 cm voxel at 3 m."""
    return SceneMemoryConfig(
        keyframe_policy=KeyframePolicy(min_translation_m=0.0, min_rotation_deg=0.0, max_interval_s=0.0),
        max_keyframes=max_keyframes,
        depth_stride=depth_stride,
        min_fuse_interval_s=0.0,
    )


def fuse_frames(frames: Iterable[RGBDFrame], config: SceneMemoryConfig) -> tuple[SceneSnapshot, np.ndarray | None]:
    """Feed frames to a fresh ``SceneMemory`` in order, compute proposals; -> (the snapshot, the newest frame's
    camera pose (4, 4), None without frames)."""
    memory = SceneMemory(config)
    newest = None
    for frame in frames:
        memory.add_rgbd(float(frame.stamp), frame.rgb, frame.depth, frame.intrinsics, frame.cam_to_world)
        newest = np.asarray(frame.cam_to_world)
    memory.update_proposals()
    return memory.snapshot(), newest


def select_keyframes(keyframes: Sequence[Keyframe], k: int) -> list[Keyframe]:
    """``k`` keyframes spread evenly over the sequence (all of them when there are fewer)."""
    if len(keyframes) <= k:
        return list(keyframes)
    index = np.linspace(0, len(keyframes) - 1, k).round().astype(int)
    return [keyframes[i] for i in index]


def scene_record_from_frames(
    scene_id: str,
    frames: Iterable[RGBDFrame],
    objects: list[GroundTruthObject],
    memory_config: SceneMemoryConfig,
    keyframes_per_scene: int,
    model_config: ModelConfig,
    viewer: np.ndarray | None = None,
) -> SceneRecord:
    """Fuse ``frames``, pick the keyframes, run ``prepare_inputs`` on them with the fused proposals, seen from
    ``viewer`` (default: the newest frame's camera pose)."""
    snapshot, newest = fuse_frames(frames, memory_config)
    keyframes = select_keyframes(snapshot.keyframes, keyframes_per_scene)
    if viewer is None and newest is not None:
        viewer = viewer_from_camera_pose(newest)
    inputs = prepare_inputs(keyframes, snapshot.oriented_proposal_boxes(), model_config, viewer)
    return SceneRecord(scene_id=scene_id, inputs=inputs, objects=objects, keyframe_stamps=[k.stamp for k in keyframes])
