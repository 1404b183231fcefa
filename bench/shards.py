"""Issue 18: a generated lake too large for one process, run as N shards in
sequence on this machine, each step its own process (as each would be its own
build): `retrain --shard K/N` (prepare) x N, `retrain --fit N`, `retrain
--score K/N` x N, `retrain --fan-in N`, then `predict --shard K/N` x N and
`predict --fan-in N`. Prints each step's wall time, CPU time and peak RSS,
and what the batch graph's critical path would take with N builds in
parallel (computed from the measured steps: the slowest shard of each stage
plus the single steps; not measured in parallel). With --single, an
unsharded `retrain --dry-run` of the same day on the same lake too, for its
peak RSS. With --generate SERIESxDAYS, the lake is first made afresh in
--lake: bench/generate.py writes the sales file beside it and one measured
`salescast ingest` loads it (the history's one-time backfill, in one process).

Usage: shards.py --binary BIN --lake DIR --config TOML --date D --shards N
       [--registry DIR] [--single] [--generate SERIESxDAYS]
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from measure import measure  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--lake", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--date", required=True)
    p.add_argument("--shards", type=int, required=True)
    p.add_argument("--registry", default=None)
    p.add_argument("--single", action="store_true")
    p.add_argument("--generate", default=None, metavar="SERIESxDAYS")
    a = p.parse_args()
    if a.generate:
        generate(a)
    registry = a.registry or os.path.join(os.path.dirname(os.path.abspath(a.lake)), "registry-shards")
    shutil.rmtree(registry, ignore_errors=True)
    base = [a.binary, "--config", a.config, "--lake", a.lake, "--registry", registry, "--json", "-q"]
    n = a.shards
    rows = []

    def step(name, args):
        run = measure(base + args)
        rows.append((name, run))
        print(f"{name}: {run.wall:.1f} s wall, {run.cpu:.1f} s CPU, {run.peak_mib:.0f} MiB peak", flush=True)
        return json.loads(run.stdout) if run.stdout.strip().startswith("{") else None

    day = ["--date", a.date]
    for k in range(n):
        step(f"retrain --shard {k}/{n}", ["retrain"] + day + ["--shard", f"{k}/{n}"])
    fit = step(f"retrain --fit {n}", ["retrain"] + day + ["--fit", str(n)])
    for k in range(n):
        step(f"retrain --score {k}/{n}", ["retrain"] + day + ["--score", f"{k}/{n}"])
    report = step(f"retrain --fan-in {n}", ["retrain"] + day + ["--fan-in", str(n)])
    for k in range(n):
        step(f"predict --shard {k}/{n}", ["predict"] + day + ["--shard", f"{k}/{n}"])
    step(f"predict --fan-in {n}", ["predict"] + day + ["--fan-in", str(n)])
    print(json.dumps({
        "decision": report["decision"],
        "challenger": report["challenger"]["version"],
        "family": report["challenger"]["family"],
        "rounds": report["challenger"]["rounds"],
        "holdout_wape": report["challenger"]["holdout"]["wape"],
        "window_rows": report["window"]["rows"],
        "fit_rows": fit["fit_rows"],
        "stacked_rows": fit["stacked_rows"],
    }, indent=1))

    def stage(prefix):
        return [r for name, r in rows if name.startswith(prefix)]

    sequential = sum(r.wall for _, r in rows)
    critical = (max(r.wall for r in stage("retrain --shard")) + stage("retrain --fit")[0].wall
                + max(r.wall for r in stage("retrain --score")) + stage("retrain --fan-in")[0].wall
                + max(r.wall for r in stage("predict --shard")) + stage("predict --fan-in")[0].wall)
    print("\n| step | wall (s) | CPU (s) | peak RSS (MiB) |\n|---|---:|---:|---:|")
    for name, r in rows:
        print(f"| `{name}` | {r.wall:.1f} | {r.cpu:.1f} | {r.peak_mib:.0f} |")
    print(f"\nsequential total {sequential:.1f} s; largest peak {max(r.peak_mib for _, r in rows):.0f} MiB; "
          f"critical path with {n} builds in parallel (computed) {critical:.1f} s")
    if a.single:
        single_registry = registry + "-single"
        shutil.rmtree(single_registry, ignore_errors=True)
        single = [a.binary, "--config", a.config, "--lake", a.lake, "--registry", single_registry, "--json", "-q"]
        run = measure(single + ["retrain"] + day + ["--dry-run"])
        out = json.loads(run.stdout)
        print(f"\nunsharded retrain --dry-run: {run.wall:.1f} s wall, {run.cpu:.1f} s CPU, {run.peak_mib:.0f} MiB peak; "
              f"challenger {out['challenger']['version']} (sharded: {report['challenger']['version']})")


def generate(a):
    """A fresh lake in a.lake from bench/generate.py's rows (SERIESxDAYS)."""
    series, days = a.generate.split("x")
    sales = os.path.join(os.path.dirname(os.path.abspath(a.lake)), f"generated-{a.generate}.parquet")
    run = measure([sys.executable, os.path.join(os.path.dirname(__file__), "generate.py"), sales, series, days])
    print(f"generate {a.generate}: {run.wall:.1f} s wall, {run.peak_mib:.0f} MiB peak; {run.stdout.strip()}", flush=True)
    shutil.rmtree(a.lake, ignore_errors=True)
    scratch = a.lake.rstrip("/") + "-ingest-registry"
    run = measure([a.binary, "--config", a.config, "--lake", a.lake, "--registry", scratch, "-q",
                   "ingest", "--input", sales])
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"ingest: {run.wall:.1f} s wall, {run.cpu:.1f} s CPU, {run.peak_mib:.0f} MiB peak", flush=True)


if __name__ == "__main__":
    main()
