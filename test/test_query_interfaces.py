"""The Ground action (feedback, cancel, one goal at a time), the Ground service, and the two-process mode.

Real nodes in their own rclpy contexts talk over DDS: the grounding node under
test, an action/service client, and (two-process mode) a scene memory node
whose keyframes and proposals reach a grounding node that has no in-process
memory. The model is a tiny untrained one whose "no target" output never wins,
so every answer from the model is OK; which status comes back is the node's
logic.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from rclpy.action import ActionClient
from rclpy.node import Node
from std_msgs.msg import String

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.model.checkpoint import save_checkpoint
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_model import W2R2GroundingModel
from w2r2_ros.model.text import QueryTokenizer
from w2r2_ros.ros.grounding_node import GroundingNode
from w2r2_ros.ros.interfaces import GroundAction, GroundingResult, GroundService, ObjectProposalArray
from w2r2_ros.ros.markers import candidate_box
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.params import parameter_overrides
from w2r2_ros.ros.scene_memory_node import SceneMemoryNode
from w2r2_ros.scene.memory import SceneMemory, SceneMemoryConfig
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import CATEGORIES, generate_scene

TIMEOUT_S = 30.0
Status = GroundingResult


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained model whose "no target" never wins: answers from the model are OK."""
    torch.manual_seed(0)
    model = W2R2GroundingModel(ModelConfig(categories=tuple(CATEGORIES)))
    with torch.no_grad():
        model.grounding_head.no_target.weight.zero_()
        model.grounding_head.no_target.bias.fill_(-30.0)
    tokenizer = QueryTokenizer.build(["the red chair next to the table"])
    return save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("model") / "sure")


def fill(memory: SceneMemory) -> SceneMemory:
    """Six frames of a synthetic room, fused, with proposals."""
    recording = record_scene(generate_scene("query-interfaces", 4), n_frames=6, intrinsics=Intrinsics.from_fov(128, 96, 70.0))
    for stamp, pose, frame in zip(recording.stamps, recording.poses, recording.frames):
        memory.add_rgbd(float(stamp), frame.rgb, frame.depth, recording.intrinsics, pose)
    assert memory.update_proposals(), "the synthetic room gave no proposals"
    return memory


@pytest.fixture(scope="module")
def scene() -> SceneMemory:
    # depth_stride 3: the sparse map the tiny model's confidence was set on (the default, 0, fuses 128x96 at
    # stride 1: more proposals share its softmax and the top score falls under the threshold: NOT_FOUND)
    return fill(SceneMemory(SceneMemoryConfig(depth_stride=3)))


class Client(Node):
    """Calls the action and the service; keeps each goal's feedback stages."""

    def __init__(self, runtime: NodeRuntime, namespace: str = "") -> None:
        super().__init__("query_client", namespace=namespace, context=runtime.context)
        self.runtime = runtime
        self.action = ActionClient(self, GroundAction, "w2r2/ground")
        self.service = self.create_client(GroundService, "w2r2/ground_service")
        self.text = self.create_publisher(String, "w2r2/query_text", 100)
        self.stages: dict[bytes, list[str]] = {}
        self.lock = threading.Lock()

    def ready(self) -> bool:
        return (self.action.wait_for_server(timeout_sec=TIMEOUT_S) and self.service.wait_for_service(timeout_sec=TIMEOUT_S)
                and self.runtime.wait_until(lambda: self.text.get_subscription_count() > 0, TIMEOUT_S))

    def wait(self, future):
        assert self.runtime.wait_until(future.done, TIMEOUT_S), "no answer in time"
        return future.result()

    def send_goal(self, text: str, target_frame: str = ""):
        """Send a goal; returns its accepted handle (feedback stages collected in ``stages``)."""
        def on_feedback(message) -> None:
            with self.lock:
                self.stages.setdefault(bytes(message.goal_id.uuid), []).append(message.feedback.stage)

        handle = self.wait(self.action.send_goal_async(GroundAction.Goal(text=text, target_frame=target_frame),
                                                       feedback_callback=on_feedback))
        assert handle.accepted
        return handle

    def ask(self, text: str, target_frame: str = "") -> GroundingResult:
        return self.wait(self.service.call_async(GroundService.Request(text=text, target_frame=target_frame))).result


TWO_PROCESS_NS = "/two_process"


def grounding(memory, checkpoint, namespace="/w2r2test", **params):
    runtime = NodeRuntime(args=["--ros-args", "-r", f"__ns:={namespace}"])
    node = runtime.add(GroundingNode(memory, context=runtime.context,
                                     parameter_overrides=parameter_overrides({"checkpoint": str(checkpoint), **params})))
    return runtime, node


