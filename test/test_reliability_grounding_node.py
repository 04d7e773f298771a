"""Issue 16 over real DDS, the grounding side: an error while taking a query still answers it, a
non-finite score is ERROR (never OK), a checkpoint with NaN weights is refused, and query text
comes back bounded and reaches the log on one line (findings 1, 3, 6 and 10)."""
import numpy as np
import pytest
import torch
from std_msgs.msg import String

from model_fixtures import proposals_from_boxes, rectangle_box, wall_keyframes
from test_grounding_node import answered, grounding, tiny_checkpoint
from w2r2_ros.model.checkpoint import WEIGHTS_FILE, CheckpointError, load_checkpoint
from w2r2_ros.ros.grounding_node import GroundingNode
from w2r2_ros.ros.interfaces import GroundingResult as Status
from w2r2_ros.ros.markers import DEBUG_IMAGE_MAX_SIDE, draw_result
from w2r2_ros.scene.keyframes import Keyframe
from w2r2_ros.scene.memory import SceneSnapshot


class WallScene:
    """A SnapshotSource: two keyframes of a wall with a red rectangle, and two proposals on it."""

    def __init__(self) -> None:
        self.keyframes = tuple(wall_keyframes(2, [((200, 0, 0), 0.0, 0.5, 0.5, 1.0)]))
        boxes = np.stack([rectangle_box(0.0, 0.5, 0.5, 1.0), rectangle_box(-0.5, 0.0, 0.5, 1.0)])
        self.proposals = tuple(proposals_from_boxes(boxes))

    def snapshot(self, include_cloud: bool = True) -> SceneSnapshot:
        return SceneSnapshot(self.keyframes, self.proposals, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8),
                             float(self.keyframes[-1].stamp), 0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("reliability") / "sure", -30.0)


class FaultyGroundingNode(GroundingNode):
    def _submit(self, job, target_frame):
        if job.text == "fault":
            raise RuntimeError("injected fault while taking a query")
        super()._submit(job, target_frame)


def test_an_error_while_taking_a_query_answers_it_and_the_next_one_too(checkpoint, monkeypatch):
    monkeypatch.setattr("test_grounding_node.GroundingNode", FaultyGroundingNode)
    with grounding(WallScene(), checkpoint=str(checkpoint), score_threshold=0.0) as (node, client, runtime):
        client.send("fault", "bad")
        client.query_text.publish(String(data="fault"))
        client.send("the red chair", "good")
        results = answered(client, runtime, 3)
    assert sorted(len(r) for r in results.values()) == [1, 1, 1]
    assert results["bad"][0].status == Status.STATUS_ERROR and "injected fault" in results["bad"][0].message
    assert results["good"][0].status == Status.STATUS_OK
    assert node.guard.error_counts() == {"query": 2}


def test_a_non_finite_score_is_an_error_not_ok(checkpoint):
    with grounding(WallScene(), checkpoint=str(checkpoint), score_threshold=0.0) as (node, client, runtime):
        with torch.no_grad():  # weights gone bad in memory (the loader refuses such a file, see below)
            node.grounder.model.grounding_head.no_target.bias.fill_(float("nan"))
        client.send("the red chair", "nan")
        (result,), = answered(client, runtime, 1).values()
    assert result.status == Status.STATUS_ERROR
    assert "non-finite score" in result.message and result.best.label == ""


