"""Ingest benchmark: a 30 Hz 640x480 RGB-D camera (+ pose, camera_info) and a 10 Hz point cloud
streamed over DDS on loopback into scene_memory_node running in its own process.

The publisher replays a few dozen pre-rendered frames (ping-pong along a short arc, so the camera
moves smoothly at a walking pace) with fresh stamps, so publishing costs little more than the DDS
write. A probe subscribes to the node's outputs the way RViz would. Reported: frames published,
received and dropped (per reason), keyframes, proposals, the node process's CPU % (of one core) and
RSS at start and end, the time spent inside the node's callbacks (p50/p95/p99), and the time the
node's background workers take per fusion batch and per segmentation (proposal update).

    .venv/bin/python bench/ingest.py --seconds 60 --out bench/results/ingest.json
    # a large map (>= 300k voxels): clouds through three rooms at 2 cm voxels while the camera walks
    .venv/bin/python bench/ingest.py --seconds 60 --rooms 3 --map-clouds 36 --cloud-stride 2 \
        --voxel-size 0.02 --max-voxels 400000 --out bench/results/ingest_large_map.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from w2r2_ros.sim.conditions import add_world_arguments, world_from_args

DEFAULT_DOMAIN_ID = 101  # tests use 1..100 (test/conftest.py), so a benchmark never hears them


def _percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {
        "n": len(values),
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "max": float(np.max(values)),
    }


def run_node(conn, params: dict) -> None:
    """Child process: the node under test, spun until the parent says stop; then its counters go back."""
    from rclpy.parameter import Parameter

    from w2r2_ros.ros.node_runtime import NodeRuntime
    from w2r2_ros.ros.scene_memory_node import SceneMemoryNode

    runtime = NodeRuntime()
    node = runtime.add(
        SceneMemoryNode(context=runtime.context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    )
    runtime.start()
    conn.send("ready")
    conn.recv()  # "stop"
    time.sleep(1.0)  # let queued callbacks finish
    stats = node.memory.stats()
    timings = node.callback_ms()
    cpu_timings = node.callback_cpu_ms()
    workers = node.workers.timings_ms()
    conn.send(
        {
            "received": node.received_counts,
            "drops": node.drop_counts,
            "outcomes": node.frame_outcomes,
            "keyframes": stats.keyframes,
            "voxels": stats.voxels,
            "proposals": stats.proposals,
            "callback_ms": {name: _percentiles(values) for name, values in timings.items()},
            "callback_cpu_ms": {name: _percentiles(values) for name, values in cpu_timings.items()},
            "worker_ms": {name: _percentiles(values) for name, values in workers.items()},
        }
    )
    runtime.shutdown()


def start_in_child(target, args: tuple, what: str, timeout_s: float, daemon: bool):
    """Start ``target(conn, *args)`` in a spawned process (no fork of a process that runs DDS) and wait for
    its first message on ``conn``, its sign that it is up. Returns (the pipe's parent end, the process,
    its psutil handle for RSS and CPU samples)."""
    ctx = multiprocessing.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    child = ctx.Process(target=target, args=(child_conn, *args), daemon=daemon)
    child.start()
    if not parent_conn.poll(timeout_s):
        raise SystemExit(f"{what} did not start within {timeout_s:.0f} s")
    parent_conn.recv()
    return parent_conn, child, psutil.Process(child.pid)


def prerender(n_frames: int, width: int, height: int, sweep_deg: float, cloud_stride: int, seed: int, world, map_clouds: int):
    """Frames of one synthetic building along a smooth arc, as ready-to-publish messages, plus map-frame clouds:
    a few from that arc, or (``map_clouds`` > 0) that many 320x240 views on a loop through every room, which
    grow the map to the whole building while the camera walks its arc."""
    from w2r2_ros.geometry.camera import Intrinsics, backproject_depth
    from w2r2_ros.ros.conversions import xyz_rgb_to_cloud
    from w2r2_ros.ros.rgbd_stream_publisher import rgbd_messages
    from w2r2_ros.sim.recording import record_scene
    from w2r2_ros.sim.render import render_rgbd
    from w2r2_ros.sim.trajectory import TrajectoryConfig, orbit_trajectory
    from w2r2_ros.sim.world import generate_scene

    smooth = TrajectoryConfig(sweep_deg=sweep_deg, radial_jitter_m=0.0, height_jitter_m=0.0, target_jitter_m=0.0)
    scene = generate_scene("bench_ingest", seed, world.scene)
    recording = record_scene(
        scene, n_frames, Intrinsics.from_fov(width, height, 70.0), trajectory_config=smooth, render_config=world.render
    )
    frames = [rgbd_messages(f.rgb, f.depth, recording.intrinsics, pose) for f, pose in zip(recording.frames, recording.poses)]
    if map_clouds > 0:
        small = Intrinsics.from_fov(320, 240, 70.0)
        views = [(render_rgbd(scene, small, pose, world.render), pose) for pose in orbit_trajectory(scene, map_clouds, seed + 1)]
    else:
        views = [(recording.frames[k], recording.poses[k]) for k in range(0, n_frames, max(1, n_frames // 4))]
    clouds = []
    for frame, pose in views:
        points, pixels = backproject_depth(frame.depth, Intrinsics.from_fov(*frame.depth.shape[::-1], 70.0), pose, cloud_stride)
        clouds.append(xyz_rgb_to_cloud(points, frame.rgb.reshape(-1, 3)[pixels], 0.0, "map"))
    steps = np.linalg.norm(np.diff(recording.poses[:, :3, 3], axis=0), axis=1)
    return frames, clouds, float(steps.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to stream")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--cloud-hz", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=40, help="pre-rendered frames, replayed forth and back")
    parser.add_argument("--sweep-deg", type=float, default=30.0, help="arc of the pre-rendered camera path")
    parser.add_argument("--cloud-stride", type=int, default=4, help="depth pixel stride of the published clouds")
    parser.add_argument("--map-clouds", type=int, default=0,
                        help="publish clouds of this many views through every room (a map of the whole building)")
    parser.add_argument("--publish-rate-hz", type=float, default=1.0, help="the node's output/proposal rate")
    parser.add_argument("--image-qos-depth", type=int, default=5, help="the node's image/cloud reader queue")
    parser.add_argument("--voxel-size", type=float, default=None, help="the node's voxel_size (default: its own)")
    parser.add_argument("--max-voxels", type=int, default=None, help="the node's max_voxels (default: its own)")
    parser.add_argument(
        "--dds-profile",
        default=str(Path(__file__).resolve().parents[1] / "config" / "fastdds_large_messages.xml"),
        help="Fast DDS XML profile for both processes ('' = Fast DDS defaults: images fall back to UDP and get lost)",
    )
    parser.add_argument("--pose-lead-ms", type=float, default=1.0, help="pose published this long before each frame's images")
    parser.add_argument("--domain-id", type=int, default=DEFAULT_DOMAIN_ID)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    add_world_arguments(parser)
    args = parser.parse_args(argv)
    world = world_from_args(args)

    # Before rclpy starts (here and in the child, which inherits the environment): own domain, loopback only.
    os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if args.dds_profile:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(Path(args.dds_profile).resolve())
    from rclpy.node import Node
    from sensor_msgs.msg import PointCloud2
    from visualization_msgs.msg import MarkerArray

    from w2r2_ros.ros.interfaces import ObjectProposalArray
    from w2r2_ros.ros.node_runtime import NodeRuntime
    from w2r2_ros.ros.rgbd_stream_publisher import RgbdStreamPublisher

    print(f"pre-rendering {args.frames} frames at {args.width}x{args.height} ...", flush=True)
    frames, clouds, step_m = prerender(args.frames, args.width, args.height, args.sweep_deg, args.cloud_stride, args.seed, world, args.map_clouds)
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))  # ping-pong: no jump at the loop

    node_params = {"publish_rate_hz": args.publish_rate_hz, "image_qos_depth": args.image_qos_depth, "pose_source": "pose"}
    node_params.update({k: v for k, v in (("voxel_size", args.voxel_size), ("max_voxels", args.max_voxels)) if v is not None})
    # Not daemonic: the node starts its own segmentation process, which a daemonic process may not.
    parent_conn, child, node_process = start_in_child(run_node, (node_params,), "scene_memory_node", 120, daemon=False)

    runtime = NodeRuntime()
    robot = runtime.add(RgbdStreamPublisher(context=runtime.context))
    probe = runtime.add(Node("bench_output_probe", context=runtime.context))
    outputs = {"cloud": 0, "markers": 0, "proposal_array": 0}
    last_array: list = [None]
    lock = threading.Lock()

    def counter(name):
        def callback(msg):
            with lock:
                outputs[name] += 1
                if name == "proposal_array":
                    last_array[0] = msg
        return callback

    probe.create_subscription(PointCloud2, "/w2r2/scene/cloud", counter("cloud"), 1)
    probe.create_subscription(MarkerArray, "/w2r2/scene/proposals", counter("markers"), 1)
    probe.create_subscription(ObjectProposalArray, "/w2r2/scene/proposal_array", counter("proposal_array"), 1)
    runtime.start()
    streams = ("rgb", "depth", "camera_info", "pose", "cloud")
    if not runtime.wait_until(lambda: robot.subscribers_matched(streams), 30.0):
        raise SystemExit("DDS discovery: scene_memory_node's subscriptions did not match within 30 s")
    time.sleep(2.0)  # the node's readers match the writers a moment after the writers see them

    rss_start = node_process.memory_info().rss
    cpu_start = node_process.cpu_times()
    published = {"frames": 0, "clouds": 0}
    late = 0
    print(f"streaming {args.seconds:.0f} s: {args.fps:g} Hz RGB-D + {args.cloud_hz:g} Hz PointCloud2 ...", flush=True)
    t0 = time.monotonic()
    next_frame, next_cloud = t0, t0
    while (now := time.monotonic()) - t0 < args.seconds:
        if now >= next_cloud:
            robot.publish_cloud(clouds[published["clouds"] % len(clouds)], time.time())
            published["clouds"] += 1
            next_cloud += 1.0 / args.cloud_hz
        if now >= next_frame:
            robot.publish_rgbd(frames[order[published["frames"] % len(order)]], time.time(), pose_lead_s=args.pose_lead_ms / 1e3)
            published["frames"] += 1
            next_frame += 1.0 / args.fps
            if time.monotonic() > next_frame:
                late += 1
        time.sleep(max(0.0, min(next_frame, next_cloud) - time.monotonic()))
    wall = time.monotonic() - t0
    cpu_end = node_process.cpu_times()
    rss_end = node_process.memory_info().rss
    parent_conn.send("stop")
    node_stats = parent_conn.recv()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
    runtime.shutdown()

    cpu_s = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    received = node_stats["received"].get("rgb", 0)
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min_at_end": os.getloadavg()[0],  # other work on the machine skews every number here
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "node_parameters": node_params,
        "camera_step_m": step_m,
        "wall_s": wall,
        "published": published,
        "publisher_late_frames": late,
        "received": node_stats["received"],
        "not_received": {"rgb": published["frames"] - received, "depth": published["frames"] - node_stats["received"].get("depth", 0),
                              "cloud": published["clouds"] - node_stats["received"].get("cloud", 0)},
        "dropped_by_node": node_stats["drops"],
        "frame_outcomes": node_stats["outcomes"],
        "keyframes_in_memory": node_stats["keyframes"],
        "voxels": node_stats["voxels"],
        "proposals": node_stats["proposals"],
        "outputs_received": outputs,
        "node_cpu_percent_of_one_core": 100.0 * cpu_s / wall,
        "node_rss_mb": {"start": rss_start / 2**20, "end": rss_end / 2**20},
        "callback_ms": node_stats["callback_ms"],
        "callback_cpu_ms": node_stats["callback_cpu_ms"],
        "worker_ms": node_stats["worker_ms"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print_table(result)
    print(f"wrote {args.out}")
    return 0


def print_table(r: dict) -> None:
    ms = r["callback_ms"]
    rows = [
        ("frames published (RGB-D)", f"{r['published']['frames']} in {r['wall_s']:.1f} s ({r['published']['frames'] / r['wall_s']:.1f} Hz)"),
        ("clouds published", f"{r['published']['clouds']}"),
        ("received by node rgb / depth / cloud", f"{r['received'].get('rgb', 0)} / {r['received'].get('depth', 0)} / {r['received'].get('cloud', 0)}"),
        # Lost in transport, or overwritten in the node's keep-last reader queue while it was busy.
        ("not received rgb / depth / cloud", f"{r['not_received']['rgb']} / {r['not_received']['depth']} / {r['not_received']['cloud']}"),
        ("dropped by node (per reason)", json.dumps(r["dropped_by_node"]) if r["dropped_by_node"] else "0"),
        ("synced frames keyframe / fused / skipped", " / ".join(str(r["frame_outcomes"].get(k, 0)) for k in ("keyframe", "fused", "skipped"))),
        ("keyframes in memory / voxels / proposals", f"{r['keyframes_in_memory']} / {r['voxels']} / {r['proposals']}"),
        ("outputs received cloud / markers / array", " / ".join(str(v) for v in r["outputs_received"].values())),
        ("machine load average (1 min) at end", f"{r['machine']['load_average_1min_at_end']:.1f} on {r['machine']['cpus']} CPUs"),
        ("node CPU (% of one core)", f"{r['node_cpu_percent_of_one_core']:.0f}"),
        ("node RSS start -> end (MB)", f"{r['node_rss_mb']['start']:.0f} -> {r['node_rss_mb']['end']:.0f}"),
    ]
    cpu = r["callback_cpu_ms"]
    for name in ("rgb", "depth", "cloud", "publish"):
        if name in ms:
            label = "outputs (output thread)" if name == "publish" else f"{name} callback"
            rows.append((f"{label} ms p50 / p95 / p99 (n)", f"{ms[name]['p50']:.1f} / {ms[name]['p95']:.1f} / {ms[name]['p99']:.1f} ({ms[name]['n']})"))
            rows.append((f"  its CPU ms p50 / p95 / p99", f"{cpu[name]['p50']:.1f} / {cpu[name]['p95']:.1f} / {cpu[name]['p99']:.1f}"))
    for name, w in r["worker_ms"].items():
        rows.append((f"{name} worker ms per run p50 / p95 / max (n)", f"{w['p50']:.1f} / {w['p95']:.1f} / {w['max']:.1f} ({w['n']})"))
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()


if __name__ == "__main__":
    sys.exit(main())
