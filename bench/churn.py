"""Issue 16, part 4: churn of the promotion gate, the noise-aware gate
against the fixed-margin one, over consecutive daily runs on rossmann.

For each gate (`promotion.confidence` = 0, the fixed margin alone, and each
value of --confidences), in its own lake and registry: the lake starts with
the sales up to the day before --first and a plan of the covariates of the
days after it (as bench/live_simulation.py); the first champion is trained
and forecasts on that day; then for each day D of the --days days: ingest
D, `monitor --date D` (scores every served forecast of D), `retrain --date
D`, `predict --date D` (the champion after D's decision forecasts D+1 ..
D+14). The live WAPE is the last day's `monitor` over its 28 days (the
lake's own scores table): with the defaults (28 days from 2015-07-04) the
target days 2015-07-04 .. 07-31, forecast from origins 07-03 .. 07-30, i.e.
served by the champion after each day's decision (the shared first
champion's from 07-03; the last day's decision serves days past the data,
which ends on 07-31). Every gate runs the same challengers (training is
deterministic): only the decisions differ.

Writes, under --out: results.json (every day's decision, reason, noise
estimate and live figures per gate) and summary.md (the table).

    python bench/churn.py --binary target/debug/salescast [--first 2015-07-04 --days 28]
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from lakes import OUT, REPO, SHARED
from live_simulation import buckets, run, split_days, write_plan


def simulate(binary, config, folder, paths, plan, before, days, log):
    """The daily job for `days` after `before`, in `folder`; every day's record."""
    lake, registry = os.path.join(folder, "lake"), os.path.join(folder, "registry")
    store = "store=" + os.path.join(SHARED, "rossmann", "store.csv")
    run(binary, config, lake, registry, ["ingest", "--input", paths[before], "--attributes", store, "--plan", plan])
    first = run(binary, config, lake, registry, ["retrain", "--date", before])
    run(binary, config, lake, registry, ["predict", "--date", before])
    log(f"{before}: first retrain {first['decision']}")
    records = []
    for day in days:
        d = day.isoformat()
        began = time.time()
        run(binary, config, lake, registry, ["ingest", "--input", paths[d]])
        monitor = run(binary, config, lake, registry, ["monitor", "--date", d])
        retrain = run(binary, config, lake, registry, ["retrain", "--date", d])
        run(binary, config, lake, registry, ["predict", "--date", d])
        today = next((x for x in monitor["days"] if x["day"] == d), None)
        champion = retrain.get("champion") or {}
        records.append({"day": d, "seconds": time.time() - began, "decision": retrain["decision"],
                        "reason": retrain["reason"], "noise": retrain.get("noise"),
                        "challenger": retrain["challenger"]["version"],
                        "challenger_wape": retrain["challenger"]["holdout"]["wape"],
                        "champion_before": champion.get("version"),
                        "champion_wape": (champion.get("holdout") or {}).get("wape"),
                        "champion_after": retrain["champion_after"], "today": today,
                        "live": monitor["live"]})
        log(f"{d}: {retrain['decision']}, {time.time() - began:.1f} s: {retrain['reason']}")
    return records


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(REPO, "target", "release", "salescast"))
    parser.add_argument("--first", default="2015-07-04", help="the first run date")
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--confidences", default="0.9", help="the noise-aware gates, comma-separated")
    parser.add_argument("--config", default=os.path.join(REPO, "examples", "rossmann.toml"))
    parser.add_argument("--out", default=os.path.join(OUT, "churn"))
    parser.add_argument("--parallel", action="store_true", help="run the gates side by side")
    parser.add_argument("--render", action="store_true", help="only rewrite summary.md from --out's results.json")
    a = parser.parse_args()
    first = datetime.date.fromisoformat(a.first)
    before = (first - datetime.timedelta(days=1)).isoformat()
    days = [first + datetime.timedelta(days=k) for k in range(a.days)]
    if a.render:
        with open(os.path.join(a.out, "results.json")) as f:
            results = json.load(f)
        days = [datetime.date.fromisoformat(d["day"]) for d in results[0]["days"]]
        print(write_summary(a.out, results, days))
        return
    shutil.rmtree(a.out, ignore_errors=True)
    inputs = os.path.join(a.out, "input")
    os.makedirs(inputs)
    paths = split_days(os.path.join(SHARED, "rossmann", "train.csv"), inputs, before, days[-1].isoformat())
    plan = write_plan(inputs, before, days[-1].isoformat())
    with open(a.config) as f:
        base = f.read()
    gates = [0.0] + [float(c) for c in a.confidences.split(",") if c]

    def one(confidence):
        name = f"confidence-{confidence:g}"
        folder = os.path.join(a.out, name)
        os.makedirs(folder)
        config = os.path.join(folder, "config.toml")
        with open(config, "w") as f:
            f.write(base + f"\n[promotion]\nconfidence = {confidence}\n")
        log = lambda line: print(f"[{name}] {line}", flush=True)  # noqa: E731
        records = simulate(a.binary, config, folder, paths, plan, before, days, log)
        return {"confidence": confidence, "days": records}

    if a.parallel:
        with ThreadPoolExecutor(len(gates)) as pool:
            results = list(pool.map(one, gates))
    else:
        results = [one(c) for c in gates]
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    summary = write_summary(a.out, results, days)
    print(summary)


