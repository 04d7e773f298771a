"""The ray caster against analytic geometry, the trajectory's coverage, and recordings on disk."""
import numpy as np
import pytest

from w2r2_ros.geometry.boxes import Box3D
from w2r2_ros.geometry.camera import Intrinsics, depth_to_world_map, pixel_rays, project_points
from w2r2_ros.geometry.transforms import look_at
from w2r2_ros.sim.recording import FRAMES_FILE, SCENE_FILE, load_recording, record_scene, save_recording
from w2r2_ros.sim.render import RenderConfig, render_rgbd
from w2r2_ros.sim.trajectory import orbit_trajectory
from w2r2_ros.sim.world import ObjectSpec, SceneSpec, generate_scene

K_SMALL = Intrinsics.from_fov(128, 96, 70.0)
K_MEDIUM = Intrinsics.from_fov(320, 240, 70.0)


def _cube_scene(centers: list[tuple[float, float, float]], size: float = 0.4) -> SceneSpec:
    objects = []
    for i, c in enumerate(centers):
        box = Box3D(center=np.array(c, dtype=float), size=np.full(3, size))
        objects.append(ObjectSpec(i, "box", "red", (200, 40, 40), box, [box], (1.0,)))
    return SceneSpec(scene_id="cubes", room_size=np.array([6.0, 5.0, 2.6]), objects=objects)


def test_depth_along_the_optical_axis_is_the_analytic_distance() -> None:
    scene = _cube_scene([(1.5, 0.0, 1.0)], size=0.4)
    eye = np.array([-1.0, 0.0, 1.0])
    frame = render_rgbd(scene, K_MEDIUM, look_at(eye, eye + [1.0, 0.0, 0.0]))
    v, u = int(K_MEDIUM.cy), int(K_MEDIUM.cx)
    assert frame.depth[v, u] == pytest.approx(1.5 - 0.2 - (-1.0), abs=1e-4)
    assert frame.instance[v, u] == 0
    # Above the cube the ray reaches the far wall (x = +3): depth is the distance along the optical axis.
    assert frame.depth[v - 40, u] == pytest.approx(3.0 - (-1.0), abs=1e-3)
    assert frame.instance[v - 40, u] == -1
    # Looking down at 45 degrees from 1.2 m: the floor is 1.2 m along the axis ... times sqrt(2).
    down = render_rgbd(scene, K_SMALL, look_at(np.array([-1.0, 0.0, 1.2]), np.array([-2.0, 0.0, 0.2])))
    assert down.depth[int(K_SMALL.cy), int(K_SMALL.cx)] == pytest.approx(1.2 * np.sqrt(2.0), abs=2e-2)


def test_instance_map_matches_projected_box_centres() -> None:
    centers = [(0.5, 1.0, 0.8), (2.0, -0.8, 1.2), (1.2, 0.0, 0.3)]
    scene = _cube_scene(centers, size=0.3)
    pose = look_at(np.array([-2.0, 0.0, 1.3]), np.array([1.0, 0.0, 0.8]))
    frame = render_rgbd(scene, K_MEDIUM, pose)
    uv, z = project_points(np.array(centers), K_MEDIUM, pose)
    assert np.all(z > 0)
    for object_id, (u, v) in enumerate(np.round(uv).astype(int)):
        assert frame.instance[v, u] == object_id


def test_back_projected_depth_lands_in_the_boxes_of_its_instances() -> None:
    scene = generate_scene("scene_0002", seed=3)
    poses = orbit_trajectory(scene, 4, seed=3)
    boxes = scene.boxes()
    for pose in poses:
        frame = render_rgbd(scene, K_MEDIUM, pose)
        assert frame.rgb.shape == (240, 320, 3) and frame.rgb.dtype == np.uint8
        assert frame.depth.dtype == np.float32 and frame.instance.dtype == np.int32
        assert np.all(frame.depth > 0)  # a closed room: every ray hits something
        world = depth_to_world_map(frame.depth, K_MEDIUM, pose)
        for object_id in np.unique(frame.instance[frame.instance >= 0]):
            points = world[frame.instance == object_id]
            lo = boxes[object_id, :3] - boxes[object_id, 3:] / 2 - 2e-3
            hi = boxes[object_id, :3] + boxes[object_id, 3:] / 2 + 2e-3
            assert np.all((points >= lo) & (points <= hi)), object_id
        room = world[frame.instance == -1]
        half = np.array([scene.room_size[0] / 2, scene.room_size[1] / 2])
        on_wall = np.abs(np.abs(room[:, :2]) - half).min(axis=1) < 2e-3
        on_floor_or_ceiling = (np.abs(room[:, 2]) < 2e-3) | (np.abs(room[:, 2] - scene.room_size[2]) < 2e-3)
        assert np.all(on_wall | on_floor_or_ceiling)


