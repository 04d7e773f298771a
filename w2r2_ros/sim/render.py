"""Exact RGB-D rendering of a synthetic room by ray casting against axis-aligned boxes.

Every pixel's ray is intersected with the room (the camera is inside it, so the
ray leaves through a wall, the floor or the ceiling) and with the box parts of
the objects (slab test). Speed comes from testing each part only against the
pixels inside its projected screen rectangle: parts outside the view frustum
cost nothing and no ray meets every part. All per-pixel work is float32 numpy.

Depth is the optical-axis distance (z in the optical frame), as an RGB-D sensor
reports it; rays are built with z = 1 in the camera frame, so the ray parameter
of a hit *is* its depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from w2r2_ros.geometry.boxes import BOX_EDGES
from w2r2_ros.geometry.camera import Intrinsics, pixel_rays
from w2r2_ros.sim import depth_sensor
from w2r2_ros.sim.appearance import FLOOR_STYLES, MATERIAL_CODE, Lighting, apply_materials, floor_factor
from w2r2_ros.sim.world import SceneSpec

# Face index = 2 * axis + (1 if the outward normal points to +axis else 0).
_FACE_NORMALS = np.array(
    [[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], dtype=np.float32
)
_NO_PART = -1
_ROOM_PART = -2
_STRUCTURE_ID = -1  # object id of the walls between rooms: rendered as room, instance -1


@dataclass(frozen=True)
class RenderConfig:
    """Shading and depth-sensor settings; the defaults give an exact, noise-free frame.

    Depth noise has sigma ``depth_noise_base_m + depth_noise_per_m2 * (z -
    depth_noise_offset_m)^2`` (structured-light sensors degrade quadratically
    with range; ``structured_light()`` has the Kinect's measured values).
    ``dropout_fraction``: share of pixels whose depth is set invalid (0), at
    random. ``dark_hole_luminance`` / ``dark_hole_probability``: pixels darker
    than that luminance (0-255) lose their depth with that probability.
    ``grazing_hole_deg``: beyond this angle of incidence depth drops out, more
    often the flatter the view (0: off). ``flying_pixel_probability``: chance
    that a pixel beside a depth edge (a jump of more than
    ``depth_edge_fraction`` of its depth) reports a depth in between.
    ``max_depth_m``: depth beyond it is invalid (0 means no limit). See
    ``depth_sensor`` for the models.
    """

    light_direction: tuple[float, float, float] = (0.35, 0.55, 1.0)
    ambient: float = 0.3
    floor_tile_m: float = 0.6
    near_m: float = 0.02
    depth_noise_per_m2: float = 0.0
    dropout_fraction: float = 0.0
    max_depth_m: float = 0.0
    depth_noise_base_m: float = 0.0
    depth_noise_offset_m: float = 0.0
    dark_hole_luminance: float = 0.0
    dark_hole_probability: float = 0.0
    grazing_hole_deg: float = 0.0
    flying_pixel_probability: float = 0.0
    depth_edge_fraction: float = 0.05

    @classmethod
    def structured_light(cls) -> "RenderConfig":
        """A Kinect-like structured-light sensor: sigma = 0.0012 + 0.0019 (z - 0.4)^2 m (Nguyen et al. 2012),
        holes on black surfaces and beyond 75 degrees of incidence, flying pixels at half the depth edges,
        0.5 % random dropout."""
        return cls(
            depth_noise_base_m=0.0012,
            depth_noise_per_m2=0.0019,
            depth_noise_offset_m=0.4,
            dropout_fraction=0.005,
            dark_hole_luminance=40.0,
            dark_hole_probability=0.6,
            grazing_hole_deg=75.0,
            flying_pixel_probability=0.5,
        )


@dataclass(frozen=True)
class RenderedFrame:
    """One RGB-D frame: ``rgb`` uint8 (H, W, 3), ``depth`` float32 metres (0 invalid),
    ``instance`` int32 (-1 for the room, else the object's ``object_id``)."""

    rgb: np.ndarray
    depth: np.ndarray
    instance: np.ndarray


@dataclass(frozen=True)
class _SceneParts:
    lo: np.ndarray  # (P, 3) float32
    hi: np.ndarray  # (P, 3) float32
    object_id: np.ndarray  # (P,) int32
    rgb: np.ndarray  # (P, 3) float32, object colour (or second colour) times the part's tone
    material: np.ndarray  # (P,) int8 code of ``appearance.MATERIALS`` (0: a uniform fill)


def _scene_parts(scene: SceneSpec) -> _SceneParts:
    """Object parts, then the walls between rooms (object id ``_STRUCTURE_ID``, wall colour)."""
    lo, hi, ids, rgb, material = [], [], [], [], []
    for obj in scene.objects:
        tones = obj.part_tones or (1.0,) * len(obj.parts)
        for k, (part, tone) in enumerate(zip(obj.parts, tones)):
            lo.append(part.min_corner)
            hi.append(part.max_corner)
            ids.append(obj.object_id)
            rgb.append(np.asarray(obj.part_rgb(k), dtype=np.float32) * tone)
            material.append(MATERIAL_CODE[obj.part_material(k)])
    for part in scene.structure:
        lo.append(part.min_corner)
        hi.append(part.max_corner)
        ids.append(_STRUCTURE_ID)
        rgb.append(np.asarray(scene.wall_rgb, dtype=np.float32))
        material.append(0)
    if not lo:
        empty = np.zeros((0, 3), np.float32)
        return _SceneParts(empty, empty, np.zeros(0, np.int32), empty, np.zeros(0, np.int8))
    return _SceneParts(
        np.asarray(lo, np.float32), np.asarray(hi, np.float32), np.asarray(ids, np.int32), np.asarray(rgb, np.float32),
        np.asarray(material, np.int8),
    )


@lru_cache(maxsize=8)
def _camera_rays(intrinsics: Intrinsics) -> np.ndarray:
    """Camera-frame x and y of the z = 1 ray of every pixel, as planes (2, H, W)."""
    rays = np.ascontiguousarray(np.moveaxis(pixel_rays(intrinsics)[..., :2], -1, 0), dtype=np.float32)
    rays.setflags(write=False)
    return rays


_BOX_EDGES = np.array(BOX_EDGES)  # corner k is at the max along axis a when bit a of k is set


def _screen_rects(parts: _SceneParts, intrinsics: Intrinsics, world_to_cam: np.ndarray, near: float) -> np.ndarray:
    """Pixel rectangle ``[u0, u1, v0, v1)`` each part can cover; empty when outside the frustum.

    A box that crosses the near plane is clipped to it first (its edges are cut
    at z = near), so a part beside the camera does not cost a full-image test.
    """
    n = len(parts.lo)
    corners = np.empty((n, 8, 3), np.float64)
    for k in range(8):
        corners[:, k] = np.where([(k >> a) & 1 for a in range(3)], parts.hi, parts.lo)
    cam = corners @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    start, end = cam[:, _BOX_EDGES[:, 0]], cam[:, _BOX_EDGES[:, 1]]  # (n, 12, 3)
    dz = end[..., 2] - start[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(dz != 0, (near - start[..., 2]) / dz, -1.0)
    crossing = (s > 0) & (s < 1)
    cut = start + np.clip(s, 0, 1)[..., None] * (end - start)
    points = np.concatenate([cam, cut], axis=1)  # (n, 20, 3)
    usable = np.concatenate([cam[..., 2] >= near, crossing], axis=1)
    z = np.where(usable, np.maximum(points[..., 2], near), 1.0)
    u = intrinsics.fx * points[..., 0] / z + intrinsics.cx
    v = intrinsics.fy * points[..., 1] / z + intrinsics.cy
    big = 1e9
    rects = np.stack(
        [
            np.floor(np.where(usable, u, big).min(axis=1)) - 1,
            np.ceil(np.where(usable, u, -big).max(axis=1)) + 2,
            np.floor(np.where(usable, v, big).min(axis=1)) - 1,
            np.ceil(np.where(usable, v, -big).max(axis=1)) + 2,
        ],
        axis=1,
    )
    rects[:, :2] = np.clip(rects[:, :2], 0, intrinsics.width)
    rects[:, 2:] = np.clip(rects[:, 2:], 0, intrinsics.height)
    return rects.astype(np.int64)


def _face_shades(config: RenderConfig, lighting: Lighting | None = None) -> np.ndarray:
    """Brightness of each of the six face orientations, from the scene's own light when it has one.

    Half-Lambert (``0.5 n.l + 0.5``) instead of a clamped ``n.l``: faces turned
    away from the light keep distinct shades, so every visible side of a box
    reads as its own plane.
    """
    direction, ambient = (config.light_direction, config.ambient) if lighting is None else (lighting.direction, lighting.ambient)
    light = np.asarray(direction, dtype=np.float32)
    light /= np.linalg.norm(light)
    return ambient + (1.0 - ambient) * (0.5 * (_FACE_NORMALS @ light) + 0.5)


def render_rgbd(
    scene: SceneSpec,
    intrinsics: Intrinsics,
    cam_to_world: np.ndarray,
    config: RenderConfig = RenderConfig(),
    rng: np.random.Generator | None = None,
) -> RenderedFrame:
    """Render the scene seen by a camera (4x4 camera-to-map pose of its optical frame).

    The camera must be inside a room (not in a wall). ``rng`` drives the
    optional sensor effects (seeded 0 when omitted, so a frame is reproducible).
    Rendering happens in the room frame: the pose is turned back by the
    scene's yaw first, so the image of a turned room is the same as that of the
    unturned room seen by the unturned camera.
    """
    cam_to_world = np.asarray(cam_to_world, dtype=np.float64)
    if cam_to_world.shape != (4, 4) or not np.all(np.isfinite(cam_to_world)):
        raise ValueError(f"cam_to_world must be a finite 4x4 matrix, got shape {cam_to_world.shape}")
    if scene.yaw_deg != 0.0:
        cam_to_world = np.linalg.inv(scene.room_to_map()) @ cam_to_world
    room_hi = np.asarray(scene.room_size, dtype=np.float64) * np.array([0.5, 0.5, 1.0])
    room_lo = room_hi * np.array([-1.0, -1.0, 0.0])
    eye = cam_to_world[:3, 3]
    in_wall = any(np.all(eye >= part.min_corner) and np.all(eye <= part.max_corner) for part in scene.structure)
    if np.any(eye <= room_lo) or np.any(eye >= room_hi) or in_wall:
        raise ValueError(f"camera at {np.round(eye, 3).tolist()} (room frame) is outside the rooms of scene {scene.scene_id}")

    rotation = cam_to_world[:3, :3].astype(np.float32)
    ray_x, ray_y = _camera_rays(intrinsics)
    # One contiguous (H, W) plane per axis: elementwise float32 ops, no reductions over a length-3 axis.
    # Camera-frame rays have z = 1, so the ray parameter of a hit is its depth.
    dirs = np.stack([rotation[i, 0] * ray_x + rotation[i, 1] * ray_y + rotation[i, 2] for i in range(3)])
    with np.errstate(divide="ignore"):
        inv = 1.0 / dirs  # +-inf for rays parallel to an axis plane: the slab test stays exact
    origin = eye.astype(np.float32)

    zbuf, face = _cast_room(inv, origin, room_lo.astype(np.float32), room_hi.astype(np.float32))
    parts = _scene_parts(scene)
    part_index = np.full(zbuf.shape, _ROOM_PART, np.int32)
    rects = _screen_rects(parts, intrinsics, np.linalg.inv(cam_to_world), config.near_m)
    _cast_parts(parts, rects, inv, origin, config.near_m, zbuf, part_index)
    hits = origin[:, None, None] + zbuf * dirs  # (3, H, W) map-frame surface points
    on_object = part_index >= 0
    face[on_object] = _object_faces(parts, part_index[on_object], hits[:, on_object])

    rgb = _shade(scene, parts, part_index, face, hits, config)
    instance = np.full(zbuf.shape, -1, np.int32)
    instance[on_object] = parts.object_id[part_index[on_object]]
    depth = _sensor_depth(zbuf, config, rng, rgb, face, dirs)
    return RenderedFrame(rgb=rgb, depth=depth, instance=instance)


def _cast_room(
    inv: np.ndarray, origin: np.ndarray, room_lo: np.ndarray, room_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Depth and face of the room surface each ray leaves through (camera inside the room)."""
    positive = inv > 0
    exits = [(np.where(positive[a], room_hi[a], room_lo[a]) - origin[a]) * inv[a] for a in range(3)]
    zbuf = np.minimum(np.minimum(exits[0], exits[1]), exits[2])
    axis = np.where(exits[0] == zbuf, 0, np.where(exits[1] == zbuf, 1, 2))
    # A ray leaving through the +axis side sees the inner face whose normal points to -axis.
    leaves_positive = np.take_along_axis(positive, axis[None], axis=0)[0]
    face = (2 * axis + ~leaves_positive).astype(np.int8)
    return zbuf, face


def _cast_parts(
    parts: _SceneParts,
    rects: np.ndarray,
    inv: np.ndarray,
    origin: np.ndarray,
    near: float,
    zbuf: np.ndarray,
    part_index: np.ndarray,
) -> None:
    """Slab test of every part against the rays of its screen rectangle; updates the z-buffer in place."""
    for p, (u0, u1, v0, v1) in enumerate(rects):
        if u1 <= u0 or v1 <= v0:
            continue
        sub_inv = inv[:, v0:v1, u0:u1]
        t_enter = t_exit = None
        for a in range(3):
            t_lo = sub_inv[a] * (parts.lo[p, a] - origin[a])
            t_hi = sub_inv[a] * (parts.hi[p, a] - origin[a])
            lower, upper = np.minimum(t_lo, t_hi), np.maximum(t_lo, t_hi, out=t_hi)
            if t_enter is None:
                t_enter, t_exit = lower, upper
            else:
                np.maximum(t_enter, lower, out=t_enter)
                np.minimum(t_exit, upper, out=t_exit)
        sub_z = zbuf[v0:v1, u0:u1]
        hit = (t_enter <= t_exit) & (t_enter > near) & (t_enter < sub_z)
        np.copyto(sub_z, t_enter, where=hit)
        np.copyto(part_index[v0:v1, u0:u1], p, where=hit)


def _object_faces(parts: _SceneParts, part_of_pixel: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Face index of the part face each hit point (3, N) lies on: the nearest of its box's six planes."""
    distances = np.empty((6, len(part_of_pixel)), np.float32)
    distances[0::2] = np.abs(points - parts.lo[part_of_pixel].T)
    distances[1::2] = np.abs(points - parts.hi[part_of_pixel].T)
    return distances.argmin(axis=0).astype(np.int8)


def _shade(
    scene: SceneSpec, parts: _SceneParts, part_index: np.ndarray, face: np.ndarray, hits: np.ndarray, config: RenderConfig
) -> np.ndarray:
    """Half-Lambert colour from the face normal, with floor tiles and a skirting board for texture.

    Every (material, face) pair has one colour, so shading is a single lookup
    into a small table; the room's materials are wall, skirting, two floor
    tiles and ceiling.
    """
    n = len(parts.rgb)
    wall, skirting, tile, ceiling = n, n + 1, n + 2, n + 4
    floor_rgb = np.asarray(scene.floor_rgb, dtype=np.float32)
    palette = np.concatenate(
        [
            parts.rgb,
            np.asarray([scene.wall_rgb], dtype=np.float32),
            0.75 * np.asarray([scene.wall_rgb], dtype=np.float32),
            np.stack([floor_rgb, 0.9 * floor_rgb]),
            np.asarray([scene.ceiling_rgb], dtype=np.float32),
        ]
    )
    table = np.zeros((len(palette), 6, 4), np.uint8)  # RGB + pad: one uint32 per entry gathers fast
    table[..., :3] = np.clip(palette[:, None, :] * _face_shades(config, scene.lighting)[None, :, None], 0, 255)

    # Room faces by inner normal: 5 (+z) is the floor, 4 (-z) the ceiling, 0-3 the walls.
    tile_x, tile_y = (np.floor(hits[a] / config.floor_tile_m).astype(np.int32) for a in (0, 1))
    checker = (tile_x + tile_y) & 1
    room_material = np.where(
        face == 5, tile + checker, np.where(face == 4, ceiling, np.where(hits[2] < 0.1, skirting, wall))
    )
    is_room = part_index == _ROOM_PART
    if len(scene.structure):  # walls between rooms are room surfaces (skirting included)
        is_room |= (part_index >= 0) & (parts.object_id[np.maximum(part_index, 0)] == _STRUCTURE_ID)
    material = np.where(is_room, room_material, part_index)
    packed = np.take(table.view(np.uint32).reshape(-1), material * 6 + face)
    rgb = np.ascontiguousarray(packed[..., None].view(np.uint8)[..., :3])
    if scene.lighting is not None or parts.material.any():
        floor = (part_index == _ROOM_PART) & (face == 5)
        floor_rgb = floor_rgb * _face_shades(config, scene.lighting)[5]
        rgb = _light_and_texture(scene, parts, part_index, hits, rgb, floor, floor_rgb)
    return rgb


def _light_and_texture(
    scene: SceneSpec,
    parts: _SceneParts,
    part_index: np.ndarray,
    hits: np.ndarray,
    rgb: np.ndarray,
    floor: np.ndarray,
    floor_rgb: np.ndarray,
) -> np.ndarray:
    """The richer worlds' appearance (``appearance``): material textures on object pixels, each room's floor by its
    type (``floor`` marks floor pixels, ``floor_rgb`` the lit floor colour), the light's gain on all pixels. A
    scene without lighting or materials never comes here, so the classic world is unchanged."""
    lighting = scene.lighting
    gain = np.ones(3, np.float32) if lighting is None else np.asarray(lighting.tint, np.float32) * lighting.intensity
    out = rgb.astype(np.float32)
    on_part = part_index >= 0
    codes = np.zeros(part_index.shape, np.int8)
    codes[on_part] = parts.material[part_index[on_part]]
    textured = codes > 0
    if textured.any():
        index = part_index[textured]
        long_axis = np.argmax(parts.hi[index] - parts.lo[index], axis=1)
        out[textured] = apply_materials(out[textured], codes[textured], hits[:, textured], long_axis)
    if scene.room_types and floor.any():
        points = hits[:, floor]
        rects = scene.room_rects()
        room = np.zeros(points.shape[1], np.int64)
        for k, rect in enumerate(rects[1:], start=1):
            room[(points[0] >= rect[0]) & (points[0] <= rect[2]) & (points[1] >= rect[1]) & (points[1] <= rect[3])] = k
        factor = np.ones(points.shape[1], np.float32)
        for k, room_type in enumerate(scene.room_types):
            mine = room == k
            factor[mine] = floor_factor(points[:, mine], FLOOR_STYLES[room_type])
        out[floor] = floor_rgb[None] * factor[:, None]
    out *= gain
    return np.clip(out, 0, 255).astype(np.uint8)


def _sensor_depth(
    zbuf: np.ndarray,
    config: RenderConfig,
    rng: np.random.Generator | None,
    rgb: np.ndarray,
    face: np.ndarray,
    dirs: np.ndarray,
) -> np.ndarray:
    """The exact depth through the sensor effects that ``config`` switches on (``depth_sensor``)."""
    depth = np.where(np.isfinite(zbuf), zbuf, 0.0).astype(np.float32)
    holes_on = config.dark_hole_probability > 0 or config.grazing_hole_deg > 0
    if config.depth_noise_per_m2 > 0 or config.depth_noise_base_m > 0 or config.dropout_fraction > 0 or holes_on or (
        config.flying_pixel_probability > 0
    ):
        rng = rng if rng is not None else np.random.default_rng(0)
        if config.depth_noise_per_m2 > 0 or config.depth_noise_base_m > 0:
            depth = depth_sensor.range_noise(
                depth, config.depth_noise_base_m, config.depth_noise_per_m2, config.depth_noise_offset_m, rng
            )
        if config.dropout_fraction > 0:
            depth[rng.random(depth.shape) < config.dropout_fraction] = 0.0
        if config.flying_pixel_probability > 0:
            depth = depth_sensor.flying_pixels(depth, config.depth_edge_fraction, config.flying_pixel_probability, rng)
        if config.dark_hole_probability > 0:
            depth[depth_sensor.dark_holes(rgb, config.dark_hole_luminance, config.dark_hole_probability, rng)] = 0.0
        if config.grazing_hole_deg > 0:
            normals = _FACE_NORMALS[face]  # (H, W, 3)
            cos = np.abs(np.einsum("hwc,chw->hw", normals, dirs)) / np.linalg.norm(dirs, axis=0)
            depth[depth_sensor.incidence_holes(cos, config.grazing_hole_deg, rng)] = 0.0
    if config.max_depth_m > 0:
        depth[depth > config.max_depth_m] = 0.0
    return depth
