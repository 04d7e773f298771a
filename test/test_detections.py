"""vision_msgs/Detection3DArray out of grounding_node (answer + alternatives, in any target_frame) and of proposals."""
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.node import Node
from scipy.spatial.transform import Rotation
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection3DArray

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import make_transform
from w2r2_ros.ros.conversions import matrix_to_transform_stamped
from w2r2_ros.ros.detections import proposals_to_detections
from w2r2_ros.ros.grounding_node import GroundingNode
from w2r2_ros.ros.interfaces import GroundingQuery, GroundingResult
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.params import parameter_overrides
from w2r2_ros.ros.tf_listener import TF_STATIC_QOS
from w2r2_ros.scene.memory import SceneMemory
from w2r2_ros.scene.proposals import Proposal
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_grounding_node import tiny_checkpoint  # noqa: E402  (the same pinned untrained model)

# base_link in map: 1 m along x, 2 m along y, turned 90 degrees left.
BASE_IN_MAP = make_transform(Rotation.from_euler("z", 90, degrees=True).as_matrix(), np.array([1.0, 2.0, 0.0]))


class Client(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("detections_client", **kwargs)
        self.results: dict[str, GroundingResult] = {}
        self.detections: list[Detection3DArray] = []
        self.query = self.create_publisher(GroundingQuery, "/det/query", 10)
        self.tf_static = self.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        self.create_subscription(GroundingResult, "/det/result", lambda m: self.results.__setitem__(m.query_id, m), 10)
        self.create_subscription(Detection3DArray, "/det/detections", self.detections.append, 10)


@pytest.fixture(scope="module")
def memory() -> SceneMemory:
    recording = record_scene(generate_scene("detections", 3), n_frames=8, intrinsics=Intrinsics.from_fov(160, 120, 70.0))
    memory = SceneMemory()
    for stamp, pose, frame in zip(recording.stamps, recording.poses, recording.frames):
        memory.add_rgbd(float(stamp), frame.rgb, frame.depth, recording.intrinsics, pose)
    assert len(memory.update_proposals()) >= 3
    return memory


def test_answers_as_detections_in_map_and_in_a_target_frame(memory, tmp_path):
    topics = {"query_topic": "/det/query", "result_topic": "/det/result", "detections_topic": "/det/detections",
              "markers_topic": "/det/markers", "debug_image_topic": "/det/debug_image", "score_threshold": 0.0, "top_k": 3,
              "checkpoint": str(tiny_checkpoint(tmp_path / "sure", no_target_bias=-30.0))}
    with NodeRuntime() as runtime, NodeRuntime() as client_runtime:
        node = runtime.add(GroundingNode(memory, context=runtime.context, parameter_overrides=parameter_overrides(topics)))
        client = client_runtime.add(Client(context=client_runtime.context))
        client.tf_static.publish(TFMessage(transforms=[matrix_to_transform_stamped(BASE_IN_MAP, 0.0, "map", "base_link")]))
        assert runtime.wait_until(lambda: node.tf_buffer.can_transform("base_link", "map")
                                  and client.query.get_subscription_count() > 0
                                  and client.count_publishers("/det/detections") > 0, timeout_s=30.0)
        for query_id, frame in (("in-map", ""), ("in-base", "base_link"), ("nowhere", "gripper_link")):
            client.query.publish(GroundingQuery(query_id=query_id, text="the red chair", target_frame=frame))
            assert client_runtime.wait_until(lambda: query_id in client.results and len(client.detections) >= len(client.results),
                                             timeout_s=60.0), (client.results, len(client.detections))
    in_map, in_base, nowhere = (client.results[k] for k in ("in-map", "in-base", "nowhere"))
    assert in_map.status == in_base.status == GroundingResult.STATUS_OK
    assert nowhere.status == GroundingResult.STATUS_INVALID_QUERY and "'gripper_link' does not exist" in nowhere.message

    by_frame = {array.header.frame_id: array for array in client.detections if array.detections}
    assert set(by_frame) == {"map", "base_link"}
    assert [a for a in client.detections if not a.detections]  # the refused query: an empty array
    detections = by_frame["map"].detections
    candidates = [in_map.best, *in_map.alternatives]
    assert len(detections) == len(candidates) == 3
    for detection, candidate in zip(detections, candidates):
        hypothesis = detection.results[0].hypothesis
        assert detection.id == str(candidate.proposal_id)
        assert (hypothesis.class_id, hypothesis.score) == (candidate.label, pytest.approx(candidate.score, abs=1e-6))
        assert detection.bbox.center == candidate.pose and detection.bbox.size == candidate.size
        assert detection.results[0].pose.pose == candidate.pose

    # The same answer in base_link: the centre moved by the inverse transform, the box turned by another -90 degrees.
    centre = np.array([in_map.best.pose.position.x, in_map.best.pose.position.y, in_map.best.pose.position.z, 1.0])
    moved = in_base.best.pose
    np.testing.assert_allclose([moved.position.x, moved.position.y, moved.position.z],
                               (np.linalg.inv(BASE_IN_MAP) @ centre)[:3], atol=1e-6)
    q, q_map = moved.orientation, in_map.best.pose.orientation
    yaw_in_map = Rotation.from_quat([q_map.x, q_map.y, q_map.z, q_map.w]).as_euler("xyz", degrees=True)[2]  # the box's own yaw
    assert Rotation.from_quat([q.x, q.y, q.z, q.w]).as_euler("xyz", degrees=True)[2] == pytest.approx(yaw_in_map - 90.0, abs=1e-4)
    assert in_base.header.frame_id == "base_link" and in_base.best.size == in_map.best.size
    assert by_frame["base_link"].detections[0].bbox.center == moved


def test_proposals_as_class_agnostic_detections():
    proposals = [Proposal(4, Box3D(np.array([1.0, 2.0, 0.5]), np.array([0.4, 0.6, 1.0])), 120, np.array([0.5, 0.5, 0.5]))]
    array = proposals_to_detections(proposals, Header(frame_id="map"))
    (detection,) = array.detections
    assert array.header.frame_id == detection.header.frame_id == "map" and detection.id == "4"
    assert (detection.results[0].hypothesis.class_id, detection.results[0].hypothesis.score) == ("object", 1.0)
    centre, size = detection.bbox.center, detection.bbox.size
    assert (centre.position.x, centre.position.y, centre.position.z, centre.orientation.w) == (1.0, 2.0, 0.5, 1.0)
    assert (size.x, size.y, size.z) == (0.4, 0.6, 1.0)
