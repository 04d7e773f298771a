"""Procedural indoor rooms: a floor, walls and 5-20 furniture objects per room, built from boxes.

Every object is a few axis-aligned box parts, so categories differ in shape and
size (a table is a top on four legs, a lamp a base, pole and shade) and the
renderer can ray-cast them exactly. Several instances of one category are
common on purpose: grounding queries such as "the chair left of the bed" only
need spatial reasoning when the category alone does not identify the target
(W2R2.md: the model must learn *where*, not only *what*).

What a robot meets and the default room does not have is switchable in
``SceneConfig`` (all off by default, so the old world is reproduced bit for
bit): a room yaw in the map, two or three rooms joined by doorways
(``floorplan``), and furniture that touches (chairs tucked under tables,
furniture flush with walls and against each other).

Frames: the *room frame* has z up, floor at z = 0, the building's bounding box
centred on the origin, walls along x and y; everything is generated there
(``ObjectSpec.box``, parts). The ``map`` frame is the room frame turned by
``SceneSpec.yaw_deg`` about z (``room_to_map``). A scene is a pure function of
``(scene_id, seed, config)``.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.sim import scannet_rooms
from w2r2_ros.sim.appearance import Lighting, draw_lighting
from w2r2_ros.sim.floorplan import FloorPlanConfig, make_floor_plan
from w2r2_ros.sim.scannet_shapes import SCANNET_CATEGORIES
from w2r2_ros.sim.shapes import SECOND
from w2r2_ros.sim.shapes import Shape as _Shape
from w2r2_ros.sim.shapes import legs as _legs
from w2r2_ros.sim.shapes import part as _part
from w2r2_ros.sim.shapes import place as _place
from w2r2_ros.sim.shapes import rotate_quarter_turns as _rotate_quarter_turns

CATEGORIES: tuple[str, ...] = (
    "chair",
    "table",
    "sofa",
    "bed",
    "lamp",
    "cabinet",
    "box",
    "plant",
    "monitor",
    "trash can",
)

CATALOGUES: tuple[str, ...] = ("classic", "scannet")
"""The generator's object catalogues (``SceneConfig.catalogue``): ``classic``, the ten categories above as
uniform coloured furniture; ``scannet``, ScanNet's 18 benchmark classes and seven small objects with textured,
two-tone materials, wall objects and room types, under a light that varies per scene (``scannet_rooms``)."""


def catalogue_categories(name: str) -> tuple[str, ...]:
    """The class names a catalogue's scenes use, in a fixed order (a dataset's category list)."""
    if name == "classic":
        return CATEGORIES
    if name == "scannet":
        return SCANNET_CATEGORIES
    raise ValueError(f"unknown catalogue {name!r} (known: {', '.join(CATALOGUES)})")


COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "green": (50, 150, 60),
    "blue": (40, 80, 200),
    "yellow": (230, 200, 40),
    "white": (235, 235, 235),
    "black": (30, 30, 30),
    "brown": (120, 75, 40),
    "grey": (128, 128, 128),
    "orange": (240, 130, 30),
    "purple": (130, 50, 160),
}

# Categories that may stand on a table or cabinet top; a monitor never stands on the floor.
SUPPORTED_CATEGORIES: tuple[str, ...] = ("monitor", "lamp", "box", "plant")
SUPPORTING_CATEGORIES: tuple[str, ...] = ("table", "cabinet")
# Large furniture is usually pushed against a wall, which also leaves the middle of the room free.
WALL_CATEGORIES: tuple[str, ...] = ("bed", "sofa", "cabinet")

# Relative frequency of each category when a scene draws its objects.
_CATEGORY_WEIGHTS: dict[str, float] = {
    "chair": 1.6,
    "table": 1.3,
    "sofa": 0.7,
    "bed": 0.5,
    "lamp": 1.0,
    "cabinet": 1.0,
    "box": 1.2,
    "plant": 1.0,
    "monitor": 0.8,
    "trash can": 0.9,
}


@dataclass(frozen=True)
class ObjectSpec:
    """One object: its ground-truth box is the tight axis-aligned box of its parts.

    ``part_tones`` scales the object colour per part (legs, poles and pots are
    darker) so parts stay distinguishable in the image. ``support_id`` is the
    object this one stands on (None: the floor). The scannet catalogue adds a
    ``material`` (wood, metal, fabric, ...: the renderer's texture), a
    ``second_color`` (a ``COLORS`` name) that the parts listed in
    ``second_parts`` wear (legs, handles, a blanket, a worktop), and per part a
    material of its own where it differs (``part_materials``, "" the object's).
    The classic world leaves them empty, and its dicts keep their old keys.
    """

    object_id: int
    category: str
    color_name: str
    rgb: tuple[int, int, int]
    box: Box3D
    parts: list[Box3D]
    part_tones: tuple[float, ...] = ()
    support_id: int | None = None
    material: str = ""
    second_color: str = ""
    second_parts: tuple[int, ...] = ()
    part_materials: tuple[str, ...] = ()

    def part_rgb(self, index: int) -> tuple[int, int, int]:
        """The colour part ``index`` wears before its tone: the second colour's for a part in ``second_parts``."""
        if self.second_color and index in self.second_parts:
            return COLORS[self.second_color]
        return self.rgb

    def part_material(self, index: int) -> str:
        return (self.part_materials[index] if index < len(self.part_materials) else "") or self.material

    def to_dict(self) -> dict:
        data = {
            "object_id": self.object_id,
            "category": self.category,
            "color_name": self.color_name,
            "rgb": list(self.rgb),
            "box": self.box.as_array().tolist(),
            "parts": [p.as_array().tolist() for p in self.parts],
            "part_tones": list(self.part_tones),
            "support_id": self.support_id,
        }
        for key, value in (("material", self.material), ("second_color", self.second_color)):
            if value:
                data[key] = value
        if self.second_parts:
            data["second_parts"] = list(self.second_parts)
        if any(self.part_materials):
            data["part_materials"] = list(self.part_materials)
        return data

    @staticmethod
    def from_dict(data: dict) -> "ObjectSpec":
        parts = [Box3D.from_array(np.asarray(p, dtype=np.float64)) for p in data["parts"]]
        return ObjectSpec(
            object_id=int(data["object_id"]),
            category=str(data["category"]),
            color_name=str(data["color_name"]),
            rgb=tuple(int(c) for c in data["rgb"]),
            box=Box3D.from_array(np.asarray(data["box"], dtype=np.float64)),
            parts=parts,
            part_tones=tuple(float(t) for t in data.get("part_tones", [1.0] * len(parts))),
            support_id=None if data.get("support_id") is None else int(data["support_id"]),
            material=str(data.get("material", "")),
            second_color=str(data.get("second_color", "")),
            second_parts=tuple(int(i) for i in data.get("second_parts", [])),
            part_materials=tuple(str(m) for m in data.get("part_materials", [])),
        )


@dataclass(frozen=True)
class SceneSpec:
    """A building of ``room_size = (x, y, height)`` centred on the origin of the room frame, and its objects.

    ``rooms`` (R, 4) ``[x_lo, y_lo, x_hi, y_hi]`` are the rooms' floor rectangles
    (None: one room filling ``room_size``); ``structure`` the solid boxes between
    rooms (walls with doorways, see ``floorplan``). ``yaw_deg`` turns the whole
    building about the map's z axis: the room frame is where objects are
    generated, the map frame is what a robot's camera poses are in.
    """

    scene_id: str
    room_size: np.ndarray
    objects: list[ObjectSpec]
    floor_rgb: tuple[int, int, int] = (170, 140, 105)
    wall_rgb: tuple[int, int, int] = (215, 210, 195)
    ceiling_rgb: tuple[int, int, int] = (240, 240, 240)
    seed: int = 0
    yaw_deg: float = 0.0
    rooms: np.ndarray | None = None
    structure: tuple[Box3D, ...] = ()
    room_types: tuple[str, ...] = ()
    lighting: Lighting | None = None

    def room_rects(self) -> np.ndarray:
        """Floor rectangles of the rooms (R, 4) ``[x_lo, y_lo, x_hi, y_hi]`` in the room frame."""
        if self.rooms is not None:
            return np.asarray(self.rooms, dtype=np.float64).reshape(-1, 4)
        half = np.asarray(self.room_size[:2], dtype=np.float64) / 2
        return np.concatenate([-half, half])[None]

    def room_to_map(self) -> np.ndarray:
        """4x4 transform from the room frame to the map frame (a rotation by ``yaw_deg`` about z)."""
        yaw = np.deg2rad(self.yaw_deg)
        transform = np.eye(4)
        transform[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
        return transform

    def local_boxes(self) -> np.ndarray:
        """Ground-truth boxes (N, 6) in the room frame, where they are tight and axis-aligned."""
        if not self.objects:
            return np.zeros((0, 6))
        return np.stack([o.box.as_array() for o in self.objects])

    def oriented_boxes(self) -> np.ndarray:
        """Ground-truth boxes in the map frame, (N, 7) ``[cx, cy, cz, sx, sy, sz, yaw]``: the room-frame box turned
        by the room yaw (radians, counter-clockwise about z from map x to the box's own x axis)."""
        local = self.local_boxes()
        centres = local[:, :3] @ self.room_to_map()[:3, :3].T
        return np.concatenate([centres, local[:, 3:], np.full((len(local), 1), np.deg2rad(self.yaw_deg))], axis=1)

    def boxes(self) -> np.ndarray:
        """Ground-truth boxes (N, 6) in the map frame, in ``objects`` order: the axis-aligned bounds of
        ``oriented_boxes`` (the ScanRefer-style box that IoU against axis-aligned proposals uses); equal
        to ``local_boxes`` when the yaw is 0."""
        if self.yaw_deg == 0.0:
            return self.local_boxes()
        oriented = self.oriented_boxes()
        cos, sin = np.abs(np.cos(oriented[:, 6])), np.abs(np.sin(oriented[:, 6]))
        sizes = np.stack([cos * oriented[:, 3] + sin * oriented[:, 4], sin * oriented[:, 3] + cos * oriented[:, 4], oriented[:, 5]], axis=1)
        return np.concatenate([oriented[:, :3], sizes], axis=1)

    def map_box(self, object_id: int) -> Box3D:
        """One object's ground-truth box in the map frame (its row of ``boxes``)."""
        index = next((i for i, o in enumerate(self.objects) if o.object_id == object_id), None)
        if index is None:
            raise KeyError(f"scene {self.scene_id} has no object {object_id}")
        return Box3D.from_array(self.boxes()[index])

    def object_by_id(self, object_id: int) -> ObjectSpec:
        for obj in self.objects:
            if obj.object_id == object_id:
                return obj
        raise KeyError(f"scene {self.scene_id} has no object {object_id}")

    def to_dict(self) -> dict:
        """JSON-ready; the keys of the optional features appear only when used, so an old scene's dict is unchanged."""
        data = {
            "scene_id": self.scene_id,
            "seed": self.seed,
            "room_size": np.asarray(self.room_size, dtype=np.float64).tolist(),
            "floor_rgb": list(self.floor_rgb),
            "wall_rgb": list(self.wall_rgb),
            "ceiling_rgb": list(self.ceiling_rgb),
            "objects": [o.to_dict() for o in self.objects],
        }
        if self.yaw_deg != 0.0:
            data["yaw_deg"] = float(self.yaw_deg)
        if self.rooms is not None:
            data["rooms"] = np.asarray(self.rooms, dtype=np.float64).tolist()
            data["structure"] = [b.as_array().tolist() for b in self.structure]
        if self.room_types:
            data["room_types"] = list(self.room_types)
        if self.lighting is not None:
            data["lighting"] = self.lighting.to_dict()
        return data

    @staticmethod
    def from_dict(data: dict) -> "SceneSpec":
        return SceneSpec(
            scene_id=str(data["scene_id"]),
            room_size=np.asarray(data["room_size"], dtype=np.float64),
            objects=[ObjectSpec.from_dict(o) for o in data["objects"]],
            floor_rgb=tuple(int(c) for c in data["floor_rgb"]),
            wall_rgb=tuple(int(c) for c in data["wall_rgb"]),
            ceiling_rgb=tuple(int(c) for c in data["ceiling_rgb"]),
            seed=int(data.get("seed", 0)),
            yaw_deg=float(data.get("yaw_deg", 0.0)),
            rooms=None if data.get("rooms") is None else np.asarray(data["rooms"], dtype=np.float64).reshape(-1, 4),
            structure=tuple(Box3D.from_array(np.asarray(b, dtype=np.float64)) for b in data.get("structure", [])),
            room_types=tuple(str(t) for t in data.get("room_types", [])),
            lighting=None if data.get("lighting") is None else Lighting.from_dict(data["lighting"]),
        )


@dataclass(frozen=True)
class SceneConfig:
    """Ranges of the procedural generator (metres, degrees).

    The defaults give the original world: one axis-aligned room, a gap between
    floor objects. ``yaw_deg``: range of the building's yaw in the map (drawn
    from its own random stream, so the same scene turned by another yaw has the
    same contents). ``n_rooms``: range of the number of rooms (1-3; each draws
    its own size in the room ranges and its own ``n_objects``).
    ``tucked_chair_probability``: share of chairs pushed under a table of their
    room (seat under the top, back at the edge). ``touch_probability``: share of
    floor objects slid in a random direction until they touch a wall or a
    neighbour. ``wall_margin_m`` 0 puts wall furniture flush with the wall.
    """

    room_x_m: tuple[float, float] = (5.0, 8.0)
    room_y_m: tuple[float, float] = (4.0, 7.0)
    room_height_m: tuple[float, float] = (2.5, 2.7)
    n_objects: tuple[int, int] = (5, 20)
    # Probability that a scene repeats one category 2-4 times (spatial relations then matter).
    repeat_probability: float = 0.85
    # Probability that another instance of a category copies an earlier instance's colour.
    same_color_probability: float = 0.4
    max_per_category: int = 4
    # Fraction of tabletop-capable objects (lamp, box, plant) placed on a table or cabinet.
    on_top_probability: float = 0.45
    # Free gap between footprints of floor objects, so voxel clustering separates them.
    floor_gap_m: float = 0.2
    wall_margin_m: float = 0.05
    placement_attempts: int = 60
    # Share of beds, sofas and cabinets whose back is pushed against a wall.
    against_wall_probability: float = 0.7
    yaw_deg: tuple[float, float] = (0.0, 0.0)
    n_rooms: tuple[int, int] = (1, 1)
    floor_plan: FloorPlanConfig = field(default_factory=FloorPlanConfig)
    tucked_chair_probability: float = 0.0
    touch_probability: float = 0.0
    catalogue: str = "classic"

    def __post_init__(self) -> None:
        if not 1 <= self.n_rooms[0] <= self.n_rooms[1] <= 3:
            raise ValueError(f"SceneConfig.n_rooms must be a range within 1..3, got {self.n_rooms}")
        if self.yaw_deg[0] > self.yaw_deg[1]:
            raise ValueError(f"SceneConfig.yaw_deg must be a (low, high) range, got {self.yaw_deg}")
        if self.catalogue not in CATALOGUES:
            raise ValueError(f"SceneConfig.catalogue must be one of {', '.join(CATALOGUES)}, got {self.catalogue!r}")
        for name in ("tucked_chair_probability", "touch_probability", "against_wall_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SceneConfig.{name} must be in [0, 1], got {getattr(self, name)}")


def _chair(rng: np.random.Generator, small: bool) -> _Shape:
    w, d = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.55)
    seat_h, seat_t, back_h, leg = rng.uniform(0.42, 0.5), 0.05, rng.uniform(0.35, 0.55), 0.04
    back_t = 0.05
    parts = _legs(w, d, seat_h - seat_t, leg)
    parts.append(_part((0, 0, seat_h - seat_t / 2), (w, d, seat_t)))
    parts.append(_part((0, -d / 2 + back_t / 2, seat_h + back_h / 2), (w, back_t, back_h)))
    return _Shape(parts, (0.7,) * 4 + (1.0, 1.0))


def _table(rng: np.random.Generator, small: bool) -> _Shape:
    w, d = rng.uniform(0.8, 1.6), rng.uniform(0.6, 0.9)
    h, top_t, leg = rng.uniform(0.7, 0.78), 0.04, 0.06
    parts = _legs(w, d, h - top_t, leg)
    parts.append(_part((0, 0, h - top_t / 2), (w, d, top_t)))
    return _Shape(parts, (0.75,) * 4 + (1.0,))


def _sofa(rng: np.random.Generator, small: bool) -> _Shape:
    w, d = rng.uniform(1.5, 2.2), rng.uniform(0.8, 0.95)
    seat_h, back_h, arm_w, arm_h, back_t = rng.uniform(0.4, 0.46), rng.uniform(0.75, 0.9), 0.18, 0.6, 0.2
    parts = [
        _part((0, back_t / 2, seat_h / 2), (w - 2 * arm_w, d - back_t, seat_h)),
        _part((0, -d / 2 + back_t / 2, back_h / 2), (w, back_t, back_h)),
        _part((-w / 2 + arm_w / 2, back_t / 2, arm_h / 2), (arm_w, d - back_t, arm_h)),
        _part((w / 2 - arm_w / 2, back_t / 2, arm_h / 2), (arm_w, d - back_t, arm_h)),
    ]
    return _Shape(parts, (1.0, 0.85, 0.9, 0.9))


def _bed(rng: np.random.Generator, small: bool) -> _Shape:
    w, length = rng.uniform(1.0, 1.8), rng.uniform(1.95, 2.15)
    frame_h, mattress_h, head_h, head_t = 0.25, rng.uniform(0.2, 0.3), rng.uniform(0.9, 1.1), 0.06
    parts = [
        _part((0, head_t / 2, frame_h / 2), (w, length - head_t, frame_h)),
        _part((0, head_t / 2, frame_h + mattress_h / 2), (w - 0.06, length - head_t - 0.06, mattress_h)),
        _part((0, -length / 2 + head_t / 2, head_h / 2), (w, head_t, head_h)),
    ]
    return _Shape(parts, (0.7, 1.0, 0.8))


def _lamp(rng: np.random.Generator, small: bool) -> _Shape:
    if small:  # desk lamp
        base, pole_h, shade, shade_h = rng.uniform(0.12, 0.18), rng.uniform(0.25, 0.4), rng.uniform(0.15, 0.22), 0.15
    else:  # floor lamp
        base, pole_h, shade, shade_h = rng.uniform(0.25, 0.35), rng.uniform(1.2, 1.5), rng.uniform(0.3, 0.45), 0.3
    base_t, pole = 0.03, 0.03
    parts = [
        _part((0, 0, base_t / 2), (base, base, base_t)),
        _part((0, 0, base_t + pole_h / 2), (pole, pole, pole_h)),
        _part((0, 0, base_t + pole_h + shade_h / 2), (shade, shade, shade_h)),
    ]
    return _Shape(parts, (0.6, 0.6, 1.0))


def _cabinet(rng: np.random.Generator, small: bool) -> _Shape:
    w, d, h = rng.uniform(0.5, 1.2), rng.uniform(0.4, 0.6), rng.uniform(0.6, 1.3)
    plinth, top_t, over = 0.08, 0.03, 0.02
    parts = [
        _part((0, 0, plinth / 2), (w - 0.06, d - 0.06, plinth)),
        _part((0, -over / 2, plinth + (h - plinth - top_t) / 2), (w - 2 * over, d - over, h - plinth - top_t)),
        _part((0, 0, h - top_t / 2), (w, d, top_t)),
        _part((0, d / 2 - over / 2, plinth + 0.6 * (h - plinth)), (0.15, over, 0.03)),  # handle
    ]
    return _Shape(parts, (0.6, 1.0, 0.85, 0.5))


def _box(rng: np.random.Generator, small: bool) -> _Shape:
    lo, hi = (0.12, 0.3) if small else (0.25, 0.6)
    w, d, h = rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi)
    lid = 0.02
    parts = [
        _part((0, 0, (h - lid) / 2), (w - 0.02, d - 0.02, h - lid)),
        _part((0, 0, h - lid / 2), (w, d, lid)),
    ]
    return _Shape(parts, (1.0, 0.85))


def _plant(rng: np.random.Generator, small: bool) -> _Shape:
    scale = 0.45 if small else 1.0
    pot, pot_h = rng.uniform(0.25, 0.35) * scale, rng.uniform(0.25, 0.35) * scale
    leaf_w, leaf_h = rng.uniform(0.4, 0.6) * scale, rng.uniform(0.45, 0.9) * scale
    parts = [
        _part((0, 0, pot_h / 2), (pot, pot, pot_h)),
        _part((0, 0, pot_h + leaf_h / 2), (leaf_w, leaf_w, leaf_h)),
    ]
    return _Shape(parts, (0.6, 1.0))


def _monitor(rng: np.random.Generator, small: bool) -> _Shape:
    w, h = rng.uniform(0.45, 0.7), rng.uniform(0.28, 0.42)
    base_t, neck_h, screen_t = 0.02, rng.uniform(0.08, 0.15), 0.04
    parts = [
        _part((0, 0, base_t / 2), (0.22, 0.16, base_t)),
        _part((0, -0.03, base_t + neck_h / 2), (0.04, 0.03, neck_h)),
        _part((0, 0.0, base_t + neck_h + h / 2), (w, screen_t, h)),
    ]
    return _Shape(parts, (0.5, 0.5, 1.0))


def _trash_can(rng: np.random.Generator, small: bool) -> _Shape:
    w, h = rng.uniform(0.25, 0.4), rng.uniform(0.35, 0.65)
    rim = 0.03
    parts = [
        _part((0, 0, (h - rim) / 2), (w, w, h - rim)),
        _part((0, 0, h - rim / 2), (w + 0.03, w + 0.03, rim)),
    ]
    return _Shape(parts, (1.0, 0.8))


_SHAPES = {
    "chair": _chair,
    "table": _table,
    "sofa": _sofa,
    "bed": _bed,
    "lamp": _lamp,
    "cabinet": _cabinet,
    "box": _box,
    "plant": _plant,
    "monitor": _monitor,
    "trash can": _trash_can,
}


def _parts_meet(parts: list[Box3D], others: list[Box3D]) -> bool:
    """Whether any part of one list intersects any part of the other (touching faces do not count)."""
    return any(
        np.all(np.minimum(a.max_corner, b.max_corner) - np.maximum(a.min_corner, b.min_corner) > 1e-6)
        for a in parts for b in others
    )


def _footprint_overlaps(lo: np.ndarray, hi: np.ndarray, others: list[tuple[np.ndarray, np.ndarray]], gap: float) -> bool:
    return any(np.all(lo < o_hi + gap) and np.all(hi > o_lo - gap) for o_lo, o_hi in others)


def scene_rng(scene_id: str, seed: int, stream: int = 0) -> np.random.Generator:
    """Random generator for one use (``stream``) of one scene, identical in every process.

    Python's ``hash(str)`` is salted per process, crc32 is not.
    """
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(scene_id.encode("utf-8")), int(stream)])


