"""How far can averaging boosted-tree models take rossmann below one model?
Issue 16 asks for 0.97x LightGBM with the same features. LightGBM stands in
for salescast's trees (the two are level on rossmann with the same features,
BENCHMARKS.md "Rossmann over six run dates"): per run date,
bench/reference.py's window, features, split, early stopping, refit and
settings; each member fitted that way, then averaged. h=1 holdout WAPE per
date and pooled over the six 28-day holdouts, as a ratio to the reference
(one model, squared loss).

Members:
- `squared`, `l1`, `tweedie`: the reference's settings with LightGBM's
  squared, absolute (L1) and Tweedie (power 1.2) losses;
- `..._csS`: the same with 80 % of the features per tree, seed S;
- `irls_csS`: squared loss with rows weighted by 1 / |residual of the
  `squared` fit| (floored at half its median over the training rows; the
  weights scaled to mean 1 over the training rows and applied to the
  early-stopping rows too), one reweighted least-squares step towards L1:
  what forust-ml, which has squared loss only, could fit;
- `sqrt_csS`: squared loss on sqrt(sales), squared back.

    python bench/ensembles.py CONFIG LAKE    (the venv of bench/requirements.txt)
"""

import os
import sys

import lightgbm as lgb
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blend  # noqa: E402
import reference as ref  # noqa: E402

LOSSES = {"squared": {"objective": "regression"}, "l1": {"objective": "l1"},
          "tweedie": {"objective": "tweedie", "tweedie_variance_power": 1.2}}
SEEDS = (1, 2, 3)
BLENDS = {
    # what LightGBM's losses can average
    "squared+l1+tweedie": ["squared", "l1", "tweedie"],
    "squared+l1, 3 seeds each": [f"{m}_cs{s}" for m in ("squared", "l1") for s in SEEDS],
    "3 losses, 3 seeds each": [f"{m}_cs{s}" for m in LOSSES for s in SEEDS],
    "3 losses, 4 models each": list(LOSSES) + [f"{m}_cs{s}" for m in LOSSES for s in SEEDS],
    # what squared loss alone (forust-ml) can average
    "squared, 3 seeds": [f"squared_cs{s}" for s in SEEDS],
    "squared+irls, 3 seeds each": [f"{m}_cs{s}" for m in ("squared", "irls") for s in SEEDS],
    "squared+sqrt, 3 seeds each": [f"{m}_cs{s}" for m in ("squared", "sqrt") for s in SEEDS],
    "squared+irls+sqrt, 3 seeds each": [f"{m}_cs{s}" for m in ("squared", "irls", "sqrt") for s in SEEDS],
}


def fit_predict(params, x, y, weight, is_train, is_inner, gbdt, seed, max_fit_rows):
    """Early stopping on the inner validation window, then a refit with the
    kept rounds on every training row (as reference.py); predictions for
    every row."""
    is_valid = is_train & ~is_inner
    w = (lambda rows: None) if weight is None else (lambda rows: weight[rows])
    inner_rows = ref.fit_rows(is_inner, max_fit_rows, seed)
    inner = lgb.Dataset(x[inner_rows], y[inner_rows], weight=w(inner_rows), params={"max_bin": gbdt["bins"]})
    valid = lgb.Dataset(x[is_valid], y[is_valid], weight=w(is_valid), reference=inner)
    search = lgb.train(params, inner, num_boost_round=gbdt["max_rounds"], valid_sets=[valid],
                       callbacks=[lgb.early_stopping(gbdt["early_stopping_rounds"], verbose=False)])
    rounds = search.best_iteration or search.current_iteration()
    train_rows = ref.fit_rows(is_train, max_fit_rows, seed)
    final = lgb.train(params, lgb.Dataset(x[train_rows], y[train_rows], weight=w(train_rows)),
                      num_boost_round=rounds)
    return final.predict(x)


def members(x, y, is_train, is_inner, gbdt, seed, max_fit_rows):
    """Every member's forecasts of the holdout rows."""
    base = {"learning_rate": gbdt["learning_rate"], "max_depth": gbdt["max_depth"],
            "num_leaves": 2 ** min(gbdt["max_depth"], 12), "min_sum_hessian_in_leaf": gbdt["min_leaf_weight"],
            "lambda_l2": gbdt["l2"], "max_bin": gbdt["bins"], "seed": seed, "deterministic": True,
            "metric": "rmse", "verbose": -1}

    def run(params, target=y, weight=None):
        return fit_predict({**base, **params}, x, target, weight, is_train, is_inner, gbdt, seed, max_fit_rows)

    full = {}
    for name, loss in LOSSES.items():
        full[name] = run(loss)
        for s in SEEDS:
            full[f"{name}_cs{s}"] = run({**loss, "feature_fraction": 0.8, "seed": s, "feature_fraction_seed": s})
    residual = np.abs(y - full["squared"])
    weight = 1.0 / np.maximum(residual, 0.5 * np.median(residual[is_train]))
    weight /= weight[is_train].mean()
    root = np.sqrt(np.maximum(y, 0.0))
    for s in SEEDS:
        sampled = {**LOSSES["squared"], "feature_fraction": 0.8, "seed": s, "feature_fraction_seed": s}
        full[f"irls_cs{s}"] = run(sampled, weight=weight)
        full[f"sqrt_cs{s}"] = np.square(run(sampled, target=root))
    out = {name: ref.forecast(p[~is_train]) for name, p in full.items()}
    for name, parts in BLENDS.items():
        out[name] = sum(out[m] for m in parts) / len(parts)
    return out


def main():
    blend.report(sys.argv[1], sys.argv[2], members)


if __name__ == "__main__":
    main()
