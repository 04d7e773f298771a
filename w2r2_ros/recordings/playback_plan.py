"""Which topics of a bag feed scene_memory_node, and with which parameters: decided from the bag's index.

A robot's recording names its topics its own way (a RealSense driver records
``/camera/camera/color/image_raw``, image_transport adds ``/compressed`` and
``/compressedDepth``), holds topics the node does not read (``/diagnostics``,
custom types), and carries its pose as ``/tf``, a PoseStamped or an Odometry.
:func:`plan_playback` matches the node's parameters against the bag before
anything is played: it picks the image transports the bag has, keeps only the
topics the node reads (plus ``/tf`` and ``/tf_static``, which place poses and
clouds given in other frames), and when something is missing raises
:class:`BagError` with one line that names what was looked for, what the bag
has, and the flag to set.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from w2r2_ros.recordings.bag_reader import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    ODOMETRY,
    POINT_CLOUD2,
    POSE_STAMPED,
    TF_MESSAGE,
    BagConnection,
    BagError,
)

TF_TOPICS = ("/tf", "/tf_static")
# Per image stream: (transport, message type, topic suffix), image_transport's names.
_TRANSPORTS = {
    "rgb": (("raw", IMAGE, ""), ("compressed", COMPRESSED_IMAGE, "/compressed")),
    "depth": (("raw", IMAGE, ""), ("compressedDepth", COMPRESSED_IMAGE, "/compressedDepth")),
}


@dataclass(frozen=True)
class PlaybackPlan:
    """``params``: scene_memory_node parameters to set (topics, transports); ``play``: topic -> type to
    publish, in the bag's names; ``skipped``: the bag's other topics and their types."""

    params: dict[str, object]
    play: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)


def absolute(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


def _listing(connections: dict[str, BagConnection], types: tuple[str, ...] | None = None) -> str:
    chosen = [c for c in connections.values() if types is None or c.msgtype in types]
    return ", ".join(f"{c.topic} ({c.msgtype}, {c.count})" for c in sorted(chosen, key=lambda c: c.topic)) or "none"


def _image_topic(stream: str, base: str, preferred: str,
                 connections: dict[str, BagConnection]) -> tuple[str, str, str] | None:
    """(topic in the bag, transport, base topic) for an image stream: ``base`` raw or with a transport
    suffix; ``base`` may itself end in the suffix. The configured transport is tried first."""
    options = sorted(_TRANSPORTS[stream], key=lambda option: option[0] != preferred)
    for transport, msgtype, suffix in options:
        root = base[: -len(suffix)] if suffix and base.endswith(suffix) else base
        topic = root + suffix
        if topic in connections and connections[topic].msgtype == msgtype:
            return topic, transport, root
    return None


def plan_playback(bag: str, connections: dict[str, BagConnection], scene_params: dict[str, object]) -> PlaybackPlan:
    """The plan for playing ``connections`` (``bag_connections``) into a node with ``scene_params``."""
    connections = {absolute(topic): c for topic, c in connections.items()}
    params: dict[str, object] = {}
    play: dict[str, str] = {}
    missing: list[str] = []
    for stream, flag in (("rgb", "--rgb-topic"), ("depth", "--depth-topic")):
        base = absolute(str(scene_params[f"{stream}_topic"]))
        found = _image_topic(stream, base, str(scene_params.get(f"{stream}_transport", "raw")), connections)
        if found is None:
            suffix = _TRANSPORTS[stream][1][2]
            missing.append(f"{stream} {base.removesuffix(suffix)} (Image) or {base.removesuffix(suffix)}{suffix} "
                           f"(CompressedImage); set {flag}")
            continue
        topic, transport, root = found
        params[f"{stream}_transport"], params[f"{stream}_topic"] = transport, root
        play[topic] = connections[topic].msgtype
    if len(missing) == 2:
        raise BagError(f"{bag}: no camera topics: looked for {'; '.join(missing)}. The bag has: {_listing(connections)}")
    if missing:
        raise BagError(f"{bag}: no {missing[0]}. Image topics in the bag: "
                       f"{_listing(connections, (IMAGE, COMPRESSED_IMAGE))}")

    def need(param: str, msgtype: str, flag: str, why: str) -> None:
        topic = absolute(str(scene_params[param]))
        if topic in connections and connections[topic].msgtype == msgtype:
            play[topic] = msgtype
            return
        raise BagError(f"{bag}: no {msgtype} on {topic} ({why}; set {flag}). "
                       f"{msgtype} topics in the bag: {_listing(connections, (msgtype,))}")

    need("camera_info_topic", CAMERA_INFO, "--camera-info-topic", "the camera intrinsics")
    source = scene_params["pose_source"]
    tf_topics = [t for t in TF_TOPICS if t in connections and connections[t].msgtype == TF_MESSAGE]
    if source == "tf" and not tf_topics:
        raise BagError(f"{bag}: no /tf or /tf_static (pose_source tf). Pose topics in the bag: "
                       f"{_listing(connections, (POSE_STAMPED, ODOMETRY))}; use --pose-source pose --pose-topic T "
                       "or --pose-source odometry --odom-topic T")
    if source == "pose":
        need("pose_topic", POSE_STAMPED, "--pose-topic, or --pose-source", "pose_source pose")
    elif source == "odometry":
        need("odom_topic", ODOMETRY, "--odom-topic, or --pose-source", "pose_source odometry")
    play.update({t: TF_MESSAGE for t in tf_topics})  # they also place poses and clouds given in other frames
    cloud = absolute(str(scene_params["cloud_topic"]))
    if cloud in connections and connections[cloud].msgtype == POINT_CLOUD2:
        play[cloud] = POINT_CLOUD2
    skipped = {t: c.msgtype for t, c in connections.items() if t not in play}
    return PlaybackPlan(params, play, skipped)