def _draw_categories(rng: np.random.Generator, config: SceneConfig) -> list[str]:
    n = int(rng.integers(config.n_objects[0], config.n_objects[1] + 1))
    names = list(_CATEGORY_WEIGHTS)
    weights = np.array([_CATEGORY_WEIGHTS[c] for c in names])
    weights /= weights.sum()
    chosen: list[str] = []
    if rng.random() < config.repeat_probability:
        repeated = names[int(rng.choice(len(names), p=weights))]
        chosen += [repeated] * int(rng.integers(2, 5))
    while len(chosen) < n:
        category = names[int(rng.choice(len(names), p=weights))]
        if chosen.count(category) < config.max_per_category:
            chosen.append(category)
    chosen = chosen[:n]
    # Monitors need a desk: make sure one exists when a monitor is drawn.
    if "monitor" in chosen and not any(c in SUPPORTING_CATEGORIES for c in chosen):
        chosen[chosen.index("monitor")] = "table"
    # Place supports first, then the rest of the floor objects, then tabletop objects.
    order = {c: i for i, c in enumerate(("bed", "sofa", "table", "cabinet"))}
    return sorted(chosen, key=lambda c: order.get(c, 10))


def _draw_color(rng: np.random.Generator, category: str, used: dict[str, list[str]], config: SceneConfig) -> str:
    previous = used.setdefault(category, [])
    if previous and rng.random() < config.same_color_probability:
        name = previous[int(rng.integers(len(previous)))]
    else:
        name = list(COLORS)[int(rng.integers(len(COLORS)))]
    previous.append(name)
    return name


