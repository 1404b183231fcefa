"""Issue 15, live accuracy: the daily job replayed on rossmann for 60 days.

The lake starts with the days up to --start and a plan of the covariates
of the days after it (promotions, holidays, opening days; --no-plans: none);
the first champion is trained and forecasts on --start. Then, for each following day D (60 by default):
ingest D's rows (as the raw zone would deliver them), `monitor --date D`
(score every stored forecast of D against its actuals), `retrain --date D`
(whose report carries the live section), `predict --date D`. Writes, under
--out: results.json (every day's monitor and retrain figures), live.csv
(the live WAPE series: each day's pooled WAPE, and per bucket over the
last 7 and 28 days) and summary.md (the last day's live WAPE per bucket
beside the champion's holdout WAPE). The last day's run report (in the
registry, runs/<last day>/report.md) links its SVG charts, among them
live-accuracy.svg, the live WAPE per target day; it is copied to --out and
its pooled line checked against the days monitor scored.

    python bench/live_simulation.py --binary target/debug/salescast [--days 60]
"""

import argparse
import csv
import datetime
import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ElementTree

from lakes import OUT, REPO, SHARED


def run(binary, config, lake, registry, args):
    out = subprocess.run([binary, "--config", config, "--lake", lake, "--registry", registry, "--json", "-q"] + args,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout) if out.stdout.strip() else None