def write_summary(out, results, days):
    lines = [f"# Churn over {len(days)} daily runs ({days[0]} .. {days[-1]}), rossmann", "",
             "| gate | promotions | promotion days | champions served | live WAPE h=1 | 1-7 | 8-14 | 1-14 "
             "| live bias 1-14 | rows 1-14 | s / day |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        promoted = [d["day"][5:] for d in r["days"] if d["decision"] == "promoted"]
        served = {d["champion_after"] for d in r["days"]}
        live = buckets(r["days"][-1]["live"], 28)
        wape = lambda n: f'{live[n]["metrics"]["wape"]:.4f}' if n in live else "-"  # noqa: E731
        gate = "fixed margin (confidence 0)" if r["confidence"] == 0 else f"noise-aware, confidence {r['confidence']:g}"
        seconds = sum(d["seconds"] for d in r["days"]) / len(r["days"])
        lines.append(f'| {gate} | {len(promoted)} | {", ".join(promoted) or "-"} | {len(served)} | {wape("1-1")} '
                     f'| {wape("1-7")} | {wape("8-14")} | {wape("1-14")} '
                     f'| {live["1-14"]["metrics"]["bias"]:+.4f} | {live["1-14"]["metrics"]["rows"]} | {seconds:.1f} |')
    for r in results[1:]:
        est = [d["noise"] for d in r["days"] if d["noise"]]
        if est:
            half = sorted((n["upper"] - n["lower"]) / 2 for n in est)
            above = sum(1 for n in est if n["lower"] > 0)
            margin = sum(1 for n in est if n["improvement"] > 0.005)
            lines += ["", f'Confidence {r["confidence"]:g}: {len(est)} estimates; interval half-width median '
                      f'{100 * half[len(half) // 2]:.2f}% (from {100 * half[0]:.2f}% to {100 * half[-1]:.2f}%); '
                      f'improvement above 0.5% on {margin} days, lower bound above 0 on {above}.']
    lines += ["", "Days the gates decided differently (the noise-aware gate's reason):", ""]
    fixed = {d["day"]: d for d in results[0]["days"]}
    before_differences = len(lines)
    for r in results[1:]:
        for d in r["days"]:
            f = fixed[d["day"]]
            if d["decision"] != f["decision"]:
                lines.append(f'- {d["day"]}: fixed {f["decision"]}, confidence {r["confidence"]:g} '
                             f'{d["decision"]}: {d["reason"]}')
    if len(lines) == before_differences:
        lines.append("- none: every day both gates made the same decision")
    lines.append("")
    text = "\n".join(lines)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
