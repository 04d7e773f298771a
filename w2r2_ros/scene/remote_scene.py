"""The scene as a grounding node in another process sees it: keyframes and proposals that arrived by message.

The scene memory node publishes every new keyframe once (reliable,
transient-local, so a grounding node that starts later still gets the buffer)
and its proposals with the number of keyframes it holds. ``RemoteScene`` keeps
the newest of them in arrival order and trims to that number whenever proposals
arrive, so evictions and resets on the scene memory side (``num_keyframes``
falls to 0) reach it without a message of their own. Thread-safe; no rclpy.
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np

from w2r2_ros.scene.keyframes import Keyframe
from w2r2_ros.scene.memory import SceneSnapshot
from w2r2_ros.scene.proposals import Proposal


class RemoteScene:
    """Keyframes and proposals received from a scene memory node; ``snapshot()`` like ``SceneMemory``'s."""

    def __init__(self, max_keyframes: int) -> None:
        self._lock = threading.Lock()
        self._keyframes: deque[Keyframe] = deque(maxlen=max_keyframes)
        self._proposals: tuple[Proposal, ...] = ()
        self._stamp: float | None = None
        self._n_voxels = 0

    def add_keyframe(self, keyframe: Keyframe) -> None:
        with self._lock:
            self._keyframes.append(keyframe)

    def set_proposals(self, proposals: tuple[Proposal, ...], num_keyframes: int, n_voxels: int, stamp: float | None) -> None:
        """The scene memory's proposals and how many keyframes it holds now (older ones here are dropped)."""
        with self._lock:
            while len(self._keyframes) > num_keyframes:
                self._keyframes.popleft()
            self._proposals = tuple(proposals)
            self._n_voxels = int(n_voxels)
            self._stamp = stamp

    def reset(self) -> None:
        with self._lock:
            self._keyframes.clear()
            self._proposals = ()
            self._n_voxels = 0
            self._stamp = None

    def snapshot(self, include_cloud: bool = True) -> SceneSnapshot:
        """Keyframes and proposals; the fused cloud is never here (it stays with the scene memory node)."""
        empty_points, empty_colors = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
        with self._lock:
            return SceneSnapshot(tuple(self._keyframes), self._proposals, empty_points, empty_colors,
                                 self._stamp, self._n_voxels)
