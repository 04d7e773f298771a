"""w2r2-demo: the whole pipeline on one machine, from a camera stream to boxes, with pictures.

    w2r2-demo [--bag FILE] [--query TEXT ...] [--out DIR] [--checkpoint DIR]
              [--pose-source tf|pose|odometry] [--rgb-topic T] [--odom-topic T] ...

Starts scene_memory_node and grounding_node in-process (as ``w2r2-bringup``
does), then plays a rosbag2 over DDS into them: the given ``--bag``, or a
synthetic room recorded with the simulator and written as a bag first, so both
take the same path. The bag's index is checked first against the node's
parameters and the flags (``recordings.playback_plan``: image transports,
pose source, what is missing and what the bag has instead); then a player node
streams the topics the node reads, message by message, paced as recorded, so
memory stays flat however long the bag (the peak RSS is printed at the end,
with what the node received and dropped). When the scene memory has proposals, the
demo asks a few referring expressions generated for the synthetic room (ground
truth known) plus every ``--query``, prints one line per answer, and writes one
PNG per answer (top-down and 3D views of the markers and fused cloud, and the
debug image) and an overview to ``--out``.
"""
from __future__ import annotations

import argparse
import importlib
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections import Counter
from typing import Iterator, Sequence

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import MarkerArray

from w2r2_ros.cli.bringup import GROUNDING_NODE, SCENE_MEMORY_NODE, node_values, option_flag, start_nodes
from w2r2_ros.geometry.boxes import box_iou
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.recordings.bag_reader import BagError, bag_connections, read_bag_raw
from w2r2_ros.recordings.playback_plan import PlaybackPlan, plan_playback
from w2r2_ros.ros.conversions import cloud_to_xyz_rgb, image_to_rgb
from w2r2_ros.ros.grounding_node import STATUS_NAMES, GroundingNode
from w2r2_ros.ros.interfaces import GroundingQuery, GroundingResult, ObjectProposalArray
from w2r2_ros.ros.markers import candidate_box
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.params import default_params_file
from w2r2_ros.ros.proposal_markers import box_edges_marker
from w2r2_ros.ros.scene_memory_node import POSE_SOURCES, SceneMemoryNode
from w2r2_ros.ros.tf_listener import TF_STATIC_QOS
from w2r2_ros.sim.bag_writer import write_bag
from w2r2_ros.sim.conditions import WorldConfig, add_world_arguments, world_from_args
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.geometry.viewer import viewer_from_camera_pose
from w2r2_ros.sim.world import SceneSpec, generate_scene
from w2r2_ros.viz.render_png import render_markers_png
from w2r2_training.human_descriptions import human_samples
from w2r2_training.referring import SPLIT_MULTIPLE, SPLIT_UNIQUE

_EVERY_MESSAGE = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
_LATEST = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)
# A synthetic recording: 320x240 keeps every image under Fast DDS's default shared-memory segment.
SYNTHETIC_INTRINSICS = Intrinsics.from_fov(320, 240, 70.0)
BAG_FALLBACK_QUERIES = ("the chair", "the table", "the lamp")
# scene_memory_node parameters the demo takes as flags (--pose-source, --rgb-topic, ...).
SCENE_FLAGS = ("pose_source", "rgb_topic", "depth_topic", "camera_info_topic", "pose_topic", "odom_topic", "cloud_topic",
               "map_frame", "camera_frame")


@dataclass(frozen=True)
class DemoQuery:
    text: str
    target: int | None = None  # ground-truth object id, when known


