"""Benchmark: forecast quality and end-to-end speed of salescast against the
Python reference pipeline (bench/reference.py: polars + LightGBM, same lake,
config, features, split and metrics), in one run on one machine.

Lakes: rossmann and store_item (../shared/data, ingested by salescast) and a
generated lake of SERIES x DAYS rows (bench/generate.py). Cases per lake:
salescast `retrain` on a fresh registry (the daily job: train, score, store,
promote), salescast `backtest` over the newest holdout days, and the
reference. Each case runs REPEATS times in a fresh process: median wall and
CPU time, largest peak RSS (bench/measure.py).

Then the daily job on a registry with a champion (issue 18): a champion is
seeded by `retrain` for the day before the run date (a full search on an
empty registry, measured once), then REPEATS rounds, each from a copy of that
registry, of `retrain --full-search` (the day of a full search), `retrain`
(what the daily job does on the days between full searches: a warm day,
the champion's trees carried on by `training.warm_rounds` or its recipe
refitted, unless a rule calls for a search; the report's `search` says
which), `predict` on the registry the warm retrain left, and `retrain
--predict` (both in one process: what the daily job's build runs, the
"daily job, warm day" figure; the two processes are shown beside it).
The WAPE compared with the reference is one day ahead on the same holdout
rows (the reference forecasts one day ahead; salescast's `holdout` is pooled
over `forecast.horizon_days`). Prints Markdown tables and writes every
figure to target/bench/forecast.json.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from datetime import date, timedelta

from lakes import OUT, REPO, ingest, lakes
from measure import alternate, measure, repeat

def run_case(argv, repeats, prepare=None):
    return as_case(repeat(argv, repeats, prepare))


def documents(stdout):
    """The JSON documents printed one after another (`retrain --predict --json`
    prints the retrain's report, then predict's)."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while at < len(stdout.rstrip()):
        while stdout[at].isspace():
            at += 1
        doc, at = decoder.raw_decode(stdout, at)
        docs.append(doc)
    return docs


def as_case(s):
    """A case's figures; `report` is the last run's (first) report, `also` its second, if any."""
    last = documents(s.runs[-1].stdout)
    return {"wall": s.wall, "cpu": s.cpu, "peak_mib": s.peak_mib, "walls": [r.wall for r in s.runs],
            "cpus": [r.cpu for r in s.runs], "report": last[0], "also": last[1:],
            "reports": [documents(r.stdout)[0] for r in s.runs]}


def with_horizon(config, horizon_days, path):
    """A copy of `config` at `path` with `[forecast] horizon_days` set."""
    with open(config) as f:
        text = f.read()
    if "[forecast]" in text:
        sys.exit(f"{config} has a [forecast] table already: set horizon_days there")
    with open(path, "w") as f:
        f.write(text + f"\n[forecast]\nhorizon_days = {horizon_days}\n")
    return path


