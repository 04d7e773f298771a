"""Markers and debug image built from a GroundingResult: what RViz shows of an answer."""
import numpy as np
import pytest
from visualization_msgs.msg import Marker

from w2r2_ros.geometry.boxes import Box3D, box_corners
from w2r2_ros.geometry.camera import Intrinsics, project_points
from w2r2_ros.geometry.transforms import look_at
from w2r2_ros.ros.interfaces import GroundingCandidate, GroundingResult
from w2r2_ros.ros.markers import ANSWER_NS, ALTERNATIVES_NS, candidate_box, draw_result, result_markers
from w2r2_ros.scene.keyframes import Keyframe


def candidate(center, size, label="chair", score=0.5, proposal_id=0) -> GroundingCandidate:
    c = GroundingCandidate(proposal_id=proposal_id, label=label, score=float(score))
    c.pose.position.x, c.pose.position.y, c.pose.position.z = (float(v) for v in center)
    c.pose.orientation.w = 1.0
    c.size.x, c.size.y, c.size.z = (float(v) for v in size)
    return c


def ok_result() -> GroundingResult:
    result = GroundingResult(query_id="q7", text="the green chair", status=GroundingResult.STATUS_OK, message="found")
    result.best = candidate((1.0, 0.5, 0.4), (0.5, 0.6, 0.8), "chair", 0.81, 3)
    result.alternatives = [candidate((-1.0, 1.0, 0.3), (0.4, 0.4, 0.6), "box", 0.07, 5),
                           candidate((0.0, -1.5, 0.5), (1.2, 0.6, 1.0), "table", 0.04, 1)]
    return result


def test_ok_answer_markers_are_well_formed():
    result = ok_result()
    markers = result_markers(result, "map").markers
    assert markers[0].action == Marker.DELETEALL
    assert all(m.header.frame_id == "map" for m in markers)
    keys = [(m.ns, m.id) for m in markers[1:]]
    assert len(keys) == len(set(keys))

    answer_box = next(m for m in markers if m.ns == ANSWER_NS and m.type == Marker.LINE_LIST)
    points = np.array([[p.x, p.y, p.z] for p in answer_box.points])
    assert points.shape == (24, 3)  # 12 edges
    box = candidate_box(result.best)
    np.testing.assert_allclose(points.min(axis=0), box.min_corner)
    np.testing.assert_allclose(points.max(axis=0), box.max_corner)
    edge_lengths = np.sort(np.linalg.norm(points[0::2] - points[1::2], axis=1))
    np.testing.assert_allclose(edge_lengths, np.sort(np.repeat(box.size, 4)))

    label = next(m for m in markers if m.ns == ANSWER_NS and m.type == Marker.TEXT_VIEW_FACING)
    assert "the green chair" in label.text and "0.81" in label.text
    assert label.pose.position.z > box.max_corner[2]

    faded = [m for m in markers if m.ns == ALTERNATIVES_NS and m.type == Marker.LINE_LIST]
    assert len(faded) == 2
    assert all(m.color.a < answer_box.color.a for m in faded)


def test_not_found_shows_only_faded_candidates():
    result = ok_result()
    result.status = GroundingResult.STATUS_NOT_FOUND
    result.message = "no object scored above 0.90"
    result.best = GroundingCandidate()
    markers = result_markers(result, "map").markers
    assert markers[0].action == Marker.DELETEALL
    assert not [m for m in markers if m.ns == ANSWER_NS and m.type == Marker.LINE_LIST]
    label = next(m for m in markers if m.ns == ANSWER_NS)
    assert "no match" in label.text
    assert len([m for m in markers if m.ns == ALTERNATIVES_NS and m.type == Marker.LINE_LIST]) == 2


def test_debug_image_draws_the_box_where_it_projects():
    intrinsics = Intrinsics.from_fov(160, 120, 70.0)
    cam_to_world = look_at(np.array([-2.0, 0.0, 1.2]), np.array([1.0, 0.5, 0.4]))
    rgb = np.full((120, 160, 3), 90, np.uint8)
    keyframe = Keyframe.create(1.0, rgb, np.full((120, 160), 3.0, np.float32), intrinsics, cam_to_world)
    result = ok_result()
    image = draw_result(keyframe, result)
    scale = image.shape[1] // 160
    assert image.shape == (120 * scale, 160 * scale, 3) and scale >= 2

    green = (image[..., 1] > 200) & (image[..., 0] < 80) & (image[..., 2] < 120)
    uv, depth = project_points(box_corners(candidate_box(result.best)), intrinsics, cam_to_world)
    assert np.all(depth > 0)
    lo, hi = (uv.min(axis=0) + 0.5) * scale, (uv.max(axis=0) + 0.5) * scale
    rows, cols = np.nonzero(green)
    inside = (cols >= lo[0] - 3) & (cols <= hi[0] + 3) & (rows >= lo[1] - 20) & (rows <= hi[1] + 3)
    assert green.sum() > 100
    assert inside.mean() > 0.95  # the green edges (and the label above) are where the box projects


def test_box_corners_span_the_box():
    box = Box3D(center=np.array([1.0, 2.0, 3.0]), size=np.array([0.2, 0.4, 0.6]))
    corners = box_corners(box)
    assert corners.shape == (8, 3) and len({tuple(c) for c in corners}) == 8
    np.testing.assert_allclose(corners.min(axis=0), box.min_corner)
    np.testing.assert_allclose(corners.max(axis=0), box.max_corner)


def test_a_turned_box_keeps_its_yaw_through_the_messages():
    """A proposal turned by its yaw goes out in ObjectProposal.yaw and as the candidate pose's rotation
    about z; the markers draw the turned edges and the axis-aligned bounds contain them."""
    from std_msgs.msg import Header

    from w2r2_ros.model.grounder import GroundingCandidate as RankedCandidate
    from w2r2_ros.ros.grounding_node import GroundingNode
    from w2r2_ros.ros.keyframe_messages import array_to_proposals
    from w2r2_ros.ros.proposal_markers import proposals_to_array
    from w2r2_ros.scene.proposals import Proposal

    box = Box3D(center=np.array([1.0, 2.0, 0.4]), size=np.array([1.2, 0.5, 0.8]), yaw=0.6)
    (back,) = array_to_proposals(proposals_to_array([Proposal(4, box, 100, np.array([10.0, 20.0, 30.0]))], Header(), 1, 100))
    assert back.box.yaw == 0.6 and np.allclose(back.box.size, box.size)
    ranked = RankedCandidate(proposal_id=4, box=box, score=0.9, label="table", label_score=0.9)
    assert candidate_box(GroundingNode._candidate(ranked)).yaw == pytest.approx(0.6)
    corners = box_corners(box)
    np.testing.assert_allclose(corners.min(axis=0), box.min_corner)
    np.testing.assert_allclose(corners.max(axis=0), box.max_corner)
    edge = corners[1] - corners[0]  # along the box's own x axis
    assert np.arctan2(edge[1], edge[0]) == pytest.approx(0.6)