def ros_message_class(msgtype: str) -> type:
    """``sensor_msgs/msg/Image`` -> the rclpy class ``sensor_msgs.msg.Image``."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class DemoClient(Node):
    """The robot's side of the demo: plays the bag, sends queries, and listens like RViz would."""

    def __init__(self, play: dict[str, type], scene_params: dict, grounding_params: dict, **kwargs) -> None:
        super().__init__("w2r2_demo", **kwargs)
        recorded = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.players = {topic: self.create_publisher(msg_class, topic, TF_STATIC_QOS if topic == "/tf_static" else recorded)
                        for topic, msg_class in play.items()}
        self.played: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.results: dict[str, GroundingResult] = {}
        self.answer_markers: list[MarkerArray] = []
        self.debug_images: list[Image] = []
        self.proposal_arrays: list[ObjectProposalArray] = []
        self.proposal_markers: MarkerArray | None = None
        self.cloud: PointCloud2 | None = None
        self.query = self.create_publisher(GroundingQuery, grounding_params["query_topic"], _EVERY_MESSAGE)
        self.create_subscription(GroundingResult, grounding_params["result_topic"], self._on_result, _EVERY_MESSAGE)
        self.create_subscription(MarkerArray, grounding_params["markers_topic"], self._keep(self.answer_markers), _LATEST)
        self.create_subscription(Image, grounding_params["debug_image_topic"], self._keep(self.debug_images), _LATEST)
        self.create_subscription(ObjectProposalArray, scene_params["proposal_array_topic"], self._keep(self.proposal_arrays), _LATEST)
        self.create_subscription(MarkerArray, scene_params["proposal_markers_topic"], self._on_proposal_markers, _LATEST)
        self.create_subscription(PointCloud2, scene_params["fused_cloud_topic"], self._on_cloud, _LATEST)

    def _keep(self, into: list):
        def store(msg) -> None:
            with self.lock:
                into.append(msg)
        return store

    def _on_result(self, msg: GroundingResult) -> None:
        with self.lock:
            self.results[msg.query_id] = msg

    def _on_proposal_markers(self, msg: MarkerArray) -> None:
        with self.lock:
            self.proposal_markers = msg

    def _on_cloud(self, msg: PointCloud2) -> None:
        with self.lock:
            self.cloud = msg

    def connected(self, inputs: set[str]) -> bool:
        """The query topic and every bag topic the scene memory node reads (``inputs``) have a subscriber."""
        return self.query.get_subscription_count() > 0 and all(
            self.players[topic].get_subscription_count() > 0 for topic in inputs
        )

    def play(self, messages: Iterator[tuple[str, str, int, bytes]], rate: float) -> None:
        """Publish each message (its recorded CDR bytes) at its recorded time offset (divided by ``rate``),
        one at a time as the reader yields it."""
        start_wall = start_ns = None
        for topic, _, stamp_ns, data in messages:
            if start_ns is None:
                start_wall, start_ns = time.monotonic(), stamp_ns
            delay = (stamp_ns - start_ns) * 1e-9 / rate - (time.monotonic() - start_wall)
            if delay > 0:
                time.sleep(delay)
            self.players[topic].publish(data)
            self.played[topic] += 1


def node_matched(scene: SceneMemoryNode, topics: dict[str, str]) -> bool:
    """The scene memory node's readers of every played topic have matched a writer: a best-effort reader
    loses whatever is sent before it has (discovery is slower than "the writer sees a reader")."""
    return all(any(sub.get_publisher_count() > 0 for sub in scene.subscriptions if sub.topic_name == topic) for topic in topics)


def player_classes(bag: Path, plan: PlaybackPlan) -> dict[str, type]:
    """The rclpy class of each topic to play; a type that does not import here is a BagError naming it."""
    classes = {}
    for topic, msgtype in plan.play.items():
        try:
            classes[topic] = ros_message_class(msgtype)
        except (ImportError, AttributeError, ValueError) as error:
            raise BagError(f"{bag}: cannot play {topic}: message type {msgtype} is not available here ({error})") from None
    return classes


def counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"


