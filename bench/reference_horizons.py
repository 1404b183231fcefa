"""The multi-horizon Python reference for the forecast-horizons issue: what
salescast's `predict` is measured against on rossmann, with LightGBM.

Reads the raw CSVs (train.csv, store.csv of ../shared/data/rossmann), not a
lake. Rolling forecast origins: every day o from the day before the holdout to
the holdout's last day but one is an origin; the forecasts for o+1 .. o+H that
fall inside the holdout are scored, with actuals up to o and the covariates of
the target day (calendar, Promo, holidays, store attributes) known in advance;
closed days are not scored. WAPE (sum|error| / sum actual) and bias
(sum error / sum actual) per horizon h and pooled over the (origin, series,
target day) rows of h=1, 1-7, 8-14 and 1-H.

Strategies:
  direct     one LightGBM model per h, trained on target days before the
             holdout with lags {h, 7*ceil(h/7), 7*ceil(h/7)+7, 28} and rolling
             means 7/28 of the days ending at t-h (so every feature only uses
             actuals up to the origin);
  recursive  the h=1 model (lags 1/7/14/28, means ending at t-1) fed its own
             forecasts, closed days (Open = 0, known in advance) fed as 0;
  seasonal naive  the same weekday of the newest week at or before the
             origin: the value of t - 7*ceil(h/7) (closed days are 0 there).
History: the raw Sales (0 on closed days; missing days, as in the 2014 gaps,
are missing). Training rows: open days of the `history_days` window ending on
the last day (salescast's default window, 730 days), before the holdout; the
window is all that is read, as in salescast. Features: calendar (weekday, day
of month, month, ISO week), Promo, SchoolHoliday, StateHoliday, the store
attributes salescast's examples/rossmann.toml maps (StoreType, Assortment,
CompetitionDistance, Promo2), lags and rolling means; the store key itself
only with --store-id (salescast uses its series keys as a feature; the
issue's figures are closer without it).

Intervals: split conformal for the recursive strategy. The same pipeline is
run one holdout earlier: the h=1 model fitted on days before the calibration
window (the `holdout_days` days before the holdout), rolling origins there,
and per horizon the quantiles of actual/forecast (`ratio`) and of
actual - forecast (`additive`) give the bounds of the central interval, which
are then put around the holdout forecasts of the final model. Coverage per
horizon and bucket is reported.

Usage: reference_horizons.py [--data DIR] [--out JSON] [--last-day D]
  [--horizon 14] [--holdout-days 28] [--history-days 730] [--rounds 500]
  [--learning-rate 0.05] [--leaves 31] [--interval 0.8] [--threads 1] [--store-id]
Prints Markdown tables; writes every figure, the settings and timings to --out.
"""

import argparse
import json
import math
import os
import platform
import time
from datetime import date, timedelta

STARTED = time.perf_counter()
import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

IMPORTED = time.perf_counter()

ROLLING = (7, 28)
COVARIATES = ("Promo", "SchoolHoliday")
ATTRIBUTES_NUMERIC = ("CompetitionDistance", "Promo2")
ATTRIBUTES_CATEGORICAL = ("StoreType", "Assortment")


def lags_for(h):
    """The direct model's lags for horizon h: h, the newest same weekday at or
    before the origin, the week before that, and 28 (deduplicated, sorted;
    28 only while it is at least h, so no lag reaches past the origin)."""
    week = 7 * math.ceil(h / 7)
    return sorted(k for k in {h, week, week + 7, 28} if k >= h)


