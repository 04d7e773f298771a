"""A front-only box before a wall reaches back to it only where the wall behind it was never seen."""
import numpy as np
import pytest

from w2r2_ros.scene.hidden_backs import HiddenBackConfig, extend_to_hidden_walls, wall_view
from w2r2_ros.scene.structure import StructurePlane


def _wall(hidden: bool):
    """The wall y = 2 m seen from the room (y < 2), 6 m long and 2.5 m tall, in 5 cm voxels; with
    ``hidden`` the stretch behind the cabinet (|x| <= 0.6 m, below 1.9 m) holds none."""
    u, h = np.meshgrid(np.arange(-3.0, 3.0, 0.05), np.arange(0.0, 2.5, 0.05))
    u, h = u.ravel(), h.ravel()
    if hidden:
        keep = ~((np.abs(u) <= 0.6) & (h <= 1.9))
        u, h = u[keep], h[keep]
    xy = np.column_stack([-u, np.full(len(u), 2.0)])  # along = (-n_y, n_x) = (-1, 0) for the normal (0, 1)
    plane = StructurePlane("wall", np.array([0.0, 1.0, 0.0]), 2.0, 0.03, len(u), (6.0, 2.5), (-3.0, 3.0, 0.0, 2.5))
    return wall_view(plane, xy, h, 0.1)


@pytest.mark.parametrize("hidden, seen_depth, back_gap, extended", [
    (True, 0.15, 0.4, True),     # its front only, the wall behind it never seen: it stands against the wall
    (False, 0.15, 0.4, False),   # the wall behind it seen: it stands free
    (True, 0.5, 0.4, False),     # its sides were read: its depth is known
    (True, 0.15, 1.0, False),    # too far from the wall to be furniture against it
    (True, 0.15, 0.05, False),   # at the wall already (the slab took its last centimetres)
])
def test_a_front_only_box_reaches_back_to_a_wall_hidden_behind_it(hidden, seen_depth, back_gap, extended):
    walls = [_wall(hidden)]
    centre = np.array([0.0, 2.0 - back_gap - seen_depth / 2])
    size = np.array([1.2, seen_depth])
    new_centre, new_size = extend_to_hidden_walls(centre, size, 0.0, 0.0, 1.9, walls, HiddenBackConfig())
    if extended:
        assert new_size[0] == pytest.approx(1.2) and new_size[1] == pytest.approx(seen_depth + back_gap)
        assert new_centre[1] + new_size[1] / 2 == pytest.approx(2.0)  # its back on the wall
        assert new_centre[1] - new_size[1] / 2 == pytest.approx(centre[1] - seen_depth / 2)  # its front where it was
    else:
        assert np.allclose(new_centre, centre) and np.allclose(new_size, size)
    off = extend_to_hidden_walls(centre, size, 0.0, 0.0, 1.9, walls, HiddenBackConfig(enabled=False))
    assert np.allclose(off[0], centre) and np.allclose(off[1], size)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_cabinet_seen_from_the_front_only_is_boxed_to_the_wall_behind_it(enabled: bool):
    """Through ``segment_scene``: a 1.2 m wide, 1.9 m tall cabinet 0.5 m deep against the wall y = 2.5 m of
    a 6 x 5 x 2.6 m room, of which only the front face was read (its sides at grazing angles dropped, its top
    above the camera). The wall behind it holds no voxel."""
    from w2r2_ros.geometry.boxes import Box3D, oriented_iou_matrix
    from w2r2_ros.scene.proposals import ProposalConfig, segment_scene
    from w2r2_ros.scene.voxel_map import VoxelMap

    g = np.arange(0.0, 1.0 + 1e-9, 0.02)
    parts = []
    for x in np.arange(-3.0, 3.0 + 1e-9, 0.04):  # floor and walls (the back wall but for the cabinet's shadow)
        for y in np.arange(-2.5, 2.5 + 1e-9, 0.04):
            parts.append((x, y, 0.0))
    for z in np.arange(0.0, 2.6 + 1e-9, 0.04):
        for x in np.arange(-3.0, 3.0 + 1e-9, 0.04):
            parts.append((x, -2.5, z))
            if not (abs(x) <= 0.62 and z <= 1.92):
                parts.append((x, 2.5, z))
        for y in np.arange(-2.5, 2.5 + 1e-9, 0.04):
            parts += [(-3.0, y, z), (3.0, y, z)]
    points = np.array(parts)
    front = np.array([(x, 2.0, z) for x in -0.6 + 1.2 * g for z in 1.9 * g])
    grid = VoxelMap(voxel_size=0.05)
    grid.insert(points, np.tile(np.array([200, 200, 190], np.uint8), (len(points), 1)))
    grid.insert(front, np.tile(np.array([140, 90, 60], np.uint8), (len(front), 1)))
    config = ProposalConfig(hidden_backs=HiddenBackConfig(enabled=enabled))
    result = segment_scene(grid.points(), grid.colors(), config)
    truth = Box3D(np.array([0.0, 2.25, 0.95]), np.array([1.2, 0.5, 1.9]))
    boxes = np.stack([p.box.as_oriented_array() for p in result.proposals])
    best = float(oriented_iou_matrix(truth.as_oriented_array()[None], boxes).max())
    assert (best > 0.8) if enabled else (best < 0.3), best
