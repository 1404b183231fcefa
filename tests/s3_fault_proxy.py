"""A fault-injecting HTTP/1.1 reverse proxy for the S3 test server: the S3
fault tests (tests/integration/faults.rs) put it between salescast and moto.
Python standard library only.

For each request it draws, from a seeded hash of (seed, method, object key
and query, how many times that same request was seen before), whether to inject
a fault, and which. A retry of a faulted request is a new draw, so the same
seed gives the same faults for the same sequence of requests whatever the
thread interleaving. Kinds, drawn with equal weight at the configured rate:

  error_500      500 InternalError (an S3 XML error body), not forwarded
  slowdown_503   503 SlowDown, not forwarded
  reset_before   the connection reset (RST) before forwarding
  delay          50-300 ms of delay, then forwarded normally
  reset_after    forwarded (the server did the work), then the connection
                 reset instead of the response
  truncate_after forwarded, then the status and headers with the full
                 Content-Length but only half of the body, and the end of
                 the stream (a response without a body gets reset_after)

--methods limits the faults to some HTTP methods, and --first-only to the
first request of each method and path (its retries pass): the regression
tests use both to lose exactly one response.

Requests for the proxy itself: GET /__proxy/stats returns the counts as JSON
(requests, faults by kind and by method, retries: requests the AWS SDK
marked as attempt 2 or later in its `amz-sdk-request` header, and the
statuses of the forwarded requests' answers). The same JSON is written to
--stats FILE after every request.

By hand (with the S3 test server of scripts/test.sh running on PORT):

    target/test-venv/bin/python tests/s3_fault_proxy.py \\
        --upstream http://127.0.0.1:PORT --rate 0.1 --seed 1 --stats /tmp/faults.json
    # prints "listening on http://127.0.0.1:PROXYPORT"; then point salescast at it:
    salescast --s3-endpoint http://127.0.0.1:PROXYPORT ... retrain --date 2015-07-31
    cat /tmp/faults.json
"""

import argparse
import hashlib
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ["error_500", "slowdown_503", "reset_before", "delay", "reset_after", "truncate_after"]

# Hop-by-hop headers: not forwarded either way.
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class Faults:
    """The fault plan and the counts, shared by the handler threads."""

    def __init__(self, rate, seed, kinds, stats_path, methods=None, first_only=False):
        self.rate = rate
        self.seed = seed
        self.kinds = kinds
        self.methods = methods
        self.first_only = first_only
        self.stats_path = stats_path
        self.lock = threading.Lock()
        self.seen = {}
        self.stats = {
            "rate": rate,
            "seed": seed,
            "requests": 0,
            "forwarded": 0,
            "retries": 0,
            "faults": {kind: 0 for kind in KINDS},
            "faults_total": 0,
            "by_method": {},
            "faults_by_method": {},
            "upstream_status": {},
        }

    def draw(self, method, target, attempt):
        """The fault for this request (None: none), counting it."""
        with self.lock:
            # Path-style: /BUCKET/KEY?QUERY. The bucket is left out of the
            # draw, so a test's fresh buckets get the same faults every run.
            key = f"{method} /{target.lstrip('/').partition('/')[2]}"
            n = self.seen.get(key, 0)
            self.seen[key] = n + 1
            digest = hashlib.sha256(f"{self.seed}|{key}|{n}".encode()).digest()
            u, pick, extra = struct.unpack(">QQQ", digest[:24])
            fault = None
            eligible = (self.methods is None or method in self.methods) and not (self.first_only and n > 0)
            if eligible and u / 2**64 < self.rate and self.kinds:
                fault = self.kinds[pick % len(self.kinds)]
            s = self.stats
            s["requests"] += 1
            s["by_method"][method] = s["by_method"].get(method, 0) + 1
            if attempt > 1:
                s["retries"] += 1
            if fault:
                s["faults"][fault] += 1
                s["faults_total"] += 1
                by_method = s["faults_by_method"].setdefault(method, {})
                by_method[fault] = by_method.get(fault, 0) + 1
            return fault, extra

    def forwarded(self, status):
        with self.lock:
            self.stats["forwarded"] += 1
            statuses = self.stats["upstream_status"]
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    def snapshot(self):
        with self.lock:
            return json.dumps(self.stats, sort_keys=True)

    def save(self):
        if not self.stats_path:
            return
        text = self.snapshot()
        with self.lock:
            tmp = f"{self.stats_path}.{threading.get_ident()}.tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, self.stats_path)


