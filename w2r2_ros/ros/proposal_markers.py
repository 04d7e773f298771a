"""Object proposals as messages: RViz markers and the package's ObjectProposalArray."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from w2r2_ros.geometry.boxes import BOX_EDGES, Box3D, box_corners
from w2r2_ros.ros.interfaces import ObjectProposal, ObjectProposalArray
from w2r2_ros.scene.proposals import Proposal


def _rgba(rgb_0_255: np.ndarray, alpha: float) -> ColorRGBA:
    r, g, b = (float(v) / 255.0 for v in np.clip(rgb_0_255, 0, 255))
    return ColorRGBA(r=r, g=g, b=b, a=float(alpha))


def box_edges_marker(box: Box3D, marker_id: int, ns: str, header: Header, color: ColorRGBA, line_width: float = 0.02) -> Marker:
    """A LINE_LIST marker drawing the 12 edges of a box (turned by its yaw)."""
    corners = box_corners(box)
    marker = Marker(header=header, ns=ns, id=marker_id, type=Marker.LINE_LIST, action=Marker.ADD, color=color)
    marker.pose.orientation.w = 1.0
    marker.scale.x = line_width
    marker.points = [Point(x=float(c[0]), y=float(c[1]), z=float(c[2])) for edge in BOX_EDGES for c in corners[list(edge)]]
    return marker


def proposals_to_marker_array(proposals: Sequence[Proposal], header: Header, ns: str = "proposals") -> MarkerArray:
    """DELETEALL, then per proposal a box (id 2k, its mean colour) and a text id above it (id 2k + 1).

    The DELETEALL first makes RViz replace the previous set instead of piling
    up markers of proposals that no longer exist.
    """
    markers = [Marker(header=header, ns=ns, id=0, action=Marker.DELETEALL)]
    for k, proposal in enumerate(proposals):
        markers.append(box_edges_marker(proposal.box, 2 * k, ns, header, _rgba(proposal.mean_rgb, 1.0)))
        text = Marker(header=header, ns=ns, id=2 * k + 1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        text.text = f"#{proposal.proposal_id}"
        text.pose.position.x, text.pose.position.y = (float(v) for v in proposal.box.center[:2])
        text.pose.position.z = float(proposal.box.max_corner[2] + 0.1)
        text.pose.orientation.w = 1.0
        text.scale.z = 0.15
        text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        markers.append(text)
    return MarkerArray(markers=markers)


def proposals_to_array(proposals: Sequence[Proposal], header: Header, num_keyframes: int, num_voxels: int) -> ObjectProposalArray:
    """The scene memory's proposals and the size of its memory as an ObjectProposalArray."""
    msg = ObjectProposalArray(header=header, num_keyframes=int(num_keyframes), num_voxels=int(num_voxels))
    for proposal in proposals:
        item = ObjectProposal(proposal_id=int(proposal.proposal_id), num_points=int(proposal.n_points))
        item.center.x, item.center.y, item.center.z = (float(v) for v in proposal.box.center)
        item.size.x, item.size.y, item.size.z = (float(v) for v in proposal.box.size)
        item.yaw = float(proposal.box.yaw)
        item.mean_color = _rgba(proposal.mean_rgb, 1.0)
        msg.proposals.append(item)
    return msg
