"""Benchmark for the forecast-horizons issue (12), in one run on one machine:

1. rossmann: `salescast retrain --dry-run` (examples/rossmann.toml, 2015-07-31,
   empty registry) next to bench/reference_horizons.py (LightGBM direct,
   recursive, seasonal naive, its split-conformal intervals): WAPE and bias per
   horizon bucket (h=1, 1-7, 8-14, 1-14), interval coverage, wall time and peak
   RSS of each process.
2. The generated lake (bench/generate.py: SERIES x DAYS rows, ingested by
   salescast, bench/generated.toml): `retrain` on an empty registry with the
   default horizon (14) and with `[forecast] horizon_days = 1`; then
   `predict --date <last day>` with the H=14 champion, and the same predict
   again (unchanged inputs: the partition's bytes are compared).

Every case runs once in a fresh process (bench/measure.py: wall, CPU, peak RSS
from wait4); the 1-minute load average is recorded before each case, since the
machine may be shared. Writes every figure to --out (default
target/bench/horizons.json) and prints Markdown tables; --render prints the
tables of an earlier run's JSON.

Usage: horizons.py --binary SALESCAST [--work DIR] [--series 5000] [--days 2000]
  [--keep] [--out JSON] [--render]
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

from lakes import OUT, REPO, SHARED
from measure import measure

ROSSMANN_DAY = "2015-07-31"
GENERATED_DAY = "2025-12-31"
BUCKETS = ("h=1", "1-7", "8-14", "1-14")
# The issue's figures to beat (the better LightGBM strategy per column).
TARGETS = {"h=1": 0.0777, "1-7": 0.0797, "8-14": 0.0809, "1-14": 0.0802}


def load():
    return os.getloadavg()[0]


def case(argv):
    """One measured run; the load average before and after it."""
    before = load()
    print(f"  {' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))}", file=sys.stderr)
    run = measure(argv)
    out = {"argv": argv, "wall": run.wall, "cpu": run.cpu, "peak_mib": run.peak_mib, "load_before": before,
           "load_after": load()}
    try:
        out["report"] = json.loads(run.stdout)
    except json.JSONDecodeError:
        out["stdout"] = run.stdout[-2000:]
    return out


def salescast_buckets(report):
    """WAPE, bias, rows and coverage per bucket from a retrain report."""
    ch = report["challenger"]
    out = {"h=1": dict(ch["horizons"]["per_horizon"][0]["metrics"], coverage=None)}
    for b in ch["horizons"]["buckets"]:
        out[f"{b['first']}-{b['last']}"] = dict(b["metrics"], coverage=b.get("coverage"))
    out["one_day"] = ch["one_day"]
    return out


def tree_digest(folder):
    """SHA-256 over every file's relative path and bytes under `folder`."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).encode())
            with open(path, "rb") as f:
                digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def rossmann(binary, work):
    folder = os.path.join(work, "rossmann")
    lake, registry = os.path.join(folder, "lake"), os.path.join(folder, "registry")
    config = os.path.join(REPO, "examples", "rossmann.toml")
    data = os.path.join(SHARED, "rossmann")
    print("rossmann: ingest", file=sys.stderr)
    ingest = case([binary, "--config", config, "--lake", lake, "-q", "--json", "ingest",
                   "--input", os.path.join(data, "train.csv"), "--attributes",
                   "store=" + os.path.join(data, "store.csv")])
    print("rossmann: retrain --dry-run", file=sys.stderr)
    retrain = case([binary, "--config", config, "--lake", lake, "--registry", registry, "-q", "--json",
                    "retrain", "--dry-run", "--date", ROSSMANN_DAY])
    print("rossmann: reference (bench/reference_horizons.py)", file=sys.stderr)
    ref_json = os.path.join(folder, "reference-horizons.json")
    reference = case([sys.executable, os.path.join(REPO, "bench", "reference_horizons.py"), "--data", data,
                      "--out", ref_json, "--last-day", ROSSMANN_DAY])
    with open(ref_json) as f:
        reference["result"] = json.load(f)
    reference.pop("stdout", None)
    return {"ingest": ingest, "retrain": retrain, "buckets": salescast_buckets(retrain["report"]),
            "reference": reference}