class _RoomLayout:
    """The objects placed so far and the free space left in one room, on the floor and on each support's top.

    Footprints are kept relative to the room's centre; ``offset`` (None: the room
    is centred on the origin) moves floor objects to where the room is in a
    several-room building. Rooms of one building share ``objects`` and
    ``used_colors``, so object ids run over the building.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        room: np.ndarray,
        config: SceneConfig,
        objects: list[ObjectSpec] | None = None,
        used_colors: dict[str, list[str]] | None = None,
        offset: np.ndarray | None = None,
    ) -> None:
        self.rng, self.room, self.config = rng, room, config
        self.half = room[:2] / 2 - config.wall_margin_m
        self.floor_footprints: list[tuple[np.ndarray, np.ndarray]] = []
        self.floor_ids: list[int] = []  # object id per floor footprint (-1: space kept clear)
        self.top_footprints: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.objects: list[ObjectSpec] = [] if objects is None else objects
        self.used_colors: dict[str, list[str]] = {} if used_colors is None else used_colors
        self.offset = offset
        self.own_ids: set[int] = set()
        # What the catalogue decides (``scannet_rooms.furnish`` sets its own): shapes, supports, wall furniture,
        # and how an object is painted (colour, material, second colour).
        self.shapes: dict = _SHAPES
        self.supporting: tuple[str, ...] = SUPPORTING_CATEGORIES
        self.wall_categories: tuple[str, ...] = WALL_CATEGORIES
        self.always_on_wall: tuple[str, ...] = ()
        self.paint = lambda category: (_draw_color(self.rng, category, self.used_colors, self.config), "", "")

    def keep_clear(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """No floor object may stand on this rectangle (room-frame coordinates, e.g. in front of a doorway)."""
        shift = 0.0 if self.offset is None else self.offset
        self.floor_footprints.append((lo - shift, hi - shift))
        self.floor_ids.append(-1)

    def place_on_floor(self, category: str) -> bool:
        rng, half, config = self.rng, self.half, self.config
        if category == "chair" and config.tucked_chair_probability > 0 and rng.random() < config.tucked_chair_probability:
            if self._tuck_chair():
                return True
        shape = self.shapes[category](rng, False)
        for _ in range(config.placement_attempts):
            turns = int(rng.integers(4))
            rotated = _rotate_quarter_turns(shape, turns)
            extent = rotated.size()
            if np.any(extent[:2] > 2 * half) or extent[2] > self.room[2] - 0.05:
                return False
            free = half - extent[:2] / 2
            center = rng.uniform(-free, free)
            if category in self.wall_categories and (
                category in self.always_on_wall or rng.random() < config.against_wall_probability
            ):
                # Back (local -y) against a wall: the wall side follows the yaw.
                back = _WALL_BACKS[turns % 4]
                axis = int(np.flatnonzero(back)[0])
                center[axis] = back[axis] * free[axis]
            gap = config.floor_gap_m
            if config.touch_probability > 0 and rng.random() < config.touch_probability:
                center, gap = self._slide_to_contact(center, extent[:2], free), 0.0
            lo, hi = center - extent[:2] / 2, center + extent[:2] / 2
            if not _footprint_overlaps(lo, hi, self.floor_footprints, gap):
                self._add_floor(category, rotated, center, lo, hi)
                return True
        return False

    def _slide_to_contact(self, center: np.ndarray, extent: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Move the footprint along a random axis direction until it is 1 mm from a wall or a neighbour."""
        axis, sign = int(self.rng.integers(2)), float(self.rng.choice([-1.0, 1.0]))
        other = 1 - axis
        lo, hi = center - extent / 2, center + extent / 2
        travel = free[axis] - sign * center[axis]  # to the wall
        for o_lo, o_hi in self.floor_footprints:
            if o_lo[other] >= hi[other] or o_hi[other] <= lo[other]:
                continue  # not in the way
            ahead = o_lo[axis] - hi[axis] if sign > 0 else lo[axis] - o_hi[axis]
            if ahead >= 0:
                travel = min(travel, ahead - 0.001)
        moved = center.copy()
        moved[axis] += sign * max(travel, 0.0)
        return moved

    def _tuck_chair(self) -> bool:
        """A chair facing a table of this room, its seat under the top and its back 2+ cm outside the top's edge."""
        rng = self.rng
        tables = [o for o in self.objects if o.object_id in self.own_ids and o.category == "table"]
        if not tables:
            return False
        shape = self.shapes["chair"](rng, False)
        back_thickness, table_leg = 0.05, 0.06  # as _chair and _table build them
        shift = np.zeros(2) if self.offset is None else self.offset
        for _ in range(self.config.placement_attempts):
            table = tables[int(rng.integers(len(tables)))]
            side = int(rng.integers(4))  # the table side the chair stands at: +x, +y, -x, -y
            axis, sign = side % 2, (1.0 if side < 2 else -1.0)
            rotated = _rotate_quarter_turns(shape, (side + 1) % 4)  # the chair's front (+y) faces the table
            extent = rotated.size()
            lateral_room = table.box.size[1 - axis] / 2 - table_leg - 0.02 - extent[1 - axis] / 2
            deepest = extent[axis] - back_thickness - 0.02
            if lateral_room < 0 or deepest < 0.1:
                continue
            center = table.box.center[:2] - shift
            center[axis] += sign * (table.box.size[axis] / 2 + extent[axis] / 2 - rng.uniform(0.1, deepest))
            center[1 - axis] += rng.uniform(-lateral_room, lateral_room)
            lo, hi = center - extent[:2] / 2, center + extent[:2] / 2
            if np.any(lo < -self.half) or np.any(hi > self.half):
                continue
            others = [fp for fp, oid in zip(self.floor_footprints, self.floor_ids) if oid != table.object_id]
            if self.config.catalogue != "classic" and _parts_meet(_place(rotated, center + shift, 0.0), table.parts):
                continue  # other chair and table styles: the chair must really fit under this table
            if not _footprint_overlaps(lo, hi, others, 0.05):
                self._add_floor("chair", rotated, center, lo, hi)
                return True
        return False

    def _add_floor(self, category: str, rotated: _Shape, center: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.floor_footprints.append((lo, hi))
        self.floor_ids.append(len(self.objects))
        self._add(category, _place(rotated, center if self.offset is None else center + self.offset, 0.0), rotated, None)

    def place_on_top(self, category: str, supporting: tuple[str, ...] | None = None) -> bool:
        """Stand the object on a support of this room (one of ``supporting``, default the catalogue's)."""
        rng = self.rng
        supporting = self.supporting if supporting is None else supporting
        supports = [o for o in self.objects if o.category in supporting and o.object_id in self.own_ids]
        if not supports:
            return False
        shape = self.shapes[category](rng, True)
        for _ in range(self.config.placement_attempts):
            support = supports[int(rng.integers(len(supports)))]
            rotated = _rotate_quarter_turns(shape, int(rng.integers(4)))
            extent = rotated.size()
            top = support.box.max_corner[2]
            if top + extent[2] > self.room[2] - 0.1:
                continue
            free_lo = support.box.min_corner[:2] + 0.03 + extent[:2] / 2
            free_hi = support.box.max_corner[:2] - 0.03 - extent[:2] / 2
            if np.any(free_lo > free_hi):
                continue
            center = rng.uniform(free_lo, free_hi)
            lo, hi = center - extent[:2] / 2, center + extent[:2] / 2
            taken = self.top_footprints.setdefault(support.object_id, [])
            if not _footprint_overlaps(lo, hi, taken, 0.05):
                taken.append((lo, hi))
                self._add(category, _place(rotated, center, top), rotated, support.object_id)
                return True
        return False

    def place_on_wall(
        self, category: str, shape: _Shape, base_z: float, wall: int | None = None, along: float | None = None
    ) -> ObjectSpec | None:
        """Hang ``shape`` (its bottom at ``base_z``) with its back (local -y) flat on a wall of this room: ``wall``
        0-3 (-y, +x, +y, -x; None: any), ``along`` the position along that wall from the room's centre (None:
        anywhere). It must keep 3 cm from every object of the room and stay out of the space kept clear
        (doorways); returns the new object, or None when no such place was found."""
        full = self.room[:2] / 2
        shift = np.zeros(2) if self.offset is None else np.asarray(self.offset, dtype=np.float64)
        tries = 1 if wall is not None and along is not None else self.config.placement_attempts
        for _ in range(tries):
            turns = int(self.rng.integers(4)) if wall is None else wall
            rotated = _rotate_quarter_turns(shape, turns)
            extent = rotated.size()
            back = _WALL_BACKS[turns]
            axis = int(np.flatnonzero(back)[0])
            free = full[1 - axis] - extent[1 - axis] / 2 - 0.05
            if free < 0 or base_z + extent[2] > self.room[2] or (along is not None and abs(along) > free):
                continue
            center = np.zeros(2)
            center[axis] = back[axis] * (full[axis] - extent[axis] / 2)
            center[1 - axis] = self.rng.uniform(-free, free) if along is None else along
            lo, hi = center - extent[:2] / 2, center + extent[:2] / 2
            if self._blocked(np.append(lo + shift, base_z), np.append(hi + shift, base_z + extent[2]), 0.03):
                continue
            self.floor_footprints.append((lo, hi))
            self.floor_ids.append(len(self.objects))
            self._add(category, _place(rotated, center + shift, base_z), rotated, None)
            return self.objects[-1]
        return None

    def _blocked(self, lo: np.ndarray, hi: np.ndarray, gap: float) -> bool:
        """Whether the box (room-frame corners) comes within ``gap`` of an object of this room or of kept-clear floor."""
        shift = np.zeros(2) if self.offset is None else np.asarray(self.offset, dtype=np.float64)
        for (f_lo, f_hi), oid in zip(self.floor_footprints, self.floor_ids):
            if oid == -1 and np.all(lo[:2] < f_hi + shift) and np.all(hi[:2] > f_lo + shift):
                return True
        boxes = [(o.box.min_corner, o.box.max_corner) for o in self.objects if o.object_id in self.own_ids]
        return _footprint_overlaps(lo, hi, boxes, gap)

    def add_object(self, category: str, shape: _Shape, footprint_center: np.ndarray, base_z: float) -> ObjectSpec:
        """Add an object where the caller has checked it fits (room-frame footprint centre), without a footprint."""
        self._add(category, _place(shape, footprint_center, base_z), shape, None)
        return self.objects[-1]

    def _add(self, category: str, parts: list[Box3D], shape: _Shape, support_id: int | None) -> None:
        color, material, second = self.paint(category)
        second_parts = tuple(i for i, slot in enumerate(shape.slots) if slot == SECOND)
        lo = np.min([p.min_corner for p in parts], axis=0)
        hi = np.max([p.max_corner for p in parts], axis=0)
        self.own_ids.add(len(self.objects))
        self.objects.append(
            ObjectSpec(
                object_id=len(self.objects),
                category=category,
                color_name=color,
                rgb=COLORS[color],
                box=Box3D(center=(lo + hi) / 2, size=hi - lo),
                parts=parts,
                part_tones=shape.tones,
                support_id=support_id,
                material=material,
                second_color=second if second_parts else "",
                second_parts=second_parts if second else (),
                part_materials=shape.materials if any(shape.materials) else (),
            )
        )


_WALL_BACKS = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]])  # the wall a shape's back touches after k quarter turns


