"""Camera paths through a synthetic room, like a person walking around it with a handheld RGB-D camera."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2r2_ros.geometry.transforms import look_at, make_transform
from w2r2_ros.sim.world import SceneSpec, scene_rng

_TRAJECTORY_STREAM = 1  # random stream of scene_rng reserved for trajectories


@dataclass(frozen=True)
class TrajectoryConfig:
    """An elliptic loop around the room centre at eye height, looking inwards.

    ``radius_fraction``: the loop's radii as a fraction of the half room size.
    The look-at point lies beyond the room centre, ``target_beyond_centre``
    times the camera's offset from it, and wanders ``target_jitter_m`` (x, y)
    so views are not all centred on one point. ``clearance_m``: minimum
    distance from the camera to any object box (the loop is pulled inwards there).
    """

    radius_fraction: tuple[float, float] = (0.45, 0.7)
    height_m: tuple[float, float] = (1.3, 1.6)
    height_jitter_m: float = 0.05
    radial_jitter_m: float = 0.1
    target_height_m: tuple[float, float] = (0.4, 0.8)
    target_beyond_centre: tuple[float, float] = (0.2, 0.8)
    target_jitter_m: float = 0.4
    sweep_deg: float = 360.0
    clearance_m: float = 0.25
    wall_margin_m: float = 0.3


def _clear_of_objects(eye: np.ndarray, boxes: np.ndarray, clearance: float) -> bool:
    if len(boxes) == 0:
        return True
    lo = boxes[:, :3] - boxes[:, 3:] / 2 - clearance
    hi = boxes[:, :3] + boxes[:, 3:] / 2 + clearance
    return not np.any(np.all((eye >= lo) & (eye <= hi), axis=1))


def orbit_trajectory(
    scene: SceneSpec, n_frames: int, seed: int = 0, config: TrajectoryConfig = TrajectoryConfig()
) -> list[np.ndarray]:
    """``n_frames`` camera-to-map poses (4x4, optical frame) on one loop around each room.

    Over a full sweep every object is seen from several sides. Deterministic
    from ``(scene.scene_id, seed)``. Where the loop would pass through an
    object (a floor lamp taller than eye height), that pose is pulled towards
    the room centre until the camera keeps ``clearance_m`` from every box. In a
    building of several rooms the frames are shared out between the rooms in
    order, one loop each (the camera is carried through the doorway between
    loops). Poses are made in the room frame and turned into the map by the
    scene's yaw.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    rng = scene_rng(scene.scene_id, seed, _TRAJECTORY_STREAM)
    boxes = scene.local_boxes()
    if scene.rooms is None:
        poses = _room_loop(rng, np.asarray(scene.room_size[:2], dtype=np.float64) / 2, n_frames, scene, boxes, config)
    else:
        poses = []
        for rect, count in zip(scene.room_rects(), np.array_split(np.arange(n_frames), len(scene.room_rects()))):
            centre = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2, 0.0])
            centred = np.concatenate([boxes[:, :3] - centre, boxes[:, 3:]], axis=1)
            loop = _room_loop(rng, (rect[2:] - rect[:2]) / 2, len(count), scene, centred, config)
            poses += [make_transform(pose[:3, :3], pose[:3, 3] + centre) for pose in loop]
    if scene.yaw_deg != 0.0:
        room_to_map = scene.room_to_map()
        poses = [room_to_map @ pose for pose in poses]
    return poses


def _room_loop(
    rng: np.random.Generator,
    half: np.ndarray,
    n_frames: int,
    scene: SceneSpec,
    boxes: np.ndarray,
    config: TrajectoryConfig,
) -> list[np.ndarray]:
    """One loop of poses around the origin in a room of half-size ``half`` (x, y); ``boxes`` relative to the room's centre."""
    if n_frames == 0:
        return []
    radii = half * rng.uniform(*config.radius_fraction, size=2)
    height = rng.uniform(*config.height_m)
    start = rng.uniform(0, 2 * np.pi)
    direction = rng.choice([-1.0, 1.0])
    sweep = np.deg2rad(config.sweep_deg)
    room_top = float(scene.room_size[2])

    poses = []
    for k in range(n_frames):
        angle = start + direction * sweep * k / n_frames
        radial = np.array([np.cos(angle), np.sin(angle)])
        ring = radii * radial + rng.uniform(-1, 1) * config.radial_jitter_m * radial
        z = np.clip(height + rng.uniform(-1, 1) * config.height_jitter_m, 0.3, room_top - 0.3)
        eye = np.array([ring[0], ring[1], z])
        for scale in np.linspace(1.0, 0.2, 9):
            candidate = np.array([ring[0] * scale, ring[1] * scale, z])
            if _clear_of_objects(candidate, boxes, config.clearance_m):
                eye = candidate
                break
        eye[:2] = np.clip(eye[:2], -half + config.wall_margin_m, half - config.wall_margin_m)
        # Look through the centre at the far side: a shallow pitch keeps far walls (and the objects
        # along them) in view instead of staring down at the middle of the floor.
        beyond = -eye[:2] * rng.uniform(*config.target_beyond_centre)
        target = np.append(
            beyond + rng.uniform(-1, 1, size=2) * config.target_jitter_m, rng.uniform(*config.target_height_m)
        )
        if np.linalg.norm(target[:2] - eye[:2]) < 0.5:  # never look straight down
            target[:2] = eye[:2] - 0.8 * radial
        poses.append(look_at(eye, target))
    return poses