def _brute_force_depth(scene: SceneSpec, intrinsics: Intrinsics, pose: np.ndarray) -> np.ndarray:
    """Every ray against every part and the room, no culling: the reference for the fast renderer."""
    rays = pixel_rays(intrinsics).reshape(-1, 3).astype(np.float64) @ pose[:3, :3].T
    origin = pose[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / rays
        room_hi = scene.room_size * np.array([0.5, 0.5, 1.0])
        room_lo = room_hi * np.array([-1.0, -1.0, 0.0])
        best = np.maximum((room_lo - origin) * inv, (room_hi - origin) * inv).min(axis=1)
        for obj in scene.objects:
            for part in obj.parts:
                t1, t2 = (part.min_corner - origin) * inv, (part.max_corner - origin) * inv
                enter, leave = np.minimum(t1, t2).max(axis=1), np.maximum(t1, t2).min(axis=1)
                hit = (enter <= leave) & (enter > 0.02)
                best = np.where(hit & (enter < best), enter, best)
    return best.reshape(intrinsics.height, intrinsics.width)


def test_screen_space_culling_matches_brute_force_ray_casting() -> None:
    scene = generate_scene("scene_0006", seed=2)
    poses = orbit_trajectory(scene, 3, seed=2)
    # Also a camera right beside an object, so some parts cross the near plane and leave the view.
    table = scene.boxes()[0]
    eye = table[:3] + np.array([table[3] / 2 + 0.05, 0.0, table[5] / 2 + 0.3])
    poses.append(look_at(eye, table[:3] + np.array([-0.5, 0.3, 0.0])))
    for pose in poses:
        depth = render_rgbd(scene, K_SMALL, pose).depth
        np.testing.assert_allclose(depth, _brute_force_depth(scene, K_SMALL, pose), rtol=1e-4, atol=1e-4)


def test_faces_facing_the_light_are_brighter_and_other_resolutions_work() -> None:
    scene = _cube_scene([(1.0, 0.0, 0.2)], size=0.4)
    pose = look_at(np.array([-0.5, -1.0, 1.5]), np.array([1.0, 0.0, 0.2]))
    for intrinsics in (K_SMALL, K_MEDIUM, Intrinsics.from_fov(200, 100, 90.0)):
        frame = render_rgbd(scene, intrinsics, pose)
        assert frame.depth.shape == (intrinsics.height, intrinsics.width)
        cube = frame.rgb[frame.instance == 0].astype(int)
        # Top, front and side faces are visible with distinct Lambertian shades.
        assert len(np.unique(cube[:, 0])) >= 3


def test_camera_outside_the_room_is_rejected() -> None:
    scene = _cube_scene([(1.0, 0.0, 0.2)])
    with pytest.raises(ValueError, match="outside the room"):
        render_rgbd(scene, K_SMALL, look_at(np.array([10.0, 0.0, 1.0]), np.zeros(3)))


def test_depth_noise_is_off_by_default_and_configurable() -> None:
    scene = _cube_scene([(1.0, 0.0, 0.2)])
    pose = look_at(np.array([-1.0, 0.0, 1.4]), np.array([1.0, 0.0, 0.2]))
    clean = render_rgbd(scene, K_SMALL, pose)
    np.testing.assert_array_equal(clean.depth, render_rgbd(scene, K_SMALL, pose).depth)
    noisy_config = RenderConfig(depth_noise_per_m2=0.01, dropout_fraction=0.1, max_depth_m=4.0)
    noisy = render_rgbd(scene, K_SMALL, pose, noisy_config, np.random.default_rng(1))
    valid = noisy.depth > 0
    assert 0.05 < 1 - valid.mean() < 0.5
    error = (noisy.depth - clean.depth)[valid]
    assert 0.001 < np.std(error) < 0.2 and noisy.depth.max() <= 4.0


def test_orbit_sees_every_object_from_several_views() -> None:
    for name in ("scene_0000", "scene_0001", "scene_0005"):
        scene = generate_scene(name, seed=0)
        poses = orbit_trajectory(scene, 12, seed=0)
        assert len(poses) == 12
        heights = np.array([p[2, 3] for p in poses])
        assert np.all((heights > 1.2) & (heights < 1.7))
        views = np.zeros(len(scene.objects), int)
        for pose in poses:
            np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
            instance = render_rgbd(scene, K_SMALL, pose).instance
            ids, counts = np.unique(instance[instance >= 0], return_counts=True)
            views[ids[counts >= 4]] += 1
        assert np.mean(views >= 2) >= 0.85, views
        np.testing.assert_array_equal(np.stack(orbit_trajectory(scene, 12, seed=0)), np.stack(poses))


def test_recording_round_trips_through_disk_and_rejects_bad_files(tmp_path) -> None:
    scene = generate_scene("scene_0001", seed=0)
    rec = record_scene(scene, n_frames=3, intrinsics=K_SMALL, fps=10.0)
    np.testing.assert_allclose(np.diff(rec.stamps), 0.1, atol=1e-6)
    assert rec.poses.shape == (3, 4, 4) and len(rec) == 3
    save_recording(rec, tmp_path / "rec")
    back = load_recording(tmp_path / "rec")
    assert back.intrinsics == rec.intrinsics and back.scene.to_dict() == scene.to_dict()
    np.testing.assert_array_equal(back.stamps, rec.stamps)
    np.testing.assert_array_equal(back.poses, rec.poses)
    for a, b in zip(back.frames, rec.frames):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.instance, b.instance)

    (tmp_path / "rec" / FRAMES_FILE).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=FRAMES_FILE):
        load_recording(tmp_path / "rec")
    save_recording(rec, tmp_path / "rec")
    (tmp_path / "rec" / SCENE_FILE).write_text("{")
    with pytest.raises(ValueError, match=SCENE_FILE):
        load_recording(tmp_path / "rec")
    wrong = record_scene(scene, n_frames=3, intrinsics=K_SMALL.scaled(64, 48), fps=10.0)
    save_recording(wrong, tmp_path / "wrong")
    save_recording(rec, tmp_path / "rec")
    (tmp_path / "rec" / FRAMES_FILE).write_bytes((tmp_path / "wrong" / FRAMES_FILE).read_bytes())
    with pytest.raises(ValueError, match="'rgb' has shape"):
        load_recording(tmp_path / "rec")
