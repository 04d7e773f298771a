"""Answers and proposals as ``vision_msgs/Detection3DArray``, what the ROS perception world consumes.

Isaac ROS, yolo_ros' 3D users and Nav2/MoveIt glue read ``Detection3DArray``;
our own messages carry more (status, message, query id), so both are
published. Mapping:

- one ``Detection3D`` per candidate, best first: ``id`` the proposal id,
  ``bbox`` the box (``center`` pose with the box's yaw, ``size`` along the box
  axes), one ``results`` hypothesis with ``class_id`` the predicted label and
  ``score`` the model's score, its pose the box centre;
- the array's header is the result's (its ``target_frame`` and stamp); a
  result that is not OK publishes an empty array, so that a consumer taking
  ``detections[0]`` as the answer never takes an alternative for it;
- proposals are class-agnostic: ``class_id`` ``"object"`` and ``score`` 1.
"""
from __future__ import annotations

import math
from typing import Sequence

from geometry_msgs.msg import Pose, Vector3
from std_msgs.msg import Header
from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.ros.interfaces import GroundingCandidate, GroundingResult
from w2r2_ros.scene.proposals import Proposal

PROPOSAL_CLASS = "object"


def detection(header: Header, detection_id: str, pose: Pose, size: Vector3, class_id: str, score: float) -> Detection3D:
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = class_id, float(score)
    hypothesis.pose.pose = pose
    item = Detection3D(header=header, id=detection_id, results=[hypothesis])
    item.bbox.center, item.bbox.size = pose, size
    return item


def result_to_detections(result: GroundingResult) -> Detection3DArray:
    """The answer and its alternatives (best first); empty unless the result is OK."""
    array = Detection3DArray(header=result.header)
    if result.status != GroundingResult.STATUS_OK:
        return array
    candidates: list[GroundingCandidate] = [result.best, *result.alternatives]
    array.detections = [detection(result.header, str(c.proposal_id), c.pose, c.size, c.label, c.score) for c in candidates]
    return array


def box_pose(box: Box3D) -> Pose:
    """The box centre, turned by its yaw about z when the box has one (axis-aligned boxes: identity)."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in box.center)
    yaw = float(getattr(box, "yaw", 0.0))  # Box3D gains a yaw with oriented proposals
    pose.orientation.z, pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return pose


def proposals_to_detections(proposals: Sequence[Proposal], header: Header) -> Detection3DArray:
    """The scene memory's proposals, class-agnostic."""
    array = Detection3DArray(header=header)
    for proposal in proposals:
        size = Vector3()
        size.x, size.y, size.z = (float(v) for v in proposal.box.size)
        array.detections.append(detection(header, str(proposal.proposal_id), box_pose(proposal.box), size, PROPOSAL_CLASS, 1.0))
    return array
