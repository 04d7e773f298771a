"""The viewer frame (geometry/viewer.py): forward is +x, left is +y, whatever the map's yaw."""
import numpy as np
import pytest

from w2r2_ros.geometry.viewer import to_viewer_frame, viewer_from_camera_pose


def _camera_looking(heading: float, position=(1.0, 2.0, 1.2)) -> np.ndarray:
    """Optical-frame pose (z forward, x right, y down) of a level camera looking along ``heading`` on the floor."""
    forward = np.array([np.cos(heading), np.sin(heading), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    right = np.cross(down, forward)  # x = y cross z for a right-handed frame
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, position
    return pose


@pytest.mark.parametrize("heading", [0.0, 0.7, np.pi / 2, -2.5])
def test_forward_and_left_follow_the_camera(heading: float) -> None:
    pose = _camera_looking(heading)
    viewer = viewer_from_camera_pose(pose)
    assert viewer[2] == pytest.approx(np.arctan2(np.sin(heading), np.cos(heading)))
    ahead = pose[:3, 3] + 2.0 * pose[:3, 2]
    to_the_right = pose[:3, 3] + 1.5 * pose[:3, 0]
    np.testing.assert_allclose(to_viewer_frame(ahead, viewer), [2.0, 0.0, ahead[2]], atol=1e-9)
    np.testing.assert_allclose(to_viewer_frame(to_the_right, viewer), [0.0, -1.5, to_the_right[2]], atol=1e-9)


def test_a_turned_map_gives_the_same_viewer_frame_points() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-3, 3, (20, 3))
    pose = _camera_looking(0.3)
    turn = np.eye(4)
    a = 1.1
    turn[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    turned_points = points @ turn[:3, :3].T
    before = to_viewer_frame(points, viewer_from_camera_pose(pose))
    after = to_viewer_frame(turned_points, viewer_from_camera_pose(turn @ pose))
    np.testing.assert_allclose(before, after, atol=1e-9)


def test_a_camera_looking_down_takes_the_top_of_its_image_as_forward() -> None:
    pose = np.eye(4)  # optical z = map z (up)... flip to look down: z -> -z, y -> -y
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0])
    assert viewer_from_camera_pose(pose)[2] == pytest.approx(np.pi / 2)  # -y of the optical frame is map +y


def test_bad_pose_is_refused() -> None:
    with pytest.raises(ValueError, match="4x4"):
        viewer_from_camera_pose(np.eye(3))
    with pytest.raises(ValueError, match="finite"):
        viewer_from_camera_pose(np.full((4, 4), np.nan))