def test_a_checkpoint_with_nan_weights_is_refused_at_load(checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file
    import shutil

    broken = tmp_path / "nan"
    shutil.copytree(checkpoint, broken)
    state = load_file(str(broken / WEIGHTS_FILE))
    name = sorted(state)[0]
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(broken / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match="non-finite weight"):
        load_checkpoint(broken)
    with grounding(WallScene(), checkpoint=str(broken)) as (node, client, runtime):
        assert node.grounder is None
        client.send("the red chair", "q")
        (result,), = answered(client, runtime, 1).values()
    assert result.status == Status.STATUS_MODEL_NOT_LOADED and "non-finite" in result.message


def test_query_text_comes_back_bounded_and_reaches_the_log_on_one_line(checkpoint, capfd):
    huge = "the red chair " * 80_000  # ~1 MB
    forged = "the red chair\n[ERROR] [0.0] [grounding_node]: forged line \x1b[31m"
    with grounding(WallScene(), checkpoint=str(checkpoint), score_threshold=0.0, max_query_length=200) as (_, client, runtime):
        client.send(huge, "huge")
        client.send(forged, "forged")
        results = answered(client, runtime, 2)
    assert results["huge"][0].status == Status.STATUS_INVALID_QUERY
    assert len(results["huge"][0].text) <= 200 and results["huge"][0].text.endswith("...")
    assert results["forged"][0].text == forged  # short enough: echoed as sent
    lines = capfd.readouterr().err.splitlines()
    assert not [line for line in lines if line.startswith("[ERROR] [0.0]")]
    assert any("[forged] 'the red chair\\n[ERROR] [0.0] [grounding_node]: forged line \\x1b[31m'" in line for line in lines)


def test_the_debug_image_has_a_fixed_maximum_size():
    """Finding 6: a valid 1x240 camera made one answer draw a 640x153,600 image."""
    keyframe = wall_keyframes(1)[0]
    tall = Keyframe.create(0.0, keyframe.rgb[:, :1].copy(), keyframe.depth[:, :1].copy(),
                           keyframe.intrinsics.scaled(1, 120), keyframe.cam_to_world)
    wide = Keyframe.create(0.0, np.zeros((2, 5000, 3), np.uint8), np.ones((2, 5000), np.float32),
                           keyframe.intrinsics.scaled(5000, 2), keyframe.cam_to_world)
    result = Status(status=Status.STATUS_NOT_FOUND, text="the chair", message="no match")
    for frame in (tall, wide, keyframe):
        image = draw_result(frame, result)
        assert max(image.shape[:2]) <= DEBUG_IMAGE_MAX_SIDE, image.shape
    assert draw_result(keyframe, result).shape == (480, 640, 3)  # small frames are still upscaled for legibility


def test_a_config_that_does_not_fit_the_weights_is_refused_before_anything_is_allocated(tmp_path):
    """Finding 6: hidden_size 4096 beside the 3 MB weights built the whole model first (45 s, 3.4 GB)."""
    import json
    import resource
    import shutil

    from test_grounding_node import DEFAULT_MODEL

    big = tmp_path / "big"
    shutil.copytree(DEFAULT_MODEL, big)
    document = json.loads((big / "config.json").read_text())
    document["model"]["hidden_size"] = 4096
    (big / "config.json").write_text(json.dumps(document))
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_checkpoint(big)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 300, f"the peak RSS grew by {grown_mb:.0f} MB while refusing the checkpoint"


class SlowGroundingNode(GroundingNode):
    def _answer(self, job):
        if job.text == "slow":
            import time

            time.sleep(2.5)
        return super()._answer(job)


def test_the_watchdog_reports_a_model_worker_that_stops_making_progress(checkpoint, monkeypatch):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    monkeypatch.setattr("test_grounding_node.GroundingNode", SlowGroundingNode)
    with grounding(WallScene(), checkpoint=str(checkpoint), score_threshold=0.0, watchdog_stall_s=0.5) as (node, client, runtime):
        statuses = []
        client.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(m.status), 50)
        mine = lambda: [s for s in list(statuses) if s.name == "grounding_node: progress"]  # noqa: E731
        assert runtime.wait_until(lambda: any(s.level == DiagnosticStatus.OK for s in mine()), timeout_s=10.0)
        client.send("slow", "slow")
        assert runtime.wait_until(lambda: any(s.level == DiagnosticStatus.ERROR for s in mine()), timeout_s=10.0)
        error = next(s for s in mine() if s.level == DiagnosticStatus.ERROR)
        assert "model worker (one query) has been running for" in error.message
        (result,), = answered(client, runtime, 1).values()  # the slow query is still answered
    assert result.query_id == "slow" and result.status == Status.STATUS_OK
