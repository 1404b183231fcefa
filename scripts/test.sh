#!/usr/bin/env bash
# The test command (the README's, and CI's through .ci/run): installs what the
# tests need into target/test-venv (pyarrow, a real reader of the lake; moto,
# a local S3-compatible server; the AWS CLI; the CI/CD linters), makes sure a
# headless browser is there (Chromium and chromedriver, from apt), starts the
# S3 server (tests/s3_server.py) on 127.0.0.1, runs every
# test, and stops the server. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests (tests/integration/browser.rs) drive a real headless
# Chromium through chromedriver. Debian's packages, because browser
# downloaders (Playwright's, chromiumoxide's) need a network that CI does not
# have, and apt's chromium-driver always matches its chromium. A developer
# elsewhere may set TEST_CHROMEDRIVER and TEST_CHROMIUM to their own.
find_browser() {
    TEST_CHROMEDRIVER=${TEST_CHROMEDRIVER:-$(command -v chromedriver || true)}
    if [ -z "${TEST_CHROMIUM:-}" ]; then
        # Debian's /usr/bin/chromium is a launcher script that adds the
        # flags of /etc/chromium.d: the tests want the bare binary.
        if [ -x /usr/lib/chromium/chromium ]; then
            TEST_CHROMIUM=/usr/lib/chromium/chromium
        else
            TEST_CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
        fi
    fi
    [ -n "$TEST_CHROMEDRIVER" ] && [ -n "$TEST_CHROMIUM" ]
}
if ! find_browser; then
    browser_help="the browser tests need chromium and chromedriver: install them (Debian: apt-get install chromium chromium-driver) or set TEST_CHROMEDRIVER and TEST_CHROMIUM"
    if ! command -v apt-get > /dev/null; then
        echo "no apt-get here; $browser_help" >&2
        exit 1
    elif [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo > /dev/null; then
        # -n: fail rather than wait for a password (CI has no terminal).
        as_root=(sudo -n)
    else
        echo "not root and no sudo; $browser_help" >&2
        exit 1
    fi
    # fonts-liberation: chromium only recommends it; the tests' screenshots
    # then render with the same fonts as a desktop install.
    install=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends chromium chromium-driver fonts-liberation)
    # A fresh machine may have no package lists yet: update only if the install fails.
    "${install[@]}" || { "${as_root[@]}" apt-get update && "${install[@]}"; } \
        || { echo "apt-get failed; $browser_help" >&2; exit 1; }
    find_browser || { echo "installed, yet not found; $browser_help" >&2; exit 1; }
fi
export TEST_CHROMEDRIVER TEST_CHROMIUM

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
