"""Floor plans of one to three connected rooms: the rooms' floor rectangles and the solid walls between them.

A plan lives in the building's own frame (x, y on the floor, z up, floor at
z = 0) and fills its bounding box, the *shell*, which the renderer casts as one
closed box. Whatever part of the shell no room covers is solid: the walls
between rooms, and filler where rooms of different depth leave a notch. That
solid is cut into boxes on the grid of every room and doorway edge, so the
renderer ray-casts it exactly like furniture parts; a doorway cell keeps only
its lintel (door height to ceiling). Rooms are laid out in a row along x, or
as an L (a third room behind one of the first two, along y).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2r2_ros.geometry.boxes import Box3D


@dataclass(frozen=True)
class Doorway:
    """An opening through the wall between two rooms: its floor rectangle ``lo, hi`` (x, y) and height."""

    lo: np.ndarray
    hi: np.ndarray
    height: float


@dataclass(frozen=True)
class FloorPlan:
    """Rooms as floor rectangles (R, 4) ``[x_lo, y_lo, x_hi, y_hi]``, doorways, and the solid boxes between rooms."""

    rooms: np.ndarray
    doorways: list[Doorway]
    structure: list[Box3D]
    height: float

    def shell(self) -> tuple[np.ndarray, np.ndarray]:
        """Floor-plane bounds (lo, hi) of the box that encloses every room."""
        return self.rooms[:, :2].min(axis=0), self.rooms[:, 2:].max(axis=0)


@dataclass(frozen=True)
class FloorPlanConfig:
    """Sizes of the walls and doorways between rooms (metres)."""

    wall_thickness_m: tuple[float, float] = (0.1, 0.2)
    door_width_m: tuple[float, float] = (0.8, 1.1)
    door_height_m: tuple[float, float] = (2.0, 2.15)
    door_margin_m: float = 0.3  # free wall beside a doorway, to the rooms' corners
    l_shape_probability: float = 0.5  # for three rooms: an L instead of a row


def _door_along(
    rng: np.random.Generator, config: FloorPlanConfig, axis: int, gap: tuple[float, float], span: tuple[float, float], height: float
) -> Doorway:
    """A doorway through the wall gap ``gap`` (along ``axis``), placed somewhere on the shared ``span`` of the other axis."""
    width = rng.uniform(*config.door_width_m)
    free = (span[0] + config.door_margin_m + width / 2, span[1] - config.door_margin_m - width / 2)
    if free[0] > free[1]:
        raise ValueError(f"rooms share only {span[1] - span[0]:.2f} m of wall, too little for a doorway")
    centre = rng.uniform(*free)
    lo, hi = np.zeros(2), np.zeros(2)
    lo[axis], hi[axis] = gap
    lo[1 - axis], hi[1 - axis] = centre - width / 2, centre + width / 2
    return Doorway(lo=lo, hi=hi, height=min(rng.uniform(*config.door_height_m), height - 0.1))


def _solid_between(rooms: np.ndarray, doorways: list[Doorway], height: float) -> list[Box3D]:
    """Boxes filling the shell wherever no room is: full height, or a lintel above a doorway."""
    xs = np.unique(np.concatenate([rooms[:, [0, 2]].ravel(), [d.lo[0] for d in doorways], [d.hi[0] for d in doorways]]))
    ys = np.unique(np.concatenate([rooms[:, [1, 3]].ravel(), [d.lo[1] for d in doorways], [d.hi[1] for d in doorways]]))
    boxes = []
    for x0, x1 in zip(xs[:-1], xs[1:]):
        for y0, y1 in zip(ys[:-1], ys[1:]):
            mid = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            if np.any(np.all((mid >= rooms[:, :2]) & (mid <= rooms[:, 2:]), axis=1)):
                continue
            door = next((d for d in doorways if np.all(mid >= d.lo) and np.all(mid <= d.hi)), None)
            z0 = 0.0 if door is None else door.height
            boxes.append(Box3D(center=np.array([mid[0], mid[1], (z0 + height) / 2]), size=np.array([x1 - x0, y1 - y0, height - z0])))
    return boxes


def make_floor_plan(
    rng: np.random.Generator, room_sizes: list[tuple[float, float]], height: float, config: FloorPlanConfig = FloorPlanConfig()
) -> FloorPlan:
    """Connect rooms of the given floor sizes (x, y) with walls and doorways, the shell centred on the origin.

    One room gives the plain room (no structure). Two rooms stand in a row along
    x; three in a row or, with ``config.l_shape_probability``, as an L. Each
    further room is aligned with one side of its neighbour, so rooms of
    different depth leave a solid notch.
    """
    if not 1 <= len(room_sizes) <= 3:
        raise ValueError(f"a floor plan has 1 to 3 rooms, got {len(room_sizes)}")
    first_x, first_y = room_sizes[0]
    rooms = [np.array([0.0, 0.0, first_x, first_y])]
    doorways: list[Doorway] = []
    l_shape = len(room_sizes) == 3 and rng.random() < config.l_shape_probability
    for k, (size_x, size_y) in enumerate(room_sizes[1:], start=1):
        wall = rng.uniform(*config.wall_thickness_m)
        if l_shape and k == 2:  # behind (+y of) one of the first two rooms, as wide as it
            host = rooms[int(rng.integers(2))]
            y0 = host[3] + wall
            room = np.array([host[0], y0, host[2], y0 + size_y])
            doorways.append(_door_along(rng, config, 1, (host[3], y0), (host[0], host[2]), height))
        else:  # beside (+x of) the previous room, aligned with its low or high y side
            host = rooms[-1]
            x0 = host[2] + wall
            y0 = host[1] if rng.random() < 0.5 else host[3] - size_y
            room = np.array([x0, y0, x0 + size_x, y0 + size_y])
            shared = (max(host[1], room[1]), min(host[3], room[3]))
            doorways.append(_door_along(rng, config, 0, (host[2], x0), shared, height))
        rooms.append(room)
    rooms_array = np.stack(rooms)
    centre = (rooms_array[:, :2].min(axis=0) + rooms_array[:, 2:].max(axis=0)) / 2
    rooms_array -= np.tile(centre, 2)
    doorways = [Doorway(lo=d.lo - centre, hi=d.hi - centre, height=d.height) for d in doorways]
    return FloorPlan(rooms=rooms_array, doorways=doorways, structure=_solid_between(rooms_array, doorways, height), height=height)
