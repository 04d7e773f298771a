"""Bad input over real DDS: each kind is dropped, counted, warned about at most once per period
(with the number held back), and the node still fuses good frames afterwards."""
import array
import time

import numpy as np
import pytest
from sensor_msgs.msg import Image, PointField

from scene_memory_harness import Harness, scene_memory_harness
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.ros.conversions import (
    depth_to_image,
    matrix_to_pose_stamped,
    seconds_to_stamp,
    xyz_rgb_to_cloud,
)
from w2r2_ros.ros.rate_limited_log import RateLimitedWarner
from w2r2_ros.ros.rgbd_stream_publisher import rgbd_messages
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene

PERIOD_S = 30.0  # longer than any test: every kind is logged exactly once, the rest are held back


@pytest.fixture(scope="module")
def recording():
    return record_scene(generate_scene("bad_input", seed=1), n_frames=3, intrinsics=Intrinsics.from_fov(160, 120, 70.0))


@pytest.fixture
def harness():
    with scene_memory_harness(warning_period_s=PERIOD_S, keyframe_min_translation_m=0.0) as h:
        yield h


def frame(recording, index, **kwargs):
    f = recording.frames[index]
    return rgbd_messages(f.rgb, f.depth, recording.intrinsics, recording.poses[index], **kwargs)


def publish_spaced(publisher, messages):
    for msg in messages:
        publisher.publish(msg)
        time.sleep(0.05)


def assert_dropped_and_warned_once(h: Harness, kind: str, count: int, text: str, capfd=None):
    assert h.wait(lambda: h.node.drop_counts.get(kind, 0) >= count), f"{kind}: drops {h.node.drop_counts}"
    assert h.node.drop_counts[kind] == count
    assert h.node.warnings.emitted[kind] == 1 and h.node.warnings.suppressed[kind] == count - 1
    assert text in h.node.warnings.last_message[kind]
    if capfd is not None:  # the warning really reached the ROS log (rcutils writes to stderr)
        err = []
        assert h.wait(lambda: err.append(capfd.readouterr().err) or text in "".join(err), timeout_s=5.0)
        assert "".join(err).count(text) == 1


def assert_still_fuses(h: Harness, recording, start_stamp: float):
    """Good frames after the bad ones become keyframes."""
    before = h.node.frame_outcomes.get("keyframe", 0)
    for i in range(len(recording.frames)):
        assert h.send_frame(frame(recording, i), start_stamp + 0.2 * i)
    assert h.wait(lambda: h.node.frame_outcomes.get("keyframe", 0) == before + len(recording.frames)), h.node.drop_counts
    assert h.node.memory.stats().voxels > 0


def test_rate_limited_warner_holds_back_repeats_and_counts_them():
    now = [0.0]
    lines = []
    warner = RateLimitedWarner(lines.append, period_s=5.0, clock=lambda: now[0])
    assert warner.warn("no_pose", "frame 1 dropped")
    for t in (1.0, 2.0, 4.9):
        now[0] = t
        assert not warner.warn("no_pose", "frame dropped")
    assert warner.warn("invalid_depth", "depth dropped")  # another kind has its own budget
    now[0] = 5.5
    assert warner.warn("no_pose", "frame 5 dropped")
    assert lines == ["frame 1 dropped", "depth dropped", "frame 5 dropped (3 more 'no_pose' suppressed in the last 5.5 s)"]
    assert warner.emitted["no_pose"] == 2 and warner.suppressed["no_pose"] == 3


def test_unsupported_encoding(harness, recording, capfd):
    good = frame(recording, 0)
    grey = recording.frames[0].rgb.mean(axis=2).astype(np.uint8)
    mono = Image(header=good.rgb.header, height=grey.shape[0], width=grey.shape[1], encoding="mono8", step=grey.shape[1])
    mono.data = array.array("B", grey.tobytes())  # a consistent mono8 image: only the encoding is unsupported
    harness.robot.camera_info.publish(good.camera_info)
    time.sleep(0.1)
    publish_spaced(harness.robot.rgb, [mono] * 4)
    assert_dropped_and_warned_once(harness, "unsupported_encoding", 4, "'mono8' not supported", capfd)
    assert_still_fuses(harness, recording, 100.0)


def test_depth_of_another_aspect_than_the_colour_is_dropped_naming_both_sizes(harness, recording):
    good = frame(recording, 0)
    other_aspect = depth_to_image(np.ones((60, 100), np.float32), seconds_to_stamp(10.0), "cam")
    harness.robot.camera_info.publish(good.camera_info)
    time.sleep(0.1)
    publish_spaced(harness.robot.depth, [other_aspect] * 3)
    assert_dropped_and_warned_once(harness, "size_mismatch", 3, "depth image is 100x60 but the colour camera_info says 160x120")
    assert "another aspect ratio" in harness.node.warnings.last_message["size_mismatch"]
    assert_still_fuses(harness, recording, 100.0)