def s3_error(code, message):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>fault-proxy</RequestId></Error>"
    ).encode()


def sdk_attempt(headers):
    """The attempt number the AWS SDK sends in `amz-sdk-request: attempt=N; max=M`."""
    for part in headers.get("amz-sdk-request", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            return int(value)
    return 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Set by main().
    faults = None
    upstream = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def read_body(self):
        """The request body: by Content-Length, or de-chunked (then forwarded with a length)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    # Trailers, up to the empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reset(self):
        """Closes the client connection with a RST (SO_LINGER 0), mid-exchange."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def reply(self, status, headers, body, send_body=True):
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)
        self.wfile.flush()

    def handle_any(self):
        if self.path == "/__proxy/stats":
            body = self.faults.snapshot().encode()
            self.reply(200, [("Content-Type", "application/json")], body)
            return
        body = self.read_body()
        fault, extra = self.faults.draw(self.command, self.path, sdk_attempt(self.headers))
        try:
            self.serve(fault, extra, body)
        finally:
            self.faults.save()

    def serve(self, fault, extra, body):
        if fault == "error_500":
            self.reply(500, [("Content-Type", "application/xml")], s3_error("InternalError", "injected"))
            return
        if fault == "slowdown_503":
            self.reply(503, [("Content-Type", "application/xml")], s3_error("SlowDown", "injected"))
            return
        if fault == "reset_before":
            self.reset()
            return
        if fault == "delay":
            time.sleep(0.05 + (extra % 251) / 1000)
        status, headers, answer = self.forward(body)
        self.faults.forwarded(status)
        no_body = self.command == "HEAD" or status in (204, 304) or not answer
        if fault == "reset_after" or (fault == "truncate_after" and no_body):
            self.reset()
            return
        if fault == "truncate_after":
            self.send_response_only(status)
            for name, value in headers:
                if name.lower() not in HOP:
                    self.send_header(name, value)
            if not any(name.lower() == "content-length" for name, _ in headers):
                self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer[: len(answer) // 2])
            self.wfile.flush()
            # A FIN, not a RST: the half body arrives, then the end of the stream.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)
            return
        if self.command == "HEAD":
            # Keep the server's Content-Length (the object's size), no body.
            self.send_response_only(status)
            for name, value in headers:
                if name.lower() not in HOP:
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
            return
        self.reply(status, headers, answer)

    def forward(self, body):
        """Sends the request upstream on a new connection; the whole response."""
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP and name.lower() != "content-length":
                    conn.putheader(name, value)
            if body or self.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            answer = response.read()
            return response.status, response.getheaders(), answer
        finally:
            conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up (as the SDK does after a fault) is no error.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the S3 server, http://HOST:PORT")
    parser.add_argument("--port", type=int, default=0, help="where to listen on 127.0.0.1 (0: any free port)")
    parser.add_argument("--rate", type=float, default=0.1, help="the share of requests that get a fault")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated fault kinds to draw from")
    parser.add_argument("--stats", help="a JSON file rewritten with the counts after every request")
    parser.add_argument("--methods", help="comma-separated HTTP methods that may get faults (default: all)")
    parser.add_argument(
        "--first-only",
        action="store_true",
        help="fault only the first request of each method and path: its retries pass",
    )
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
    methods = set(args.methods.upper().split(",")) if args.methods else None
    Handler.faults = Faults(args.rate, args.seed, kinds, args.stats, methods, args.first_only)
    Handler.upstream = urllib.parse.urlsplit(args.upstream)
    server = Server(("127.0.0.1", args.port), Handler)
    Handler.faults.save()
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
