"""Benchmark: ingest + window read/validation + feature building on the
store_item data (913,000 rows), with pyarrow doing the same ingest (CSV to a
Hive-partitioned Parquet dataset) as the comparison, measured in the same run.

Each case runs REPEATS times in a fresh process; the table shows the median
wall time, the median CPU time (user + system) and the largest peak RSS.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile

from measure import repeat

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "data", "store_item", "train.csv")
CONFIG = os.path.join(REPO, "examples", "store_item.toml")

PYARROW_INGEST = r"""
import sys, pyarrow.csv as csv, pyarrow.dataset as ds
table = csv.read_csv(sys.argv[1]).sort_by("date")
table = table.append_column("dt", table.column("date").cast("string"))
ds.write_dataset(table, sys.argv[2] + "/sales", format="parquet", partitioning=["dt"],
                 partitioning_flavor="hive", existing_data_behavior="overwrite_or_ignore",
                 max_partitions=4096)
"""


def run_case(argv, repeats, prepare=None):
    s = repeat(argv, repeats, prepare)
    return s.wall, s.cpu, s.peak_mib, [r.stdout for r in s.runs]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="salescast-bench-")
    lake = os.path.join(work, "lake")
    pyarrow_lake = os.path.join(work, "pyarrow-lake")

    def fresh(path):
        return lambda: shutil.rmtree(path, ignore_errors=True)

    base = [binary, "--config", CONFIG, "--lake", lake, "-q"]
    rows = []
    rows.append(("salescast ingest (CSV -> 1,826 daily partitions, validated)",
                 run_case(base + ["ingest", "--input", DATA], args.repeats, fresh(lake))))
    rows.append(("pyarrow read_csv + sort + write_dataset (hive partitions, no validation)",
                 run_case([sys.executable, "-c", PYARROW_INGEST, DATA, pyarrow_lake], args.repeats, fresh(pyarrow_lake))))
    rows.append(("salescast ingest again (idempotent: nothing to write)",
                 run_case(base + ["ingest", "--input", DATA], args.repeats)))
    check = run_case(base + ["--json", "check", "--date", "2017-12-31"], args.repeats)
    rows.append(("salescast check (730-day window: read, validate, build features)", check))
    phases = [json.loads(o) for o in check[3]]
    read_s = statistics.median(p["read_seconds"] for p in phases)
    feat_s = statistics.median(p["feature_seconds"] for p in phases)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"data: {DATA} (913,000 rows); repeats: {args.repeats}\n")
    print("| case | wall (s) | CPU (s) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for name, (wall, cpu, rss, _) in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} |")
    ratio = rows[0][1][0] / rows[1][1][0]
    print(f"\nsalescast ingest / pyarrow ingest wall time: {ratio:.2f}x")
    print(f"check phases (median, inside the process): read+validate {read_s:.2f} s, features {feat_s:.2f} s "
          f"({phases[0]['rows']} rows)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
