"""Issue 18, part 3: warm retrains against a full search every day, over
consecutive daily runs on rossmann.

For each mode (`training.full_search_every_days` = 0, a full search every
day, and each value of --every, warm days between full searches), in its own
lake and registry, the daily job of bench/churn.py: the lake starts with the
sales up to the day before --first and a plan of the covariates after it;
the first champion is trained (a full search in every mode) and forecasts on
that day; then for each day D: ingest D, `monitor --date D`, `retrain --date
D`, `predict --date D`. Per retrain: the mode it ran and why, the decision,
the challenger's and the champion's holdout WAPE, the holdout interval
coverage of the challenger, the training wall and CPU seconds (the report's
`seconds.train` and `seconds.train_cpu`) and the retrain process's wall and
CPU seconds (os.wait4). The live WAPE is the last day's `monitor` over its 28
days: the forecasts each day's champion served.

Writes, under --out: results.json and summary.md.

    python bench/warm.py --binary target/debug/salescast [--first 2015-07-04 --days 28 --every 7]
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


def timed(binary, config, lake, registry, args):
    """`run`, with the process's wall and CPU seconds."""
    cmd = [binary, "--config", config, "--lake", lake, "--registry", registry, "--json", "-q"] + args
    began = time.time()
    with open(os.path.join(os.path.dirname(lake), "last.json"), "w+") as out, \
            open(os.path.join(os.path.dirname(lake), "last.err"), "w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - began
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.read()}")
        out.seek(0)
        report = json.load(out)
    return report, wall, usage.ru_utime + usage.ru_stime


def coverage(report):
    """The challenger's holdout interval coverage, pooled over horizons (the last bucket, 1-H)."""
    buckets = report["challenger"]["horizons"].get("buckets") or [{}]
    return buckets[-1].get("coverage")


def simulate(binary, config, folder, paths, plan, before, days, log):
    lake, registry = os.path.join(folder, "lake"), os.path.join(folder, "registry")
    store = "store=" + os.path.join(SHARED, "rossmann", "store.csv")
    run(binary, config, lake, registry, ["ingest", "--input", paths[before], "--attributes", store, "--plan", plan])
    first, wall, cpu = timed(binary, config, lake, registry, ["retrain", "--date", before])
    run(binary, config, lake, registry, ["predict", "--date", before])
    log(f"{before}: first retrain {first['decision']} ({first['search']['mode']}), {wall:.1f} s")
    records = []
    for day in days:
        d = day.isoformat()
        run(binary, config, lake, registry, ["ingest", "--input", paths[d]])
        monitor = run(binary, config, lake, registry, ["monitor", "--date", d])
        retrain, wall, cpu = timed(binary, config, lake, registry, ["retrain", "--date", d])
        run(binary, config, lake, registry, ["predict", "--date", d])
        champion = retrain.get("champion") or {}
        seconds = retrain["seconds"]
        records.append({
            "day": d, "mode": retrain["search"]["mode"], "trigger": retrain["search"]["trigger"],
            "search_reason": retrain["search"]["reason"], "decision": retrain["decision"],
            "reason": retrain["reason"], "noise": retrain.get("noise"),
            "challenger": retrain["challenger"]["version"],
            "challenger_family": retrain["challenger"]["family"],
            "challenger_config": retrain["challenger"].get("gbdt_config"),
            "challenger_rounds": retrain["challenger"].get("rounds"),
            "challenger_wape": retrain["challenger"]["holdout"]["wape"],
            "challenger_coverage": coverage(retrain),
            "champion_before": champion.get("version"),
            "champion_wape": (champion.get("holdout") or {}).get("wape"),
            "champion_after": retrain["champion_after"],
            "train_wall": seconds["train"], "train_cpu": seconds.get("train_cpu"),
            "retrain_wall": wall, "retrain_cpu": cpu, "retrain_total": seconds["total"],
            "live": monitor["live"]})
        log(f"{d}: {retrain['search']['mode']} ({retrain['search']['trigger']}), {retrain['decision']}, "
            f"train {seconds['train']:.1f} s wall / {seconds.get('train_cpu') or 0:.1f} s CPU, retrain {wall:.1f} s: "
            f"{retrain['reason']}")
    return records


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(REPO, "target", "release", "salescast"))
    parser.add_argument("--first", default="2015-07-04", help="the first run date")
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--every", default="7",
                        help="the warm modes, comma-separated: full_search_every_days, or EVERY:WARM_ROUNDS "
                             "to set training.warm_rounds too (7:0 refits the recipe, 7:50 carries the trees on)")
    parser.add_argument("--config", default=os.path.join(REPO, "examples", "rossmann.toml"))
    parser.add_argument("--out", default=os.path.join(OUT, "warm"))
    parser.add_argument("--parallel", action="store_true", help="run the modes side by side")
    parser.add_argument("--render", action="store_true", help="only rewrite summary.md from --out's results.json")
    a = parser.parse_args()
    first = datetime.date.fromisoformat(a.first)
    before = (first - datetime.timedelta(days=1)).isoformat()
    days = [first + datetime.timedelta(days=k) for k in range(a.days)]
    if a.render:
        with open(os.path.join(a.out, "results.json")) as f:
            results = json.load(f)
        print(write_summary(a.out, results, days))
        return
    shutil.rmtree(a.out, ignore_errors=True)
    inputs = os.path.join(a.out, "input")
    os.makedirs(inputs)
    paths = split_days(os.path.join(SHARED, "rossmann", "train.csv"), inputs, before, days[-1].isoformat())
    plan = write_plan(inputs, before, days[-1].isoformat())
    with open(a.config) as f:
        base = f.read()
    modes = ["0"] + [e for e in a.every.split(",") if e]

    def one(mode):
        every, _, warm_rounds = mode.partition(":")
        every = int(every)
        name = f"every-{every}" + (f"-w{int(warm_rounds)}" if warm_rounds else "")
        folder = os.path.join(a.out, name)
        os.makedirs(folder)
        config = os.path.join(folder, "config.toml")
        with open(config, "w") as f:
            f.write(base + f"\n[training]\nfull_search_every_days = {every}\n"
                    + (f"warm_rounds = {int(warm_rounds)}\n" if warm_rounds else ""))
        log = lambda line: print(f"[{name}] {line}", flush=True)  # noqa: E731
        records = simulate(a.binary, config, folder, paths, plan, before, days, log)
        return {"every": every, "warm_rounds": int(warm_rounds) if warm_rounds else None, "days": records}

    if a.parallel:
        with ThreadPoolExecutor(len(modes)) as pool:
            results = list(pool.map(one, modes))
    else:
        results = [one(e) for e in modes]
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(write_summary(a.out, results, days))


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def label(r):
    """A mode's short name: `every 7`, `every 7, warm 50`."""
    warm = r.get("warm_rounds")
    return f"every {r['every']}" + (f", warm {warm}" if warm is not None else "")


