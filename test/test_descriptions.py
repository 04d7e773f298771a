"""Human-like descriptions: true for the viewer, unambiguous, disjoint held-out words, typo rate, old templates kept.

Relations are recomputed here from the map-frame boxes (``SceneSpec.boxes``) and the
viewer, independently of training/relation_facts.py (which goes through the room frame).
"""
import dataclasses
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from w2r2_ros.geometry.viewer import to_viewer_frame, viewer_from_camera_pose
from w2r2_ros.sim.trajectory import orbit_trajectory
from w2r2_ros.sim.world import SceneConfig, generate_scene
from w2r2_training.heldout_descriptions import (
    HELDOUT_VOCABULARY,
    UNSEEN_CLASS_WORDS,
    heldout_samples,
    swap_class_word,
    unseen_word_pairs,
)
from w2r2_training.human_descriptions import TRAINING_VOCABULARY, human_samples
from w2r2_training.phraser import Phraser, PhrasingConfig, add_typo, plural, shape_of
from w2r2_training.referring import ReferringConfig, referring_samples
from w2r2_training.relation_facts import RELATIONS, nameable_anchors, scene_facts

CFG = ReferringConfig()
ORDINALS = {2: "second", 3: "third", 4: "fourth"}
SCENES = [generate_scene(f"desc{i:03d}", seed=5) for i in range(30)]
SCANNET = [generate_scene(f"desc{i:03d}", seed=5, config=SceneConfig(catalogue="scannet")) for i in range(20)]


def _viewer(scene):
    return viewer_from_camera_pose(orbit_trajectory(scene, 16, 0)[-1])


def _words(vocabulary):
    """Every word a vocabulary can produce (placeholders removed)."""
    texts = [name for names in vocabulary.names.values() for name in names]
    for table in (vocabulary.phrases, vocabulary.predicates, vocabulary.superlatives, vocabulary.comparatives,
                  vocabulary.shapes):
        texts += [t for options in table.values() for t in options]
    texts += [*vocabulary.fillers, *vocabulary.questions, *vocabulary.frames, *vocabulary.counting, *vocabulary.two_tone,
              *vocabulary.extra]
    texts += [*vocabulary.numbers.values(), *vocabulary.materials.values()]
    return {w for t in texts for w in re.findall(r"[a-z0-9']+", re.sub(r"\{\w+\}", " ", t))}


def _swap_sides(fact):
    swap = {"leftmost": "rightmost", "rightmost": "leftmost", "front": "back", "back": "front", "left_of": "right_of",
            "right_of": "left_of", "front_of": "behind", "behind": "front_of"}
    side = {"left": "right", "right": "left"}.get(fact.side, fact.side)
    return dataclasses.replace(fact, relation=swap.get(fact.relation, fact.relation), side=side)


def test_turning_the_viewer_round_swaps_left_and_right_and_front_and_back():
    swapped_some = 0
    for scene in SCENES:
        # Two viewers facing each other across the room: what is left for one is right for the other.
        facing_x = scene_facts(scene, CFG.margins(), np.array([-20.0, 0.0, 0.0]), extended=True)
        facing_back = scene_facts(scene, CFG.margins(), np.array([20.0, 0.0, np.pi]), extended=True)
        for one, other in zip(facing_x, facing_back):
            assert {_swap_sides(f) for f in one.facts} == set(other.facts)
            swapped_some += sum(f.relation in ("leftmost", "left_of", "front", "ordinal") for f in one.facts)
    assert swapped_some > 20


def test_a_turned_map_with_its_viewer_gives_the_same_descriptions():
    for i in range(8):
        straight = generate_scene(f"turn{i:02d}", seed=2)
        turned = generate_scene(f"turn{i:02d}", seed=2, config=SceneConfig(yaw_deg=(127.0, 127.0)))
        assert not np.allclose(straight.boxes()[:, :2], turned.boxes()[:, :2])
        for make in (human_samples, heldout_samples):
            assert make(straight, _viewer(straight), seed=4) == make(turned, _viewer(turned), seed=4)


