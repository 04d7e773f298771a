"""Proposal recall per world condition: does every object get a box, whatever the room's yaw, the
number of rooms, furniture that touches, a noisy depth sensor?

Each condition is one of the synthetic world's named conditions (``w2r2_ros/sim/conditions.py``:
axis-aligned, yaw 5/30/45/77 degrees, two rooms, touching furniture, a structured-light sensor, all
combined). Each scene is rendered along its orbit and streamed through ``SceneMemory`` (poses, then
RGB-D) with default parameters; its proposals are compared with the ground-truth boxes: recall at 3D
IoU >= 0.25 and >= 0.5, the IoU of boxes turned in yaw (``oriented_iou_matrix``), and, for
comparison, the axis-aligned IoU of their bounds that ScanRefer-style evaluation uses. Scene seeds
start at 500, away from the training and test splits.

    .venv/bin/python bench/proposals.py --scenes 8 --frames 48 --out bench/results/proposals.json

The world switches (``--yaw-deg``, ``--rooms``, ``--touching``, ``--sensor``, ``--world-catalogue``, over ``--world``) replace the
named conditions by one world of their own (a condition mix no tuning looked at); ``--depth-stride 1
--width 320 --height 240 --frames 16`` fuses as the synthetic training data does (``every_frame_memory``).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from w2r2_ros.geometry.boxes import box_iou_matrix, oriented_iou_matrix
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.scene.memory import SceneMemory, SceneMemoryConfig
from w2r2_ros.sim.conditions import CONDITIONS, WorldConfig, add_world_arguments, world_from_args
from w2r2_ros.sim.render import render_rgbd
from w2r2_ros.sim.trajectory import orbit_trajectory
from w2r2_ros.sim.world import generate_scene


def run_scene(scene_id: str, seed: int, world: WorldConfig, n_frames: int, intrinsics: Intrinsics, config: SceneMemoryConfig) -> dict:
    scene = generate_scene(scene_id, seed, world.scene)
    rng = np.random.default_rng(seed)
    memory = SceneMemory(config)
    for k, pose in enumerate(orbit_trajectory(scene, n_frames, seed)):
        frame = render_rgbd(scene, intrinsics, pose, world.render, rng)
        memory.add_pose(0.1 * k, pose)
        memory.add_rgbd(0.1 * k, frame.rgb, frame.depth, intrinsics)
    start = time.perf_counter()
    proposals = memory.update_proposals()
    seconds = time.perf_counter() - start
    gt = scene.oriented_boxes()
    boxes = np.stack([p.box.as_oriented_array() for p in proposals]) if proposals else np.zeros((0, 7))
    aligned = np.stack([p.box.as_array() for p in proposals]) if proposals else np.zeros((0, 6))
    best = oriented_iou_matrix(gt, boxes).max(axis=1) if len(boxes) else np.zeros(len(gt))
    best_aligned = box_iou_matrix(scene.boxes(), aligned).max(axis=1) if len(boxes) else np.zeros(len(gt))
    return {
        "scene_id": scene.scene_id,
        "best_iou": best.round(4).tolist(),
        "best_aligned_iou": best_aligned.round(4).tolist(),
        "categories": [o.category for o in scene.objects],
        "n_proposals": len(proposals),
        "n_voxels": memory.stats().voxels,
        "segment_s": seconds,
        "warnings": [w.message for w in memory.proposal_warnings()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--seed", type=int, default=500, help="scenes use seeds seed..seed+scenes-1 (not the training seeds)")
    parser.add_argument("--conditions", nargs="*", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--min-hits", type=int, default=SceneMemoryConfig().proposal_min_hits,
                        help="SceneMemoryConfig.proposal_min_hits: voxels hit fewer times are left out of proposals")
    parser.add_argument("--depth-stride", type=int, default=SceneMemoryConfig().depth_stride,
                        help="SceneMemoryConfig.depth_stride: fuse every n-th depth row and column")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true", help="print every object below IoU 0.5")
    add_world_arguments(parser)
    args = parser.parse_args(argv)
    intrinsics = Intrinsics.from_fov(args.width, args.height, 70.0)
    config = SceneMemoryConfig(proposal_min_hits=args.min_hits, depth_stride=args.depth_stride)
    worlds = {name: CONDITIONS[name] for name in args.conditions}
    if any(v is not None for v in (args.yaw_deg, args.rooms, args.touching, args.sensor, args.world_catalogue)):
        worlds = {"custom": world_from_args(args)}  # the command line (in the JSON) says which
    rows = []
    for name, world in worlds.items():
        scenes = [run_scene(f"bench_{i:03d}", args.seed + i, world, args.frames, intrinsics, config) for i in range(args.scenes)]
        ious = np.concatenate([s["best_iou"] for s in scenes])
        aligned = np.concatenate([s["best_aligned_iou"] for s in scenes])
        row = {
            "condition": name,
            "objects": int(len(ious)),
            "recall@0.25": float(np.mean(ious >= 0.25)),
            "recall@0.5": float(np.mean(ious >= 0.5)),
            "mean_best_iou": float(np.mean(ious)),
            "aligned_recall@0.25": float(np.mean(aligned >= 0.25)),
            "aligned_recall@0.5": float(np.mean(aligned >= 0.5)),
            "proposals_per_scene": float(np.mean([s["n_proposals"] for s in scenes])),
            "segment_s_mean": float(np.mean([s["segment_s"] for s in scenes])),
            "scenes": scenes,
        }
        rows.append(row)
        print(f"{name:14s} objects {row['objects']:4d}  recall@0.25 {row['recall@0.25']:.3f}  recall@0.5 {row['recall@0.5']:.3f}  "
              f"mean IoU {row['mean_best_iou']:.3f}  proposals/scene {row['proposals_per_scene']:.1f}  segment {row['segment_s_mean']:.2f} s", flush=True)
        if args.verbose:
            for s in scenes:
                for category, iou in zip(s["categories"], s["best_iou"]):
                    if iou < 0.5:
                        print(f"    {s['scene_id']} {category}: best IoU {iou:.2f}")
    print()
    print("| condition | objects | recall@0.25 | recall@0.5 | mean best IoU | axis-aligned bounds recall@0.25 / @0.5 | proposals/scene | segmentation s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['condition']} | {r['objects']} | {r['recall@0.25']:.3f} | {r['recall@0.5']:.3f} | {r['mean_best_iou']:.3f} | "
              f"{r['aligned_recall@0.25']:.3f} / {r['aligned_recall@0.5']:.3f} | {r['proposals_per_scene']:.1f} | {r['segment_s_mean']:.2f} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"command": " ".join(["bench/proposals.py"] + (argv if argv is not None else sys.argv[1:])),
                  "machine": platform.platform(), "rows": rows}
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
