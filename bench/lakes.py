"""The benchmark lakes, shared by the benchmark scripts: rossmann and
store_item from ../shared/data, and the generated lake (bench/generate.py,
written once into target/bench). `ingest` puts one into a folder with the
salescast binary."""

import os
import subprocess
import sys
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared", "data")
OUT = os.path.join(REPO, "target", "bench")


@dataclass
class BenchLake:
    name: str
    config: str
    ingest_args: list
    run_date: str


def rossmann():
    """The rossmann lake (100 stores, from ../shared/data)."""
    return BenchLake("rossmann", os.path.join(REPO, "examples", "rossmann.toml"),
                     ["--input", os.path.join(SHARED, "rossmann", "train.csv"),
                      "--attributes", "store=" + os.path.join(SHARED, "rossmann", "store.csv")], "2015-07-31")


def lakes(series=5000, days=2000, history_days=730):
    """The three lakes; the generated one is written on first use and read
    with a `history_days` window."""
    os.makedirs(OUT, exist_ok=True)
    generated = os.path.join(OUT, f"generated-{series}x{days}.parquet")
    if not os.path.exists(generated):
        subprocess.run([sys.executable, os.path.join(REPO, "bench", "generate.py"), generated, str(series),
                        str(days)], check=True)
    generated_config = os.path.join(OUT, f"generated-{history_days}.toml")
    with open(os.path.join(REPO, "bench", "generated.toml")) as f:
        config = f.read()
    with open(generated_config, "w") as f:
        f.write(config + f"\n[window]\nhistory_days = {history_days}\n")
    return [
        rossmann(),
        BenchLake("store_item", os.path.join(REPO, "examples", "store_item.toml"),
                  ["--input", os.path.join(SHARED, "store_item", "train.csv")], "2017-12-31"),
        BenchLake(f"generated {series}x{days}", generated_config, ["--input", generated], "2025-12-31"),
    ]


def ingest(binary, lake, folder):
    """Ingests `lake` into `folder` with the salescast `binary`."""
    subprocess.run([binary, "--config", lake.config, "--lake", folder, "-q", "ingest"] + lake.ingest_args,
                   check=True, stdout=subprocess.DEVNULL)