def _viewer_xy(scene, viewer):
    centres = to_viewer_frame(scene.boxes()[:, :3], viewer)
    return {o.object_id: centres[i, :2] for i, o in enumerate(scene.objects)}


def _check(sample, scene, xy, cfg):
    """The sample's relation holds for its target and fails for every same-category distractor."""
    target = scene.object_by_id(sample.object_id)
    others = [o for o in scene.objects if o.category == target.category and o is not target]
    anchors = [scene.object_by_id(i) for i in sample.anchor_ids]
    m, rel, t = cfg.distance_margin_m, sample.relation, xy[target.object_id]
    extremes = {"leftmost": (1, 1), "rightmost": (1, -1), "back": (0, 1), "front": (0, -1)}
    sizes = {"largest": (lambda o: float(np.prod(o.box.size)), 1), "smallest": (lambda o: float(np.prod(o.box.size)), -1),
             "tallest": (lambda o: float(o.box.size[2]), 1), "lowest": (lambda o: float(o.box.size[2]), -1)}
    sides = {"left_of": (1, 1), "right_of": (1, -1), "behind": (0, 1), "front_of": (0, -1)}
    if rel in extremes:
        axis, sign = extremes[rel]
        assert all(sign * (t[axis] - xy[o.object_id][axis]) >= m for o in others)
    elif rel in sizes:
        key, sign = sizes[rel]
        for o in others:
            big, small = (target, o) if sign > 0 else (o, target)
            assert key(big) >= key(small) * cfg.size_ratio
    elif rel in ("nearest", "farthest"):
        a = xy[anchors[0].object_id]
        d = np.linalg.norm(t - a)
        for o in others:
            d_o = np.linalg.norm(xy[o.object_id] - a)
            assert (d + m <= d_o) if rel == "nearest" else (d >= d_o + m)
    elif rel in sides:
        axis, sign = sides[rel]
        a = xy[anchors[0].object_id]
        assert sign * (t[axis] - a[axis]) >= m and abs(t[axis] - a[axis]) >= abs(t[1 - axis] - a[1 - axis])
        assert all(sign * (xy[o.object_id][axis] - a[axis]) <= 0 for o in others)
    elif rel == "ordinal" and anchors:  # "the second chair from the door": by distance from the anchor
        a = xy[anchors[0].object_id]
        d = np.linalg.norm(t - a)
        others_d = [np.linalg.norm(xy[o.object_id] - a) for o in others]
        assert len(others) >= 2 and all(abs(d_o - d) >= m for d_o in others_d)
        rank = 1 + sum(d_o < d for d_o in others_d)
        assert 1 < rank <= len(others) and re.search(rf"\b{ORDINALS[rank]}\b", sample.description), sample
    elif rel == "ordinal":
        assert len(others) >= 2 and all(abs(xy[o.object_id][1] - t[1]) >= m for o in others)
        left_of_target = sum(xy[o.object_id][1] > t[1] for o in others)
        from_left, from_right = ORDINALS[left_of_target + 1], ORDINALS[len(others) - left_of_target + 1]
        assert re.search(rf"\b{from_left}\b.*\bleft\b|\b{from_right}\b.*\bright\b", sample.description), sample
    elif rel == "between":
        a, b = (xy[x.object_id] for x in anchors)
        detour = lambda p: np.linalg.norm(a - p) + np.linalg.norm(p - b) - np.linalg.norm(a - b)  # noqa: E731
        assert detour(t) <= cfg.between_excess_m
        assert all(detour(xy[o.object_id]) >= cfg.between_excess_m + m for o in others)
    elif rel == "on":
        assert target.support_id == anchors[0].object_id and all(o.support_id != target.support_id for o in others)
    elif rel == "next_to":
        pass  # footprint gaps do not depend on the viewer; test_referring checks them
    else:
        raise AssertionError(f"{rel} on a multiple sample")


