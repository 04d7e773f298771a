"""The grounding node serves a video-LLM checkpoint over DDS: statuses, boxes among the proposals, the keyframe cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from test_grounding_node import answered, grounding
from vlm_fixtures import tiny_video_llm, write_base
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.model.checkpoint import save_checkpoint
from w2r2_ros.ros.interfaces import GroundingResult
from w2r2_ros.ros.markers import candidate_box
from w2r2_ros.scene.memory import SceneMemory
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import CATEGORIES, generate_scene


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny video LLM whose "no target" logit never wins, so every answer is OK."""
    root = tmp_path_factory.mktemp("vlm-node")
    model, tokenizer = tiny_video_llm(write_base(root / "tiny-base"), categories=tuple(CATEGORIES))
    with torch.no_grad():
        model.heads.no_target.weight.zero_()
        model.heads.no_target.bias.fill_(-30.0)
    return save_checkpoint(model, tokenizer, root / "ckpt")


@pytest.fixture(scope="module")
def memory() -> SceneMemory:
    recording = record_scene(generate_scene("vlm-node", 4), n_frames=8, intrinsics=Intrinsics.from_fov(160, 120, 70.0))
    memory = SceneMemory()
    for stamp, pose, frame in zip(recording.stamps, recording.poses, recording.frames):
        memory.add_rgbd(float(stamp), frame.rgb, frame.depth, recording.intrinsics, pose)
    memory.update_proposals()
    assert len(memory.snapshot().proposals) >= 3
    return memory


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_node_answers_with_a_video_llm_checkpoint(memory, checkpoint, dtype):
    snapshot = memory.snapshot()
    proposal_boxes = {tuple(np.round(p.box.as_array(), 6)) for p in snapshot.proposals}
    with grounding(memory, checkpoint=str(checkpoint), dtype=dtype, score_threshold=0.0, top_k=3) as (node, client, runtime):
        assert node.grounder is not None, node.model_problem
        assert type(node.grounder.model).__name__ == "W2R2VideoLLM"
        client.send("the red chair", "q-1")
        client.send("the lamp on the left", "q-2")  # same scene: only the language model runs
        results = answered(client, runtime, 2)
        assert node.grounder.cached_keyframes == len(snapshot.keyframes)
    assert sorted(results) == ["q-1", "q-2"] and all(len(r) == 1 for r in results.values())
    for (result,) in results.values():
        assert result.status == GroundingResult.STATUS_OK, result.message
        assert tuple(np.round(candidate_box(result.best).as_array(), 6)) in proposal_boxes
        assert len(result.alternatives) == 2 and result.num_keyframes == len(snapshot.keyframes)