def test_action_feedback_cancel_and_one_goal_at_a_time(scene, checkpoint):
    runtime, node = grounding(scene, checkpoint, queue_size=100, top_k=3)
    with runtime, NodeRuntime() as client_runtime:
        client = client_runtime.add(Client(client_runtime, "/w2r2test"))
        assert client.ready()

        handle = client.send_goal("the red chair")
        done = client.wait(handle.get_result_async())
        result = done.result.result
        assert done.status == 4  # GoalStatus.STATUS_SUCCEEDED
        assert result.status == Status.STATUS_OK and result.query_id.startswith("goal-") and len(result.alternatives) == 2
        assert client.stages[bytes(handle.goal_id.uuid)] == ["queued", "reading_scene", "running_model"]

        # Keep the worker busy with topic queries, so the next goal waits in the queue.
        for _ in range(60):
            client.text.publish(String(data="the table"))
        assert client_runtime.wait_until(lambda: node._queue.qsize() > 10, TIMEOUT_S)
        waiting = client.send_goal("the lamp")
        second = client.send_goal("the sofa")  # while "the lamp" runs
        busy = client.wait(second.get_result_async())
        assert busy.status == 6  # GoalStatus.STATUS_ABORTED
        assert busy.result.result.status == Status.STATUS_BUSY and "one goal at a time" in busy.result.result.message

        cancel = client.wait(waiting.cancel_goal_async())
        assert len(cancel.goals_canceling) == 1
        cancelled = client.wait(waiting.get_result_async())
        assert cancelled.status == 5  # GoalStatus.STATUS_CANCELED
        assert cancelled.result.result.status == Status.STATUS_CANCELED and "cancelled" in cancelled.result.result.message

        # The node keeps answering: the next goal succeeds once the queue has drained.
        again = client.wait(client.send_goal("the red chair").get_result_async())
        assert again.status == 4 and again.result.result.status == Status.STATUS_OK


def test_goal_before_any_frame_and_bad_goals_are_aborted_with_a_status(checkpoint):
    runtime, _ = grounding(SceneMemory(), checkpoint)
    with runtime, NodeRuntime() as client_runtime:
        client = client_runtime.add(Client(client_runtime, "/w2r2test"))
        assert client.ready()
        early = client.wait(client.send_goal("the red chair").get_result_async())
        assert early.status == 6 and early.result.result.status == Status.STATUS_NO_FRAMES
        assert "no keyframes" in early.result.result.message
        blank = client.wait(client.send_goal("  ").get_result_async())
        assert blank.status == 6 and blank.result.result.status == Status.STATUS_INVALID_QUERY
        frame = client.wait(client.send_goal("the red chair", target_frame="odom").get_result_async())
        assert frame.result.result.status == Status.STATUS_INVALID_QUERY and "odom" in frame.result.result.message


def test_service_answers_like_the_topic(scene, checkpoint):
    runtime, node = grounding(scene, checkpoint, top_k=2)
    with runtime, NodeRuntime() as client_runtime:
        client = client_runtime.add(Client(client_runtime, "/w2r2test"))
        assert client.ready()
        answer = client.ask("the red chair")
        assert answer.status == Status.STATUS_OK and answer.query_id.startswith("service-")
        assert len(answer.alternatives) == 1 and answer.num_proposals == len(scene.snapshot().proposals)
        assert client.ask("").status == Status.STATUS_INVALID_QUERY
        (status,) = node.diagnostic_statuses()
        values = {v.key: v.value for v in status.values}
        assert status.message.startswith("model loaded; last query") and float(values["last query latency (ms)"]) > 0
        assert values["answers OK"] == "1" and values["answers INVALID_QUERY"] == "1"