def generated(binary, work, series, days):
    folder = os.path.join(work, "generated")
    os.makedirs(folder, exist_ok=True)
    parquet = os.path.join(folder, f"generated-{series}x{days}.parquet")
    print("generated: write the file (bench/generate.py)", file=sys.stderr)
    subprocess.run([sys.executable, os.path.join(REPO, "bench", "generate.py"), parquet, str(series), str(days)],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(REPO, "bench", "generated.toml")) as f:
        base = f.read()
    configs = {}
    for horizon in (14, 1):
        configs[horizon] = os.path.join(folder, f"generated-h{horizon}.toml")
        with open(configs[horizon], "w") as f:
            # H=14 is the default configuration: bench/generated.toml as it is.
            f.write(base if horizon == 14 else base + "\n[forecast]\nhorizon_days = 1\n")
    lake = os.path.join(folder, "lake")
    print("generated: ingest", file=sys.stderr)
    ingest = case([binary, "--config", configs[14], "--lake", lake, "-q", "--json", "ingest", "--input", parquet])
    out = {"series": series, "days": days, "ingest": ingest, "retrain": {}}
    for horizon in (14, 1):
        registry = os.path.join(folder, f"registry-h{horizon}")
        shutil.rmtree(registry, ignore_errors=True)
        print(f"generated: retrain H={horizon} (empty registry)", file=sys.stderr)
        run = case([binary, "--config", configs[horizon], "--lake", lake, "--registry", registry, "-q", "--json",
                    "retrain", "--date", GENERATED_DAY])
        run["buckets"] = salescast_buckets(run["report"])
        out["retrain"][str(horizon)] = run
    predict = [binary, "--config", configs[14], "--lake", lake, "--registry", os.path.join(folder, "registry-h14"),
               "-q", "--json", "predict", "--date", GENERATED_DAY]
    predictions = os.path.join(lake, "predictions")
    print("generated: predict", file=sys.stderr)
    out["predict"] = case(predict)
    out["predict"]["digest"] = tree_digest(predictions)
    out["predict"]["files"] = sorted(os.path.relpath(os.path.join(r, n), predictions)
                                     for r, _, fs in os.walk(predictions) for n in fs)
    print("generated: predict again (unchanged)", file=sys.stderr)
    out["predict_again"] = case(predict)
    out["predict_again"]["digest"] = tree_digest(predictions)
    out["predict_again"]["same_bytes"] = out["predict_again"]["digest"] == out["predict"]["digest"]
    out["predictions_readback"] = readback(predictions)
    return out


