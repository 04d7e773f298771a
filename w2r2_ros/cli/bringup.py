"""w2r2-bringup: scene_memory_node + grounding_node in one process, sharing the SceneMemory, until Ctrl-C.

Parameters take rclpy's own path: the params file (``--params``, default
config/w2r2.yaml) is the first ``--params-file`` of the process, then the
convenience options (``--checkpoint``, ``--device``, ``--dtype``, one ``--<param>`` per topic
parameter) as ``-p``, then the command line's own ``--ros-args`` (``-p``,
``--params-file``, ``-r`` remaps, ``-r __ns:=/robot1``), so the command line
wins: ``w2r2-bringup --ros-args -p top_k:=2`` answers with two candidates.
Both nodes are lifecycle nodes that go to active by themselves
(``autostart``); ``--unconfigured`` leaves them unconfigured for a lifecycle
manager (``ros2 lifecycle set /grounding_node configure``).

    w2r2-bringup --params config/w2r2.yaml --checkpoint runs/w2r2/best --ros-args -p top_k:=2 -r __ns:=/robot1
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from rclpy.exceptions import ParameterException
from rclpy.utilities import remove_ros_args

from w2r2_ros.ros.grounding_node import NODE_NAME as GROUNDING_NODE
from w2r2_ros.ros.grounding_node import GroundingNode
from w2r2_ros.ros.lifecycle_support import LifecycleError
from w2r2_ros.ros.node_runtime import NodeRuntime, stop_on_signals, wait_for
from w2r2_ros.ros.params import ParamsFileError, check_declared, default_params_file, node_params, parameter_overrides
from w2r2_ros.ros.scene_memory_node import SceneMemoryNode

SCENE_MEMORY_NODE = "scene_memory_node"
# The parameters with a convenience option, per node: the launch file's arguments of the same names.
NODE_OPTIONS: dict[str, tuple[str, ...]] = {
    SCENE_MEMORY_NODE: ("rgb_topic", "depth_topic", "camera_info_topic", "pose_topic", "odom_topic", "cloud_topic"),
    GROUNDING_NODE: ("checkpoint", "device", "dtype", "query_topic", "query_text_topic", "result_topic"),
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
                        help="ROS 2 params file with scene_memory_node and grounding_node sections (default: %(default)s); "
                             "--ros-args -p/--params-file override it")
    parser.add_argument("--unconfigured", action="store_true",
                        help="leave both lifecycle nodes unconfigured (a lifecycle manager configures and activates them)")
    for node_name, names in NODE_OPTIONS.items():
        group = parser.add_argument_group(f"{node_name} parameters (default: the params file's value)")
        for name in names:
            group.add_argument(option_flag(name), dest=name, default=None, metavar="VALUE")
    return parser


def ros_arguments(params_file: Path, options: dict[str, Any], unconfigured: bool = False) -> list[str]:
    """``--ros-args`` for the params file and the options given (None = not given); the command line's own
    ``--ros-args`` come after these, so they win (rcl: the last assignment of a parameter counts)."""
    arguments = ["--ros-args", "--params-file", str(params_file)]
    names = [name for names in NODE_OPTIONS.values() for name in names]
    for name in names:
        if options.get(name) is not None:
            arguments += ["-p", f"{name}:={json.dumps(str(options[name]))}"]  # quoted: always a YAML string
    if unconfigured:
        arguments += ["-p", "autostart:=false"]
    return [*arguments, "--"]  # "--" ends this --ros-args segment: the program's own options follow


def node_values(params_file: Path, overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each node's parameters: its params-file section, then the given overrides (None = not given)."""
    values = {}
    for node_name, names in NODE_OPTIONS.items():
        section = node_params(params_file, node_name)
        section.update({name: overrides[name] for name in names if overrides.get(name) is not None})
        values[node_name] = section
    return values


def start_nodes(
    runtime: NodeRuntime, values: dict[str, dict[str, Any]], source: str, as_overrides: bool = True
) -> tuple[SceneMemoryNode, GroundingNode]:
    """Create both nodes in ``runtime`` (the grounding node reads the scene node's memory in-process).

    ``values`` as from :func:`node_values`; raises ParamsFileError naming ``source`` if one is not a
    parameter of its node. With ``as_overrides`` the values are node overrides, which outrank every
    ``--ros-args`` (for programs without a ROS command line, e.g. the demo); w2r2-bringup passes False
    and puts the params file into the runtime's arguments instead (:func:`ros_arguments`).
    """
    def overrides(node_name: str):
        return parameter_overrides(values[node_name]) if as_overrides else []

    scene = runtime.add(SceneMemoryNode(context=runtime.context, parameter_overrides=overrides(SCENE_MEMORY_NODE)))
    check_declared(SCENE_MEMORY_NODE, values[SCENE_MEMORY_NODE], _declared(scene), source)
    grounding = runtime.add(GroundingNode(scene.memory, context=runtime.context, parameter_overrides=overrides(GROUNDING_NODE)))
    check_declared(GROUNDING_NODE, values[GROUNDING_NODE], _declared(grounding), source)
    return scene, grounding


def _declared(node: SceneMemoryNode | GroundingNode) -> set[str]:
    return set(node.get_parameters_by_prefix("").keys())


def drain(scene: SceneMemoryNode, grounding: GroundingNode, quiet_s: float = 1.0, timeout_s: float = 30.0) -> bool:
    """Graceful stop: no more sensor data (the scene node is deactivated), every query received answered
    (BUSY "shutting down" for those that arrive now), results delivered. Queries published just before the
    signal are still in DDS's queues, so the executor keeps spinning until none has arrived for ``quiet_s``.
    Returns False if ``timeout_s`` ran out."""
    if scene.lifecycle_state == "active":
        scene.trigger_deactivate()
    return grounding.drain(quiet_s, timeout_s)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else [sys.argv[0], *argv])
    args = build_parser().parse_args(remove_ros_args(argv)[1:])
    try:
        values = node_values(args.params, vars(args))
    except ParamsFileError as error:
        print(f"w2r2-bringup: {error}", file=sys.stderr)
        return 2
    options = vars(args)
    runtime = NodeRuntime(args=[argv[0], *ros_arguments(args.params, options, args.unconfigured), *argv[1:]])
    stop = stop_on_signals()
    try:
        scene, grounding = start_nodes(runtime, values, str(args.params), as_overrides=False)
        runtime.start()
        states = f"{scene.lifecycle_state}, {grounding.lifecycle_state}"
        print(f"w2r2-bringup: scene_memory_node and grounding_node running ({states}) in namespace "
              f"'{scene.get_namespace()}' with {args.params}; Ctrl-C stops them", flush=True)
        wait_for(stop, runtime)
        drain(scene, grounding)
        return 0
    except (ValueError, ParameterException, LifecycleError) as error:  # a params-file problem, a value a node refuses
        print(f"w2r2-bringup: {error}", file=sys.stderr)
        return 2
    finally:
        runtime.shutdown()


if __name__ == "__main__":
    sys.exit(main())
