"""`bench/run lightgbm3`: LightGBM through the lightgbm3 crate against
forust-ml on the same rows and settings, for each benchmark lake. Builds
bench/lightgbm3-probe (LightGBM's C++: needs CMake >= 3.28 on PATH and
libclang), dumps each lake's design with bench/dump_design.py, and runs the
probe on it.

Usage: lightgbm3.py SALESCAST_BINARY
"""

import os
import subprocess
import sys

from lakes import OUT, REPO, ingest, lakes


def main():
    binary = os.path.abspath(sys.argv[1])
    target = os.path.join(REPO, "target", "lightgbm3-probe")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path",
                    os.path.join(REPO, "bench", "lightgbm3-probe", "Cargo.toml"), "--target-dir", target], check=True)
    for lake in lakes():
        key = lake.name.split()[0]
        folder = os.path.join(OUT, "lakes", key)
        if not os.path.isdir(folder):
            ingest(binary, lake, folder)
        design = os.path.join(OUT, "designs", key)
        subprocess.run([sys.executable, os.path.join(REPO, "bench", "dump_design.py"), lake.config, folder,
                        lake.run_date, design], check=True, stdout=subprocess.DEVNULL)
        print(f"== {lake.name}", flush=True)
        subprocess.run([os.path.join(target, "release", "lightgbm3-probe"), design], check=True)


if __name__ == "__main__":
    main()
