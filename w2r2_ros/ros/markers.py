"""What a person sees of an answer: RViz markers and a debug image built from a GroundingResult.

Markers (``/w2r2/markers``): every array starts with a DELETEALL marker, so each
answer *replaces* the previous one in RViz instead of piling up. Then the chosen
box (LINE_LIST, 12 edges), a TEXT_VIEW_FACING label with the query and score
above it, and the other top-k candidates faded (thinner, transparent). Ids are
unique per namespace. A NOT_FOUND answer shows only the faded candidates and a
"no match" label, so the user sees what the model considered.

Debug image (``/w2r2/debug_image``): the same boxes projected into the newest
keyframe and drawn with OpenCV.
"""
from __future__ import annotations

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from w2r2_ros.geometry.boxes import BOX_EDGES, Box3D, box_corners
from w2r2_ros.geometry.camera import project_points
from w2r2_ros.ros.conversions import rgb_to_image
from w2r2_ros.ros.interfaces import GroundingCandidate, GroundingResult
from w2r2_ros.ros.proposal_markers import box_edges_marker
from w2r2_ros.scene.keyframes import Keyframe

ANSWER_NS = "w2r2_answer"
ALTERNATIVES_NS = "w2r2_alternatives"
ANSWER_RGBA = (0.1, 0.9, 0.2, 1.0)
ALTERNATIVE_RGBA = (1.0, 0.6, 0.1, 0.35)
LABEL_RGBA = (1.0, 1.0, 1.0, 1.0)
ANSWER_LINE_WIDTH_M = 0.03
ALTERNATIVE_LINE_WIDTH_M = 0.012
LABEL_HEIGHT_M = 0.12
# Debug images narrower than this are upscaled (nearest) so that the label text stays legible.
DEBUG_IMAGE_MIN_WIDTH = 640
# Neither side of a debug image exceeds this: a valid 1x240 camera once made one answer draw a
# 640x153,600 image (295 MB; issue 16, finding 6). Larger keyframes are shrunk to fit.
DEBUG_IMAGE_MAX_SIDE = 1280


def candidate_box(candidate: GroundingCandidate) -> Box3D:
    """The box of a candidate (its pose orientation is a rotation about z by contract: the box's yaw)."""
    p, s, q = candidate.pose.position, candidate.size, candidate.pose.orientation
    return Box3D(center=np.array([p.x, p.y, p.z]), size=np.array([s.x, s.y, s.z]), yaw=float(2.0 * np.arctan2(q.z, q.w)))


def answer_label(result: GroundingResult) -> str:
    """One line for the label marker and the debug image: the query, what was found and how sure."""
    if result.status == GroundingResult.STATUS_OK:
        return f'"{result.text}": {result.best.label} {result.best.score:.2f}'
    return f'"{result.text}": no match ({result.message})'


def _rgba(values: tuple[float, float, float, float]) -> ColorRGBA:
    return ColorRGBA(r=float(values[0]), g=float(values[1]), b=float(values[2]), a=float(values[3]))


def text_marker(text: str, position: np.ndarray, header: Header, ns: str, marker_id: int, height_m: float, rgba: tuple) -> Marker:
    """A TEXT_VIEW_FACING marker centred at ``position``."""
    marker = Marker(header=header, ns=ns, id=marker_id, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, text=text)
    marker.pose.position = Point(x=float(position[0]), y=float(position[1]), z=float(position[2]))
    marker.pose.orientation.w = 1.0
    marker.scale.z = float(height_m)
    marker.color = _rgba(rgba)
    return marker


def _above(box: Box3D, height_m: float) -> np.ndarray:
    return np.array([box.center[0], box.center[1], box.max_corner[2] + 1.5 * height_m])


