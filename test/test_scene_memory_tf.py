"""scene_memory_node with camera poses from /tf + /tf_static only, as a robot publishes them, over real DDS."""
import numpy as np
import pytest
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage

from scene_memory_harness import scene_memory_harness
from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.geometry.boxes import box_iou_matrix
from w2r2_ros.geometry.transforms import make_transform
from w2r2_ros.ros.conversions import matrix_to_transform_stamped, seconds_to_stamp, xyz_rgb_to_cloud
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.rgbd_stream_publisher import rgbd_messages
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.robot_tf import dynamic_transforms
from w2r2_ros.sim.world import generate_scene


@pytest.fixture(scope="module")
def recording():
    return record_scene(generate_scene("scene_memory_tf", seed=5), n_frames=8, intrinsics=Intrinsics.from_fov(160, 120, 70.0), fps=4.0)


def frames_of(recording):
    return [rgbd_messages(f.rgb, f.depth, recording.intrinsics, pose) for f, pose in zip(recording.frames, recording.poses)]


def stream(recording, pose_source: str) -> np.ndarray:
    """Stream every frame; return the proposal boxes the node's memory finds. With tf, every other frame's
    /tf comes after its images (odometry is often later than the camera): those frames wait for it."""
    with scene_memory_harness(pose_source=pose_source, keyframe_min_translation_m=0.0) as h:
        if pose_source == "tf":
            h.robot.publish_static_tf()
        for index, (messages, stamp) in enumerate(zip(frames_of(recording), recording.stamps)):
            if pose_source == "tf" and index % 2:
                before = h.received("rgb")
                for msg in (messages.rgb, messages.depth, messages.camera_info):
                    msg.header.stamp = seconds_to_stamp(float(stamp))
                h.robot.camera_info.publish(messages.camera_info)
                h.robot.depth.publish(messages.depth)
                h.robot.rgb.publish(messages.rgb)
                assert h.wait(lambda: h.received("rgb") > before and not h.node_busy())
                transforms = dynamic_transforms(recording.poses[index], float(stamp), h.robot.frames)
                h.robot.tf.publish(TFMessage(transforms=[matrix_to_transform_stamped(t, float(stamp), p, c)
                                                         for p, c, t in transforms]))
            else:
                assert h.send_frame(messages, float(stamp), pose_source=pose_source)
        assert h.wait(lambda: sum(h.node.frame_outcomes.values()) == len(recording.frames)), (
            h.node.frame_outcomes, h.node.drop_counts)
        assert h.node.drop_counts == {}
        keyframes = h.node.memory.snapshot(include_cloud=False).keyframes
        np.testing.assert_allclose(np.stack([k.cam_to_world for k in keyframes]), np.stack(recording.poses), atol=1e-9)
        return np.array([p.box.as_array() for p in h.node.memory.update_proposals()])


def test_tf_only_stream_gives_the_same_proposals_as_the_pose_stream(recording):
    """map -> odom (drifting) -> base_link -> camera_link -> optical frame: the same scene as PoseStamped gives."""
    from_tf, from_pose = stream(recording, "tf"), stream(recording, "pose")
    assert len(from_pose) >= 3 and len(from_tf) == len(from_pose)
    assert np.all(box_iou_matrix(from_tf, from_pose).max(axis=1) > 0.99)


