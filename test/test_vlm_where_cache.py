"""Serving the video LLM: each keyframe's Where encodings are cached with its visual tokens, so a changed scene
re-encodes only what changed, and the answer equals the uncached model's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vlm_fixtures import tiny_video_llm, write_base
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.model.grounder import Grounder
from w2r2_ros.model.inputs import assemble_inputs, newest_viewer, prepare_keyframe
from w2r2_ros.scene.memory import SceneMemory
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import CATEGORIES, generate_scene

QUERY = "the chair next to the table"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return write_base(tmp_path_factory.mktemp("vlm-where") / "tiny-base")


@pytest.fixture(scope="module")
def snapshot():
    recording = record_scene(generate_scene("vlm-where", 4), n_frames=8, intrinsics=Intrinsics.from_fov(160, 120, 70.0))
    memory = SceneMemory()
    for stamp, pose, frame in zip(recording.stamps, recording.poses, recording.frames):
        memory.add_rgbd(float(stamp), frame.rgb, frame.depth, recording.intrinsics, pose)
    memory.update_proposals()
    snapshot = memory.snapshot()
    assert len(snapshot.keyframes) >= 3 and len(snapshot.proposals) >= 3
    return snapshot


def uncached_probabilities(model, tokenizer, keyframes, proposals) -> np.ndarray:
    """Softmax over proposals + "no target" from the model alone: Where computed inside ``scene_tokens``."""
    prepared = [prepare_keyframe(keyframe, model.config) for keyframe in keyframes]
    inputs = assemble_inputs(prepared, np.stack([p.box.as_oriented_array() for p in proposals]), model.config, newest_viewer(keyframes))
    ids, mask = tokenizer.encode([QUERY], model.config.max_text_length)
    with torch.inference_mode():
        output = model(None, ids, mask, scene=model.scene_tokens(inputs))
    return torch.softmax(output.logits[0].float(), dim=-1).numpy()


@pytest.mark.parametrize("center_xy", [False, True])
def test_a_new_keyframe_encodes_only_its_own_where_and_answers_as_uncached(base, snapshot, center_xy):
    model, tokenizer = tiny_video_llm(base, categories=tuple(CATEGORIES))
    model.config.center_xy = center_xy
    model.eval()
    encoded = []  # keyframes run through the Where encoder's MLP, per call (a real hook on the real module)
    per_frame = model.config.patches_per_frame
    model.where.mlp.register_forward_hook(lambda module, args, out: encoded.append(args[0].shape[:-1].numel() // per_frame))
    grounder = Grounder(model, tokenizer)
    keyframes, proposals = list(snapshot.keyframes), list(snapshot.proposals)
    k = len(keyframes)

    def answer(frames, boxes) -> list[int]:
        encoded.clear()
        result = grounder.ground(frames, boxes, QUERY, top_k=len(boxes), max_frames=k)
        calls = list(encoded)
        expected = uncached_probabilities(model, tokenizer, frames, boxes)
        scores = {c.proposal_id: c.score for c in result.candidates}
        got = [scores[p.proposal_id] for p in boxes] + [result.no_target_score]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        return calls

    assert answer(keyframes[:-1], proposals) == [k - 1]
    # One keyframe more: it moves the viewer (the newest camera pose), and so every encoding (viewer frame).
    assert answer(keyframes, proposals) == [k]
    # New proposals over the same keyframes: no keyframe is re-encoded.
    assert answer(keyframes, proposals[:-1]) == []
    # Kept and evicted with the visual tokens: a cache of two keeps two keyframes' encodings.
    grounder.clear_cache()
    grounder.cache_size = 2
    assert answer(keyframes[:3], proposals) == [3]
    assert set(grounder._where) == set(grounder._cache) and len(grounder._cache) == 2
