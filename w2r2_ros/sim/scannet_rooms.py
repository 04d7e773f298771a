"""Furnishing a room with the scannet catalogue: a room type, its plausible classes, wall objects, paint.

A room is a living room, bedroom, kitchen, bathroom or office; its type names
the classes it must hold (a bathroom a toilet and a sink) and weights the
others, so a kitchen gets counters and a refrigerator, not a bed. The order
follows how a room is furnished: a door (its swing kept clear), furniture
(supports first, large pieces against the walls), small objects on tables,
desks and counters, then windows with curtains beside them, a shower curtain
along a bathtub, pictures on the free wall, and small floor objects until the
room holds ``SceneConfig.n_objects[0]``: 0-2 pictures, 1-2 windows
(0-1 in a bathroom), curtains beside 60 % of the windows outside bathrooms. Several instances of a class are
common on purpose (spatial relations need distractors).

Each object is painted from its class's plausible colours and materials: a
main colour (what "the brown table" names), a material (its texture) and,
where its shape has parts of another colour (legs, handles, a blanket, a
worktop, the books on a shelf), a second colour.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from w2r2_ros.sim import scannet_shapes as shapes
from w2r2_ros.sim.shapes import rotate_quarter_turns

ROOM_TYPES: dict[str, dict[str, float]] = {
    "living room": {"sofa": 1.4, "chair": 1.4, "table": 1.3, "other furniture": 1.0, "cabinet": 0.8, "bookshelf": 0.8,
                    "lamp": 1.0, "plant": 1.0, "box": 0.6, "trash can": 0.4, "monitor": 0.3, "cup": 0.8, "book": 0.8,
                    "desk": 0.2},
    "bedroom": {"bed": 0.8, "cabinet": 1.2, "other furniture": 1.0, "lamp": 1.0, "chair": 0.8, "desk": 0.5,
                "bookshelf": 0.5, "box": 0.8, "plant": 0.5, "trash can": 0.4, "book": 0.8, "cup": 0.4, "sofa": 0.2},
    "kitchen": {"counter": 1.6, "cabinet": 1.0, "refrigerator": 0.6, "table": 1.0, "chair": 1.6, "sink": 0.5,
                "trash can": 0.8, "cup": 1.2, "box": 0.8, "plant": 0.5, "other furniture": 0.5, "book": 0.3},
    "bathroom": {"toilet": 0.6, "sink": 0.9, "bathtub": 1.5, "cabinet": 1.0, "trash can": 1.0, "box": 0.6,
                 "other furniture": 0.6, "plant": 0.4, "cup": 0.5},
    "office": {"desk": 1.6, "chair": 1.8, "monitor": 1.2, "bookshelf": 1.0, "cabinet": 1.0, "lamp": 0.8,
               "trash can": 0.8, "box": 1.0, "plant": 0.8, "book": 1.0, "cup": 0.8, "table": 0.5, "sofa": 0.3,
               "other furniture": 0.4},
}
"""Relative frequency of each class per room type (wall objects are drawn on their own)."""
MUST_HAVE: dict[str, tuple[str, ...]] = {
    "living room": ("sofa",), "bedroom": ("bed",), "kitchen": ("counter", "refrigerator"),
    "bathroom": ("toilet", "sink"), "office": ("desk", "chair"),
}
_ROOM_TYPE_WEIGHTS = {"living room": 1.0, "bedroom": 1.0, "kitchen": 0.9, "bathroom": 0.7, "office": 1.0}

SUPPORTING: tuple[str, ...] = ("table", "desk", "counter", "cabinet", "other furniture", "bookshelf")
ON_TOP_ONLY: tuple[str, ...] = ("monitor", "cup", "book")
MAY_STAND_ON_TOP: tuple[str, ...] = ("lamp", "box", "plant")
ON_WALL: tuple[str, ...] = ("bed", "sofa", "cabinet", "desk", "bookshelf", "counter", "refrigerator", "toilet", "sink", "bathtub")
ALWAYS_ON_WALL: tuple[str, ...] = ("counter", "refrigerator", "toilet", "bathtub", "bookshelf")
NOT_REPEATED: tuple[str, ...] = ("bed", "refrigerator", "bathtub", "toilet", "sofa")
_FILLERS: tuple[str, ...] = ("box", "trash can", "plant", "chair", "other furniture")

_ANY = ("red", "green", "blue", "yellow", "white", "black", "brown", "grey", "orange", "purple")
_NEUTRAL = ("white", "black", "grey", "brown")
_METAL = ("grey", "black", "white")
# class: (materials, main colours, second colours); a colour repeated is drawn more often.
PAINT: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "cabinet": (("wood", "wood", "plastic"), ("brown", "brown", "white", "white", "grey", "black", "blue", "green"), _METAL),
    "bed": (("wood", "wood", "fabric"), ("brown", "brown", "white", "black", "grey"), _ANY),
    "chair": (("wood", "fabric", "plastic", "leather"), _ANY + ("brown", "black"), _NEUTRAL),
    "sofa": (("fabric", "fabric", "leather"), _ANY + ("grey", "brown"), _NEUTRAL),
    "table": (("wood", "wood", "plastic"), ("brown", "brown", "white", "black", "grey", "orange"), _NEUTRAL),
    "door": (("wood",), ("brown", "brown", "white", "white", "grey"), ("white", "brown", "grey")),
    "window": (("plastic", "wood", "metal"), ("white", "white", "brown", "grey", "black"), ("white",)),
    "bookshelf": (("wood",), ("brown", "brown", "white", "black"), _ANY),
    "picture": (("wood", "metal"), ("black", "brown", "white", "yellow"), _ANY),
    "counter": (("wood", "plastic"), ("white", "white", "brown", "grey", "blue", "green", "black"), ("black", "grey", "white", "brown")),
    "desk": (("wood", "wood", "plastic"), ("brown", "brown", "white", "black", "grey"), _METAL),
    "curtain": (("fabric",), _ANY, ()),
    "refrigerator": (("metal", "plastic"), ("white", "white", "grey", "black"), _METAL),
    "shower curtain": (("plastic",), ("white", "blue", "green", "yellow", "grey", "purple"), ()),
    "toilet": (("ceramic",), ("white", "white", "white", "grey", "black"), ("white", "black", "brown")),
    "sink": (("ceramic",), ("white", "white", "grey"), ("white", "brown", "grey", "black")),
    "bathtub": (("ceramic",), ("white", "white", "grey", "blue"), ()),
    "other furniture": (("wood", "fabric", "leather", "plastic"), _ANY, _NEUTRAL),
    "lamp": (("fabric",), ("white", "yellow", "orange", "black", "grey", "red", "blue"), _METAL),
    "box": (("paper", "paper", "plastic"), ("brown", "brown", "white", "red", "blue", "green", "yellow", "grey"), ()),
    "plant": (("foliage",), ("green", "green", "green", "yellow", "red", "purple"), ("white", "brown", "orange", "black", "grey")),
    "monitor": (("plastic",), ("black", "black", "grey", "white"), ("black",)),
    "trash can": (("plastic", "metal"), _ANY, ()),
    "cup": (("ceramic",), _ANY, ()),
    "book": (("paper",), _ANY, ("white",)),
}


def _pick(rng: np.random.Generator, names: tuple[str, ...]) -> str:
    return names[int(rng.integers(len(names)))]


class Painter:
    """Draws an object's (colour, material, second colour) from its class's palette; another instance of a class
    copies an earlier instance's colour with ``same_color_probability`` (the classic world's rule)."""

    def __init__(self, rng: np.random.Generator, used: dict[str, list[str]], same_color_probability: float) -> None:
        self.rng, self.used, self.same = rng, used, same_color_probability

    def __call__(self, category: str) -> tuple[str, str, str]:
        materials, mains, seconds = PAINT[category]
        previous = self.used.setdefault(category, [])
        if previous and self.rng.random() < self.same:
            color = _pick(self.rng, tuple(previous))
        else:
            color = _pick(self.rng, mains)
        previous.append(color)
        material = _pick(self.rng, materials)
        second = _pick(self.rng, tuple(c for c in seconds if c != color) or seconds) if seconds else ""
        return color, material, second


def draw_room_type(rng: np.random.Generator) -> str:
    names = list(_ROOM_TYPE_WEIGHTS)
    p = np.array([_ROOM_TYPE_WEIGHTS[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def draw_classes(rng: np.random.Generator, room_type: str, n: int, config: Any) -> list[str]:
    """``n`` classes for a room of this type: its must-haves, often one class repeated 2-4 times, then draws by
    weight; supports come first so that small objects find a top."""
    weights = ROOM_TYPES[room_type]
    names = list(weights)
    p = np.array([weights[c] for c in names])
    p /= p.sum()
    chosen = list(MUST_HAVE[room_type])
    if rng.random() < config.repeat_probability:
        repeatable = [c for c in names if c not in NOT_REPEATED]
        q = np.array([weights[c] for c in repeatable])
        chosen += [repeatable[int(rng.choice(len(repeatable), p=q / q.sum()))]] * int(rng.integers(2, 5))
    for _ in range(20 * n):
        if len(chosen) >= n:
            break
        category = names[int(rng.choice(len(names), p=p))]
        limit = 1 if category in NOT_REPEATED and category != "sofa" else config.max_per_category
        if chosen.count(category) < limit:
            chosen.append(category)
    if any(c in ("monitor",) for c in chosen) and not any(c in ("desk", "table") for c in chosen):
        chosen.append("desk")
    first = ("bed", "sofa", "counter", "refrigerator", "bathtub", "toilet", "sink", "desk", "table", "bookshelf", "cabinet")
    order = {c: i for i, c in enumerate(first)}
    return sorted(chosen, key=lambda c: order.get(c, len(first)))


def _place_door(layout: Any, rng: np.random.Generator) -> None:
    """A door on a wall, its swing (0.9 m in front of it) kept clear of furniture."""
    shape, base = shapes.door(rng, layout.room[2])
    door = layout.place_on_wall("door", shape, base)
    if door is None:
        return
    lo, hi = door.box.min_corner[:2].copy(), door.box.max_corner[:2].copy()
    centre = np.zeros(2) if layout.offset is None else np.asarray(layout.offset, dtype=np.float64)
    axis = int(np.argmin(hi - lo))  # across the wall
    if door.box.center[axis] > centre[axis]:
        lo[axis] -= 0.9
    else:
        hi[axis] += 0.9
    layout.keep_clear(lo, hi)


def _wall_of(layout: Any, obj: Any) -> tuple[int, float]:
    """The wall (0-3, as ``place_on_wall``) a wall object touches and its position along it."""
    centre = np.zeros(2) if layout.offset is None else np.asarray(layout.offset, dtype=np.float64)
    rel = obj.box.center[:2] - centre
    full = layout.room[:2] / 2
    gaps = [rel[1] - obj.box.size[1] / 2 + full[1], full[0] - rel[0] - obj.box.size[0] / 2,
            full[1] - rel[1] - obj.box.size[1] / 2, rel[0] - obj.box.size[0] / 2 + full[0]]
    wall = int(np.argmin(np.abs(gaps)))
    return wall, float(rel[0] if wall in (0, 2) else rel[1])


def _place_window_and_curtains(layout: Any, rng: np.random.Generator, curtains: bool) -> None:
    shape, base = shapes.window(rng, layout.room[2])
    window = layout.place_on_wall("window", shape, base)
    if window is None or not curtains:
        return
    wall, along = _wall_of(layout, window)
    half = (window.box.size[0] if wall in (0, 2) else window.box.size[1]) / 2
    top = min(window.box.max_corner[2] + rng.uniform(0.08, 0.2), layout.room[2] - 0.02)
    bottom = 0.02 if rng.random() < 0.6 else window.box.min_corner[2] - 0.1
    width = rng.uniform(0.25, 0.5)
    for side in (-1, 1):  # the wall frame's "along" axis runs with room x (walls 0, 2) or y (walls 1, 3)
        panel = shapes.curtain(rng, width, top, bottom)
        layout.place_on_wall("curtain", panel, bottom, wall, along + side * (half + width / 2 + 0.04))


def _place_shower_curtain(layout: Any, rng: np.random.Generator, tub: Any) -> None:
    """A shower curtain along the bathtub's side that faces away from the wall, inside the rim, from the rod down."""
    size, centre = tub.box.size, tub.box.center
    across = int(np.argmin(size[:2]))
    room_centre = np.zeros(2) if layout.offset is None else np.asarray(layout.offset, dtype=np.float64)
    front = 1.0 if centre[across] < room_centre[across] else -1.0
    top, bottom = min(2.0, layout.room[2] - 0.05), tub.box.max_corner[2] + 0.05
    panel = shapes.shower_curtain(rng, float(size[1 - across]) - 0.04, top, bottom)
    # the panel's length (local x) runs along the tub
    panel = rotate_quarter_turns(panel, 0 if across == 1 else 1)
    at = centre[:2].copy()
    at[across] += front * (size[across] / 2 - 0.06)
    layout.add_object("shower curtain", panel, at, bottom)


