"""Boxes turned in yaw: the oriented IoU, the minimum-area rectangle, and the axis-aligned bounds."""
import numpy as np
import pytest

from w2r2_ros.geometry.boxes import Box3D, box_iou_matrix, min_area_rectangle, oriented_iou_matrix, points_in_boxes


def _random_boxes(rng, n):
    return np.concatenate([rng.uniform(-1, 1, (n, 3)), rng.uniform(0.2, 1.5, (n, 3))], axis=1)


def test_oriented_iou_is_the_axis_aligned_iou_at_yaw_zero_and_turns_with_the_scene():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 12), _random_boxes(rng, 9)
    np.testing.assert_allclose(oriented_iou_matrix(a, b), box_iou_matrix(a, b), atol=1e-9)
    # Turning both sets about z by the same angle changes nothing.
    yaw = 0.7
    turn = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    a7, b7 = np.c_[a, np.zeros(len(a))], np.c_[b, np.zeros(len(b))]
    for boxes in (a7, b7):
        boxes[:, :2] = boxes[:, :2] @ turn.T
        boxes[:, 6] = yaw
    np.testing.assert_allclose(oriented_iou_matrix(a7, b7), box_iou_matrix(a, b), atol=1e-9)


def test_a_quarter_turn_with_swapped_sides_is_the_same_box():
    box = np.array([0.3, -0.2, 0.5, 2.0, 0.6, 1.0, 0.25])
    same = box.copy()
    same[3:5], same[6] = box[[4, 3]], box[6] + np.pi / 2
    assert oriented_iou_matrix(box, same)[0, 0] == pytest.approx(1.0)
    # A box turned 45 degrees against an axis-aligned one of the same size overlaps less.
    assert oriented_iou_matrix(np.r_[box[:6], 0.0], np.r_[box[:6], np.pi / 4])[0, 0] < 0.8


def test_minimum_area_rectangle_finds_the_turn_of_a_rectangle():
    rng = np.random.default_rng(1)
    local = rng.uniform(-0.5, 0.5, (400, 2)) * [1.6, 0.7]
    local = np.concatenate([local, [[-0.8, -0.35], [0.8, -0.35], [0.8, 0.35], [-0.8, 0.35]]])
    for yaw in (0.0, 0.3, -0.6, 1.2):
        turn = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        centre, size, found = min_area_rectangle(local @ turn.T + [2.0, -1.0])
        np.testing.assert_allclose(centre, [2.0, -1.0], atol=1e-6)
        assert -np.pi / 4 <= found < np.pi / 4
        # The same rectangle, up to a quarter turn that swaps its sides.
        quarter = round((yaw - found) / (np.pi / 2))
        assert found + quarter * np.pi / 2 == pytest.approx(yaw, abs=1e-6)
        np.testing.assert_allclose(size, [1.6, 0.7] if quarter % 2 == 0 else [0.7, 1.6], atol=1e-6)


def test_axis_aligned_bounds_of_a_turned_box():
    box = Box3D(np.array([0.0, 0.0, 0.5]), np.array([2.0, 1.0, 1.0]), yaw=np.pi / 2)
    np.testing.assert_allclose(box.as_array(), [0, 0, 0.5, 1.0, 2.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(box.aligned().size, [1.0, 2.0, 1.0], atol=1e-12)
    assert box.volume == pytest.approx(2.0)
    inside = points_in_boxes(np.array([[0.0, 0.9, 0.5], [0.9, 0.0, 0.5]]), box.as_oriented_array()[None])
    assert inside[:, 0].tolist() == [True, False]


def test_a_footprint_a_few_cells_across_stands_square_to_the_walls():
    """Voxel centres (5 cm) of a 20 cm box's footprint, the box square to walls turned by 27 degrees: the
    staircase of cells has a minimum-area rectangle of its own turn, which is the grid's, not the box's.
    Within a strip one cell wide along that rectangle's perimeter (``band``) the walls' turn wins. A table's
    footprint (1.6 x 0.8 m) turned by 10 degrees keeps its own turn: a cell's strip does not hide that."""
    cell, walls = 0.05, np.array([np.radians(27.0)])

    def cells_of(size, yaw):
        grid = np.stack(np.meshgrid(np.arange(-30, 31), np.arange(-30, 31)), -1).reshape(-1, 2) * cell + cell / 2
        turn = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])  # map -> box frame
        return grid[np.all(np.abs(grid @ turn.T) <= np.asarray(size) / 2, axis=1)]

    small = cells_of([0.2, 0.2], walls[0])
    _, _, own = min_area_rectangle(small, walls, tolerance=0.15)
    assert abs(np.degrees(own) - 27.0) > 5.0  # the staircase's own turn
    _, _, yaw = min_area_rectangle(small, walls, tolerance=0.15, band=cell)
    assert np.degrees(yaw) == pytest.approx(27.0)
    _, _, table = min_area_rectangle(cells_of([1.6, 0.8], np.radians(10.0)), walls, tolerance=0.15, band=cell)
    assert abs(np.degrees(table) - 10.0) < 3.0
