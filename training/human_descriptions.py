"""The training phraser: descriptions like people's, for ``SyntheticDatasetConfig.phrasing="human"``.

What is said comes from ``relation_facts`` with the viewer of the query (the camera's
last pose: left/right/front/back are the viewer's, never map axes); how it is said
comes from ``TRAINING_VOCABULARY`` through ``phraser.Phraser``: synonyms for class
names and relation words, fillers ("can you show me ..."), attributes, ordinal and
counting forms, ScanRefer-like two-sentence forms and occasional typos.

Every word and template here may be used for training. The held-out phraser
(``heldout_descriptions``) has its own, disjoint ones, and must never feed training.
Colour names (``world.COLORS``), "left"/"right" and ordinal words are shared: they
are what the scene is, not a way of saying it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from w2r2_ros.sim.world import scene_rng
from w2r2_training.dataset_format import SPLIT_MULTIPLE, SPLIT_UNIQUE
from w2r2_training.phraser import PhrasingConfig, Phraser, Vocabulary
from w2r2_training.referring import ReferringConfig, ReferringSample
from w2r2_training.relation_facts import Fact, Scene, TargetFacts, nameable_anchors, scene_facts

# Streams of ``scene_rng``: which facts are said (shared by both phrasers, so a held-out twin describes the
# same target by the same relation) and the training words; a phraser's typos come from stream
# ``word_stream + TYPO_STREAM_OFFSET``, so the two phrasers' typos fall independently.
FACT_STREAM = 8
_WORD_STREAM = 9
TYPO_STREAM_OFFSET = 100

TRAINING_VOCABULARY = Vocabulary(
    names={
        "chair": ("chair", "seat"),
        "table": ("table", "dining table"),
        "sofa": ("sofa",),
        "bed": ("bed",),
        "lamp": ("lamp", "reading lamp"),
        "cabinet": ("cabinet", "storage cabinet"),
        "box": ("box", "cardboard box"),
        "plant": ("plant", "potted plant"),
        "monitor": ("monitor", "computer monitor"),
        "trash can": ("trash can", "trash bin"),
        "door": ("door",),
        "window": ("window",),
        "bookshelf": ("bookshelf", "bookcase"),
        "picture": ("picture", "painting"),
        "counter": ("counter", "countertop"),
        "desk": ("desk", "writing desk"),
        "curtain": ("curtain",),
        "refrigerator": ("refrigerator", "fridge"),
        "shower curtain": ("shower curtain",),
        "toilet": ("toilet",),
        "sink": ("sink", "washbasin"),
        "bathtub": ("bathtub",),
        "other furniture": ("stool", "piece of furniture"),
        "cup": ("cup", "mug"),
        "book": ("book",),
    },
    phrases={
        "colour": ("the {n}", "the {n} in the room", "the {n} here"),
        "on": ("the {n} on {a}", "the {n} on top of {a}", "the {n} sitting on {a}", "the {n} placed on {a}"),
        "next_to": ("the {n} next to {a}", "the {n} beside {a}", "the {n} right by {a}"),
        "leftmost": ("the {n} on the left", "the leftmost {n}", "the {n} furthest to the left", "the {n} at the far left"),
        "rightmost": ("the {n} on the right", "the rightmost {n}", "the {n} furthest to the right", "the {n} at the far right"),
        "front": ("the {n} in front", "the front {n}", "the {n} closest to me", "the {n} nearest to the camera"),
        "back": ("the {n} at the back", "the {n} in the back", "the {n} farthest from me", "the rear {n}"),
        "largest": ("the {sup} {n}", "the {n} that is the {sup}"),
        "smallest": ("the {sup} {n}", "the {n} that is the {sup}"),
        "tallest": ("the {sup} {n}", "the {n} that is the {sup}"),
        "lowest": ("the {sup} {n}", "the {n} that is the {sup}"),
        "nearest": ("the {n} closest to {a}", "the {n} nearest to {a}", "the {n} nearest {a}"),
        "farthest": ("the {n} farthest from {a}", "the {n} furthest away from {a}"),
        "left_of": ("the {n} to the left of {a}", "the {n} on the left side of {a}", "the {n} left of {a}"),
        "right_of": ("the {n} to the right of {a}", "the {n} on the right side of {a}", "the {n} right of {a}"),
        "front_of": ("the {n} in front of {a}", "the {n} standing in front of {a}"),
        "behind": ("the {n} behind {a}", "the {n} standing behind {a}"),
        "between": ("the {n} between {a} and {b}", "the {n} in between {a} and {b}", "the {n} in the middle of {a} and {b}"),
        "ordinal": ("the {k} {n} from the {side}", "the {n} {k} from the {side}"),
        "ordinal_from": ("the {k} {n} from {a}", "the {k} closest {n} to {a}"),
    },
    predicates={
        "colour": ("is the only one in the room", "is somewhere in this room"),
        "on": ("is on {a}", "sits on top of {a}", "is placed on {a}", "stands on {a}"),
        "next_to": ("is next to {a}", "stands beside {a}", "is right by {a}"),
        "leftmost": ("is on the left", "is the leftmost one", "is furthest to the left", "is at the far left"),
        "rightmost": ("is on the right", "is the rightmost one", "is furthest to the right", "is at the far right"),
        "front": ("is in front", "is closest to me", "is nearest to the camera", "is at the front"),
        "back": ("is at the back", "is farthest from me", "is furthest from the camera"),
        "largest": ("is the {sup} one", "is the {sup}"),
        "smallest": ("is the {sup} one", "is the {sup}"),
        "tallest": ("is the {sup} one", "is the {sup}"),
        "lowest": ("is the {sup} one", "is the {sup}"),
        "nearest": ("is closest to {a}", "is nearest to {a}"),
        "farthest": ("is farthest from {a}", "is the furthest away from {a}"),
        "left_of": ("is to the left of {a}", "is on the left side of {a}"),
        "right_of": ("is to the right of {a}", "is on the right side of {a}"),
        "front_of": ("is in front of {a}", "stands in front of {a}"),
        "behind": ("is behind {a}", "stands behind {a}"),
        "between": ("is between {a} and {b}", "sits in between {a} and {b}"),
        "ordinal": ("is the {k} one from the {side}", "is {k} from the {side}"),
        "ordinal_from": ("is the {k} one from {a}", "is the {k} closest to {a}"),
    },
    superlatives={
        "largest": ("largest", "biggest"),
        "smallest": ("smallest",),
        "tallest": ("tallest", "highest"),
        "lowest": ("lowest", "shortest"),
    },
    comparatives={
        "largest": ("larger", "bigger"),
        "smallest": ("smaller",),
        "tallest": ("taller", "higher"),
        "lowest": ("lower", "shorter"),
    },
    fillers=("i am looking for", "find", "please find", "show me", "look for", "the target is"),
    questions=("can you show me", "where is", "can you find"),
    frames=(
        "this is {an}. it {pred}.",
        "there is {an} that {pred}.",
        "i am looking for {an}. it {pred}.",
        "{np}. that is the one i mean.",
        "look for the {n}. it {pred}.",
    ),
    counting=(
        "of the {count} {ns}, find the one that {pred}.",
        "there are {count} {ns}. choose the one that {pred}.",
        "the one of the {count} {ns} that {pred}.",
    ),
    numbers={2: "two", 3: "three", 4: "four", 5: "five"},
    materials={
        "wood": "wooden", "metal": "metal", "fabric": "fabric", "plastic": "plastic", "leather": "leather",
        "glass": "glass", "ceramic": "ceramic",
    },
    shapes={"tall": ("tall",), "long": ("long",), "flat": ("flat", "low")},
    two_tone=("{c} and {c2}",),
    extra=("also, it {pred}.", "and it {pred}."),
)


def _spread(facts: Sequence[Fact], k: int, rng: np.random.Generator) -> list[Fact]:
    """k facts in a random order that says every relation once before any is said twice."""
    shuffled = [facts[i] for i in rng.permutation(len(facts))]
    seen: set[str] = set()
    first = [f for f in shuffled if f.relation not in seen and not seen.add(f.relation)]
    rest = [f for f in shuffled if f not in first]
    order = first + rest
    return [order[i % len(order)] for i in range(k)]


def chosen_facts(
    scene: Scene, viewer: np.ndarray, seed: int, config: ReferringConfig
) -> list[tuple[TargetFacts, list[Fact]]]:
    """The facts each target's descriptions say, ``config.expressions_per_object`` per target (targets with
    none left out). Drawn from their own stream, so every phraser describes the same samples."""
    rng = scene_rng(scene.scene_id, seed, FACT_STREAM)
    out = []
    for facts in scene_facts(scene, config.margins(), viewer, extended=True):
        if facts.facts:
            out.append((facts, _spread(facts.facts, config.expressions_per_object, rng)))
    return out


def phrase_samples(
    scene: Scene,
    viewer: np.ndarray,
    seed: int,
    referring: ReferringConfig,
    phrasing: PhrasingConfig,
    vocabulary: Vocabulary,
    word_stream: int,
) -> list[ReferringSample]:
    """The descriptions of ``chosen_facts`` in ``vocabulary``'s words (``word_stream``: its random stream)."""
    phraser = Phraser(
        vocabulary, scene.objects, nameable_anchors(scene), phrasing, scene_rng(scene.scene_id, seed, word_stream)
    )
    typo_rng = scene_rng(scene.scene_id, seed, word_stream + TYPO_STREAM_OFFSET)
    samples = []
    for facts, said in chosen_facts(scene, viewer, seed, referring):
        label = SPLIT_MULTIPLE if facts.distractors else SPLIT_UNIQUE
        for ann_id, fact in enumerate(said):
            samples.append(
                ReferringSample(
                    scene_id=scene.scene_id,
                    object_id=int(facts.target.object_id),
                    object_name=facts.target.category,
                    ann_id=ann_id,
                    description=phraser.describe(facts, fact, typo_rng),
                    split_label=label,
                    relation=fact.relation,
                    anchor_ids=fact.anchor_ids,
                )
            )
    return samples


def human_samples(
    scene: Scene,
    viewer: np.ndarray,
    seed: int = 0,
    referring: ReferringConfig = ReferringConfig(),
    phrasing: PhrasingConfig = PhrasingConfig(),
) -> list[ReferringSample]:
    """Training descriptions of every object that something true and unambiguous can be said of."""
    return phrase_samples(scene, viewer, seed, referring, phrasing, TRAINING_VOCABULARY, _WORD_STREAM)
