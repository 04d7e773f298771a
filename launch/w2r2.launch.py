"""ros2 launch w2r2_ros w2r2.launch.py [params_file:=FILE] [namespace:=robot1] [use_sim_time:=true]
                                     [two_processes:=true] [autostart:=false] [checkpoint:=DIR] [device:=cuda]
                                     [dtype:=bfloat16]
                                     [rgb_topic:=/robot/rgb ...]

Starts scene_memory_node and grounding_node with config/w2r2.yaml as their
``parameters=`` params file. One process by default (``w2r2-bringup``: the
grounding node reads the scene memory in-process, zero copy);
``two_processes:=true`` runs the ``scene_memory_node`` and ``grounding_node``
executables apart (keyframes and proposals cross the ``w2r2/scene/keyframes``
and ``w2r2/scene/proposal_array`` topics). Either way the nodes are lifecycle
nodes that activate themselves unless ``autostart:=false``.

Arguments, as yolo_ros passes them: ``namespace`` and ``use_sim_time`` go to
every node; ``checkpoint``/``device``/``dtype`` become parameters when not empty (empty:
the params file's value); each ``<x>_topic`` argument, when not empty, remaps
the node's relative topic (its params-file name) to the given name. Names and
params-file entries agree (test/test_bringup_params.py reads this file with ast).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# Parameters a launch argument sets when it is not empty (argument name = parameter name).
NODE_ARGUMENTS = {
    "grounding_node": [
        DeclareLaunchArgument("checkpoint", default_value="", description="model directory; empty: the params file's (the shipped model)"),
        DeclareLaunchArgument("device", default_value="", description="torch device (cpu, cuda); empty: the params file's"),
        DeclareLaunchArgument("dtype", default_value="", description="weights' dtype (float32, bfloat16, float16); empty: the params file's"),
    ],
}

# Topic remaps: argument name = the topic parameter; when not empty, its params-file value is remapped to the argument.
TOPIC_ARGUMENTS = {
    "scene_memory_node": [
        DeclareLaunchArgument("rgb_topic", default_value="", description="sensor_msgs/Image colour input (rgb8, bgr8)"),
        DeclareLaunchArgument("depth_topic", default_value="", description="sensor_msgs/Image depth registered to colour"),
        DeclareLaunchArgument("camera_info_topic", default_value="", description="sensor_msgs/CameraInfo of the colour camera"),
        DeclareLaunchArgument("pose_topic", default_value="", description="geometry_msgs/PoseStamped of the camera optical frame"),
        DeclareLaunchArgument("odom_topic", default_value="", description="nav_msgs/Odometry alternative pose source"),
        DeclareLaunchArgument("cloud_topic", default_value="", description="sensor_msgs/PointCloud2 in map (optional input)"),
    ],
    "grounding_node": [
        DeclareLaunchArgument("query_topic", default_value="", description="w2r2_ros/GroundingQuery input"),
        DeclareLaunchArgument("query_text_topic", default_value="", description="std_msgs/String query input"),
        DeclareLaunchArgument("result_topic", default_value="", description="w2r2_ros/GroundingResult output"),
    ],
}

# The image transports' sub-topics (scene_memory_node rgb_transport / depth_transport), remapped with their topic.
TRANSPORT_SUFFIXES = {"rgb_topic": ("compressed",), "depth_topic": ("compressedDepth",)}

GENERAL_ARGUMENTS = [
    DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([FindPackageShare("w2r2_ros"), "config", "w2r2.yaml"]),
                          description="ROS 2 params file with scene_memory_node and grounding_node sections"),
    DeclareLaunchArgument("namespace", default_value="", description="namespace of both nodes (their topics are relative)"),
    DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag playback)"),
    DeclareLaunchArgument("two_processes", default_value="false", description="run the two nodes as separate processes"),
    DeclareLaunchArgument("autostart", default_value="true", description="false: leave the lifecycle nodes unconfigured"),
]


def _node_setup(context, node_name: str) -> tuple[dict, list[tuple[str, str]]]:
    """The parameter overrides and remaps the arguments ask for, for one node."""
    import yaml

    with open(context.launch_configurations["params_file"]) as stream:
        file_values = yaml.safe_load(stream)[node_name]["ros__parameters"]
    overrides = {
        "use_sim_time": context.launch_configurations["use_sim_time"].lower() == "true",
        "autostart": context.launch_configurations["autostart"].lower() == "true",
    }
    for argument in NODE_ARGUMENTS.get(node_name, []):
        value = context.launch_configurations[argument.name]
        if value:
            overrides[argument.name] = value
    remaps = []
    for argument in TOPIC_ARGUMENTS.get(node_name, []):
        target = context.launch_configurations[argument.name]
        if target:
            source = file_values[argument.name]
            remaps.append((source, target))
            # A compressed image transport subscribes to <topic>/compressed or <topic>/compressedDepth.
            remaps += [(f"{source}/{suffix}", f"{target}/{suffix}") for suffix in TRANSPORT_SUFFIXES.get(argument.name, ())]
    return overrides, remaps


def _launch_setup(context):
    params_file = context.launch_configurations["params_file"]
    namespace = context.launch_configurations["namespace"]
    scene_overrides, scene_remaps = _node_setup(context, "scene_memory_node")
    grounding_overrides, grounding_remaps = _node_setup(context, "grounding_node")
    if context.launch_configurations["two_processes"].lower() == "true":
        return [
            Node(package="w2r2_ros", executable="scene_memory_node", name="scene_memory_node", namespace=namespace,
                 parameters=[params_file, scene_overrides], remappings=scene_remaps, output="screen"),
            Node(package="w2r2_ros", executable="grounding_node", name="grounding_node", namespace=namespace,
                 parameters=[params_file, grounding_overrides], remappings=grounding_remaps, output="screen"),
        ]
    # One process: the parameters file applies per node section; a dict of overrides applies to both nodes
    # (each takes the parameters it declares); remaps apply to both (their topic names differ).
    return [Node(package="w2r2_ros", executable="w2r2-bringup", namespace=namespace,
                 parameters=[params_file, {**scene_overrides, **grounding_overrides}],
                 remappings=scene_remaps + grounding_remaps, output="screen")]


def generate_launch_description() -> LaunchDescription:
    arguments = [a for group in (NODE_ARGUMENTS, TOPIC_ARGUMENTS) for node_arguments in group.values() for a in node_arguments]
    return LaunchDescription([*GENERAL_ARGUMENTS, *arguments, OpaqueFunction(function=_launch_setup)])