def _furnish(layout: _RoomLayout, rng: np.random.Generator, config: SceneConfig, name: str) -> None:
    """Place one room's draw of categories, then small floor objects until it holds ``config.n_objects[0]``."""
    first = len(layout.objects)
    for category in _draw_categories(rng, config):
        wants_top = category == "monitor" or (
            category in SUPPORTED_CATEGORIES and rng.random() < config.on_top_probability
        )
        if wants_top and layout.place_on_top(category):
            continue
        if category != "monitor":
            layout.place_on_floor(category)

    fillers = ("box", "trash can", "plant", "chair")
    for _ in range(10 * config.n_objects[0]):
        if len(layout.objects) - first >= config.n_objects[0]:
            break
        layout.place_on_floor(fillers[int(rng.integers(len(fillers)))])
    if len(layout.objects) - first < config.n_objects[0]:
        raise RuntimeError(f"{name}: could only place {len(layout.objects) - first} objects")


_SCANNET_WALLS: tuple[tuple[int, int, int], ...] = (
    (215, 210, 195), (200, 210, 215), (225, 220, 215), (205, 200, 185), (190, 205, 190), (225, 210, 180),
    (180, 195, 215), (230, 225, 200), (210, 190, 190), (170, 170, 165),
)
_YAW_STREAM, _ROOMS_STREAM, _LIGHT_STREAM = 3, 4, 5  # random streams of scene_rng (1: trajectory, 2: sensor noise)


