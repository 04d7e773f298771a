"""Named world conditions (room yaw, several rooms, touching furniture, a real depth sensor) and their CLI flags.

A ``WorldConfig`` is what a scene generator and a renderer need beyond a
scene id; the named conditions are the ones benchmarks compare (issue 13:
axis-aligned, yaw 5/30/45/77 degrees, two rooms, touching furniture, sensor
noise, all combined). Every tool that builds scenes, recordings or data sets
takes the same flags through ``add_world_arguments`` / ``world_from_args``.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from w2r2_ros.sim.render import RenderConfig
from w2r2_ros.sim.world import CATALOGUES, SceneConfig


@dataclass(frozen=True)
class WorldConfig:
    """The generator's and the renderer's settings; the defaults are the original axis-aligned, ideal world."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    render: RenderConfig = field(default_factory=RenderConfig)

    def changes(self) -> dict[str, Any]:
        """The settings that differ from the defaults (empty for the original world), for manifests and logs."""
        out: dict[str, Any] = {}
        for name, value, default in (("scene", self.scene, SceneConfig()), ("render", self.render, RenderConfig())):
            for f in dataclasses.fields(value):
                mine, theirs = getattr(value, f.name), getattr(default, f.name)
                if mine != theirs:
                    out[f"{name}.{f.name}"] = dataclasses.asdict(mine) if dataclasses.is_dataclass(mine) else mine
        return out


TOUCHING = {
    "tucked_chair_probability": 0.7,
    "touch_probability": 0.5,
    "wall_margin_m": 0.0,
    "floor_gap_m": 0.05,
    "on_top_probability": 0.6,
}
"""SceneConfig fields of furniture that touches: chairs under tables, furniture flush with walls and neighbours."""


def make_world(
    yaw_deg: tuple[float, float] = (0.0, 0.0),
    rooms: tuple[int, int] = (1, 1),
    touching: bool = False,
    sensor: str = "ideal",
    catalogue: str = "classic",
) -> WorldConfig:
    """A world from the five switches; ``sensor`` is ``ideal`` or ``structured_light``, ``catalogue`` ``classic``
    or ``scannet`` (``world.CATALOGUES``)."""
    if sensor not in SENSORS:
        raise ValueError(f"unknown sensor {sensor!r} (known: {', '.join(SENSORS)})")
    scene = SceneConfig(yaw_deg=tuple(yaw_deg), n_rooms=tuple(rooms), catalogue=catalogue, **(TOUCHING if touching else {}))
    return WorldConfig(scene=scene, render=SENSORS[sensor]())


SENSORS = {"ideal": RenderConfig, "structured_light": RenderConfig.structured_light}

CONDITIONS: dict[str, WorldConfig] = {
    "axis_aligned": make_world(),
    "yaw5": make_world(yaw_deg=(5.0, 5.0)),
    "yaw30": make_world(yaw_deg=(30.0, 30.0)),
    "yaw45": make_world(yaw_deg=(45.0, 45.0)),
    "yaw77": make_world(yaw_deg=(77.0, 77.0)),
    "two_room": make_world(rooms=(2, 2)),
    "touching": make_world(touching=True),
    "sensor_noise": make_world(sensor="structured_light"),
    "all_combined": make_world(yaw_deg=(0.0, 360.0), rooms=(2, 3), touching=True, sensor="structured_light"),
}
"""The benchmark conditions of issue 13, by name."""


def _range(text: str, kind: type) -> tuple[Any, Any]:
    parts = [kind(p) for p in text.split(",")]
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected a value or LOW,HIGH, got {text!r}")
    return (parts[0], parts[-1])


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """The world flags: ``--world NAME`` (a named condition) or the switches, which override it."""
    group = parser.add_argument_group("synthetic world")
    group.add_argument("--world", choices=sorted(CONDITIONS), default="axis_aligned",
                       help="a named world condition (default: the original axis-aligned room, ideal depth)")
    group.add_argument("--yaw-deg", type=lambda t: _range(t, float), default=None, metavar="DEG[,DEG]",
                       help="room yaw in the map, one value or a range to draw from (e.g. 0,360)")
    group.add_argument("--rooms", type=lambda t: _range(t, int), default=None, metavar="N[,N]",
                       help="number of connected rooms, 1-3, one value or a range")
    group.add_argument("--touching", action="store_true", default=None,
                       help="furniture that touches: chairs under tables, furniture against walls and each other")
    group.add_argument("--sensor", choices=sorted(SENSORS), default=None,
                       help="depth sensor model (structured_light: range noise, holes, flying pixels)")
    group.add_argument("--world-catalogue", choices=CATALOGUES, default=None,
                       help="objects of the world: classic (10 uniform categories) or scannet (ScanNet's 18 classes "
                            "and small objects, textured, wall objects, room types, per-scene light)")


def world_from_args(args: argparse.Namespace) -> WorldConfig:
    """The ``WorldConfig`` the flags of ``add_world_arguments`` describe."""
    base = CONDITIONS[args.world]
    scene, render = base.scene, base.render
    if args.yaw_deg is not None:
        scene = dataclasses.replace(scene, yaw_deg=args.yaw_deg)
    if args.rooms is not None:
        scene = dataclasses.replace(scene, n_rooms=args.rooms)
    if args.touching:
        scene = dataclasses.replace(scene, **TOUCHING)
    if args.sensor is not None:
        render = SENSORS[args.sensor]()
    if getattr(args, "world_catalogue", None) is not None:
        scene = dataclasses.replace(scene, catalogue=args.world_catalogue)
    return WorldConfig(scene=scene, render=render)
