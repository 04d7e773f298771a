"""Which bag topics feed scene_memory_node: transports, RealSense names, pose sources, what is missing."""
import pytest

from w2r2_ros.recordings.bag_reader import BagConnection, BagError
from w2r2_ros.recordings.playback_plan import plan_playback
from w2r2_ros.ros.scene_memory_node import parameter_defaults

REALSENSE = {
    "/camera/camera/color/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
    "/camera/camera/aligned_depth_to_color/image_raw/compressedDepth": "sensor_msgs/msg/CompressedImage",
    "/camera/camera/color/camera_info": "sensor_msgs/msg/CameraInfo",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/tf_static": "tf2_msgs/msg/TFMessage",
    "/odom": "nav_msgs/msg/Odometry",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
    "/robot/custom": "my_robot_msgs/msg/Secret",
}


def connections(topics: dict[str, str]) -> dict[str, BagConnection]:
    return {topic: BagConnection(topic, msgtype, 10) for topic, msgtype in topics.items()}


def params(**overrides) -> dict[str, object]:
    return {**parameter_defaults(), **overrides}


def test_realsense_compressed_bag_with_topic_flags():
    plan = plan_playback("bag", connections(REALSENSE), params(
        rgb_topic="/camera/camera/color/image_raw",
        depth_topic="/camera/camera/aligned_depth_to_color/image_raw/compressedDepth",  # the transport's topic works too
        camera_info_topic="/camera/camera/color/camera_info"))
    assert plan.params == {"rgb_transport": "compressed", "rgb_topic": "/camera/camera/color/image_raw",
                           "depth_transport": "compressedDepth", "depth_topic": "/camera/camera/aligned_depth_to_color/image_raw"}
    assert set(plan.play) == set(REALSENSE) - {"/odom", "/diagnostics", "/robot/custom"}  # pose_source tf: /odom not read
    assert plan.skipped["/robot/custom"] == "my_robot_msgs/msg/Secret"  # never played, so its type need not import


def test_odometry_source_plays_the_odometry_topic_and_relative_names_resolve():
    topics = {**REALSENSE, "/camera/color/image_raw": "sensor_msgs/msg/Image"}
    plan = plan_playback("bag", connections(topics), params(
        pose_source="odometry", odom_topic="odom", rgb_topic="camera/color/image_raw",
        depth_topic="/camera/camera/aligned_depth_to_color/image_raw", camera_info_topic="/camera/camera/color/camera_info"))
    assert plan.params["rgb_transport"] == "raw" and "/odom" in plan.play and "/camera/color/image_raw" in plan.play


@pytest.mark.parametrize("change, expected", [
    ({"camera_info_topic": "/camera/color/camera_info"},
     "no sensor_msgs/msg/CameraInfo on /camera/color/camera_info (the camera intrinsics; set --camera-info-topic). "
     "sensor_msgs/msg/CameraInfo topics in the bag: /camera/camera/color/camera_info (sensor_msgs/msg/CameraInfo, 10)"),
    ({"pose_source": "pose"}, "no geometry_msgs/msg/PoseStamped on /camera/pose"),
    ({"pose_source": "odometry"}, "nav_msgs/msg/Odometry topics in the bag: /odom (nav_msgs/msg/Odometry, 10)"),
    ({"depth_topic": "/depth"}, "no depth /depth (Image) or /depth/compressedDepth (CompressedImage); set --depth-topic. "
                                "Image topics in the bag: /camera/camera/aligned_depth_to_color"),
])
def test_what_is_missing_is_named_with_what_the_bag_has(change, expected):
    base = dict(rgb_topic="/camera/camera/color/image_raw", depth_topic="/camera/camera/aligned_depth_to_color/image_raw",
                camera_info_topic="/camera/camera/color/camera_info")
    with pytest.raises(BagError, match="^bag: ") as error:
        plan_playback("bag", connections(REALSENSE), params(**{**base, **change}))
    assert expected in str(error.value)
