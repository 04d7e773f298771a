"""Query benchmark: query-to-result latency of grounding_node over DDS, with 32 keyframes and 64 proposals.

A client node (its own rclpy context, so messages really cross DDS on
loopback) sends one query at a time and times it until its answer arrives,
three ways:

- ``topic``: a GroundingQuery, answered on the result topic (nodes in one process, as w2r2-bringup);
- ``action``: a goal of the ``w2r2/ground`` action, until its result (same node);
- ``two_process``: a GroundingQuery to a ``grounding_node`` in a process of its own, which reads the
  scene from the SceneKeyframe and ObjectProposalArray topics that this process publishes (as the
  scene memory node does); the cost of crossing (bytes and encode/decode time per keyframe) is reported.

Each result carries the Grounder's own time
(``model_time_ms`` = input preparation + forward pass); the rest of the round
trip is "ROS time" (DDS both ways, callbacks, queueing, building the result).
Queries are the scene's referring expressions, cycled.

The scene memory holds 32 keyframes of a synthetic room (rendered RGB-D, fused
as usual) and the node sees exactly 64 proposals (``SceneWithProposals``).

    .venv/bin/python bench/query.py --queries 200 --out bench/results/query.json [--checkpoint DIR]

(``--queries`` per mode: three times as many queries in all.)

Without --checkpoint the trained model in w2r2_ros/models/default is used, or,
if it is absent, an untrained model of the default size (timing does not depend
on the weights).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

DEFAULT_DOMAIN_ID = 102  # tests use 1..100 (test/conftest.py), bench/ingest.py 101
N_KEYFRAMES = 32
N_PROPOSALS = 64


class SceneWithProposals:
    """A real SceneMemory's snapshots (keyframes, and the fused cloud unless left out) with a fixed set of proposals.

    The benchmark fixes N = 64 proposals; a synthetic room yields 10-20 and the
    count the proposal clustering gives for any arranged cloud is its own
    business, so the boxes are set here: an 8 x 8 grid of object-sized boxes
    on the floor. Everything the node does per query is unchanged (it calls
    ``snapshot(include_cloud=False)``, which still copies the memory's state under its lock).
    """

    def __init__(self, memory, room_size: np.ndarray, per_side: int = 8, box_m: float = 0.4) -> None:
        from w2r2_ros.geometry.boxes import Box3D
        from w2r2_ros.scene.proposals import Proposal

        xs = np.linspace(-room_size[0] / 2 + 0.5, room_size[0] / 2 - 0.5, per_side)
        ys = np.linspace(-room_size[1] / 2 + 0.5, room_size[1] / 2 - 0.5, per_side)
        self.memory = memory
        self.proposals = tuple(
            Proposal(i, Box3D(np.array([x, y, box_m / 2]), np.full(3, box_m)), 100, np.full(3, 128.0))
            for i, (x, y) in enumerate((x, y) for x in xs for y in ys)
        )

    def snapshot(self, include_cloud: bool = True):
        return dataclasses.replace(self.memory.snapshot(include_cloud), proposals=self.proposals)


def build_scene(seed: int):
    """32 keyframes of a synthetic room in a real SceneMemory, with 64 proposals; returns (scene source, scene)."""
    from w2r2_ros.geometry.camera import Intrinsics
    from w2r2_ros.scene.memory import SceneMemory
    from w2r2_ros.sim.recording import record_scene
    from w2r2_ros.sim.world import generate_scene

    scene = generate_scene("bench_query", seed)
    # 5 s between frames: every frame is a keyframe (KeyframePolicy.max_interval_s).
    recording = record_scene(scene, N_KEYFRAMES, Intrinsics.from_fov(320, 240, 70.0), fps=0.2, seed=seed)
    memory = SceneMemory()
    for stamp, pose, frame in zip(recording.stamps, recording.poses, recording.frames):
        memory.add_rgbd(float(stamp), frame.rgb, frame.depth, recording.intrinsics, pose)
    source = SceneWithProposals(memory, scene.room_size, per_side=int(np.sqrt(N_PROPOSALS)))
    snapshot = source.snapshot()
    if len(snapshot.keyframes) != N_KEYFRAMES or len(snapshot.proposals) != N_PROPOSALS:
        raise RuntimeError(f"bench set-up: {len(snapshot.keyframes)} keyframes and {len(snapshot.proposals)} proposals, "
                           f"expected {N_KEYFRAMES} and {N_PROPOSALS}")
    return source, scene


def untrained_checkpoint(directory: Path, queries: list[str]) -> Path:
    import torch

    from w2r2_ros.model.build import new_model
    from w2r2_ros.model.checkpoint import save_checkpoint
    from w2r2_ros.model.config import ModelConfig
    from w2r2_ros.sim.world import CATEGORIES

    torch.manual_seed(0)
    return save_checkpoint(*new_model(ModelConfig(categories=tuple(CATEGORIES)), queries), directory)


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95)), "mean": float(array.mean())}


def round_trips(send, texts: list[str], count: int, warmup: int) -> tuple[list[float], list[float], list[int]]:
    """``send(index, text) -> GroundingResult`` (blocking) timed ``count`` times after ``warmup`` untimed calls;
    returns total ms, the model's ms and the statuses."""
    total_ms, model_ms, statuses = [], [], []
    for index in range(warmup + count):
        sent = time.perf_counter()
        result = send(index, texts[index % len(texts)])
        done = time.perf_counter()
        if index >= warmup:
            total_ms.append((done - sent) * 1e3)
            model_ms.append(result.model_time_ms)
            statuses.append(int(result.status))
        # The node draws markers and the debug image after publishing the result; let it finish so
        # that work is not counted in the next query's round trip.
        time.sleep(0.02)
    return total_ms, model_ms, statuses


class BenchClient:
    """A client node in its own context: topic queries (waiting for the result with the same id) and action goals."""

    def __init__(self, runtime, namespace: str = "") -> None:
        from rclpy.action import ActionClient
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        from w2r2_ros.ros.interfaces import GroundAction, GroundingQuery, GroundingResult

        self.runtime, self.Goal, self.Query = runtime, GroundAction.Goal, GroundingQuery
        self.node = runtime.add(Node("query_bench_client", namespace=namespace, context=runtime.context))
        qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
        self.results: dict[str, object] = {}
        self.arrived = threading.Condition()
        self.node.create_subscription(GroundingResult, "w2r2/result", self._on_result, qos)
        self.publisher = self.node.create_publisher(GroundingQuery, "w2r2/query", qos)
        self.action = ActionClient(self.node, GroundAction, "w2r2/ground")

    def _on_result(self, result) -> None:
        with self.arrived:
            self.results[result.query_id] = result
            self.arrived.notify_all()

    def connect(self, with_action: bool) -> None:
        ok = self.runtime.wait_until(lambda: self.publisher.get_subscription_count() > 0
                                     and self.node.count_publishers("w2r2/result") > 0, timeout_s=60.0)
        if not ok or (with_action and not self.action.wait_for_server(timeout_sec=60.0)):
            raise RuntimeError("bench: the grounding node did not connect within 60 s")
        time.sleep(1.0)  # discovery completes on both sides

    def query(self, query_id: str, text: str):
        self.publisher.publish(self.Query(query_id=query_id, text=text))
        with self.arrived:
            if not self.arrived.wait_for(lambda: query_id in self.results, timeout=60.0):
                raise RuntimeError(f"no result for {query_id} within 60 s")
            return self.results.pop(query_id)

    def goal(self, text: str):
        done = threading.Event()
        outcome: list = []

        def on_result(future) -> None:
            outcome.append(future.result().result.result)
            done.set()

        def on_accepted(future) -> None:
            handle = future.result()
            if not handle.accepted:
                raise RuntimeError("bench: goal rejected")
            handle.get_result_async().add_done_callback(on_result)

        self.action.send_goal_async(self.Goal(text=text)).add_done_callback(on_accepted)
        if not done.wait(timeout=60.0):
            raise RuntimeError("no action result within 60 s")
        return outcome[0]


def publish_scene(runtime, source, namespace: str) -> tuple[object, dict]:
    """Publish the bench scene as the scene memory node does for a grounding node in another process:
    each keyframe once (transient-local) and the proposals every second. Returns (node, crossing cost)."""
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import serialize_message

    from w2r2_ros.ros.conversions import make_header
    from w2r2_ros.ros.interfaces import ObjectProposalArray, SceneKeyframe
    from w2r2_ros.ros.keyframe_messages import keyframe_to_msg, msg_to_keyframe
    from w2r2_ros.ros.proposal_markers import proposals_to_array

    node = runtime.add(Node("bench_scene_publisher", namespace=namespace, context=runtime.context))
    snapshot = source.snapshot(include_cloud=False)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=len(snapshot.keyframes), reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    keyframes = node.create_publisher(SceneKeyframe, "w2r2/scene/keyframes", qos)
    proposals = node.create_publisher(ObjectProposalArray, "w2r2/scene/proposal_array", 1)
    encode_ms, decode_ms, sizes = [], [], []
    for keyframe in snapshot.keyframes:
        started = time.perf_counter()
        msg = keyframe_to_msg(keyframe, "map")
        encode_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        msg_to_keyframe(msg)
        decode_ms.append((time.perf_counter() - started) * 1e3)
        sizes.append(len(serialize_message(msg)))
        keyframes.publish(msg)
    array = proposals_to_array(snapshot.proposals, make_header(snapshot.stamp or 0.0, "map"), len(snapshot.keyframes), snapshot.n_voxels)
    node.create_timer(1.0, lambda: proposals.publish(array))
    raw = snapshot.keyframes[0].rgb.nbytes + snapshot.keyframes[0].depth.nbytes
    cost = {"keyframe_bytes": percentiles(sizes), "raw_bytes_per_keyframe": raw,
            "encode_ms": percentiles(encode_ms), "decode_ms": percentiles(decode_ms),
            "image_size": [int(snapshot.keyframes[0].intrinsics.width), int(snapshot.keyframes[0].intrinsics.height)]}
    return node, cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200, help="timed queries (after --warmup)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first queries (keyframe features get cached)")
    parser.add_argument("--checkpoint", default="", help="model directory (default: w2r2_ros/models/default, else untrained)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "query.json")
    parser.add_argument("--domain-id", type=int, default=DEFAULT_DOMAIN_ID)
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

    import torch

    from w2r2_ros.ros.grounding_node import GroundingNode
    from w2r2_ros.ros.node_runtime import NodeRuntime
    from w2r2_ros.ros.params import package_dir, parameter_overrides
    from w2r2_training.referring import referring_samples

    started = time.perf_counter()
    source, scene = build_scene(args.seed)
    texts = [sample.description for sample in referring_samples(scene)]
    print(f"set-up: {N_KEYFRAMES} keyframes, {N_PROPOSALS} proposals, {len(texts)} distinct queries "
          f"({time.perf_counter() - started:.1f} s)", flush=True)

    default_model = package_dir() / "models" / "default"
    scratch = tempfile.TemporaryDirectory(prefix="w2r2-bench-")
    if args.checkpoint:
        checkpoint, trained = Path(args.checkpoint), True
    elif (default_model / "model.safetensors").is_file():
        checkpoint, trained = default_model, True
    else:
        checkpoint, trained = untrained_checkpoint(Path(scratch.name) / "untrained", texts), False

    node_params = {"checkpoint": str(checkpoint), "device": args.device, "max_frames": N_KEYFRAMES,
                   "score_threshold": 0.0, "queue_size": 1}
    rows: dict[str, tuple[list[float], list[float], list[int]]] = {}
    with NodeRuntime() as runtime, NodeRuntime() as client_runtime:
        node = runtime.add(GroundingNode(source, context=runtime.context, parameter_overrides=parameter_overrides(node_params)))
        if node.grounder is None:
            print(f"bench: model not loaded: {node.model_problem}", file=sys.stderr)
            return 2
        client = BenchClient(client_runtime)
        client.connect(with_action=True)
        rows["topic"] = round_trips(lambda i, text: client.query(f"bench-{i}", text), texts, args.queries, args.warmup)
        rows["action"] = round_trips(lambda i, text: client.goal(text), texts, args.queries, args.warmup)

    # Two processes: a grounding_node of its own reads the scene from the topics this process publishes.
    namespace = "/bench_two_process"
    command = [str(Path(sys.executable).with_name("grounding_node")), "--ros-args", "-r", f"__ns:={namespace}",
               *(f for name, value in node_params.items() for f in ("-p", f"{name}:={json.dumps(value)}"))]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with NodeRuntime() as scene_runtime, NodeRuntime() as client_runtime:
            _, crossing = publish_scene(scene_runtime, source, namespace)
            client = BenchClient(client_runtime, namespace)
            client.connect(with_action=False)
            # Wait until the remote scene holds every keyframe and proposal.
            for attempt in range(120):
                ready = client.query(f"ready-{attempt}", texts[0])
                if ready.num_keyframes == N_KEYFRAMES and ready.num_proposals == N_PROPOSALS:
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError(f"two-process bench: the remote scene did not fill ({ready.message})")
            rows["two_process"] = round_trips(lambda i, text: client.query(f"bench2-{i}", text), texts, args.queries, args.warmup)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

    latency = {}
    for mode, (total_ms, model_ms, _) in rows.items():
        latency[mode] = {"total": percentiles(total_ms), "model": percentiles(model_ms),
                         "ros": percentiles([t - m for t, m in zip(total_ms, model_ms)])}
    statuses = rows["topic"][2]
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "queries": args.queries,
        "keyframes": N_KEYFRAMES,
        "proposals": N_PROPOSALS,
        "checkpoint": str(checkpoint),
        "trained_model": trained,
        "device": args.device,
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "latency_ms": latency["topic"],
        "latency_ms_by_mode": latency,
        "two_process_keyframe_crossing": crossing,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "load_average_1min_at_end": os.getloadavg()[0]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\nquery latency over DDS, {args.queries} queries per mode, {N_KEYFRAMES} keyframes, {N_PROPOSALS} proposals, "
          f"{'trained' if trained else 'untrained'} model on {args.device}")
    print(f"{'mode':<13}{'part':<28}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for mode in rows:
        for name, label in (("total", "total round trip"), ("model", "model (Grounder timings)"), ("ros", "ROS (total - model)")):
            stats = latency[mode][name]
            print(f"{mode:<13}{label:<28}{stats['p50']:>10.1f}{stats['p95']:>10.1f}{stats['mean']:>10.1f}")
    size = crossing["keyframe_bytes"]["mean"] / 1024
    print(f"two-process keyframe crossing ({crossing['image_size'][0]}x{crossing['image_size'][1]}): {size:.0f} KiB per "
          f"keyframe message (raw arrays {crossing['raw_bytes_per_keyframe'] / 1024:.0f} KiB), encode "
          f"{crossing['encode_ms']['p50']:.1f} ms, decode {crossing['decode_ms']['p50']:.1f} ms (p50)")
    print(f"load average (1 min) at the end: {report['machine']['load_average_1min_at_end']:.1f} on {os.cpu_count()} CPUs")
    print(f"written: {args.out}")
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