def split_days(train, folder, start, last):
    """The history up to `start` in one CSV, each later day up to `last` in its own."""
    with open(train, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        rows = list(reader)
    by_day = {}
    for row in rows:
        if row["Date"] <= last:
            by_day.setdefault(row["Date"] if row["Date"] > start else start, []).append(row)
    paths = {}
    for day, day_rows in by_day.items():
        path = os.path.join(folder, f"{day}.csv")
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            w.writerows(day_rows)
        paths[day] = path
    return paths


def write_plan(folder, start, last):
    """The covariates of the days after `start` through `last`, as a plan
    (a retailer knows its promotions, holidays and opening days ahead)."""
    path = os.path.join(folder, "plan.csv")
    keep = ["Store", "Date", "Promo", "StateHoliday", "SchoolHoliday", "Open"]
    with open(os.path.join(SHARED, "rossmann", "train.csv"), newline="") as f, open(path, "w", newline="") as out:
        w = csv.DictWriter(out, fieldnames=keep, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(r for r in csv.DictReader(f) if start < r["Date"] <= last)
    return path


def buckets(live, days):
    for window in (live or {}).get("windows", []):
        if window["days"] == days:
            return {f'{b["first"]}-{b["last"]}': b for b in window["buckets"]}
    return {}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(REPO, "target", "release", "salescast"))
    parser.add_argument("--start", default="2015-06-01")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--config", default=os.path.join(REPO, "examples", "rossmann.toml"))
    parser.add_argument("--out", default=os.path.join(OUT, "live-simulation"))
    parser.add_argument("--no-plans", action="store_true",
                        help="no plans: predict takes each future day's covariates (promotions, "
                             "opening) from the same weekday of the newest week")
    a = parser.parse_args()
    start = datetime.date.fromisoformat(a.start)
    days = [start + datetime.timedelta(days=k) for k in range(1, a.days + 1)]
    shutil.rmtree(a.out, ignore_errors=True)
    inputs = os.path.join(a.out, "input")
    os.makedirs(inputs)
    lake, registry = os.path.join(a.out, "lake"), os.path.join(a.out, "registry")
    paths = split_days(os.path.join(SHARED, "rossmann", "train.csv"), inputs, a.start, days[-1].isoformat())
    store = "store=" + os.path.join(SHARED, "rossmann", "store.csv")
    ingest = ["ingest", "--input", paths[a.start], "--attributes", store]
    if not a.no_plans:
        ingest += ["--plan", write_plan(inputs, a.start, days[-1].isoformat())]
    run(a.binary, a.config, lake, registry, ingest)
    first = run(a.binary, a.config, lake, registry, ["retrain", "--date", a.start])
    run(a.binary, a.config, lake, registry, ["predict", "--date", a.start])
    print(f"{a.start}: first retrain {first['decision']}", flush=True)
    results = []
    for day in days:
        d = day.isoformat()
        began = time.time()
        run(a.binary, a.config, lake, registry, ["ingest", "--input", paths[d]])
        monitor = run(a.binary, a.config, lake, registry, ["monitor", "--date", d])
        retrain = run(a.binary, a.config, lake, registry, ["retrain", "--date", d])
        run(a.binary, a.config, lake, registry, ["predict", "--date", d])
        today = next((x for x in monitor["days"] if x["day"] == d), None)
        champion = retrain.get("champion") or {}
        results.append({"day": d, "seconds": time.time() - began, "today": today, "live": monitor["live"],
                        "monitor_holdout": monitor["holdout"], "decision": retrain["decision"],
                        "champion_holdout": champion.get("horizons"),
                        "challenger_holdout": retrain["challenger"]["horizons"]})
        pooled = today["metrics"]["wape"] if today else float("nan")
        live7 = buckets(monitor["live"], 7).get(f"1-{monitor['horizon_days']}", {}).get("metrics", {})
        print(f"{d}: day WAPE {pooled:.4f}, 7-day live WAPE 1-14 {live7.get('wape', float('nan')):.4f}, "
              f"retrain {retrain['decision']}, {time.time() - began:.1f} s", flush=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_series(a.out, results)
    write_summary(a.out, results, check_live_chart(a.out, registry, retrain, results))


def write_series(out, results):
    names = ["1-1", "1-7", "8-14", "1-14"]
    with open(os.path.join(out, "live.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["day", "rows", "day_wape"] + [f"live{d}_{n}" for d in (7, 28) for n in names])
        for r in results:
            today = r["today"] or {}
            row = [r["day"], today.get("open_rows", 0), f'{today.get("metrics", {}).get("wape", float("nan")):.4f}']
            for d in (7, 28):
                b = buckets(r["live"], d)
                row += [f'{b[n]["metrics"]["wape"]:.4f}' if n in b and b[n]["metrics"]["rows"] else "" for n in names]
            w.writerow(row)


def check_live_chart(out, registry, retrain, results):
    """The last run report's live-accuracy chart: copied to `out`, its pooled
    line (class `line live`) one point per scored day of the report's
    `live_days`, whose pooled WAPE is each day's as monitor scored it."""
    folder = os.path.join(registry, retrain["model"], "runs", retrain["run_date"])
    with open(os.path.join(folder, "report.md")) as f:
        assert "(live-accuracy.svg)" in f.read(), "report.md does not link the live chart"
    chart = os.path.join(folder, "live-accuracy.svg")
    svg = ElementTree.parse(chart).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    points = sum(len(p.get("points").split()) for p in svg.iter(ns + "polyline") if p.get("class") == "line live")
    pooled = {d["day"]: d["wape"][-1][1] for d in retrain["live_days"]}
    assert points == sum(v is not None for v in pooled.values()), (points, pooled)
    for r in results:
        if r["today"] and pooled.get(r["day"]) is not None:
            assert abs(pooled[r["day"]] - r["today"]["metrics"]["wape"]) < 1e-9, r["day"]
    shutil.copy(chart, os.path.join(out, "live-accuracy.svg"))
    return f"{folder}/report.md (live-accuracy.svg: {points} days plotted, copied to {out})"


def write_summary(out, results, chart):
    last = results[-1]
    holdout = last["champion_holdout"] or last["challenger_holdout"]
    by_bucket = {f'{b["first"]}-{b["last"]}': b for b in holdout["buckets"]}
    by_bucket["1-1"] = {"metrics": holdout["per_horizon"][0]["metrics"]}
    lines = [f"# Live accuracy after {len(results)} simulated days (through {last['day']})", "",
             "| horizons | champion holdout WAPE | live WAPE 7 d | live WAPE 28 d | live bias 28 d "
             "| coverage 28 d | rows 28 d |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in ["1-1", "1-7", "8-14", "1-14"]:
        l7, l28 = buckets(last["live"], 7).get(name), buckets(last["live"], 28).get(name)
        cov = l28.get("coverage") if l28 else None
        lines.append(f'| {name} | {by_bucket[name]["metrics"]["wape"]:.4f} | {l7["metrics"]["wape"]:.4f} | '
                     f'{l28["metrics"]["wape"]:.4f} | {l28["metrics"]["bias"]:+.4f} | '
                     f'{"-" if cov is None else f"{100 * cov:.1f}%"} | {l28["metrics"]["rows"]} |')
    decisions = {}
    for r in results:
        decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
    lines += ["", f"Retrain decisions over the days: {decisions}.",
              f"Seconds per simulated day (ingest, monitor, retrain, predict): "
              f"{sum(r['seconds'] for r in results) / len(results):.1f} mean.",
              f"The last run report with its charts: {chart}.", ""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
