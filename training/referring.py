"""Referring expressions for synthetic scenes, built so that "multiple" needs Where.

ScanRefer labels a sample "unique" when its target is the only object of its
category in the scene and "multiple" otherwise (W2R2.md: "multiple" is the split
that shows whether a model uses Where). Here:

- unique targets are named by category and colour ("the red chair");
- multiple targets are singled out by a spatial relation that holds for the
  target and clearly fails for EVERY same-category distractor. Colour is mixed in
  only when some distractor shares the target's colour, so colour never decides a
  "multiple" sample on its own and 2D appearance alone cannot solve the split.

Left and right are fixed, not viewer-relative as in ScanRefer, so that they are
learnable from world coordinates: the viewer stands at the room's entrance, on the
-x side, looking along +x. In the map frame (x forward, y left) "left" is +y,
"right" is -y, "back of the room / far from the entrance" is +x.

Every geometric test is on box centres projected on the floor (x, y) unless said
otherwise, with margins (``ReferringConfig``) so that no relation is borderline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.sim.world import scene_rng
from w2r2_training.dataset_format import SPLIT_MULTIPLE, SPLIT_UNIQUE

# Random stream of ``scene_rng`` for descriptions: independent of the scene layout, and the
# same whatever order (or process) scenes are built in.
_REFERRING_STREAM = 7


class SceneObject(Protocol):
    """What this module reads from ``w2r2_ros.sim.world.ObjectSpec`` (``support_id`` is optional)."""

    object_id: int
    category: str
    color_name: str
    box: Box3D


class Scene(Protocol):
    scene_id: str
    objects: Sequence[SceneObject]


@dataclass(frozen=True)
class ReferringConfig:
    """Margins that make every generated relation unambiguous.

    ``distance_margin_m``: nearest/farthest/left/right/front/back must beat every
    distractor by this much. ``size_ratio``: largest/smallest/tallest must beat
    every distractor by this factor (1.15 = 15%). ``next_to_gap_m``: the floor-plan
    gap between target and anchor footprints for "next to"; distractors must be at
    least ``next_to_gap_m + distance_margin_m`` away. ``between_excess_m``: "between
    A and B" holds when |tA| + |tB| - |AB| (the detour through the target) is at
    most this; distractors need a detour of at least ``between_excess_m +
    distance_margin_m``.
    """

    expressions_per_object: int = 3
    distance_margin_m: float = 0.3
    size_ratio: float = 1.15
    next_to_gap_m: float = 0.4
    between_excess_m: float = 0.4
    colour_mix_probability: float = 0.5


@dataclass(frozen=True)
class ReferringSample:
    """One ScanRefer-style sample; ``relation`` and ``anchor_ids`` record why the description is true."""

    scene_id: str
    object_id: int
    object_name: str
    ann_id: int
    description: str
    split_label: str
    relation: str
    anchor_ids: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Candidate:
    relation: str
    anchor_ids: tuple[int, ...]
    phrasings: tuple[str, ...]


def _name(category: str) -> str:
    return category.replace("_", " ")


def _xy(obj: SceneObject) -> np.ndarray:
    return np.asarray(obj.box.center, dtype=np.float64)[:2]


def floor_distance(a: SceneObject, b: SceneObject) -> float:
    """Distance between box centres on the floor plane (x, y)."""
    return float(np.linalg.norm(_xy(a) - _xy(b)))


def footprint_gap(a: SceneObject, b: SceneObject) -> float:
    """Shortest floor-plane distance between the two boxes' footprints (0 when they overlap)."""
    lo_a, hi_a = a.box.min_corner[:2], a.box.max_corner[:2]
    lo_b, hi_b = b.box.min_corner[:2], b.box.max_corner[:2]
    gap = np.maximum(0.0, np.maximum(lo_a - hi_b, lo_b - hi_a))
    return float(np.linalg.norm(gap))


def between_detour(obj: SceneObject, a: SceneObject, b: SceneObject) -> float:
    """How much longer the path a -> obj -> b is than a -> b (0 = on the segment)."""
    return floor_distance(a, obj) + floor_distance(obj, b) - floor_distance(a, b)


def anchor_phrases(scene: Scene) -> dict[int, str]:
    """Objects that can be named without ambiguity: by category when it is unique in the scene,
    else by colour + category when that pair is unique."""
    categories = [o.category for o in scene.objects]
    pairs = [(o.color_name, o.category) for o in scene.objects]
    names: dict[int, str] = {}
    for obj in scene.objects:
        if categories.count(obj.category) == 1:
            names[obj.object_id] = f"the {_name(obj.category)}"
        elif pairs.count((obj.color_name, obj.category)) == 1:
            names[obj.object_id] = f"the {obj.color_name} {_name(obj.category)}"
    return names