def write_summary(out, results, days):
    lines = [f"# Warm retrains against a full search every day, {len(days)} daily runs ({days[0]} .. {days[-1]}), "
             "rossmann", "",
             "| mode | full searches | promotions | promotion days | champions served | mean champion holdout WAPE "
             "| live WAPE h=1 | 1-7 | 8-14 | 1-14 | mean challenger WAPE | challenger coverage | train s wall "
             "| train s CPU | retrain s wall | retrain s CPU |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        d = r["days"]
        promoted = [x["day"][5:] for x in d if x["decision"] == "promoted"]
        served = {x["champion_after"] for x in d}
        live = buckets(d[-1]["live"], 28)
        wape = lambda n: f'{live[n]["metrics"]["wape"]:.4f}' if n in live else "-"  # noqa: E731
        # The champion after each day's decision, scored on that day's holdout.
        after = [x["challenger_wape"] if x["decision"] == "promoted" else x["champion_wape"] for x in d]
        mode = "full search every day (0)" if r["every"] == 0 else f"warm, full search every {r['every']} days"
        if r.get("warm_rounds") is not None and r["every"] != 0:
            mode += f", warm_rounds {r['warm_rounds']}"
        full = sum(1 for x in d if x["mode"] == "full")
        lines.append(
            f'| {mode} | {full} | {len(promoted)} | {", ".join(promoted) or "-"} | {len(served)} | {mean(after):.4f} '
            f'| {wape("1-1")} | {wape("1-7")} | {wape("8-14")} | {wape("1-14")} '
            f'| {mean(x["challenger_wape"] for x in d):.4f} | {mean(x["challenger_coverage"] for x in d):.3f} '
            f'| {mean(x["train_wall"] for x in d):.1f} | {mean(x["train_cpu"] for x in d):.1f} '
            f'| {mean(x["retrain_wall"] for x in d):.1f} | {mean(x["retrain_cpu"] for x in d):.1f} |')
    lines += ["", "Per day (mode, decision, challenger / champion holdout WAPE, train s wall / CPU):", "",
              "| day | " + " | ".join(label(r) for r in results) + " |",
              "|---|" + "---|" * len(results)]
    for k in range(len(days)):
        cells = []
        for r in results:
            x = r["days"][k]
            champ = f'{x["champion_wape"]:.4f}' if x["champion_wape"] is not None else "-"
            cells.append(f'{x["mode"]}{"" if x["trigger"] == "none" else " (" + x["trigger"] + ")"}, {x["decision"]}, '
                         f'{x["challenger_wape"]:.4f} / {champ}, {x["train_wall"]:.1f} / {x["train_cpu"] or 0:.1f}')
        lines.append(f'| {results[0]["days"][k]["day"][5:]} | ' + " | ".join(cells) + " |")
    base = {x["day"]: x for x in results[0]["days"]}
    lines += ["", "Days the modes decided differently:", ""]
    before = len(lines)
    for r in results[1:]:
        for x in r["days"]:
            if x["decision"] != base[x["day"]]["decision"]:
                lines.append(f'- {x["day"]}: every 0 {base[x["day"]]["decision"]}, {label(r)} '
                             f'{x["decision"]} ({x["mode"]}): {x["reason"]}')
    if len(lines) == before:
        lines.append("- none")
    lines.append("")
    text = "\n".join(lines)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