def test_bad_transforms_are_refused_and_the_node_keeps_working(recording):
    messages = frames_of(recording)
    with scene_memory_harness(pose_source="tf", warning_period_s=30.0, keyframe_min_translation_m=0.0) as h:
        h.robot.publish_static_tf()
        assert h.send_frame(messages[0], float(recording.stamps[0]), pose_source="tf")
        now = float(recording.stamps[0])
        half = matrix_to_transform_stamped(np.eye(4), now, "map", "odom")
        half.transform.rotation.w = 0.5  # |q| = 0.5
        loop = matrix_to_transform_stamped(np.eye(4), now, "camera_color_optical_frame", "map")  # closes a cycle
        h.robot.tf.publish(TFMessage(transforms=[half, loop]))
        assert h.wait(lambda: h.node.drop_counts.get("invalid_transform") == 2), h.node.drop_counts
        line = h.node.warnings.last_message["invalid_transform"]
        assert "norm 0.5000" in line and "/tf" in line
        # An image in a frame the tree does not have: it waits, then gives up with a warning naming the frame.
        stray = rgbd_messages(recording.frames[1].rgb, recording.frames[1].depth, recording.intrinsics,
                              recording.poses[1], camera_frame="camera_depth_optical_frame")
        assert h.send_frame(stray, float(recording.stamps[1]), pose_source="tf")
        for index in (2, 3, 4, 5, 6):  # later frames push the stray one past max_pose_wait_s (1 s at 4 fps)
            assert h.send_frame(messages[index], float(recording.stamps[index]), pose_source="tf")
        assert h.wait(lambda: "no_transform" in h.node.warnings.last_message), h.node.warnings.last_message
        assert "'camera_depth_optical_frame' does not exist" in h.node.warnings.last_message["no_transform"]
        assert h.node.drop_counts.get("no_pose") == 1  # the stray frame, counted once
        assert h.node.frame_outcomes.get("keyframe", 0) >= 5


def test_camera_info_latched_before_the_node_started_is_heard(recording):
    """A driver that publishes camera_info once, transient-local, before scene_memory_node starts."""
    latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    messages = frames_of(recording)
    with NodeRuntime() as driver_runtime:
        driver = driver_runtime.add(Node("latched_camera_driver", context=driver_runtime.context))
        publisher = driver.create_publisher(CameraInfo, "/camera/color/camera_info", latched)
        publisher.publish(messages[0].camera_info)
        with scene_memory_harness(pose_source="pose") as h:
            assert h.wait(lambda: h.received("camera_info") >= 1, timeout_s=10.0)
            for msg in (messages[0].rgb, messages[0].depth, messages[0].pose):
                msg.header.stamp = seconds_to_stamp(float(recording.stamps[0]))
            h.robot.pose.publish(messages[0].pose)
            h.robot.depth.publish(messages[0].depth)
            h.robot.rgb.publish(messages[0].rgb)
            assert h.wait(lambda: h.node.frame_outcomes.get("keyframe") == 1), h.node.drop_counts



def test_a_jump_back_in_time_clears_the_dynamic_transforms(recording):
    """A bag played with --loop: /tf starts again at its first stamp; lookups at the new (older) times work."""
    messages = frames_of(recording)
    with scene_memory_harness(pose_source="tf", keyframe_min_translation_m=0.0) as h:
        h.robot.publish_static_tf()
        late = float(recording.stamps[0]) + 60.0  # a minute into the recording: the cache holds only its last 10 s
        assert h.send_frame(messages[0], late, pose_source="tf")
        assert h.send_frame(messages[1], float(recording.stamps[1]), pose_source="tf")  # the loop starts again
        assert h.wait(lambda: h.node.tf_buffer.can_transform("map", "camera_color_optical_frame", float(recording.stamps[1])))
        assert h.node.tf_buffer.can_transform("base_link", "camera_color_optical_frame")  # static transforms stay


def test_a_cloud_in_a_sensor_frame_is_transformed_into_the_map(recording):
    """A lidar cloud in its own frame, placed by /tf_static: its points land in the map where tf says."""
    lidar_in_map = dynamic_transforms(recording.poses[0], 0.0)[0][2] @ make_transform(np.eye(3), np.array([0.5, -1.0, 2.0]))
    points = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    with scene_memory_harness(pose_source="tf") as h:
        h.robot.tf_static.publish(TFMessage(transforms=[matrix_to_transform_stamped(lidar_in_map, 0.0, "map", "lidar")]))
        assert h.wait(lambda: h.node.tf_buffer.can_transform("map", "lidar"))
        h.robot.publish_cloud(xyz_rgb_to_cloud(points, None, 0.0, "lidar"), float(recording.stamps[0]))
        assert h.wait(lambda: h.received("cloud") == 1 and len(h.node.memory.snapshot().cloud_points) == 2)
        got = h.node.memory.snapshot().cloud_points
        expected = (lidar_in_map @ np.c_[points, np.ones(2)].T).T[:, :3]
        assert np.all(np.abs(np.sort(got, axis=0) - np.sort(expected, axis=0)) <= h.node.memory.config.voxel_size)
        assert h.node.drop_counts == {}