def readback(folder):
    """Rows and columns of the predictions as pyarrow reads them (a check that
    the row count in the report is what landed)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    files = [os.path.join(r, n) for r, _, fs in os.walk(folder) for n in fs if n.endswith(".parquet")]
    tables = [pq.read_table(f) for f in sorted(files)]
    return {"files": len(files), "rows": sum(t.num_rows for t in tables),
            "columns": tables[0].column_names if tables else []}


def machine():
    cpu, ram = "unknown", None
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    with open("/proc/meminfo") as f:
        kib = next((int(line.split()[1]) for line in f if line.startswith("MemTotal")), None)
        ram = None if kib is None else round(kib / 1024 / 1024, 1)
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": ram, "kernel": platform.release(),
            "platform": platform.platform(), "python": platform.python_version()}


def git_commit():
    try:
        return subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def fmt(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def tables(result):
    ross = result["rossmann"]
    ref = ross["reference"]["result"]
    lines = [f"Run {result['started']}, commit {result['commit']}, binary {result['binary']}; "
             f"machine {result['machine']}; load average (1 min) {result['load_start']:.2f} at the start, "
             f"{result['load_end']:.2f} at the end.", "",
             "Quality on rossmann (WAPE; rolling origins 2015-07-03..2015-07-30, open days scored):", "",
             "| model | " + " | ".join(BUCKETS) + " | bias 1-14 | wall (s) | peak RSS (MiB) |",
             "|---|" + "---:|" * (len(BUCKETS) + 3)]
    sc = ross["buckets"]
    lines.append("| salescast retrain --dry-run (" + ross["retrain"]["report"]["challenger"]["family"] + ") | "
                 + " | ".join(f"**{sc[b]['wape']:.4f}**" if sc[b]["wape"] <= TARGETS[b] else f"{sc[b]['wape']:.4f}"
                              for b in BUCKETS)
                 + f" | {sc['1-14']['bias']:+.4f} | {ross['retrain']['wall']:.1f} | "
                   f"{ross['retrain']['peak_mib']:.0f} |")
    lines.append("| salescast baseline (seasonal naive, pooled 1-14) | - | - | - | "
                 f"{ross['retrain']['report']['baseline']['wape']:.4f} | "
                 f"{ross['retrain']['report']['baseline']['bias']:+.4f} | | |")
    for key, name in (("direct", "reference direct"), ("recursive", "reference recursive"),
                      ("seasonal_naive", "reference seasonal naive")):
        m = ref["strategies"][key]["metrics"]
        lines.append(f"| {name} | " + " | ".join(f"{m[b]['wape']:.4f}" for b in BUCKETS)
                     + f" | {m['1-14']['bias']:+.4f} | {ref['strategies'][key]['seconds']:.1f} (in-process) | |")
    lines.append("| issue target (better LightGBM strategy) | " + " | ".join(f"{TARGETS[b]:.4f}" for b in BUCKETS)
                 + " | | | |")
    lines.append(f"| (reference process total) | | | | | | {ross['reference']['wall']:.1f} | "
                 f"{ross['reference']['peak_mib']:.0f} |")
    lines += ["", "Bias per bucket (sum error / sum actual): salescast "
              + ", ".join(f"{b} {sc[b]['bias']:+.4f}" for b in BUCKETS) + "; rows "
              + ", ".join(f"{b} {sc[b]['rows']:,}" for b in BUCKETS) + "."]
    cov = ref["intervals"]["coverage"]
    lines += ["", "80 % interval coverage on the rossmann holdout:", "",
              "| bucket | salescast (symmetric, log space) | reference ratio | reference additive |",
              "|---|---:|---:|---:|"]
    for b in ("1-7", "8-14", "1-14"):
        lines.append(f"| {b} | {fmt(sc[b]['coverage'], '.3f')} | {cov['ratio'][b]['coverage']:.3f} | "
                     f"{cov['additive'][b]['coverage']:.3f} |")
    gen = result.get("generated")
    if gen:
        lines += ["", f"Generated lake ({gen['series']:,} series x {gen['days']:,} days):", "",
                  "| case | wall (s) | CPU (s) | peak RSS (MiB) | load before | WAPE h=1 | 1-7 | 8-14 | 1-14 "
                  "| coverage 1-H |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        i = gen["ingest"]
        lines.append(f"| ingest | {i['wall']:.1f} | {i['cpu']:.1f} | {i['peak_mib']:.0f} | {i['load_before']:.1f}"
                     " | | | | | |")
        for h in ("14", "1"):
            r = gen["retrain"][h]
            b = r["buckets"]
            cells = [fmt(b.get(k, {}).get("wape")) for k in BUCKETS] + [fmt(b[f"1-{h}"]["coverage"], ".3f")]
            lines.append(f"| retrain H={h} ({r['report']['decision']}) | {r['wall']:.1f} | {r['cpu']:.1f} | "
                         f"{r['peak_mib']:.0f} | {r['load_before']:.1f} | " + " | ".join(cells) + " |")
        for key, name in (("predict", "predict"), ("predict_again", "predict again (unchanged)")):
            p = gen[key]
            rep = p.get("report", {})
            lines.append(f"| {name}: {rep.get('rows', 0):,} rows, {rep.get('series', 0):,} series, "
                         f"{rep.get('written', {}).get('outcome')}, {rep.get('seconds', 0):.2f} s in-process | "
                         f"{p['wall']:.2f} | {p['cpu']:.2f} | {p['peak_mib']:.0f} | {p['load_before']:.1f} "
                         "| | | | | |")
        lines += ["", f"predict again wrote the same bytes: {gen['predict_again']['same_bytes']}; "
                  f"pyarrow reads back {gen['predictions_readback']}."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary")
    parser.add_argument("--work", default="/tmp/salescast-horizons-bench",
                        help="folder for the lakes and registries (emptied first, deleted after unless --keep)")
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--days", type=int, default=2000)
    parser.add_argument("--skip-generated", action="store_true", help="rossmann only")
    parser.add_argument("--keep", action="store_true", help="keep --work after the run")
    parser.add_argument("--out", default=os.path.join(OUT, "horizons.json"))
    parser.add_argument("--render", action="store_true", help="print the tables of --out")
    args = parser.parse_args()
    if args.render:
        with open(args.out) as f:
            print(tables(json.load(f)))
        return
    if not args.binary:
        parser.error("--binary is required")
    binary = os.path.abspath(args.binary)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    result = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": git_commit(), "binary": binary,
              "machine": machine(), "load_start": load()}
    result["rossmann"] = rossmann(binary, args.work)
    if not args.skip_generated:
        result["generated"] = generated(binary, args.work, args.series, args.days)
    result["load_end"] = load()
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(tables(result))


if __name__ == "__main__":
    main()
