"""Proposal recall per world condition: does every object get a box, whatever the room's yaw, the
number of rooms, furniture that touches, a noisy depth sensor?

Each scene is rendered once per condition and streamed through ``SceneMemory`` (poses, then RGB-D),
then its proposals are compared with the ground-truth boxes: recall at 3D IoU >= 0.25 and >= 0.5
(oriented IoU: boxes turned in yaw are compared as such). A yaw condition turns every camera pose
about the map's z axis by the angle (images unchanged): an exact rigid transform of the same scene,
with the ground-truth boxes turned alike.

    .venv/bin/python bench/proposals.py --scenes 8 --frames 48 --out bench/results/proposals.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from w2r2_ros.geometry.boxes import oriented_iou_matrix
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.scene.memory import SceneMemory, SceneMemoryConfig
from w2r2_ros.sim.render import RenderConfig, render_rgbd
from w2r2_ros.sim.trajectory import orbit_trajectory
from w2r2_ros.sim.world import SceneSpec, generate_scene


@dataclass(frozen=True)
class Condition:
    name: str
    yaw_deg: float = 0.0
    depth_noise_per_m2: float = 0.0
    dropout: float = 0.0


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("axis-aligned"),
        Condition("yaw 5", yaw_deg=5.0),
        Condition("yaw 30", yaw_deg=30.0),
        Condition("yaw 45", yaw_deg=45.0),
        Condition("yaw 77", yaw_deg=77.0),
        Condition("sensor noise", depth_noise_per_m2=0.0019, dropout=0.02),
        Condition("all combined", yaw_deg=77.0, depth_noise_per_m2=0.0019, dropout=0.02),
    )
}


def yaw_transform(yaw_deg: float) -> np.ndarray:
    t = np.eye(4)
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    t[:2, :2] = [[c, -s], [s, c]]
    return t


def ground_truth(scene: SceneSpec, yaw_deg: float) -> np.ndarray:
    """(M, 7) ground-truth boxes of ``scene`` in the map turned by ``yaw_deg``."""
    t = yaw_transform(yaw_deg)
    boxes = np.stack([np.r_[o.box.center, o.box.size, 0.0] for o in scene.objects])
    boxes[:, :3] = boxes[:, :3] @ t[:3, :3].T
    boxes[:, 6] = np.radians(yaw_deg)
    return boxes


def run_scene(scene: SceneSpec, condition: Condition, n_frames: int, intrinsics: Intrinsics, seed: int, config: SceneMemoryConfig) -> dict:
    render_config = RenderConfig(depth_noise_per_m2=condition.depth_noise_per_m2, dropout_fraction=condition.dropout)
    rng = np.random.default_rng(seed)
    memory = SceneMemory(config)
    turn = yaw_transform(condition.yaw_deg)
    for k, pose in enumerate(orbit_trajectory(scene, n_frames, seed)):
        frame = render_rgbd(scene, intrinsics, pose, render_config, rng)
        memory.add_pose(0.1 * k, turn @ pose)
        memory.add_rgbd(0.1 * k, frame.rgb, frame.depth, intrinsics)
    start = time.perf_counter()
    proposals = memory.update_proposals()
    seconds = time.perf_counter() - start
    gt = ground_truth(scene, condition.yaw_deg)
    boxes = np.stack([p.box.as_oriented_array() for p in proposals]) if proposals else np.zeros((0, 7))
    best = oriented_iou_matrix(gt, boxes).max(axis=1) if len(boxes) else np.zeros(len(gt))
    return {
        "scene_id": scene.scene_id,
        "best_iou": best.round(4).tolist(),
        "categories": [o.category for o in scene.objects],
        "n_proposals": len(proposals),
        "n_voxels": memory.stats().voxels,
        "segment_s": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--seed", type=int, default=500, help="scenes use seeds seed..seed+scenes-1 (not the training seeds)")
    parser.add_argument("--conditions", nargs="*", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true", help="print every object below IoU 0.5")
    args = parser.parse_args(argv)
    intrinsics = Intrinsics.from_fov(640, 480, 70.0)
    config = SceneMemoryConfig()
    rows = []
    for name in args.conditions:
        condition = CONDITIONS[name]
        scenes = [run_scene(generate_scene(f"bench_{i:03d}", args.seed + i), condition, args.frames, intrinsics, args.seed + i, config) for i in range(args.scenes)]
        ious = np.concatenate([s["best_iou"] for s in scenes])
        row = {
            "condition": name,
            "objects": int(len(ious)),
            "recall@0.25": float(np.mean(ious >= 0.25)),
            "recall@0.5": float(np.mean(ious >= 0.5)),
            "mean_best_iou": float(np.mean(ious)),
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
    print("| condition | objects | recall@0.25 | recall@0.5 | mean best IoU | proposals/scene |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['condition']} | {r['objects']} | {r['recall@0.25']:.3f} | {r['recall@0.5']:.3f} | {r['mean_best_iou']:.3f} | {r['proposals_per_scene']:.1f} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"command": " ".join(["bench/proposals.py"] + (argv if argv is not None else sys.argv[1:])),
                  "machine": platform.platform(), "rows": rows}
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
