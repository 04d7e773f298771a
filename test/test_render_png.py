"""render_png draws a MarkerArray as RViz would: in order, with DELETEALL, colours and poses honoured."""
import matplotlib.image
import numpy as np
from visualization_msgs.msg import Marker, MarkerArray

from w2r2_ros.viz.render_png import active_markers, render_markers_png


def cube(ns: str, marker_id: int, center, size, rgba) -> Marker:
    m = Marker(ns=ns, id=marker_id, type=Marker.CUBE, action=Marker.ADD)
    m.header.frame_id = "map"
    m.pose.position.x, m.pose.position.y, m.pose.position.z = center
    m.pose.orientation.w = 1.0
    m.scale.x, m.scale.y, m.scale.z = size
    m.color.r, m.color.g, m.color.b, m.color.a = rgba
    return m


def red_pixels(png) -> np.ndarray:
    image = matplotlib.image.imread(png)[..., :3]
    return (image[..., 0] > 0.8) & (image[..., 1] < 0.3) & (image[..., 2] < 0.3)


def test_active_markers_follow_rviz_semantics():
    a, b = cube("a", 0, (0, 0, 0), (1, 1, 1), (1, 0, 0, 1)), cube("a", 1, (1, 0, 0), (1, 1, 1), (1, 0, 0, 1))
    b_again = cube("a", 1, (2, 0, 0), (1, 1, 1), (0, 1, 0, 1))
    delete_a = Marker(ns="a", id=0, action=Marker.DELETE)
    shown = active_markers(MarkerArray(markers=[a, b, b_again, delete_a]))
    assert shown == [b_again]
    assert active_markers(MarkerArray(markers=[a, b, Marker(action=Marker.DELETEALL)])) == []


def test_render_draws_markers_in_both_views_and_forgets_deleted_ones(tmp_path):
    rng = np.random.default_rng(0)
    cloud = rng.uniform([-2, -2, 0], [2, 2, 1.5], size=(2000, 3))
    colors = np.tile(np.array([[40, 40, 200]], np.uint8), (2000, 1))
    red = cube("answer", 0, (0.5, -0.5, 0.4), (0.6, 0.6, 0.8), (1.0, 0.0, 0.0, 1.0))
    label = Marker(ns="answer", id=1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, text="the red box 0.90")
    label.pose.position.z, label.scale.z, label.color.a, label.color.r = 1.2, 0.12, 1.0, 1.0

    shown = render_markers_png(MarkerArray(markers=[red, label]), tmp_path / "shown.png", cloud, colors, title="q")
    red_shown = red_pixels(shown)
    width = red_shown.shape[1]
    assert red_shown[:, : width // 2].sum() > 50  # top-down view
    assert red_shown[:, width // 2 :].sum() > 50  # 3D view

    cleared = MarkerArray(markers=[red, label, Marker(action=Marker.DELETEALL)])
    hidden = render_markers_png(cleared, tmp_path / "hidden.png", cloud, colors)
    assert red_pixels(hidden).sum() < red_shown.sum() / 20
