"""Surface appearance of the richer worlds: per-scene lighting and procedural material textures.

Both are off unless a scene asks for them (the classic world's objects have no
material and its scenes no lighting, so its pixels stay what they were). A
texture is a brightness factor per pixel, computed from the hit point in the
room frame, so it sticks to the surface as the camera moves: wood has grain
stripes along the part's longest side, fabric and foliage a cell noise, metal
fine brushed lines, paintings soft blotches; glass is a pale sky colour mixed
into the part's colour. Everything is float32 numpy on the pixels that need it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MATERIALS: tuple[str, ...] = (
    "", "wood", "metal", "fabric", "plastic", "leather", "glass", "ceramic", "paper", "paint", "foliage",
)
"""Known materials; the index is the renderer's material code ("" : none, a uniform fill)."""
MATERIAL_CODE = {name: code for code, name in enumerate(MATERIALS)}
_SKY = np.array([175.0, 205.0, 230.0], np.float32)


@dataclass(frozen=True)
class Lighting:
    """One scene's light: ``direction`` (towards the light, room frame), ``intensity`` (a gain on every colour),
    ``ambient`` (the share of light that reaches faces turned away), ``tint`` (RGB gains: warm or cool light)."""

    direction: tuple[float, float, float] = (0.35, 0.55, 1.0)
    intensity: float = 1.0
    ambient: float = 0.3
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def to_dict(self) -> dict:
        return {"direction": list(self.direction), "intensity": self.intensity, "ambient": self.ambient, "tint": list(self.tint)}

    @staticmethod
    def from_dict(data: dict) -> "Lighting":
        return Lighting(
            direction=tuple(float(v) for v in data["direction"]),
            intensity=float(data["intensity"]),
            ambient=float(data["ambient"]),
            tint=tuple(float(v) for v in data["tint"]),
        )


def draw_lighting(rng: np.random.Generator) -> Lighting:
    """A light from above at 35-80 degrees elevation from any side, 0.8-1.15 bright, ambient 0.2-0.45, and a tint
    between warm (incandescent, 0.82 blue) and cool (daylight, 0.9 red)."""
    azimuth, elevation = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(35, 80))
    direction = (np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation))
    warmth = rng.uniform(-1, 1)
    tint = (1.0, 1.0 - 0.04 * abs(warmth), 1.0 - 0.18 * warmth) if warmth > 0 else (1.0 + 0.1 * warmth, 1.0, 1.0)
    return Lighting(
        direction=tuple(round(float(v), 4) for v in direction),
        intensity=round(float(rng.uniform(0.8, 1.15)), 4),
        ambient=round(float(rng.uniform(0.2, 0.45)), 4),
        tint=tuple(round(float(v), 4) for v in tint),
    )


def _cell_noise(points: np.ndarray, cell_m: float, salt: int) -> np.ndarray:
    """Uniform [0, 1) noise that is constant on cubes of ``cell_m`` (a hash of the cube index)."""
    cells = np.floor(points / cell_m).astype(np.int64)
    h = (cells[0] * 73856093) ^ (cells[1] * 19349663) ^ (cells[2] * 83492791) ^ salt
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float32) / 65536.0


def texture_factor(material: np.ndarray, points: np.ndarray, long_axis: np.ndarray) -> np.ndarray:
    """Brightness factor (N,) of hit points (3, N) on parts of the given material codes (N,), whose longest
    axis is ``long_axis`` (N,) (wood grain runs along it)."""
    factor = np.ones(material.shape, np.float32)
    for name, code in MATERIAL_CODE.items():
        mine = material == code
        if not name or not mine.any():
            continue
        p = points[:, mine]
        if name == "wood":
            along = np.take_along_axis(p, long_axis[mine][None], axis=0)[0]
            across = p.sum(axis=0) - along
            grain = 0.5 + 0.5 * np.sin(2 * np.pi * across / 0.045 + 2.0 * np.sin(2 * np.pi * along / 0.6))
            factor[mine] = 0.93 + 0.09 * grain**3 + 0.04 * _cell_noise(p, 0.05, 1)
        elif name in ("fabric", "paper"):
            scale = 0.012 if name == "fabric" else 0.02
            factor[mine] = 0.93 + (0.12 if name == "fabric" else 0.05) * _cell_noise(p, scale, 2)
        elif name == "foliage":
            factor[mine] = 0.7 + 0.45 * _cell_noise(p, 0.035, 3)
        elif name == "leather":
            factor[mine] = 0.9 + 0.1 * _cell_noise(p, 0.04, 4) + 0.04 * _cell_noise(p, 0.008, 5)
        elif name == "metal":
            factor[mine] = 1.08 + 0.08 * np.sin(2 * np.pi * p[2] / 0.006)
        elif name == "paint":
            factor[mine] = 0.7 + 0.3 * _cell_noise(p, 0.11, 6) + 0.25 * _cell_noise(p, 0.045, 7)
        elif name == "ceramic":
            factor[mine] = 1.06
        elif name == "plastic":
            factor[mine] = 1.0 + 0.02 * _cell_noise(p, 0.03, 8)
    return factor


FLOOR_STYLES: dict[str, str] = {
    "living room": "planks", "office": "planks", "bedroom": "carpet", "kitchen": "tiles", "bathroom": "tiles",
}
"""The floor of each room type: wooden planks, a carpet, or tiles with grout lines."""


def floor_factor(points: np.ndarray, style: str) -> np.ndarray:
    """Brightness factor (N,) of floor points (3, N) for a floor style of ``FLOOR_STYLES``."""
    x, y = points[0], points[1]
    if style == "planks":  # 15 cm planks along x, 1.2 m long, staggered, each its own shade, dark joints
        row = np.floor(y / 0.15)
        plank = np.floor(x / 1.2 + 0.37 * row)
        shade = _cell_noise(np.stack([plank, row, np.zeros_like(row)]), 1.0, 11)
        joint = (np.abs(y / 0.15 - np.round(y / 0.15)) < 0.04) | (np.abs(x / 1.2 + 0.37 * row - np.round(x / 1.2 + 0.37 * row)) < 0.006)
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * y / 0.03 + 3.0 * np.sin(2 * np.pi * x / 0.9))
        return np.where(joint, 0.6, 0.88 + 0.16 * shade + 0.05 * grain).astype(np.float32)
    if style == "tiles":  # 30 cm tiles, light grout
        u, v = x / 0.3, y / 0.3
        grout = (np.abs(u - np.round(u)) < 0.03) | (np.abs(v - np.round(v)) < 0.03)
        return np.where(grout, 1.25, 0.95 + 0.08 * _cell_noise(points, 0.3, 12)).astype(np.float32)
    return (0.9 + 0.14 * _cell_noise(points, 0.01, 13)).astype(np.float32)  # carpet


def apply_materials(rgb: np.ndarray, material: np.ndarray, points: np.ndarray, long_axis: np.ndarray) -> np.ndarray:
    """Shaded colours (N, 3) float32 with their textures (``texture_factor``), glass mixed with sky."""
    out = rgb * texture_factor(material, points, long_axis)[:, None]
    glass = material == MATERIAL_CODE["glass"]
    if glass.any():
        out[glass] = 0.45 * out[glass] + 0.55 * _SKY
    return out