class Panel:
    """The window as dense [store, day] arrays (NaN where a store has no row)."""

    def __init__(self, data_dir, first_day, last_day, store_id):
        self.store_id = store_id
        sales = (pl.read_csv(os.path.join(data_dir, "train.csv"), schema_overrides={"StateHoliday": pl.String})
                 .with_columns(pl.col("Date").str.to_date())
                 .filter(pl.col("Date").is_between(first_day, last_day)))
        stores = pl.read_csv(os.path.join(data_dir, "store.csv"))
        self.first_day = first_day
        self.days = (last_day - first_day).days + 1
        self.stores = np.array(sorted(sales["Store"].unique().to_list()))
        store_index = {s: i for i, s in enumerate(self.stores)}
        si = np.array([store_index[s] for s in sales["Store"].to_list()])
        di = np.array([(d - first_day).days for d in sales["Date"].to_list()])

        def dense(values):
            out = np.full((len(self.stores), self.days), np.nan)
            out[si, di] = values
            return out

        self.sales = dense(sales["Sales"].cast(pl.Float64).to_numpy())
        self.open = dense(sales["Open"].cast(pl.Float64).to_numpy())
        self.covariates = {c: dense(sales[c].cast(pl.Float64).to_numpy()) for c in COVARIATES}
        holidays = sales["StateHoliday"].to_list()
        self.holiday_vocabulary = sorted(set(holidays))
        self.holiday = dense(np.array([self.holiday_vocabulary.index(v) for v in holidays], dtype=float))
        attrs = stores.filter(pl.col("Store").is_in(self.stores.tolist())).sort("Store")
        assert attrs["Store"].to_list() == self.stores.tolist(), "store.csv lacks a store of train.csv"
        self.attributes = {c: attrs[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in ATTRIBUTES_NUMERIC}
        for c in ATTRIBUTES_CATEGORICAL:
            values = attrs[c].to_list()
            vocabulary = sorted(set(values))
            self.attributes[c] = np.array([vocabulary.index(v) for v in values], dtype=float)
        dates = [first_day + timedelta(days=i) for i in range(self.days)]
        self.calendar = {"day_of_week": np.array([d.isoweekday() for d in dates], dtype=float),
                         "day_of_month": np.array([d.day for d in dates], dtype=float),
                         "month": np.array([d.month for d in dates], dtype=float),
                         "week_of_year": np.array([d.isocalendar()[1] for d in dates], dtype=float)}

    def index(self, day):
        return (day - self.first_day).days


def rolling_sums(history):
    """Cumulative sums and counts of the non-missing values along days, with a
    leading zero column: the sum over days [a, b) is c[:, b] - c[:, a]."""
    present = ~np.isnan(history)
    zero = np.zeros((history.shape[0], 1))
    return (np.hstack([zero, np.cumsum(np.where(present, history, 0.0), axis=1)]),
            np.hstack([zero, np.cumsum(present, axis=1, dtype=float)]))


def features(panel, history, targets, h, sums=None):
    """Design rows for the target day indices `targets` (rows ordered by
    target day, then store) at horizon h: features of the target day, and
    lags and rolling means of `history` (a [store, day] array) that end at
    t-h. Columns: the categorical ones first (`categorical(panel)`: Store if
    `panel.store_id`, StateHoliday, StoreType, Assortment), then the rest."""
    targets = np.asarray(targets)
    n_stores = len(panel.stores)
    grid = np.repeat(targets, n_stores)
    store = np.tile(np.arange(n_stores), len(targets))
    columns = [store.astype(float)] if panel.store_id else []
    columns.append(panel.holiday[store, grid])
    columns += [panel.attributes[c][store] for c in ATTRIBUTES_CATEGORICAL]
    columns += [panel.calendar[c][grid] for c in panel.calendar]
    columns += [panel.covariates[c][store, grid] for c in COVARIATES]
    columns += [panel.attributes[c][store] for c in ATTRIBUTES_NUMERIC]
    for k in lags_for(h):
        source = grid - k
        column = np.full(len(grid), np.nan)
        ok = source >= 0
        column[ok] = history[store[ok], source[ok]]
        columns.append(column)
    total, count = sums if sums is not None else rolling_sums(history)
    end = np.clip(grid - h + 1, 0, None)  # exclusive end: the window ends at t-h
    for w in ROLLING:
        start = np.clip(end - w, 0, None)
        n = count[store, end] - count[store, start]
        s = total[store, end] - total[store, start]
        columns.append(np.divide(s, n, out=np.full(len(grid), np.nan), where=n > 0))
    return np.column_stack(columns), store, grid


def categorical(panel):
    """Indices of the categorical columns of `features`."""
    return list(range(int(panel.store_id) + 1 + len(ATTRIBUTES_CATEGORICAL)))


def fit(panel, h, before, settings):
    """One LightGBM model for horizon h on the open days before day index `before`."""
    x, store, grid = features(panel, panel.sales, np.arange(before), h)
    keep = (panel.open[store, grid] == 1) & ~np.isnan(panel.sales[store, grid])
    params = {"objective": "regression", "learning_rate": settings.learning_rate, "num_leaves": settings.leaves,
              "seed": settings.seed, "deterministic": True, "num_threads": settings.threads, "verbose": -1}
    data = lgb.Dataset(x[keep], panel.sales[store, grid][keep], categorical_feature=categorical(panel), params=params)
    return lgb.train(params, data, num_boost_round=settings.rounds)


def predict(model, x):
    return np.maximum(model.predict(x), 0.0)


class Scores:
    """The scored (origin, store, target day) rows of one strategy."""

    def __init__(self):
        self.parts = []

    def add(self, panel, h, store, grid, forecast, scored_last):
        keep = (grid <= scored_last) & (panel.open[store, grid] == 1) & ~np.isnan(panel.sales[store, grid])
        self.parts.append((np.full(keep.sum(), h), store[keep], grid[keep], panel.sales[store, grid][keep],
                           forecast[keep]))

    def rows(self):
        return [np.concatenate(p) for p in zip(*self.parts)]


def metrics(h, actual, forecast, horizon):
    buckets = {f"h={k}": h == k for k in range(1, horizon + 1)}
    buckets.update({"h=1": h == 1, "1-7": (h >= 1) & (h <= 7), "8-14": (h >= 8) & (h <= 14),
                    f"1-{horizon}": h <= horizon})
    out = {}
    for name, mask in buckets.items():
        if mask.any():
            total = actual[mask].sum()
            error = forecast[mask] - actual[mask]
            out[name] = {"rows": int(mask.sum()), "wape": float(np.abs(error).sum() / total),
                         "bias": float(error.sum() / total)}
    return out


def direct(panel, origin_first, holdout_first, holdout_last, settings, models):
    scores = Scores()
    for h in range(1, settings.horizon + 1):
        if h not in models:
            models[h] = fit(panel, h, holdout_first, settings)
        targets = np.arange(origin_first + h, holdout_last + 1)
        if len(targets) == 0:
            continue
        x, store, grid = features(panel, panel.sales, targets, h)
        scores.add(panel, h, store, grid, predict(models[h], x), holdout_last)
    return scores


def recursive(panel, model, origins, scored_last, horizon):
    """Forecasts of the h=1 model fed its own forecasts, from every origin at
    once: one history per origin, with nothing after the origin but what the
    model forecast before (closed days fed as 0). Returns the Scores."""
    scores = Scores()
    histories = np.repeat(panel.sales[None], len(origins), axis=0)
    for i, o in enumerate(origins):
        histories[i, :, o + 1:] = np.nan
    for h in range(1, horizon + 1):
        live = [i for i, o in enumerate(origins) if o + h <= scored_last]
        if not live:
            break
        blocks = [features(panel, histories[i], [origins[i] + h], 1) for i in live]
        x = np.vstack([b[0] for b in blocks])
        forecast = predict(model, x)
        n = len(panel.stores)
        for j, i in enumerate(live):
            _, store, grid = blocks[j]
            value = forecast[j * n:(j + 1) * n]
            histories[i, store, grid] = np.where(panel.open[store, grid] == 0, 0.0, value)
            scores.add(panel, h, store, grid, value, scored_last)
    return scores


def seasonal_naive(panel, origin_first, holdout_last, horizon):
    scores = Scores()
    n_stores = len(panel.stores)
    for h in range(1, horizon + 1):
        targets = np.arange(origin_first + h, holdout_last + 1)
        grid = np.repeat(targets, n_stores)
        store = np.tile(np.arange(n_stores), len(targets))
        source = panel.sales[store, grid - 7 * math.ceil(h / 7)]
        scores.add(panel, h, store, grid, np.nan_to_num(source, nan=0.0), holdout_last)
    return scores


def conformal_quantiles(h, actual, forecast, level, horizon):
    """Per horizon: the split-conformal lower and upper quantiles of
    actual/forecast and of actual - forecast (finite-sample corrected)."""
    alpha = 1 - level
    out = {}
    for k in range(1, horizon + 1):
        mask = (h == k) & (forecast > 0)
        n = int(mask.sum())
        if n == 0:
            continue
        lo_level = max(math.floor((n + 1) * alpha / 2) / n, 0.0)
        hi_level = min(math.ceil((n + 1) * (1 - alpha / 2)) / n, 1.0)
        ratio = actual[mask] / forecast[mask]
        residual = actual[mask] - forecast[mask]
        out[k] = {"rows": n,
                  "ratio": [float(np.quantile(ratio, lo_level, method="lower")),
                            float(np.quantile(ratio, hi_level, method="higher"))],
                  "additive": [float(np.quantile(residual, lo_level, method="lower")),
                               float(np.quantile(residual, hi_level, method="higher"))]}
    return out


def coverage(h, actual, forecast, quantiles, horizon):
    buckets = {f"h={k}": h == k for k in range(1, horizon + 1)}
    buckets.update({"1-7": h <= 7, "8-14": (h >= 8) & (h <= 14), f"1-{horizon}": h <= horizon})
    out = {}
    for kind in ("ratio", "additive"):
        lo = np.array([quantiles[k][kind][0] for k in h])
        hi = np.array([quantiles[k][kind][1] for k in h])
        lower, upper = (forecast * lo, forecast * hi) if kind == "ratio" else (
            np.maximum(forecast + lo, 0.0), forecast + hi)
        inside = (actual >= lower) & (actual <= upper)
        out[kind] = {name: {"rows": int(m.sum()), "coverage": float(inside[m].mean()),
                            "below": float((actual < lower)[m].mean()), "above": float((actual > upper)[m].mean()),
                            "relative_width": float((upper - lower)[m].sum() / actual[m].sum())}
                     for name, m in buckets.items() if m.any()}
    return out


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform()}


