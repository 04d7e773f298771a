"""Draw what RViz would show, to a PNG: a MarkerArray and the fused cloud, top-down and in 3D.

RViz cannot run here (no display, docs ENVIRONMENT.md), so the demo and the
tests look at the same ``visualization_msgs/MarkerArray`` the node publishes,
drawn with matplotlib's Agg backend. Marker semantics follow RViz: markers are
applied in order (DELETEALL clears everything before it, DELETE removes one
``(ns, id)``, ADD replaces the same ``(ns, id)``); LINE_LIST, LINE_STRIP, CUBE
and TEXT_VIEW_FACING are drawn with their pose, scale, colour and alpha (and
per-point colours when given). Other marker types are counted and named in
the figure's caption rather than drawn wrongly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Line3DCollection  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from w2r2_ros.geometry.boxes import BOX_EDGES, Box3D, box_corners  # noqa: E402
from w2r2_ros.geometry.transforms import transform_from_quaternion  # noqa: E402

DRAWN_TYPES = {Marker.LINE_LIST, Marker.LINE_STRIP, Marker.CUBE, Marker.TEXT_VIEW_FACING}
MAX_CLOUD_POINTS = 20000
# Line widths are in metres in RViz; in a figure they become points, scaled so that 1 cm reads as ~1 pt.
POINTS_PER_METRE = 100.0


@dataclass
class Segments:
    """Coloured 3D line segments (N, 2, 3) with per-segment RGBA (N, 4) and a line width in points."""

    lines: np.ndarray
    rgba: np.ndarray
    width_pt: float


@dataclass
class Label:
    text: str
    position: np.ndarray
    rgba: tuple[float, float, float, float]
    height_m: float


def active_markers(markers: MarkerArray) -> list[Marker]:
    """The markers RViz would display after applying ``markers`` in order, in insertion order."""
    shown: dict[tuple[str, int], Marker] = {}
    for marker in markers.markers:
        if marker.action == Marker.DELETEALL:
            shown.clear()
        elif marker.action == Marker.DELETE:
            shown.pop((marker.ns, marker.id), None)
        else:
            shown.pop((marker.ns, marker.id), None)
            shown[(marker.ns, marker.id)] = marker
    return list(shown.values())


def _pose_matrix(marker: Marker) -> np.ndarray:
    p, q = marker.pose.position, marker.pose.orientation
    quaternion = np.array([q.x, q.y, q.z, q.w])
    if not np.any(quaternion):
        quaternion = np.array([0.0, 0.0, 0.0, 1.0])  # an all-zero quaternion is treated as identity, as RViz does
    return transform_from_quaternion(np.array([p.x, p.y, p.z]), quaternion)


def _rgba(color) -> np.ndarray:
    return np.array([color.r, color.g, color.b, color.a], dtype=np.float64)


def _marker_segments(marker: Marker) -> Segments | None:
    transform = _pose_matrix(marker)
    if marker.type == Marker.CUBE:
        corners = box_corners(Box3D(center=np.zeros(3), size=np.array([marker.scale.x, marker.scale.y, marker.scale.z])))
        corners = corners @ transform[:3, :3].T + transform[:3, 3]
        lines = np.stack([corners[[a, b]] for a, b in BOX_EDGES])
        rgba = np.tile(_rgba(marker.color), (len(lines), 1))
        return Segments(lines, rgba, 1.5)
    points = np.array([[p.x, p.y, p.z] for p in marker.points], dtype=np.float64).reshape(-1, 3)
    if len(points) < 2:
        return None
    points = points @ transform[:3, :3].T + transform[:3, 3]
    if len(marker.colors) == len(points):
        colors = np.array([_rgba(c) for c in marker.colors])
    else:
        colors = np.tile(_rgba(marker.color), (len(points), 1))
    if marker.type == Marker.LINE_LIST:
        count = len(points) // 2
        lines = points[: 2 * count].reshape(count, 2, 3)
        rgba = colors[: 2 * count : 2]
    else:
        lines = np.stack([points[:-1], points[1:]], axis=1)
        rgba = colors[:-1]
    return Segments(lines, rgba, max(0.5, marker.scale.x * POINTS_PER_METRE))


def _cube_faces(marker: Marker) -> tuple[np.ndarray, np.ndarray]:
    """Top-down footprint (4, 2) of a CUBE marker and its RGBA, for a translucent fill."""
    transform = _pose_matrix(marker)
    corners = box_corners(Box3D(center=np.zeros(3), size=np.array([marker.scale.x, marker.scale.y, marker.scale.z])))
    corners = corners @ transform[:3, :3].T + transform[:3, 3]
    return corners[[0, 1, 3, 2], :2], _rgba(marker.color)


def render_markers_png(
    markers: MarkerArray,
    path: str | Path,
    cloud_points: np.ndarray | None = None,
    cloud_colors: np.ndarray | None = None,
    title: str = "",
    extra_markers: MarkerArray | None = None,
) -> Path:
    """Write ``path`` (PNG): the cloud and markers seen from above (x right, y up) and in 3D, side by side.

    ``cloud_colors`` are RGB in 0..1 or 0..255 (uint8). ``extra_markers`` (e.g.
    the scene's proposal boxes) are drawn underneath ``markers``, as a second
    RViz display would.
    """
    shown = (active_markers(extra_markers) if extra_markers is not None else []) + active_markers(markers)
    segments: list[Segments] = []
    labels: list[Label] = []
    footprints: list[tuple[np.ndarray, np.ndarray]] = []
    skipped: dict[int, int] = {}
    for marker in shown:
        if marker.type not in DRAWN_TYPES:
            skipped[marker.type] = skipped.get(marker.type, 0) + 1
            continue
        if marker.type == Marker.TEXT_VIEW_FACING:
            p = marker.pose.position
            labels.append(Label(marker.text, np.array([p.x, p.y, p.z]), tuple(_rgba(marker.color)), marker.scale.z))
            continue
        if marker.type == Marker.CUBE:
            footprints.append(_cube_faces(marker))
        found = _marker_segments(marker)
        if found is not None:
            segments.append(found)

    figure = plt.figure(figsize=(16, 7.5), dpi=100)
    top = figure.add_subplot(1, 2, 1)
    view = figure.add_subplot(1, 2, 2, projection="3d")
    top.set_facecolor("#202020")
    view.set_facecolor("#202020")

    extent_points = [s.lines.reshape(-1, 3) for s in segments] + [label.position[None] for label in labels]
    if cloud_points is not None and len(cloud_points):
        points = np.asarray(cloud_points, dtype=np.float64).reshape(-1, 3)
        colors = _cloud_rgb(cloud_colors, len(points))
        if len(points) > MAX_CLOUD_POINTS:
            keep = np.random.default_rng(0).choice(len(points), MAX_CLOUD_POINTS, replace=False)
            points, colors = points[keep], colors[keep]
        order = np.argsort(points[:, 2])  # higher points drawn last: the top-down view shows what is on top
        top.scatter(points[order, 0], points[order, 1], c=colors[order], s=1.5, marker="s", linewidths=0)
        view.scatter(points[:, 0], points[:, 1], points[:, 2], c=colors, s=0.6, depthshade=False, linewidths=0)
        extent_points.append(points)

    for outline, rgba in footprints:
        top.fill(outline[:, 0], outline[:, 1], color=tuple(rgba[:3]), alpha=float(rgba[3]) * 0.5, linewidth=0)
    for s in segments:
        top.add_collection(LineCollection(s.lines[:, :, :2], colors=s.rgba, linewidths=s.width_pt / 2))
        view.add_collection3d(Line3DCollection(s.lines, colors=s.rgba, linewidths=s.width_pt / 3))
    for label in labels:
        size = max(6.0, label.height_m * POINTS_PER_METRE * 0.9)
        style = dict(color=label.rgba[:3], alpha=label.rgba[3], fontsize=size, ha="center", va="bottom",
                     bbox=dict(facecolor="black", alpha=0.45 * label.rgba[3], edgecolor="none", pad=1.0))
        top.text(label.position[0], label.position[1], label.text, clip_on=True, **style)
        view.text(label.position[0], label.position[1], label.position[2], label.text, **style)

    _set_extent(top, view, np.concatenate(extent_points) if extent_points else np.zeros((1, 3)))
    top.set_title("top-down (map frame)")
    top.set_xlabel("x [m]")
    top.set_ylabel("y [m]")
    view.set_title("3D view")
    view.set_xlabel("x [m]")
    view.set_ylabel("y [m]")
    view.set_zlabel("z [m]")
    caption = title
    if skipped:
        names = ", ".join(f"{count} of type {kind}" for kind, count in sorted(skipped.items()))
        caption = f"{caption}\n(not drawn: markers {names})".strip()
    if caption:
        figure.suptitle(caption, fontsize=12)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def _cloud_rgb(colors: np.ndarray | None, count: int) -> np.ndarray:
    if colors is None or len(colors) != count:
        return np.full((count, 3), 0.7)
    colors = np.asarray(colors)
    if colors.dtype == np.uint8 or colors.max(initial=0) > 1.0:
        return colors[:, :3].astype(np.float64) / 255.0
    return np.clip(colors[:, :3].astype(np.float64), 0.0, 1.0)


def _set_extent(top, view, points: np.ndarray) -> None:
    """Equal metric scale on every axis, with a small margin around everything drawn."""
    finite = points[np.all(np.isfinite(points), axis=1)]
    if not len(finite):
        finite = np.zeros((1, 3))
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 0.5) * 1.08
    top.set_xlim(centre[0] - half, centre[0] + half)
    top.set_ylim(centre[1] - half, centre[1] + half)
    top.set_aspect("equal")
    # The 3D axes get their own ranges with a true-to-scale box aspect (a room is flat, not a cube).
    span = np.maximum(hi - lo, 0.2) * 1.05
    view.set_xlim(centre[0] - span[0] / 2, centre[0] + span[0] / 2)
    view.set_ylim(centre[1] - span[1] / 2, centre[1] + span[1] / 2)
    view.set_zlim(centre[2] - span[2] / 2, centre[2] + span[2] / 2)
    view.set_box_aspect(tuple(span / span.max()))
    view.view_init(elev=35, azim=-135)
