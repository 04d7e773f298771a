"""What is true about each object of a scene, apart from how it is said.

For every target this module lists the relations that single it out without
ambiguity (``Fact``); the phrasers (``referring`` templates, ``human_descriptions``
for training, ``heldout_descriptions`` for evaluation only) turn facts into words.
One source of truth means every phraser says only what holds.

Frames. Direction words (left, right, front, back, leftmost, "left of the bed",
"second from the left") are measured in the *viewer frame* (``w2r2_ros.geometry.viewer``:
x forward, y left): with ``viewer=None`` the viewer is the old fixed one (at the
room's entrance on the room frame's -x side, looking along +x: the room frame
itself), which the template generator keeps; with a viewer ``(x, y, yaw)`` in the
map frame, object centres are taken room -> map (``SceneSpec.room_to_map``) ->
viewer, so a relation that holds in map coordinates but not for the viewer is never
produced, and a map turned about z with its viewer gives the same facts. Distances,
gaps and sizes do not depend on the frame.

"front" means nearer the viewer along its line of sight (smaller viewer x); "back"
farther. Every test has margins (``ReferringConfig``) so that no relation is borderline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.geometry.viewer import to_viewer_frame

# The relation labels both phrasers share (``Sample.relation``; the model's relation classifier
# reads them). "colour" is the attribute-only description of a unique target.
TEMPLATE_RELATIONS: tuple[str, ...] = (
    "colour", "on", "next_to", "leftmost", "rightmost", "back", "front", "largest", "smallest", "tallest",
    "nearest", "farthest", "left_of", "right_of", "between",
)
# Added for the human phrasers (not produced for ``phrasing="templates"``).
EXTRA_RELATIONS: tuple[str, ...] = ("lowest", "front_of", "behind", "ordinal")
RELATIONS: tuple[str, ...] = TEMPLATE_RELATIONS + EXTRA_RELATIONS


class SceneObject(Protocol):
    """What this module reads from ``w2r2_ros.sim.world.ObjectSpec`` (``support_id``, ``material`` and
    ``second_color`` are optional)."""

    object_id: int
    category: str
    color_name: str
    box: Box3D


class Scene(Protocol):
    scene_id: str
    objects: Sequence[SceneObject]


@dataclass(frozen=True)
class Margins:
    """The subset of ``ReferringConfig`` the geometry reads (see its docstring)."""

    distance_margin_m: float
    size_ratio: float
    next_to_gap_m: float
    between_excess_m: float


@dataclass(frozen=True)
class Fact:
    """One true, unambiguous relation of a target. ``ordinal``/``side`` only for "ordinal": the target is
    the ``ordinal``-th (1-based) of its category counted from the viewer's ``side``, or, with an anchor
    (``side`` ""), counted by distance from the anchor, nearest first."""

    relation: str
    anchor_ids: tuple[int, ...] = ()
    ordinal: int = 0
    side: str = ""


@dataclass(frozen=True)
class TargetFacts:
    """A target, the same-category objects it must be told apart from, and what singles it out."""

    target: SceneObject
    distractors: tuple[SceneObject, ...]
    facts: tuple[Fact, ...]

    @property
    def group_size(self) -> int:
        return 1 + len(self.distractors)


def floor_distance(a: SceneObject, b: SceneObject) -> float:
    """Distance between box centres on the floor plane (x, y)."""
    return float(np.linalg.norm(np.asarray(a.box.center, dtype=np.float64)[:2] - np.asarray(b.box.center, dtype=np.float64)[:2]))


def footprint_gap(a: SceneObject, b: SceneObject) -> float:
    """Shortest floor-plane distance between the two boxes' footprints (0 when they overlap)."""
    lo_a, hi_a = a.box.min_corner[:2], a.box.max_corner[:2]
    lo_b, hi_b = b.box.min_corner[:2], b.box.max_corner[:2]
    gap = np.maximum(0.0, np.maximum(lo_a - hi_b, lo_b - hi_a))
    return float(np.linalg.norm(gap))


def between_detour(obj: SceneObject, a: SceneObject, b: SceneObject) -> float:
    """How much longer the path a -> obj -> b is than a -> b (0 = on the segment)."""
    return floor_distance(a, obj) + floor_distance(obj, b) - floor_distance(a, b)


def nameable_anchors(scene: Scene) -> dict[int, bool]:
    """Objects that can be named without ambiguity -> whether the name needs the colour: by category
    alone when it is unique in the scene (False), else by colour + category when that pair is unique (True)."""
    categories = [o.category for o in scene.objects]
    pairs = [(o.color_name, o.category) for o in scene.objects]
    named: dict[int, bool] = {}
    for obj in scene.objects:
        if categories.count(obj.category) == 1:
            named[obj.object_id] = False
        elif pairs.count((obj.color_name, obj.category)) == 1:
            named[obj.object_id] = True
    return named


