#!/usr/bin/env bash
# Generate the upstream ROS 2 interface packages that have no wheel (interfaces/: tf2_msgs,
# vision_msgs) and install them into .venv, which the ROS 2 wheels lay out like a ROS install
# prefix: Python code in lib/python3.X/site-packages/<pkg>, type support libraries in lib/,
# CMake config and .msg/.idl files in share/<pkg>. Afterwards `import tf2_msgs.msg` works in
# .venv/bin/python exactly as on a robot (interfaces/README.md).
#
# A package that Python already imports from somewhere else (a sourced ROS 2 install, a wheel)
# is skipped: the robot's own copy wins. A package built here before from unchanged inputs is
# skipped too (a stamp in .venv/share/<pkg> holds their hash).
# Called by scripts/build_interfaces.sh. Usage: scripts/build_upstream_interfaces.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PYTHON=$VENV/bin/python

fail() { echo "[interfaces] ERROR: $*" >&2; exit 1; }
[ -x "$PYTHON" ] || fail "no virtualenv at $VENV: run scripts/setup.sh first"

export PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
for source in interfaces/*/; do
  pkg=$(basename "$source")
  stamp=$VENV/share/$pkg/.w2r2_build_stamp
  hash=$( { (cd "$source" && sha256sum CMakeLists.txt package.xml msg/*.msg); sha256sum "$0" scripts/wheel_cmake_fixups.cmake;
            "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
  if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] &&
     "$PYTHON" -c "import $pkg.msg" 2>/dev/null; then
    echo "[interfaces] $pkg is up to date"
    continue
  fi
  if [ ! -f "$stamp" ] && found=$("$PYTHON" -c "import $pkg.msg, os; print(os.path.dirname($pkg.__file__))" 2>/dev/null); then
    echo "[interfaces] $pkg: using the one already installed at $found"
    continue
  fi
  work=$ROOT/build/upstream_interfaces/$pkg
  echo "[interfaces] generating $pkg from interfaces/$pkg/msg (cmake + rosidl; log: $work/*.log)"
  rm -rf "$work"
  mkdir -p "$work"
  # A staged copy: CMake refuses to export include folders inside the source tree, and .venv is in this checkout.
  cp -r "$source" "$work/src"
  run_step() {  # name, command...: run quietly, show the log's tail when it fails
    local name=$1; shift
    echo "[interfaces]   $pkg: $name"
    "$@" >"$work/$name.log" 2>&1 || { tail -n 40 "$work/$name.log" >&2; fail "$pkg: $name failed; full log: $work/$name.log"; }
  }
  run_step configure cmake -S "$work/src" -B "$work/build" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PROJECT_INCLUDE="$ROOT/scripts/wheel_cmake_fixups.cmake" \
    -DPython3_EXECUTABLE="$PYTHON" -DCMAKE_INSTALL_PREFIX="$VENV"
  run_step build cmake --build "$work/build" -j "$(nproc)"
  run_step install cmake --install "$work/build"
  "$PYTHON" -c 'import importlib, sys
from rclpy.serialization import serialize_message
module = importlib.import_module(sys.argv[1] + ".msg")
for name in [n for n in dir(module) if n[:1].isupper()]:
    serialize_message(getattr(module, name)())' "$pkg" || fail "$pkg was installed into $VENV but its messages do not import or serialize"
  echo "$hash" >"$stamp"
done