def _unique_candidates(target: SceneObject, scene: Scene, anchors: dict[int, str], cfg: ReferringConfig) -> list[_Candidate]:
    n, c = _name(target.category), target.color_name
    out = [
        _Candidate(
            "colour",
            (),
            (
                f"the {c} {n}.",
                f"a {c} {n} in the room.",
                f"the {n} that is {c}.",
                f"there is a {c} {n} in the room. find it.",
                f"it is a {c} {n}.",
            ),
        )
    ]
    # Absolute relations (true or false by themselves) add variety without needing distractors.
    out += _support_candidates(target, [], anchors, n)
    out += _next_to_candidates(target, [], scene, anchors, n, cfg)
    return out


def _support_candidates(target: SceneObject, distractors: list[SceneObject], anchors: dict[int, str], n: str) -> list[_Candidate]:
    support = getattr(target, "support_id", None)
    if support is None or support not in anchors or support == target.object_id:
        return []
    if any(getattr(d, "support_id", None) == support for d in distractors):
        return []
    a = anchors[support]
    return [_Candidate("on", (support,), (f"the {n} on {a}.", f"the {n} that sits on top of {a}.", f"a {n} placed on {a}."))]


def _anchor_pool(target: SceneObject, scene: Scene, anchors: dict[int, str]) -> list[SceneObject]:
    """Anchors of another category than the target (naming a same-category anchor would confuse the
    referent), leaving out objects that stand on the target ("the table next to the monitor on it" reads wrong)."""
    return [
        o
        for o in scene.objects
        if o.object_id in anchors and o.category != target.category and getattr(o, "support_id", None) != target.object_id
    ]


def _next_to_candidates(
    target: SceneObject, distractors: list[SceneObject], scene: Scene, anchors: dict[int, str], n: str, cfg: ReferringConfig
) -> list[_Candidate]:
    out = []
    for anchor in _anchor_pool(target, scene, anchors):
        if getattr(target, "support_id", None) == anchor.object_id:
            continue  # "next to" the thing it stands on reads wrong; "on" covers it
        if footprint_gap(target, anchor) > cfg.next_to_gap_m:
            continue
        if any(footprint_gap(d, anchor) < cfg.next_to_gap_m + cfg.distance_margin_m for d in distractors):
            continue
        a = anchors[anchor.object_id]
        out.append(_Candidate("next_to", (anchor.object_id,), (f"the {n} next to {a}.", f"the {n} right beside {a}.")))
    return out


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


