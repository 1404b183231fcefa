"""Benchmark: the lake and the registry in a local folder against the same on
S3 (the local moto server, over HTTP on loopback), measured in one run:
ingest of rossmann, retrain (two promotions), and rollback. Each case runs
REPEATS times on a fresh registry (the lake is ingested once per backend for
the later cases); the table shows median wall time.

moto runs on the same 2-core machine and answers in Python, so S3 figures here
are an upper bound for the client side and say nothing of AWS latency.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from measure import measure

import boto3

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "data", "rossmann")
CONFIG = os.path.join(REPO, "examples", "rossmann.toml")
LINEAR = "\n[training]\ncandidates = [\"seasonal_naive\", \"elastic_net\"]\n"


def start_moto():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    # The tests' server (tests/s3_server.py): moto, one request at a time.
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "s3_server.py"), "127.0.0.1", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/")
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("moto did not start")


def timed(argv):
    return measure(argv).wall


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="salescast-backends-")
    linear = os.path.join(work, "linear.toml")
    with open(CONFIG) as f, open(linear, "w") as out:
        out.write(f.read() + LINEAR)
    moto, endpoint = start_moto()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    counter = [0]

    def bucket():
        counter[0] += 1
        name = f"bench-{counter[0]}"
        s3.create_bucket(Bucket=name)
        return f"s3://{name}"

    backends = {
        "local folder": (lambda name: os.path.join(work, f"{name}-{time.monotonic_ns()}"), []),
        "S3 (moto, loopback)": (lambda name: f"{bucket()}/{name}", ["--s3-endpoint", endpoint]),
    }
    results = {}
    try:
        for backend, (place, flags) in backends.items():
            def cmd(config, lake, registry, *rest):
                return [binary, "--config", config, "--lake", lake, "--registry", registry, "-q", *flags, *rest]
            ingest = [timed(cmd(CONFIG, place("lake"), place("unused"), "ingest",
                                "--input", os.path.join(DATA, "train.csv"),
                                "--attributes", "store=" + os.path.join(DATA, "store.csv")))
                      for _ in range(args.repeats)]
            lake = place("lake")
            timed(cmd(CONFIG, lake, place("unused"), "ingest", "--input", os.path.join(DATA, "train.csv"),
                      "--attributes", "store=" + os.path.join(DATA, "store.csv")))
            first, second, rollback = [], [], []
            for _ in range(args.repeats):
                registry = place("registry")
                first.append(timed(cmd(linear, lake, registry, "retrain", "--date", "2015-07-01")))
                second.append(timed(cmd(CONFIG, lake, registry, "retrain", "--date", "2015-07-31")))
                rollback.append(timed(cmd(CONFIG, lake, registry, "rollback", "--reason", "bench")))
            results[backend] = [statistics.median(x) for x in (ingest, first, second, rollback)]
    finally:
        moto.kill()
        shutil.rmtree(work, ignore_errors=True)

    names = ["ingest rossmann (942 partitions + store table)", "retrain 2015-07-01 (linear, first promotion)",
             "retrain 2015-07-31 (default candidates)", "rollback to the first version"]
    cols = list(results)
    print(f"repeats: {args.repeats}; median wall seconds\n")
    print("| case | " + " | ".join(cols) + " | S3 / local |")
    print("|---|" + "---:|" * (len(cols) + 1))
    for i, name in enumerate(names):
        local, remote = results[cols[0]][i], results[cols[1]][i]
        print(f"| {name} | {local:.2f} | {remote:.2f} | {remote / local:.1f}x |")


if __name__ == "__main__":
    main()
