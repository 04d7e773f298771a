#!/usr/bin/env bash
# Generate the package's own ROS 2 messages (msg/*.msg) for the virtualenv at .venv.
#
# Runs the package's CMakeLists.txt (rosidl_generate_interfaces, -DW2R2_INTERFACES_ONLY=ON)
# against the ROS 2 wheels installed in .venv, which lay out .venv like a ROS install prefix
# (include/, lib/, share/). Then it places the results where a ROS 2 install would put them
# relative to the Python code, so that `from w2r2_ros.msg import GroundingQuery` works with
# the editable install:
#   w2r2_ros/msg/*.py                       the generated message classes
#   w2r2_ros/w2r2_ros_s__rosidl_typesupport_*.so   the Python C extensions
#   .venv/lib/libw2r2_ros__*.so             the C/C++ type support libraries, beside the
#                                           wheels' own (.venv/lib is on LD_LIBRARY_PATH for
#                                           every .venv/bin/python, set by the wheels'
#                                           ros_wheels_bootstrapper)
# Skips all of it when the inputs have not changed since the last build (a stamp holds
# their hash). Usage: scripts/build_interfaces.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
WORK=$ROOT/build/w2r2_interfaces
STAMP=$ROOT/w2r2_ros/msg/.build_stamp
PYTHON=$VENV/bin/python

fail() { echo "[interfaces] ERROR: $*" >&2; exit 1; }

[ -x "$PYTHON" ] || fail "no virtualenv at $VENV: run scripts/setup.sh first"
command -v cmake >/dev/null || fail "cmake not found (need >= 3.19; apt-get install cmake)"
command -v c++ >/dev/null || fail "no C/C++ compiler found (apt-get install build-essential)"
[ -f "$VENV/share/rosidl_default_generators/cmake/rosidl_default_generatorsConfig.cmake" ] ||
  fail "rosidl generators missing in .venv: pip install -r requirements.txt"

# Upstream interface packages without a wheel (tf2_msgs, vision_msgs): interfaces/README.md.
scripts/build_upstream_interfaces.sh "$@"

inputs=(CMakeLists.txt package.xml msg/*.msg srv/*.srv action/*.action scripts/build_interfaces.sh scripts/wheel_cmake_fixups.cmake)
hash=$( { sha256sum "${inputs[@]}"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
outputs=(w2r2_ros/msg/__init__.py w2r2_ros/w2r2_ros_s__rosidl_typesupport_c.so
         "$VENV/lib/libw2r2_ros__rosidl_typesupport_c.so")
up_to_date=1
[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$hash" ] || up_to_date=0
for f in "${outputs[@]}"; do [ -e "$f" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ] && [ "${1:-}" != "--force" ]; then
  echo "[interfaces] w2r2_ros messages are up to date (msg/*.msg unchanged)"
  exit 0
fi

echo "[interfaces] generating w2r2_ros messages from msg/*.msg (cmake + rosidl; log: $WORK/*.log)"
rm -rf "$WORK"
mkdir -p "$WORK/src"
# A staged copy of the sources: CMake refuses to export include folders that lie inside the
# source tree, and .venv (NumPy's headers) lies inside this checkout.
cp -r CMakeLists.txt package.xml msg srv action "$WORK/src/"

export PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
run_step() {  # name, command...: run quietly, show the log's tail when it fails
  local name=$1; shift
  echo "[interfaces]   $name"
  "$@" >"$WORK/$name.log" 2>&1 || {
    tail -n 40 "$WORK/$name.log" >&2
    fail "$name failed; full log: $WORK/$name.log"
  }
}
run_step configure cmake -S "$WORK/src" -B "$WORK/build" \
  -DW2R2_INTERFACES_ONLY=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PROJECT_INCLUDE="$ROOT/scripts/wheel_cmake_fixups.cmake" \
  -DPython3_EXECUTABLE="$PYTHON" -DCMAKE_INSTALL_PREFIX="$WORK/install"
run_step build cmake --build "$WORK/build" -j "$(nproc)"
run_step install cmake --install "$WORK/build"

site=$WORK/install/lib/python$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')/site-packages/w2r2_ros
[ -f "$site/msg/__init__.py" ] || fail "generated Python package missing at $site/msg"
echo "[interfaces]   installing into w2r2_ros/msg/, w2r2_ros/ (C extensions), .venv/lib/"
for kind in msg srv action; do
  rm -rf "w2r2_ros/$kind"
  mkdir -p "w2r2_ros/$kind"
  cp "$site/$kind"/*.py "w2r2_ros/$kind/"
done
cp "$site"/w2r2_ros_s__rosidl_typesupport_*.so w2r2_ros/
cp "$WORK"/install/lib/libw2r2_ros__*.so "$VENV/lib/"

"$PYTHON" -c 'from w2r2_ros.msg import GroundingQuery, GroundingResult, GroundingCandidate, ObjectProposal, ObjectProposalArray, SceneKeyframe
from w2r2_ros.srv import Ground as GroundService
from w2r2_ros.action import Ground
from rclpy.serialization import serialize_message
serialize_message(GroundingResult())' || fail "generated messages do not import or serialize"
echo "$hash" >"$STAMP"
echo "[interfaces] done: from w2r2_ros.msg import GroundingQuery, GroundingResult, ... works"
