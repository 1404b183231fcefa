"""Issue 13's load test: `salescast serve` (release build) on the rossmann
lake under wrk (as a logged-in admin: a session cookie and its CSRF token on
every request), GET /v1/forecasts and POST /v1/forecasts, while the champion
is swapped (rollback to the other version) every SWAP_EVERY seconds; also the
time from start to ready and the server's peak memory (VmHWM).

Prints one JSON document (and writes it to --out); BENCHMARKS.md quotes it.
wrk (Debian's `wrk`) and the server share the machine's cores."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from horizons import git_commit, machine  # noqa: E402
from lakes import OUT, SHARED, ingest  # noqa: E402
from lakes import rossmann as lakes_rossmann  # noqa: E402

LINEAR = '[window]\nhistory_days = 400\n[training]\ncandidates = ["seasonal_naive", "elastic_net"]\n'
QUICK = "[window]\nhistory_days = 400\n[training.gbdt]\nmax_rounds = 150\n"
SERVE = "[serve]\npoll_seconds = {poll}\n"

# A wrk script: requests cycle over the 100 stores; done() prints the
# percentiles (p99.9 included) and the error counts as one JSON line.
LUA = r"""
local stores = {%(stores)s}
local i = 0
local method, body = "%(method)s", %(body)s
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local store = stores[(i %% #stores) + 1]
  if method == "GET" then
    return wrk.format("GET", "/v1/forecasts?Store=" .. store)
  end
  return wrk.format("POST", "/v1/forecasts", nil, string.format(body, store, store))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%.3f, "non_2xx": %%d, "connect_errors": %%d, "read_errors": %%d, ' ..
    '"write_errors": %%d, "timeouts": %%d, "p50_ms": %%.3f, "p99_ms": %%.3f, "p999_ms": %%.3f, "max_ms": %%.3f}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3,
    latency.max / 1e3))