def ingest_summary(scene: SceneMemoryNode, client: DemoClient, plan: PlaybackPlan) -> list[str]:
    """What was played, received, fused and dropped (and why), and the process's peak memory."""
    lines = [f"played: {counts_line(dict(client.played))}",
             f"scene memory received: {counts_line(scene.received_counts)}; frames: {counts_line(scene.frame_outcomes)}",
             f"dropped: {counts_line(scene.drop_counts)}"]
    if plan.skipped:
        lines.append(f"not played (not read by scene_memory_node): {', '.join(f'{t} ({m})' for t, m in sorted(plan.skipped.items()))}")
    lines.append(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return lines


def synthetic_bag(
    directory: Path, seed: int, frames: int, world: WorldConfig = WorldConfig()
) -> tuple[Path, SceneSpec, np.ndarray]:
    """The bag of a generated room, the room, and the viewer of its last frame (``geometry/viewer.py``): the
    camera pose the scene memory holds when the queries come, which "left" and "right" are seen from."""
    scene = generate_scene(f"demo-{seed}", seed, world.scene)
    recording = record_scene(scene, n_frames=frames, intrinsics=SYNTHETIC_INTRINSICS, seed=seed, render_config=world.render)
    return write_bag(recording, directory / "synthetic_scene"), scene, viewer_from_camera_pose(recording.poses[-1])


def scene_queries(scene: SceneSpec, viewer: np.ndarray, seed: int, count: int) -> list[DemoQuery]:
    """``count`` ground-truth descriptions in people's words (the shipped model's training phraser), "unique"
    and "multiple" (need Where) alternating."""
    samples = human_samples(scene, viewer, seed=seed)
    unique = [s for s in samples if s.split_label == SPLIT_UNIQUE and s.ann_id == 0]
    multiple = [s for s in samples if s.split_label == SPLIT_MULTIPLE and s.ann_id == 0]
    alternating = [s for pair in zip(unique, multiple) for s in pair]
    alternating += unique[len(multiple):] + multiple[len(unique):]
    return [DemoQuery(s.description, s.object_id) for s in alternating[:count]]


def answer_line(query: DemoQuery, result: GroundingResult | None, scene: SceneSpec | None) -> tuple[str, bool | None]:
    """One printed line per answer, and whether it is correct (IoU >= 0.5 with the ground truth) when known."""
    if result is None:
        return f'"{query.text}": no result within the time limit', (False if query.target is not None else None)
    status = STATUS_NAMES[result.status]
    if result.status == GroundingResult.STATUS_OK:
        box = candidate_box(result.best)
        centre = ", ".join(f"{v:.2f}" for v in box.center)
        size = ", ".join(f"{v:.2f}" for v in box.size)
        found = f"{result.best.label} at ({centre}) size ({size}) score {result.best.score:.2f}"
    else:
        found = result.message
    line = f'[{result.query_id}] "{query.text}" -> {found} [{status}]'
    if query.target is None or scene is None:
        return line, None
    iou = box_iou(candidate_box(result.best), scene.map_box(query.target)) if result.status == GroundingResult.STATUS_OK else 0.0
    correct = iou >= 0.5
    return f"{line} {'correct' if correct else 'wrong'} (IoU {iou:.2f} with the ground truth)", correct


def ground_truth_markers(scene: SceneSpec, stamp) -> MarkerArray:
    header = Header(frame_id="map", stamp=stamp)
    white = ColorRGBA(r=1.0, g=1.0, b=1.0, a=0.6)
    return MarkerArray(markers=[box_edges_marker(scene.map_box(o.object_id), o.object_id, "ground_truth", header, white, 0.01) for o in scene.objects])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="w2r2-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bag", type=Path, help="rosbag2 folder to play (default: a synthetic room)")
    parser.add_argument("--query", action="append", default=[], metavar="TEXT", help="a query to ask (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("w2r2_demo_out"), help="where the PNGs go (default: %(default)s)")
    parser.add_argument("--checkpoint", help="model directory (default: the params file's, the shipped model)")
    parser.add_argument("--params", type=Path, default=default_params_file(), help="params file (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic room to generate")
    parser.add_argument("--frames", type=int, default=24, help="frames of the synthetic recording")
    parser.add_argument("--generated", type=int, default=5, help="ground-truth queries generated for the synthetic room")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    add_world_arguments(parser)  # the synthetic room: --world, --yaw-deg, --rooms, --touching, --sensor
    group = parser.add_argument_group("scene_memory_node parameters (default: the params file's value; image "
                                      "transports are taken from the bag, e.g. <rgb topic>/compressed)")
    for name in SCENE_FLAGS:
        group.add_argument(option_flag(name), dest=name, default=None, metavar="VALUE",
                           choices=POSE_SOURCES if name == "pose_source" else None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except BagError as error:  # an unreadable bag, or one without what the node needs: one line, no traceback
        print(f"w2r2-demo: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    values = node_values(args.params, {"checkpoint": args.checkpoint})
    scene_values = values[SCENE_MEMORY_NODE]
    scene_values.update({name: getattr(args, name) for name in SCENE_FLAGS if getattr(args, name) is not None})
    scene_values["publish_rate_hz"] = 2.0  # proposals soon after the bag ends
    scene_values["input_timeout_s"] = 30.0  # the model loads before playback starts: no "nothing received" then
    with tempfile.TemporaryDirectory(prefix="w2r2-demo-") as scratch:
        if args.bag is not None:
            bag, scene, viewer = args.bag, None, None
        else:
            bag, scene, viewer = synthetic_bag(Path(scratch), args.seed, args.frames, world_from_args(args))
            print(f"synthetic room '{scene.scene_id}': {len(scene.objects)} objects, {args.frames} frames -> {bag.name}")
        plan = plan_playback(str(bag), bag_connections(bag), scene_values)
        scene_values.update(plan.params)
        queries = scene_queries(scene, viewer, args.seed, args.generated) if scene is not None else []
        texts = args.query or ([] if scene is not None else list(BAG_FALLBACK_QUERIES))
        queries += [DemoQuery(text) for text in texts]
        with NodeRuntime() as runtime, NodeRuntime() as client_runtime:
            scene_node, grounding = start_nodes(runtime, values, str(args.params))
            client = client_runtime.add(DemoClient(player_classes(bag, plan), scene_values, values[GROUNDING_NODE],
                                                   context=client_runtime.context))
            if not client_runtime.wait_until(lambda: client.connected(set(plan.play)) and node_matched(scene_node, plan.play),
                                             timeout_s=30.0):
                print("w2r2-demo: the nodes did not subscribe to the bag's topics within 30 s", file=sys.stderr)
                return 1
            total = sum(c.count for t, c in bag_connections(bag).items() if t in plan.play)
            print(f"playing {total} messages on {len(plan.play)} topics ({', '.join(sorted(plan.play))}), "
                  f"pose from {scene_values['pose_source']}", flush=True)
            client.play(read_bag_raw(bag, list(plan.play)), args.rate)
            return answer_queries(args, client, client_runtime, scene_node, grounding, plan, scene, queries, started)


def answer_queries(args: argparse.Namespace, client: DemoClient, client_runtime: NodeRuntime, scene_node: SceneMemoryNode,
                   grounding: GroundingNode, plan: PlaybackPlan, scene: SceneSpec | None, queries: list[DemoQuery],
                   started: float) -> int:
    """After playing: wait for proposals, ask every query, write the PNGs, print the summary."""
    played = len(client.proposal_arrays)
    if not client_runtime.wait_until(
        lambda: len(client.proposal_arrays) > played and len(client.proposal_arrays[-1].proposals) > 0
        and client.cloud is not None, timeout_s=20.0
    ):
        print("\n".join(ingest_summary(scene_node, client, plan)))
        print("w2r2-demo: no object proposals after playing the bag (see what was received and dropped above)",
              file=sys.stderr)
        return 1
    proposals = client.proposal_arrays[-1]
    print(f"scene memory: {proposals.num_keyframes} keyframes, {proposals.num_voxels} voxels, "
          f"{len(proposals.proposals)} proposals; model: {'loaded' if grounding.grounder else grounding.model_problem}")
    cloud_points, cloud_colors = cloud_to_xyz_rgb(client.cloud)

    outcomes = []
    for index, query in enumerate(queries, start=1):
        query_id = f"demo-{index}"
        markers_before, images_before = len(client.answer_markers), len(client.debug_images)
        client.query.publish(GroundingQuery(query_id=query_id, text=query.text))
        client_runtime.wait_until(lambda: query_id in client.results, timeout_s=60.0)
        result = client.results.get(query_id)
        line, correct = answer_line(query, result, scene)
        print(line, flush=True)
        outcomes.append(correct)
        if result is None or result.status not in (GroundingResult.STATUS_OK, GroundingResult.STATUS_NOT_FOUND):
            continue
        client_runtime.wait_until(lambda: len(client.answer_markers) > markers_before
                                  and len(client.debug_images) > images_before, timeout_s=10.0)
        extra = client.proposal_markers if client.proposal_markers is not None else MarkerArray()
        render_markers_png(client.answer_markers[-1], args.out / f"answer_{index:02d}.png", cloud_points, cloud_colors,
                           title=line, extra_markers=extra)
        camera = image_to_rgb(client.debug_images[-1])
        cv2.imwrite(str(args.out / f"answer_{index:02d}_camera.png"), cv2.cvtColor(camera, cv2.COLOR_RGB2BGR))

    overview_markers = client.proposal_markers if client.proposal_markers is not None else MarkerArray()
    if scene is not None:
        overview_markers = MarkerArray(markers=list(overview_markers.markers)
                                       + list(ground_truth_markers(scene, proposals.header.stamp).markers))
    render_markers_png(overview_markers, args.out / "overview.png", cloud_points, cloud_colors,
                       title=f"overview: fused cloud, {len(proposals.proposals)} proposals"
                             + (", ground truth in white" if scene is not None else ""))

    judged = [c for c in outcomes if c is not None]
    if judged:
        print(f"correct (IoU >= 0.5): {sum(judged)}/{len(judged)} queries with ground truth")
    print("\n".join(ingest_summary(scene_node, client, plan)))
    files = sorted(p.name for p in args.out.glob("*.png"))
    print(f"wrote {len(files)} PNGs to {args.out.resolve()}: {', '.join(files)} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
