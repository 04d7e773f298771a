"""Query benchmark: query-to-result latency of grounding_node over DDS, with 32 keyframes and 64 proposals.

A client node (its own rclpy context, so messages really cross DDS on
loopback) sends one GroundingQuery at a time and times it until its
GroundingResult arrives. Each result carries the Grounder's own time
(``model_time_ms`` = input preparation + forward pass); the rest of the round
trip is "ROS time" (DDS both ways, callbacks, queueing, building the result).
Queries are the scene's referring expressions, cycled.

The scene memory holds 32 keyframes of a synthetic room (rendered RGB-D, fused
as usual) and the node sees exactly 64 proposals (``SceneWithProposals``).

    .venv/bin/python bench/query.py --queries 200 --out bench/results/query.json [--checkpoint DIR]

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

    from w2r2_ros.model.checkpoint import save_checkpoint
    from w2r2_ros.model.config import ModelConfig
    from w2r2_ros.model.grounding_model import W2R2GroundingModel
    from w2r2_ros.model.text import QueryTokenizer
    from w2r2_ros.sim.world import CATEGORIES

    torch.manual_seed(0)
    return save_checkpoint(W2R2GroundingModel(ModelConfig(categories=tuple(CATEGORIES))), QueryTokenizer.build(queries), directory)


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95)), "mean": float(array.mean())}


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
    from w2r2_ros.ros.interfaces import GroundingQuery, GroundingResult
    from w2r2_ros.ros.node_runtime import NodeRuntime
    from w2r2_ros.ros.params import package_dir, parameter_overrides
    from w2r2_training.referring import referring_samples
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

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

    qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
    total_ms, model_ms, statuses = [], [], []
    with NodeRuntime() as runtime, NodeRuntime() as client_runtime:
        node = runtime.add(GroundingNode(source, context=runtime.context, parameter_overrides=parameter_overrides(
            {"checkpoint": str(checkpoint), "device": args.device, "max_frames": N_KEYFRAMES,
             "score_threshold": 0.0, "queue_size": 1})))
        if node.grounder is None:
            print(f"bench: model not loaded: {node.model_problem}", file=sys.stderr)
            return 2
        client = client_runtime.add(Node("query_bench_client", context=client_runtime.context))
        arrived = threading.Event()
        received: list[tuple[float, GroundingResult]] = []

        def on_result(result: GroundingResult) -> None:
            received.append((time.perf_counter(), result))
            arrived.set()

        client.create_subscription(GroundingResult, node.params.result_topic, on_result, qos)
        publisher = client.create_publisher(GroundingQuery, node.params.query_topic, qos)
        client_runtime.wait_until(lambda: publisher.get_subscription_count() > 0
                                  and client.count_publishers(node.params.result_topic) > 0, timeout_s=30.0)
        time.sleep(1.0)  # discovery completes on both sides
        for index in range(args.warmup + args.queries):
            arrived.clear()
            query_id = f"bench-{index}"
            sent = time.perf_counter()
            publisher.publish(GroundingQuery(query_id=query_id, text=texts[index % len(texts)]))
            if not arrived.wait(timeout=30.0):
                raise RuntimeError(f"no result for {query_id} within 30 s")
            done, result = received[-1]
            if result.query_id != query_id:
                raise RuntimeError(f"result for {result.query_id}, expected {query_id}")
            if index >= args.warmup:
                total_ms.append((done - sent) * 1e3)
                model_ms.append(result.model_time_ms)
                statuses.append(int(result.status))
            # The node draws markers and the debug image after publishing the result; let it finish so
            # that work is not counted in the next query's round trip.
            time.sleep(0.02)

    ros_ms = [t - m for t, m in zip(total_ms, model_ms)]
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "queries": len(total_ms),
        "keyframes": N_KEYFRAMES,
        "proposals": N_PROPOSALS,
        "checkpoint": str(checkpoint),
        "trained_model": trained,
        "device": args.device,
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "latency_ms": {"total": percentiles(total_ms), "model": percentiles(model_ms), "ros": percentiles(ros_ms)},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "load_average_1min_at_end": os.getloadavg()[0]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\nquery latency over DDS, {len(total_ms)} queries, {N_KEYFRAMES} keyframes, {N_PROPOSALS} proposals, "
          f"{'trained' if trained else 'untrained'} model on {args.device}")
    print(f"{'part':<28}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, label in (("total", "total round trip"), ("model", "model (Grounder timings)"), ("ros", "ROS (total - model)")):
        stats = report["latency_ms"][name]
        print(f"{label:<28}{stats['p50']:>10.1f}{stats['p95']:>10.1f}{stats['mean']:>10.1f}")
    print(f"load average (1 min) at the end: {report['machine']['load_average_1min_at_end']:.1f} on {os.cpu_count()} CPUs")
    print(f"written: {args.out}")
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