def test_depth_at_half_the_colour_resolution_is_resampled_and_fused(harness, recording, capfd):
    """A driver's registered depth at 80x60 beside 160x120 colour: same field of view, so each frame is fused
    after nearest-pixel resampling, with one warning that names both sizes and the parameter."""
    harness.robot.camera_info.publish(frame(recording, 0).camera_info)
    time.sleep(0.1)
    for i in range(len(recording.frames)):
        messages = frame(recording, i)
        half = recording.frames[i].depth[1::2, 1::2]
        messages.depth = depth_to_image(half, 0.0, "camera_color_optical_frame", encoding="16UC1")
        assert harness.send_frame(messages, 20.0 + 0.2 * i)
    n = len(recording.frames)
    assert harness.wait(lambda: harness.node.frame_outcomes.get("keyframe", 0) == n), harness.node.drop_counts
    assert harness.node.drop_counts == {} and harness.node.adjusted_counts == {"depth_resampled": n}
    warnings = harness.node.warnings
    assert warnings.emitted["depth_resampled"] == 1 and warnings.suppressed["depth_resampled"] == n - 1
    text = "depth image is 80x60 but the colour camera_info says 160x120"
    assert text in warnings.last_message["depth_resampled"] and "depth_resample" in warnings.last_message["depth_resampled"]
    err = []
    assert harness.wait(lambda: err.append(capfd.readouterr().err) or text in "".join(err), timeout_s=5.0)
    # The fused points lie on the scene's surfaces as with full-resolution depth: inside the room.
    assert harness.wait(lambda: harness.node.memory.stats().voxels > 100)
    cloud = harness.node.memory.snapshot().cloud_points
    half_room = recording.scene.room_size[:2] / 2 + 0.1
    assert np.all(np.abs(cloud[:, :2]) <= half_room) and np.all((cloud[:, 2] > -0.1) & (cloud[:, 2] < recording.scene.room_size[2] + 0.1))


def test_depth_at_another_resolution_is_dropped_when_resampling_is_off(recording):
    with scene_memory_harness(warning_period_s=PERIOD_S, depth_resample=False) as h:
        h.robot.camera_info.publish(frame(recording, 0).camera_info)
        time.sleep(0.1)
        half = depth_to_image(recording.frames[0].depth[::2, ::2], seconds_to_stamp(10.0), "cam")
        publish_spaced(h.robot.depth, [half] * 2)
        assert_dropped_and_warned_once(h, "size_mismatch", 2, "depth image is 80x60 but the colour camera_info says 160x120 (depth_resample is false)")


def test_a_two_million_point_cloud_is_fused_every_nth_point_with_a_warning(harness, recording):
    """32 MB in one message: the node reads only max_cloud_points of it, says so, and keeps taking frames."""
    rng = np.random.default_rng(0)
    n = 2_000_000
    points = np.column_stack([rng.uniform(-2, 2, n), rng.uniform(-2, 2, n), rng.uniform(0, 2, n)]).astype(np.float32)
    colors = np.full((n, 3), 90, np.uint8)
    huge = xyz_rgb_to_cloud(points, colors, 3.0, "map")
    harness.robot.cloud.publish(huge)
    assert harness.wait(lambda: harness.node.adjusted_counts.get("cloud_downsampled", 0) == 1, timeout_s=60.0), (
        harness.node.received_counts, harness.node.drop_counts
    )
    message = harness.node.warnings.last_message["cloud_downsampled"]
    assert "cloud of 2000000 points is more than max_cloud_points 500000: every 4th point fused (500000)" in message
    assert harness.wait(lambda: harness.node.memory.stats().voxels > 10_000, timeout_s=60.0)
    assert harness.node.drop_counts == {}
    assert_still_fuses(harness, recording, 100.0)


