"""Packaging: package.xml, setup.py/setup.cfg and the robot's colcon build (CMakeLists.txt)."""
import ast
import configparser
import importlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = [ROOT / "w2r2_ros", ROOT / "training", ROOT / "launch"]
GENERATED = [ROOT / "w2r2_ros" / kind for kind in ("msg", "srv", "action")]  # rosidl output, covered by rosidl_default_runtime
OWN_MODULES = {"w2r2_ros", "w2r2_training"}
# ROS interface packages without a wheel, generated into the venv from interfaces/ (ROS packages on a robot).
# Python modules whose ROS package has another name.
ROS_PACKAGE_OF_MODULE = {"tf2_ros": "tf2_ros_py"}
UPSTREAM_INTERFACES = {path.name for path in (ROOT / "interfaces").iterdir() if (path / "package.xml").is_file()}
DATA_GLOBS = ["launch/*.launch.py", "config/*.yaml", "config/*.xml", "msg/*.msg", "srv/*.srv", "action/*.action", "rviz/*.rviz"]


def _entry_points() -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


def _imported_top_level_modules() -> dict[str, Path]:
    """Absolute imports of the package's own sources (not the generated msg/), by top-level name."""
    found: dict[str, Path] = {}
    for code_dir in CODE_DIRS:
        for path in sorted(code_dir.rglob("*.py")):
            if any(generated in path.parents for generated in GENERATED):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], path)
    return found


def _package_xml_dependencies() -> set[str]:
    package = parse_package(str(ROOT / "package.xml"))
    return {dep.name for dep in package.exec_depends + package.build_depends + package.buildtool_depends}


def test_package_xml_is_valid_format_3_ament_cmake() -> None:
    package = parse_package(str(ROOT / "package.xml"))
    package.validate()
    assert package.package_format == 3
    assert package.name == "w2r2_ros"
    assert package.get_build_type() == "ament_cmake"
    assert package.version == importlib.metadata.version("w2r2_ros")  # the pip side agrees
    assert "rosidl_interface_packages" in [group.name for group in package.member_of_groups]
    assert {"rosidl_default_generators", "ament_cmake_python"} <= _package_xml_dependencies()
    assert "rosidl_default_runtime" in _package_xml_dependencies()


def test_package_xml_declares_every_ros_package_the_code_imports() -> None:
    """A ROS package is one whose Python module comes from a ROS wheel here (ros-* distribution)
    or is not installed here at all (launch, launch_ros, ...: they exist only on a robot)."""
    distributions = importlib.metadata.packages_distributions()
    declared = _package_xml_dependencies()
    missing = []
    for module, path in _imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module in OWN_MODULES:
            continue
        dists = distributions.get(module, [])
        is_ros = (any(d.startswith("ros-") for d in dists) or importlib.util.find_spec(module) is None
                  or module in UPSTREAM_INTERFACES)
        if is_ros and ROS_PACKAGE_OF_MODULE.get(module, module) not in declared:
            missing.append(f"{module} (imported in {path.relative_to(ROOT)})")
    assert not missing, f"package.xml lacks <exec_depend> for: {', '.join(missing)}"


def test_requirements_pin_every_third_party_module_the_code_imports() -> None:
    distributions = importlib.metadata.packages_distributions()
    pinned = {
        re.split(r"[\[=<>~ ]", line)[0].lower().replace("_", "-")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    unpinned = []
    for module, path in _imported_top_level_modules().items():
        dists = distributions.get(module, [])
        if module in sys.stdlib_module_names or module in OWN_MODULES | UPSTREAM_INTERFACES or not dists:
            continue
        if any(d.startswith("ros-") for d in dists):
            continue  # ROS packages: package.xml (test above); their wheels come with rclpy's
        if not {d.lower().replace("_", "-") for d in dists} & pinned:
            unpinned.append(f"{module} ({'/'.join(dists)}, imported in {path.relative_to(ROOT)})")
    assert not unpinned, f"requirements.txt does not pin: {', '.join(unpinned)}"


def _pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith(("#", "-"))]
    return {re.split(r"[\[=<>~ ]", line)[0].lower().replace("_", "-"): line.split("==")[-1] for line in lines}


# Python distributions a robot gets from apt through package.xml's rosdep keys.
APT_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "pyyaml": "python3-yaml", "opencv-python-headless": "python3-opencv",
            "matplotlib": "python3-matplotlib", "tqdm": "python3-tqdm", "psutil": "python3-psutil"}


