"""tf2_msgs and vision_msgs generated from interfaces/: the same types as a robot's, byte for byte."""
import json
from pathlib import Path

import numpy as np
import pytest
import tf2_msgs.msg
import vision_msgs.msg
from geometry_msgs.msg import TransformStamped
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.typesys import Stores, get_typestore

TYPESTORE = get_typestore(Stores.ROS2_KILTED)  # rosbags' own Kilted definitions, independent of rosidl
# RIHS01 hashes of upstream vision_msgs 4.1.1 (as published by other ROS 2 clients generated from upstream's
# definitions): a changed field, type or constant in interfaces/vision_msgs/msg would change them.
UPSTREAM_VISION_HASHES = {
    "Detection3DArray": "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018",
}


def type_hash(module, name: str) -> str:
    """The type hash rosidl generated for ``<package>/msg/<name>``, from the install's share/ folder."""
    package = module.__name__.split(".")[0]
    share = Path(module.__file__).resolve().parents[5] / "share" / package / "msg" / f"{name}.json"
    hashes = json.loads(share.read_text())["type_hashes"]
    return next(h["hash_string"] for h in hashes if h["type_name"] == f"{package}/msg/{name}")


@pytest.mark.parametrize("name", ["TFMessage", "TF2Error"])
def test_tf2_msgs_hash_matches_the_kilted_definition(name: str) -> None:
    assert type_hash(tf2_msgs.msg, name) == TYPESTORE.hash_rihs01(f"tf2_msgs/msg/{name}")


def test_vision_msgs_hash_matches_upstream() -> None:
    for name, expected in UPSTREAM_VISION_HASHES.items():
        assert type_hash(vision_msgs.msg, name) == expected


def test_tfmessage_bytes_are_what_rosbags_writes_for_a_robot() -> None:
    """The CDR of a generated TFMessage decodes with rosbags' Kilted type, and back."""
    transform = TransformStamped(child_frame_id="camera_link")
    transform.header.frame_id = "base_link"
    transform.header.stamp.sec, transform.header.stamp.nanosec = 12, 500
    transform.transform.translation.x, transform.transform.rotation.w = 0.25, 1.0
    raw = serialize_message(tf2_msgs.msg.TFMessage(transforms=[transform]))
    decoded = TYPESTORE.deserialize_cdr(raw, "tf2_msgs/msg/TFMessage")
    assert decoded.transforms[0].child_frame_id == "camera_link"
    assert decoded.transforms[0].header.stamp.sec == 12 and decoded.transforms[0].transform.translation.x == 0.25
    again = deserialize_message(bytes(TYPESTORE.serialize_cdr(decoded, "tf2_msgs/msg/TFMessage")), tf2_msgs.msg.TFMessage)
    assert again.transforms[0] == transform


def test_detection3d_fields_are_upstreams() -> None:
    detection = vision_msgs.msg.Detection3D(id="7")
    hypothesis = vision_msgs.msg.ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = "chair", 0.5
    detection.results.append(hypothesis)
    detection.bbox.size.x = 1.5
    array = vision_msgs.msg.Detection3DArray(detections=[detection])
    again = deserialize_message(serialize_message(array), vision_msgs.msg.Detection3DArray)
    assert again == array
    assert np.isclose(again.detections[0].results[0].hypothesis.score, 0.5)
