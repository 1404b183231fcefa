"""Two more ways to fit the same trees, measured with LightGBM standing in
for salescast's trees (BENCHMARKS.md, issue 16): the target as a ratio to the
series' own level (sales / series_mean, forecast times series_mean; row
weights series_mean^P, P = 0, 1 or 2: P = 2 is squared loss in sales with
multiplicative trees), and recency weights (half-life H days before the run
date). Per run date, bench/reference.py's window, features, split, early
stopping and settings; h=1 holdout WAPE per date and pooled over rossmann's
six 28-day holdouts.

    python bench/reweight.py CONFIG LAKE squared,series_mean:2,series_mean:1,series_mean:0
    python bench/reweight.py CONFIG LAKE squared,decay90,decay180,decay365
"""

import json
import os
import sys

import lightgbm as lgb
import numpy as np
import polars as pl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402
from blend import holdouts  # noqa: E402


def fit_predict(x, fy, w, is_train, is_inner, gbdt, seed, mfr):
    is_valid = is_train & ~is_inner
    params = {"objective": "regression", "learning_rate": gbdt["learning_rate"], "max_depth": gbdt["max_depth"],
              "num_leaves": 2 ** min(gbdt["max_depth"], 12), "min_sum_hessian_in_leaf": gbdt["min_leaf_weight"],
              "lambda_l2": gbdt["l2"], "max_bin": gbdt["bins"], "seed": seed, "deterministic": True,
              "metric": "rmse", "verbose": -1}
    inner_rows = ref.fit_rows(is_inner, mfr, seed)
    wi = None if w is None else w[inner_rows]
    inner = lgb.Dataset(x[inner_rows], fy[inner_rows], weight=wi, params={"max_bin": gbdt["bins"]})
    valid = lgb.Dataset(x[is_valid], fy[is_valid], weight=None if w is None else w[is_valid], reference=inner)
    search = lgb.train(params, inner, num_boost_round=gbdt["max_rounds"], valid_sets=[valid],
                       callbacks=[lgb.early_stopping(gbdt["early_stopping_rounds"], verbose=False)])
    rounds = search.best_iteration or search.current_iteration()
    tr = ref.fit_rows(is_train, mfr, seed)
    final = lgb.train(params, lgb.Dataset(x[tr], fy[tr], weight=None if w is None else w[tr]), num_boost_round=rounds)
    return final.predict(x[~is_train]), rounds


def main():
    config, lake = sys.argv[1], sys.argv[2]
    which = sys.argv[3].split(",")
    mapping, window, features, gbdt, seed, mfr = ref.settings(config)
    numeric, _ = ref.layout(mapping, features)
    pooled = {}
    for day, frame, x, y, is_train, is_inner in holdouts(mapping, window, features, lake):
        actual = y[~is_train]
        fr = frame.filter(pl.col(mapping["open"]) != 0) if mapping["open"] else frame
        dates = fr[mapping["date"]].to_numpy().astype("datetime64[D]")
        row = {}
        for name in which:
            if name == "squared":
                p, r = fit_predict(x, y, None, is_train, is_inner, gbdt, seed, mfr)
            elif name.startswith("decay"):
                hl = float(name[5:])
                age = (np.datetime64(day) - dates).astype("timedelta64[D]").astype(float)
                w = 0.5 ** (age / hl)
                p, r = fit_predict(x, y, w, is_train, is_inner, gbdt, seed, mfr)
            else:
                scale_col, power = name.split(":")
                m = x[:, numeric.index(scale_col)].copy()
                ok = np.isfinite(m) & (m > 0)
                m[~ok] = np.nanmean(m[ok])
                w = None if power == "0" else m ** float(power)
                p, r = fit_predict(x, y / m, w, is_train, is_inner, gbdt, seed, mfr)
                p = p * m[~is_train]
            p = ref.forecast(p)
            e, t = float(np.abs(p - actual).sum()), float(np.abs(actual).sum())
            sums = pooled.setdefault(name, [0.0, 0.0])
            sums[0] += e
            sums[1] += t
            row[name] = (round(e / t, 4), r)
        print(day, json.dumps(row), flush=True)
    wape = {k: e / t for k, (e, t) in pooled.items()}
    print("pooled", json.dumps({k: round(v, 4) for k, v in wape.items()}))
    if "squared" in wape:
        print("ratio", json.dumps({k: round(v / wape["squared"], 3) for k, v in wape.items()}))


if __name__ == "__main__":
    main()