def viewer_positions(scene: Scene, viewer: np.ndarray | None) -> dict[int, np.ndarray]:
    """Object id -> (2,) floor position in the viewer frame (x forward, y left); see the module docstring."""
    centres = np.array([np.asarray(o.box.center, dtype=np.float64) for o in scene.objects]).reshape(-1, 3)
    if viewer is not None:
        room_to_map = getattr(scene, "room_to_map", None)
        if room_to_map is not None:
            centres = centres @ room_to_map()[:3, :3].T
        centres = to_viewer_frame(centres, viewer)
    return {o.object_id: centres[i, :2] for i, o in enumerate(scene.objects)}


def _extreme(values: np.ndarray, target_index: int, margin: float, largest: bool) -> bool:
    """Does the target's value beat every other value by ``margin`` in the asked direction?"""
    others = np.delete(values, target_index)
    if largest:
        return bool(values[target_index] >= others.max() + margin)
    return bool(values[target_index] <= others.min() - margin)


def _ratio_extreme(values: np.ndarray, target_index: int, ratio: float, largest: bool) -> bool:
    others = np.delete(values, target_index)
    if largest:
        return bool(values[target_index] >= others.max() * ratio)
    return bool(values[target_index] * ratio <= others.min())


def anchor_pool(target: SceneObject, scene: Scene, anchors: dict[int, bool]) -> list[SceneObject]:
    """Anchors of another category than the target (naming a same-category anchor would confuse the
    referent), leaving out objects that stand on the target ("the table next to the monitor on it" reads wrong)."""
    return [
        o
        for o in scene.objects
        if o.object_id in anchors and o.category != target.category and getattr(o, "support_id", None) != target.object_id
    ]


