#!/usr/bin/env bash
# The test command (the README's, and CI's through .ci/run): installs what the
# tests need into target/test-venv (pyarrow, a real reader of the lake), then
# runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/test-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export TEST_PYTHON="$PWD/$venv/bin/python"

cargo test --all-targets "$@"