def result_markers(result: GroundingResult, frame_id: str, stamp: Time | None = None) -> MarkerArray:
    """DELETEALL, then the answer box and label, then the faded alternatives with small labels."""
    header = Header(frame_id=frame_id, stamp=stamp if stamp is not None else result.header.stamp)
    clear = Marker(header=header, action=Marker.DELETEALL)
    markers = [clear]
    if result.status == GroundingResult.STATUS_OK:
        box = candidate_box(result.best)
        markers.append(box_edges_marker(box, 0, ANSWER_NS, header, _rgba(ANSWER_RGBA), ANSWER_LINE_WIDTH_M))
        markers.append(text_marker(answer_label(result), _above(box, LABEL_HEIGHT_M), header, ANSWER_NS, 1, LABEL_HEIGHT_M, LABEL_RGBA))
    elif result.alternatives:
        box = candidate_box(result.alternatives[0])
        markers.append(text_marker(answer_label(result), _above(box, LABEL_HEIGHT_M) + [0, 0, LABEL_HEIGHT_M],
                                   header, ANSWER_NS, 1, LABEL_HEIGHT_M, LABEL_RGBA))
    faded_label_rgba = (*ALTERNATIVE_RGBA[:3], 0.8)
    for index, candidate in enumerate(result.alternatives):
        box = candidate_box(candidate)
        markers.append(box_edges_marker(box, 2 * index, ALTERNATIVES_NS, header, _rgba(ALTERNATIVE_RGBA),
                                        ALTERNATIVE_LINE_WIDTH_M))
        markers.append(text_marker(f"{candidate.label} {candidate.score:.2f}", _above(box, LABEL_HEIGHT_M / 2), header,
                                   ALTERNATIVES_NS, 2 * index + 1, LABEL_HEIGHT_M / 2, faded_label_rgba))
    return MarkerArray(markers=markers)


def debug_image_scale(height: int, width: int) -> float:
    """The factor a keyframe is resized by: an integer upscale to DEBUG_IMAGE_MIN_WIDTH, but never past
    DEBUG_IMAGE_MAX_SIDE on either side."""
    scale = float(max(1, int(np.ceil(DEBUG_IMAGE_MIN_WIDTH / width))))
    return min(scale, DEBUG_IMAGE_MAX_SIDE / max(height, width))


def _draw_box(image: np.ndarray, box: Box3D, keyframe: Keyframe, scale: float, rgb: tuple, thickness: int) -> np.ndarray | None:
    """Draw the box edges whose ends are both in front of the camera; returns the visible corners (pixels)."""
    uv, depth = project_points(box_corners(box), keyframe.intrinsics, keyframe.cam_to_world)
    in_front = depth > 1e-3
    pixels = (uv + 0.5) * scale - 0.5
    colour = tuple(int(255 * c) for c in rgb[:3])
    for a, b in BOX_EDGES:
        if in_front[a] and in_front[b]:
            cv2.line(image, tuple(np.round(pixels[a]).astype(int)), tuple(np.round(pixels[b]).astype(int)),
                     colour, thickness, cv2.LINE_AA)
    return pixels[in_front] if in_front.any() else None


def _put_label(image: np.ndarray, text: str, origin: tuple[int, int], rgb: tuple, font_scale: float) -> None:
    """Text on a dark box so it reads on any background; ``origin`` is the text's bottom-left corner."""
    colour = tuple(int(255 * c) for c in rgb[:3])
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    x, y = origin
    cv2.rectangle(image, (x - 2, y - height - 3), (x + width + 2, y + baseline), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, 1, cv2.LINE_AA)


def draw_result(keyframe: Keyframe, result: GroundingResult) -> np.ndarray:
    """The keyframe's RGB with the alternatives (faded) and the answer box drawn in; uint8 (H', W', 3) RGB."""
    height, width = keyframe.rgb.shape[:2]
    scale = debug_image_scale(height, width)
    size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    base = np.ascontiguousarray(cv2.resize(keyframe.rgb, size, interpolation=cv2.INTER_NEAREST))
    faded = base.copy()
    for candidate in result.alternatives:
        _draw_box(faded, candidate_box(candidate), keyframe, scale, ALTERNATIVE_RGBA, 1)
    alpha = ALTERNATIVE_RGBA[3] + 0.3
    image = cv2.addWeighted(faded, alpha, base, 1.0 - alpha, 0.0)
    if result.status == GroundingResult.STATUS_OK:
        corners = _draw_box(image, candidate_box(result.best), keyframe, scale, ANSWER_RGBA, 2)
        if corners is not None:
            x = int(np.clip(corners[:, 0].min(), 2, image.shape[1] - 2))
            y = int(np.clip(corners[:, 1].min() - 6, 14, image.shape[0] - 4))
            _put_label(image, f"{result.best.label} {result.best.score:.2f}", (x, y), ANSWER_RGBA, 0.5)
    _put_label(image, answer_label(result), (6, 20), LABEL_RGBA, 0.5)
    return image


def debug_image(keyframe: Keyframe, result: GroundingResult) -> Image:
    """``draw_result`` as an rgb8 Image stamped with the keyframe's time (frame id left empty: the keyframe
    carries no camera frame name, and the image is upscaled, so it is for eyes, not for geometry)."""
    return rgb_to_image(draw_result(keyframe, result), keyframe.stamp, "")
