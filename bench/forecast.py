"""Benchmark: forecast quality and end-to-end speed of salescast against the
Python reference pipeline (bench/reference.py: polars + LightGBM, same lake,
config, features, split and metrics), in one run on one machine.

Lakes: rossmann and store_item (../shared/data, ingested by salescast) and a
generated lake of SERIES x DAYS rows (bench/generate.py). Cases per lake:
salescast `retrain` on a fresh registry (the daily job: train, score, store,
promote), salescast `backtest` over the newest holdout days, and the
reference. Each case runs REPEATS times in a fresh process: median wall and
CPU time, largest peak RSS (bench/measure.py). Prints a Markdown table and
writes every figure to target/bench/forecast.json.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from datetime import date, timedelta

from lakes import OUT, REPO, ingest, lakes
from measure import repeat

def run_case(argv, repeats, prepare=None):
    s = repeat(argv, repeats, prepare)
    return {"wall": s.wall, "cpu": s.cpu, "peak_mib": s.peak_mib, "walls": [r.wall for r in s.runs],
            "report": json.loads(s.runs[-1].stdout)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--days", type=int, default=2000)
    parser.add_argument("--generated-history-days", type=int, default=730)
    parser.add_argument("--generated-repeats", type=int, default=1, help="repeats on the generated lake")
    parser.add_argument("--only", help="run only the lakes whose name starts with this")
    parser.add_argument("--render", action="store_true", help="print the tables of the last run's JSON")
    args = parser.parse_args()
    if args.render:
        with open(os.path.join(OUT, "forecast.json")) as f:
            print(table(json.load(f)["results"]))
        return
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="salescast-forecast-bench-")
    results = []
    for bench_lake in lakes(args.series, args.days, args.generated_history_days):
        name, config, day = bench_lake.name, bench_lake.config, bench_lake.run_date
        if args.only and not name.startswith(args.only):
            continue
        lake = os.path.join(work, name.split()[0], "lake")
        ingest(binary, bench_lake, lake)
        registry = os.path.join(work, name.split()[0], "registry")
        base = [binary, "--config", config, "--lake", lake, "--registry", registry, "-q", "--json"]
        repeats = args.generated_repeats if name.startswith("generated") else args.repeats
        end = date.fromisoformat(day)
        start = (end - timedelta(days=27)).isoformat()
        print(f"{name}: retrain", file=sys.stderr)
        retrain = run_case(base + ["retrain", "--date", day], repeats,
                           lambda: shutil.rmtree(registry, ignore_errors=True))
        print(f"{name}: backtest", file=sys.stderr)
        backtest = run_case(base + ["backtest", "--from", start, "--to", day], repeats)
        print(f"{name}: reference", file=sys.stderr)
        reference = run_case([sys.executable, os.path.join(REPO, "bench", "reference.py"), config, lake, day],
                             repeats)
        results.append({"lake": name, "date": day, "repeats": repeats, "retrain": retrain, "backtest": backtest,
                        "reference": reference})
    shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(OUT, "forecast.json"), "w") as f:
        json.dump({"machine": machine(), "repeats": args.repeats, "results": results}, f, indent=1)
    print(table(results))


def machine():
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"


def table(results):
    lines = [f"Machine: {machine()}", "",
             "| lake | rows trained | case | wall (s) | CPU (s) | peak RSS (MiB) | holdout WAPE | reference wall / this |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        ref = r["reference"]
        retrain, backtest = r["retrain"]["report"], r["backtest"]["report"]
        picked = next(f for f in backtest["families"] if f["family"] == backtest["picked"])
        cases = [
            (f"salescast retrain ({retrain['challenger']['family']}, {retrain['decision']})", r["retrain"],
             retrain["challenger"]["holdout"]["wape"], retrain["window"]["training_rows"]),
            (f"salescast backtest (picked {backtest['picked']})", r["backtest"], picked["backtest"]["wape"],
             backtest["training_rows"]),
            (f"reference: polars + LightGBM {ref['report']['lightgbm']} ({ref['report']['rounds']} rounds)", ref,
             ref["report"]["holdout"]["wape"], ref["report"]["training_rows"]),
        ]
        for label, run, wape, rows in cases:
            lines.append(f"| {r['lake']} | {rows:,} | {label} | {run['wall']:.2f} | {run['cpu']:.2f} | "
                         f"{run['peak_mib']:.0f} | {wape:.4f} | {ref['wall'] / run['wall']:.2f}x |")
    lines += ["", "Where the time goes (seconds inside the process, from the last repeat's own report):", "",
              "| lake | phase | salescast retrain | reference |", "|---|---|---:|---:|"]
    for r in results:
        ours, theirs = r["retrain"]["report"]["seconds"], r["reference"]["report"]["seconds"]
        phases = [
            ("start-up (Python imports)", None, theirs["import"]),
            ("read the window", ours["read"], theirs["read"]),
            ("features (+ design matrix)", ours["features"], theirs["features"] + theirs["design"]),
            ("fit: candidates + refit (salescast); search + refit (LightGBM)", ours["train"],
             theirs["search"] + theirs["refit"]),
            ("score the holdout (salescast: also the champion and baseline)", ours["evaluate"], theirs["evaluate"]),
        ]
        for label, a, b in phases:
            lines.append(f"| {r['lake']} | {label} | {'-' if a is None else f'{a:.2f}'} | {b:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
