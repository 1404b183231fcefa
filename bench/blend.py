"""Would averaging boosted trees fitted on different target scales beat one
model on rossmann? LightGBM stands in for salescast's trees (the two are
level on rossmann with the same features, BENCHMARKS.md "Rossmann over six
run dates"): per run date, bench/reference.py's window, features, split,
early stopping and settings, fitted three ways (squared loss on sales, on
sqrt(sales) squared back, Tweedie 1.2), each alone and averaged; h=1 holdout
WAPE per date and pooled over the six 28-day holdouts.

    python bench/blend.py CONFIG LAKE    (the venv of bench/requirements.txt)
"""

import json
import os
import sys
from datetime import date, timedelta

import lightgbm as lgb
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

SCALES = {
    "squared": ({"objective": "regression"}, np.asarray, np.asarray),
    "sqrt": ({"objective": "regression"}, lambda v: np.sqrt(np.maximum(v, 0)), np.square),
    "tweedie": ({"objective": "tweedie", "tweedie_variance_power": 1.2}, np.asarray, np.asarray),
}
BLENDS = {"squared+sqrt": ["squared", "sqrt"], "squared+tweedie": ["squared", "tweedie"],
          "all three": ["squared", "sqrt", "tweedie"]}


def holdout_forecasts(x, y, is_train, is_inner, gbdt, seed, max_fit_rows):
    """Each scale's forecasts of the holdout rows, fitted as reference.py fits."""
    is_valid = is_train & ~is_inner
    base = {"learning_rate": gbdt["learning_rate"], "max_depth": gbdt["max_depth"],
            "num_leaves": 2 ** min(gbdt["max_depth"], 12), "min_sum_hessian_in_leaf": gbdt["min_leaf_weight"],
            "lambda_l2": gbdt["l2"], "max_bin": gbdt["bins"], "seed": seed, "deterministic": True,
            "metric": "rmse", "verbose": -1}
    out = {}
    for name, (objective, forward, back) in SCALES.items():
        params, fit_y = {**base, **objective}, forward(y)
        inner_rows = ref.fit_rows(is_inner, max_fit_rows, seed)
        inner = lgb.Dataset(x[inner_rows], fit_y[inner_rows], params={"max_bin": gbdt["bins"]})
        valid = lgb.Dataset(x[is_valid], fit_y[is_valid], reference=inner)
        search = lgb.train(params, inner, num_boost_round=gbdt["max_rounds"], valid_sets=[valid],
                           callbacks=[lgb.early_stopping(gbdt["early_stopping_rounds"], verbose=False)])
        rounds = search.best_iteration or search.current_iteration()
        train_rows = ref.fit_rows(is_train, max_fit_rows, seed)
        final = lgb.train(params, lgb.Dataset(x[train_rows], fit_y[train_rows]), num_boost_round=rounds)
        out[name] = ref.forecast(back(final.predict(x[~is_train])))
    for name, members in BLENDS.items():
        out[name] = sum(out[m] for m in members) / len(members)
    return out


def holdouts(mapping, window, features, lake):
    """Rossmann's six 28-day holdouts (run dates 2015-07-31 and every 28 days
    before): per run date, the reference's features and design, as
    (day, frame, x, y, is_train, is_inner)."""
    for day in [date(2015, 7, 31) - timedelta(days=28 * k) for k in range(6)]:
        first = day - timedelta(days=window["history_days"] - 1)
        sales, attributes = ref.read_window(lake, mapping, first, day)
        frame = ref.build_features(sales, attributes, mapping, features)
        yield (day, frame, *ref.split_and_encode(frame, mapping, window, features, day))


def report(config, lake, forecasts):
    """Prints each run date's h=1 holdout WAPE of every model `forecasts`
    gives (called as holdout_forecasts is), then the WAPE pooled over the
    six holdouts and its ratio to the model named `squared`."""
    mapping, window, features, gbdt, seed, max_fit_rows = ref.settings(config)
    pooled = {}
    for day, _, x, y, is_train, is_inner in holdouts(mapping, window, features, lake):
        actual = y[~is_train]
        row = {}
        for name, predicted in forecasts(x, y, is_train, is_inner, gbdt, seed, max_fit_rows).items():
            error, total = float(np.abs(predicted - actual).sum()), float(np.abs(actual).sum())
            sums = pooled.setdefault(name, [0.0, 0.0])
            sums[0] += error
            sums[1] += total
            row[name] = round(error / total, 4)
        print(day, json.dumps(row), flush=True)
    wape = {name: e / t for name, (e, t) in pooled.items()}
    print("pooled", json.dumps({k: round(v, 4) for k, v in wape.items()}))
    print("ratio to squared", json.dumps({k: round(v / wape["squared"], 3) for k, v in wape.items()}))
    print("lightgbm", lgb.__version__)


def main():
    report(sys.argv[1], sys.argv[2], holdout_forecasts)


if __name__ == "__main__":
    main()
