"""The synthetic world's switchable real-world features: room yaw, several rooms, touching furniture, a depth sensor."""
import hashlib
import json
from itertools import combinations

import numpy as np
import pytest

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.geometry.camera import Intrinsics, depth_to_world_map
from w2r2_ros.geometry.transforms import look_at
from w2r2_ros.sim.conditions import CONDITIONS, TOUCHING, WorldConfig, add_world_arguments, world_from_args
from w2r2_ros.sim.render import RenderConfig, render_rgbd
from w2r2_ros.sim.trajectory import orbit_trajectory
from w2r2_ros.sim.world import ObjectSpec, SceneConfig, SceneSpec, generate_scene

K_SMALL = Intrinsics.from_fov(128, 96, 70.0)
K_MEDIUM = Intrinsics.from_fov(320, 240, 70.0)


def _parts_intersect(a: Box3D, b: Box3D, tolerance: float = 1e-6) -> bool:
    return bool(np.all(np.minimum(a.max_corner, b.max_corner) - np.maximum(a.min_corner, b.min_corner) > tolerance))


def _rounded(value):
    """``value`` (nested dicts, lists, floats) with every float rounded to 1e-9: OpenBLAS's matrix products
    differ in the last bit between CPUs (its AVX-512 kernels or its AVX2 ones), which a hash of the raw
    floats sees. Checked on 2026-12-04: with ``OPENBLAS_CORETYPE=Haswell`` and
    ``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL"`` the raw hash is the original one (7fedc423...), without
    them another (5ffc11a6...), and the rounded hash below is the same in both."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return round(value, 9) if isinstance(value, float) else value


def test_the_default_world_is_the_original_one() -> None:
    """Scenes and poses of the default config hash to what the generator made before the features existed
    (rounded to 1e-9, ``_rounded``: the raw floats' hash changed on a machine with AVX-512, the world did not)."""
    digest = hashlib.sha256()
    for i in range(30):
        scene = generate_scene(f"scene_{i:04d}", seed=i % 4)
        digest.update(json.dumps(_rounded(scene.to_dict())).encode())
        digest.update(json.dumps(_rounded(np.stack(orbit_trajectory(scene, 12, seed=i)).tolist())).encode())
        digest.update(json.dumps(_rounded(scene.boxes().tolist())).encode())
    assert digest.hexdigest() == "f4103af51183e77fe887e204bce1bae53e7ecc42a482e0c74dd637d3c1912046"
    assert WorldConfig().changes() == {} and CONDITIONS["axis_aligned"] == WorldConfig()


@pytest.mark.parametrize("yaw", [5.0, 77.0, 243.0])
def test_a_turned_room_is_the_same_room_seen_in_a_turned_map(yaw: float) -> None:
    plain = generate_scene("turned", seed=2)
    turned = generate_scene("turned", seed=2, config=SceneConfig(yaw_deg=(yaw, yaw)))
    assert turned.yaw_deg == yaw
    np.testing.assert_array_equal(turned.local_boxes(), plain.local_boxes())
    # Ground truth in the map: the room-frame boxes turned by the yaw; their axis-aligned bounds hold every part corner.
    rotation = turned.room_to_map()[:3, :3]
    oriented = turned.oriented_boxes()
    np.testing.assert_allclose(oriented[:, :3], plain.local_boxes()[:, :3] @ rotation.T, atol=1e-12)
    np.testing.assert_allclose(oriented[:, 6], np.deg2rad(yaw))
    for obj, bounds in zip(turned.objects, turned.boxes()):
        corners = np.array([[x, y, z] for x in obj.box.min_corner[0:1].tolist() + obj.box.max_corner[0:1].tolist()
                            for y in (obj.box.min_corner[1], obj.box.max_corner[1]) for z in (obj.box.min_corner[2], obj.box.max_corner[2])])
        in_map = corners @ rotation.T
        np.testing.assert_allclose(in_map.min(axis=0), bounds[:3] - bounds[3:] / 2, atol=1e-9)
        np.testing.assert_allclose(in_map.max(axis=0), bounds[:3] + bounds[3:] / 2, atol=1e-9)
    # The camera poses turn with the room and the images stay the same.
    poses, turned_poses = orbit_trajectory(plain, 3, seed=1), orbit_trajectory(turned, 3, seed=1)
    for pose, turned_pose in zip(poses, turned_poses):
        np.testing.assert_allclose(turned_pose, turned.room_to_map() @ pose, atol=1e-12)
        a, b = render_rgbd(plain, K_SMALL, pose), render_rgbd(turned, K_SMALL, turned_pose)
        assert np.mean(np.all(a.rgb == b.rgb, axis=-1)) > 0.995 and np.mean(a.instance == b.instance) > 0.995
        np.testing.assert_allclose(np.median(np.abs(a.depth - b.depth)), 0.0, atol=1e-5)
    # Back-projected depth lands in the map where the turned objects are.
    frame = render_rgbd(turned, K_SMALL, turned_poses[0])
    points = depth_to_world_map(frame.depth, K_SMALL, turned_poses[0])
    for object_id in set(np.unique(frame.instance)) - {-1}:
        on_object = points[frame.instance == object_id]
        box = turned.boxes()[object_id]
        inside = np.all(np.abs(on_object - box[:3]) <= box[3:] / 2 + 1e-3, axis=1)
        assert inside.mean() > 0.99, object_id


def test_a_yaw_range_draws_yaws_anywhere_in_a_full_turn() -> None:
    yaws = [generate_scene(f"yaw{i}", 0, SceneConfig(yaw_deg=(0.0, 360.0))).yaw_deg for i in range(40)]
    assert all(0.0 <= y < 360.0 for y in yaws) and max(yaws) - min(yaws) > 270.0


@pytest.mark.parametrize("n_rooms", [2, 3])
def test_connected_rooms_have_walls_with_doorways_and_furniture_in_each_room(n_rooms: int) -> None:
    for i in range(6):
        scene = generate_scene(f"rooms{i}", seed=i, config=SceneConfig(n_rooms=(n_rooms, n_rooms)))
        rooms = scene.room_rects()
        assert len(rooms) == n_rooms
        assert SceneSpec.from_dict(json.loads(json.dumps(scene.to_dict()))).to_dict() == scene.to_dict()
        # Rooms do not overlap; walls (structure) fill the shell between them, lintels mark the doorways.
        for a, b in combinations(rooms, 2):
            assert np.any(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]) <= 0)
        lintels = [part for part in scene.structure if part.min_corner[2] > 1.5]
        assert len(lintels) >= n_rooms - 1
        for lintel in lintels:  # a doorway is 0.8-1.1 m wide, under a lintel that reaches the ceiling
            assert 0.8 - 1e-9 <= max(lintel.size[:2]) <= 1.1 + 1e-9
            assert lintel.max_corner[2] == pytest.approx(scene.room_size[2])
        # Each room is furnished; every object stands inside one room and clear of the walls.
        per_room = np.zeros(n_rooms, int)
        for obj in scene.objects:
            lo, hi = obj.box.min_corner[:2], obj.box.max_corner[:2]
            inside = np.all(lo >= rooms[:, :2] - 1e-9, axis=1) & np.all(hi <= rooms[:, 2:] + 1e-9, axis=1)
            assert inside.sum() == 1, obj.object_id
            per_room[int(np.argmax(inside))] += 1
            assert not any(_parts_intersect(part, wall) for part in obj.parts for wall in scene.structure)
        assert np.all(per_room >= SceneConfig().n_objects[0])
        # The camera walks a loop in every room; every pose renders (it is never inside a wall).
        poses = orbit_trajectory(scene, 3 * n_rooms, seed=0)
        visited = {int(np.argmax(np.all((p[:2, 3] >= rooms[:, :2]) & (p[:2, 3] <= rooms[:, 2:]), axis=1))) for p in poses}
        assert visited == set(range(n_rooms))
        frame = render_rgbd(scene, K_SMALL, poses[0])
        assert np.all(frame.depth > 0)


