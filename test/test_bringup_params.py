"""One set of names and defaults: launch file arguments, w2r2-bringup options, config/w2r2.yaml, the nodes' parameters;
and rclpy's precedence: params file < --ros-args -p.

The launch file is read with ``ast`` (launch/launch_ros do not install here);
the nodes are real rclpy nodes asked what they declare.
"""
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rclpy.node import Node

from ros_tools import Manager
from w2r2_ros.cli.bringup import NODE_OPTIONS, build_parser, main, node_values, ros_arguments, start_nodes
from w2r2_ros.ros.grounding_node import GroundingNode
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.params import (
    ParamsFileError,
    default_params_file,
    launch_arguments,
    load_params_file,
    package_dir,
    resolve_package_path,
)
from w2r2_ros.ros.scene_memory_node import SceneMemoryNode
from w2r2_ros.scene.memory import SceneMemory

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "w2r2.launch.py"
PARAMS_FILE = ROOT / "config" / "w2r2.yaml"
RVIZ_FILE = ROOT / "rviz" / "w2r2.rviz"


@pytest.fixture(scope="module")
def declared_defaults() -> dict[str, dict[str, object]]:
    """Each node's declared parameters and defaults (no overrides), minus what rclpy declares on every node."""
    with NodeRuntime() as runtime:
        bare = runtime.add(Node("bare", context=runtime.context))
        scene = runtime.add(SceneMemoryNode(context=runtime.context))
        grounding = runtime.add(GroundingNode(SceneMemory(), context=runtime.context))
        rclpy_own = set(bare.get_parameters_by_prefix(""))
        return {
            node.get_name(): {name: p.value for name, p in node.get_parameters_by_prefix("").items() if name not in rclpy_own}
            for node in (scene, grounding)
        }


def test_launch_arguments_are_the_bringup_options_and_name_parameters(declared_defaults):
    parameters = launch_arguments(LAUNCH_FILE, "NODE_ARGUMENTS")
    topics = launch_arguments(LAUNCH_FILE, "TOPIC_ARGUMENTS")
    assert set(parameters[""]) == {"params_file", "namespace", "use_sim_time", "two_processes", "autostart"}
    sections = load_params_file(PARAMS_FILE)
    for node_name in NODE_OPTIONS:
        assert set(parameters.get(node_name, {})) | set(topics.get(node_name, {})) == set(NODE_OPTIONS[node_name])
        assert set(parameters.get(node_name, {})) <= set(declared_defaults[node_name])
        # A topic argument remaps the params file's (relative) topic name.
        assert all(name.endswith("_topic") and not sections[node_name][name].startswith("/") for name in topics.get(node_name, {}))
    # Empty defaults: an argument left out keeps the params file's value.
    assert all(default == "" for group in (parameters, topics) for node, args in group.items() if node for default in args.values())
    parser_dests = {action.dest for action in build_parser()._actions} - {"help"}
    assert parser_dests == {"params", "unconfigured", *(name for names in NODE_OPTIONS.values() for name in names)}


def test_params_file_sets_exactly_the_declared_parameters_to_their_defaults(declared_defaults):
    sections = load_params_file(PARAMS_FILE)
    assert set(sections) == set(declared_defaults)
    for node_name, defaults in declared_defaults.items():
        assert sections[node_name] == defaults, node_name


def test_command_line_outranks_the_params_file_and_the_options(tmp_path):
    """The issue: YAML values used to be node overrides and beat `--ros-args -p`; now the file is a --params-file."""
    params = tmp_path / "w2r2.yaml"
    sections = load_params_file(PARAMS_FILE)
    sections["scene_memory_node"]["publish_rate_hz"] = 2.0
    sections["grounding_node"]["score_threshold"] = 0.3
    params.write_text(yaml.safe_dump({node: {"ros__parameters": values} for node, values in sections.items()}))
    args = build_parser().parse_args(["--params", str(params), "--rgb-topic", "/robot/rgb", "--checkpoint", "",
                                      "--dtype", "bfloat16"])
    command_line = ["--ros-args", "-p", "top_k:=2", "-p", "scene_memory_node:publish_rate_hz:=4.0"]
    with NodeRuntime(args=["w2r2-bringup", *ros_arguments(args.params, vars(args)), *command_line]) as runtime:
        scene, grounding = start_nodes(runtime, node_values(args.params, vars(args)), str(params), as_overrides=False)
        assert grounding.params.top_k == 2 and grounding.get_parameter("top_k").value == 2  # -p beats the file
        assert scene.params["publish_rate_hz"] == 4.0  # node-specific -p beats the file
        assert grounding.params.score_threshold == 0.3  # from the file
        assert scene.get_parameter("rgb_topic").value == "/robot/rgb"  # from the option
        assert grounding.params.dtype == "bfloat16"  # from the option (the file says float32)
        assert scene.get_parameter("depth_topic").value == "camera/depth/image_raw"
        assert grounding.memory is scene.memory  # shared in-process
        assert grounding.grounder is None and "empty" in grounding.model_problem
        assert (scene.lifecycle_state, grounding.lifecycle_state) == ("active", "active")


