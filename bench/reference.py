"""The Python reference pipeline the forecast benchmark measures salescast
against: what a data engineer would write with polars and LightGBM, doing the
same work as `salescast retrain --dry-run` for one day.

Same input: the salescast lake (Hive-partitioned Parquet) and the same TOML
config (the mapping, window, features and GBDT settings), so it runs on any
dataset that salescast runs on. Same features (calendar, lags and past-only
rolling means in calendar days, the series' expanding mean, covariates,
attribute columns, categories coded by their sorted training values; closed
days are not history), same split (the newest `holdout_days` are the holdout,
the `holdout_days` before them the inner validation window; closed days are
neither trained on nor scored), same search (early stopping on the inner
validation window, then a refit with the kept rounds on every training row;
both fits sample down to `training.max_fit_rows` rows as salescast does),
same metrics. Prints one JSON object: the metrics and the time of each phase.

Usage: reference.py CONFIG LAKE DATE [--target none|log1p|tweedie]
  --target: how the target is modelled (an experiment; salescast models it
  as it is): as it is (the default), log1p-transformed with predictions
  mapped back by expm1, or with LightGBM's Tweedie objective (power 1.2).
"""

import argparse
import json
import time
import tomllib
from datetime import date, timedelta

STARTED = time.perf_counter()
import lightgbm as lgb  # noqa: E402  (import time is part of what is measured)
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

IMPORTED = time.perf_counter()

DEFAULTS = {
    "window": {"history_days": 730, "holdout_days": 28},
    "features": {"lags": [1, 7, 14, 28], "rolling_means": [7, 28]},
    "gbdt": {"max_rounds": 1000, "early_stopping_rounds": 50, "learning_rate": 0.05, "max_depth": 8,
             "min_leaf_weight": 20.0, "l2": 1.0, "subsample": 1.0, "colsample_bytree": 1.0, "bins": 255},
    "seed": 42,
    "max_fit_rows": 500_000,
}


def settings(config_path):
    with open(config_path, "rb") as f:
        config = tomllib.load(f)
    data = config["data"]
    mapping = {
        "date": data["date_column"],
        "keys": data["series_keys"],
        "target": data["target"],
        "covariates": data.get("covariates", []),
        "categorical": data.get("categorical", []),
        "open": data.get("open_flag"),
        "attributes": data.get("attributes", []),
    }
    window = {**DEFAULTS["window"], **config.get("window", {})}
    features = {**DEFAULTS["features"], **config.get("features", {})}
    training = config.get("training", {})
    gbdt = {**DEFAULTS["gbdt"], **training.get("gbdt", {})}
    return (mapping, window, features, gbdt, training.get("seed", DEFAULTS["seed"]),
            training.get("max_fit_rows", DEFAULTS["max_fit_rows"]))


def read_window(lake, mapping, first_day, last_day):
    sales = (pl.scan_parquet(f"{lake}/sales/*/*.parquet", hive_partitioning=True)
             .filter(pl.col(mapping["date"]).is_between(first_day, last_day))
             .drop("dt", strict=False)
             .collect())
    attributes = [(t, pl.read_parquet(f"{lake}/dims/{t['table']}.parquet")) for t in mapping["attributes"]]
    return sales, attributes


def build_features(sales, attributes, mapping, features):
    d, keys, target = mapping["date"], mapping["keys"], mapping["target"]
    history = pl.col(target)
    if mapping["open"]:
        history = pl.when(pl.col(mapping["open"]) == 0).then(None).otherwise(pl.col(target))
    base = sales.lazy().with_columns(history.cast(pl.Float64).alias("__history")).sort(keys + [d])
    frame = base
    for k in features["lags"]:
        lagged = base.select(keys + [(pl.col(d) + timedelta(days=k)).alias(d), pl.col("__history").alias(f"lag_{k}")])
        frame = frame.join(lagged, on=keys + [d], how="left")
    frame = frame.sort(keys + [d])
    present = pl.col("__history").is_not_null().cast(pl.Float64)
    value = pl.col("__history").fill_null(0.0)
    earlier_count = present.cum_sum().over(keys) - present
    earlier_sum = value.cum_sum().over(keys) - value
    frame = frame.with_columns(
        [pl.col("__history").rolling_mean_by(d, window_size=f"{k}d", closed="left").over(keys)
         .alias(f"rolling_mean_{k}") for k in features["rolling_means"]]
        + [pl.when(earlier_count > 0).then(earlier_sum / earlier_count).otherwise(None).alias("series_mean"),
           pl.col(d).dt.weekday().cast(pl.Float64).alias("day_of_week"),
           pl.col(d).dt.day().cast(pl.Float64).alias("day_of_month"),
           pl.col(d).dt.month().cast(pl.Float64).alias("month"),
           pl.col(d).dt.week().cast(pl.Float64).alias("week_of_year")])
    for table, df in attributes:
        frame = frame.join(df.lazy().select(table["join_keys"] + table["columns"]), on=table["join_keys"], how="left")
    return frame.sort([d] + keys).collect()


def layout(mapping, features):
    numeric = ["day_of_week", "day_of_month", "month", "week_of_year"]
    numeric += [f"lag_{k}" for k in features["lags"]] + [f"rolling_mean_{k}" for k in features["rolling_means"]]
    numeric.append("series_mean")
    known = mapping["covariates"] + [c for t in mapping["attributes"] for c in t["columns"]]
    numeric += [c for c in known if c not in mapping["categorical"]]
    categorical = list(mapping["keys"]) + [c for c in known if c in mapping["categorical"]]
    return numeric, categorical