def test_a_camera_can_see_through_a_doorway_into_the_next_room() -> None:
    scene = generate_scene("doorway", seed=1, config=SceneConfig(n_rooms=(2, 2), n_objects=(5, 5)))
    lintel = next(part for part in scene.structure if part.min_corner[2] > 1.5)
    door = lintel.center[:2]
    first, second = scene.room_rects()[0], scene.room_rects()[1]
    eye = np.array([(first[0] + first[2]) / 2, door[1], 1.2])
    frame = render_rgbd(scene, K_MEDIUM, look_at(eye, np.array([second[2] - 0.05, door[1], 1.0])))
    # The centre of the image is the far wall of the second room, further than the first room is long.
    centre = frame.depth[int(K_MEDIUM.cy), int(K_MEDIUM.cx)]
    assert centre > second[0] - eye[0] and frame.instance[int(K_MEDIUM.cy), int(K_MEDIUM.cx)] in (-1, *range(len(scene.objects)))
    assert centre == pytest.approx(second[2] - eye[0], abs=0.05) or frame.instance[int(K_MEDIUM.cy), int(K_MEDIUM.cx)] >= 0


def test_touching_furniture_tucks_chairs_under_tables_and_parts_never_intersect() -> None:
    config = SceneConfig(**TOUCHING)
    tucked = touching = 0
    for i in range(25):
        scene = generate_scene(f"touch{i}", seed=i, config=config)
        tables = [o for o in scene.objects if o.category == "table"]
        for a, b in combinations(scene.objects, 2):
            assert not any(_parts_intersect(p, q) for p in a.parts for q in b.parts), (scene.scene_id, a.object_id, b.object_id)
            if a.support_id is None and b.support_id is None:
                gap = np.maximum(a.box.min_corner - b.box.max_corner, b.box.min_corner - a.box.max_corner)[:2].max()
                touching += gap < 0.01
        for chair in (o for o in scene.objects if o.category == "chair"):
            for table in tables:
                overlap = np.minimum(chair.box.max_corner, table.box.max_corner) - np.maximum(chair.box.min_corner, table.box.min_corner)
                if np.all(overlap[:2] > 0.05):  # the seat is under the top, the back rises past its edge
                    tucked += 1
                    assert chair.box.max_corner[2] > table.box.max_corner[2] or chair.box.size[2] < table.box.size[2]
    assert tucked >= 10 and touching >= 25