def test_two_processes_answer_what_one_process_answers(checkpoint):
    """Scene memory node and grounding node in separate contexts (as separate processes): the keyframes
    cross the SceneKeyframe topic losslessly, so the answer equals the in-process one; the grounding node
    starts after the keyframes were published (transient-local)."""
    # A namespace of their own: a scene memory node anywhere else in this domain publishing on the same topics would
    # replace the scene the remote node reads (the node warns: test_a_second_scene_publisher_is_named).
    with NodeRuntime(args=["--ros-args", "-r", f"__ns:={TWO_PROCESS_NS}"]) as scene_runtime:
        scene_node = scene_runtime.add(SceneMemoryNode(context=scene_runtime.context,
                                                       parameter_overrides=parameter_overrides({"publish_rate_hz": 5.0, "depth_stride": 3})))
        fill(scene_node.memory)
        time.sleep(0.5)  # published at least once before the grounding node exists
        remote_runtime, remote = grounding(None, checkpoint, namespace=TWO_PROCESS_NS, top_k=3)
        with remote_runtime, NodeRuntime() as client_runtime:
            expected = scene_node.memory.snapshot(include_cloud=False)
            assert expected.keyframes and expected.proposals
            assert remote_runtime.wait_until(
                lambda: len(remote.memory.snapshot().keyframes) == len(expected.keyframes)
                and len(remote.memory.snapshot().proposals) == len(expected.proposals), TIMEOUT_S), (
                f"remote: {len(remote.memory.snapshot().keyframes)} keyframes, {len(remote.memory.snapshot().proposals)} "
                f"proposals; expected {len(expected.keyframes)}, {len(expected.proposals)}; publishers: "
                + str({t: [(i.node_namespace, i.node_name) for i in remote.get_publishers_info_by_topic(t)]
                       for t in (f"{TWO_PROCESS_NS}/w2r2/scene/keyframes", f"{TWO_PROCESS_NS}/w2r2/scene/proposal_array")}))
            for got, want in zip(remote.memory.snapshot().keyframes, expected.keyframes):
                assert np.array_equal(got.rgb, want.rgb) and np.array_equal(got.depth, want.depth, equal_nan=True)
                assert np.array_equal(got.cam_to_world, want.cam_to_world) and got.stamp == pytest.approx(want.stamp, abs=1e-9)
            client = client_runtime.add(Client(client_runtime, TWO_PROCESS_NS))
            assert client.ready()
            two = client.ask("the red chair")
            # A reset on the scene side empties the remote scene too (its proposal array counts 0 keyframes).
            kept = scene_node.memory.snapshot(include_cloud=False)
            scene_node.memory.reset()
            assert remote_runtime.wait_until(lambda: remote.memory.snapshot().keyframes == (), TIMEOUT_S)
            assert client.ask("the red chair").status == Status.STATUS_NO_FRAMES
        fill(scene_node.memory)
        one_runtime, _ = grounding(scene_node.memory, checkpoint, namespace="/one", top_k=3)
        with one_runtime, NodeRuntime() as client_runtime:
            client = client_runtime.add(Client(client_runtime, "/one"))
            assert client.ready()
            one = client.ask("the red chair")
        assert two.status == one.status == Status.STATUS_OK
        # Same boxes and scores (ids are renumbered after the reset, so boxes are compared).
        assert len(kept.keyframes) == len(scene_node.memory.snapshot().keyframes)  # refilled the same way
        for got, want in zip([two.best, *two.alternatives], [one.best, *one.alternatives]):
            assert candidate_box(got).as_array() == pytest.approx(candidate_box(want).as_array(), abs=1e-6)
            assert got.score == pytest.approx(want.score, abs=1e-5) and got.label == want.label


def test_a_second_scene_publisher_is_named(checkpoint):
    """Two scene memory nodes on one proposal topic make the remote scene flip between them: the grounding node
    says so, with the count and the topic; one publisher alone says nothing."""
    with NodeRuntime() as runtime:
        remote_runtime, remote = grounding(None, checkpoint, namespace="/two_scenes")
        with remote_runtime:
            topic = "/two_scenes/w2r2/scene/proposal_array"
            first = runtime.add(Node("first_scene", context=runtime.context)).create_publisher(ObjectProposalArray, topic, 1)
            assert runtime.wait_until(lambda: first.get_subscription_count() == 1, TIMEOUT_S)
            first.publish(ObjectProposalArray(num_keyframes=0))
            assert runtime.wait_until(lambda: remote.memory.snapshot().stamp is not None, TIMEOUT_S)
            assert remote.warnings.emitted["several_scene_publishers"] == 0
            second = runtime.add(Node("second_scene", context=runtime.context)).create_publisher(ObjectProposalArray, topic, 1)
            assert runtime.wait_until(lambda: remote.count_publishers(topic) == 2, TIMEOUT_S)
            first.publish(ObjectProposalArray(num_keyframes=0))
            assert runtime.wait_until(lambda: remote.warnings.emitted["several_scene_publishers"] == 1, TIMEOUT_S)
            assert "2 publishers on /two_scenes/w2r2/scene/proposal_array" in remote.warnings.last_message["several_scene_publishers"]