def test_all_invalid_depth_is_dropped_and_partly_invalid_depth_is_fused(harness, recording):
    messages = frame(recording, 0)
    harness.robot.camera_info.publish(messages.camera_info)
    time.sleep(0.1)
    shape = recording.frames[0].depth.shape
    bad = [
        depth_to_image(np.full(shape, np.nan, np.float32), 1.0, "cam"),
        depth_to_image(np.full(shape, np.inf, np.float32), 1.1, "cam"),
        depth_to_image(np.zeros(shape, np.float32), 1.2, "cam", encoding="16UC1"),
    ]
    publish_spaced(harness.robot.depth, bad)
    assert_dropped_and_warned_once(harness, "invalid_depth", 3, "no valid pixel")

    depth = recording.frames[0].depth.copy()
    depth[:, : shape[1] // 2] = np.nan
    depth[0, -1] = np.inf
    partial = rgbd_messages(recording.frames[0].rgb, depth, recording.intrinsics, recording.poses[0], depth_encoding="32FC1")
    assert harness.send_frame(partial, 5.0)
    assert harness.wait(lambda: harness.node.frame_outcomes.get("keyframe", 0) == 1), harness.node.drop_counts
    cloud = harness.node.memory.snapshot().cloud_points
    assert len(cloud) > 100 and np.all(np.isfinite(cloud))
    assert set(harness.node.drop_counts) == {"invalid_depth"}


def test_images_before_any_camera_info(harness, recording):
    messages = frame(recording, 0)
    for k in range(3):
        stamp = seconds_to_stamp(1.0 + 0.2 * k)
        messages.pose.header.stamp = messages.depth.header.stamp = messages.rgb.header.stamp = stamp
        publish_spaced(harness.robot.pose, [messages.pose])
        publish_spaced(harness.robot.depth, [messages.depth])
        publish_spaced(harness.robot.rgb, [messages.rgb])
    assert_dropped_and_warned_once(harness, "missing_camera_info", 6, "no valid camera_info received yet")
    assert_still_fuses(harness, recording, 100.0)


def test_frame_without_a_pose_within_tolerance_and_invalid_pose(harness, recording):
    messages = frame(recording, 0)
    messages.pose.header.stamp = seconds_to_stamp(10.0)
    harness.robot.pose.publish(messages.pose)
    for k in range(3):  # images 1 s after the only pose: far beyond the 0.05 s tolerance
        stamp = seconds_to_stamp(11.0 + 0.2 * k)
        messages.camera_info.header.stamp = messages.depth.header.stamp = messages.rgb.header.stamp = stamp
        publish_spaced(harness.robot.camera_info, [messages.camera_info])
        publish_spaced(harness.robot.depth, [messages.depth])
        publish_spaced(harness.robot.rgb, [messages.rgb])
    assert_dropped_and_warned_once(harness, "no_pose", 3, "no camera pose within the sync tolerance")
    broken = matrix_to_pose_stamped(np.eye(4), 12.0, "map")
    broken.pose.orientation.w = 0.0
    publish_spaced(harness.robot.pose, [broken, broken])
    assert_dropped_and_warned_once(harness, "invalid_pose", 2, "invalid quaternion")
    assert_still_fuses(harness, recording, 100.0)


def test_point_clouds_without_xyz_or_with_a_wrong_point_step(harness, recording):
    points = np.random.default_rng(0).uniform(-1, 1, (200, 3))
    colors = np.full((200, 3), 200, np.uint8)
    no_z = xyz_rgb_to_cloud(points, colors, 1.0, "map")
    no_z.fields = [f for f in no_z.fields if f.name != "z"]
    short_step = xyz_rgb_to_cloud(points, colors, 1.0, "map")
    short_step.point_step = 12  # the rgb field at offset 12 no longer fits
    wrong_frame = xyz_rgb_to_cloud(points, colors, 1.0, "camera_link")
    publish_spaced(harness.robot.cloud, [no_z, short_step, no_z, wrong_frame])
    assert_dropped_and_warned_once(harness, "invalid_cloud", 3, "no 'z' field")
    assert_dropped_and_warned_once(harness, "wrong_frame", 1, "'camera_link'")

    good = xyz_rgb_to_cloud(points, colors, 2.0, "map")
    assert good.fields[0].datatype == PointField.FLOAT32
    publish_spaced(harness.robot.cloud, [good])
    assert harness.wait(lambda: harness.node.memory.stats().voxels > 0)
    assert_still_fuses(harness, recording, 100.0)


def test_timestamps_going_backwards(harness, recording):
    harness.robot.camera_info.publish(frame(recording, 0).camera_info)
    assert harness.send_frame(frame(recording, 0), 50.0)
    assert harness.wait(lambda: harness.node.frame_outcomes.get("keyframe", 0) == 1)
    older = frame(recording, 1)
    harness.robot.publish_rgbd(older, 49.0, pose_lead_s=0.05)  # pose, depth and colour all older than before
    assert_dropped_and_warned_once(harness, "stamp_backwards", 3, "timestamp older than the previous one")
    assert_still_fuses(harness, recording, 60.0)
