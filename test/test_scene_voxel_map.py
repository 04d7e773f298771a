"""The bounded hashed voxel grid: running means, bad points, eviction, and a real rendered frame."""
import numpy as np
import pytest

from w2r2_ros.geometry.camera import Intrinsics, backproject_depth
from w2r2_ros.scene.voxel_map import VoxelMap, pack_voxel_keys, unpack_voxel_keys
from w2r2_ros.sim.render import render_rgbd
from w2r2_ros.sim.trajectory import orbit_trajectory
from w2r2_ros.sim.world import generate_scene


def test_keys_round_trip_including_negative_indices():
    indices = np.array([[0, 0, 0], [-1, 2, -3], [1048575, -1048576, 7]])
    assert np.array_equal(unpack_voxel_keys(pack_voxel_keys(indices)), indices)
    assert len(np.unique(pack_voxel_keys(indices))) == 3


def test_points_in_one_voxel_are_averaged_with_their_colours():
    grid = VoxelMap(voxel_size=0.1)
    points = np.array([[0.01, 0.02, 0.03], [0.05, 0.06, 0.07], [0.55, 0.55, 0.55]])
    colors = np.array([[0, 100, 200], [100, 200, 0], [7, 7, 7]], dtype=np.uint8)
    assert grid.insert(points, colors, stamp=3.0) == 3
    assert len(grid) == 2
    order = np.argsort(grid.points()[:, 0])
    assert np.allclose(grid.points()[order[0]], [0.03, 0.04, 0.05])
    assert np.array_equal(grid.colors()[order[0]], [50, 150, 100])
    assert np.array_equal(np.sort(grid.hits()), [1, 2])
    assert np.all(grid.last_update() == 3.0)
    # A later point in the same voxel moves the mean; a cloud without colour leaves the colour alone.
    grid.insert(np.array([[0.04, 0.04, 0.04]]), None, stamp=4.0)
    first = np.argmin(grid.points()[:, 0])
    assert np.allclose(grid.points()[first], [0.1 / 3, 0.04, 0.14 / 3])
    assert np.array_equal(grid.colors()[first], [50, 150, 100])
    assert sorted(grid.last_update()) == [3.0, 4.0]
    assert len(grid.points(min_hits=2)) == 1


def test_uncoloured_voxels_are_grey():
    grid = VoxelMap(voxel_size=0.1)
    grid.insert(np.array([[1.0, 1.0, 1.0]]))
    assert np.array_equal(grid.colors(), [[128, 128, 128]])


def test_nan_and_inf_points_are_rejected():
    grid = VoxelMap(voxel_size=0.05)
    points = np.array([[np.nan, 0, 0], [0, np.inf, 0], [0, 0, -np.inf], [1e12, 0, 0], [0.2, 0.2, 0.2]])
    assert grid.insert(points, np.zeros((5, 3), np.uint8)) == 1
    assert len(grid) == 1 and np.all(np.isfinite(grid.points()))
    assert grid.insert(np.full((4, 3), np.nan)) == 0


def test_bad_shapes_raise():
    grid = VoxelMap()
    with pytest.raises(ValueError, match="points"):
        grid.insert(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="colors"):
        grid.insert(np.zeros((4, 3)), np.zeros((3, 3), np.uint8))


def test_full_map_evicts_the_least_recently_updated_voxels():
    grid = VoxelMap(voxel_size=1.0, max_voxels=10)
    old = np.arange(10)[:, None] * np.array([[1.0, 0.0, 0.0]]) + 0.5
    grid.insert(old, stamp=1.0)
    grid.insert(old[:3], stamp=2.0)  # refresh three of them
    new = old + np.array([0.0, 5.0, 0.0])
    grid.insert(new[:6], stamp=3.0)
    assert len(grid) == 10
    kept = {tuple(p) for p in np.round(grid.points(), 3)}
    assert {tuple(p) for p in old[:3]} <= kept  # refreshed: survive
    assert {tuple(p) for p in new[:6]} <= kept
    assert len(kept & {tuple(p) for p in old[3:]}) == 1
    assert grid.nbytes < 10_000