def _wall_scene(distance: float, rgb: tuple[int, int, int] = (200, 200, 200)) -> tuple[SceneSpec, np.ndarray]:
    """A camera facing a big flat panel ``distance`` metres ahead."""
    panel = Box3D(center=np.array([distance + 0.05, 0.0, 1.2]), size=np.array([0.1, 4.0, 2.4]))
    scene = SceneSpec("panel", np.array([12.0, 6.0, 2.6]), [ObjectSpec(0, "box", "grey", rgb, panel, [panel], (1.0,))])
    return scene, look_at(np.array([0.0, 0.0, 1.2]), np.array([1.0, 0.0, 1.2]))


def test_structured_light_noise_grows_with_range_as_the_kinect_model() -> None:
    sensor = RenderConfig(depth_noise_base_m=0.0012, depth_noise_per_m2=0.0019, depth_noise_offset_m=0.4)
    for distance in (1.0, 3.0):
        scene, pose = _wall_scene(distance)
        clean = render_rgbd(scene, K_MEDIUM, pose)
        noisy = render_rgbd(scene, K_MEDIUM, pose, sensor, np.random.default_rng(0))
        centre = np.s_[100:140, 140:180]  # facing the panel squarely: depth = distance
        error = (noisy.depth - clean.depth)[centre]
        expected = 0.0012 + 0.0019 * (distance - 0.4) ** 2
        assert np.std(error) == pytest.approx(expected, rel=0.1), distance


