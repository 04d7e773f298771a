"""Referring expressions: every description is true for its target and false for every distractor.

The relations are recomputed here from the boxes, independently of training/referring.py.
"""
from collections import Counter

import numpy as np
import pytest

from w2r2_ros.sim.world import generate_scene
from w2r2_training.referring import ReferringConfig, referring_samples

SCENES = [generate_scene(f"ref{i:03d}", seed=3) for i in range(40)]
CFG = ReferringConfig()


def _xy(obj):
    return np.asarray(obj.box.center)[:2]


def _dist(a, b):
    return float(np.hypot(*(_xy(a) - _xy(b))))


def _gap(a, b):
    lo = np.maximum(a.box.min_corner[:2] - b.box.max_corner[:2], b.box.min_corner[:2] - a.box.max_corner[:2])
    return float(np.linalg.norm(np.maximum(lo, 0.0)))


def _holds(relation, obj, anchors, cfg):
    """Does an absolute relation (one that needs no distractor to be true) hold, from geometry alone?"""
    if relation == "next_to":
        return _gap(obj, anchors[0]) <= cfg.next_to_gap_m
    if relation == "on":
        return obj.support_id == anchors[0].object_id
    if relation == "between":
        a, b = anchors
        return _dist(a, obj) + _dist(obj, b) - _dist(a, b) <= cfg.between_excess_m
    raise AssertionError(relation)


def _check_multiple(sample, scene, cfg):
    target = scene.object_by_id(sample.object_id)
    others = [o for o in scene.objects if o.category == target.category and o is not target]
    anchors = [scene.object_by_id(i) for i in sample.anchor_ids]
    m = cfg.distance_margin_m
    rel = sample.relation
    y, x = _xy(target)[1], _xy(target)[0]
    if rel == "leftmost":  # viewer at the entrance looking along +x: left is +y
        assert all(y >= _xy(o)[1] + m for o in others)
    elif rel == "rightmost":
        assert all(y <= _xy(o)[1] - m for o in others)
    elif rel == "back":
        assert all(x >= _xy(o)[0] + m for o in others)
    elif rel == "front":
        assert all(x <= _xy(o)[0] - m for o in others)
    elif rel in ("largest", "smallest", "tallest"):
        key = (lambda o: o.box.size[2]) if rel == "tallest" else (lambda o: float(np.prod(o.box.size)))
        if rel == "smallest":
            assert all(key(target) * cfg.size_ratio <= key(o) for o in others)
        else:
            assert all(key(target) >= key(o) * cfg.size_ratio for o in others)
    elif rel == "nearest":
        assert all(_dist(target, anchors[0]) + m <= _dist(o, anchors[0]) for o in others)
    elif rel == "farthest":
        assert all(_dist(target, anchors[0]) >= _dist(o, anchors[0]) + m for o in others)
    elif rel == "left_of":
        assert _xy(target)[1] - _xy(anchors[0])[1] >= m
        assert all(_xy(o)[1] <= _xy(anchors[0])[1] for o in others)
    elif rel == "right_of":
        assert _xy(target)[1] - _xy(anchors[0])[1] <= -m
        assert all(_xy(o)[1] >= _xy(anchors[0])[1] for o in others)
    elif rel in ("next_to", "between", "on"):
        assert _holds(rel, target, anchors, cfg)
        for o in others:
            if rel == "next_to":
                assert _gap(o, anchors[0]) >= cfg.next_to_gap_m + m
            elif rel == "between":
                a, b = anchors
                assert _dist(a, o) + _dist(o, b) - _dist(a, b) >= cfg.between_excess_m + m
            else:
                assert o.support_id != anchors[0].object_id
    else:
        raise AssertionError(f"unknown relation {rel}")


def test_every_description_is_true_and_unambiguous():
    relations = Counter()
    for scene in SCENES:
        categories = Counter(o.category for o in scene.objects)
        for sample in referring_samples(scene, seed=1):
            target = scene.object_by_id(sample.object_id)
            assert sample.object_name == target.category
            assert sample.split_label == ("unique" if categories[target.category] == 1 else "multiple")
            assert sample.description.strip()
            relations[sample.relation] += 1
            for anchor_id in sample.anchor_ids:
                anchor = scene.object_by_id(anchor_id)
                assert anchor.category != target.category
                # the anchor is named so that exactly one object of the scene fits the name
                if categories[anchor.category] == 1:
                    assert f"the {anchor.category}" in sample.description
                else:
                    assert f"the {anchor.color_name} {anchor.category}" in sample.description
                    twins = [o for o in scene.objects if (o.category, o.color_name) == (anchor.category, anchor.color_name)]
                    assert twins == [anchor]
            if sample.split_label == "multiple":
                _check_multiple(sample, scene, CFG)
                same_colour = [o for o in scene.objects if o.category == target.category
                               and o is not target and o.color_name == target.color_name]
                if f"{target.color_name} {target.category}" in sample.description:
                    # colour is only mentioned when it does not decide the target on its own
                    assert same_colour
            else:
                if sample.relation == "colour":
                    assert target.color_name in sample.description and target.category in sample.description
                else:
                    assert _holds(sample.relation, target, [scene.object_by_id(i) for i in sample.anchor_ids], CFG)
    # The spatial vocabulary is actually used, not just one relation.
    assert {"nearest", "farthest", "between", "leftmost", "colour"} <= set(relations)
    assert sum(relations.values()) > 100


def test_deterministic_and_several_per_object():
    scene = SCENES[0]
    a = referring_samples(scene, seed=7)
    b = referring_samples(scene, seed=7)
    assert a == b
    assert referring_samples(scene, seed=8) != a
    per_object = Counter(s.object_id for s in a)
    assert max(per_object.values()) == CFG.expressions_per_object
    for object_id in per_object:
        ann_ids = [s.ann_id for s in a if s.object_id == object_id]
        assert ann_ids == list(range(len(ann_ids)))
        texts = [s.description for s in a if s.object_id == object_id]
        assert len(set(texts)) == len(texts)


def test_both_splits_present_and_multiple_dominates():
    labels = Counter(s.split_label for scene in SCENES for s in referring_samples(scene, seed=0))
    assert labels["unique"] > 0 and labels["multiple"] > labels["unique"]


@pytest.mark.parametrize("n_expressions", [1, 5])
def test_expressions_per_object_is_respected(n_expressions):
    cfg = ReferringConfig(expressions_per_object=n_expressions)
    counts = Counter(s.object_id for s in referring_samples(SCENES[1], seed=0, config=cfg))
    assert counts and max(counts.values()) == n_expressions
