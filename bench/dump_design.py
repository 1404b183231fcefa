"""Dumps the reference pipeline's design matrix, target and row sets (inner
training, validation, training and holdout rows; raw little-endian files and
meta.json) for bench/lightgbm3-probe, which fits LightGBM and forust-ml on
exactly these rows.

Usage: dump_design.py CONFIG LAKE DATE OUT_DIR
"""

import json
import os
import sys
from datetime import date, timedelta

import numpy as np

import reference as R

config_path, lake, day, out = sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3]), sys.argv[4]
os.makedirs(out, exist_ok=True)
mapping, window, features, gbdt, seed, max_fit_rows = R.settings(config_path)
first_day = day - timedelta(days=window["history_days"] - 1)
sales, attributes = R.read_window(lake, mapping, first_day, day)
frame = R.build_features(sales, attributes, mapping, features)
x, y, is_train, is_inner = R.split_and_encode(frame, mapping, window, features, day)
x = np.ascontiguousarray(x)
sets = {"inner": R.fit_rows(is_inner, max_fit_rows, seed), "valid": np.flatnonzero(is_train & ~is_inner),
        "train": R.fit_rows(is_train, max_fit_rows, seed), "holdout": np.flatnonzero(~is_train)}
for name, rows in sets.items():
    x[rows].astype("<f8").tofile(f"{out}/{name}.x")
    y[rows].astype("<f4").tofile(f"{out}/{name}.y")
    y[rows].astype("<f8").tofile(f"{out}/{name}.y64")
json.dump({"features": x.shape[1], **{k: int(len(v)) for k, v in sets.items()}, "gbdt": gbdt, "seed": seed},
          open(f"{out}/meta.json", "w"))
print(out, x.shape)