def daily_job(binary, config, lake, folder, day, repeats):
    """The daily job on a registry with a champion: seeded by `retrain` for
    the day before `day` (measured once), then `repeats` rounds of
    `retrain --full-search`, `retrain`, `predict` (on what the warm retrain
    left) and `retrain --predict` (what the daily job's build runs: both in
    one process), each retrain from a copy of the seeded registry."""
    seeded, registry = os.path.join(folder, "seeded"), os.path.join(folder, "daily")
    predictions = os.path.join(lake, "predictions")

    def cli(reg):
        return [binary, "--config", config, "--lake", lake, "--registry", reg, "-q", "--json"]

    def from_seed():
        shutil.rmtree(registry, ignore_errors=True)
        shutil.copytree(seeded, registry)
        shutil.rmtree(predictions, ignore_errors=True)

    previous = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    seed = measure(cli(seeded) + ["retrain", "--date", previous])
    cases = alternate([
        ("full_search", cli(registry) + ["retrain", "--date", day, "--full-search"], from_seed),
        ("warm", cli(registry) + ["retrain", "--date", day], from_seed),
        ("predict", cli(registry) + ["predict", "--date", day], lambda: shutil.rmtree(predictions, ignore_errors=True)),
        ("warm_predict", cli(registry) + ["retrain", "--date", day, "--predict"], from_seed),
    ], repeats)
    shutil.rmtree(predictions, ignore_errors=True)
    out = {name: as_case(summary) for name, summary in cases.items()}
    out["seed"] = {"date": previous, "wall": seed.wall, "cpu": seed.cpu, "peak_mib": seed.peak_mib,
                   "report": documents(seed.stdout)[0]}
    # The daily job of a warm day: `retrain --predict`, one process.
    job = out["warm_predict"]
    out["job_warm"] = {"wall": job["wall"], "cpu": job["cpu"], "peak_mib": job["peak_mib"], "walls": job["walls"]}
    for retrain, name in (("warm", "job_warm_apart"), ("full_search", "job_full_search")):
        # Two processes: each round's retrain and the predict after it.
        runs, predicts = cases[retrain].runs, cases["predict"].runs
        walls = [a.wall + b.wall for a, b in zip(runs, predicts)]
        cpus = [a.cpu + b.cpu for a, b in zip(runs, predicts)]
        out[name] = {"wall": statistics.median(walls), "cpu": statistics.median(cpus),
                     "peak_mib": max(out[retrain]["peak_mib"], out["predict"]["peak_mib"]), "walls": walls}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--days", type=int, default=2000)
    parser.add_argument("--generated-history-days", type=int, default=730)
    parser.add_argument("--generated-repeats", type=int, default=1, help="repeats on the generated lake")
    parser.add_argument("--only", help="run only the lakes whose name starts with this")
    parser.add_argument("--horizon-days", type=int,
                        help="run salescast with `[forecast] horizon_days` set to this (a copy of each config)")
    parser.add_argument("--out", default=os.path.join(OUT, "forecast.json"))
    parser.add_argument("--render", action="store_true", help="print the tables of --out")
    args = parser.parse_args()
    if args.render:
        with open(args.out) as f:
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
        if args.horizon_days is not None:
            config = with_horizon(config, args.horizon_days, os.path.join(work, name.split()[0] + ".toml"))
        load_before = os.getloadavg()
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
        print(f"{name}: daily job (seed, then retrain --full-search / retrain / predict / retrain --predict)",
              file=sys.stderr)
        daily = daily_job(binary, config, lake, os.path.join(work, name.split()[0]), day, repeats)
        results.append({"lake": name, "date": day, "repeats": repeats, "retrain": retrain, "backtest": backtest,
                        "reference": reference, "daily": daily, "load": [load_before, os.getloadavg()]})
    shutil.rmtree(work, ignore_errors=True)
    with open(args.out, "w") as f:
        json.dump({"machine": machine(), "repeats": args.repeats, "horizon_days": args.horizon_days,
                   "results": results}, f, indent=1)
    print(table(results))


def machine():
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"


