#!/usr/bin/env bash
# Creates or updates the Python venv the tests and lints use (default
# target/test-venv) with the pinned packages of tests/requirements.txt.
# Usage: scripts/venv.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-target/test-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
