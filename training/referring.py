"""Referring expressions for synthetic scenes, built so that "multiple" needs Where.

ScanRefer labels a sample "unique" when its target is the only object of its
category in the scene and "multiple" otherwise (W2R2.md: "multiple" is the split
that shows whether a model uses Where). Here:

- unique targets are named by category and colour ("the red chair");
- multiple targets are singled out by a spatial relation that holds for the
  target and clearly fails for EVERY same-category distractor. Colour is mixed in
  only when some distractor shares the target's colour, so colour never decides a
  "multiple" sample on its own and 2D appearance alone cannot solve the split.

This is the ``phrasing="templates"`` generator, kept unchanged so old datasets
rebuild bit for bit. What holds comes from ``relation_facts`` (shared with the
human phrasers); this module only says it with fixed templates. Its left and
right are fixed: the viewer stands at the room's entrance, on the room frame's
-x side, looking along +x ("left" is room +y, "back of the room" room +x).
The human phrasers (``human_descriptions``) use the camera's view instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from w2r2_ros.sim.world import scene_rng
from w2r2_training.dataset_format import SPLIT_MULTIPLE, SPLIT_UNIQUE
from w2r2_training.relation_facts import Fact, Margins, Scene, SceneObject, TargetFacts, nameable_anchors, scene_facts

# Random stream of ``scene_rng`` for descriptions: independent of the scene layout, and the
# same whatever order (or process) scenes are built in.
_REFERRING_STREAM = 7


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

    def margins(self) -> Margins:
        return Margins(self.distance_margin_m, self.size_ratio, self.next_to_gap_m, self.between_excess_m)


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


def anchor_phrases(scene: Scene) -> dict[int, str]:
    """Objects that can be named without ambiguity (``relation_facts.nameable_anchors``): "the chair"
    when the category is unique in the scene, "the red chair" when the colour + category pair is."""
    by_id = {o.object_id: o for o in scene.objects}
    return {
        i: f"the {by_id[i].color_name} {_name(by_id[i].category)}" if coloured else f"the {_name(by_id[i].category)}"
        for i, coloured in nameable_anchors(scene).items()
    }


def _phrasings(fact: Fact, n: str, c: str, anchors: dict[int, str], group_size: int) -> tuple[str, ...]:
    """The template phrasings of one fact about a target of category name ``n`` and colour ``c``."""
    two = group_size == 2
    a = anchors[fact.anchor_ids[0]] if fact.anchor_ids else ""
    table = {
        "colour": (
            f"the {c} {n}.",
            f"a {c} {n} in the room.",
            f"the {n} that is {c}.",
            f"there is a {c} {n} in the room. find it.",
            f"it is a {c} {n}.",
        ),
        "on": (f"the {n} on {a}.", f"the {n} that sits on top of {a}.", f"a {n} placed on {a}."),
        "next_to": (f"the {n} next to {a}.", f"the {n} right beside {a}."),
        "leftmost": (f"the {n} on the left.", f"the leftmost {n}.", f"the {n} farthest to the left, seen from the entrance."),
        "rightmost": (f"the {n} on the right.", f"the rightmost {n}.", f"the {n} farthest to the right, seen from the entrance."),
        "back": (f"the {n} at the back of the room.", f"the {n} farthest from the entrance."),
        "front": (f"the {n} nearest the entrance.", f"the {n} at the front of the room."),
        "largest": (f"the {'bigger' if two else 'largest'} {n}.", f"the {n} that is {'larger' if two else 'the largest'}."),
        "smallest": (f"the {'smaller' if two else 'smallest'} {n}.", f"the {n} that is {'smaller' if two else 'the smallest'}."),
        "tallest": (f"the {'taller' if two else 'tallest'} {n}.",),
        "nearest": (f"the {n} closest to {a}.", f"the {n} nearest to {a}."),
        "farthest": (f"the {n} farthest from {a}.", f"the {n} that is farthest away from {a}."),
        "left_of": (f"the {n} to the left of {a}.", f"the {n} on the left side of {a}."),
        "right_of": (f"the {n} to the right of {a}.", f"the {n} on the right side of {a}."),
    }
    if fact.relation == "between":
        return (f"the {n} between {a} and {anchors[fact.anchor_ids[1]]}.",)
    return table[fact.relation]


def _candidates(facts: TargetFacts, anchors: dict[int, str]) -> list[_Candidate]:
    n, c = _name(facts.target.category), facts.target.color_name
    return [
        _Candidate(f.relation, f.anchor_ids, _phrasings(f, n, c, anchors, facts.group_size)) for f in facts.facts
    ]


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
    for facts in scene_facts(scene, config.margins()):
        target = facts.target
        label = SPLIT_MULTIPLE if facts.distractors else SPLIT_UNIQUE
        colour_shared = any(d.color_name == target.color_name for d in facts.distractors)
        candidates = _candidates(facts, anchors)
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
