"""Node parameters from the ROS 2 params file and the launch file, without a launch system.

``config/w2r2.yaml`` uses the standard params-file layout
(``node_name: ros__parameters: {...}``), so ``ros2 launch`` on a robot and
``w2r2-bringup`` here read the same file. This module turns one node's section
into ``rclpy`` parameter overrides, resolves the ``package://`` paths the
defaults use, and reads the arguments that ``launch/w2r2.launch.py`` declares
(by parsing it with :mod:`ast`: ``launch``/``launch_ros`` do not install here).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any, Mapping

import yaml
from rclpy.parameter import Parameter

import w2r2_ros

PACKAGE_NAME = "w2r2_ros"
PACKAGE_URI_PREFIX = f"package://{PACKAGE_NAME}/"
# The checkpoint parameter's default: the model shipped inside the Python package.
DEFAULT_CHECKPOINT = PACKAGE_URI_PREFIX + "models/default"
PARAMETERS_KEY = "ros__parameters"


class ParamsFileError(ValueError):
    """A params file that cannot be used; the message names the file and the field."""


def package_dir() -> Path:
    """Directory of the installed ``w2r2_ros`` Python package (where ``models/`` ships)."""
    return Path(w2r2_ros.__file__).resolve().parent


def resolve_package_path(value: str) -> Path | None:
    """``package://w2r2_ros/<rest>`` -> ``<package dir>/<rest>``; any other non-empty string is a plain path.

    Returns None for an empty value (the node then answers "model not loaded").
    A ``package://`` URI keeps the same default valid in the YAML file, the
    launch file and the node, wherever the package is installed.
    """
    value = value.strip()
    if not value:
        return None
    if value.startswith(PACKAGE_URI_PREFIX):
        return package_dir() / value[len(PACKAGE_URI_PREFIX):]
    if value.startswith("package://"):
        raise ValueError(f"only {PACKAGE_URI_PREFIX}... paths can be resolved here, got {value!r}")
    return Path(value).expanduser()


def default_params_file() -> Path:
    """``config/w2r2.yaml``: in the source checkout (editable install) or in ``share/w2r2_ros/config``."""
    candidates = [
        package_dir().parent / "config" / "w2r2.yaml",
        Path(sys.prefix) / "share" / PACKAGE_NAME / "config" / "w2r2.yaml",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


def load_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every node's ``ros__parameters`` of a params file: ``{node_name: {param: value}}``."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ParamsFileError(f"{path}: cannot read params file ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise ParamsFileError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from error
    if not isinstance(document, dict):
        raise ParamsFileError(f"{path}: expected a mapping of node names, got {type(document).__name__}")
    sections: dict[str, dict[str, Any]] = {}
    for node_name, section in document.items():
        if not isinstance(section, dict) or not isinstance(section.get(PARAMETERS_KEY), dict):
            raise ParamsFileError(f"{path}: {node_name}: expected a '{PARAMETERS_KEY}' mapping")
        for name, value in section[PARAMETERS_KEY].items():
            if isinstance(value, dict):
                raise ParamsFileError(
                    f"{path}: {node_name}.{PARAMETERS_KEY}.{name}: nested parameters are not used by w2r2_ros nodes"
                )
        sections[str(node_name)] = dict(section[PARAMETERS_KEY])
    return sections


def node_params(path: str | Path, node_name: str) -> dict[str, Any]:
    """One node's parameters from a params file; a missing section is an error (a typo in the node name)."""
    sections = load_params_file(path)
    if node_name not in sections:
        raise ParamsFileError(f"{path}: no '{node_name}' section (found: {', '.join(sorted(sections)) or 'none'})")
    return sections[node_name]


def parameter_overrides(values: Mapping[str, Any]) -> list[Parameter]:
    """``rclpy`` parameter overrides (for ``Node(..., parameter_overrides=...)``) from plain values."""
    return [Parameter(name, value=value) for name, value in values.items()]


def check_declared(node_name: str, values: Mapping[str, Any], declared: set[str], source: str) -> None:
    """Raise if ``values`` names a parameter the node does not declare (rclpy would ignore it silently)."""
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ParamsFileError(
            f"{source}: {node_name} has no parameter(s) {', '.join(unknown)} (it declares: {', '.join(sorted(declared))})"
        )


def _literal_or_none(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def launch_arguments(launch_file: str | Path, variable: str = "NODE_ARGUMENTS") -> dict[str, dict[str, str | None]]:
    """The ``DeclareLaunchArgument`` calls of a launch file, grouped by the node they configure.

    The launch file lists them in module-level dicts such as ``NODE_ARGUMENTS =
    {"<node name>": [DeclareLaunchArgument("<param>", default_value="...")...]}``;
    ``variable`` names the dict to group by; arguments declared outside every
    module-level ``*_ARGUMENTS`` dict (e.g. the params file path) come under the
    key ``""``. A default that is not a literal (a substitution) is returned as None.
    """
    path = Path(launch_file)
    tree = ast.parse(path.read_text(), filename=str(path))
    grouped: dict[str, dict[str, str | None]] = {}
    claimed: set[int] = set()

    def declared(call: ast.Call) -> tuple[str, str | None]:
        if not call.args or not isinstance(call.args[0], ast.Constant):
            raise ValueError(f"{path}:{call.lineno}: DeclareLaunchArgument needs a literal name")
        default = next((_literal_or_none(k.value) for k in call.keywords if k.arg == "default_value"), None)
        return str(call.args[0].value), default

    def is_declaration(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "DeclareLaunchArgument"

    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Dict)):
            continue
        names = [getattr(t, "id", "") for t in statement.targets]
        if not any(name.endswith("_ARGUMENTS") for name in names):
            continue
        calls_by_node = {}
        for key, value in zip(statement.value.keys, statement.value.values):
            node_name = _literal_or_none(key) if key is not None else None
            if not isinstance(node_name, str):
                raise ValueError(f"{path}:{statement.lineno}: {names[0]} keys must be node names")
            calls = [c for c in ast.walk(value) if is_declaration(c)]
            claimed.update(id(c) for c in calls)
            calls_by_node[node_name] = dict(declared(c) for c in calls)
        if variable in names:
            grouped.update(calls_by_node)
    loose = [c for c in ast.walk(tree) if is_declaration(c) and id(c) not in claimed]
    if loose:
        grouped[""] = dict(declared(c) for c in loose)
    return grouped
