"""The package's generated messages: real DDS exchange, CDR round trips, constants, wire layout."""
import re
import time
from pathlib import Path

import pytest
import rclpy
from geometry_msgs.msg import Point, Pose, Vector3
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.type_support import check_for_type_support
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from std_msgs.msg import ColorRGBA

import w2r2_ros.msg
from w2r2_ros.ros.interfaces import (
    SceneKeyframe,
    GroundingCandidate,
    GroundingQuery,
    GroundingResult,
    ObjectProposal,
    ObjectProposalArray,
)

MSG_DIR = Path(__file__).resolve().parents[1] / "msg"
ALL_TYPES = (GroundingCandidate, GroundingQuery, GroundingResult, ObjectProposal, ObjectProposalArray, SceneKeyframe)


def _candidate(proposal_id: int, label: str, score: float) -> GroundingCandidate:
    return GroundingCandidate(
        proposal_id=proposal_id,
        pose=Pose(position=Point(x=1.0 + proposal_id, y=-2.0, z=0.5)),
        size=Vector3(x=0.4, y=0.5, z=0.9),
        label=label,
        score=score,
    )


def _result() -> GroundingResult:
    result = GroundingResult(
        query_id="q-42",
        text="the red chair nearest to the table",
        status=GroundingResult.STATUS_OK,
        message="found",
        best=_candidate(3, "chair", 0.75),
        alternatives=[_candidate(7, "chair", 0.125), _candidate(1, "table", 0.0625)],
        num_keyframes=12,
        num_proposals=9,
        model_time_ms=41.5,
    )
    result.header.frame_id = "map"
    result.header.stamp.sec = 17
    result.header.stamp.nanosec = 250
    return result


def _proposals() -> ObjectProposalArray:
    array = ObjectProposalArray(
        proposals=[
            ObjectProposal(
                proposal_id=i,
                center=Point(x=float(i), y=0.5 * i, z=0.25),
                size=Vector3(x=0.3, y=0.3, z=0.5),
                num_points=100 + i,
                mean_color=ColorRGBA(r=0.5, g=0.25, b=0.125, a=1.0),
            )
            for i in range(4)
        ],
        num_keyframes=5,
        num_voxels=12345,
    )
    array.header.frame_id = "map"
    return array


def test_interfaces_module_reexports_the_generated_classes() -> None:
    for cls in ALL_TYPES:
        assert getattr(w2r2_ros.msg, cls.__name__) is cls
        # Generated rosidl classes carry C type support, which DDS and serialization need.
        check_for_type_support(cls)
        assert cls._TYPE_SUPPORT is not None


@pytest.mark.parametrize("message", [_result(), _proposals(), GroundingQuery(query_id="a", text="the lamp")])
def test_serialization_round_trip(message) -> None:
    data = serialize_message(message)
    assert deserialize_message(data, type(message)) == message


def test_status_constants_match_the_msg_file() -> None:
    declared = dict(re.findall(r"^uint8 (STATUS_\w+)=(\d+)", (MSG_DIR / "GroundingResult.msg").read_text(), re.M))
    assert set(declared) == {
        "STATUS_OK", "STATUS_NO_FRAMES", "STATUS_NO_PROPOSALS", "STATUS_MODEL_NOT_LOADED",
        "STATUS_INVALID_QUERY", "STATUS_NOT_FOUND", "STATUS_BUSY", "STATUS_ERROR", "STATUS_CANCELED",
    }
    for name, value in declared.items():
        assert getattr(GroundingResult, name) == int(value)


def test_generated_fields_match_the_msg_files() -> None:
    """A stale build (msg/ edited, scripts/build_interfaces.sh not rerun) fails here."""
    for cls in ALL_TYPES:
        text = (MSG_DIR / f"{cls.__name__}.msg").read_text()
        fields = [m[1] for m in re.findall(r"^([\w/\[\]]+) (\w+)\s*$", text, re.M)]
        assert list(cls.get_fields_and_field_types()) == fields, cls.__name__


def test_cdr_layout_matches_rosbags_reading_the_msg_files() -> None:
    """The bytes rclpy writes decode with rosbags' own CDR reader built from msg/*.msg,
    so recordings of these topics are readable without this package's build."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(MSG_DIR.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"w2r2_ros/msg/{path.stem}"))
    store.register(types)
    decoded = store.deserialize_cdr(serialize_message(_result()), "w2r2_ros/msg/GroundingResult")
    assert decoded.query_id == "q-42"
    assert decoded.best.proposal_id == 3 and decoded.best.label == "chair"
    assert [c.proposal_id for c in decoded.alternatives] == [7, 1]
    assert decoded.alternatives[1].score == pytest.approx(0.0625)
    assert decoded.model_time_ms == pytest.approx(41.5)
    decoded = store.deserialize_cdr(serialize_message(_proposals()), "w2r2_ros/msg/ObjectProposalArray")
    assert [p.num_points for p in decoded.proposals] == [100, 101, 102, 103]
    assert decoded.num_voxels == 12345


@pytest.mark.timeout(60)
def test_publish_and_subscribe_over_dds() -> None:
    """Two participants (own contexts) exchange the messages through rmw_fastrtps_cpp."""
    pub_context, sub_context = rclpy.Context(), rclpy.Context()
    rclpy.init(context=pub_context)
    rclpy.init(context=sub_context)
    try:
        talker = rclpy.create_node("w2r2_interfaces_talker", context=pub_context)
        listener = rclpy.create_node("w2r2_interfaces_listener", context=sub_context)
        qos = QoSProfile(
            depth=5,
            reliability=QoSReliabilityPolicy.RELIABLE,
            durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
        )
        received: dict[str, object] = {}
        listener.create_subscription(GroundingResult, "/w2r2/result", lambda m: received.setdefault("result", m), qos)
        listener.create_subscription(
            ObjectProposalArray, "/w2r2/scene/proposal_array", lambda m: received.setdefault("proposals", m), qos
        )
        talker.create_publisher(GroundingResult, "/w2r2/result", qos).publish(_result())
        talker.create_publisher(ObjectProposalArray, "/w2r2/scene/proposal_array", qos).publish(_proposals())

        executor = SingleThreadedExecutor(context=sub_context)
        executor.add_node(listener)
        deadline = time.monotonic() + 30.0
        while len(received) < 2 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert set(received) == {"result", "proposals"}, f"received only {sorted(received)}"
        assert received["result"] == _result()
        assert [c.label for c in received["result"].alternatives] == ["chair", "table"]
        assert received["proposals"] == _proposals()
        types = dict(listener.get_topic_names_and_types())
        assert types["/w2r2/result"] == ["w2r2_ros/msg/GroundingResult"]
        executor.shutdown()
        talker.destroy_node()
        listener.destroy_node()
    finally:
        rclpy.shutdown(context=pub_context)
        rclpy.shutdown(context=sub_context)
