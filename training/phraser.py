"""How a vocabulary turns one true fact about a target into 1-3 sentences a person might say.

The words live in a ``Vocabulary`` (the training one in ``human_descriptions``, the
held-out one in ``heldout_descriptions``); this module only combines them, so the
two phrasers share the grammar but not a single template or class-name synonym.

A description is a *frame* around the fact: a bare noun phrase ("the chair on the
left."), a filler + noun phrase ("can you show me the chair on the left?"), two
sentences ("this is a blue box. it is on the right side of the purple sofa."), or a
counting form for targets with distractors ("of the three chairs, find the one that
is closest to the bed."). Attributes (colour, second colour, material, shape) are
added to the target's name where they are true; for a target with same-category
distractors only when some distractor shares them, so an attribute never singles
the target out on its own and the fact stays what decides it. Anchors are named
like ``referring.anchor_phrases`` (category alone when unique in the scene, else
colour + category), with the vocabulary's synonyms.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from w2r2_training.relation_facts import Fact, SceneObject, TargetFacts

# Relations whose words change for a group of two ("the bigger chair" rather than "the biggest").
SIZE_RELATIONS = ("largest", "smallest", "tallest", "lowest")
_ORDINAL_WORDS = {2: "second", 3: "third", 4: "fourth"}


@dataclass(frozen=True)
class Vocabulary:
    """Everything a phraser may say. Templates use ``{n}`` (the target's name with its attributes),
    ``{a}``/``{b}`` (anchors), ``{k}`` (ordinal word, "second"), ``{side}`` ("left"/"right"), ``{sup}``
    (a size word of ``superlatives`` or, for a group of two, ``comparatives``).

    ``names``: category -> synonyms (the first is not preferred; all are drawn alike).
    ``phrases``: relation -> noun phrases ("the {n} next to {a}"; "ordinal_from" for "the second chair
    from the door"); ``predicates``: relation -> verb
    phrases ("is next to {a}") for the two-sentence and counting frames. ``fillers`` end in the noun
    phrase ("can you show me"); ``questions`` (fillers after which a "?" goes). ``frames``: multi-sentence
    forms with ``{an}`` (indefinite article + name), ``{np}`` (the noun phrase) and ``{pred}``; ``counting``:
    forms with ``{count}`` (a word of ``numbers``), ``{ns}`` (plural name) and ``{pred}``; ``extra``: a
    sentence with ``{pred}`` of a second true fact ("it is also next to {a}.").
    ``materials``: ObjectSpec.material -> adjective. ``shapes``: shape key (``shape_of``) -> adjectives.
    """

    names: Mapping[str, tuple[str, ...]]
    phrases: Mapping[str, tuple[str, ...]]
    predicates: Mapping[str, tuple[str, ...]]
    superlatives: Mapping[str, tuple[str, ...]]
    comparatives: Mapping[str, tuple[str, ...]]
    fillers: tuple[str, ...]
    questions: tuple[str, ...]
    frames: tuple[str, ...]
    counting: tuple[str, ...]
    numbers: Mapping[int, str]
    materials: Mapping[str, str] = field(default_factory=dict)
    shapes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    two_tone: tuple[str, ...] = ("{c} and {c2}",)
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhrasingConfig:
    """Rates of the human phrasers' optional parts (probabilities per description).

    ``typo_rate``: share of descriptions with one typo (a letter swapped, dropped or doubled in a word
    of 4+ letters; drawn from a stream of its own so the rest of the description does not change with
    it). ``filler_rate``/``multi_sentence_rate``/``counting_rate``: share of descriptions framed that way
    (counting only where the target has distractors). ``attribute_rate``: chance of each true
    attribute being said. ``extra_fact_rate``: share of descriptions followed by a sentence with a
    second true fact (the sample's ``relation`` stays the first one, which alone decides).
    """

    typo_rate: float = 0.05
    filler_rate: float = 0.35
    multi_sentence_rate: float = 0.3
    counting_rate: float = 0.25
    attribute_rate: float = 0.5
    extra_fact_rate: float = 0.2

    def __post_init__(self) -> None:
        for name in ("typo_rate", "filler_rate", "multi_sentence_rate", "counting_rate", "attribute_rate",
                     "extra_fact_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"PhrasingConfig.{name} must be in [0, 1], got {getattr(self, name)}")


def _template_key(fact: Fact) -> str:
    """The vocabulary entry of a fact: its relation, or "ordinal_from" for an ordinal counted from an anchor."""
    return "ordinal_from" if fact.relation == "ordinal" and fact.anchor_ids else fact.relation


def plural(name: str) -> str:
    """English plural of a (possibly multi-word) name: the head noun is the last word, or the one before "of"."""
    words = name.split()
    head = words.index("of") - 1 if "of" in words else len(words) - 1
    word = words[head]
    if word.endswith("f") and word[-2:] in ("lf", "ef"):
        word = word[:-1] + "ves"
    elif word.endswith(("s", "x", "ch", "sh")):
        word += "es"
    elif word.endswith("y") and word[-2:-1] not in "aeiou":
        word = word[:-1] + "ies"
    else:
        word += "s"
    words[head] = word
    return " ".join(words)


def article(phrase: str) -> str:
    """"a chair", "an orange chair"."""
    return f"{'an' if phrase[:1] in 'aeiou' else 'a'} {phrase}"


def shape_of(obj: SceneObject) -> str:
    """A shape word that is true of the box: "tall" (height >= 1.6 x its widest side), "long" (footprint
    at least twice as long as wide, not tall), "flat" (height <= 0.3 x its narrowest side), else ""."""
    sx, sy, sz = (float(v) for v in obj.box.size)
    if sz >= 1.6 * max(sx, sy):
        return "tall"
    if max(sx, sy) >= 2.0 * min(sx, sy):
        return "long"
    if sz <= 0.3 * min(sx, sy):
        return "flat"
    return ""


def add_typo(text: str, rng: np.random.Generator) -> str:
    """One typo in a random word of 4+ letters: two letters swapped, one dropped or one doubled."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if sum(ch.isalpha() for ch in w) >= 4]
    if not candidates:
        return text
    i = candidates[int(rng.integers(len(candidates)))]
    word = words[i]
    letters = [j for j, ch in enumerate(word) if ch.isalpha()]
    j = letters[int(rng.integers(1, len(letters) - 1))]
    kind = int(rng.integers(3))
    if kind == 0 and word[j + 1 : j + 2].isalpha() and word[j] != word[j + 1]:
        word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    elif kind == 1:
        word = word[:j] + word[j + 1 :]
    else:
        word = word[:j] + word[j] + word[j:]
    words[i] = word
    return " ".join(words)


class Phraser:
    """Says facts of one scene with one vocabulary. ``anchors`` (``nameable_anchors``): object id ->
    whether its name needs the colour. Anchor synonyms are drawn once per description, so one
    description never calls the same object two names."""

    def __init__(
        self, vocabulary: Vocabulary, objects: Sequence[SceneObject], anchors: Mapping[int, bool], config: PhrasingConfig,
        rng: np.random.Generator,
    ) -> None:
        self.vocab, self.config, self.rng = vocabulary, config, rng
        self.by_id = {o.object_id: o for o in objects}
        self.anchors = anchors

    def _pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def name(self, category: str) -> str:
        """A synonym of the category (a category the vocabulary does not know is said as it is)."""
        return self._pick(self.vocab.names.get(category, (category.replace("_", " "),)))

    def anchor(self, object_id: int) -> str:
        obj = self.by_id[object_id]
        name = self.name(obj.category)
        return f"the {obj.color_name} {name}" if self.anchors[object_id] else f"the {name}"

    def _attributes(self, facts: TargetFacts) -> list[str]:
        """True attribute words of the target that may be said, in English order: shape, colour, material
        ("the tall yellow fabric lamp"). With distractors, every word said must leave at least one
        distractor that has all the words said so far, so the attributes together never decide."""
        target = facts.target
        matching = list(facts.distractors)
        said: list[str] = []

        def keep(key: Callable[[SceneObject], str]) -> bool:
            nonlocal matching
            value = key(target)
            same = [d for d in matching if key(d) == value]
            if not value or (facts.distractors and not same) or self.rng.random() >= self.config.attribute_rate:
                return False
            matching = same
            return True

        shape = shape_of(target)
        if shape in self.vocab.shapes and keep(shape_of):
            said.append(self._pick(self.vocab.shapes[shape]))
        if keep(lambda o: o.color_name):
            second = getattr(target, "second_color", "")
            if self.vocab.two_tone and keep(lambda o: getattr(o, "second_color", "")):
                said.append(self._pick(self.vocab.two_tone).format(c=target.color_name, c2=second))
            else:
                said.append(target.color_name)
        material = getattr(target, "material", "")
        if material in self.vocab.materials and keep(lambda o: getattr(o, "material", "")):
            said.append(self.vocab.materials[material])
        return said

    def _fact_fields(self, facts: TargetFacts, fact: Fact, names: dict[int, str]) -> dict[str, str]:
        """The fact's own template fields (anchors, ordinal, size word); ``names`` keeps one name per anchor."""
        fields = {"side": fact.side}
        for key, anchor_id in zip("ab", fact.anchor_ids):
            if anchor_id not in names:
                names[anchor_id] = self.anchor(anchor_id)
            fields[key] = names[anchor_id]
        if fact.relation == "ordinal":
            fields["k"] = _ORDINAL_WORDS.get(fact.ordinal, f"{fact.ordinal}th")
        if fact.relation in SIZE_RELATIONS:
            words = self.vocab.comparatives if facts.group_size == 2 else self.vocab.superlatives
            fields["sup"] = self._pick(words[fact.relation])
        return fields

    def describe(self, facts: TargetFacts, fact: Fact, typo_rng: np.random.Generator) -> str:
        """One description of ``fact``, lower case like ScanRefer's; sometimes (``extra_fact_rate``) a
        sentence with another true fact of the target follows."""
        cfg, names = self.config, {}
        name = self.name(facts.target.category)
        noun = " ".join(self._attributes(facts) + [name])
        fields = {"n": noun, "an": article(noun), "ns": plural(name),
                  "count": self.vocab.numbers.get(facts.group_size, str(facts.group_size))}
        fields.update(self._fact_fields(facts, fact, names))
        fields["np"] = self._pick(self.vocab.phrases[_template_key(fact)]).format(**fields)
        fields["pred"] = self._pick(self.vocab.predicates[_template_key(fact)]).format(**fields)
        counting = cfg.counting_rate if facts.distractors else 0.0
        draw = self.rng.random()
        if draw < counting:
            text = self._pick(self.vocab.counting)
        elif draw < counting + cfg.multi_sentence_rate:
            text = self._pick(self.vocab.frames)
        elif draw < counting + cfg.multi_sentence_rate + cfg.filler_rate:
            filler = self._pick(self.vocab.fillers + self.vocab.questions)
            text = f"{filler} {{np}}" + ("?" if filler in self.vocab.questions else ".")
        else:
            text = "{np}."
        text = text.format(**fields)
        others = [f for f in facts.facts if f.relation not in (fact.relation, "colour")]
        if others and self.vocab.extra and self.rng.random() < cfg.extra_fact_rate:
            other = others[int(self.rng.integers(len(others)))]
            other_fields = {**fields, **self._fact_fields(facts, other, names)}
            pred = self._pick(self.vocab.predicates[_template_key(other)]).format(**other_fields)
            text += " " + self._pick(self.vocab.extra).format(pred=pred)
        if typo_rng.random() < cfg.typo_rate:
            text = add_typo(text, typo_rng)
        return " ".join(text.split())