def test_holes_on_dark_and_grazing_surfaces_and_flying_pixels_at_edges() -> None:
    white, pose = _wall_scene(2.0, (235, 235, 235))
    black, _ = _wall_scene(2.0, (30, 30, 30))
    dark = RenderConfig(dark_hole_luminance=40.0, dark_hole_probability=0.6)
    centre = np.s_[100:140, 140:180]
    assert np.all(render_rgbd(white, K_MEDIUM, pose, dark).depth[centre] > 0)
    black_holes = (render_rgbd(black, K_MEDIUM, pose, dark).depth[centre] == 0).mean()
    assert 0.5 < black_holes < 0.7
    # Looking along the floor: its far part is seen nearly edge-on and drops out, the near part stays.
    scene, _ = _wall_scene(9.0)
    low = look_at(np.array([-5.0, 0.0, 0.4]), np.array([0.0, 0.0, 0.2]))
    grazing = render_rgbd(scene, K_MEDIUM, low, RenderConfig(grazing_hole_deg=75.0)).depth
    clean = render_rgbd(scene, K_MEDIUM, low).depth
    bottom_rows, horizon_rows = np.s_[-10:, :], np.s_[130:140, :]
    assert (grazing[bottom_rows] == 0).mean() < 0.02 and (grazing[horizon_rows] == 0).mean() > 0.3
    assert np.all(clean > 0)
    # Flying pixels: only beside the panel's edge, and between its depth and the far wall's.
    edge_scene = SceneSpec("edge", np.array([12.0, 6.0, 2.6]), [ObjectSpec(0, "box", "grey", (200, 200, 200),
                           Box3D(np.array([2.0, 1.0, 1.2]), np.array([0.1, 2.0, 2.4])), [Box3D(np.array([2.0, 1.0, 1.2]), np.array([0.1, 2.0, 2.4]))], (1.0,))])
    exact = render_rgbd(edge_scene, K_MEDIUM, pose).depth
    flying = render_rgbd(edge_scene, K_MEDIUM, pose, RenderConfig(flying_pixel_probability=1.0), np.random.default_rng(0)).depth
    changed = flying != exact
    assert 50 < changed.sum() < 2000
    assert np.all((flying[changed] > 1.9) & (flying[changed] < exact.max() + 1e-3))
    padded = np.pad(exact, 1, mode="edge")
    jump = np.max(np.abs(np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]) - exact), axis=0)
    assert np.all(jump[changed] > 0.05 * exact[changed])


def test_world_flags_and_named_conditions() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_world_arguments(parser)
    assert world_from_args(parser.parse_args([])) == WorldConfig()
    world = world_from_args(parser.parse_args(["--yaw-deg", "0,360", "--rooms", "2", "--touching", "--sensor", "structured_light"]))
    assert world.scene.yaw_deg == (0.0, 360.0) and world.scene.n_rooms == (2, 2)
    assert world.scene.tucked_chair_probability > 0 and world.render == RenderConfig.structured_light()
    assert world_from_args(parser.parse_args(["--world", "yaw30"])).scene.yaw_deg == (30.0, 30.0)
    assert set(CONDITIONS) >= {"axis_aligned", "yaw5", "yaw30", "yaw45", "yaw77", "two_room", "touching", "sensor_noise", "all_combined"}
    combined = CONDITIONS["all_combined"]
    scene = generate_scene("combined", 0, combined.scene)
    assert scene.rooms is not None and scene.yaw_deg != 0.0
    with pytest.raises(ValueError, match="n_rooms"):
        SceneConfig(n_rooms=(1, 4))
