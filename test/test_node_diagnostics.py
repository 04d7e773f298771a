"""/diagnostics over DDS: input rates, drops by cause and memory of the scene memory node; model state,
answers and last query latency of the grounding node. A listener in its own context reads what
rqt_robot_monitor would read."""
from __future__ import annotations

import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from scene_memory_harness import scene_memory_harness

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.ros.grounding_node import GroundingNode
from w2r2_ros.ros.interfaces import GroundingQuery
from w2r2_ros.ros.node_diagnostics import RateMeter
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.params import parameter_overrides
from w2r2_ros.ros.rgbd_stream_publisher import rgbd_messages
from w2r2_ros.scene.memory import SceneMemory
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene

TIMEOUT_S = 20.0


class DiagnosticsListener(Node):
    """Keeps the newest status per name from /diagnostics."""

    def __init__(self, runtime: NodeRuntime) -> None:
        super().__init__("diagnostics_listener", context=runtime.context)
        self.lock = threading.Lock()
        self.latest: dict[str, DiagnosticStatus] = {}
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_array, 50)

    def _on_array(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.latest.update({s.name: s for s in msg.status})

    def get(self, name: str) -> tuple[DiagnosticStatus | None, dict[str, str]]:
        with self.lock:
            found = self.latest.get(name)
        return found, ({v.key: v.value for v in found.values} if found else {})


def test_rate_meter_measures_between_calls():
    now = [10.0]
    meter = RateMeter(clock=lambda: now[0])
    assert meter.rates({"rgb": 5}) == {"rgb": 0.0}
    now[0] = 12.0
    assert meter.rates({"rgb": 65, "depth": 20}) == {"rgb": 30.0, "depth": 10.0}


def test_scene_memory_node_reports_rates_drops_and_memory():
    recording = record_scene(generate_scene("diagnostics", 2), n_frames=3, intrinsics=Intrinsics.from_fov(96, 72, 70.0))
    with scene_memory_harness(diagnostics_period_s=0.5, keyframe_min_translation_m=0.0, pose_source="pose") as h:
        listener = h.robot_runtime.add(DiagnosticsListener(h.robot_runtime))
        for i, (f, pose) in enumerate(zip(recording.frames, recording.poses)):
            assert h.send_frame(rgbd_messages(f.rgb, f.depth, recording.intrinsics, pose), 1.0 + 0.2 * i)
        bad = rgbd_messages(recording.frames[0].rgb, recording.frames[0].depth, recording.intrinsics, recording.poses[0])
        bad.rgb.encoding = "mono16"
        h.robot.rgb.publish(bad.rgb)
        assert h.wait(lambda: h.node.drop_counts.get("unsupported_encoding", 0) == 1)

        name = "scene_memory_node: inputs and memory"
        assert h.wait(lambda: listener.get(name)[1].get("dropped unsupported_encoding") == "1", TIMEOUT_S)
        status, values = listener.get(name)
        assert values["lifecycle state"] == "active" and int(values["keyframes"]) == 3 and int(values["voxels"]) > 0
        assert int(values["received rgb"]) == 4 and "rate rgb (Hz)" in values
        # The next report, with no new drop: OK, naming the memory.
        assert h.wait(lambda: listener.get(name)[0].level == DiagnosticStatus.OK, TIMEOUT_S)
        assert "3 keyframes" in listener.get(name)[0].message


def test_grounding_node_reports_model_state_and_last_latency(tmp_path):
    with NodeRuntime() as runtime, NodeRuntime() as listener_runtime:
        runtime.add(GroundingNode(SceneMemory(), context=runtime.context, parameter_overrides=parameter_overrides(
            {"checkpoint": str(tmp_path / "missing"), "diagnostics_period_s": 0.3})))
        listener = listener_runtime.add(DiagnosticsListener(listener_runtime))
        name = "grounding_node: grounding"
        assert listener_runtime.wait_until(lambda: listener.get(name)[0] is not None, TIMEOUT_S)
        status, values = listener.get(name)
        assert listener.count_publishers("/diagnostics") == 1  # one publisher per node: progress and state together
        assert any(s.endswith(": progress") for s in listener.latest)  # the watchdog's status in the same arrays
        assert status.level == DiagnosticStatus.ERROR and "missing" in status.message
        assert values["model"].startswith("not loaded") and values["last query latency (ms)"] == "none yet"
        publisher = listener.create_publisher(GroundingQuery, "w2r2/query", 10)
        assert listener_runtime.wait_until(lambda: publisher.get_subscription_count() > 0, TIMEOUT_S)
        publisher.publish(GroundingQuery(query_id="q", text="the chair"))
        assert listener_runtime.wait_until(lambda: listener.get(name)[1].get("answers MODEL_NOT_LOADED") == "1", TIMEOUT_S)


def test_diagnostics_can_be_turned_off():
    with NodeRuntime() as runtime:
        node = runtime.add(GroundingNode(SceneMemory(), context=runtime.context, parameter_overrides=parameter_overrides(
            {"checkpoint": "", "diagnostics_period_s": 0.0})))
        assert node.count_publishers("/diagnostics") == 0
        assert node.diagnostic_statuses()[0].level == DiagnosticStatus.ERROR  # still available in-process