def test_a_full_map_evicts_unconfirmed_strays_before_well_seen_surfaces():
    """A wall seen in the first frames (many readings a voxel) outlives the single stray readings of
    later frames; the newest frame's voxels, seen once so far, are not strays yet."""
    grid = VoxelMap(voxel_size=1.0, max_voxels=45, grace_inserts=3)
    wall = np.stack(np.meshgrid(np.arange(5), np.arange(4), indexing="ij"), -1).reshape(-1, 2) + 0.5
    wall = np.column_stack([wall, np.full(len(wall), 0.5)])  # 20 voxels
    for _ in range(3):
        grid.insert(np.repeat(wall, 4, axis=0))
    rng = np.random.default_rng(1)
    for k in range(10):  # 10 frames of 5 strays each, far from the wall
        grid.insert(rng.uniform(0, 1000, size=(5, 3)) + np.array([0.0, 0.0, 100.0]))
    latest = np.arange(12)[:, None] * np.array([[1.0, 0.0, 0.0]]) + np.array([0.5, 50.5, 0.5])
    grid.insert(latest)  # a new surface, seen once
    assert len(grid) == 45
    kept = {tuple(p) for p in np.round(grid.points(), 3)}
    assert {tuple(p) for p in wall} <= kept
    assert {tuple(p) for p in latest} <= kept
    # With eviction by age alone the wall, the oldest, would go first.
    by_age = VoxelMap(voxel_size=1.0, max_voxels=45, grace_inserts=10**9)
    for _ in range(3):
        by_age.insert(np.repeat(wall, 4, axis=0))
    rng = np.random.default_rng(1)
    for k in range(10):
        by_age.insert(rng.uniform(0, 1000, size=(5, 3)) + np.array([0.0, 0.0, 100.0]))
    by_age.insert(latest)
    assert not {tuple(p) for p in wall} <= {tuple(p) for p in np.round(by_age.points(), 3)}


def test_memory_stays_bounded_under_a_long_stream():
    grid = VoxelMap(voxel_size=0.05, max_voxels=5_000)
    rng = np.random.default_rng(0)
    for k in range(300):
        grid.insert(rng.uniform(-20, 20, size=(500, 3)), rng.integers(0, 256, (500, 3), dtype=np.uint8), stamp=k)
        assert len(grid) <= 5_000
    assert len(grid) == 5_000 and grid.last_update().min() >= 289  # only the newest inserts remain


def test_a_rendered_frame_fuses_onto_the_scene_surfaces():
    scene = generate_scene("voxel_test", 3)
    intrinsics = Intrinsics.from_fov(320, 240, 70.0)
    pose = orbit_trajectory(scene, 8, 0)[0]
    frame = render_rgbd(scene, intrinsics, pose)
    points, pixels = backproject_depth(frame.depth, intrinsics, pose, stride=2)
    grid = VoxelMap(voxel_size=0.05)
    grid.insert(points, frame.rgb.reshape(-1, 3)[pixels])
    keys = pack_voxel_keys(np.floor(points / 0.05))
    assert len(grid) == len(np.unique(keys))
    # Every voxel mean lies in its own voxel, inside the room, and carries the colour of its pixels.
    corner = unpack_voxel_keys(grid.keys()) * 0.05  # points() and keys() share one order
    assert np.all((grid.points() >= corner - 1e-5) & (grid.points() <= corner + 0.05 + 1e-5))
    half = np.asarray(scene.room_size) * [0.5, 0.5, 1.0]
    assert np.all(np.abs(grid.points()[:, :2]) <= half[:2] + 1e-3)
    assert np.all((grid.points()[:, 2] >= -1e-3) & (grid.points()[:, 2] <= half[2] + 1e-3))
    object_pixels = frame.instance.reshape(-1)[pixels] >= 0
    assert object_pixels.any()
