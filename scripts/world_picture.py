"""Draw a scene of a synthetic world for the docs: rendered frames along its orbit and a labelled top view.

The top view paints every part from above (higher parts over lower ones, in
the part's colour) and outlines each object's ground-truth box with its class
name, so what the generator built can be checked at a glance.

    .venv/bin/python scripts/world_picture.py --catalogue scannet --scene look4 --out docs/images/world_scannet.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from w2r2_ros.geometry.camera import Intrinsics  # noqa: E402
from w2r2_ros.sim.render import render_rgbd  # noqa: E402
from w2r2_ros.sim.trajectory import orbit_trajectory  # noqa: E402
from w2r2_ros.sim.world import SceneConfig, SceneSpec, generate_scene  # noqa: E402


def draw_top_view(ax: plt.Axes, scene: SceneSpec) -> None:
    """Parts from above in their colours, object boxes outlined and named (room frame, metres)."""
    for rect in scene.room_rects():
        ax.add_patch(Rectangle(rect[:2], rect[2] - rect[0], rect[3] - rect[1], facecolor=np.array(scene.floor_rgb) / 255,
                               edgecolor="black", linewidth=1.5))
    parts = [(p, obj, k) for obj in scene.objects for k, p in enumerate(obj.parts)]
    for part, obj, k in sorted(parts, key=lambda item: item[0].max_corner[2]):
        tone = obj.part_tones[k] if k < len(obj.part_tones) else 1.0
        colour = np.clip(np.asarray(obj.part_rgb(k)) * tone / 255, 0, 1)
        lo, size = part.min_corner, part.max_corner - part.min_corner
        ax.add_patch(Rectangle(lo[:2], size[0], size[1], facecolor=colour, edgecolor="none"))
    for obj in scene.objects:
        lo, hi = obj.box.min_corner, obj.box.max_corner
        ax.add_patch(Rectangle(lo[:2], *(hi - lo)[:2], fill=False, edgecolor="red", linewidth=0.6, linestyle="--"))
        ax.text(*obj.box.center[:2], obj.category, fontsize=5.5, ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "alpha": 0.7, "linewidth": 0})
    lo, hi = scene.room_rects()[:, :2].min(axis=0), scene.room_rects()[:, 2:].max(axis=0)
    ax.set_xlim(lo[0] - 0.1, hi[0] + 0.1)
    ax.set_ylim(lo[1] - 0.1, hi[1] + 0.1)
    ax.set_aspect("equal")
    ax.set_title(f"{scene.scene_id}: {', '.join(scene.room_types) or 'room'}, {len(scene.objects)} objects (top view, m)",
                 fontsize=8)
    ax.tick_params(labelsize=6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogue", default="scannet")
    parser.add_argument("--scene", default="look4", help="scene id")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, nargs="+", default=[2, 7, 12], help="orbit frames (of 16) to show")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    scene = generate_scene(args.scene, args.seed, SceneConfig(catalogue=args.catalogue))
    intrinsics = Intrinsics.from_fov(320, 240, 70.0)
    poses = orbit_trajectory(scene, 16, args.seed)
    fig = plt.figure(figsize=(10, 5.2), dpi=150)
    grid = fig.add_gridspec(len(args.frames), 2, width_ratios=[1, 1.35])
    for row, k in enumerate(args.frames):
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(render_rgbd(scene, intrinsics, poses[k]).rgb)
        ax.set_axis_off()
        ax.set_title(f"frame {k} of 16 (320x240)", fontsize=7)
    draw_top_view(fig.add_subplot(grid[:, 1]), scene)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
