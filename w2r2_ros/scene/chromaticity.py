"""Chromaticity: colour without brightness, shared by the part grouping and the proposals' colour splits."""
from __future__ import annotations

import numpy as np


def chromaticity(colors: np.ndarray) -> np.ndarray:
    """(r, g) / (r + g + b) of RGB colours (..., 3) in 0..255: colour without brightness, so the faces of one
    object, lit differently, and its darker parts (legs, a lamp's pole) agree. One is added to every channel
    so that black is grey, not undefined."""
    rgb = np.asarray(colors, dtype=np.float64) + 1.0
    return rgb[..., :2] / rgb.sum(axis=-1, keepdims=True)
