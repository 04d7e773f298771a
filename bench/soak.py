"""Soak test: w2r2-bringup's two nodes fed a 30 Hz RGB-D camera and one query a second for N minutes over DDS.

The nodes (scene_memory_node + grounding_node sharing the scene memory, as ``w2r2-bringup``
starts them) run in a child process; this process replays pre-rendered frames with fresh stamps
(``bench/ingest.py``'s renderer) and sends one ``GroundingQuery`` per second with a unique id.
Measured: the child's RSS every ``--sample-s`` seconds, every query answered exactly once
(missing and duplicated results counted), the result statuses, executor deaths (exceptions that
escaped ``spin()``, and whether the spin thread is still alive at the end), exceptions the
callback guard caught, and the scene memory's drop counts. Prints a table, writes JSON.

    nice -n 5 .venv/bin/python bench/soak.py --minutes 60 --out /work/soak/soak_60.json

Frames default to 320x240 to keep the CPU cost modest on a shared machine (the node's cost per
frame grows with the pixel count; bench/ingest.py measures 640x480).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from ingest import _percentiles, prerender, start_in_child
from w2r2_ros.sim.conditions import WorldConfig

DEFAULT_DOMAIN_ID = 103  # tests use 1..100, bench/ingest.py 101, bench/query.py 102: an hour-long soak hears none of them
PROFILE = Path(__file__).resolve().parents[1] / "config" / "fastdds_large_messages.xml"
QUERIES = ("the chair", "the red table", "the lamp on the left", "the sofa next to the table", "the plant")


def run_nodes(conn) -> None:
    """Child process: both nodes as w2r2-bringup runs them, until the parent says stop; then the counters go back."""
    from w2r2_ros.cli.bringup import node_values, start_nodes
    from w2r2_ros.ros.node_runtime import NodeRuntime
    from w2r2_ros.ros.params import default_params_file

    params = default_params_file()
    runtime = NodeRuntime()
    scene, grounding = start_nodes(runtime, node_values(params, {}), str(params))
    runtime.start()
    conn.send("ready")
    conn.recv()  # "stop"
    time.sleep(2.0)  # let queued callbacks and the last answers finish
    stats = scene.memory.stats()
    conn.send({
        "spin_failures": runtime.spin_failures,
        "last_spin_failure": runtime.last_spin_failure,
        "spin_thread_alive": runtime._thread is not None and runtime._thread.is_alive(),
        "guard_errors": {"scene_memory_node": scene.guard.error_counts(), "grounding_node": grounding.guard.error_counts()},
        "received": scene.received_counts,
        "drops": scene.drop_counts,
        "outcomes": scene.frame_outcomes,
        "memory_resets": scene.memory_resets,
        "keyframes": stats.keyframes,
        "voxels": stats.voxels,
        "proposals": stats.proposals,
    })
    runtime.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--query-hz", type=float, default=1.0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--frames", type=int, default=40, help="pre-rendered frames, replayed forth and back")
    parser.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period")
    parser.add_argument("--domain-id", type=int, default=DEFAULT_DOMAIN_ID)
    parser.add_argument("--out", type=Path, default=Path("bench/results/soak.json"))
    args = parser.parse_args(argv)

    # Before rclpy starts, here and in the child (which inherits them): own domain, loopback, large-sample profile.
    os.environ.update(ROS_DOMAIN_ID=str(args.domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                      FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE))
    from rclpy.node import Node

    from w2r2_ros.ros.interfaces import GroundingQuery, GroundingResult
    from w2r2_ros.ros.grounding_node import STATUS_NAMES
    from w2r2_ros.ros.node_runtime import NodeRuntime
    from w2r2_ros.ros.rgbd_stream_publisher import RgbdStreamPublisher

    print(f"pre-rendering {args.frames} frames at {args.width}x{args.height} ...", flush=True)
    frames, _, _ = prerender(args.frames, args.width, args.height, 30.0, 4, 0, WorldConfig(), 0)
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))

    parent_conn, child, nodes_process = start_in_child(run_nodes, (), "the nodes", 180, daemon=True)

    runtime = NodeRuntime()
    robot = runtime.add(RgbdStreamPublisher(context=runtime.context))
    client = runtime.add(Node("soak_query_client", context=runtime.context))
    lock = threading.Lock()
    results: dict[str, list[GroundingResult]] = {}

    def on_result(msg: GroundingResult) -> None:
        with lock:
            results.setdefault(msg.query_id, []).append(msg)

    from w2r2_ros.ros.grounding_node import _EVERY_MESSAGE  # the node's own QoS: every query, every result

    query_pub = client.create_publisher(GroundingQuery, "/w2r2/query", _EVERY_MESSAGE)
    client.create_subscription(GroundingResult, "/w2r2/result", on_result, _EVERY_MESSAGE)
    runtime.start()
    # The camera pose comes over /tf, as on a robot (pose_source tf, the params file's default).
    if not runtime.wait_until(lambda: robot.subscribers_matched(("rgb", "depth", "camera_info", "tf"))
                              and query_pub.get_subscription_count() > 0
                              and client.count_publishers("/w2r2/result") > 0, 60.0):
        raise SystemExit("DDS discovery: the nodes did not match within 60 s")
    robot.publish_static_tf()
    time.sleep(2.0)

    seconds = args.minutes * 60.0
    sent: list[str] = []
    rss: list[tuple[float, float]] = []
    published = 0
    print(f"soaking {args.minutes:g} min: {args.fps:g} Hz RGB-D + {args.query_hz:g} query/s ...", flush=True)
    t0 = time.monotonic()
    next_frame = next_query = next_sample = t0
    while (now := time.monotonic()) - t0 < seconds:
        if now >= next_sample:
            rss.append((now - t0, nodes_process.memory_info().rss / 2**20))
            next_sample += args.sample_s
        if now >= next_query:
            query_id = f"soak-{len(sent)}"
            query_pub.publish(GroundingQuery(query_id=query_id, text=QUERIES[len(sent) % len(QUERIES)]))
            sent.append(query_id)
            next_query += 1.0 / args.query_hz
        if now >= next_frame:
            robot.publish_rgbd(frames[order[published % len(order)]], time.time(), pose_source="tf", pose_lead_s=0.001)
            published += 1
            next_frame += 1.0 / args.fps
        time.sleep(max(0.0, min(next_frame, next_query, next_sample) - time.monotonic()))
    wall = time.monotonic() - t0
    rss.append((wall, nodes_process.memory_info().rss / 2**20))
    runtime.wait_until(lambda: all(q in results for q in sent), timeout_s=60.0)
    time.sleep(1.0)  # a duplicate would arrive now
    alive = child.is_alive()
    parent_conn.send("stop")
    node_stats = parent_conn.recv() if parent_conn.poll(60) else {}
    child.join(timeout=30)
    runtime.shutdown()

    with lock:
        per_query = {q: results.get(q, []) for q in sent}
    statuses = Counter(STATUS_NAMES[r[0].status] for r in per_query.values() if r)
    model_ms = [r[0].model_time_ms for r in per_query.values() if r and r[0].status == GroundingResult.STATUS_OK]

    def rss_at(minute: float) -> float | None:
        before = [mb for t, mb in rss if t <= minute * 60.0 + args.sample_s / 2]
        return before[-1] if before else None

    rss_10, rss_end = rss_at(10.0), rss[-1][1]
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "load_average_1min_at_end": os.getloadavg()[0],
                    "python": platform.python_version(), "platform": platform.platform()},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "wall_s": wall,
        "frames_published": published,
        "queries_sent": len(sent),
        "answered_exactly_once": sum(len(r) == 1 for r in per_query.values()),
        "unanswered": sum(len(r) == 0 for r in per_query.values()),
        "answered_more_than_once": sum(len(r) > 1 for r in per_query.values()),
        "statuses": dict(statuses),
        "model_time_ms": _percentiles(model_ms),
        "nodes_process_alive_at_end": alive,
        "executor_deaths": node_stats.get("spin_failures"),
        "spin_thread_alive_at_end": node_stats.get("spin_thread_alive"),
        "nodes": node_stats,
        "rss_mb": {"samples": rss, "at_1_min": rss_at(1.0), "at_10_min": rss_10, "end": rss_end,
                   "change_10_min_to_end_percent": None if rss_10 is None or args.minutes <= 10
                   else 100.0 * (rss_end - rss_10) / rss_10},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print_table(result)
    print(f"wrote {args.out}")
    return 0


def print_table(r: dict) -> None:
    rss = r["rss_mb"]
    fmt = lambda mb: "-" if mb is None else f"{mb:.0f}"  # noqa: E731
    rows = [
        ("duration", f"{r['wall_s'] / 60:.1f} min, {r['config']['width']}x{r['config']['height']} at {r['config']['fps']:g} Hz"),
        ("frames published", str(r["frames_published"])),
        ("queries sent / answered exactly once", f"{r['queries_sent']} / {r['answered_exactly_once']}"),
        ("unanswered / answered more than once", f"{r['unanswered']} / {r['answered_more_than_once']}"),
        ("result statuses", json.dumps(r["statuses"])),
        ("model time ms p50 / p95 (OK answers)", f"{r['model_time_ms']['p50']:.0f} / {r['model_time_ms']['p95']:.0f}"),
        ("executor deaths / spin thread alive", f"{r['executor_deaths']} / {r['spin_thread_alive_at_end']}"),
        ("callback errors caught by the guard", json.dumps(r["nodes"].get("guard_errors", {}))),
        ("frames dropped by the node (per reason)", json.dumps(r["nodes"].get("drops", {}))),
        ("nodes RSS MB at 1 min / 10 min / end", f"{fmt(rss['at_1_min'])} / {fmt(rss['at_10_min'])} / {fmt(rss['end'])}"),
        ("RSS change 10 min -> end", "-" if rss["change_10_min_to_end_percent"] is None
         else f"{rss['change_10_min_to_end_percent']:+.1f} %"),
        ("machine load average (1 min) at end", f"{r['machine']['load_average_1min_at_end']:.1f} on {r['machine']['cpus']} CPUs"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    print()


if __name__ == "__main__":
    sys.exit(main())
