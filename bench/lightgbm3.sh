#!/usr/bin/env bash
# `bench/run lightgbm3`: LightGBM through the lightgbm3 crate against forust-ml
# on the same rows and settings, for rossmann, store_item and the generated
# lake. Needs libclang (Debian: libclang-dev) and CMake >= 3.28 (installed
# from PyPI into the venv here). Usage: bench/lightgbm3.sh SALESCAST VENV
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$1 venv=$2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt "cmake>=3.28,<4"
out=target/bench
mkdir -p "$out"
generated=$out/generated-5000x2000.parquet
[ -f "$generated" ] || "$venv/bin/python" bench/generate.py "$generated" 5000 2000
cargo build --release --quiet --manifest-path bench/lightgbm3-probe/Cargo.toml --target-dir target/lightgbm3-probe
probe=target/lightgbm3-probe/release/lightgbm3-probe
while read -r name config day ingest; do
    lake=$out/lakes/$name
    [ -d "$lake" ] || eval "\"$binary\" --config $config --lake $lake -q ingest $ingest" > /dev/null
    "$venv/bin/python" bench/dump_design.py "$config" "$lake" "$day" "$out/designs/$name" > /dev/null
    echo "== $name"
    "$probe" "$out/designs/$name"
done <<LAKES
rossmann examples/rossmann.toml 2015-07-31 --input ../shared/data/rossmann/train.csv --attributes store=../shared/data/rossmann/store.csv
store_item examples/store_item.toml 2017-12-31 --input ../shared/data/store_item/train.csv
generated bench/generated.toml 2025-12-31 --input $generated
LAKES
