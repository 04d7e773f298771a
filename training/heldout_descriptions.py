"""The held-out phraser: NEVER USE FOR TRAINING. It measures how the model does on words and
sentences it has not seen (the ``<split>_heldout`` twins of a ``phrasing="human"`` dataset).

It says the same facts about the same targets as the training phraser
(``human_descriptions.chosen_facts``: same samples, same relations, same anchors), in
its own words: class-name synonyms, relation phrases, size words, fillers, sentence
frames and number words that the training vocabulary does not contain
(test_descriptions checks the disjointness). Shared with training, because they are
what the scene is rather than a way of saying it: colour names, "left"/"right",
ordinal words and the grammar (``phraser``).

``UNSEEN_CLASS_WORDS`` is the small fixed set of the issue's test "words absent from
the training data that mean a trained class ground like the trained word":
``swap_class_word`` rewrites a description naming a trained class with its unseen
synonym, ``unseen_word_pairs`` pairs a split's samples with their rewritten twins.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Sequence, TypeVar

import numpy as np

from w2r2_training.human_descriptions import phrase_samples
from w2r2_training.phraser import PhrasingConfig, Vocabulary
from w2r2_training.referring import ReferringConfig, ReferringSample
from w2r2_training.relation_facts import Scene

_WORD_STREAM = 11
SampleT = TypeVar("SampleT")  # a dataclass with ``description`` and ``object_name`` (Sample, ReferringSample)

HELDOUT_VOCABULARY = Vocabulary(
    names={
        "chair": ("armchair",),
        "table": ("worktable",),
        "sofa": ("couch", "settee"),
        "bed": ("bedstead",),
        "lamp": ("light", "luminaire"),
        "cabinet": ("cupboard", "sideboard"),
        "box": ("carton", "crate"),
        "plant": ("houseplant",),
        "monitor": ("screen", "display"),
        "trash can": ("garbage can", "wastebasket"),
        "door": ("doorway",),
        "window": ("windowpane",),
        "bookshelf": ("shelving unit",),
        "picture": ("artwork", "framed print"),
        "counter": ("worktop",),
        "desk": ("workstation",),
        "curtain": ("drape",),
        "refrigerator": ("icebox",),
        "shower curtain": ("bath curtain",),
        "toilet": ("loo", "wc"),
        "sink": ("basin",),
        "bathtub": ("tub",),
        "other furniture": ("ottoman", "pouf"),
        "cup": ("tumbler",),
        "book": ("paperback", "novel"),
    },
    phrases={
        "colour": ("the {n} you can see", "that {n} over there"),
        "on": ("the {n} resting upon {a}", "the {n} atop {a}", "the {n} perched on {a}"),
        "next_to": ("the {n} alongside {a}", "the {n} adjacent to {a}"),
        "leftmost": ("the {n} at the extreme left", "the {n} most to the left"),
        "rightmost": ("the {n} at the extreme right", "the {n} most to the right"),
        "front": ("the {n} in the foreground", "the {n} nearest my position"),
        "back": ("the {n} in the background", "the {n} most distant from my position"),
        "largest": ("the {n} which looks {sup}", "the {sup} {n} you can see"),
        "smallest": ("the {n} which looks {sup}", "the {sup} {n} you can see"),
        "tallest": ("the {n} which looks {sup}", "the {sup} {n} you can see"),
        "lowest": ("the {n} which looks {sup}", "the {sup} {n} you can see"),
        "nearest": ("the {n} with the shortest distance to {a}", "the {n} most proximate to {a}"),
        "farthest": ("the {n} most distant from {a}", "the {n} remotest from {a}"),
        "left_of": ("the {n} on the lefthand side of {a}", "the {n} leftward of {a}"),
        "right_of": ("the {n} on the righthand side of {a}", "the {n} rightward of {a}"),
        "front_of": ("the {n} positioned before {a}", "the {n} ahead of {a} as i look"),
        "behind": ("the {n} beyond {a}", "the {n} further back than {a}"),
        "between": ("the {n} flanked by {a} and {b}", "the {n} sandwiched by {a} and {b}"),
        "ordinal": ("the {n} that comes {k} counting from the {side}",),
        "ordinal_from": ("the {n} that comes {k} counting outward from {a}",),
    },
    predicates={
        "colour": ("can be seen over there", "appears in view"),
        "on": ("rests upon {a}", "is perched on {a}", "lies atop {a}"),
        "next_to": ("is alongside {a}", "is adjacent to {a}"),
        "leftmost": ("sits at the extreme left", "is most to the left"),
        "rightmost": ("sits at the extreme right", "is most to the right"),
        "front": ("is in the foreground", "is nearest my position"),
        "back": ("is in the background", "is most distant from my position"),
        "largest": ("looks {sup}",),
        "smallest": ("looks {sup}",),
        "tallest": ("looks {sup}",),
        "lowest": ("looks {sup}",),
        "nearest": ("has the shortest distance to {a}", "is most proximate to {a}"),
        "farthest": ("is most distant from {a}", "lies remotest from {a}"),
        "left_of": ("is on the lefthand side of {a}", "lies leftward of {a}"),
        "right_of": ("is on the righthand side of {a}", "lies rightward of {a}"),
        "front_of": ("is positioned before {a}", "lies ahead of {a} as i look"),
        "behind": ("lies beyond {a}", "is further back than {a}"),
        "between": ("is flanked by {a} and {b}", "is sandwiched by {a} and {b}"),
        "ordinal": ("comes {k} counting from the {side}",),
        "ordinal_from": ("comes {k} counting outward from {a}",),
    },
    superlatives={
        "largest": ("bulkiest", "most massive"),
        "smallest": ("tiniest", "littlest"),
        "tallest": ("loftiest",),
        "lowest": ("squattest", "least tall"),
    },
    comparatives={
        "largest": ("bulkier", "more massive"),
        "smallest": ("tinier", "littler"),
        "tallest": ("loftier",),
        "lowest": ("squatter", "less tall"),
    },
    fillers=("i need", "help me spot", "i would like to see", "kindly locate", "go to"),
    questions=("could you locate", "where would i find", "do you see"),
    frames=(
        "you will notice {an}. the one i want {pred}.",
        "my target: {an} which {pred}.",
        "spot the {n} which {pred}.",
        "{np}, if you would.",
    ),
    counting=(
        "among the {count} {ns}, i want the one which {pred}.",
        "{count} {ns} are here; select the one which {pred}.",
    ),
    numbers={2: "2", 3: "3", 4: "4", 5: "5"},
    materials={
        "wood": "timber", "metal": "steel", "fabric": "cloth", "plastic": "synthetic", "leather": "hide",
        "glass": "glazed", "ceramic": "porcelain",
    },
    shapes={"tall": ("towering",), "long": ("elongated",), "flat": ("squat",)},
    two_tone=("{c}-{c2}",),
    extra=("additionally, it {pred}.", "besides that, it {pred}."),
)

# The fixed test set: a trained class word -> a word meaning the same that the training phraser
# never uses (each is one of ``HELDOUT_VOCABULARY.names``).
UNSEEN_CLASS_WORDS: dict[str, str] = {
    "sofa": "couch",
    "lamp": "light",
    "monitor": "screen",
    "cabinet": "cupboard",
    "box": "carton",
    "trash can": "garbage can",
    "plant": "houseplant",
    "chair": "armchair",
}


def swap_class_word(description: str, category: str, words: Mapping[str, str] = UNSEEN_CLASS_WORDS) -> str:
    """``description`` with every whole-word mention of ``category`` replaced by its unseen synonym in ``words``
    (class -> word; default ``UNSEEN_CLASS_WORDS``); a category outside ``words`` is a ValueError."""
    if category not in words:
        raise ValueError(f"swap_class_word: no unseen synonym for {category!r} (have {sorted(words)})")
    return re.sub(rf"\b{re.escape(category)}\b", words[category], description)


def unseen_word_pairs(
    samples: Sequence[SampleT], words: Mapping[str, str] = UNSEEN_CLASS_WORDS
) -> list[tuple[SampleT, SampleT]]:
    """(sample, the same sample with its class word swapped for the unseen synonym) for every sample whose
    description names its target's class (``object_name``) by a class word of ``words``: evaluate a model on
    both sides to see whether an unseen word grounds like the trained one."""
    return [
        (s, dataclasses.replace(s, description=swap_class_word(s.description, s.object_name, words)))
        for s in samples
        if s.object_name in words and re.search(rf"\b{re.escape(s.object_name)}\b", s.description)
    ]


def heldout_samples(
    scene: Scene,
    viewer: np.ndarray,
    seed: int = 0,
    referring: ReferringConfig = ReferringConfig(),
    phrasing: PhrasingConfig = PhrasingConfig(),
) -> list[ReferringSample]:
    """Held-out descriptions of the same samples as ``human_samples`` (same objects, ann ids, relations)."""
    return phrase_samples(scene, viewer, seed, referring, phrasing, HELDOUT_VOCABULARY, _WORD_STREAM)