def design(frame, numeric, vocabularies):
    columns = [frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in numeric]
    for name, vocabulary in vocabularies.items():
        codes = frame[name].cast(pl.String).replace_strict(vocabulary, list(range(len(vocabulary))),
                                                           default=None, return_dtype=pl.Float64)
        columns.append(codes.fill_null(np.nan).to_numpy())
    return np.column_stack(columns)


def fit_rows(mask, max_fit_rows, seed):
    """The rows of `mask`, or a seeded sample of `max_fit_rows` of them, as
    salescast's `training.max_fit_rows` does (a different generator, so a
    different sample of the same size)."""
    rows = np.flatnonzero(mask)
    if max_fit_rows and len(rows) > max_fit_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_fit_rows, replace=False))
    return rows


def forecast(predicted):
    """Predictions as salescast forecasts them: never negative."""
    return np.maximum(predicted, 0.0)


def wape_metrics(actual, predicted):
    error = predicted - actual
    total = np.abs(actual).sum()
    scale = np.abs(actual) + np.abs(predicted)
    smape = np.divide(2 * np.abs(error), scale, out=np.zeros_like(scale), where=scale > 0)
    return {"rows": int(len(actual)), "wape": float(np.abs(error).sum() / total), "mae": float(np.abs(error).mean()),
            "rmse": float(np.sqrt((error ** 2).mean())), "smape": float(smape.mean()),
            "bias": float(error.sum() / total)}


def split_and_encode(frame, mapping, window, features, day):
    """The design matrix and target of the open-day rows of `frame`, with
    masks of the training rows (before the holdout) and of the inner
    training rows (before the inner validation window)."""
    holdout_first = day - timedelta(days=window["holdout_days"] - 1)
    inner_first = holdout_first - timedelta(days=window["holdout_days"])
    if mapping["open"]:
        frame = frame.filter(pl.col(mapping["open"]) != 0)
    dates = frame[mapping["date"]]
    is_train = (dates < holdout_first).to_numpy()
    is_inner_train = (dates < inner_first).to_numpy()
    numeric, categorical = layout(mapping, features)
    train_frame = frame.filter(pl.Series(is_train))
    vocabularies = {c: sorted(train_frame[c].cast(pl.String).drop_nulls().unique().to_list()) for c in categorical}
    x = design(frame, numeric, vocabularies)
    y = frame[mapping["target"]].cast(pl.Float64).to_numpy()
    return x, y, is_train, is_inner_train


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("lake")
    parser.add_argument("date", type=date.fromisoformat)
    parser.add_argument("--target", choices=["none", "log1p", "tweedie"], default="none")
    args = parser.parse_args()
    config_path, lake, day = args.config, args.lake, args.date
    mapping, window, features, gbdt, seed, max_fit_rows = settings(config_path)
    seconds = {"import": IMPORTED - STARTED}

    phase = time.perf_counter()
    first_day = day - timedelta(days=window["history_days"] - 1)
    sales, attributes = read_window(lake, mapping, first_day, day)
    seconds["read"] = time.perf_counter() - phase

    phase = time.perf_counter()
    frame = build_features(sales, attributes, mapping, features)
    seconds["features"] = time.perf_counter() - phase

    phase = time.perf_counter()
    x, y, is_train, is_inner_train = split_and_encode(frame, mapping, window, features, day)
    is_valid = is_train & ~is_inner_train
    is_holdout = ~is_train
    seconds["design"] = time.perf_counter() - phase

    params = {
        "objective": "regression", "learning_rate": gbdt["learning_rate"], "max_depth": gbdt["max_depth"],
        "num_leaves": 2 ** min(gbdt["max_depth"], 12), "min_sum_hessian_in_leaf": gbdt["min_leaf_weight"],
        "lambda_l2": gbdt["l2"], "bagging_fraction": gbdt["subsample"], "bagging_freq": 1 if gbdt["subsample"] < 1 else 0,
        "feature_fraction": gbdt["colsample_bytree"], "max_bin": gbdt["bins"], "seed": seed, "deterministic": True,
        "metric": "rmse", "verbose": -1,
    }
    forward, back = (np.log1p, np.expm1) if args.target == "log1p" else (np.asarray, np.asarray)
    if args.target == "tweedie":
        params = {**params, "objective": "tweedie", "tweedie_variance_power": 1.2}
    y_fit = forward(y)
    phase = time.perf_counter()
    inner_rows = fit_rows(is_inner_train, max_fit_rows, seed)
    inner = lgb.Dataset(x[inner_rows], y_fit[inner_rows], params={"max_bin": gbdt["bins"]})
    valid = lgb.Dataset(x[is_valid], y_fit[is_valid], reference=inner)
    search = lgb.train(params, inner, num_boost_round=gbdt["max_rounds"], valid_sets=[valid],
                       callbacks=[lgb.early_stopping(gbdt["early_stopping_rounds"], verbose=False)])
    rounds = search.best_iteration or search.current_iteration()
    validation = wape_metrics(y[is_valid], forecast(back(search.predict(x[is_valid], num_iteration=rounds))))
    seconds["search"] = time.perf_counter() - phase

    phase = time.perf_counter()
    train_rows = fit_rows(is_train, max_fit_rows, seed)
    final = lgb.train(params, lgb.Dataset(x[train_rows], y_fit[train_rows]), num_boost_round=rounds)
    seconds["refit"] = time.perf_counter() - phase

    phase = time.perf_counter()
    holdout = wape_metrics(y[is_holdout], forecast(back(final.predict(x[is_holdout]))))
    seconds["evaluate"] = time.perf_counter() - phase
    seconds["total"] = time.perf_counter() - STARTED
    print(json.dumps({"target": args.target, "rounds": rounds, "training_rows": int(is_train.sum()), "holdout": holdout,
                      "validation": validation, "lightgbm": lgb.__version__, "polars": pl.__version__,
                      "seconds": seconds}))


if __name__ == "__main__":
    main()