def markdown(result):
    horizon = result["settings"]["horizon"]
    pooled = ["h=1", "1-7", "8-14", f"1-{horizon}"]
    names = {"direct": "direct", "recursive": "recursive", "seasonal_naive": "seasonal naive"}
    lines = ["| strategy | " + " | ".join(pooled) + " | seconds |", "|---" * (len(pooled) + 2) + "|"]
    for key, name in names.items():
        m = result["strategies"][key]
        lines.append(f"| {name} | " + " | ".join(f"{m['metrics'][b]['wape']:.4f}" for b in pooled)
                     + f" | {m['seconds']:.1f} |")
    lines += ["", "| h | rows | direct WAPE | bias | recursive WAPE | bias | seasonal naive WAPE | bias |",
              "|---:" * 8 + "|"]
    for b in [f"h={k}" for k in range(1, horizon + 1)] + pooled[1:]:
        cells = [b, str(result["strategies"]["direct"]["metrics"][b]["rows"])]
        for key in names:
            m = result["strategies"][key]["metrics"][b]
            cells += [f"{m['wape']:.4f}", f"{m['bias']:+.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    iv = result["intervals"]
    level = round(100 * iv["level"])
    lines += ["", f"Recursive {level}% split-conformal intervals (calibrated on {iv['calibration_first']}.."
              f"{iv['calibration_last']}): coverage on the holdout (relative width = sum(upper - lower) / sum actual)",
              "", "| bucket | ratio coverage | below / above | width | additive coverage | below / above | width |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for b in pooled[1:] + [f"h={k}" for k in range(1, horizon + 1)]:
        r, a = iv["coverage"]["ratio"][b], iv["coverage"]["additive"][b]
        lines.append(" | ".join(["", b] + [f"{x['coverage']:.3f} | {x['below']:.3f} / {x['above']:.3f} | "
                                           f"{x['relative_width']:.3f}" for x in (r, a)] + [""]).strip())
    s = result["seconds"]
    cal, hold = iv["calibration_metrics"][pooled[-1]], result["strategies"]["recursive"]["metrics"][pooled[-1]]
    lines += ["", f"Recursive {pooled[-1]} on the calibration window: WAPE {cal['wape']:.4f}, bias "
              f"{cal['bias']:+.4f}; on the holdout: WAPE {hold['wape']:.4f}, bias {hold['bias']:+.4f}."]
    lines += ["", "Seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in s.items())]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "rossmann"))
    parser.add_argument("--out", default=os.path.join(here, "..", "target", "reference-horizons.json"))
    parser.add_argument("--last-day", type=date.fromisoformat, default=date(2015, 7, 31))
    parser.add_argument("--horizon", type=int, default=14)
    parser.add_argument("--holdout-days", type=int, default=28)
    parser.add_argument("--history-days", type=int, default=730)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--interval", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--store-id", action="store_true",
                        help="the store key as a categorical feature, as salescast has its series keys")
    parser.add_argument("--threads", type=int, default=1,
                        help="LightGBM threads (default 1: OpenMP on a shared 2-core machine was 9x slower)")
    args = parser.parse_args()
    seconds = {"import": IMPORTED - STARTED}

    phase = time.perf_counter()
    first_day = args.last_day - timedelta(days=args.history_days - 1)
    panel = Panel(args.data, first_day, args.last_day, args.store_id)
    holdout_last = panel.index(args.last_day)
    holdout_first = holdout_last - args.holdout_days + 1
    origin_first = holdout_first - 1
    seconds["read"] = time.perf_counter() - phase

    models, strategies = {}, {}
    phase = time.perf_counter()
    scores = direct(panel, origin_first, holdout_first, holdout_last, args, models)
    seconds["direct"] = time.perf_counter() - phase
    h, _, _, actual, forecast = scores.rows()
    strategies["direct"] = {"metrics": metrics(h, actual, forecast, args.horizon), "seconds": seconds["direct"]}

    phase = time.perf_counter()
    model = fit(panel, 1, holdout_first, args)  # the same model as direct h=1 (deterministic), timed on its own
    origins = list(range(origin_first, holdout_last))
    scores = recursive(panel, model, origins, holdout_last, args.horizon)
    seconds["recursive"] = time.perf_counter() - phase
    h, _, _, actual, forecast = scores.rows()
    strategies["recursive"] = {"metrics": metrics(h, actual, forecast, args.horizon),
                               "seconds": seconds["recursive"]}
    recursive_rows = (h, actual, forecast)

    phase = time.perf_counter()
    scores = seasonal_naive(panel, origin_first, holdout_last, args.horizon)
    seconds["seasonal_naive"] = time.perf_counter() - phase
    h, _, _, actual, forecast = scores.rows()
    strategies["seasonal_naive"] = {"metrics": metrics(h, actual, forecast, args.horizon),
                                    "seconds": seconds["seasonal_naive"]}

    phase = time.perf_counter()
    calibration_first = holdout_first - args.holdout_days
    calibration_model = fit(panel, 1, calibration_first, args)
    calibration = recursive(panel, calibration_model, list(range(calibration_first - 1, holdout_first - 1)),
                            holdout_first - 1, args.horizon)
    ch, _, _, c_actual, c_forecast = calibration.rows()
    quantiles = conformal_quantiles(ch, c_actual, c_forecast, args.interval, args.horizon)
    seconds["intervals"] = time.perf_counter() - phase
    day = lambda i: (first_day + timedelta(days=int(i))).isoformat()  # noqa: E731
    intervals = {"level": args.interval, "calibration_first": day(calibration_first),
                 "calibration_last": day(holdout_first - 1),
                 "calibration_metrics": metrics(ch, c_actual, c_forecast, args.horizon),
                 "quantiles": {str(k): v for k, v in quantiles.items()},
                 "coverage": coverage(*recursive_rows, quantiles, args.horizon)}
    seconds["total"] = time.perf_counter() - STARTED

    result = {"data": os.path.abspath(args.data), "settings": {
        "horizon": args.horizon, "holdout": [day(holdout_first), day(holdout_last)],
        "origins": [day(origin_first), day(holdout_last - 1)], "history": [day(0), day(holdout_last)],
        "rounds": args.rounds, "learning_rate": args.learning_rate, "leaves": args.leaves, "seed": args.seed,
        "threads": args.threads, "direct_lags": {h: lags_for(h) for h in range(1, args.horizon + 1)},
        "rolling_means": list(ROLLING),
        "store_id_feature": args.store_id},
        "strategies": strategies, "intervals": intervals, "seconds": seconds, "machine": machine(),
        "lightgbm": lgb.__version__, "polars": pl.__version__, "numpy": np.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(markdown(result))


if __name__ == "__main__":
    main()
