"""A bounded hashed voxel grid fusing depth points and point clouds.

Each occupied voxel keeps the running mean of the points and of the colours
that fell in it, a hit count and when it was last updated. Voxels are keyed by
their integer grid index packed into one int64 (21 bits per axis, so +-52 km at
5 cm) and stored sorted by key, which makes an insert a handful of vectorised
numpy calls (``np.unique`` on the new keys, ``np.searchsorted`` into the map)
instead of a Python loop per point. When the map holds more than
``max_voxels``, voxels are evicted, so memory stays bounded however long the
stream runs: first those that hold a single reading and were not updated by the
last ``grace_inserts`` inserts (a stray depth return that no later frame
confirmed), oldest first, then the least recently updated. A noisy camera
leaves tens of thousands of such strays; evicting by age alone dropped whole
well-seen rooms of a three-room map first (docs/PROPOSALS.md, "The voxel cap").
"""
from __future__ import annotations

import numpy as np

_BITS = 21
_OFFSET = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1
_UNCOLOURED_RGB = 128.0


def pack_voxel_keys(indices: np.ndarray) -> np.ndarray:
    """(N, 3) integer voxel indices -> (N,) int64 keys (indices must lie within +-2**20)."""
    shifted = indices.astype(np.int64) + _OFFSET
    return (shifted[:, 0] << (2 * _BITS)) | (shifted[:, 1] << _BITS) | shifted[:, 2]


def unpack_voxel_keys(keys: np.ndarray) -> np.ndarray:
    """(N,) int64 keys -> (N, 3) int64 voxel indices."""
    keys = np.asarray(keys, dtype=np.int64)
    return np.stack([(keys >> (2 * _BITS)) & _MASK, (keys >> _BITS) & _MASK, keys & _MASK], axis=1) - _OFFSET


def _sum_by_voxel(inverse: np.ndarray, values: np.ndarray, n_voxels: int) -> np.ndarray:
    """Per-voxel sums of (N, 3) values (bincount is much faster than np.add.at)."""
    return np.stack(
        [np.bincount(inverse, weights=values[:, axis].astype(np.float64), minlength=n_voxels) for axis in range(3)],
        axis=1,
    )


