"""Keyframes: the short "scene video" the grounding model reads.

W2R2.md: one sample is K keyframes (RGB, depth, intrinsics, camera-to-world
pose). A frame becomes a keyframe when the camera moved enough, or when enough
time passed, so that the K frames kept cover the scene rather than K copies of
the same view. Only the newest ``max_keyframes`` are kept (bounded memory: at
K = 32 and 640x480, about 40 MB).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import motion_between


def _frozen_copy(array: np.ndarray, dtype: type) -> np.ndarray:
    copy = np.array(array, dtype=dtype, copy=True)
    copy.setflags(write=False)
    return copy


@dataclass(frozen=True)
class Keyframe:
    """One keyframe; its arrays are private read-only copies, so it can be shared across threads."""

    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    cam_to_world: np.ndarray

    @staticmethod
    def create(
        stamp: float, rgb: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics, cam_to_world: np.ndarray
    ) -> "Keyframe":
        """Copy and check the inputs: rgb uint8 (H, W, 3), depth float (H, W) metres, pose 4x4."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"keyframe rgb: expected (H, W, 3), got shape {rgb.shape}")
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f"keyframe depth: shape {depth.shape} does not match rgb {rgb.shape[:2]}")
        if depth.shape != (intrinsics.height, intrinsics.width):
            raise ValueError(
                f"keyframe intrinsics: {intrinsics.height}x{intrinsics.width} do not match the image {depth.shape}"
            )
        if np.shape(cam_to_world) != (4, 4):
            raise ValueError(f"keyframe cam_to_world: expected 4x4, got shape {np.shape(cam_to_world)}")
        return Keyframe(
            stamp=float(stamp),
            rgb=_frozen_copy(rgb, np.uint8),
            depth=_frozen_copy(depth, np.float32),
            intrinsics=intrinsics,
            cam_to_world=_frozen_copy(cam_to_world, np.float64),
        )


@dataclass(frozen=True)
class KeyframePolicy:
    """When a new frame is worth keeping: moved ``min_translation_m`` or turned ``min_rotation_deg``
    since the last keyframe, or ``max_interval_s`` passed (so a static camera still refreshes its view)."""

    min_translation_m: float = 0.25
    min_rotation_deg: float = 15.0
    max_interval_s: float = 5.0

    def is_keyframe(self, last: Keyframe | None, stamp: float, cam_to_world: np.ndarray) -> bool:
        if last is None:
            return True
        if stamp - last.stamp >= self.max_interval_s:
            return True
        translation, rotation = motion_between(last.cam_to_world, np.asarray(cam_to_world, dtype=np.float64))
        return translation >= self.min_translation_m or rotation >= self.min_rotation_deg


class KeyframeBuffer:
    """The newest ``max_keyframes`` keyframes, oldest first. Not thread-safe on its own (SceneMemory locks)."""

    def __init__(self, max_keyframes: int = 32) -> None:
        if max_keyframes < 1:
            raise ValueError(f"max_keyframes must be >= 1, got {max_keyframes}")
        self._frames: deque[Keyframe] = deque(maxlen=max_keyframes)

    @property
    def max_keyframes(self) -> int:
        return int(self._frames.maxlen or 0)

    def add(self, keyframe: Keyframe) -> None:
        self._frames.append(keyframe)

    @property
    def last(self) -> Keyframe | None:
        return self._frames[-1] if self._frames else None

    def keyframes(self) -> tuple[Keyframe, ...]:
        """An immutable view of the current keyframes (the Keyframe arrays themselves are read-only)."""
        return tuple(self._frames)

    def clear(self) -> None:
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[Keyframe]:
        return iter(tuple(self._frames))
