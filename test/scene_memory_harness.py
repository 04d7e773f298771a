"""A scene memory node under test and a fake robot talking to it over real DDS (two rclpy contexts).

Shared by test_scene_memory_node.py and test_scene_memory_bad_input.py.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from w2r2_ros.ros.interfaces import ObjectProposalArray
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.rgbd_stream_publisher import RgbdMessages, RgbdStreamPublisher
from w2r2_ros.ros.scene_memory_node import SceneMemoryNode

DISCOVERY_TIMEOUT_S = 20.0
MESSAGE_TIMEOUT_S = 10.0


class OutputProbe(Node):
    """Subscribes to the node's three outputs and keeps the newest of each (and how many arrived)."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__("scene_memory_output_probe", **node_kwargs)
        self.lock = threading.Lock()
        self.cloud: PointCloud2 | None = None
        self.markers: MarkerArray | None = None
        self.arrays: list[ObjectProposalArray] = []
        self.array_count = 0
        self.subs = [
            self.create_subscription(PointCloud2, "/w2r2/scene/cloud", self._on_cloud, 1),
            self.create_subscription(MarkerArray, "/w2r2/scene/proposals", self._on_markers, 1),
            self.create_subscription(ObjectProposalArray, "/w2r2/scene/proposal_array", self._on_array, 1),
        ]

    def _on_cloud(self, msg: PointCloud2) -> None:
        with self.lock:
            self.cloud = msg

    def _on_markers(self, msg: MarkerArray) -> None:
        with self.lock:
            self.markers = msg

    def _on_array(self, msg: ObjectProposalArray) -> None:
        with self.lock:
            self.arrays = (self.arrays + [msg])[-8:]
            self.array_count += 1

    def newest_array(self) -> ObjectProposalArray | None:
        with self.lock:
            return self.arrays[-1] if self.arrays else None

    def matched(self) -> bool:
        return all(sub.get_publisher_count() > 0 for sub in self.subs)


@dataclass
class Harness:
    node_runtime: NodeRuntime
    node: SceneMemoryNode
    robot_runtime: NodeRuntime
    robot: RgbdStreamPublisher
    probe: OutputProbe

    def wait(self, predicate, timeout_s: float = MESSAGE_TIMEOUT_S) -> bool:
        return self.node_runtime.wait_until(predicate, timeout_s)

    def received(self, stream: str) -> int:
        return self.node.received_counts.get(stream, 0)

    def send_frame(self, messages: RgbdMessages, stamp: float, pose_source: str = "pose") -> bool:
        """Publish one frame and wait until the node has handled its colour image; False on timeout."""
        before = self.received("rgb")
        self.robot.publish_rgbd(messages, stamp, pose_source=pose_source, pose_lead_s=0.01)
        return self.wait(lambda: self.received("rgb") > before and not self.node_busy())

    def wait_for_latest_proposals(self, timeout_s: float) -> bool:
        """Wait until the node's workers fused every frame taken and segmented that map, then for the next
        proposal array (published after, so it carries those proposals)."""
        if not self.wait(self.node.workers.caught_up, timeout_s):
            return False
        seen = self.probe.array_count
        return self.wait(lambda: self.probe.array_count > seen, timeout_s)

    def node_busy(self) -> bool:
        """Whether an rgb or depth message was counted but its callback has not finished."""
        timing = self.node.callback_ms()
        counts = self.node.received_counts
        return len(timing["rgb"]) < counts.get("rgb", 0) or len(timing["depth"]) < counts.get("depth", 0)


@contextmanager
def scene_memory_harness(memory=None, args: list[str] | None = None, node_class=SceneMemoryNode, **params) -> Iterator[Harness]:
    """Start the node (a ``node_class``, parameters ``params``, optional ``--ros-args`` ``args``) and the
    fake robot, and wait until every stream is matched both ways."""
    node_runtime = NodeRuntime(args=args)
    robot_runtime = NodeRuntime()
    try:
        params.setdefault("pose_source", "pose")  # the fake robot publishes PoseStamped unless told otherwise
        overrides = [Parameter(name, value=value) for name, value in params.items()]
        node = node_runtime.add(node_class(memory=memory, context=node_runtime.context, parameter_overrides=overrides))
        node_runtime.start()
        robot = robot_runtime.add(RgbdStreamPublisher(context=robot_runtime.context))
        probe = robot_runtime.add(OutputProbe(context=robot_runtime.context))
        robot_runtime.start()
        pose_stream = {"pose": "pose", "odometry": "odometry", "tf": "tf"}[params["pose_source"]]
        streams = ("rgb", "depth", "camera_info", pose_stream, "cloud")
        topics = {getattr(robot, stream).topic_name for stream in streams}

        # Both ends must have matched: a best-effort reader that has not yet matched a writer loses its samples.
        # (camera_info has a second, transient-local reader that a volatile writer does not match.)
        def matched() -> bool:
            node_side = all(any(sub.get_publisher_count() > 0 for sub in node.subscriptions if sub.topic_name == topic)
                            for topic in topics)
            return node_side and robot.subscribers_matched(streams) and probe.matched()

        if not node_runtime.wait_until(matched, DISCOVERY_TIMEOUT_S):
            raise TimeoutError("DDS discovery: the node and the fake robot did not match within the timeout")
        yield Harness(node_runtime, node, robot_runtime, robot, probe)
    finally:
        robot_runtime.shutdown()
        node_runtime.shutdown()
