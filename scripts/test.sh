#!/usr/bin/env bash
# The test command (the README's, and CI's through .ci/run): installs what the
# tests need into target/test-venv (pyarrow, a real reader of the lake; moto,
# a local S3-compatible server; the AWS CLI; the CI/CD linters), starts the S3 server (tests/s3_server.py) on
# 127.0.0.1, runs every
# test, and stops the server. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/test-venv
bash scripts/venv.sh "$venv"
export TEST_PYTHON="$PWD/$venv/bin/python"

# The local S3 server: a free port on loopback, stopped when this script ends.
port=$("$TEST_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$TEST_PYTHON" tests/s3_server.py 127.0.0.1 "$port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
    if "$TEST_PYTHON" -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
        break
    fi
    kill -0 "$moto_pid" 2>/dev/null || { echo "the S3 test server failed to start:"; cat target/moto.log; exit 1; }
    sleep 0.2
done
"$TEST_PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" \
    || { echo "the S3 test server did not answer on port $port"; cat target/moto.log; exit 1; }
export TEST_S3_ENDPOINT="http://127.0.0.1:$port"
# Its request log (one line per request), which tests read to see what was sent.
export TEST_S3_LOG="$PWD/target/moto.log"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_ENDPOINT_URL

cargo test --workspace --all-targets "$@"