def table(results):
    lines = [f"Machine: {machine()}", "",
             "| lake | rows trained | case | wall (s) | CPU (s) | peak RSS (MiB) | holdout WAPE (one day ahead) |"
             " reference wall / this |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        ref = r["reference"]
        retrain, backtest = r["retrain"]["report"], r["backtest"]["report"]
        picked = next(f for f in backtest["families"] if f["family"] == backtest["picked"])
        cases = [
            (f"salescast retrain ({retrain['challenger']['family']}, {retrain['decision']})", r["retrain"],
             one_day(retrain["challenger"])["wape"], retrain["window"]["training_rows"]),
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
    if all("daily" in r for r in results):
        lines += ["", daily_table(results)]
    return "\n".join(lines)


def one_day(summary):
    """One day ahead on the holdout (reports before horizons: `holdout`)."""
    return summary.get("one_day", summary["holdout"])


def search_label(report):
    search = report.get("search")
    return "-" if search is None else f"{search['mode']} ({search['trigger']})"


def daily_table(results):
    """The daily job on a registry with a champion, against the reference."""
    lines = ["The daily job on a registry with a champion (seeded by a retrain of the day before):", "",
             "| lake | H | case | search (trigger) | decision | wall (s) | CPU (s) | peak RSS (MiB) | WAPE h=1 |"
             " WAPE 1-H | reference wall / this |",
             "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|"]
    verdicts = []
    for r in results:
        d, ref = r["daily"], r["reference"]
        ref_wape = ref["report"]["holdout"]["wape"]
        horizon = d["predict"]["report"]["horizon_days"]
        rows = []
        for key, label in (("seed", f"retrain {d['seed']['date']} (seed, empty registry)"),
                           ("full_search", "retrain --full-search"), ("warm", "retrain")):
            rep = d[key]["report"]
            c = rep["challenger"]
            rows.append((label, search_label(rep), rep["decision"], d[key], one_day(c)["wape"],
                         c["holdout"]["wape"], key != "seed"))
        p = d["predict"]["report"]
        rows.append((f"predict ({p['rows']:,} rows)", "-", "-", d["predict"], None, None, True))
        w = d["warm_predict"]["report"]
        rows.append(("daily job, warm day (retrain --predict, one process)", search_label(w), w["decision"],
                     d["job_warm"], one_day(w["challenger"])["wape"], w["challenger"]["holdout"]["wape"], True))
        rows.append(("warm day as two processes (retrain, then predict)", "", "", d["job_warm_apart"], None, None,
                     True))
        rows.append(("full-search day as two processes (--full-search, then predict)", "", "",
                     d["job_full_search"], None, None, True))
        rows.append((f"reference (LightGBM {ref['report']['lightgbm']}, one day ahead)", "-", "-", ref, ref_wape,
                     None, True))
        for label, search, decision, run, h1, pooled, ratio in rows:
            lines.append(f"| {r['lake']} | {horizon} | {label} | {search} | {decision} | {run['wall']:.2f} | "
                         f"{run['cpu']:.2f} | {run['peak_mib']:.0f} | {'-' if h1 is None else f'{h1:.4f}'} | "
                         f"{'-' if pooled is None else f'{pooled:.4f}'} | "
                         f"{'%.2fx' % (ref['wall'] / run['wall']) if ratio else '-'} |")
        warm_wape = one_day(d["warm_predict"]["report"]["challenger"])["wape"]
        speed = ref["wall"] / d["job_warm"]["wall"]
        excess = warm_wape / ref_wape - 1
        verdicts.append(f"- {r['lake']}: warm day {speed:.2f}x the reference's speed (daily job), WAPE h=1 "
                        f"{warm_wape:.4f} against {ref_wape:.4f} ({100 * excess:+.2f}%; within +0.5%: "
                        f"{'yes' if excess <= 0.005 else 'no'}); 2x target "
                        f"{'met' if speed >= 2 and excess <= 0.005 else 'not met'}")
    lines += ["", *verdicts, "", "1-minute load average before / after each lake's cases: "
              + "; ".join(f"{r['lake']} {r['load'][0][0]:.2f} / {r['load'][1][0]:.2f}" for r in results if "load" in r),
              "", "Inside the daily job (seconds from each process's own report, last round):", "",
              "| lake | case | read | features | drift | train | train CPU | evaluate | total |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for key in ("full_search", "warm"):
            t = r["daily"][key]["report"]["seconds"]
            lines.append(f"| {r['lake']} | {key.replace('_', ' ')} | {t['read']:.2f} | {t['features']:.2f} | "
                         f"{t['drift']:.2f} | {t['train']:.2f} | {t.get('train_cpu') or 0:.2f} | "
                         f"{t['evaluate']:.2f} | {t['total']:.2f} |")
        lines.append(f"| {r['lake']} | predict | | | | | | | {r['daily']['predict']['report']['seconds']:.2f} |")
        also = r["daily"]["warm_predict"]["also"]
        if also:
            lines.append(f"| {r['lake']} | predict after retrain --predict (same process) | | | | | | | "
                         f"{also[0]['seconds']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
