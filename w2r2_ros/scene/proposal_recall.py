"""How many ground-truth objects the proposals recover, and the benchmark on the synthetic world.

The grounding model picks one proposal, so the fraction of objects with a
proposal at IoU >= k bounds its Acc@k (W2R2.md, ScanRefer protocol).

Run the benchmark (renders each scene, streams it through SceneMemory)::

    .venv/bin/python -m w2r2_ros.scene.proposal_recall --scenes 20 --frames 60
    # a noisy sensor (sigma 0.002 m per m^2 of depth, 2% dropout), with speckle filtering:
    .venv/bin/python -m w2r2_ros.scene.proposal_recall --scenes 10 --depth-noise 0.002 --dropout 0.02 --min-hits 3
    # another world (sim/conditions.py): a named condition, or the switches
    .venv/bin/python -m w2r2_ros.scene.proposal_recall --scenes 10 --world all_combined
    .venv/bin/python -m w2r2_ros.scene.proposal_recall --scenes 10 --yaw-deg 30 --rooms 2 --touching --sensor structured_light

Ground truth is ``SceneSpec.boxes()``: map-frame axis-aligned bounds of the
(possibly turned) object boxes.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from w2r2_ros.geometry.boxes import box_iou_matrix
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.scene.memory import SceneMemory, SceneMemoryConfig
from w2r2_ros.sim.conditions import add_world_arguments, world_from_args
from w2r2_ros.sim.render import RenderConfig, render_rgbd
from w2r2_ros.sim.trajectory import orbit_trajectory
from w2r2_ros.sim.world import SceneConfig, SceneSpec, generate_scene


def best_iou_per_object(proposal_boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """For each ground-truth box (M, 6), the best IoU of any proposal box (N, 6); zeros without proposals."""
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 6)
    proposal_boxes = np.asarray(proposal_boxes, dtype=np.float64).reshape(-1, 6)
    if len(proposal_boxes) == 0:
        return np.zeros(len(gt_boxes))
    return box_iou_matrix(gt_boxes, proposal_boxes).max(axis=1)


@dataclass(frozen=True)
class SceneRecall:
    scene_id: str
    best_iou: np.ndarray  # per ground-truth object
    categories: tuple[str, ...]
    n_proposals: int


def stream_synthetic_scene(
    scene_id: str,
    seed: int,
    n_frames: int,
    intrinsics: Intrinsics,
    config: SceneMemoryConfig = SceneMemoryConfig(),
    frame_interval_s: float = 0.1,
    render_config: RenderConfig = RenderConfig(),
    scene_config: SceneConfig = SceneConfig(),
) -> tuple[SceneMemory, SceneSpec]:
    """Render an orbit around a generated room, feed it to a fresh SceneMemory (poses then images), and
    update its proposals. Returns the memory and the scene spec."""
    scene = generate_scene(scene_id, seed, scene_config)
    memory = SceneMemory(config)
    rng = np.random.default_rng(seed)
    for k, pose in enumerate(orbit_trajectory(scene, n_frames, seed)):
        frame = render_rgbd(scene, intrinsics, pose, render_config, rng)
        stamp = k * frame_interval_s
        memory.add_pose(stamp, pose)
        memory.add_rgbd(stamp, frame.rgb, frame.depth, intrinsics)
    memory.update_proposals()
    return memory, scene


def synthetic_recall(
    scene_id: str,
    seed: int,
    n_frames: int,
    intrinsics: Intrinsics,
    config: SceneMemoryConfig = SceneMemoryConfig(),
    render_config: RenderConfig = RenderConfig(),
    scene_config: SceneConfig = SceneConfig(),
) -> SceneRecall:
    memory, scene = stream_synthetic_scene(
        scene_id, seed, n_frames, intrinsics, config, render_config=render_config, scene_config=scene_config
    )
    snapshot = memory.snapshot()
    return SceneRecall(
        scene_id=scene_id,
        best_iou=best_iou_per_object(snapshot.proposal_boxes(), scene.boxes()),
        categories=tuple(o.category for o in scene.objects),
        n_proposals=len(snapshot.proposals),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Proposal recall of SceneMemory on synthetic scenes.")
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--depth-noise", type=float, default=None, help="depth noise sigma per squared metre")
    parser.add_argument("--dropout", type=float, default=None, help="fraction of depth pixels set invalid")
    parser.add_argument("--min-hits", type=int, default=SceneMemoryConfig().proposal_min_hits,
                        help="SceneMemoryConfig.proposal_min_hits (3 suits a noisy sensor)")
    parser.add_argument("--verbose", action="store_true", help="print every object below IoU 0.5")
    add_world_arguments(parser)
    args = parser.parse_args(argv)
    intrinsics = Intrinsics.from_fov(args.width, args.height, 70.0)
    world = world_from_args(args)
    render_config = world.render
    if args.depth_noise is not None:
        render_config = dataclasses.replace(render_config, depth_noise_per_m2=args.depth_noise)
    if args.dropout is not None:
        render_config = dataclasses.replace(render_config, dropout_fraction=args.dropout)
    config = SceneMemoryConfig(proposal_min_hits=args.min_hits)
    results = []
    for i in range(args.scenes):
        result = synthetic_recall(
            f"recall_{i:03d}", args.seed + i, args.frames, intrinsics, config, render_config, world.scene
        )
        results.append(result)
        print(
            f"{result.scene_id}: {len(result.best_iou)} objects, {result.n_proposals} proposals, "
            f"recall@0.25 {np.mean(result.best_iou >= 0.25):.2f} @0.5 {np.mean(result.best_iou >= 0.5):.2f}"
        )
        if args.verbose:
            for category, iou in zip(result.categories, result.best_iou):
                if iou < 0.5:
                    print(f"    {category}: best IoU {iou:.2f}")
    ious = np.concatenate([r.best_iou for r in results])
    categories = sum((r.categories for r in results), ())
    print(f"overall: {len(ious)} objects, recall@0.25 {np.mean(ious >= 0.25):.3f}, recall@0.5 {np.mean(ious >= 0.5):.3f}")
    for category in sorted(set(categories)):
        mine = ious[[c == category for c in categories]]
        print(f"  {category:10s} n={len(mine):3d} @0.25 {np.mean(mine >= 0.25):.2f} @0.5 {np.mean(mine >= 0.5):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
