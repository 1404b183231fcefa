"""Benchmark for issue 16, part 3 (defaults chosen by the data): salescast's
default configuration against the same configuration without the boosted
trees' candidate configurations (`[training] gbdt_configs = []`: the former
default, `[training.gbdt]` alone) and against LightGBM with the same features
(bench/reference.py, same lake and config), on rossmann, store_item and pharma
(bench/data/pharma, melted to long rows by bench/pharma.py).

Each case is one `retrain --dry-run` (or reference run) per run date, in a
fresh process (bench/measure.py: wall, CPU, peak RSS). WAPE at h=1 (the
one-day model, the reference's only horizon) and pooled over horizons 1-14 from
rolling origins (salescast's holdout); over several run dates the WAPE is
pooled too (sum of absolute errors over sum of actuals, from each run's MAE,
rows and WAPE). Prints JSON lines as it goes and a Markdown table at the end;
writes everything to OUT (default target/bench/defaults.json).

With `--variant FILE`, each run date also runs the configuration with FILE's
TOML appended (e.g. other `[[training.gbdt_configs]]`), in the same session,
so a change to the default can be measured against it before it is made.

Run dates: pharma and rossmann 6 each, 28 days apart (disjoint holdouts; one
28-day holdout is one draw of a noisy figure), store_item 1; `--dates N`
sets N for every lake.

Usage: defaults.py --binary SALESCAST [--lakes DIR] [--only NAME[,NAME]] [--dates N] [--variant FILE] [--out FILE]
       defaults.py --render --out FILE
"""

import argparse
import json
import os
import platform
import sys
from datetime import date, timedelta

from lakes import OUT, REPO, SHARED
from measure import measure

import pharma

LAKES = {
    # name: (config, ingest args, newest run date, run dates by default: the
    # newest and every 28 days before it, so that the 28-day holdouts are
    # disjoint)
    "pharma": ("examples/pharma.toml", None, "2019-10-08", 6),
    "rossmann": ("examples/rossmann.toml",
                 ["--input", os.path.join(SHARED, "rossmann", "train.csv"),
                  "--attributes", "store=" + os.path.join(SHARED, "rossmann", "store.csv")],
                 "2015-07-31", 6),
    "store_item": ("examples/store_item.toml", ["--input", os.path.join(SHARED, "store_item", "train.csv")],
                   "2017-12-31", 1),
}


def run_dates(newest, count):
    """`count` run dates 28 days apart, the newest first."""
    day = date.fromisoformat(newest)
    return [(day - timedelta(days=28 * i)).isoformat() for i in range(count)]


FORMER = "\n[training]\ngbdt_configs = []\n"


def lake_of(binary, name, folder):
    config, args, _, _ = LAKES[name]
    lake = os.path.join(folder, name, "lake")
    if not os.path.isdir(os.path.join(lake, "sales")):
        if args is None:
            long_csv = os.path.join(folder, name, "long.csv")
            os.makedirs(os.path.dirname(long_csv), exist_ok=True)
            pharma.to_long(out=long_csv)
            args = ["--input", long_csv]
        r = measure([binary, "--config", os.path.join(REPO, config), "--lake", lake, "-q", "ingest"] + args)
        print(f"{name}: ingested in {r.wall:.1f} s", file=sys.stderr)
    return lake


def totals(m):
    """(sum of absolute errors, sum of actuals) of a metrics object."""
    abs_err = m["mae"] * m["rows"]
    return abs_err, abs_err / m["wape"] if m["wape"] else 0.0


def salescast_case(binary, config, lake, day, folder):
    r = measure([binary, "--config", config, "--lake", lake, "--registry", os.path.join(folder, "registry"),
                 "-q", "--json", "retrain", "--dry-run", "--date", day])
    rep = json.loads(r.stdout)
    c = rep["challenger"]
    picked = c["family"] + (f" ({c['gbdt_config']})" if c.get("gbdt_config") else "")
    return {"h1": c["one_day"], "pooled": c["holdout"], "picked": picked, "train_s": rep["seconds"]["train"],
            "wall": r.wall, "cpu": r.cpu, "peak_mib": r.peak_mib,
            "candidates": [{"label": x["family"] + (f" ({x['config']})" if x.get("config") else ""),
                            "wape": x["validation"]["wape"], "rounds": x.get("rounds"),
                            "seconds": x.get("seconds")} for x in c["candidates"]]}