end
"""

POST_BODY = ('\'{"series": [{"Store": "%s"}], "plan": [{"Store": "%s", "Date": "2015-08-04", '
             '"Promo": 1, "Open": 1}]}\'')


def run(binary, config, lake, registry, *args):
    out = subprocess.run([binary, "--config", config, "--lake", lake, "--registry", registry, "--json", *args],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"salescast {' '.join(args)} exited {out.returncode}:\n{out.stderr}")
    return json.loads(out.stdout)


def get(addr, path):
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(addr, name):
    text = get(addr, "/metrics")[1]
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


class Server:
    def __init__(self, binary, config, lake, registry, log):
        self.started = time.monotonic()
        self.log = open(log, "w")
        self.proc = subprocess.Popen([binary, "--config", config, "--lake", lake, "--registry", registry,
                                      "serve", "--listen", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
        self.addr = None
        for line in self.proc.stderr:
            self.log.write(line)
            if "listening on http://" in line:
                self.addr = line.split("listening on http://")[1].strip()
                break
        threading.Thread(target=self._drain, daemon=True).start()
        while get(self.addr, "/readyz")[0] != 200:
            time.sleep(0.02)
        self.ready_seconds = time.monotonic() - self.started

    def _drain(self):
        for line in self.proc.stderr:
            self.log.write(line)

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
        return round(kib / 1024, 1)

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


def swapper(binary, config, lake, registry, versions, every, stop, swaps):
    """Rolls back to whichever of the two versions is not the champion."""
    while not stop.is_set():
        champion = run(binary, config, lake, registry, "models", "list")["champion"]
        target = versions[1] if champion == versions[0] else versions[0]
        run(binary, config, lake, registry, "rollback", "--to", target, "--reason", "load test swap")
        swaps.append(time.monotonic())
        stop.wait(every)


def add_admin(binary, config, lake, registry, password):
    out = subprocess.run([binary, "--config", config, "--lake", lake, "--registry", registry, "users", "add",
                          "bench", "--role", "admin", "--password-stdin"], input=password + "\n",
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"users add exited {out.returncode}:\n{out.stderr}")


def login(addr, password):
    """(cookie header, CSRF token) of a new session."""
    req = urllib.request.Request(f"http://{addr}/login", method="POST",
                                 data=json.dumps({"user": "bench", "password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        cookie = r.headers["Set-Cookie"].split(";")[0]
        return cookie, json.loads(r.read())["csrf_token"]


def wrk(addr, method, seconds, threads, connections, stores, work, session):
    script = os.path.join(work, f"{method.lower()}.lua")
    with open(script, "w") as f:
        f.write(LUA % {"stores": ", ".join(f'"{s}"' for s in stores), "method": method,
                       "body": POST_BODY if method == "POST" else "nil"})
    cookie, csrf = session
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "-H", f"Cookie: {cookie}", "-H", f"X-CSRF-Token: {csrf}",
                          "-s", script, f"http://{addr}"], capture_output=True, text=True, check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["rps"] = round(result["requests"] / result["seconds"], 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--work", default="/tmp/salescast-serve-bench")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--swap-every", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--out", default=os.path.join(OUT, "serve_load.json"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    rossmann = lakes_rossmann()
    lake, registry = os.path.join(args.work, "lake"), os.path.join(args.work, "registry")
    ingest(args.binary, rossmann, lake)
    with open(rossmann.config) as f:
        base = f.read()
    configs = {}
    for name, extra in [("linear", LINEAR), ("quick", QUICK)]:
        configs[name] = os.path.join(args.work, f"{name}.toml")
        with open(configs[name], "w") as f:
            f.write(base + "\n" + extra + SERVE.format(poll=args.poll) + "access_log = true\n")
    v1 = run(args.binary, configs["linear"], lake, registry, "retrain", "--date", "2015-07-01")
    v2 = run(args.binary, configs["quick"], lake, registry, "retrain", "--date", "2015-07-31")
    assert v1["decision"] == v2["decision"] == "promoted", (v1["decision"], v2["decision"])
    versions = [v1["challenger"]["version"], v2["challenger"]["version"]]
    run(args.binary, configs["quick"], lake, registry, "predict", "--date", "2015-07-31")
    stores = sorted({line.split(",")[0] for line in open(os.path.join(SHARED, "rossmann", "train.csv")).read().splitlines()[1:]})

    password = "the benchmark's long password"
    add_admin(args.binary, configs["quick"], lake, registry, password)
    server = Server(args.binary, configs["quick"], lake, registry, os.path.join(args.work, "serve.log"))
    session = login(server.addr, password)
    # Login time: argon2id at OWASP's parameters, plus the audit write (10 logins,
    # under the default 20 per minute and address).
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        login(server.addr, password)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    result = {"machine": machine(), "commit": git_commit(), "wrk": {"threads": args.threads,
              "connections": args.connections, "seconds": args.seconds}, "swap_every_s": args.swap_every,
              "poll_s": args.poll, "ready_seconds": round(server.ready_seconds, 3),
              "login_ms": {"p50": round(timings[len(timings) // 2], 1), "max": round(timings[-1], 1)}, "runs": {}}
    # GET without swaps first (the comparison), then GET and POST with swaps.
    # Many connections show throughput; few show the latency of one request
    # (with 32 connections on a saturated machine most of it is queueing).
    for name, method, swapping, connections in [
            ("get_steady_c32", "GET", False, args.connections), ("get_swapping_c32", "GET", True, args.connections),
            ("get_swapping_c4", "GET", True, 4), ("post_swapping_c4", "POST", True, 4)]:
        reloads = metric(server.addr, "salescast_reloads_total")
        failures = metric(server.addr, "salescast_reload_failures_total")
        stop, swaps = threading.Event(), []
        thread = threading.Thread(target=swapper, daemon=True, args=(args.binary, configs["quick"], lake, registry, versions,
                                                        args.swap_every, stop, swaps))
        if swapping:
            thread.start()
        run_result = wrk(server.addr, method, args.seconds, args.threads, connections, stores, args.work, session)
        run_result["connections"] = connections
        stop.set()
        if swapping:
            thread.join()
        time.sleep(args.poll * 5 + 3)  # the last swap's reload
        run_result["swaps"] = len(swaps)
        run_result["reloads"] = metric(server.addr, "salescast_reloads_total") - reloads
        run_result["reload_failures"] = metric(server.addr, "salescast_reload_failures_total") - failures
        result["runs"][name] = run_result
        print(name, json.dumps(run_result), file=sys.stderr)
    result["peak_rss_mib"] = server.peak_rss_mib()
    result["exit_on_sigterm"] = server.stop()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
