"""A synthetic RGB-D recording: the frames a camera on a trajectory sees, with stamps and poses.

On disk a recording is a folder with ``frames.npz`` (stamps, poses, rgb, depth,
instance) and ``scene.json`` (the scene with its ground-truth boxes, and the
intrinsics), so a data set can be generated once and read many times.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.sim.render import RenderConfig, RenderedFrame, render_rgbd
from w2r2_ros.sim.trajectory import TrajectoryConfig, orbit_trajectory
from w2r2_ros.sim.world import SceneSpec, scene_rng

FRAMES_FILE = "frames.npz"
SCENE_FILE = "scene.json"
_FORMAT = "w2r2_sim_recording"
_FORMAT_VERSION = 1
_NOISE_STREAM = 2  # random stream of scene_rng reserved for sensor noise

DEFAULT_INTRINSICS = Intrinsics.from_fov(640, 480, 70.0)
# A fixed, realistic epoch (2023-11-14) so stamps look like a robot's and fit ROS time.
DEFAULT_START_STAMP = 1_700_000_000.0


@dataclass(frozen=True)
class Recording:
    """Frames of one scene: ``stamps`` (N,) float seconds, ``poses`` (N, 4, 4) camera-to-map of the optical frame."""

    scene: SceneSpec
    intrinsics: Intrinsics
    stamps: np.ndarray
    poses: np.ndarray
    frames: list[RenderedFrame]

    def __len__(self) -> int:
        return len(self.frames)


def record_scene(
    scene: SceneSpec,
    n_frames: int = 16,
    intrinsics: Intrinsics = DEFAULT_INTRINSICS,
    fps: float = 5.0,
    seed: int = 0,
    render_config: RenderConfig = RenderConfig(),
    trajectory_config: TrajectoryConfig = TrajectoryConfig(),
    start_stamp: float = DEFAULT_START_STAMP,
) -> Recording:
    """Render ``n_frames`` along ``orbit_trajectory(scene, n_frames, seed)`` at ``fps``."""
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    poses = orbit_trajectory(scene, n_frames, seed, trajectory_config)
    noise_rng = scene_rng(scene.scene_id, seed, _NOISE_STREAM)
    frames = [render_rgbd(scene, intrinsics, pose, render_config, noise_rng) for pose in poses]
    stamps = start_stamp + np.arange(n_frames, dtype=np.float64) / fps
    return Recording(scene=scene, intrinsics=intrinsics, stamps=stamps, poses=np.stack(poses), frames=frames)


def save_recording(recording: Recording, directory: str | Path, compress: bool = True) -> Path:
    """Write ``frames.npz`` and ``scene.json`` into ``directory`` (created if needed); returns it.

    ``compress`` (zip deflate) makes files about 5x smaller and saving several
    times slower; loading reads either.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compress else np.savez)(
        directory / FRAMES_FILE,
        stamps=np.asarray(recording.stamps, dtype=np.float64),
        poses=np.asarray(recording.poses, dtype=np.float64),
        rgb=np.stack([f.rgb for f in recording.frames]),
        depth=np.stack([f.depth for f in recording.frames]),
        instance=np.stack([f.instance for f in recording.frames]),
    )
    k = recording.intrinsics
    meta = {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy, "width": k.width, "height": k.height},
        "scene": recording.scene.to_dict(),
    }
    (directory / SCENE_FILE).write_text(json.dumps(meta, indent=1))
    return directory


def _load_meta(path: Path) -> tuple[SceneSpec, Intrinsics]:
    try:
        meta = json.loads(path.read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, expected {_FORMAT!r}")
        k = meta["intrinsics"]
        intrinsics = Intrinsics(
            fx=float(k["fx"]), fy=float(k["fy"]), cx=float(k["cx"]), cy=float(k["cy"]),
            width=int(k["width"]), height=int(k["height"]),
        )
        scene = SceneSpec.from_dict(meta["scene"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a valid recording scene file ({type(error).__name__}: {error})") from None
    return scene, intrinsics


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], intrinsics: Intrinsics) -> None:
    n = len(arrays["stamps"])
    h, w = intrinsics.height, intrinsics.width
    expected = {
        "stamps": ((n,), np.floating),
        "poses": ((n, 4, 4), np.floating),
        "rgb": ((n, h, w, 3), np.uint8),
        "depth": ((n, h, w), np.float32),
        "instance": ((n, h, w), np.integer),
    }
    for name, (shape, dtype) in expected.items():
        array = arrays[name]
        if array.shape != shape or not np.issubdtype(array.dtype, dtype):
            found, wanted = f"{array.shape} dtype {array.dtype}", f"{shape} {np.dtype(dtype).name}"
            raise ValueError(f"{path}: array '{name}' has shape {found}, expected {wanted}")
    if not np.all(np.isfinite(arrays["poses"])) or not np.all(np.isfinite(arrays["stamps"])):
        raise ValueError(f"{path}: poses or stamps contain non-finite values")
    if n > 1 and np.any(np.diff(arrays["stamps"]) <= 0):
        raise ValueError(f"{path}: stamps are not strictly increasing")


def load_recording(directory: str | Path) -> Recording:
    """Read a folder written by ``save_recording``; ValueError naming the file on bad data."""
    directory = Path(directory)
    scene_path, frames_path = directory / SCENE_FILE, directory / FRAMES_FILE
    for path in (scene_path, frames_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (not a recording folder?)")
    scene, intrinsics = _load_meta(scene_path)
    names = ("stamps", "poses", "rgb", "depth", "instance")
    try:
        with np.load(frames_path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in names}
    except KeyError as error:
        raise ValueError(f"{frames_path}: missing array {error}") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ValueError(f"{frames_path}: unreadable ({type(error).__name__}: {error})") from None
    _check_arrays(frames_path, arrays, intrinsics)
    frames = [
        RenderedFrame(rgb=rgb, depth=depth, instance=instance.astype(np.int32, copy=False))
        for rgb, depth, instance in zip(arrays["rgb"], arrays["depth"], arrays["instance"])
    ]
    return Recording(scene=scene, intrinsics=intrinsics, stamps=arrays["stamps"], poses=arrays["poses"], frames=frames)