def _multiple_candidates(
    target: SceneObject, distractors: list[SceneObject], scene: Scene, anchors: dict[int, str], cfg: ReferringConfig
) -> list[_Candidate]:
    n = _name(target.category)
    group = [target] + distractors
    m = cfg.distance_margin_m
    xy = np.stack([_xy(o) for o in group])
    volumes = np.array([o.box.volume for o in group])
    heights = np.array([float(o.box.size[2]) for o in group])
    two = len(group) == 2
    out: list[_Candidate] = []

    def add(relation: str, anchor_ids: tuple[int, ...], *phrasings: str) -> None:
        out.append(_Candidate(relation, anchor_ids, tuple(phrasings)))

    # Viewer at the entrance (-x side) looking along +x: left = +y, far = +x.
    if _extreme(xy[:, 1], 0, m, largest=True):
        add("leftmost", (), f"the {n} on the left.", f"the leftmost {n}.", f"the {n} farthest to the left, seen from the entrance.")
    if _extreme(xy[:, 1], 0, m, largest=False):
        add("rightmost", (), f"the {n} on the right.", f"the rightmost {n}.", f"the {n} farthest to the right, seen from the entrance.")
    if _extreme(xy[:, 0], 0, m, largest=True):
        add("back", (), f"the {n} at the back of the room.", f"the {n} farthest from the entrance.")
    if _extreme(xy[:, 0], 0, m, largest=False):
        add("front", (), f"the {n} nearest the entrance.", f"the {n} at the front of the room.")
    if _ratio_extreme(volumes, 0, cfg.size_ratio, largest=True):
        add("largest", (), f"the {'bigger' if two else 'largest'} {n}.", f"the {n} that is {'larger' if two else 'the largest'}.")
    if _ratio_extreme(volumes, 0, cfg.size_ratio, largest=False):
        add("smallest", (), f"the {'smaller' if two else 'smallest'} {n}.", f"the {n} that is {'smaller' if two else 'the smallest'}.")
    if _ratio_extreme(heights, 0, cfg.size_ratio, largest=True):
        add("tallest", (), f"the {'taller' if two else 'tallest'} {n}.")

    pool = _anchor_pool(target, scene, anchors)
    for anchor in pool:
        a, aid = anchors[anchor.object_id], (anchor.object_id,)
        dist = np.array([floor_distance(o, anchor) for o in group])
        if _extreme(dist, 0, m, largest=False):
            add("nearest", aid, f"the {n} closest to {a}.", f"the {n} nearest to {a}.")
        if _extreme(dist, 0, m, largest=True):
            add("farthest", aid, f"the {n} farthest from {a}.", f"the {n} that is farthest away from {a}.")
        offset = xy[:, 1] - _xy(anchor)[1]
        if offset[0] >= m and np.all(offset[1:] <= 0.0):
            add("left_of", aid, f"the {n} to the left of {a}.", f"the {n} on the left side of {a}.")
        if offset[0] <= -m and np.all(offset[1:] >= 0.0):
            add("right_of", aid, f"the {n} to the right of {a}.", f"the {n} on the right side of {a}.")
    for i, first in enumerate(pool):
        for second in pool[i + 1 :]:
            detour = np.array([between_detour(o, first, second) for o in group])
            if detour[0] <= cfg.between_excess_m and np.all(detour[1:] >= cfg.between_excess_m + m):
                a, b = anchors[first.object_id], anchors[second.object_id]
                add("between", (first.object_id, second.object_id), f"the {n} between {a} and {b}.")
    out += _support_candidates(target, distractors, anchors, n)
    out += _next_to_candidates(target, distractors, scene, anchors, n, cfg)
    return out


def _with_colour(phrase: str, target: SceneObject) -> str:
    """Insert the colour before the category: "the chair ..." -> "the red chair ..."."""
    name = _name(target.category)
    return phrase.replace(f" {name}", f" {target.color_name} {name}", 1)


def referring_samples(scene: Scene, seed: int = 0, config: ReferringConfig = ReferringConfig()) -> list[ReferringSample]:
    """Up to ``config.expressions_per_object`` true, unambiguous descriptions for every object.

    Objects of a "multiple" category with no relation that singles them out get
    no sample (there is nothing true and unambiguous to say without colour).
    ``ann_id`` counts descriptions per object, as in ScanRefer.
    """
    rng = scene_rng(scene.scene_id, seed, _REFERRING_STREAM)
    anchors = anchor_phrases(scene)
    samples: list[ReferringSample] = []
    for target in sorted(scene.objects, key=lambda o: o.object_id):
        distractors = [o for o in scene.objects if o.category == target.category and o.object_id != target.object_id]
        label = SPLIT_UNIQUE if not distractors else SPLIT_MULTIPLE
        if distractors:
            candidates = _multiple_candidates(target, distractors, scene, anchors, config)
            colour_shared = any(d.color_name == target.color_name for d in distractors)
        else:
            candidates = _unique_candidates(target, scene, anchors, config)
            colour_shared = False
        if not candidates:
            continue
        chosen = _choose(candidates, config.expressions_per_object, rng)
        for ann_id, (candidate, phrase) in enumerate(chosen):
            if colour_shared and rng.random() < config.colour_mix_probability:
                phrase = _with_colour(phrase, target)
            samples.append(
                ReferringSample(
                    scene_id=scene.scene_id,
                    object_id=int(target.object_id),
                    object_name=target.category,
                    ann_id=ann_id,
                    description=phrase,
                    split_label=label,
                    relation=candidate.relation,
                    anchor_ids=candidate.anchor_ids,
                )
            )
    return samples


def _choose(candidates: list[_Candidate], k: int, rng: np.random.Generator) -> list[tuple[_Candidate, str]]:
    """Pick k (relation, phrasing) pairs, preferring distinct relations, then distinct phrasings."""
    shuffled = [(candidates[i], [candidates[i].phrasings[j] for j in rng.permutation(len(candidates[i].phrasings))])
                for i in rng.permutation(len(candidates))]
    pairs: list[tuple[_Candidate, str]] = []
    for rank in range(max(len(c.phrasings) for c in candidates)):
        for candidate, phrasings in shuffled:
            if rank < len(phrasings):
                pairs.append((candidate, phrasings[rank]))
            if len(pairs) == k:
                return pairs
    return pairs
