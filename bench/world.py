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


def _build(catalogue: str, scene_id: str, seed: int) -> tuple[float, int, int, list[tuple[str, float]]]:
    """Build one scene the dataset's way: seconds, objects, parts, and (class, best proposal IoU) per object."""
    config = SyntheticDatasetConfig(catalogue=catalogue, seed=seed, workers=1)
    scene = generate_scene(scene_id, seed, config.world().scene)
    start = time.perf_counter()
    record = build_scene_record(scene, config)
    seconds = time.perf_counter() - start
    proposals = record.proposal_boxes
    ious = box_iou_matrix(record.gt_boxes, proposals).max(axis=1) if len(proposals) else np.zeros(len(record.objects))
    print(f"  {catalogue} {scene_id}: {seconds:.2f} s, {len(scene.objects)} objects, {len(proposals)} proposals", file=sys.stderr)
    return seconds, len(scene.objects), sum(len(o.parts) for o in scene.objects), [
        (o.category, float(iou)) for o, iou in zip(record.objects, ious)
    ]


def measure(catalogues: list[str], n_scenes: int, seed: int) -> dict:
    """Per catalogue: seconds per scene, objects and parts per scene, recall at IoU 0.25/0.5 overall and per class.
    The catalogues take turns scene by scene, so a change in the machine's load hits both alike."""
    rows: dict[str, list] = {c: [] for c in catalogues}
    for i in range(n_scenes):
        for catalogue in catalogues:
            rows[catalogue].append(_build(catalogue, f"bench{i:04d}", seed))
    results = {}
    for catalogue, built in rows.items():
        best: dict[str, list[float]] = defaultdict(list)
        for _, _, _, pairs in built:
            for category, iou in pairs:
                best[category].append(iou)
        every = np.array([iou for _, _, _, pairs in built for _, iou in pairs])
        seconds = np.array([b[0] for b in built])
        results[catalogue] = {
            "scenes": n_scenes,
            "build_s_per_scene": float(seconds.mean()),
            "build_s_median": float(np.median(seconds)),
            "objects_per_scene": float(np.mean([b[1] for b in built])),
            "parts_per_scene": float(np.mean([b[2] for b in built])),
            "recall_25": float(np.mean(every >= 0.25)),
            "recall_50": float(np.mean(every >= 0.5)),
            "per_class": {
                c: {"objects": len(v), "recall_25": float(np.mean(np.asarray(v) >= 0.25)),
                    "recall_50": float(np.mean(np.asarray(v) >= 0.5)), "median_iou": float(np.median(v))}
                for c, v in sorted(best.items())
            },
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=8, help="scenes per catalogue")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--catalogues", nargs="+", choices=CATALOGUES, default=list(CATALOGUES))
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = measure(args.catalogues, args.scenes, args.seed)
    print(f"{'catalogue':<10} {'s/scene':>8} {'median':>7} {'objects':>8} {'parts':>6} {'R@0.25':>7} {'R@0.5':>6}")
    for c, r in results.items():
        print(f"{c:<10} {r['build_s_per_scene']:8.2f} {r['build_s_median']:7.2f} {r['objects_per_scene']:8.1f} "
              f"{r['parts_per_scene']:6.0f} {r['recall_25']:7.2f} {r['recall_50']:6.2f}")
    for c, r in results.items():
        print(f"\n{c}: per class (objects, share with a proposal at IoU >= 0.25 / 0.5, median best IoU)")
        for name, v in r["per_class"].items():
            print(f"  {name:<16} {v['objects']:4d} {v['recall_25']:6.2f} {v['recall_50']:6.2f} {v['median_iou']:6.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": "bench/world.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                   "machine": platform.platform(), "results": results}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