def _draw_yaw_and_rooms(scene_id: str, seed: int, config: SceneConfig) -> tuple[float, int]:
    """Room yaw (degrees in [0, 360)) and number of rooms, each from its own random stream and drawn only when its
    range is not one value: a feature switched on leaves every other draw of the scene as it was."""
    low, high = config.yaw_deg
    yaw = low if low == high else float(scene_rng(scene_id, seed, _YAW_STREAM).uniform(low, high))
    first, last = config.n_rooms
    rooms = first if first == last else int(scene_rng(scene_id, seed, _ROOMS_STREAM).integers(first, last + 1))
    return yaw % 360.0, rooms


def generate_scene(scene_id: str, seed: int, config: SceneConfig = SceneConfig()) -> SceneSpec:
    """A furnished room (or two or three joined by doorways), a pure function of ``(scene_id, seed, config)``.

    Floor objects keep ``config.floor_gap_m`` between footprints unless they were
    slid into contact (``touch_probability``) or tucked under a table; lamps,
    boxes, plants and monitors may stand on a table or cabinet (``support_id``).
    Objects whose placement fails are dropped, then small floor objects are
    added until each room has at least ``config.n_objects[0]`` objects. The
    scannet catalogue furnishes each room by its type (``scannet_rooms``) and
    lights the scene with a light of its own (``appearance.draw_lighting``).
    """
    rng = scene_rng(scene_id, seed)
    yaw, n_rooms = _draw_yaw_and_rooms(scene_id, seed, config)
    name = f"scene {scene_id} seed {seed}"
    room_types: list[str] = []

    def furnish(layout: _RoomLayout) -> None:
        if config.catalogue == "scannet":
            room_types.append(scannet_rooms.furnish(layout, rng, config, name))
        else:
            _furnish(layout, rng, config, name)

    if n_rooms == 1:
        room = np.array([rng.uniform(*config.room_x_m), rng.uniform(*config.room_y_m), rng.uniform(*config.room_height_m)])
        layout = _RoomLayout(rng, room, config)
        furnish(layout)
        objects, rooms, structure = layout.objects, None, ()
    else:
        height = rng.uniform(*config.room_height_m)
        sizes = [(rng.uniform(*config.room_x_m), rng.uniform(*config.room_y_m)) for _ in range(n_rooms)]
        plan = make_floor_plan(rng, sizes, height, config.floor_plan)
        objects, used_colors = [], {}
        for rect in plan.rooms:
            size = np.array([rect[2] - rect[0], rect[3] - rect[1], height])
            layout = _RoomLayout(rng, size, config, objects, used_colors, offset=(rect[:2] + rect[2:]) / 2)
            for door in plan.doorways:  # leave the way through every doorway free, 0.8 m deep on each side
                across = int(np.argmin(door.hi - door.lo))
                reach = np.zeros(2)
                reach[across] = 0.8
                layout.keep_clear(door.lo - reach, door.hi + reach)
            furnish(layout)
        shell_lo, shell_hi = plan.shell()
        room = np.array([shell_hi[0] - shell_lo[0], shell_hi[1] - shell_lo[1], height])
        rooms, structure = plan.rooms, tuple(plan.structure)

    floor_rgb = tuple(int(c) for c in rng.choice([(170, 140, 105), (150, 150, 150), (190, 170, 140), (120, 100, 80)]))
    wall_rgb = tuple(int(c) for c in rng.choice([(215, 210, 195), (200, 210, 215), (225, 220, 215), (205, 200, 185)]))
    lighting = None
    if config.catalogue == "scannet":  # its own light, and walls painted in more colours than the classic four
        light_rng = scene_rng(scene_id, seed, _LIGHT_STREAM)
        lighting = draw_lighting(light_rng)
        wall_rgb = _SCANNET_WALLS[int(light_rng.integers(len(_SCANNET_WALLS)))]
    return SceneSpec(
        scene_id=scene_id, room_size=room, objects=objects, floor_rgb=floor_rgb, wall_rgb=wall_rgb, seed=int(seed),
        yaw_deg=yaw, rooms=rooms, structure=structure, room_types=tuple(room_types), lighting=lighting,
    )
