"""How far a depth camera's readings scatter along the ray: sigma(z) = base_m + per_m2 (z - offset_m)^2.

Structured-light and active-stereo cameras measure depth from disparity, so
their axial noise grows with the square of the range; Nguyen, Izadi and Lovell
(2012, "Modeling Kinect sensor noise for improved 3D reconstruction and
tracking") measured base 1.2 mm, 1.9 mm/m^2 and offset 0.4 m for the Kinect,
the defaults here (the SUN3D and ScanNet recordings are of such sensors). Fusion
uses it to tell a reading that agrees with a neighbour (the same surface,
within a few sigma) from one that no neighbour confirms (a stray return,
``depth_edges.drop_depth_speckles``). A camera with another noise sets its own
values (``SceneMemoryConfig.depth_noise``): a model too small drops readings of
real surfaces that its noise scatters apart, one too large keeps more strays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthNoise:
    base_m: float = 0.0012
    per_m2: float = 0.0019
    offset_m: float = 0.4
    # Readings within this many sigmas of each other are taken as one surface.
    agree_sigmas: float = 3.0

    def sigma(self, depth: np.ndarray) -> np.ndarray:
        """Axial standard deviation (metres) of a reading at ``depth`` (metres)."""
        z = np.asarray(depth, dtype=np.float32)
        return np.float32(self.base_m) + np.float32(self.per_m2) * (z - np.float32(self.offset_m)) ** 2

    def tolerance(self, depth: np.ndarray) -> np.ndarray:
        """How far two readings near ``depth`` may differ and still be one surface: ``agree_sigmas`` sigmas."""
        return np.float32(self.agree_sigmas) * self.sigma(depth)
