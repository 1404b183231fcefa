#!/usr/bin/env bash
# Fetches the shared datasets the tests read (../shared/data, see its
# README.md) from their public sources at pinned commits, and checks each
# file's sha256; for a machine that lacks them, such as a GitHub runner.
# A mismatch fails loudly rather than testing on other data.
# Not run by .ci/run: the project's CI machine has ../shared already, and no
# route to GitHub. Usage: scripts/fetch-shared-data.sh [DIR, default ../shared/data]
set -euo pipefail
dir=${1:-"$(dirname "$0")/../../shared/data"}
mkdir -p "$dir/rossmann" "$dir/store_item"
dir=$(cd "$dir" && pwd)
raw=https://raw.githubusercontent.com
rossmann=$raw/NurMithu/sales-forecasting-rossmann/77385ea622b9958eb7764bbfcf7e70ae27c3deb8/data
store_item=$raw/aakashsyadav1999/Store-Item-Demand-Forecasting-Challenge/b3915000ff14030063c73f64d03fbccefcb368b5/data

fetch() { # URL FILE
    [ -s "$2" ] || curl --fail --silent --show-error --location --retry 3 -o "$2" "$1"
}
fetch "$rossmann/train.csv" "$dir/rossmann/train.csv"
fetch "$rossmann/store.csv" "$dir/rossmann/store.csv"
if [ ! -s "$dir/store_item/train.csv" ]; then
    tmp=$(mktemp -d)
    fetch "$store_item/demand-forecasting-kernels-only.zip" "$tmp/data.zip"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("train.csv", sys.argv[2])' \
        "$tmp/data.zip" "$dir/store_item"
    rm -rf "$tmp"
fi
cd "$dir"
sha256sum --check --strict <<'SUMS'
75ad4bdc56993c406e2a5fcc20c1e7d5cf2e45e9758fbeeeda4968dc3d599095  rossmann/train.csv
6e1f73621f51f9cd9447a6a01d4aaea41fda65480ddfb723642efcfe96438ad0  rossmann/store.csv
038f25690a65149c94f86ddd3deceda20c037a5cfd754cafdfc539a72992f2ed  store_item/train.csv
SUMS
