"""Lifecycle transitions, `ros2 param set` and the reset service, driven over DDS as the ROS 2 tools drive them.

A manager node in its own rclpy context calls the standard services
(lifecycle_msgs ChangeState/GetState, rcl_interfaces SetParameters, std_srvs
Trigger), exactly what `ros2 lifecycle set`, `ros2 param set` and
`ros2 service call` send, on nodes started in a namespace.
"""
from __future__ import annotations

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from ros_tools import Manager
from std_srvs.srv import Trigger

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.ros.grounding_node import GroundingNode
from w2r2_ros.ros.interfaces import GroundingResult, GroundService
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.params import parameter_overrides
from w2r2_ros.ros.scene_memory_node import SceneMemoryNode
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene

NAMESPACE = "/robot7"
TIMEOUT_S = 20.0


def test_lifecycle_transitions_over_the_services():
    """unconfigured -> inactive -> active -> inactive -> unconfigured -> finalized; endpoints follow the state."""
    scene_name, grounding_name = f"{NAMESPACE}/scene_memory_node", f"{NAMESPACE}/grounding_node"
    args = ["--ros-args", "-r", f"__ns:={NAMESPACE}", "-p", "autostart:=false", "-p", "checkpoint:=''"]
    with NodeRuntime(args=args) as runtime, NodeRuntime() as manager_runtime:
        scene = runtime.add(SceneMemoryNode(context=runtime.context))
        grounding = runtime.add(GroundingNode(scene.memory, context=runtime.context))
        manager = manager_runtime.add(Manager(manager_runtime))
        rgb_topic = f"{NAMESPACE}/camera/color/image_raw"
        assert manager.state(scene_name) == "unconfigured" and manager.state(grounding_name) == "unconfigured"
        assert manager.count_publishers(rgb_topic) == 0 and manager.count_subscribers(rgb_topic) == 0

        assert manager.transition(scene_name, Transition.TRANSITION_CONFIGURE)
        assert manager.transition(grounding_name, Transition.TRANSITION_CONFIGURE)
        assert manager.state(grounding_name) == "inactive"
        # Inactive: the service exists and says why it does not answer yet; nothing is subscribed.
        inactive = manager.call(GroundService, f"{NAMESPACE}/w2r2/ground_service", GroundService.Request(text="the chair")).result
        assert inactive.status == GroundingResult.STATUS_BUSY and "inactive" in inactive.message
        assert manager.count_subscribers(rgb_topic) == 0

        assert manager.transition(scene_name, Transition.TRANSITION_ACTIVATE)
        assert manager.transition(grounding_name, Transition.TRANSITION_ACTIVATE)
        assert manager_runtime.wait_until(lambda: manager.count_subscribers(rgb_topic) == 1, TIMEOUT_S)
        assert manager.count_subscribers(f"{NAMESPACE}/w2r2/query") == 1
        active = manager.call(GroundService, f"{NAMESPACE}/w2r2/ground_service", GroundService.Request(text="the chair")).result
        assert active.status == GroundingResult.STATUS_MODEL_NOT_LOADED  # checkpoint '' on purpose: cheap

        assert manager.transition(scene_name, Transition.TRANSITION_DEACTIVATE)
        assert manager_runtime.wait_until(lambda: manager.count_subscribers(rgb_topic) == 0, TIMEOUT_S)
        assert manager.transition(scene_name, Transition.TRANSITION_CLEANUP)
        assert manager.state(scene_name) == "unconfigured"
        assert not manager.transition(scene_name, Transition.TRANSITION_ACTIVATE)  # not from unconfigured
        assert manager.transition(scene_name, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert scene.lifecycle_state == "finalized"
        assert grounding.lifecycle_state == "active"  # the other node is not affected


def test_param_set_applies_live_values_and_refuses_the_rest_with_a_reason():
    with NodeRuntime(args=["--ros-args", "-r", f"__ns:={NAMESPACE}"]) as runtime, NodeRuntime() as manager_runtime:
        scene = runtime.add(SceneMemoryNode(context=runtime.context))
        grounding = runtime.add(GroundingNode(scene.memory, context=runtime.context,
                                              parameter_overrides=parameter_overrides({"checkpoint": ""})))
        manager = manager_runtime.add(Manager(manager_runtime))
        node = f"{NAMESPACE}/grounding_node"
        assert manager.param_set(node, "top_k", 2) == (True, "")
        assert manager.param_set(node, "score_threshold", 0.6) == (True, "")
        assert grounding.params.top_k == 2 and grounding.params.score_threshold == 0.6

        ok, reason = manager.param_set(node, "top_k", 0)
        assert not ok and "top_k out of range" in reason
        ok, reason = manager.param_set(node, "score_threshold", 1.5)
        assert not ok and "score_threshold out of range" in reason
        ok, reason = manager.param_set(node, "checkpoint", "/elsewhere")
        assert not ok and "read-only" in reason
        ok, reason = manager.param_set(node, "top_k", "three")
        assert not ok and "Wrong parameter type" in reason
        assert grounding.params.top_k == 2 and grounding.params.score_threshold == 0.6  # refused sets change nothing

        # A live rate: the publishing timer is remade at the new period.
        assert manager.param_set(f"{NAMESPACE}/scene_memory_node", "publish_rate_hz", 5.0) == (True, "")
        assert scene.params["publish_rate_hz"] == 5.0 and abs(scene._timer.timer_period_ns - 2e8) < 1
        ok, reason = manager.param_set(f"{NAMESPACE}/scene_memory_node", "pose_source", "odometry")
        assert not ok and "read-only" in reason


def test_reset_service_clears_the_scene_memory(recording_frames):
    with NodeRuntime() as runtime, NodeRuntime() as manager_runtime:
        scene = runtime.add(SceneMemoryNode(context=runtime.context))
        manager = manager_runtime.add(Manager(manager_runtime))
        for stamp, rgb, depth, intrinsics, pose in recording_frames:
            scene.memory.add_rgbd(stamp, rgb, depth, intrinsics, pose)
        scene.memory.update_proposals()
        before = scene.memory.stats()
        assert before.keyframes > 0 and before.voxels > 0
        response = manager.call(Trigger, "scene_memory_node/reset", Trigger.Request())
        assert response.success and f"{before.keyframes} keyframes" in response.message
        after = scene.memory.stats()
        assert (after.keyframes, after.voxels, after.proposals) == (0, 0, 0)
        # The memory keeps working after a reset.
        stamp, rgb, depth, intrinsics, pose = recording_frames[0]
        scene.memory.add_rgbd(stamp, rgb, depth, intrinsics, pose)
        assert scene.memory.stats().keyframes == 1


@pytest.fixture(scope="module")
def recording_frames():
    """Three synthetic RGB-D frames with poses: (stamp, rgb, depth, intrinsics, pose)."""
    recording = record_scene(generate_scene("lifecycle", 1), n_frames=3, intrinsics=Intrinsics.from_fov(96, 72, 70.0))
    return [(float(s), f.rgb, f.depth, recording.intrinsics, np.asarray(p)) for s, p, f in
            zip(recording.stamps, recording.poses, recording.frames)]