def test_bad_values_stop_the_bringup_with_one_line(capsys):
    assert main(["--checkpoint", "", "--ros-args", "-p", "top_k:=0"]) == 2
    assert "top_k" in capsys.readouterr().err
    assert main(["--checkpoint", "", "--ros-args", "-p", "pose_source:=tf2"]) == 2
    assert "pose_source is 'tf2', expected one of tf, pose, odometry" in capsys.readouterr().err


def test_params_file_errors_name_the_file_and_the_field(tmp_path):
    unknown = tmp_path / "unknown.yaml"
    sections = load_params_file(PARAMS_FILE)
    sections["grounding_node"]["scor_threshold"] = 0.5
    unknown.write_text(yaml.safe_dump({node: {"ros__parameters": values} for node, values in sections.items()}))
    with NodeRuntime() as runtime, pytest.raises(ParamsFileError, match=r"unknown\.yaml: grounding_node has no parameter\(s\) scor_threshold"):
        start_nodes(runtime, node_values(unknown, {}), str(unknown))

    broken = tmp_path / "broken.yaml"
    broken.write_text("grounding_node: [unclosed\n")
    with pytest.raises(ParamsFileError, match="broken.yaml: not valid YAML"):
        load_params_file(broken)
    flat = tmp_path / "flat.yaml"
    flat.write_text("grounding_node:\n  top_k: 3\n")
    with pytest.raises(ParamsFileError, match="flat.yaml: grounding_node: expected a 'ros__parameters' mapping"):
        load_params_file(flat)
    assert main(["--params", str(tmp_path / "missing.yaml")]) == 2


def test_default_paths_resolve_inside_the_package():
    assert default_params_file() == PARAMS_FILE
    assert resolve_package_path("package://w2r2_ros/models/default") == package_dir() / "models" / "default"
    assert resolve_package_path("  ") is None
    assert resolve_package_path("/abs/dir") == Path("/abs/dir")
    with pytest.raises(ValueError, match="package://w2r2_ros/"):
        resolve_package_path("package://other_pkg/models")


def test_rviz_config_shows_the_nodes_topics_in_map():
    config = yaml.safe_load(RVIZ_FILE.read_text())["Visualization Manager"]
    assert config["Global Options"]["Fixed Frame"] == "map"
    shown = {(d["Class"], d["Topic"]["Value"]) for d in config["Displays"] if "Topic" in d}
    sections = load_params_file(PARAMS_FILE)
    scene, grounding = sections["scene_memory_node"], sections["grounding_node"]
    assert shown == {  # the nodes' relative names in the root namespace
        ("rviz_default_plugins/PointCloud2", "/" + scene["fused_cloud_topic"]),
        ("rviz_default_plugins/MarkerArray", "/" + scene["proposal_markers_topic"]),
        ("rviz_default_plugins/MarkerArray", "/" + grounding["markers_topic"]),
        ("rviz_default_plugins/Image", "/" + grounding["debug_image_topic"]),
    }


def start_bringup(*args: str) -> tuple[subprocess.Popen, list[str]]:
    """The w2r2-bringup console script with ``args``, and its output up to the line saying it runs."""
    bringup = Path(sys.executable).with_name("w2r2-bringup")
    process = subprocess.Popen([str(bringup), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "running" in line:
            break
    return process, seen


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_bringup_runs_until_ctrl_c(tmp_path, signum):
    """The console script starts both nodes, says so, and exits 0 on SIGINT (what Ctrl-C sends) or SIGTERM."""
    process, seen = start_bringup("--checkpoint", str(tmp_path / "no-model"))
    try:
        assert any("w2r2-bringup: scene_memory_node and grounding_node running" in line for line in seen), "".join(seen)
        assert any("model not loaded" in line and "no-model" in line for line in seen)
        process.send_signal(signum)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
def test_namespaced_bringup_takes_the_command_line_parameters(tmp_path):
    """The issue's command, in a namespace: `w2r2-bringup --ros-args -p publish_rate_hz:=4.0 -p top_k:=2` used to run
    at 1 Hz with top_k 5. Read back over DDS as `ros2 param get` does; the interfaces live under the namespace."""
    process, seen = start_bringup("--checkpoint", str(tmp_path / "no-model"), "--ros-args", "-r", "__ns:=/robot3",
                                  "-p", "publish_rate_hz:=4.0", "-p", "top_k:=2")
    try:
        assert any("running (active, active) in namespace '/robot3'" in line for line in seen), "".join(seen)
        with NodeRuntime() as runtime:
            manager = runtime.add(Manager(runtime))
            assert manager.param_get("/robot3/grounding_node", "top_k") == 2
            assert manager.param_get("/robot3/scene_memory_node", "publish_rate_hz") == 4.0
            assert manager.param_get("/robot3/grounding_node", "score_threshold") == 0.2  # the params file's
            assert runtime.wait_until(lambda: manager.count_publishers("/robot3/w2r2/scene/proposal_array") == 1, 20.0)
            assert runtime.wait_until(lambda: manager.count_subscribers("/robot3/camera/color/image_raw") == 1, 20.0)
            assert manager.count_subscribers("/camera/color/image_raw") == 0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
