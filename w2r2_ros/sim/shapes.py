"""Objects as a few axis-aligned box parts in their own frame, and the moves that place them in a room.

A shape's parts are given relative to its footprint centre on z = 0, its front
is +y and its back -y (a wall object's back touches the wall). Parts stay
axis-aligned under quarter turns, so the renderer can ray-cast them exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2r2_ros.geometry.boxes import Box3D

MAIN, SECOND = 0, 1
"""Colour slot of a part: the object's colour or its second colour (two-tone objects)."""


@dataclass(frozen=True)
class Shape:
    """An object in its local frame: parts (center, size), a brightness tone per part, and optionally per part
    the colour slot (``MAIN``/``SECOND``) and a material that overrides the object's ("": the object's)."""

    parts: list[tuple[np.ndarray, np.ndarray]]
    tones: tuple[float, ...]
    slots: tuple[int, ...] = ()
    materials: tuple[str, ...] = ()

    def size(self) -> np.ndarray:
        lo = np.min([c - s / 2 for c, s in self.parts], axis=0)
        hi = np.max([c + s / 2 for c, s in self.parts], axis=0)
        return hi - lo


def part(center: tuple[float, float, float], size: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(center, dtype=np.float64), np.array(size, dtype=np.float64)


def legs(width: float, depth: float, height: float, leg: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Four square legs of side ``leg`` at the corners of a ``width`` x ``depth`` footprint, ``height`` tall."""
    dx, dy = width / 2 - leg / 2, depth / 2 - leg / 2
    return [part((sx * dx, sy * dy, height / 2), (leg, leg, height)) for sx in (-1, 1) for sy in (-1, 1)]


def rotate_quarter_turns(shape: Shape, quarter_turns: int) -> Shape:
    """Yaw the shape by a multiple of 90 degrees about z (parts stay axis-aligned)."""
    parts = []
    for center, size in shape.parts:
        c, s = center.copy(), size.copy()
        for _ in range(quarter_turns % 4):
            c = np.array([-c[1], c[0], c[2]])
            s = np.array([s[1], s[0], s[2]])
        parts.append((c, s))
    return Shape(parts, shape.tones, shape.slots, shape.materials)


def place(shape: Shape, footprint_center: np.ndarray, base_z: float) -> list[Box3D]:
    """The parts as boxes with the shape's footprint centred on ``footprint_center`` and its bottom at ``base_z``."""
    offset = np.array([footprint_center[0], footprint_center[1], base_z])
    lo = np.min([c - s / 2 for c, s in shape.parts], axis=0)
    hi = np.max([c + s / 2 for c, s in shape.parts], axis=0)
    shift = offset - np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    return [Box3D(center=c + shift, size=s.copy()) for c, s in shape.parts]