def furnish(layout: Any, rng: np.random.Generator, config: Any, name: str) -> str:
    """Furnish one room (``world._RoomLayout``) with the scannet catalogue; returns its room type."""
    layout.shapes = shapes.SHAPES
    layout.supporting = SUPPORTING
    layout.wall_categories = ON_WALL
    layout.always_on_wall = ALWAYS_ON_WALL
    layout.paint = Painter(rng, layout.used_colors, config.same_color_probability)
    room_type = draw_room_type(rng)
    first = len(layout.objects)
    if rng.random() < 0.9:
        _place_door(layout, rng)
    n = int(rng.integers(config.n_objects[0], config.n_objects[1] + 1))
    n_wall = int(rng.integers(1, 5))
    for category in draw_classes(rng, room_type, max(n - n_wall, 3), config):
        on_top = category in ON_TOP_ONLY or (category in MAY_STAND_ON_TOP and rng.random() < config.on_top_probability)
        if category == "sink" and room_type == "kitchen":
            on_top = True
        if on_top and layout.place_on_top(category, ("desk", "table") if category == "monitor" else None):
            continue
        if category not in ON_TOP_ONLY and not (category == "sink" and room_type == "kitchen"):
            layout.place_on_floor(category)
    for _ in range(int(rng.integers(0, 3)) if room_type == "bathroom" else int(rng.integers(1, 3))):
        _place_window_and_curtains(layout, rng, room_type != "bathroom" and rng.random() < 0.6)
    tubs = [o for o in layout.objects[first:] if o.category == "bathtub"]
    if tubs and rng.random() < 0.85:
        _place_shower_curtain(layout, rng, tubs[0])
    for _ in range(int(rng.integers(0, 3))):
        shape, base = shapes.picture(rng, layout.room[2])
        layout.place_on_wall("picture", shape, base)
    for _ in range(10 * config.n_objects[0]):
        if len(layout.objects) - first >= config.n_objects[0]:
            break
        layout.place_on_floor(_FILLERS[int(rng.integers(len(_FILLERS)))])
    if len(layout.objects) - first < config.n_objects[0]:
        raise RuntimeError(f"{name}: could only place {len(layout.objects) - first} objects")
    return room_type
