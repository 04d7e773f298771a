"""ros2 launch w2r2_ros w2r2.launch.py [checkpoint:=DIR] [device:=cuda] [rgb_topic:=/camera/rgb ...]

Starts scene_memory_node and grounding_node with config/w2r2.yaml. Both run in
ONE process (the ``w2r2-bringup`` executable): the grounding node reads the
keyframes of the scene memory node's in-process SceneMemory, and keyframes are
not published on any topic (docs/NODES.md). Every launch argument is passed to
``w2r2-bringup`` as the option of the same name (``rgb_topic`` ->
``--rgb-topic``), so a robot and a laptop run the same code with the same YAML.

The argument defaults equal the params file's values (test/test_bringup_params.py
checks it), so launching without arguments runs exactly what the YAML says.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# The overridable parameters of each node: argument name = parameter name.
NODE_ARGUMENTS = {
    "scene_memory_node": [
        DeclareLaunchArgument("rgb_topic", default_value="/camera/color/image_raw", description="sensor_msgs/Image, rgb8 or bgr8"),
        DeclareLaunchArgument("depth_topic", default_value="/camera/depth/image_raw", description="sensor_msgs/Image registered to colour, 16UC1 (mm) or 32FC1 (m)"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/color/camera_info", description="sensor_msgs/CameraInfo of the colour camera"),
        DeclareLaunchArgument("pose_topic", default_value="/camera/pose", description="geometry_msgs/PoseStamped of the camera optical frame in map"),
        DeclareLaunchArgument("odom_topic", default_value="/camera/odom", description="nav_msgs/Odometry alternative pose source"),
        DeclareLaunchArgument("cloud_topic", default_value="/points", description="sensor_msgs/PointCloud2 in map (optional input)"),
        DeclareLaunchArgument("fused_cloud_topic", default_value="/w2r2/scene/cloud", description="fused voxel cloud (output)"),
        DeclareLaunchArgument("proposal_markers_topic", default_value="/w2r2/scene/proposals", description="proposal boxes as a MarkerArray (output)"),
        DeclareLaunchArgument("proposal_array_topic", default_value="/w2r2/scene/proposal_array", description="w2r2_ros/ObjectProposalArray (output)"),
    ],
    "grounding_node": [
        DeclareLaunchArgument("checkpoint", default_value="package://w2r2_ros/models/default", description="model directory; empty: every query is answered MODEL_NOT_LOADED"),
        DeclareLaunchArgument("device", default_value="cpu", description="torch device: cpu or cuda"),
        DeclareLaunchArgument("query_topic", default_value="/w2r2/query", description="w2r2_ros/GroundingQuery (input)"),
        DeclareLaunchArgument("query_text_topic", default_value="/w2r2/query_text", description="std_msgs/String query (input)"),
        DeclareLaunchArgument("result_topic", default_value="/w2r2/result", description="w2r2_ros/GroundingResult (output)"),
        DeclareLaunchArgument("markers_topic", default_value="/w2r2/markers", description="answer MarkerArray (output)"),
        DeclareLaunchArgument("debug_image_topic", default_value="/w2r2/debug_image", description="sensor_msgs/Image with the answer drawn in (output)"),
    ],
}


def generate_launch_description() -> LaunchDescription:
    params = DeclareLaunchArgument(
        "params",
        default_value=PathJoinSubstitution([FindPackageShare("w2r2_ros"), "config", "w2r2.yaml"]),
        description="ROS 2 params file with scene_memory_node and grounding_node sections",
    )
    arguments = [argument for node_arguments in NODE_ARGUMENTS.values() for argument in node_arguments]
    options = ["--params", LaunchConfiguration("params")]
    for argument in arguments:
        options += ["--" + argument.name.replace("_", "-"), LaunchConfiguration(argument.name)]
    bringup = Node(package="w2r2_ros", executable="w2r2-bringup", arguments=options, output="screen")
    return LaunchDescription([params, *arguments, bringup])
