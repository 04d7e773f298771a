"""Proposals on real RGB-D recordings kept outside the repository: fuse, segment, draw, report.

Reads two public frame-folder layouts (the data itself is never committed; see docs/PROPOSALS.md):

- ``frames``: ``camera-intrinsics.txt`` (3x3, in the folder or beside it) and one or more folders of ``frame-NNNNNN.color.png``,
  ``.depth.png`` (uint16 mm) and ``.pose.txt`` (4x4 camera-to-world), as in the 3DMatch / 7-Scenes
  sample data;
- ``slambook``: ``color/N.png``, ``depth/N.pgm`` (uint16 mm) and ``pose.txt`` (one line per frame,
  ``tx ty tz qx qy qz qw`` camera-to-world), with the intrinsics given on the command line.

Both keep the first camera's frame as the world (y down, z forward); ``--world-up -y`` turns it so
that -y is map +z (the map stays tilted by the first camera's pitch: the floor finder levels it and
says how far). The frames go through ``SceneMemory`` as a camera stream would, then the proposals
are drawn over the fused cloud into ``--png`` and listed.

    .venv/bin/python bench/real_rgbd.py frames /tmp/sun3d --png docs/images/proposals_sun3d.png
    .venv/bin/python bench/real_rgbd.py slambook /tmp/slambook --intrinsics 518 519 325.5 253.5 --png /tmp/dining.png
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.transforms import transform_from_quaternion
from w2r2_ros.scene.floor_plane import levelling_rotation
from w2r2_ros.scene.memory import SceneMemory, SceneMemoryConfig
from w2r2_ros.scene.proposals import segment_scene

# The recordings' world frames are their first camera's optical frame: -y is roughly up.
_UP = {"-y": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]), "+y": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), "z": np.eye(3)}


def frames_folder(root: Path) -> tuple[Intrinsics, list[tuple[Path, Path, np.ndarray]]]:
    k = np.loadtxt(next(p for p in (root / "camera-intrinsics.txt", root.parent / "camera-intrinsics.txt") if p.exists()))
    items = []
    for color in sorted(root.glob("**/frame-*.color.png")):
        stem = str(color)[: -len(".color.png")]
        items.append((color, Path(stem + ".depth.png"), np.loadtxt(stem + ".pose.txt")))
    first = np.asarray(Image.open(items[0][0]))
    return Intrinsics(k[0, 0], k[1, 1], k[0, 2], k[1, 2], first.shape[1], first.shape[0]), items


def slambook_folder(root: Path, fx_fy_cx_cy: list[float]) -> tuple[Intrinsics, list[tuple[Path, Path, np.ndarray]]]:
    poses = np.loadtxt(root / "pose.txt").reshape(-1, 7)
    items = [
        (root / "color" / f"{i + 1}.png", root / "depth" / f"{i + 1}.pgm", transform_from_quaternion(p[:3], p[3:]))
        for i, p in enumerate(poses)
    ]
    first = np.asarray(Image.open(items[0][0]))
    fx, fy, cx, cy = fx_fy_cx_cy
    return Intrinsics(fx, fy, cx, cy, first.shape[1], first.shape[0]), items


def fuse(items: list[tuple[Path, Path, np.ndarray]], intrinsics: Intrinsics, world_to_map: np.ndarray, args: argparse.Namespace) -> SceneMemory:
    """Every frame through a fresh SceneMemory (each one fused: these folders are already subsampled)."""
    memory = SceneMemory(SceneMemoryConfig(max_depth_m=args.max_depth, min_fuse_interval_s=0.0, proposal_min_hits=args.min_hits))
    for k, (color, depth, pose) in enumerate(items):
        rgb = np.asarray(Image.open(color).convert("RGB"))
        metres = np.asarray(Image.open(depth)).astype(np.float32) / 1000.0
        memory.add_rgbd(float(k), rgb, metres, intrinsics, world_to_map @ pose)
    return memory


def palette(n: int) -> np.ndarray:
    """``n`` distinct RGB colours (0..255), the same for the same ``n``."""
    hues = np.arange(n) * 0.618034 % 1.0
    return (np.stack([np.cos(2 * np.pi * (hues + k / 3)) for k in range(3)], axis=1) * 0.4 + 0.6) * 255


def label_colours(labels: np.ndarray) -> np.ndarray:
    colours = np.full((len(labels), 3), 90, dtype=np.uint8)
    found = labels >= 0
    colours[found] = palette(int(labels.max(initial=-1)) + 1)[labels[found]].astype(np.uint8)
    return colours


def overlay(keyframes: list, proposals: list, path: Path, tiles: int = 4) -> None:
    """Proposal boxes projected into ``tiles`` keyframes spread over the recording, 2 x 2, each box in
    its own colour with its id: what each proposal is, seen in the camera's own images."""
    import cv2

    from w2r2_ros.geometry.boxes import BOX_EDGES, box_corners
    from w2r2_ros.geometry.camera import project_points

    colours = palette(len(proposals))
    chosen = [keyframes[i] for i in np.linspace(0, len(keyframes) - 1, min(tiles, len(keyframes))).astype(int)]
    images = []
    for keyframe in chosen:
        image = np.ascontiguousarray(keyframe.rgb.copy())
        for colour, proposal in zip(colours, proposals):
            uv, depth = project_points(box_corners(proposal.box), keyframe.intrinsics, keyframe.cam_to_world)
            if not (depth > 0.1).all():
                continue
            c = tuple(int(v) for v in colour)
            for a, b in BOX_EDGES:
                cv2.line(image, tuple(np.round(uv[a]).astype(int)), tuple(np.round(uv[b]).astype(int)), c, 2, cv2.LINE_AA)
            x, y = np.clip(uv.min(axis=0), 0, np.array(image.shape[1::-1]) - 30).astype(int)
            cv2.putText(image, f"#{proposal.proposal_id}", (int(x), int(y) + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5, c, 2, cv2.LINE_AA)
        images.append(image)
    while len(images) % 2:
        images.append(np.zeros_like(images[0]))
    rows = [np.concatenate(images[i : i + 2], axis=1) for i in range(0, len(images), 2)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layout", choices=("frames", "slambook"))
    parser.add_argument("root", type=Path)
    parser.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), default=None)
    parser.add_argument("--world-up", choices=tuple(_UP), default="-y")
    parser.add_argument("--max-depth", type=float, default=4.0, help="metres; Kinect depth beyond ~4 m is too noisy")
    parser.add_argument("--min-hits", type=int, default=SceneMemoryConfig().proposal_min_hits)
    parser.add_argument("--level", action="store_true", help="fuse again with the floor found turned to z = 0 (the map a robot with gravity on -z would have)")
    parser.add_argument("--overlay", type=Path, default=None, help="PNG: the boxes drawn into four of the frames")
    parser.add_argument("--png", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.layout == "frames":
        intrinsics, items = frames_folder(args.root)
    else:
        if args.intrinsics is None:
            parser.error("slambook needs --intrinsics FX FY CX CY")
        intrinsics, items = slambook_folder(args.root, args.intrinsics)
    up = np.eye(4)
    up[:3, :3] = _UP[args.world_up]
    memory = fuse(items, intrinsics, up, args)
    if args.level:
        floor = segment_scene(memory.snapshot().cloud_points, memory.snapshot().cloud_colors).report.floor
        if floor is not None:
            print(f"levelled: the fused map's floor was tilted {floor.tilt_deg:.1f} deg; fused again with gravity on -z")
            level = np.eye(4)
            level[:3, :3] = levelling_rotation(floor.normal)
            level[2, 3] = -floor.offset
            up = level @ up
            memory = fuse(items, intrinsics, up, args)
    snapshot = memory.snapshot(include_cloud=False)
    start = time.perf_counter()
    points, result = memory.segment()  # as the node segments: voxels hit proposal_min_hits times, with their hits
    seconds = time.perf_counter() - start
    report = result.report
    print(f"{len(items)} frames, {report.n_voxels} voxels ({report.n_isolated} isolated), segmentation {seconds:.2f} s")
    if report.floor is not None:
        print(f"floor: tilt {report.floor.tilt_deg:.1f} deg, {report.floor.n_voxels} voxels")
    for plane in report.structure:
        print(f"{plane.kind}: {plane.extent_m[0]:.2f} x {plane.extent_m[1]:.2f} m, {plane.n_voxels} voxels")
    for reason in report.reasons:
        print(f"warning: {reason}")
    for p in result.proposals:
        print(f"#{p.proposal_id:2d} centre {np.round(p.box.center, 2)} size {np.round(p.box.size, 2)} "
              f"yaw {np.degrees(p.box.yaw):5.1f} deg, {p.n_points} voxels, rgb {np.round(p.mean_rgb).astype(int)}")
    if args.overlay is not None:
        overlay(list(snapshot.keyframes), result.proposals, args.overlay)
        print(f"wrote {args.overlay}")
    if args.png is not None:
        from std_msgs.msg import Header

        from w2r2_ros.ros.proposal_markers import proposals_to_marker_array
        from w2r2_ros.viz.render_png import render_markers_png

        markers = proposals_to_marker_array(result.proposals, Header(frame_id="map"))
        title = (f"{args.root.name}: {len(items)} real RGB-D frames, {report.n_voxels} voxels, {len(result.proposals)} proposals "
                 f"(each proposal's voxels in its own colour; floor, walls and noise grey)")
        render_markers_png(markers, args.png, points, label_colours(result.point_labels), title=title)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
