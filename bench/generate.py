"""Writes the benchmark's generated sales file: SERIES series (stores x 50
items) over DAYS consecutive days ending 2025-12-31, one Parquet file of
`date, store, item, promo, sales` that `salescast ingest` loads (config:
bench/generated.toml). Sales are Poisson around a per-series level with a
weekly profile per store, a yearly cycle, a slow trend and promotion uplift;
the seed is fixed, so every run writes the same rows.

Usage: generate.py OUT.parquet [SERIES] [DAYS]
"""

import sys
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ITEMS = 50


def main():
    out = sys.argv[1]
    series = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    days = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    stores = series // ITEMS
    rng = np.random.default_rng(7)
    first = date(2025, 12, 31) - timedelta(days=days - 1)

    day = np.arange(days)
    weekday = (first.weekday() + day) % 7
    yearly = 1 + 0.25 * np.sin(2 * np.pi * (day + first.timetuple().tm_yday) / 365.25)
    level = rng.lognormal(mean=2.5, sigma=0.8, size=(stores, ITEMS))
    weekly = 1 + rng.normal(0, 0.15, size=(stores, 7))
    weekly[:, 5:] += 0.3
    trend = 1 + rng.normal(0, 0.2, size=(stores, ITEMS))[..., None] * day / days
    promo = rng.random((stores, ITEMS, days)) < 0.1
    uplift = 1 + rng.uniform(0.1, 0.6, size=(stores, ITEMS))[..., None] * promo
    mean = level[..., None] * weekly[:, None, weekday] * yearly * trend * uplift
    sales = rng.poisson(np.maximum(mean, 0)).astype(np.float64)

    dates = np.datetime64(first) + np.arange(days).astype("timedelta64[D]")
    # Rows day by day, as a daily export arrives.
    table = pa.table({
        "date": np.tile(dates, stores * ITEMS).reshape(stores * ITEMS, days).T.ravel(),
        "store": pa.array(np.repeat(np.arange(1, stores + 1), ITEMS)).cast(pa.string()).take(
            pa.array(np.tile(np.arange(stores * ITEMS), days))),
        "item": pa.array(np.tile(np.arange(1, ITEMS + 1), stores)).cast(pa.string()).take(
            pa.array(np.tile(np.arange(stores * ITEMS), days))),
        "promo": promo.reshape(stores * ITEMS, days).T.ravel().astype(np.float64),
        "sales": sales.reshape(stores * ITEMS, days).T.ravel(),
    })
    pq.write_table(table, out, row_group_size=1 << 20)
    print(f"{out}: {table.num_rows} rows, {stores * ITEMS} series, {first} .. {first + timedelta(days=days - 1)}")


if __name__ == "__main__":
    main()
