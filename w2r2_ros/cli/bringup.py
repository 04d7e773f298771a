"""w2r2-bringup: scene_memory_node + grounding_node in one process, sharing the SceneMemory, until Ctrl-C.

The same YAML params file as ``ros2 launch w2r2_ros w2r2.launch.py`` (which runs
this program on a robot), with the same overrides: ``--checkpoint``,
``--device`` and one ``--<param>`` option per topic parameter. An option left
out keeps the params file's value.

    w2r2-bringup --params config/w2r2.yaml --checkpoint runs/w2r2/best --rgb-topic /camera/rgb
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from rclpy.utilities import remove_ros_args

from w2r2_ros.ros.grounding_node import NODE_NAME as GROUNDING_NODE
from w2r2_ros.ros.grounding_node import GroundingNode
from w2r2_ros.ros.node_runtime import NodeRuntime
from w2r2_ros.ros.params import ParamsFileError, check_declared, default_params_file, node_params, parameter_overrides
from w2r2_ros.ros.scene_memory_node import SceneMemoryNode

SCENE_MEMORY_NODE = "scene_memory_node"
# The parameters the command line (and the launch file's arguments) can override, per node.
NODE_OPTIONS: dict[str, tuple[str, ...]] = {
    SCENE_MEMORY_NODE: (
        "rgb_topic",
        "depth_topic",
        "camera_info_topic",
        "pose_topic",
        "odom_topic",
        "cloud_topic",
        "fused_cloud_topic",
        "proposal_markers_topic",
        "proposal_array_topic",
    ),
    GROUNDING_NODE: (
        "checkpoint",
        "device",
        "query_topic",
        "query_text_topic",
        "result_topic",
        "markers_topic",
        "debug_image_topic",
    ),
}


def option_flag(name: str) -> str:
    """``rgb_topic`` -> ``--rgb-topic``."""
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2r2-bringup",
        description="Run scene_memory_node and grounding_node in one process (shared scene memory) until Ctrl-C.",
    )
    parser.add_argument("--params", type=Path, default=default_params_file(),
                        help="ROS 2 params file with scene_memory_node and grounding_node sections (default: %(default)s)")
    for node_name, names in NODE_OPTIONS.items():
        group = parser.add_argument_group(f"{node_name} parameters (default: the params file's value)")
        for name in names:
            group.add_argument(option_flag(name), dest=name, default=None, metavar="VALUE")
    return parser


def node_values(params_file: Path, overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each node's parameters: its params-file section, then the given overrides (None = not given)."""
    values = {}
    for node_name, names in NODE_OPTIONS.items():
        section = node_params(params_file, node_name)
        section.update({name: overrides[name] for name in names if overrides.get(name) is not None})
        values[node_name] = section
    return values


def start_nodes(runtime: NodeRuntime, values: dict[str, dict[str, Any]], source: str) -> tuple[SceneMemoryNode, GroundingNode]:
    """Create both nodes in ``runtime`` (the grounding node reads the scene node's memory); ``values`` as from
    :func:`node_values`. Raises ParamsFileError naming ``source`` if a value is not a parameter of its node."""
    scene = SceneMemoryNode(context=runtime.context, parameter_overrides=parameter_overrides(values[SCENE_MEMORY_NODE]))
    runtime.add(scene)
    check_declared(SCENE_MEMORY_NODE, values[SCENE_MEMORY_NODE], _declared(scene), source)
    grounding = GroundingNode(
        scene.memory, context=runtime.context, parameter_overrides=parameter_overrides(values[GROUNDING_NODE])
    )
    runtime.add(grounding)
    check_declared(GROUNDING_NODE, values[GROUNDING_NODE], _declared(grounding), source)
    return scene, grounding


def _declared(node: SceneMemoryNode | GroundingNode) -> set[str]:
    return set(node.get_parameters_by_prefix("").keys())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else [sys.argv[0], *argv])
    args = build_parser().parse_args(remove_ros_args(argv)[1:])
    try:
        values = node_values(args.params, vars(args))
    except ParamsFileError as error:
        print(f"w2r2-bringup: {error}", file=sys.stderr)
        return 2
    runtime = NodeRuntime(args=argv)
    # Ctrl-C (SIGINT) and SIGTERM (what ros2 launch sends after SIGINT) set an event that the main thread
    # waits on, rather than relying on KeyboardInterrupt: whoever installed SIGINT's handler last, this
    # process then stops (a CI run once saw SIGINT ignored and the process wait out a 60 s timeout).
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        start_nodes(runtime, values, str(args.params))
        runtime.start()
        print(f"w2r2-bringup: scene_memory_node and grounding_node running with {args.params}; Ctrl-C stops them",
              flush=True)
        while runtime.context.ok() and not stop.wait(1.0):
            pass
        return 0
    except ValueError as error:  # a params-file problem or a parameter value a node refuses
        print(f"w2r2-bringup: {error}", file=sys.stderr)
        return 2
    finally:
        runtime.shutdown()


if __name__ == "__main__":
    sys.exit(main())