@pytest.mark.parametrize("make", [human_samples, heldout_samples])
def test_every_multiple_description_is_true_and_unambiguous_for_the_viewer(make):
    relations, anchored_ordinals = Counter(), 0
    for scene in SCENES + SCANNET:
        viewer = _viewer(scene)
        xy = _viewer_xy(scene, viewer)
        for sample in make(scene, viewer, seed=1, phrasing=PhrasingConfig(typo_rate=0.0)):
            assert sample.relation in RELATIONS and sample.description.strip()
            relations[sample.relation] += 1
            anchored_ordinals += sample.relation == "ordinal" and bool(sample.anchor_ids)
            if sample.split_label == "multiple":
                _check(sample, scene, xy, CFG)
    assert {"leftmost", "rightmost", "front", "back", "left_of", "ordinal", "nearest", "between", "colour"} <= set(relations)
    assert anchored_ordinals > 0


def test_the_heldout_twin_describes_the_same_samples_in_other_words():
    scene = SCENES[3]
    viewer = _viewer(scene)
    train, held = human_samples(scene, viewer), heldout_samples(scene, viewer)
    key = lambda s: (s.object_id, s.ann_id, s.split_label, s.relation, s.anchor_ids)  # noqa: E731
    assert [key(s) for s in train] == [key(s) for s in held] and train
    assert all(a.description != b.description for a, b in zip(train, held))


def test_heldout_words_are_never_used_by_the_training_phraser():
    training_words = _words(TRAINING_VOCABULARY)
    training_names = {n for names in TRAINING_VOCABULARY.names.values() for n in names} | set(TRAINING_VOCABULARY.names)
    assert set(HELDOUT_VOCABULARY.names) == set(TRAINING_VOCABULARY.names)
    for category, names in HELDOUT_VOCABULARY.names.items():
        for name in names:
            assert name not in training_names, name
            assert set(name.split()) - training_words, f"{category}: {name!r} uses only training words"
    for table in ("phrases", "predicates"):
        for relation, templates in getattr(HELDOUT_VOCABULARY, table).items():
            for template in templates:
                assert template not in getattr(TRAINING_VOCABULARY, table)[relation]
                assert _words_of(template) - training_words, f"{relation}: {template!r} uses only training words"
    for template in (*HELDOUT_VOCABULARY.fillers, *HELDOUT_VOCABULARY.questions, *HELDOUT_VOCABULARY.frames,
                     *HELDOUT_VOCABULARY.counting):
        assert _words_of(template) - training_words, template
    for words in (*HELDOUT_VOCABULARY.superlatives.values(), *HELDOUT_VOCABULARY.comparatives.values()):
        assert all(set(w.split()) - training_words for w in words), words
    # The fixed test set: the unseen word means the class and the training phraser never says it.
    for category, unseen in UNSEEN_CLASS_WORDS.items():
        assert unseen in HELDOUT_VOCABULARY.names[category] and not set(unseen.split()) <= training_words


def test_the_fresh_synonym_set_is_said_by_neither_phraser():
    """configs/unseen_words_fresh.json measures words no phraser says: none of its words may be one the
    training or the held-out phraser uses (its first version held seven training synonyms, e.g. chair -> seat)."""
    fresh = json.loads((Path(__file__).resolve().parents[1] / "configs" / "unseen_words_fresh.json").read_text())
    said = _words(TRAINING_VOCABULARY) | _words(HELDOUT_VOCABULARY)
    assert set(fresh) <= set(TRAINING_VOCABULARY.names)
    for category, word in fresh.items():
        assert not set(word.split()) & said, f"{category}: {word!r} is said by a phraser"


def _words_of(template):
    return set(re.findall(r"[a-z0-9']+", re.sub(r"\{\w+\}", " ", template)))