def test_a_robot_gets_every_third_party_module_from_apt_or_requirements_robot() -> None:
    """docs/ROBOT_INSTALL.md: rosdep keys for what apt has, requirements-robot.txt (same versions as
    requirements.txt, nothing apt provides: numpy stays apt's) for the rest."""
    robot, pinned = _pins(ROOT / "requirements-robot.txt"), _pins(ROOT / "requirements.txt")
    assert all(pinned.get(name) == version for name, version in robot.items()), (robot, pinned)
    assert not set(robot) & (set(APT_KEYS) | {name for name in pinned if name.startswith("ros-")})
    declared = _package_xml_dependencies()
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module, path in _imported_top_level_modules().items():
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if module in sys.stdlib_module_names or module in OWN_MODULES | UPSTREAM_INTERFACES or not dists:
            continue
        if any(d.startswith("ros-") for d in dists) or dists & set(robot):
            continue
        if not any(APT_KEYS.get(d) in declared for d in dists):
            missing.append(f"{module} ({'/'.join(sorted(dists))}, imported in {path.relative_to(ROOT)})")
    assert not missing, f"neither a rosdep key in package.xml nor in requirements-robot.txt: {', '.join(missing)}"


def test_setup_py_data_files_cover_launch_config_msg_rviz(tmp_path: Path) -> None:
    """Runs setup.py's real install_data step and compares with the files in the tree."""
    subprocess.run(
        [sys.executable, "setup.py", "-q", "install_data", "-d", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True,
    )
    installed = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    expected = {f"share/w2r2_ros/{p.relative_to(ROOT).as_posix()}" for g in DATA_GLOBS for p in ROOT.glob(g)}
    expected |= {"share/w2r2_ros/package.xml", "share/ament_index/resource_index/packages/w2r2_ros"}
    assert len(list(ROOT.glob("msg/*.msg"))) == 6 and len(list(ROOT.glob("srv/*.srv"))) == len(list(ROOT.glob("action/*.action"))) == 1
    assert expected <= installed, f"missing from data_files: {sorted(expected - installed)}"


@pytest.mark.parametrize("name", sorted(_entry_points()))
def test_entry_point_resolves_to_a_callable(name: str) -> None:
    module_name, function_name = _entry_points()[name].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    assert callable(function)
    assert shutil.which(name) or Path(sys.prefix, "bin", name).exists(), f"{name} not installed by pip"


def _colcon() -> str | None:
    """colcon from W2R2_COLCON, else the one requirements.txt installs beside this interpreter, else PATH."""
    beside = Path(sys.executable).parent / "colcon"
    return os.environ.get("W2R2_COLCON") or (str(beside) if beside.exists() else shutil.which("colcon"))


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(
    _colcon() is None,
    reason="colcon not found: scripts/setup.sh installs it from requirements.txt, "
    "or set W2R2_COLCON=/path/to/colcon (docs/INTERFACES.md)",
)
def test_colcon_build_installs_a_usable_package(tmp_path: Path) -> None:
    """colcon builds the package as a robot's workspace would (the ROS wheels in this venv act as
    the underlay) and the install space holds messages, code, console scripts and data files."""
    source = tmp_path / "src" / "w2r2_ros"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in files:  # what a clone of the repository holds, without local build products
        if (ROOT / name).is_file() and not name.startswith("w2r2_ros/msg/"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    build = subprocess.run(
        [_colcon(), "build", "--event-handlers", "console_direct-", "--cmake-args",
         f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF",
         f"-DCMAKE_PROJECT_INCLUDE={ROOT / 'scripts' / 'wheel_cmake_fixups.cmake'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]

    prefix = tmp_path / "install" / "w2r2_ros"
    share = prefix / "share" / "w2r2_ros"
    assert (prefix / "share/ament_index/resource_index/packages/w2r2_ros").is_file()
    assert (prefix / "share/ament_index/resource_index/rosidl_interfaces/w2r2_ros").is_file()
    assert parse_package(str(share / "package.xml")).name == "w2r2_ros"
    for pattern in DATA_GLOBS:
        for path in ROOT.glob(pattern):
            assert (share / path.relative_to(ROOT)).is_file(), f"{path.relative_to(ROOT)} not installed"
    scripts = prefix / "lib" / "w2r2_ros"
    for name, target in _entry_points().items():
        script = scripts / name
        assert script.is_file() and os.access(script, os.X_OK), f"lib/w2r2_ros/{name} missing"
        module_name, function_name = target.split(":")
        assert f"from {module_name} import {function_name}" in script.read_text()

    # The installed messages and code work from the install space, not from this checkout.
    site = next((prefix / "lib").glob("python3*/site-packages"))
    check = (
        "import w2r2_ros, w2r2_training\n"
        "from w2r2_ros.ros.interfaces import GroundingResult, ObjectProposalArray\n"
        "from rclpy.serialization import serialize_message, deserialize_message\n"
        "m = GroundingResult(text='x', status=GroundingResult.STATUS_BUSY)\n"
        "assert deserialize_message(serialize_message(m), GroundingResult) == m\n"
        "print(w2r2_ros.__file__); print(w2r2_training.__file__)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site), LD_LIBRARY_PATH=str(prefix / "lib"))
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)  # let the venv add its own lib/ again
    run = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    assert all(line.startswith(str(site)) for line in run.stdout.split()), run.stdout