def voxel_index_valid(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """(N,) bool: the point is finite and its voxel index fits the packed key."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.all(np.abs(np.floor(points / voxel_size)) <= _OFFSET - 1, axis=1)  # NaN compares False


class VoxelMap:
    """Hashed voxel grid of ``voxel_size`` metres holding at most ``max_voxels`` voxels.

    ``max_weight`` caps the weight of a voxel's past in its running means, so a
    voxel still follows a scene that changes after thousands of hits.
    Not thread-safe on its own (SceneMemory locks).
    """

    def __init__(self, voxel_size: float = 0.05, max_voxels: int = 200_000, max_weight: int = 64, grace_inserts: int = 10) -> None:
        if voxel_size <= 0 or max_voxels < 1 or max_weight < 1 or grace_inserts < 0:
            raise ValueError(
                f"VoxelMap: need voxel_size > 0, max_voxels >= 1, max_weight >= 1, grace_inserts >= 0 "
                f"(got {voxel_size}, {max_voxels}, {max_weight}, {grace_inserts})"
            )
        self.voxel_size = float(voxel_size)
        self.max_voxels = int(max_voxels)
        self.max_weight = int(max_weight)
        self.grace_inserts = int(grace_inserts)
        self.clear()

    def clear(self) -> None:
        self._keys = np.zeros(0, dtype=np.int64)
        self._position = np.zeros((0, 3), dtype=np.float64)
        self._rgb = np.zeros((0, 3), dtype=np.float32)
        self._hits = np.zeros(0, dtype=np.int64)
        self._colour_hits = np.zeros(0, dtype=np.int64)
        self._last_stamp = np.zeros(0, dtype=np.float64)
        self._last_insert = np.zeros(0, dtype=np.int64)
        self._inserts = 0

    def insert(self, points: np.ndarray, colors: np.ndarray | None = None, stamp: float | None = None) -> int:
        """Fuse ``points`` (N, 3) in metres with optional uint8 RGB ``colors`` (N, 3).

        Rows with NaN/inf coordinates, or beyond the key range, are ignored.
        ``stamp`` is recorded as the voxels' last-update time (default: the insert count).
        Returns the number of points fused.
        """
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"VoxelMap.insert points: expected (N, 3), got shape {points.shape}")
        if colors is not None:
            colors = np.asarray(colors)
            if colors.shape != points.shape:
                raise ValueError(f"VoxelMap.insert colors: shape {colors.shape} does not match points {points.shape}")
        self._inserts += 1
        stamp = float(self._inserts if stamp is None else stamp)
        valid = voxel_index_valid(points, self.voxel_size)
        if not valid.all():
            points = points[valid]
            colors = None if colors is None else colors[valid]
        indices = np.floor(points / self.voxel_size)
        if len(points) == 0:
            return 0
        new_keys, inverse, counts = np.unique(pack_voxel_keys(indices), return_inverse=True, return_counts=True)
        sums = _sum_by_voxel(inverse, points, len(new_keys))
        rgb_sums = np.zeros((len(new_keys), 3))
        rgb_counts = np.zeros(len(new_keys), dtype=np.int64)
        if colors is not None:
            rgb_sums = _sum_by_voxel(inverse, colors, len(new_keys))
            rgb_counts = counts
        self._merge(new_keys, counts, sums, rgb_counts, rgb_sums, stamp)
        self._evict()
        return len(points)

    def _merge(
        self,
        keys: np.ndarray,
        counts: np.ndarray,
        sums: np.ndarray,
        rgb_counts: np.ndarray,
        rgb_sums: np.ndarray,
        stamp: float,
    ) -> None:
        slots = np.searchsorted(self._keys, keys)
        found = slots < len(self._keys)
        found[found] = self._keys[slots[found]] == keys[found]
        old = slots[found]
        # Existing voxels: running means whose past weighs at most max_weight points.
        weight = np.minimum(self._hits[old], self.max_weight)[:, None]
        n = counts[found][:, None]
        self._position[old] = (self._position[old] * weight + sums[found]) / (weight + n)
        rgb_weight = np.minimum(self._colour_hits[old], self.max_weight)[:, None]
        rgb_n = rgb_counts[found][:, None]
        coloured = rgb_n[:, 0] > 0
        blended = (self._rgb[old] * rgb_weight + rgb_sums[found]) / np.maximum(rgb_weight + rgb_n, 1)
        self._rgb[old[coloured]] = blended[coloured]
        self._hits[old] += counts[found]
        self._colour_hits[old] += rgb_counts[found]
        self._last_stamp[old] = stamp
        self._last_insert[old] = self._inserts
        # New voxels, inserted at their sorted positions.
        new = ~found
        if not new.any():
            return
        at = slots[new]
        c = counts[new]
        rc = rgb_counts[new]
        rgb = np.where(rc[:, None] > 0, rgb_sums[new] / np.maximum(rc, 1)[:, None], _UNCOLOURED_RGB)
        self._keys = np.insert(self._keys, at, keys[new])
        self._position = np.insert(self._position, at, sums[new] / c[:, None], axis=0)
        self._rgb = np.insert(self._rgb, at, rgb.astype(np.float32), axis=0)
        self._hits = np.insert(self._hits, at, c)
        self._colour_hits = np.insert(self._colour_hits, at, rc)
        self._last_stamp = np.insert(self._last_stamp, at, stamp)
        self._last_insert = np.insert(self._last_insert, at, self._inserts)

    def _evict(self) -> None:
        excess = len(self._keys) - self.max_voxels
        if excess <= 0:
            return
        # Unconfirmed strays rank before every other voxel (their age shifted below all ages), oldest first.
        stray = (self._hits <= 1) & (self._last_insert <= self._inserts - self.grace_inserts)
        rank = np.where(stray, self._last_insert - (self._inserts + 1), self._last_insert)
        oldest = np.argpartition(rank, excess - 1)[:excess]
        keep = np.ones(len(self._keys), dtype=bool)
        keep[oldest] = False
        self._keys = self._keys[keep]
        self._position = self._position[keep]
        self._rgb = self._rgb[keep]
        self._hits = self._hits[keep]
        self._colour_hits = self._colour_hits[keep]
        self._last_stamp = self._last_stamp[keep]
        self._last_insert = self._last_insert[keep]

    def points(self, min_hits: int = 1) -> np.ndarray:
        """Mean position of every voxel hit at least ``min_hits`` times, (M, 3) float32."""
        return self._position[self._hits >= min_hits].astype(np.float32)

    def colors(self, min_hits: int = 1) -> np.ndarray:
        """Mean colour (uint8 RGB, grey where never coloured) of the same voxels as :meth:`points`."""
        return np.clip(np.rint(self._rgb[self._hits >= min_hits]), 0, 255).astype(np.uint8)

    def hits(self, min_hits: int = 1) -> np.ndarray:
        return self._hits[self._hits >= min_hits].copy()

    def last_update(self, min_hits: int = 1) -> np.ndarray:
        """Stamp of the last insert that touched each voxel."""
        return self._last_stamp[self._hits >= min_hits].copy()

    def keys(self) -> np.ndarray:
        return self._keys.copy()

    @property
    def nbytes(self) -> int:
        arrays = (self._keys, self._position, self._rgb, self._hits, self._colour_hits, self._last_stamp, self._last_insert)
        return sum(a.nbytes for a in arrays)

    def __len__(self) -> int:
        return len(self._keys)