class _FactFinder:
    """The facts of one scene's targets, in a fixed order (the template generator's random draws depend on it)."""

    def __init__(self, scene: Scene, margins: Margins, viewer: np.ndarray | None, extended: bool) -> None:
        self.scene, self.margins, self.extended = scene, margins, extended
        self.anchors = nameable_anchors(scene)
        self.xy = viewer_positions(scene, viewer)

    def support(self, target: SceneObject, distractors: Sequence[SceneObject]) -> list[Fact]:
        support = getattr(target, "support_id", None)
        if support is None or support not in self.anchors or support == target.object_id:
            return []
        if any(getattr(d, "support_id", None) == support for d in distractors):
            return []
        return [Fact("on", (support,))]

    def next_to(self, target: SceneObject, distractors: Sequence[SceneObject]) -> list[Fact]:
        m = self.margins
        out = []
        for anchor in anchor_pool(target, self.scene, self.anchors):
            if getattr(target, "support_id", None) == anchor.object_id:
                continue  # "next to" the thing it stands on reads wrong; "on" covers it
            if footprint_gap(target, anchor) > m.next_to_gap_m:
                continue
            if any(footprint_gap(d, anchor) < m.next_to_gap_m + m.distance_margin_m for d in distractors):
                continue
            out.append(Fact("next_to", (anchor.object_id,)))
        return out

    def side_of(self, target: SceneObject, distractors: Sequence[SceneObject], anchor: SceneObject) -> list[Fact]:
        """left_of/right_of (viewer y) and, when extended, front_of/behind (viewer x) an anchor: the target
        is past the anchor by the margin, every distractor on the anchor's other side. Extended (the human
        phrasers), the target must also lie within 45 degrees of that direction, as people mean "left of
        the bed" (not 3 m behind it and a little to the left); the templates never had that test."""
        m = self.margins.distance_margin_m
        out = []
        group = [target, *distractors]
        target_offset = self.xy[target.object_id] - self.xy[anchor.object_id]
        for axis, (positive, negative) in ((1, ("left_of", "right_of")), (0, ("behind", "front_of"))):
            if self.extended and abs(target_offset[axis]) < abs(target_offset[1 - axis]):
                continue
            if axis == 0 and not self.extended:
                continue
            offset = np.array([self.xy[o.object_id][axis] - self.xy[anchor.object_id][axis] for o in group])
            if offset[0] >= m and np.all(offset[1:] <= 0.0):
                out.append(Fact(positive, (anchor.object_id,)))
            if offset[0] <= -m and np.all(offset[1:] >= 0.0):
                out.append(Fact(negative, (anchor.object_id,)))
        return out

    def unique(self, target: SceneObject) -> list[Fact]:
        out = [Fact("colour")] + self.support(target, []) + self.next_to(target, [])
        if self.extended:
            for anchor in anchor_pool(target, self.scene, self.anchors):
                if getattr(target, "support_id", None) != anchor.object_id:
                    out += self.side_of(target, [], anchor)
        return out

    @staticmethod
    def _rank(value: float, others: np.ndarray, margin: float) -> int:
        """1-based rank of ``value`` counted from the largest, 0 when some other value is within ``margin``."""
        if np.any(np.abs(others - value) < margin):
            return 0
        return 1 + int(np.sum(others > value))

    def ordinals(self, target: SceneObject, distractors: Sequence[SceneObject]) -> list[Fact]:
        """"the second chair from the left" (viewer y) and "the second chair from the door" (distance to an
        anchor): every other object is clearly on one side of the target, and the target is at neither end
        (leftmost/rightmost, nearest/farthest say that)."""
        if len(distractors) < 2:
            return []
        m, n = self.margins.distance_margin_m, len(distractors) + 1
        out = []
        from_left = self._rank(self.xy[target.object_id][1], np.array([self.xy[d.object_id][1] for d in distractors]), m)
        if from_left not in (0, 1, n):
            out += [Fact("ordinal", ordinal=from_left, side="left"), Fact("ordinal", ordinal=n + 1 - from_left, side="right")]
        for anchor in anchor_pool(target, self.scene, self.anchors):
            a = self.xy[anchor.object_id]
            distances = np.array([-float(np.linalg.norm(self.xy[d.object_id] - a)) for d in distractors])
            from_anchor = self._rank(-float(np.linalg.norm(self.xy[target.object_id] - a)), distances, m)
            if from_anchor not in (0, 1, n):
                out.append(Fact("ordinal", (anchor.object_id,), ordinal=from_anchor))
        return out

    def multiple(self, target: SceneObject, distractors: Sequence[SceneObject]) -> list[Fact]:
        m, cfg = self.margins.distance_margin_m, self.margins
        group = [target, *distractors]
        xy = np.stack([self.xy[o.object_id] for o in group])
        volumes = np.array([o.box.volume for o in group])
        heights = np.array([float(o.box.size[2]) for o in group])
        out: list[Fact] = []
        # Viewer frame: left = +y, far = +x.
        for relation, axis, largest in (("leftmost", 1, True), ("rightmost", 1, False), ("back", 0, True), ("front", 0, False)):
            if _extreme(xy[:, axis], 0, m, largest):
                out.append(Fact(relation))
        for relation, values, largest in (
            ("largest", volumes, True), ("smallest", volumes, False), ("tallest", heights, True)
        ) + ((("lowest", heights, False),) if self.extended else ()):
            if _ratio_extreme(values, 0, cfg.size_ratio, largest):
                out.append(Fact(relation))
        pool = anchor_pool(target, self.scene, self.anchors)
        for anchor in pool:
            aid = (anchor.object_id,)
            dist = np.array([float(np.linalg.norm(self.xy[o.object_id] - self.xy[anchor.object_id])) for o in group])
            if _extreme(dist, 0, m, largest=False):
                out.append(Fact("nearest", aid))
            if _extreme(dist, 0, m, largest=True):
                out.append(Fact("farthest", aid))
            out += self.side_of(target, distractors, anchor)
        for i, first in enumerate(pool):
            for second in pool[i + 1 :]:
                detour = np.array([between_detour(o, first, second) for o in group])
                if detour[0] <= cfg.between_excess_m and np.all(detour[1:] >= cfg.between_excess_m + m):
                    out.append(Fact("between", (first.object_id, second.object_id)))
        out += self.support(target, distractors)
        out += self.next_to(target, distractors)
        if self.extended:
            out += self.ordinals(target, distractors)
        return out


def scene_facts(
    scene: Scene, margins: Margins, viewer: np.ndarray | None = None, extended: bool = False
) -> list[TargetFacts]:
    """Every object's facts, by object id. ``viewer``: (3,) map-frame ``[x, y, yaw]`` (None: the old fixed
    viewer of the room frame). ``extended`` adds ``EXTRA_RELATIONS`` (and side relations for unique
    targets); without it the facts are exactly those the template generator has always used."""
    finder = _FactFinder(scene, margins, viewer, extended)
    out = []
    for target in sorted(scene.objects, key=lambda o: o.object_id):
        distractors = tuple(o for o in scene.objects if o.category == target.category and o.object_id != target.object_id)
        facts = finder.multiple(target, distractors) if distractors else finder.unique(target)
        out.append(TargetFacts(target, distractors, tuple(facts)))
    return out