def test_swap_class_word_replaces_whole_words_only():
    assert swap_class_word("the box on the boxes' table.", "box") == "the carton on the boxes' table."
    assert swap_class_word("the trash can nearest the sofa.", "trash can") == "the garbage can nearest the sofa."
    with pytest.raises(ValueError, match="no unseen synonym"):
        swap_class_word("the bed.", "bed")
    samples = referring_samples(SCENES[2], seed=0)
    pairs = unseen_word_pairs(samples)
    assert pairs and all(UNSEEN_CLASS_WORDS[a.object_name] in b.description for a, b in pairs)
    assert all(dataclasses.replace(a, description="") == dataclasses.replace(b, description="") for a, b in pairs)
    assert len(pairs) == sum(s.object_name in UNSEEN_CLASS_WORDS for s in samples)  # templates name the class


def test_typo_rate_is_respected_and_changes_nothing_else():
    clean_cfg, typo_cfg = PhrasingConfig(typo_rate=0.0), PhrasingConfig(typo_rate=0.3)
    changed = total = 0
    for scene in SCENES:
        viewer = _viewer(scene)
        clean, typos = human_samples(scene, viewer, phrasing=clean_cfg), human_samples(scene, viewer, phrasing=typo_cfg)
        for a, b in zip(clean, typos):
            assert dataclasses.replace(a, description="") == dataclasses.replace(b, description="")
            total += 1
            if a.description != b.description:
                changed += 1
                assert len(a.description.split()) == len(b.description.split())
                assert sum(x != y for x, y in zip(a.description.split(), b.description.split())) == 1
    assert total > 300 and 0.2 < changed / total < 0.4


def test_add_typo_changes_one_word_and_plurals():
    rng = np.random.default_rng(0)
    for _ in range(50):
        text = add_typo("find the wooden chair next to the bed.", rng)
        assert sum(a != b for a, b in zip(text.split(), "find the wooden chair next to the bed.".split())) == 1
    assert [plural(n) for n in ("box", "bookshelf", "trash can", "piece of furniture", "cup")] == [
        "boxes", "bookshelves", "trash cans", "pieces of furniture", "cups"]


def test_scannet_class_names_are_said_as_people_say_them():
    text = " ".join(s.description for scene in SCANNET for s in human_samples(scene, _viewer(scene)))
    held = " ".join(s.description for scene in SCANNET for s in heldout_samples(scene, _viewer(scene)))
    assert "other furniture" not in text + held
    assert {"wooden", "fabric"} <= set(text.split()) and {"timber", "cloth"} <= set(held.split())
    assert "shower curtain" in text or "bathtub" in text


def test_attributes_of_a_target_with_distractors_never_decide_on_their_own():
    said_some = 0
    for vocabulary in (TRAINING_VOCABULARY, HELDOUT_VOCABULARY):
        for scene in SCANNET:
            phraser = Phraser(vocabulary, scene.objects, nameable_anchors(scene), PhrasingConfig(attribute_rate=1.0),
                              np.random.default_rng(0))
            for facts in scene_facts(scene, CFG.margins(), _viewer(scene), extended=True):
                if not facts.distractors:
                    continue
                words, target = phraser._attributes(facts), facts.target
                text = " ".join(words)
                tests = []
                if re.search(rf"\b{target.color_name}\b", text):
                    tests.append(lambda o: o.color_name == target.color_name)
                if target.second_color and re.search(rf"\b{target.second_color}\b", text):
                    tests.append(lambda o: o.second_color == target.second_color)
                if vocabulary.materials.get(target.material, "@") in words:
                    tests.append(lambda o: o.material == target.material)
                if shape_of(target) and set(vocabulary.shapes.get(shape_of(target), ())) & set(words):
                    tests.append(lambda o: shape_of(o) == shape_of(target))
                assert len(tests) >= len(words), (words, target)  # every word said is one of the known attributes
                assert any(all(t(d) for t in tests) for d in facts.distractors), (words, target)
                said_some += len(words) > 1
    assert said_some > 10