def reference_case(config, lake, day):
    r = measure([sys.executable, os.path.join(REPO, "bench", "reference.py"), config, lake, day])
    rep = json.loads(r.stdout)
    return {"h1": rep["holdout"], "rounds": rep["rounds"],
            "train_s": rep["seconds"]["search"] + rep["seconds"]["refit"], "wall": r.wall, "cpu": r.cpu,
            "peak_mib": r.peak_mib}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary")
    parser.add_argument("--lakes", default=os.path.join(OUT, "defaults-lakes"))
    parser.add_argument("--only", help="comma-separated lake names (default: all, in the order of LAKES)")
    parser.add_argument("--out", default=os.path.join(OUT, "defaults.json"))
    parser.add_argument("--variant", help="TOML appended to the config: a third case per run date")
    parser.add_argument("--dates", type=int, help="run dates per lake (default: each lake's own, LAKES)")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    if args.render:
        with open(args.out) as f:
            print(table(json.load(f)))
        return
    if args.dates is not None and args.dates < 1:
        parser.error(f"--dates must be 1 or more, not {args.dates}")
    binary = os.path.abspath(args.binary)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
               "binary": binary, "started": str(date.today()), "runs": []}
    for name in (args.only.split(",") if args.only else LAKES):
        config_rel, _, newest, count = LAKES[name]
        days = run_dates(newest, count if args.dates is None else args.dates)
        lake = lake_of(binary, name, args.lakes)
        config = os.path.join(REPO, config_rel)
        former = os.path.join(args.lakes, name, "former.toml")
        with open(config) as f, open(former, "w") as o:
            o.write(f.read() + FORMER)
        variant = None
        if args.variant:
            variant = os.path.join(args.lakes, name, "variant.toml")
            with open(config) as f, open(args.variant) as v, open(variant, "w") as o:
                o.write(f.read() + "\n" + v.read())
        for day in days:
            run = {"lake": name, "date": day,
                   "default": salescast_case(binary, config, lake, day, os.path.join(args.lakes, name)),
                   "former": salescast_case(binary, former, lake, day, os.path.join(args.lakes, name)),
                   "reference": reference_case(config, lake, day)}
            if variant:
                run["variant"] = salescast_case(binary, variant, lake, day, os.path.join(args.lakes, name))
            print(json.dumps({k: run[k] if k in ("lake", "date") else
                              {"h1": round(run[k]["h1"]["wape"], 4), "train_s": round(run[k]["train_s"], 2),
                               "picked": run[k].get("picked"), "cpu": round(run[k]["cpu"], 1)}
                              for k in run}), flush=True)
            results["runs"].append(run)
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    print(table(results))


def pooled(metrics_list):
    err = sum(totals(m)[0] for m in metrics_list)
    actual = sum(totals(m)[1] for m in metrics_list)
    return err / actual


def table(results):
    lines = [f"Machine: {results['machine']}; binary {results['binary']}", "",
             "| dataset | run dates | salescast default h=1 | pooled 1-14 | picked | LightGBM h=1 | ratio h=1 "
             "| former default h=1 | pooled 1-14 | train s: default | former | LightGBM fit |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    by = {}
    for run in results["runs"]:
        by.setdefault(run["lake"], []).append(run)
    for name, runs in by.items():
        d = pooled([r["default"]["h1"] for r in runs])
        ref = pooled([r["reference"]["h1"] for r in runs])
        picks = ", ".join(sorted({r["default"]["picked"] for r in runs}))
        lines.append(
            f"| {name} | {len(runs)} | {d:.4f} | {pooled([r['default']['pooled'] for r in runs]):.4f} | {picks} "
            f"| {ref:.4f} | {d / ref:.3f} | {pooled([r['former']['h1'] for r in runs]):.4f} "
            f"| {pooled([r['former']['pooled'] for r in runs]):.4f} "
            f"| {sum(r['default']['train_s'] for r in runs):.1f} | {sum(r['former']['train_s'] for r in runs):.1f} "
            f"| {sum(r['reference']['train_s'] for r in runs):.1f} |")
    if any("variant" in r for r in results["runs"]):
        lines += ["", "| dataset | variant h=1 | pooled 1-14 | ratio h=1 | picked | train s: variant | default |",
                  "|---|---:|---:|---:|---|---:|---:|"]
        for name, runs in by.items():
            v = pooled([r["variant"]["h1"] for r in runs])
            ref = pooled([r["reference"]["h1"] for r in runs])
            lines.append(
                f"| {name} | {v:.4f} | {pooled([r['variant']['pooled'] for r in runs]):.4f} | {v / ref:.3f} "
                f"| {', '.join(r['date'] + ': ' + r['variant']['picked'] for r in runs)} "
                f"| {sum(r['variant']['train_s'] for r in runs):.1f} | {sum(r['default']['train_s'] for r in runs):.1f} |")
    lines += ["", "Per run date (h=1; picked): " + "; ".join(
        f"{r['lake']} {r['date']}: default {r['default']['h1']['wape']:.4f} ({r['default']['picked']}), "
        f"former {r['former']['h1']['wape']:.4f}, LightGBM {r['reference']['h1']['wape']:.4f}"
        + (f", variant {r['variant']['h1']['wape']:.4f} ({r['variant']['picked']})" if "variant" in r else "")
        for r in results["runs"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
