"""Grounder: ranked answers over keyframes and proposals, the per-keyframe cache, and the edge cases a node meets."""
import math

import numpy as np
import pytest
import torch

from model_fixtures import proposals_from_boxes, rectangle_box, wall_keyframes
from w2r2_ros.model.checkpoint import save_checkpoint
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounder import Grounder, select_keyframes
from w2r2_ros.model.build import new_model
from w2r2_ros.model.inputs import prepare_inputs
from w2r2_ros.scene.memory import SceneSnapshot

RECTS = [((220, 30, 30), -1.5, -0.7, 0.5, 1.3), ((30, 30, 220), -0.3, 0.5, 0.6, 1.4), ((30, 200, 30), 0.9, 1.7, 0.4, 1.2)]


@pytest.fixture(scope="module")
def grounder(tmp_path_factory):
    torch.manual_seed(0)
    model, text = new_model(ModelConfig(categories=("box", "wall", "lamp")))
    directory = save_checkpoint(model, text, tmp_path_factory.mktemp("g") / "ckpt")
    return Grounder.from_checkpoint(directory)


@pytest.fixture(scope="module")
def scene():
    keyframes = wall_keyframes(4, RECTS)
    proposals = proposals_from_boxes(np.stack([rectangle_box(*r[1:]) for r in RECTS]))
    return keyframes, proposals


def test_answer_ranks_every_proposal_with_probabilities(grounder, scene):
    keyframes, proposals = scene
    answer = grounder.ground(keyframes, proposals, "the red box", top_k=10)
    assert sorted(c.proposal_id for c in answer.candidates) == [10, 11, 12]
    scores = [c.score for c in answer.candidates]
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(sum(scores) + answer.no_target_score, 1.0, rel_tol=1e-5)
    # A trained category, or (when the model is unsure) a word of the query.
    assert all(c.label in ("box", "wall", "lamp", "red") and 0 < c.label_score <= 1 for c in answer.candidates)
    assert answer.n_keyframes == 4 and answer.prepare_ms > 0 and answer.model_ms > 0
    by_id = {p.proposal_id: p for p in proposals}
    assert all(c.box is by_id[c.proposal_id].box for c in answer.candidates)
    assert len(grounder.ground(keyframes, proposals, "the red box", top_k=2).candidates) == 2


def test_answer_matches_the_model_run_directly(grounder, scene):
    keyframes, proposals = scene
    answer = grounder.ground(keyframes, proposals, "the blue box", top_k=3)
    inputs = prepare_inputs(keyframes, np.stack([p.box.as_oriented_array() for p in proposals]), grounder.model.config)
    ids, mask = grounder.tokenizer.encode(["the blue box"], 32)
    with torch.no_grad():
        probabilities = torch.softmax(grounder.model(inputs, ids, mask).logits[0], -1).numpy()
    expected = {p.proposal_id: probabilities[i] for i, p in enumerate(proposals)}
    for candidate in answer.candidates:
        assert candidate.score == pytest.approx(expected[candidate.proposal_id], abs=1e-5)
    assert answer.no_target_score == pytest.approx(probabilities[-1], abs=1e-5)


def test_keyframes_are_cached_by_stamp_and_reused(grounder, scene):
    keyframes, proposals = scene
    grounder.clear_cache()
    first = grounder.ground(keyframes, proposals, "the red box")
    assert grounder.cached_keyframes == 4
    again = grounder.ground(keyframes, proposals, "the red box")
    assert grounder.cached_keyframes == 4
    assert [(c.proposal_id, round(c.score, 6)) for c in first.candidates] == [(c.proposal_id, round(c.score, 6)) for c in again.candidates]
    more = wall_keyframes(2, RECTS, stamp0=100.0)
    grounder.ground(keyframes + more, proposals, "the red box")
    assert grounder.cached_keyframes == 6


def test_at_most_max_frames_spread_over_the_buffer(grounder, scene):
    keyframes, proposals = scene
    assert select_keyframes(10, 4).tolist() == [0, 3, 6, 9]
    assert select_keyframes(3, 32).tolist() == [0, 1, 2]
    assert grounder.ground(keyframes, proposals, "the red box", max_frames=2).n_keyframes == 2


def test_edge_cases_no_proposals_no_keyframes(grounder, scene):
    keyframes, proposals = scene
    empty = grounder.ground(keyframes, [], "the red box")
    assert empty.candidates == () and empty.no_target_score == 1.0 and empty.best is None
    blind = grounder.ground([], proposals, "the red box")
    assert len(blind.candidates) == 3 and blind.n_keyframes == 0
    snapshot = SceneSnapshot(tuple(keyframes), tuple(proposals), np.zeros((0, 3)), np.zeros((0, 3)), 1.0, n_voxels=0)
    assert len(grounder.ground_snapshot(snapshot, "the red box", top_k=1).candidates) == 1


def test_scene_inputs_are_reused_only_while_keyframes_and_proposals_stay_the_same(grounder, scene):
    """The cached scene inputs follow the proposals and keyframes: moved boxes or fewer frames give fresh answers."""
    keyframes, proposals = scene
    moved = proposals_from_boxes(np.stack([rectangle_box(*r[1:]) for r in RECTS[::-1]]))

    def direct(frames, props):
        inputs = prepare_inputs(frames, np.stack([p.box.as_oriented_array() for p in props]), grounder.model.config)
        ids, mask = grounder.tokenizer.encode(["the red box"], 32)
        with torch.no_grad():
            return torch.softmax(grounder.model(inputs, ids, mask).logits[0], -1).numpy()

    for frames, props in [(keyframes, proposals), (keyframes, moved), (keyframes[:2], moved), (keyframes, proposals)]:
        answer = grounder.ground(frames, props, "the red box", top_k=10)
        expected = direct(frames, props)
        scores = {c.proposal_id: c.score for c in answer.candidates}
        assert [scores[p.proposal_id] for p in props] == pytest.approx(list(expected[:-1]), abs=1e-5)


def _grounder_whose_objects_look_like(name: str, scale: float) -> Grounder:
    """Every object's category feature set to ``scale`` x the text embedding of ``name`` (real weights, set by hand)."""
    torch.manual_seed(0)
    model, text = new_model(ModelConfig(categories=("box", "wall", "lamp")))
    head = model.category_head
    with torch.no_grad():
        for layer in (head.classify, head.classify_token, head.classify_shape[-1]):
            layer.weight.zero_()
            layer.bias.zero_()
        head.classify.bias.copy_(text.name_embeddings([name])[0] * scale)
    return Grounder(model, text)


def test_an_unsure_label_comes_from_the_querys_own_words(scene):
    """The object looks like a bed, which is no trained category: the answer is labelled "bed" from the query,
    not "box"/"wall"/"lamp" on a guess; a sure category stays the label."""
    keyframes, proposals = scene
    unsure = _grounder_whose_objects_look_like("bed", 1.0).ground(keyframes, proposals, "the purple bed").candidates[0]
    assert unsure.label == "bed" and unsure.label_score > 1 / 5
    sure = _grounder_whose_objects_look_like("box", 1.0).ground(keyframes, proposals, "the purple bed").candidates[0]
    assert sure.label == "box" and sure.label_score >= 0.5
