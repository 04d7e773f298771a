#!/usr/bin/env bash
# Set up w2r2_ros in a virtual environment at .venv in this checkout:
# pinned dependencies (requirements.txt), the package's own ROS messages, the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "[setup] installing pinned dependencies (requirements.txt)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
echo "[setup] installing w2r2_ros (editable)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "[setup] generating the package's ROS messages (scripts/build_interfaces.sh)"
scripts/build_interfaces.sh
echo "[setup] done: .venv/bin/w2r2-demo runs the demo, .venv/bin/python -m pytest runs the tests"
