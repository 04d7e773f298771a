"""The synthetic worlds side by side: seconds per dataset scene and what the proposals recover per class.

For each catalogue (``classic``, ``scannet``: ``w2r2_ros/sim/world.py``) the same scene ids are built
the way the dataset builds them (``synthetic_dataset.build_scene_record``: 16 frames of 320x240 filmed
along the orbit, fused by the robot's ``SceneMemory``, proposals, model inputs), timed per scene on one
process. The proposal oracle is read from those records: the share of ground-truth objects whose best
proposal reaches IoU 0.25 / 0.5 (axis-aligned, ScanRefer's), overall and per class; the grounding
model picks one proposal, so this bounds its Acc@k. Scene ids ``bench0000...`` with seed 7 are outside
the dataset's splits.

    nice -n 10 .venv/bin/python bench/world.py --scenes 8 --out bench/results/world.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from w2r2_ros.geometry.boxes import box_iou_matrix
from w2r2_ros.sim.world import CATALOGUES, generate_scene
from w2r2_training.synthetic_dataset import SyntheticDatasetConfig, build_scene_record


def measure(catalogue: str, n_scenes: int, seed: int) -> dict:
    """Seconds per scene (generation, and the record build) and best IoU per ground-truth object, by class."""
    config = SyntheticDatasetConfig(catalogue=catalogue, seed=seed, workers=1)
    generate_s, build_s, parts, objects = [], [], [], []
    best: dict[str, list[float]] = defaultdict(list)
    for i in range(n_scenes):
        start = time.perf_counter()
        scene = generate_scene(f"bench{i:04d}", seed, config.world().scene)
        generate_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        record = build_scene_record(scene, config)
        build_s.append(time.perf_counter() - start)
        parts.append(sum(len(o.parts) for o in scene.objects))
        objects.append(len(scene.objects))
        proposals = record.proposal_boxes
        ious = box_iou_matrix(record.gt_boxes, proposals).max(axis=1) if len(proposals) else np.zeros(len(record.objects))
        for obj, iou in zip(record.objects, ious):
            best[obj.category].append(float(iou))
        print(f"  {catalogue} {scene.scene_id}: {build_s[-1]:.2f} s, {objects[-1]} objects, {len(proposals)} proposals",
              file=sys.stderr)
    every = np.concatenate([np.asarray(v) for v in best.values()])
    return {
        "scenes": n_scenes,
        "generate_s_per_scene": float(np.mean(generate_s)),
        "build_s_per_scene": float(np.mean(build_s)),
        "build_s_median": float(np.median(build_s)),
        "objects_per_scene": float(np.mean(objects)),
        "parts_per_scene": float(np.mean(parts)),
        "recall_25": float(np.mean(every >= 0.25)),
        "recall_50": float(np.mean(every >= 0.5)),
        "per_class": {
            c: {"objects": len(v), "recall_25": float(np.mean(np.asarray(v) >= 0.25)), "recall_50": float(np.mean(np.asarray(v) >= 0.5))}
            for c, v in sorted(best.items())
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=8, help="scenes per catalogue")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--catalogues", nargs="+", choices=CATALOGUES, default=list(CATALOGUES))
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = {c: measure(c, args.scenes, args.seed) for c in args.catalogues}
    print(f"{'catalogue':<10} {'s/scene':>8} {'gen s':>6} {'objects':>8} {'parts':>6} {'R@0.25':>7} {'R@0.5':>6}")
    for c, r in results.items():
        print(f"{c:<10} {r['build_s_per_scene']:8.2f} {r['generate_s_per_scene']:6.3f} {r['objects_per_scene']:8.1f} "
              f"{r['parts_per_scene']:6.0f} {r['recall_25']:7.2f} {r['recall_50']:6.2f}")
    for c, r in results.items():
        print(f"\n{c}: per class (objects, share with a proposal at IoU >= 0.25 / 0.5)")
        for name, v in r["per_class"].items():
            print(f"  {name:<16} {v['objects']:4d} {v['recall_25']:6.2f} {v['recall_50']:6.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": "bench/world.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                   "machine": platform.platform(), "results": results}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
