"""Keyframes and proposals as messages, for a grounding node in another process than the scene memory.

``SceneKeyframe`` is lossless (PNG colour, zlib-packed float32 depth), so the
model reads exactly what it would read in-process and answers the same. Proposals
travel in the ``ObjectProposalArray`` the scene memory node already publishes.
"""
from __future__ import annotations

import zlib

import cv2
import numpy as np

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.ros.conversions import InvalidMessage, make_header, stamp_to_seconds
from w2r2_ros.ros.interfaces import ObjectProposalArray, SceneKeyframe
from w2r2_ros.scene.keyframes import Keyframe
from w2r2_ros.scene.proposals import Proposal

# zlib level 1: a 640x480 depth image packs in a few milliseconds; higher levels gain little on depth.
_DEPTH_ZLIB_LEVEL = 1


def keyframe_to_msg(keyframe: Keyframe, frame_id: str) -> SceneKeyframe:
    """One keyframe as a SceneKeyframe (colour PNG, depth zlib; both lossless)."""
    ok, png = cv2.imencode(".png", np.ascontiguousarray(keyframe.rgb[:, :, ::-1]))  # OpenCV writes BGR
    if not ok:
        raise ValueError(f"keyframe at {keyframe.stamp:.3f}: PNG encoding failed")
    k = keyframe.intrinsics
    msg = SceneKeyframe(
        header=make_header(keyframe.stamp, frame_id), width=int(k.width), height=int(k.height),
        fx=float(k.fx), fy=float(k.fy), cx=float(k.cx), cy=float(k.cy),
        cam_to_map=[float(v) for v in np.asarray(keyframe.cam_to_world, dtype=np.float64).ravel()],
    )
    msg.rgb_png = png.tobytes()
    msg.depth_zlib = zlib.compress(np.ascontiguousarray(keyframe.depth, dtype=np.float32).tobytes(), _DEPTH_ZLIB_LEVEL)
    return msg


def msg_to_keyframe(msg: SceneKeyframe) -> Keyframe:
    """A SceneKeyframe back to a Keyframe; InvalidMessage names what does not fit."""
    height, width = int(msg.height), int(msg.width)
    bgr = cv2.imdecode(np.frombuffer(bytes(msg.rgb_png), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.shape[:2] != (height, width):
        raise InvalidMessage(f"SceneKeyframe: colour is not a {width}x{height} PNG")
    try:
        depth = np.frombuffer(zlib.decompress(bytes(msg.depth_zlib)), np.float32)
    except zlib.error as error:
        raise InvalidMessage(f"SceneKeyframe: depth is not zlib data ({error})") from error
    if depth.size != height * width:
        raise InvalidMessage(f"SceneKeyframe: depth has {depth.size} values, expected {width}x{height}")
    intrinsics = Intrinsics(fx=msg.fx, fy=msg.fy, cx=msg.cx, cy=msg.cy, width=width, height=height)
    cam_to_map = np.asarray(msg.cam_to_map, dtype=np.float64).reshape(4, 4)
    return Keyframe.create(stamp_to_seconds(msg.header.stamp), bgr[:, :, ::-1], depth.reshape(height, width),
                           intrinsics, cam_to_map)


def array_to_proposals(msg: ObjectProposalArray) -> tuple[Proposal, ...]:
    """The proposals of an ObjectProposalArray (boxes exact: float64 both ways; colour 0..255)."""
    return tuple(
        Proposal(
            int(p.proposal_id),
            Box3D(np.array([p.center.x, p.center.y, p.center.z]), np.array([p.size.x, p.size.y, p.size.z]), float(p.yaw)),
            int(p.num_points),
            np.array([p.mean_color.r, p.mean_color.g, p.mean_color.b], dtype=np.float64) * 255.0,
        )
        for p in msg.proposals
    )
