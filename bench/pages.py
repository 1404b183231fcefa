"""Issue 14's page benchmark: `salescast serve` (release build) on the
rossmann lake (two daily runs, so the chain page scores the first day's
forecasts), logged in as an admin: each page requested 200 times in a row
on one kept-alive connection (after 20 warm-up requests), with the server's
own time per request (the access log's microseconds) and the client's; the
JSON API's forecasts of the same store and /healthz in the same run as the
comparison; and the login (argon2id) time over 20 logins.

Prints one JSON document (and writes it to --out); BENCHMARKS.md quotes it."""

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from horizons import git_commit, machine  # noqa: E402
from lakes import OUT, ingest  # noqa: E402
from lakes import rossmann as lakes_rossmann  # noqa: E402
from serve_load import QUICK, Server, add_admin, run  # noqa: E402

PAGES = [
    ("store page", "/stores/102"),
    ("chain overview", "/chain"),
    ("chain sorted by error", "/chain?sort=error&dir=desc"),
    ("chain CSV", "/chain.csv"),
    ("model page", "/model"),
    ("admin page", "/admin"),
    ("API: one store's forecasts (JSON)", "/v1/forecasts?Store=102"),
    ("/healthz (no session)", "/healthz"),
]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def login(addr, password):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = urllib.parse.urlencode({"user": "bench", "password": password}).encode()
    started = time.perf_counter()
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    reply = conn.getresponse()
    reply.read()
    elapsed = (time.perf_counter() - started) * 1000
    assert reply.status == 303, reply.status
    cookie = reply.getheader("Set-Cookie").split(";")[0]
    conn.close()
    return cookie, elapsed


def server_micros(log_path, path_and_query):
    """The access log's microseconds of every request to exactly this path and query."""
    path, _, query = path_and_query.partition("?")
    micros = []
    with open(log_path) as f:
        for line in f:
            p = re.search(r'path="([^"]*)"', line)
            q = re.search(r'query="([^"]*)"', line)
            m = re.search(r"micros=(\d+)", line)
            if p and q and m and p.group(1) == path and q.group(1) == query:
                micros.append(int(m.group(1)))
    return micros


def measure(addr, cookie, path, repeats, warmup):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    client = []
    size = 0
    for i in range(warmup + repeats):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        reply = conn.getresponse()
        body = reply.read()
        elapsed = (time.perf_counter() - started) * 1000
        assert reply.status == 200, (path, reply.status, body[:200])
        if i >= warmup:
            client.append(elapsed)
            size = len(body)
    conn.close()
    return client, size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--work", default="/tmp/salescast-pages-bench")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", default=os.path.join(OUT, "pages.json"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    rossmann = lakes_rossmann()
    lake, registry = os.path.join(args.work, "lake"), os.path.join(args.work, "registry")
    ingest(args.binary, rossmann, lake)
    config = os.path.join(args.work, "quick.toml")
    with open(rossmann.config) as f, open(config, "w") as out:
        out.write(f.read() + "\n" + QUICK + "[serve]\naccess_log = true\nlogins_per_minute = 1000\n")
    for day in ["2015-07-24", "2015-07-31"]:
        run(args.binary, config, lake, registry, "retrain", "--date", day)
        run(args.binary, config, lake, registry, "predict", "--date", day)
    password = "the benchmark's long password"
    add_admin(args.binary, config, lake, registry, password)
    log_path = os.path.join(args.work, "serve.log")
    server = Server(args.binary, config, lake, registry, log_path)
    logins = [login(server.addr, password)[1] for _ in range(20)]
    cookie, _ = login(server.addr, password)
    result = {"machine": machine(), "commit": git_commit(), "repeats": args.repeats, "warmup": args.warmup,
              "ready_seconds": round(server.ready_seconds, 3),
              "login_ms": {"p50": round(percentile(logins, 50), 1), "p95": round(percentile(logins, 95), 1),
                           "max": round(max(logins), 1)},
              "pages": {}}
    for name, path in PAGES:
        client, size = measure(server.addr, cookie, path, args.repeats, args.warmup)
        result["pages"][name] = {"path": path, "bytes": size,
                                 "client_ms": {"p50": round(percentile(client, 50), 2),
                                               "p95": round(percentile(client, 95), 2),
                                               "max": round(max(client), 2)}}
    result["peak_rss_mib"] = server.peak_rss_mib()
    result["exit_on_sigterm"] = server.stop()
    for name, path in PAGES:
        micros = server_micros(log_path, path)[-args.repeats:]
        if len(micros) == args.repeats:
            ms = [m / 1000 for m in micros]
            result["pages"][name]["server_ms"] = {"p50": round(percentile(ms, 50), 2),
                                                  "p95": round(percentile(ms, 95), 2),
                                                  "max": round(max(ms), 2)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