# sha256 of the template descriptions of 20 scenes as made before the human phrasers existed (commit 941a48f):
# phrasing="templates" must stay bit for bit what it was, so old datasets rebuild identically.
_TEMPLATE_DIGEST = "56b5a60d750f9fb7682fb6f126a05ff784d9a95fae55297ff78a05dac32f97b9"


def test_templates_are_unchanged():
    digest = hashlib.sha256()
    for i in range(20):
        for config in (SceneConfig(), SceneConfig(yaw_deg=(0.0, 360.0), n_rooms=(1, 3))):
            for sample in referring_samples(generate_scene(f"tpl{i:02d}", seed=i % 3, config=config), seed=i % 2):
                digest.update(repr(sample).encode())
    assert digest.hexdigest() == _TEMPLATE_DIGEST


def test_a_human_dataset_has_heldout_twins_that_load_and_validate(tmp_path):
    """phrasing="human": every split gets a <split>_heldout twin with the same scenes; the format, the
    validator and the loader accept the shared scene ids (only for a twin, and only all of them)."""
    import json

    from w2r2_training.dataset import GroundingDataset
    from w2r2_training.dataset_format import DatasetError, read_manifest, read_samples, read_scene, validate_dataset
    from w2r2_training.synthetic_dataset import SyntheticDatasetConfig, build_synthetic_dataset

    config = SyntheticDatasetConfig(n_train=1, n_val=0, n_test=1, frames_per_scene=4, keyframes_per_scene=2, width=160,
                                    height=120, workers=1, phrasing="human")
    root = tmp_path / "human"
    manifest = build_synthetic_dataset(root, config, progress=False)
    assert manifest.splits == {"train": ["syn00000"], "val": [], "test": ["syn00001"], "train_heldout": ["syn00000"],
                               "val_heldout": [], "test_heldout": ["syn00001"]}
    assert manifest.generator["phrasing"] == "human" and "phrasing" not in SyntheticDatasetConfig().generator_settings()
    validate_dataset(root)
    test, held = read_samples(root, "test"), read_samples(root, "test_heldout")
    assert [(s.object_id, s.ann_id, s.relation, s.target_proposal) for s in test] == [
        (s.object_id, s.ann_id, s.relation, s.target_proposal) for s in held] and test
    assert {s.description for s in test}.isdisjoint(s.description for s in held)
    # The directions are those of the record's viewer (the recording's last pose, what the model reads).
    viewer = read_scene(root, "syn00001").inputs.viewer.numpy().astype(np.float64)
    last_pose = orbit_trajectory(generate_scene("syn00001", 0), config.frames_per_scene, config.seed)[-1]
    np.testing.assert_allclose(viewer, viewer_from_camera_pose(last_pose), atol=1e-5)
    assert [s.description for s in test] == [s.description for s in human_samples(generate_scene("syn00001", 0), viewer)]
    assert len(GroundingDataset(root, "test_heldout")) == len(held)
    # A rebuild with the same settings is a no-op; a twin with other scenes than its split is refused.
    assert build_synthetic_dataset(root, config, progress=False) == manifest
    data = json.loads((root / "manifest.json").read_text())
    data["splits"]["test_heldout"] = ["syn00000"]
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="test_heldout must have exactly the scenes of test"):
        read_manifest(root)
    with pytest.raises(ValueError, match="phrasing"):
        SyntheticDatasetConfig(phrasing="poetry")
    # A training config gives the rates as a mapping.
    assert SyntheticDatasetConfig(human_phrasing={"typo_rate": 0.2}).human_phrasing == PhrasingConfig(typo_rate=0.2)
    with pytest.raises(ValueError, match="human_phrasing"):
        SyntheticDatasetConfig(human_phrasing={"typo": 0.2})
