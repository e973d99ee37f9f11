#!/usr/bin/env python3
"""Benchmark harness for the payments Lambda functions (`make bench`, scripts/bench.sh).

Runs each binary (the release builds for `make bench`; the smoke run reuses the debug builds
that `make test` has made) the way Lambda does: as a process talking to a Runtime API
(`bench-runtime-api`, an emulator in tools/bench/runtime-api that this script drives), with
DynamoDB Local behind a counting proxy, and measures against baselines taken in the same run:

* init duration (process start -> first `GET .../invocation/next`) and cold total (process
  start -> first response posted), over repeated cold starts;
* warm latency (event handed out -> response posted), p50/p90/p99 over many invocations;
* DynamoDB calls per request (by `X-Amz-Target`, counted by the proxy) and consumed capacity
  (DynamoDB Local's own ReturnConsumedCapacity=TOTAL answer on replays of the functions'
  captured requests, cross-checked against capacity computed from item sizes);
* peak resident memory (VmHWM) of each function process;
* zipped artifact sizes (`.aws-sam/artifacts/sizes.txt`, else x86_64 zips made here, with
  scripts/zip-bootstrap.py as scripts/package.sh makes the deploy zips).

Functions: create-account and create-payment (the writes), get-payment and list-payments (the
reads: a payment by id, and a default page of 10 of an account that has more).

Baselines: `bench-hello-lambda` (a bare lambda_runtime function: the init floor) and
`bench-raw-dynamodb` (the raw calls each function makes, with the functions' own client
settings, cold on a fresh client and warm: GetItem / PutItem / TransactWriteItems for the
writes, GetItem + GetItem and GetItem + Query on `by_account` for the reads).

Standard library only, except the plot (matplotlib, imported lazily). Every server binds
127.0.0.1; every loop is bounded in count and time; every process started is stopped.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http.client
import importlib.util
import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
MIB = 1024 * 1024

# The targets the results are judged against (see BENCHMARKS.md).
TARGET_COLD_RATIO = 1.5  # cold total <= 1.5 x (hello cold total + raw calls on a fresh client)
TARGET_WARM_RATIO = 1.25  # warm create-payment p50 <= 1.25 x (raw GetItem + PutItem, warm)
TARGET_TAIL_RATIO = 2.0  # p99 <= 2 x p50
TARGET_PAYMENT_CALLS = 2  # DynamoDB round trips per create-payment, no Scan/Query
MB = 1000 * 1000
WRITE_FUNCTIONS = ("create-account", "create-payment")
READ_FUNCTIONS = ("get-payment", "list-payments")
FUNCTIONS = WRITE_FUNCTIONS + READ_FUNCTIONS
# The raw call sequence each function is judged against (bench-raw-dynamodb --sequence).
RAW_SEQUENCE = {"create-account": "transact", "create-payment": "get-put",
                "get-payment": "get-get", "list-payments": "get-query"}
# Which sequence's warm rounds run alternately with each function's warm blocks (the
# default `warm` times GetItem, PutItem and TransactWriteItems in every round).
RAW_WARM_SEQUENCE = {"create-account": "get-put", "create-payment": "get-put",
                     "get-payment": "get-get", "list-payments": "get-query"}
# The targets that also hold for the read functions (see BENCHMARKS.md): only those they
# meet by construction or with a stable margin (calls per request, the arm64 zip, peak RSS);
# their other rows are reported as information.
READ_TARGETS: tuple[str, ...] = ("calls", "zip", "rss")
DEFAULT_PAGE = 10  # GET /payments without `limit`
TARGET_ZIP_BYTES = 3 * MB  # zipped artifact
TARGET_RSS_BYTES = 24 * MB  # peak RSS

MODES = {
    # cold starts per binary; warm invocations per function (each in the timed pass, direct
    # to DynamoDB Local, and again in the counted pass, through the proxy); raw warm rounds
    # per function, run in `blocks` blocks alternating with blocks of that function's timed
    # invocations, so baseline and function see the same conditions; DynamoDB Local (JIT)
    # warm-up rounds; raw rounds through the proxy (proxy self-check and overhead); seconds
    # allowed per warm phase; seconds allowed for the whole run.
    "full": dict(cold=20, warm=2000, raw_warm=2000, blocks=8, ddb_warmup=8000,
                 proxied_raw=500, phase_seconds=300, total_seconds=1500),
    "smoke": dict(cold=2, warm=50, raw_warm=50, blocks=2, ddb_warmup=20, proxied_raw=20,
                  phase_seconds=30, total_seconds=120),
}


class BenchError(Exception):
    """The run is broken (not merely slow): a failed response, a crash, a timeout."""


def now_ns() -> int:
    return time.perf_counter_ns()


def ms(ns: int | float) -> float:
    return ns / 1e6


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Statistics


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": sum(values) / len(values),
    }


# --------------------------------------------------------------------------------------------
# Counting proxy between the functions and DynamoDB Local

class ProxyProtocolError(Exception):
    pass


def read_head(reader) -> bytes | None:
    """Reads an HTTP/1.1 message head (start line and headers, through the blank line);
    None on a clean end of stream before the first byte."""
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            if lines:
                raise ProxyProtocolError("connection closed mid-head")
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)
        if len(lines) > 200:
            raise ProxyProtocolError("too many header lines")


def header_fields(head: bytes) -> dict[str, str]:
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return fields


def read_body(reader, fields: dict[str, str]) -> tuple[bytes, bytes]:
    """The body as sent on the wire, and decoded (they differ only when chunked)."""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        raw, decoded = [], []
        while True:
            size_line = reader.readline(1024)
            if not size_line:
                raise ProxyProtocolError("connection closed mid-body")
            raw.append(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = reader.readline(65537)
                    raw.append(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(raw), b"".join(decoded)
            chunk = reader.read(size + 2)
            raw.append(chunk)
            decoded.append(chunk[:size])
    length = int(fields.get("content-length") or 0)
    body = reader.read(length) if length else b""
    if len(body) != length:
        raise ProxyProtocolError("connection closed mid-body")
    return body, body


class CountingProxy:
    """A minimal HTTP/1.1 keep-alive proxy to DynamoDB Local (raw sockets, one thread per
    client connection, bytes forwarded unchanged) that records every call: operation (from
    `X-Amz-Target`), timestamps, status and, while `capture` is set, request and response
    bodies. Each client connection gets its own upstream connection, so a client's fresh
    connection is a fresh connection upstream too. A call is recorded before its response
    is forwarded, so it is on record by the time the caller can act on it."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.calls: list[dict] = []
        self.connections = 0
        self.capture = False
        self.closed = threading.Event()
        self.sockets: set[socket.socket] = set()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.accept_loop, name="dynamodb-proxy",
                                       daemon=True)
        self.thread.start()

    def accept_loop(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self.lock:
                self.connections += 1
                number = self.connections
                self.sockets.add(client)
            threading.Thread(target=self.serve, args=(client, number), daemon=True,
                             name=f"dynamodb-proxy-{number}").start()

    def connect_upstream(self):
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            self.sockets.add(upstream)
        return upstream, upstream.makefile("rb")

    def serve(self, client: socket.socket, number: int) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = client.makefile("rb")
        upstream = upstream_reader = None
        try:
            while not self.closed.is_set():
                head = read_head(reader)
                if head is None:
                    return
                t_in = now_ns()
                fields = header_fields(head)
                body, request_body = read_body(reader, fields)
                target = fields.get("x-amz-target", "")
                op = target[len(DYNAMODB_TARGET_PREFIX):] if target.startswith(
                    DYNAMODB_TARGET_PREFIX) else (target or "(no X-Amz-Target)")
                for attempt in range(2):  # one reconnect if DynamoDB Local dropped an idle conn
                    try:
                        if upstream is None:
                            upstream, upstream_reader = self.connect_upstream()
                        upstream.sendall(head + body)
                        response_head = read_head(upstream_reader)
                        if response_head is None:
                            raise ProxyProtocolError("upstream closed the connection")
                        break
                    except (OSError, ProxyProtocolError):
                        if upstream is not None:
                            upstream.close()
                        upstream = upstream_reader = None
                        if attempt == 1:
                            raise
                response_fields = header_fields(response_head)
                response_raw, response_body = read_body(upstream_reader, response_fields)
                status_line = response_head.split(b"\r\n", 1)[0].split()
                record = {
                    "op": op,
                    "t_in": t_in,
                    "t_out": now_ns(),
                    "status": int(status_line[1]) if len(status_line) > 1 else 0,
                    "connection": number,
                    "request_bytes": len(request_body),
                    "response_bytes": len(response_body),
                }
                if self.capture:
                    record["request"] = request_body
                    record["response"] = response_body
                with self.lock:
                    self.calls.append(record)
                client.sendall(response_head + response_raw)
                if "close" in fields.get("connection", "").lower() or \
                        "close" in response_fields.get("connection", "").lower():
                    return
        except (OSError, ProxyProtocolError, ValueError):
            return  # the client went away (e.g. a killed function), or junk: drop the conn
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self.lock:
                        self.sockets.discard(sock)
                    try:
                        sock.close()
                    except OSError:
                        pass

    def between(self, start_ns: int, end_ns: int) -> list[dict]:
        with self.lock:
            return [c for c in self.calls if start_ns <= c["t_in"] <= end_ns]

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        with self.lock:
            sockets = list(self.sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=2)


# --------------------------------------------------------------------------------------------
# Lambda Runtime API emulator


class Invocation:
    def __init__(self, event: dict):
        self.id = str(uuid.uuid4())
        self.event = json.dumps(event)
        self.t_handed: int | None = None
        self.t_done: int | None = None
        self.kind: str | None = None  # "response" or "error"
        self.body: bytes = b""
        self.done = threading.Event()


class RuntimeApi:
    """One Runtime API endpoint per function process (like one execution environment),
    served by `bench-runtime-api` (tools/bench/runtime-api), which this object drives over
    its stdin and stdout. The emulator stamps each event just before handing it out and each
    response as its first bytes arrive, on the clock `now_ns` reads, so this process's own
    work (Python, its lock, its scheduling) stays outside every timed window."""

    def __init__(self, function_name: str, binary: Path):
        self.function_name = function_name
        self.invocations: dict[str, Invocation] = {}
        self.first_next_ns: int | None = None
        self.init_error: bytes | None = None
        self.proc = subprocess.Popen([str(binary), "--function-name", function_name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        LIVE_PROCESSES.add(self.proc)
        ready = self.proc.stdout.readline()
        try:
            self.port = int(json.loads(ready)["port"])
        except (ValueError, KeyError, TypeError) as err:
            stop_process(self.proc)
            raise BenchError(f"bench-runtime-api did not start: {ready[:200]!r}") from err
        self.thread = threading.Thread(target=self.read_reports,
                                       name=f"runtime-api-{function_name}", daemon=True)
        self.thread.start()

    def read_reports(self) -> None:
        for line in self.proc.stdout:
            report = json.loads(line)
            if "first_next_ns" in report:
                self.first_next_ns = report["first_next_ns"]
            elif "init_error" in report:
                self.init_error = report["init_error"].encode()
            else:
                invocation = self.invocations[report["id"]]
                invocation.t_handed = report["handed_ns"]
                invocation.t_done = report["done_ns"]
                invocation.kind = report["kind"]
                invocation.body = report["body"].encode()
                invocation.done.set()

    def submit(self, event: dict) -> Invocation:
        return self.submit_all([event])[0]

    def submit_all(self, events: list[dict]) -> list[Invocation]:
        """Queues the events in order, in one write."""
        invocations = [Invocation(event) for event in events]
        lines = []
        for invocation in invocations:
            self.invocations[invocation.id] = invocation
            lines.append(json.dumps({"id": invocation.id, "event": invocation.event}) + "\n")
        self.proc.stdin.write("".join(lines).encode())
        self.proc.stdin.flush()
        return invocations

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # end of commands: the emulator exits
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop_process(self.proc)
        self.thread.join(timeout=2)


# --------------------------------------------------------------------------------------------
# Processes

LIVE_PROCESSES: set[subprocess.Popen] = set()


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    LIVE_PROCESSES.discard(proc)


def stop_all_processes() -> None:
    for proc in list(LIVE_PROCESSES):
        stop_process(proc)


def memory_kib(pid: int) -> dict:
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmHWM", "VmRSS"):
                    values[name] = int(rest.split()[0])
    except OSError:
        pass
    return values


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.mode = MODES[args.mode]
        self.out = Path(args.out)
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home = self.out / "home"  # an empty HOME: no ~/.aws files, as in Lambda
        self.home.mkdir(parents=True, exist_ok=True)
        self.bin = Path(args.bin_dir)
        self.runtime_api = self.bin / "bench-runtime-api"
        self.started = time.monotonic()
        self.deadline = self.started + self.mode["total_seconds"]
        self.proxy = CountingProxy(args.dynamodb_port)
        self.proxied_endpoint = f"http://127.0.0.1:{self.proxy.port}"
        self.direct_endpoint = f"http://127.0.0.1:{args.dynamodb_port}"
        self.api_key: str | None = None
        self.read_payment_id: str | None = None  # a payment of api_key's account
        self.process_count = 0
        self.results: dict = {}

    # -- environment ------------------------------------------------------------------------

    def base_env(self) -> dict:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "AWS_REGION": "us-east-1",
            "RUST_LOG": "warn",
        }
        return env

    def function_env(self, name: str, runtime_port: int, endpoint: str) -> dict:
        env = self.base_env()
        env.update({
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "CLIENTS_TABLE": self.args.clients_table,
            "PAYMENTS_TABLE": self.args.payments_table,
            "AUDIT_TABLE": self.args.audit_table,
            "API_KEY_ENVIRONMENT": "test",
            "DYNAMODB_ENDPOINT": endpoint,
            # The template's default level: every payment writes its info line, as deployed.
            "RUST_LOG": "info",
        })
        return env

    def check_time(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise BenchError(f"run exceeded {self.mode['total_seconds']} s (at {what})")

    # -- events ------------------------------------------------------------------------------

    @staticmethod
    def api_event(route: str, body: dict | None, headers: dict, path: str | None = None,
                  path_parameters: dict | None = None, query: dict | None = None) -> dict:
        """An API Gateway HTTP API (payload 2.0) event for `route`; `path` is the request's
        own path where the route has parameters. As API Gateway does, a GET has no body and
        no content type, and `pathParameters` / `queryStringParameters` are present only
        when there are some."""
        method, route_path = route.split(" ", 1)
        path = path or route_path
        now = datetime.datetime.now(datetime.timezone.utc)
        event = {
            "version": "2.0",
            "routeKey": route,
            "rawPath": path,
            "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
            "headers": {
                **({"content-type": "application/json"} if body is not None else {}),
                "host": "bench.execute-api.us-east-1.amazonaws.com",
                "user-agent": "payments-bench",
                **headers,
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "bench",
                "domainName": "bench.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "bench",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "payments-bench",
                },
                "requestId": secrets.token_hex(8),
                "routeKey": route,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": False,
        }
        if body is not None:
            event["body"] = json.dumps(body)
        if path_parameters:
            event["pathParameters"] = path_parameters
        if query:
            event["queryStringParameters"] = query
        return event

    def account_event(self) -> dict:
        n = secrets.token_hex(4)
        return self.api_event("POST /accounts",
                              {"name": f"Bench Account {n}", "email": f"bench-{n}@example.com"},
                              {})

    def payment_event(self) -> dict:
        if self.api_key is None:
            raise BenchError("no API key yet: create-account must run first")
        return self.api_event(
            "POST /payments",
            {"amount": 1250, "currency": "USD", "description": "benchmark payment"},
            {"x-api-key": self.api_key, "idempotency-key": f"bench-{uuid.uuid4()}"},
        )

    def get_payment_event(self) -> dict:
        if self.api_key is None or self.read_payment_id is None:
            raise BenchError("no payment to read yet: create-payment must run first")
        return self.api_event("GET /payments/{id}", None, {"x-api-key": self.api_key},
                              path=f"/payments/{self.read_payment_id}",
                              path_parameters={"id": self.read_payment_id})

    def list_payments_event(self) -> dict:
        if self.api_key is None:
            raise BenchError("no API key yet: create-account must run first")
        # The default page, named explicitly (as many clients do): the Query's Limit is 11.
        return self.api_event("GET /payments", None, {"x-api-key": self.api_key},
                              query={"limit": str(DEFAULT_PAGE)})

    # -- invoking ----------------------------------------------------------------------------

    def start_function(self, name: str, binary: Path, api: RuntimeApi, endpoint: str):
        self.process_count += 1
        log_path = self.logs / f"{name}-{self.process_count}.log"
        log_file = open(log_path, "wb")
        env = self.function_env(name, api.port, endpoint)
        t_start = now_ns()
        proc = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT, cwd=self.home)
        LIVE_PROCESSES.add(proc)
        log_file.close()
        return proc, t_start, log_path

    def wait_for(self, invocation: Invocation, proc: subprocess.Popen, api: RuntimeApi,
                 log_path: Path, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while not invocation.done.wait(0.02):
            if api.init_error is not None:
                raise BenchError(f"{api.function_name}: init error {api.init_error[:500]!r} "
                                 f"(log {log_path})")
            if proc.poll() is not None:
                raise BenchError(f"{api.function_name}: process exited with {proc.returncode} "
                                 f"(log {log_path})")
            if time.monotonic() > deadline:
                raise BenchError(f"{api.function_name}: no response within {timeout} s "
                                 f"(log {log_path})")
        if invocation.kind != "response":
            raise BenchError(f"{api.function_name}: invocation error {invocation.body[:500]!r}")
        try:
            response = json.loads(invocation.body)
        except ValueError as err:
            raise BenchError(f"{api.function_name}: response is not JSON: {err}") from err
        status = response.get("statusCode")
        body_text = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body_text = base64.b64decode(body_text).decode("utf-8", "replace")
        expected = 200 if api.function_name in READ_FUNCTIONS else 201
        if status != expected:
            raise BenchError(f"{api.function_name}: statusCode {status} (expected {expected}), "
                             f"body {body_text[:500]}")
        try:
            return json.loads(body_text) if body_text else {}
        except ValueError:
            return {"raw": body_text}

    def dynamodb_calls(self, start_ns: int, end_ns: int) -> list[dict]:
        return self.proxy.between(start_ns, end_ns)

    def cold_start(self, name: str, binary: Path, make_event, endpoint: str):
        self.check_time(f"{name} cold start")
        api = RuntimeApi(name, self.runtime_api)
        invocation = api.submit(make_event())  # already waiting, as on a cold start
        proc = None
        try:
            proc, t_start, log_path = self.start_function(name, binary, api, endpoint)
            body = self.wait_for(invocation, proc, api, log_path)
            memory = memory_kib(proc.pid)
            calls = self.dynamodb_calls(t_start, invocation.t_done)
            init_calls = [c for c in calls if c["t_in"] < api.first_next_ns]
            request_calls = [c for c in calls if c["t_in"] >= invocation.t_handed]
            sample = {
                "init_ms": ms(api.first_next_ns - t_start),
                "cold_total_ms": ms(invocation.t_done - t_start),
                "first_invoke_ms": ms(invocation.t_done - invocation.t_handed),
                "vm_hwm_kib": memory.get("VmHWM"),
                "init_dynamodb_calls": dict(Counter(c["op"] for c in init_calls)),
                "init_dynamodb_ms": sum(ms(c["t_out"] - c["t_in"]) for c in init_calls),
                "request_dynamodb_calls": dict(Counter(c["op"] for c in request_calls)),
            }
            return sample, body, init_calls, request_calls
        finally:
            if proc is not None:
                stop_process(proc)
            api.close()

    def cold_series(self, name: str, binary: Path, make_event, count: int,
                    counted: bool = False) -> dict:
        endpoint = self.proxied_endpoint if counted else self.direct_endpoint
        log(f"{name}: {count} cold starts ({'through the counting proxy' if counted else 'timed'})")
        samples = []
        init_captures: list[dict] = []
        for i in range(count):
            self.proxy.capture = i == 0
            sample, _, init_calls, _ = self.cold_start(name, binary, make_event, endpoint)
            self.proxy.capture = False
            if i == 0:
                init_captures = init_calls
            samples.append(sample)
        return self.cold_summary(samples, init_captures)

    def cold_rounds(self, count: int, functions: dict, raw_sequences: list[str]) -> dict:
        """`count` rounds of one cold start of every function in `functions` (name -> binary,
        event maker) and one cold sample of every raw sequence, in an order that rotates from
        round to round, so drift over the run hits functions and baselines alike."""
        log(f"{count} rounds of interleaved cold starts: {', '.join(functions)}, "
            f"raw DynamoDB {', '.join(raw_sequences)}")
        jobs = [("function", name) for name in functions] + [("raw", s) for s in raw_sequences]
        samples: dict[tuple[str, str], list[dict]] = {job: [] for job in jobs}
        for i in range(count):
            for kind, name in jobs[i % len(jobs):] + jobs[:i % len(jobs)]:
                if kind == "raw":
                    sample = self.raw("cold", "--sequence", name, timeout=60)
                else:
                    binary, make_event = functions[name]
                    sample = self.cold_start(name, binary, make_event, self.direct_endpoint)[0]
                samples[(kind, name)].append(sample)
        result = {name: self.cold_summary(samples[("function", name)], [])
                  for name in functions}
        result.update({f"raw {s}": self.raw_cold_summary(samples[("raw", s)])
                       for s in raw_sequences})
        return result

    @staticmethod
    def cold_summary(samples: list[dict], init_captures: list[dict]) -> dict:
        return {
            "samples": samples,
            "init_ms": summary([s["init_ms"] for s in samples]),
            "cold_total_ms": summary([s["cold_total_ms"] for s in samples]),
            "first_invoke_ms": summary([s["first_invoke_ms"] for s in samples]),
            "vm_hwm_kib_max": max((s["vm_hwm_kib"] or 0) for s in samples),
            "init_dynamodb_calls": samples[0]["init_dynamodb_calls"],
            "_init_captures": init_captures,
        }

    def warm_series(self, name: str, binary: Path, make_event, count: int,
                    counted: bool = False, interleave=None) -> dict:
        """One process, one cold invocation, then `count` warm ones. With `interleave`, the
        invocations run in `blocks` blocks and `interleave()` runs after each block (while
        the function waits on /next, as between invocations in Lambda)."""
        endpoint = self.proxied_endpoint if counted else self.direct_endpoint
        log(f"{name}: 1 + {count} invocations in one process "
            f"({'through the counting proxy' if counted else 'timed'})")
        self.check_time(f"{name} warm")
        api = RuntimeApi(name, self.runtime_api)
        proc = None
        phase_deadline = time.monotonic() + self.mode["phase_seconds"]
        try:
            first = api.submit(make_event())
            proc, t_start, log_path = self.start_function(name, binary, api, endpoint)
            first_body = self.wait_for(first, proc, api, log_path)
            memory_after_first = memory_kib(proc.pid)
            connections_before = self.proxy.connections
            latencies, dynamodb_ms, overhead_ms, per_request_ops = [], [], [], []
            captures: list[dict] = []
            resumed_ms: list[float] = []
            connections_seen: set[int] = set()
            new_connection_invocations = []
            truncated = False
            block = math.ceil(count / self.mode["blocks"]) if interleave else count
            # Timed pass: a whole block of events is queued before the first is handed out,
            # so the function finds the next one waiting whenever it asks, as a busy function
            # does. Invocations run back to back, like the raw baseline's rounds, and this
            # process sleeps through the block instead of competing for the 2 cores. The
            # counted pass goes one event at a time: its proxy runs in this process, and it
            # keeps the bodies of the first three invocations' calls for the capacity replays.
            chunk = 1 if counted else block
            i = 0
            while i < count:
                if time.monotonic() > phase_deadline:
                    truncated = True
                    break
                if interleave and i > 0 and i % block == 0:
                    interleave()
                    # One untimed invocation after the pause, as each raw block starts with
                    # untimed calls on its new connection: both sides resume warm.
                    resumed = api.submit(make_event())
                    self.wait_for(resumed, proc, api, log_path)
                    resumed_ms.append(ms(resumed.t_done - resumed.t_handed))
                size = min(chunk, count - i, block - i % block)
                self.proxy.capture = counted and i < 3
                invocations = api.submit_all([make_event() for _ in range(size)])
                self.wait_for(invocations[-1], proc, api, log_path, timeout=15.0 + 0.05 * size)
                self.proxy.capture = False
                for invocation in invocations:
                    self.wait_for(invocation, proc, api, log_path)  # checks each response
                    latency = invocation.t_done - invocation.t_handed
                    calls = self.dynamodb_calls(invocation.t_handed, invocation.t_done)
                    if counted and i < 3:
                        captures.extend(calls)
                    in_dynamodb = sum(c["t_out"] - c["t_in"] for c in calls)
                    latencies.append(ms(latency))
                    dynamodb_ms.append(ms(in_dynamodb))
                    overhead_ms.append(ms(latency - in_dynamodb))
                    per_request_ops.append(Counter(c["op"] for c in calls))
                    used = {c["connection"] for c in calls}
                    if i > 0 and used - connections_seen:
                        new_connection_invocations.append({"invocation": i,
                                                           "latency_ms": ms(latency),
                                                           "ops": [c["op"] for c in calls]})
                    connections_seen |= used
                    i += 1
            self.proxy.capture = False
            if interleave and not truncated:
                interleave()
            memory = memory_kib(proc.pid)
            new_connections = self.proxy.connections - connections_before
            self.check_time(f"{name} warm")
        finally:
            if proc is not None:
                stop_process(proc)
            api.close()
        ops = Counter()
        for c in per_request_ops:
            ops.update(c)
        calls_per_request = [sum(c.values()) for c in per_request_ops]
        n = len(per_request_ops)
        return {
            "invocations": n,
            "truncated": truncated,
            "first_invocation": {
                "init_ms": ms(api.first_next_ns - t_start),
                "cold_total_ms": ms(first.t_done - t_start),
            },
            "latency_ms": summary(latencies),
            "untimed_after_each_pause_ms": resumed_ms,
            **({
                "dynamodb_time_ms": summary(dynamodb_ms),
                "own_time_ms": summary(overhead_ms),
                "dynamodb_calls_per_request": {
                    "mean": sum(calls_per_request) / n if n else None,
                    "max": max(calls_per_request) if n else None,
                    "min": min(calls_per_request) if n else None,
                    "by_operation_mean": {op: v / n for op, v in sorted(ops.items())},
                },
                "new_dynamodb_connections_while_warm": new_connections,
                "invocations_on_a_new_connection": new_connection_invocations,
            } if counted else {}),
            "vm_hwm_kib": memory.get("VmHWM"),
            "vm_rss_kib": memory.get("VmRSS"),
            "vm_hwm_kib_after_first": memory_after_first.get("VmHWM"),
            "samples_ms": latencies,
            "_first_body": first_body,
            "_captures": captures,
        }

    # -- raw DynamoDB baseline ---------------------------------------------------------------

    def raw(self, *extra: str, endpoint: str | None = None, timeout: float = 600) -> dict:
        self.check_time("raw DynamoDB baseline")
        command = [str(self.bin / "bench-raw-dynamodb"), *extra,
                   "--endpoint", endpoint or self.direct_endpoint,
                   "--clients-table", self.args.clients_table,
                   "--payments-table", self.args.payments_table]
        t_start = now_ns()
        proc = subprocess.Popen(command, env=self.base_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.home)
        LIVE_PROCESSES.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise BenchError(f"bench-raw-dynamodb {' '.join(extra)} timed out") from err
        finally:
            stop_process(proc)
        t_end = now_ns()
        if proc.returncode != 0:
            raise BenchError(f"bench-raw-dynamodb {' '.join(extra)} failed "
                             f"({proc.returncode}): {stderr.decode(errors='replace')[:1000]}")
        report = json.loads(stdout)
        report["_calls"] = dict(Counter(c["op"] for c in self.dynamodb_calls(t_start, t_end)))
        return report

    def raw_warm(self, iterations: int, endpoint: str | None = None,
                 sequence: str = "get-put") -> dict:
        return self.raw("warm", "--sequence", sequence, "--iterations", str(iterations),
                        "--max-seconds", str(self.mode["phase_seconds"]), endpoint=endpoint)

    @staticmethod
    def raw_cold_summary(samples: list[dict]) -> dict:
        return {
            "samples": samples,
            "total_ms": summary([s["total_ms"] for s in samples]),
            "client_build_ms": summary([s["client_build_ms"] for s in samples]),
            "calls_ms": {name: summary([s["calls"][name] for s in samples])
                         for name in samples[0]["calls"]},
        }

    # -- capacity ----------------------------------------------------------------------------

    def ddb_direct(self, op: str, payload: dict) -> tuple[int, dict]:
        """A raw call straight to DynamoDB Local (not via the proxy). DynamoDB Local checks
        that a credential is present, not the signature."""
        conn = http.client.HTTPConnection("127.0.0.1", self.args.dynamodb_port, timeout=10)
        try:
            conn.request("POST", "/", body=json.dumps(payload), headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": DYNAMODB_TARGET_PREFIX + op,
                "X-Amz-Date": "20260101T000000Z",
                "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/dynamodb/"
                                 "aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            })
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def replay_capacity(self, call: dict) -> dict:
        """Replays a captured call with ReturnConsumedCapacity=TOTAL (writes get fresh
        partition keys of the same length, so they succeed and the size is unchanged)."""
        payload = json.loads(call["request"])
        op = call["op"]
        payload["ReturnConsumedCapacity"] = "TOTAL"

        def fresh(item):
            pk = item["pk"]["S"]
            item["pk"]["S"] = pk[:-10] + secrets.token_hex(5) if len(pk) > 10 else pk + "-r"

        if op == "PutItem":
            fresh(payload["Item"])
        elif op == "TransactWriteItems":
            # The SDK fills ClientRequestToken; replayed with other keys it would be refused
            # as an idempotent-parameter mismatch.
            payload.pop("ClientRequestToken", None)
            for entry in payload["TransactItems"]:
                if "Put" in entry:
                    fresh(entry["Put"]["Item"])
        status, answer = self.ddb_direct(op, payload)
        consumed = answer.get("ConsumedCapacity")
        if isinstance(consumed, list):
            units = sum(c.get("CapacityUnits", 0) for c in consumed)
        elif isinstance(consumed, dict):
            units = consumed.get("CapacityUnits")
        else:
            units = None
        return {"status": status, "capacity_units": units,
                "error": answer.get("__type") if status != 200 else None}

    def computed_capacity(self, call: dict) -> dict:
        """Capacity from item sizes, by DynamoDB's published rules."""
        request = json.loads(call["request"])
        response = json.loads(call["response"] or b"{}")
        op = call["op"]
        if op == "GetItem":
            item = response.get("Item")
            size = item_size(item) if item else 0
            units = max(1, math.ceil(size / 4096)) * (1.0 if request.get("ConsistentRead") else 0.5)
            kind = "strongly consistent read" if request.get("ConsistentRead") else \
                "eventually consistent read"
            return {"item_bytes": size, "capacity_units": units, "kind": kind}
        if op == "Query":
            # A Query is charged by the summed size of the items it returns, rounded up to
            # 4 KB once; an index is read eventually consistently.
            sizes = [item_size(item) for item in response.get("Items", [])]
            consistent = bool(request.get("ConsistentRead"))
            units = max(1, math.ceil(sum(sizes) / 4096)) * (1.0 if consistent else 0.5)
            return {"item_bytes": sum(sizes), "capacity_units": units,
                    "kind": f"{'strongly' if consistent else 'eventually'} consistent query "
                            f"of {len(sizes)} items"}
        if op == "PutItem":
            size = item_size(request["Item"])
            return {"item_bytes": size, "capacity_units": float(max(1, math.ceil(size / 1024))),
                    "kind": "write" + (" (condition fails: still charged)"
                                       if "attribute_exists" in request.get(
                                           "ConditionExpression", "") else "")}
        if op == "TransactWriteItems":
            sizes = [item_size(e["Put"]["Item"]) for e in request["TransactItems"] if "Put" in e]
            return {"item_bytes": sizes,
                    "capacity_units": float(2 * sum(max(1, math.ceil(s / 1024)) for s in sizes)),
                    "kind": "transactional write (2x)"}
        return {"capacity_units": None, "kind": f"not computed for {op}"}

    def capacity(self, label: str, calls: list[dict], replay: bool) -> list[dict]:
        """Per captured call: DynamoDB Local's answer and the computed figure, and which one
        is used. DynamoDB Local's is used where it answers, except for transactions: it
        charges a transaction by its total size, not 2 units per KB per item as DynamoDB's
        pricing documents, so the computed figure is used there."""
        out = []
        for call in calls:
            if "request" not in call:
                continue
            entry = {"phase": label, "op": call["op"], "computed": self.computed_capacity(call)}
            local_units = None
            if replay:
                entry["dynamodb_local"] = self.replay_capacity(call)
                local_units = entry["dynamodb_local"].get("capacity_units")
            if local_units is not None and call["op"] != "TransactWriteItems":
                entry["used"] = {"units": local_units, "source": "DynamoDB Local"}
            else:
                entry["used"] = {"units": entry["computed"]["capacity_units"],
                                 "source": "computed"}
            entry["unit"] = "RCU" if call["op"] in ("GetItem", "Query", "Scan",
                                                    "BatchGetItem", "TransactGetItems") else "WCU"
            out.append(entry)
        return out

    # -- artifacts ---------------------------------------------------------------------------

    def artifact_sizes(self) -> dict:
        repo = Path(self.args.repo)
        sizes_txt = repo / ".aws-sam" / "artifacts" / "sizes.txt"
        zip_bootstrap = load_zip_bootstrap(repo)
        result: dict = {"x86_64_zipped_here": {}, "x86_64_profile": self.args.profile}
        zips = self.out / "zips"
        zips.mkdir(exist_ok=True)
        names = FUNCTIONS + ("bench-hello-lambda",)
        # One thread per binary: zlib lets go of the GIL while it compresses, and the debug
        # binaries of a smoke run (some 180 MB each) take tens of seconds at level 9.
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            # The smoke run's sizes are never judged: a fast level keeps its debug zips cheap.
            level = 1 if self.args.mode == "smoke" else 9
            zipped = pool.map(lambda n: zip_bootstrap(self.bin / n, zips / f"{n}.zip", level), names)
            for name, zipped_bytes in zip(names, zipped):
                result["x86_64_zipped_here"][name] = {
                    "binary_bytes": (self.bin / name).stat().st_size,
                    "zipped_bytes": zipped_bytes}
        if sizes_txt.exists():
            parsed = {}
            pattern = re.compile(r"^(\S+)\s+bootstrap\s+(\d+)\s+bytes\s+zipped\s+(\d+)\s+bytes")
            for line in sizes_txt.read_text().splitlines():
                match = pattern.match(line.strip())
                if match:
                    parsed[match.group(1)] = {"binary_bytes": int(match.group(2)),
                                              "zipped_bytes": int(match.group(3))}
            names = {"create-account": "CreateAccountFunction",
                     "create-payment": "CreatePaymentFunction",
                     "get-payment": "GetPaymentFunction",
                     "list-payments": "ListPaymentsFunction"}
            if all(n in parsed for n in names.values()):
                sizes_mtime = sizes_txt.stat().st_mtime
                newest_source = newest_mtime(Path(self.args.repo), ["shared", "functions"])
                result.update({
                    "source": ".aws-sam/artifacts/sizes.txt (scripts/package.sh, arm64)",
                    "sizes_txt_written": datetime.datetime.fromtimestamp(
                        sizes_mtime).isoformat(timespec="seconds"),
                    "sizes_txt_older_than_sources": sizes_mtime < newest_source,
                    **{n: parsed[names[n]] for n in FUNCTIONS},
                })
                return result
        result.update({
            "source": f"x86_64 {self.args.profile} binaries zipped here "
                      "(no .aws-sam/artifacts/sizes.txt with all four functions)",
            **{n: result["x86_64_zipped_here"][n] for n in FUNCTIONS},
        })
        return result

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        m = self.mode
        hello = self.bin / "bench-hello-lambda"
        account = self.bin / "create-account"
        payment = self.bin / "create-payment"
        get = self.bin / "get-payment"
        listing = self.bin / "list-payments"
        for binary in (hello, account, payment, get, listing, self.bin / "bench-raw-dynamodb",
                       self.runtime_api):
            if not binary.exists():
                raise BenchError(f"{binary} is missing (build first)")
        load_before = os.getloadavg()

        # Timed pass: functions and raw baseline talk to DynamoDB Local directly, so the
        # headline numbers carry no proxy overhead. Raw warm blocks alternate with each
        # function's warm blocks.
        log(f"DynamoDB Local (JIT) warm-up: {m['ddb_warmup']} raw rounds, discarded")
        self.raw_warm(m["ddb_warmup"])
        # The items the raw read sequences read, written once before anything is timed.
        self.raw("seed", timeout=60)
        raw_blocks: dict[str, list[dict]] = {name: [] for name in FUNCTIONS}
        per_block = max(1, math.ceil(m["raw_warm"] / m["blocks"]))

        def interleave_for(name):
            def run_block():
                raw_blocks[name].append(self.raw_warm(per_block,
                                                      sequence=RAW_WARM_SEQUENCE[name]))
            return run_block

        hello_warm = self.warm_series("bench-hello-lambda", hello, self.payment_like_event,
                                      m["warm"])
        log(f"warm runs alternate {m['blocks']} blocks of invocations with {m['blocks']} blocks "
            f"of {per_block} raw DynamoDB rounds")
        account_warm = self.warm_series("create-account", account, self.account_event, m["warm"],
                                        interleave=interleave_for("create-account"))
        self.api_key = account_warm["_first_body"].get("api_key")
        if not self.api_key:
            raise BenchError("create-account's 201 body had no api_key")
        # Untimed: the account's first payments, so that the read functions' cold starts
        # find a payment to read and a full default page (10, and one more) to list.
        log(f"create-payment: {DEFAULT_PAGE + 1} untimed payments for the read functions")
        seeded = self.warm_series("create-payment", payment, self.payment_event, DEFAULT_PAGE)
        self.read_payment_id = seeded["_first_body"].get("id")
        if not self.read_payment_id:
            raise BenchError("create-payment's 201 body had no id")
        cold = self.cold_rounds(m["cold"], {
            "bench-hello-lambda": (hello, self.payment_like_event),
            "create-account": (account, self.account_event),
            "create-payment": (payment, self.payment_event),
            "get-payment": (get, self.get_payment_event),
            "list-payments": (listing, self.list_payments_event),
        }, ["get-put", "transact", "get-get", "get-query"])
        hello_cold = cold["bench-hello-lambda"]
        payment_warm = self.warm_series("create-payment", payment, self.payment_event, m["warm"],
                                        interleave=interleave_for("create-payment"))
        get_warm = self.warm_series("get-payment", get, self.get_payment_event, m["warm"],
                                    interleave=interleave_for("get-payment"))
        list_warm = self.warm_series("list-payments", listing, self.list_payments_event,
                                     m["warm"], interleave=interleave_for("list-payments"))
        page = list_warm["_first_body"].get("data")
        if not isinstance(page, list) or len(page) != DEFAULT_PAGE or \
                list_warm["_first_body"].get("has_more") is not True:
            raise BenchError(f"list-payments' first page was not {DEFAULT_PAGE} payments with "
                             f"has_more: {str(list_warm['_first_body'])[:300]}")
        if get_warm["_first_body"].get("id") != self.read_payment_id:
            raise BenchError("get-payment did not answer with the payment asked for")

        # Counted pass: the same runs through the counting proxy. First the proxy checks
        # itself against the raw baseline, whose calls are known exactly.
        n = m["proxied_raw"]
        log(f"counting proxy self-check: raw DynamoDB warm through the proxy, {n} rounds")
        raw_proxied = self.raw_warm(n, endpoint=self.proxied_endpoint)
        done = raw_proxied["iterations"]
        expected = {"GetItem": done + 3, "PutItem": done + 1, "TransactWriteItems": done}
        if raw_proxied["_calls"] != expected:
            raise BenchError(f"counting proxy saw {raw_proxied['_calls']}, the raw baseline "
                             f"made {expected}")
        timed = {
            "create-account": (account, self.account_event, account_warm),
            "create-payment": (payment, self.payment_event, payment_warm),
            "get-payment": (get, self.get_payment_event, get_warm),
            "list-payments": (listing, self.list_payments_event, list_warm),
        }
        counted: dict[str, dict] = {name: {} for name in FUNCTIONS}
        # In the order of the runs before the read functions were added: account warm then
        # cold, payment cold then warm; the read functions the same way as payment.
        for name, order in (("create-account", ("warm", "cold")),
                            ("create-payment", ("cold", "warm")),
                            ("get-payment", ("cold", "warm")),
                            ("list-payments", ("cold", "warm"))):
            binary, make_event, _ = timed[name]
            for phase in order:
                if phase == "warm":
                    counted[name]["warm"] = self.warm_series(name, binary, make_event, m["warm"],
                                                             counted=True)
                else:
                    counted[name]["cold"] = self.cold_series(name, binary, make_event, m["cold"],
                                                             counted=True)
        load_after = os.getloadavg()

        log("consumed capacity: replaying captured calls with ReturnConsumedCapacity=TOTAL")
        capacity = {
            "method": "DynamoDB Local's ConsumedCapacity (ReturnConsumedCapacity=TOTAL) on "
                      "replays of the functions' captured request calls (fresh keys for writes); "
                      "'computed' is from item sizes by DynamoDB's published rules (init "
                      "warm-up calls are computed only: the warm-up PutItem's condition fails, "
                      "and DynamoDB Local returns no ConsumedCapacity with an error). "
                      "DynamoDB Local's figure is used except for TransactWriteItems, which it "
                      "charges by total size rather than 2 WCU per KB per item as documented",
            **{name: {
                "init": self.capacity("init", counted[name]["cold"]["_init_captures"],
                                      replay=False),
                "request": self.capacity("request",
                                         first_of_each_op(counted[name]["warm"]["_captures"]),
                                         replay=True),
            } for name in FUNCTIONS},
        }

        def raw_samples(blocks, name):
            return [x for block in blocks for x in block[name]]

        def raw_stats(blocks):
            get = raw_samples(blocks, "get_item_ms")
            put = raw_samples(blocks, "put_item_ms")
            get_put = [g + p for g, p in zip(get, put)]
            return {
                "iterations": len(get),
                "blocks": len(blocks),
                "truncated": any(block["truncated"] for block in blocks),
                "get_item_ms": summary(get),
                "put_item_ms": summary(put),
                "get_plus_put_ms": summary(get_put),
                "transact_write_items_ms": summary(raw_samples(blocks, "transact_write_items_ms")),
                "get_plus_put_p50_by_block_ms": [
                    percentile([g + p for g, p in zip(b["get_item_ms"], b["put_item_ms"])], 50)
                    for b in blocks],
            }

        def raw_read_stats(blocks, second):
            key = raw_samples(blocks, "get_item_ms")
            other = raw_samples(blocks, second)
            both = [a + b for a, b in zip(key, other)]
            return {
                "iterations": len(key),
                "blocks": len(blocks),
                "truncated": any(block["truncated"] for block in blocks),
                "get_item_ms": summary(key),
                second: summary(other),
                "total_ms": summary(both),
                "total_p50_by_block_ms": [
                    percentile([a + b for a, b in zip(blk["get_item_ms"], blk[second])], 50)
                    for blk in blocks],
            }

        all_blocks = raw_blocks["create-account"] + raw_blocks["create-payment"]
        raw_get = raw_samples(all_blocks, "get_item_ms")
        raw_put = raw_samples(all_blocks, "put_item_ms")
        raw_tx = raw_samples(all_blocks, "transact_write_items_ms")
        proxied_get_put = [g + p for g, p in zip(raw_proxied["get_item_ms"],
                                                 raw_proxied["put_item_ms"])]
        raw_summary = raw_stats(all_blocks)
        raw_summary.update({
            "interleaved_with": {name: raw_stats(raw_blocks[name]) for name in WRITE_FUNCTIONS},
            "proxied_get_plus_put_ms": summary(proxied_get_put),
            "proxied_calls_seen": raw_proxied["_calls"],
            "proxy_overhead_per_call_p50_ms":
                (percentile(proxied_get_put, 50)
                 - raw_summary["get_plus_put_ms"]["p50"]) / 2,
        })
        raw_reads = {
            "get-payment": raw_read_stats(raw_blocks["get-payment"], "get_payment_ms"),
            "list-payments": raw_read_stats(raw_blocks["list-payments"], "query_ms"),
        }
        raw_read_samples = {
            "get-payment": [a + b for a, b in zip(
                raw_samples(raw_blocks["get-payment"], "get_item_ms"),
                raw_samples(raw_blocks["get-payment"], "get_payment_ms"))],
            "list-payments": [a + b for a, b in zip(
                raw_samples(raw_blocks["list-payments"], "get_item_ms"),
                raw_samples(raw_blocks["list-payments"], "query_ms"))],
        }

        functions = {}
        for name in FUNCTIONS:
            cold_f, warm_f = cold[name], timed[name][2]
            cold_c, warm_c = counted[name]["cold"], counted[name]["warm"]
            functions[name] = {
                "cold": strip_private(cold_f),
                "warm": strip_private(warm_f),
                "counted": {"cold": strip_private(cold_c), "warm": strip_private(warm_c)},
                "peak_rss_kib": max(cold_f["vm_hwm_kib_max"], warm_f["vm_hwm_kib"] or 0,
                                    cold_c["vm_hwm_kib_max"], warm_c["vm_hwm_kib"] or 0),
            }
        raw_cold = {seq: cold[f"raw {seq}"] for seq in RAW_SEQUENCE.values()}
        results = {
            "mode": self.args.mode,
            "build_profile": self.args.profile,
            "bin_dir": str(self.bin),
            "generated": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "load_average_before": load_before,
                     "load_average_after": load_after, "machine": os.uname().machine},
            "settings": dict(m),
            "functions": functions,
            "baselines": {
                "hello": {"cold": strip_private(hello_cold), "warm": strip_private(hello_warm),
                          "peak_rss_kib": max(hello_cold["vm_hwm_kib_max"],
                                              hello_warm["vm_hwm_kib"] or 0)},
                "raw_dynamodb": {
                    "warm": raw_summary,
                    "warm_reads": raw_reads,
                    "warm_samples_ms": {"get_item": raw_get, "put_item": raw_put,
                                        "transact_write_items": raw_tx,
                                        "get_plus_get": raw_read_samples["get-payment"],
                                        "get_plus_query": raw_read_samples["list-payments"]},
                    **{f"cold_{seq.replace('-', '_')}": strip_samples(raw_cold[seq])
                       for seq in raw_cold},
                    **{f"cold_{seq.replace('-', '_')}_total_samples_ms":
                       [s["total_ms"] for s in raw_cold[seq]["samples"]] for seq in raw_cold},
                },
            },
            "capacity": capacity,
            "artifacts": self.artifact_sizes(),
        }
        results["targets"] = evaluate(results)
        results["duration_s"] = time.monotonic() - self.started
        return results

    def payment_like_event(self) -> dict:
        return self.api_event("POST /payments",
                              {"amount": 1250, "currency": "USD"},
                              {"x-api-key": "sk_test_hello", "idempotency-key": str(uuid.uuid4())})


def first_of_each_op(calls: list[dict]) -> list[dict]:
    """The first captured call of each operation on each table (get-payment's two GetItems
    are on two tables)."""
    seen, out = set(), []
    for call in calls:
        if "request" not in call:
            continue
        try:
            table = json.loads(call["request"]).get("TableName")
        except ValueError:
            table = None
        if (call["op"], table) not in seen:
            seen.add((call["op"], table))
            out.append(call)
    return out


def strip_private(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def strip_samples(d: dict) -> dict:
    out = dict(d)
    out["samples"] = [{k: v for k, v in s.items() if not k.startswith("_")} for s in d["samples"]]
    return out


def load_zip_bootstrap(repo: Path):
    """`zip_bootstrap` from scripts/zip-bootstrap.py (a script, so imported by its path)."""
    path = repo / "scripts" / "zip-bootstrap.py"
    spec = importlib.util.spec_from_file_location("zip_bootstrap", path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.zip_bootstrap


def newest_mtime(root: Path, entries: list[str]) -> float:
    newest = 0.0
    for entry in entries:
        path = root / entry
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for file in path.rglob("*"):
                if file.is_file() and file.suffix in (".rs", ".toml"):
                    newest = max(newest, file.stat().st_mtime)
    return newest


def attribute_size(value: dict) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(attribute_size({"N": x}) for x in v)
    if kind == "BS":
        return sum(len(base64.b64decode(x)) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(attribute_size(x) + 1 for x in v)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


# --------------------------------------------------------------------------------------------
# Targets and report


def evaluate(r: dict) -> list[dict]:
    f = r["functions"]
    hello = r["baselines"]["hello"]
    raw = r["baselines"]["raw_dynamodb"]
    hello_cold = hello["cold"]["cold_total_ms"]["p50"]
    rows = []

    def row(metric, unit, values, baselines, target, passed, note=""):
        rows.append({"metric": metric, "unit": unit, "values": values,
                     "baselines": baselines, "target": target, "pass": passed, "note": note})

    def judged(kind):
        """The functions a target holds for: the writes, and the reads where READ_TARGETS
        says so."""
        return [n for n in f if n in WRITE_FUNCTIONS or kind in READ_TARGETS]

    # Cold total vs hello + the raw calls the request needs on a fresh client.
    cold_base = {n: hello_cold + raw[f"cold_{RAW_SEQUENCE[n].replace('-', '_')}"]["total_ms"]
                 ["p50"] for n in f}
    row("Cold total p50 (start -> first response)", "ms",
        {n: f[n]["cold"]["cold_total_ms"]["p50"] for n in f}, cold_base,
        f"<= {TARGET_COLD_RATIO} x baseline",
        {n: f[n]["cold"]["cold_total_ms"]["p50"] <= TARGET_COLD_RATIO * cold_base[n]
         for n in judged("cold")},
        "baseline = hello cold total p50 + raw calls on a fresh client p50 "
        "(account: TransactWriteItems; payment: GetItem + PutItem; get: GetItem + GetItem; "
        "list: GetItem + Query)")
    row("Init duration p50 (start -> first /next)", "ms",
        {n: f[n]["cold"]["init_ms"]["p50"] for n in f},
        {n: hello["cold"]["init_ms"]["p50"] for n in f}, "info", None, "baseline = hello init")
    row("Cold total p90", "ms", {n: f[n]["cold"]["cold_total_ms"]["p90"] for n in f},
        {n: hello["cold"]["cold_total_ms"]["p90"] for n in f}, "info", None,
        "baseline = hello cold total p90")
    inter = raw["warm"]["interleaved_with"]

    def raw_warm(name, q):
        if name == "create-account":
            return inter[name]["transact_write_items_ms"][q]
        if name == "create-payment":
            return inter[name]["get_plus_put_ms"][q]
        return raw["warm_reads"][name]["total_ms"][q]

    warm_base = {n: raw_warm(n, "p50") for n in f}
    for q in ("p50", "p90", "p99"):
        row(f"Warm latency {q}", "ms", {n: f[n]["warm"]["latency_ms"][q] for n in f},
            {n: raw_warm(n, q) for n in f},
            f"payment <= {TARGET_WARM_RATIO} x baseline" if q == "p50" else "info",
            {"create-payment": f["create-payment"]["warm"]["latency_ms"]["p50"]
             <= TARGET_WARM_RATIO * warm_base["create-payment"]} if q == "p50" else None,
            "baseline = raw warm, in blocks alternating with the function's own (account: "
            "TransactWriteItems; payment: GetItem + PutItem; get: GetItem + consistent "
            "GetItem; list: GetItem + Query, Limit 11)")
    hello_warm = hello["warm"]["latency_ms"]["p50"]
    row("Warm latency p50 vs baseline + runtime round trip", "ms",
        {n: f[n]["warm"]["latency_ms"]["p50"] for n in f},
        {n: warm_base[n] + hello_warm for n in f}, "info", None,
        "baseline = raw warm p50 + hello warm p50 (the Lambda runtime's own round trip to the "
        "Runtime API, which the function's latency includes and the raw calls do not)")
    row("Warm p99 / p50", "x",
        {n: f[n]["warm"]["latency_ms"]["p99"] / f[n]["warm"]["latency_ms"]["p50"] for n in f},
        {n: raw_warm(n, "p99") / raw_warm(n, "p50") for n in f},
        f"<= {TARGET_TAIL_RATIO}",
        {n: f[n]["warm"]["latency_ms"]["p99"] <= TARGET_TAIL_RATIO *
            f[n]["warm"]["latency_ms"]["p50"] for n in judged("tail")},
        "baseline = the raw baseline's own p99/p50 (the same sequences)")
    row("Warm own time p50 (latency - time in DynamoDB; counted pass)", "ms",
        {n: f[n]["counted"]["warm"]["own_time_ms"]["p50"] for n in f},
        {n: hello["warm"]["latency_ms"]["p50"] for n in f}, "info", None,
        "baseline = hello warm p50 (runtime + emulator round trip); time in DynamoDB is "
        "measured at the proxy, so proxy overhead counts as DynamoDB time")
    calls = {n: f[n]["counted"]["warm"]["dynamodb_calls_per_request"] for n in f}
    # A payment or a payment by id reads by key only; a first page of a list is one Query
    # of the account's index partition, never a Scan.
    refused_ops = {"create-payment": ("Scan", "Query"), "get-payment": ("Scan", "Query"),
                   "list-payments": ("Scan",)}
    row("DynamoDB calls per request (max; counted pass)", "calls",
        {n: calls[n]["max"] for n in f},
        {"create-account": 1, "create-payment": 2, "get-payment": 2, "list-payments": 2},
        f"payment <= {TARGET_PAYMENT_CALLS}, no Scan/Query"
        + (f"; get <= {TARGET_PAYMENT_CALLS}, no Scan/Query; list <= {TARGET_PAYMENT_CALLS}, "
           "no Scan" if "calls" in READ_TARGETS else ""),
        {n: calls[n]["max"] <= TARGET_PAYMENT_CALLS
         and not any(op in calls[n]["by_operation_mean"] for op in refused_ops[n])
         for n in ["create-payment"] + [m for m in READ_FUNCTIONS if "calls" in READ_TARGETS]},
        "baseline = the calls the raw baseline makes for the same work (list: its Query is "
        "the design, see docs/data-model.md)")
    row("DynamoDB calls during init", "calls",
        {n: sum(f[n]["counted"]["cold"]["init_dynamodb_calls"].values()) for n in f},
        {n: 0 for n in f}, "info", None, "warm-up call(s) before the first /next")

    def capacity_text(entries):
        totals = Counter()
        for e in entries:
            totals[e["unit"]] += e["used"]["units"] or 0
        return " + ".join(f"{totals[u]:g} {u}" for u in ("RCU", "WCU") if totals[u]) or "0"

    cap = r["capacity"]
    row("Capacity per request", "units", {n: capacity_text(cap[n]["request"]) for n in f},
        {"create-account": "6 WCU", "create-payment": "1 RCU + 2 WCU", "get-payment": "2 RCU",
         "list-payments": "1 RCU + 0.5 RCU per 4 KB listed"}, "info", None,
        "baseline = the documented minimum for the same items (transaction: 2 WCU per item; "
        "a payment's PutItem: 1 WCU for the table and 1 for the by_account index; index "
        "Query: eventually consistent, by the summed size of the items returned); "
        "sources per call in the capacity table below")
    row("Capacity per cold start (init warm-up)", "units",
        {n: capacity_text(cap[n]["init"]) for n in f}, {n: "0" for n in f}, "info", None,
        "computed from sizes: a failed conditional write is still charged")
    zips = r["artifacts"]
    hello_zip = zips["x86_64_zipped_here"]["bench-hello-lambda"]["zipped_bytes"]
    row("Zipped artifact", "MB", {n: zips[n]["zipped_bytes"] / MB for n in f},
        {n: hello_zip / MB for n in f}, "<= 3 MB",
        {n: zips[n]["zipped_bytes"] <= TARGET_ZIP_BYTES for n in judged("zip")},
        f"source: {zips['source']}; baseline = hello x86_64 zip")
    row("Peak RSS (VmHWM)", "MB", {n: f[n]["peak_rss_kib"] * 1024 / MB for n in f},
        {n: hello["peak_rss_kib"] * 1024 / MB for n in f}, "<= 24 MB",
        {n: f[n]["peak_rss_kib"] * 1024 <= TARGET_RSS_BYTES for n in judged("rss")},
        "baseline = hello")
    return rows


def fmt(value, unit) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if unit == "x":
            return f"{value:.2f}x"
        if unit == "calls":
            return f"{value:g}"
        return f"{value:.2f}"
    return str(value)


SHORT_NAME = {"create-account": "account", "create-payment": "payment", "get-payment": "get",
              "list-payments": "list"}


def target_table(r: dict, names: tuple[str, ...]) -> list[str]:
    """The targets' rows for two functions: values, baselines, ratios, verdicts. Targets
    that do not hold for these functions read "info"."""
    short = " / ".join(SHORT_NAME[n] for n in names)
    lines = [
        f"| Metric | {names[0]} | {names[1]} | Baseline ({short}) "
        f"| Ratio to baseline ({short}) | Target | Pass/fail |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["targets"]:
        unit = row["unit"]
        values = [fmt(row["values"][n], unit) for n in names]
        bases = [row["baselines"][n] for n in names]
        base_text = fmt(bases[0], unit) if bases[0] == bases[1] else \
            f"{fmt(bases[0], unit)} / {fmt(bases[1], unit)}"
        ratios = []
        for n in names:
            b, v = row["baselines"][n], row["values"][n]
            numeric = isinstance(v, (int, float)) and isinstance(b, (int, float))
            ratios.append(f"{v / b:.2f}x" if numeric and b else "—")
        judged = {n: ok for n, ok in (row["pass"] or {}).items() if n in names}
        if not judged:
            verdict = "info"
        else:
            verdict = " / ".join(f"{SHORT_NAME[n]}: {'PASS' if ok else 'FAIL'}"
                                 for n, ok in judged.items())
        target = row["target"] if judged or row["pass"] is None else "info"
        unit_text = "" if unit in ("x", "calls", "units") else f" ({unit})"
        lines.append(f"| {row['metric']}{unit_text} | {values[0]} | {values[1]} | {base_text} | "
                     f"{' / '.join(ratios)} | {target} | {verdict} |")
    return lines


def markdown(r: dict) -> str:
    lines = [
        f"# Benchmark results ({r['mode']} run, {r['build_profile']} build, {r['generated']})",
        "",
        f"Binaries measured: the {r['build_profile']} build ({r['bin_dir']}), "
        f"{r['host']['machine']}.",
        "",
        *target_table(r, WRITE_FUNCTIONS),
        "",
        "Read functions (get-payment: `GET /payments/{id}`; list-payments: `GET /payments?limit="
        f"{DEFAULT_PAGE}`, a full page of an account with more); "
        + (f"the targets that hold for them: {', '.join(READ_TARGETS)}; the other rows are "
           "information:" if READ_TARGETS else "every row is information (no target holds "
           "for them):"),
        "",
        *target_table(r, READ_FUNCTIONS),
    ]
    lines += ["", "Baselines: " + "; ".join(
        f"*{row['metric']}*: {row['note']}" for row in r["targets"] if row["note"]), ""]

    f, b = r["functions"], r["baselines"]
    raw = b["raw_dynamodb"]["warm"]
    lines += [
        "## Details",
        "",
        "| | " + " | ".join(FUNCTIONS) + " | hello-world |",
        "|---" * (len(FUNCTIONS) + 2) + "|",
    ]

    def triple(label, getter, digits=2):
        vals = []
        for src in [f[n] for n in FUNCTIONS] + [b["hello"]]:
            try:
                v = getter(src)
                vals.append(f"{v:.{digits}f}" if isinstance(v, float) else str(v))
            except (KeyError, TypeError):
                vals.append("—")
        lines.append(f"| {label} | " + " | ".join(vals) + " |")

    triple("cold starts", lambda s: s["cold"]["cold_total_ms"]["n"])
    for q in ("min", "p50", "p90", "max"):
        triple(f"init {q} (ms)", lambda s, q=q: s["cold"]["init_ms"][q])
    for q in ("min", "p50", "p90", "max"):
        triple(f"cold total {q} (ms)", lambda s, q=q: s["cold"]["cold_total_ms"][q])
    triple("first invocation p50 (ms, event -> response)",
           lambda s: s["cold"]["first_invoke_ms"]["p50"])
    triple("warm invocations", lambda s: s["warm"]["invocations"])
    for q in ("min", "p50", "p90", "p99", "max", "mean"):
        triple(f"warm {q} (ms)", lambda s, q=q: s["warm"]["latency_ms"][q])
    triple("counted pass: cold total p50 (ms, via proxy)",
           lambda s: s["counted"]["cold"]["cold_total_ms"]["p50"])
    triple("counted pass: warm p50 (ms, via proxy)",
           lambda s: s["counted"]["warm"]["latency_ms"]["p50"])
    triple("counted pass: warm p99 (ms, via proxy)",
           lambda s: s["counted"]["warm"]["latency_ms"]["p99"])
    triple("counted pass: time in DynamoDB p50 (ms, at the proxy)",
           lambda s: s["counted"]["warm"]["dynamodb_time_ms"]["p50"])
    triple("counted pass: own time p50 (ms)",
           lambda s: s["counted"]["warm"]["own_time_ms"]["p50"])
    triple("DynamoDB calls/request (mean)",
           lambda s: s["counted"]["warm"]["dynamodb_calls_per_request"]["mean"])
    triple("new DynamoDB connections while warm",
           lambda s: s["counted"]["warm"]["new_dynamodb_connections_while_warm"])
    triple("VmHWM after 1st invocation (KiB)", lambda s: s["warm"]["vm_hwm_kib_after_first"])
    triple("VmHWM at end of warm run (KiB)", lambda s: s["warm"]["vm_hwm_kib"])
    triple("VmHWM max over cold starts (KiB)", lambda s: s["cold"]["vm_hwm_kib_max"])
    lines.append("")
    for n in FUNCTIONS:
        ops = f[n]["counted"]["warm"]["dynamodb_calls_per_request"]["by_operation_mean"]
        init = f[n]["counted"]["cold"]["init_dynamodb_calls"]
        lines.append(f"- **{n}** DynamoDB calls per request by operation (mean): "
                     + (", ".join(f"{op} {v:g}" for op, v in ops.items()) or "none")
                     + "; during init: " + (", ".join(f"{op} {v}" for op, v in init.items())
                                            or "none"))
    lines.append("")
    rc = b["raw_dynamodb"]
    lines += [
        "Raw DynamoDB baseline (`bench-raw-dynamodb`, `shared::config::dynamodb_client`, "
        "direct to DynamoDB Local like the timed function runs; warm rows pool the blocks "
        "run alternately with both functions):",
        "",
        "| | n | p50 (ms) | p90 (ms) | p99 (ms) |",
        "|---|---|---|---|---|",
    ]
    for label, s in (("warm GetItem (consistent)", raw["get_item_ms"]),
                     ("warm PutItem (conditional)", raw["put_item_ms"]),
                     ("warm GetItem + PutItem", raw["get_plus_put_ms"]),
                     ("warm TransactWriteItems (4 puts)", raw["transact_write_items_ms"]),
                     ("warm GetItem + PutItem, through the proxy",
                      raw["proxied_get_plus_put_ms"]),
                     ("fresh client: build + GetItem + PutItem", rc["cold_get_put"]["total_ms"]),
                     ("fresh client: build + TransactWriteItems",
                      rc["cold_transact"]["total_ms"]),
                     ("fresh client: client build only", rc["cold_get_put"]["client_build_ms"]),
                     ("fresh client: first GetItem", rc["cold_get_put"]["calls_ms"]["get_item_ms"]),
                     ("warm GetItem + GetItem payment (with get-payment)",
                      rc["warm_reads"]["get-payment"]["total_ms"]),
                     ("warm GetItem payment (consistent)",
                      rc["warm_reads"]["get-payment"]["get_payment_ms"]),
                     ("warm GetItem + Query by_account, Limit 11 (with list-payments)",
                      rc["warm_reads"]["list-payments"]["total_ms"]),
                     ("warm Query by_account, Limit 11",
                      rc["warm_reads"]["list-payments"]["query_ms"]),
                     ("fresh client: build + GetItem + GetItem", rc["cold_get_get"]["total_ms"]),
                     ("fresh client: build + GetItem + Query", rc["cold_get_query"]["total_ms"])):
        lines.append(f"| {label} | {s['n']} | {s['p50']:.2f} | {s['p90']:.2f} | {s['p99']:.2f} |")
    lines += ["",
              f"Proxy overhead per DynamoDB call (p50, proxied vs direct raw rounds): "
              f"{raw['proxy_overhead_per_call_p50_ms']:.3f} ms; the proxy counted exactly the "
              f"calls the raw baseline made ({raw['proxied_calls_seen']}). "
              "Raw warm GetItem+PutItem p50 per block (drift check): "
              + "; ".join(f"with {name}: "
                          + ", ".join(f"{v:.2f}" for v in stats["get_plus_put_p50_by_block_ms"])
                          for name, stats in raw["interleaved_with"].items()) + "; "
              + "; ".join(f"GetItem + {'GetItem' if name == 'get-payment' else 'Query'} with "
                          f"{name}: " + ", ".join(f"{v:.2f}" for v in stats["total_p50_by_block_ms"])
                          for name, stats in rc["warm_reads"].items()) + " ms.", ""]
    for name in FUNCTIONS:
        events = f[name]["counted"]["warm"].get("invocations_on_a_new_connection") or []
        if events:
            lines += [f"- {name} (counted pass) opened a new DynamoDB connection while warm on "
                      f"invocation(s) " + ", ".join(
                          f"#{e['invocation']} ({e['latency_ms']:.2f} ms, {'+'.join(e['ops'])})"
                          for e in events[:10]) + ("" if len(events) <= 10 else ", ..."), ""]

    lines += ["Consumed capacity per call (" + r["capacity"]["method"] + "):", "",
              "| Function | Phase | Operation | DynamoDB Local (units) | Computed (units) "
              "| Item bytes | Used |", "|---|---|---|---|---|---|---|"]
    for n in FUNCTIONS:
        for phase in ("init", "request"):
            for entry in r["capacity"][n][phase]:
                local = entry.get("dynamodb_local", {})
                local_text = "—" if not local else (
                    f"{local['capacity_units']:g}" if local.get("capacity_units") is not None
                    else f"error {local.get('error')}")
                comp = entry["computed"]
                used = entry["used"]
                lines.append(f"| {n} | {phase} | {entry['op']} | {local_text} | "
                             f"{comp['capacity_units']:g} ({comp['kind']}) | "
                             f"{comp.get('item_bytes', '—')} | {used['units']:g} {entry['unit']} "
                             f"({used['source']}) |")
    art = r["artifacts"]
    lines += ["", f"Artifacts: {art['source']}"
              + (f", written {art['sizes_txt_written']}"
                 + (" (OLDER than the newest Rust source: rerun `make package`)"
                    if art.get("sizes_txt_older_than_sources") else "")
                 if "sizes_txt_written" in art else "") + ". x86_64 zips made here ("
              + art["x86_64_profile"] + " build): "
              + ", ".join(f"{k} {v['zipped_bytes'] / MIB:.2f} MiB ({v['binary_bytes'] / MIB:.2f} "
                          f"MiB unzipped)" for k, v in art["x86_64_zipped_here"].items()) + ".",
              "",
              f"Host: {r['host']['cpus']} CPUs, load average before "
              f"{r['host']['load_average_before'][0]:.2f}, after "
              f"{r['host']['load_average_after'][0]:.2f}. Run took {r['duration_s']:.0f} s.", ""]
    if r["mode"] == "smoke":
        lines += ["Smoke run: counts are tiny and targets are not enforced"
                  + (f"; {r['build_profile']} binaries, so the times, memory and x86_64 zip "
                     "sizes above are not the release build's." if r["build_profile"] != "release"
                     else "."), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Plot


def plot(r: dict, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    f, b = r["functions"], r["baselines"]
    fig, (cold_ax, warm_ax) = plt.subplots(1, 2, figsize=(19, 7))

    cold_series = [
        ("hello cold total", [s["cold_total_ms"] for s in b["hello"]["cold"]["samples"]]),
        ("raw fresh client\nGet+Put", b["raw_dynamodb"]["cold_get_put_total_samples_ms"]),
        ("raw fresh client\nTransactWrite", b["raw_dynamodb"]["cold_transact_total_samples_ms"]),
        ("create-account\ninit", [s["init_ms"] for s in f["create-account"]["cold"]["samples"]]),
        ("create-account\ncold total",
         [s["cold_total_ms"] for s in f["create-account"]["cold"]["samples"]]),
        ("create-payment\ninit", [s["init_ms"] for s in f["create-payment"]["cold"]["samples"]]),
        ("create-payment\ncold total",
         [s["cold_total_ms"] for s in f["create-payment"]["cold"]["samples"]]),
        ("raw fresh client\nGet+Get", b["raw_dynamodb"]["cold_get_get_total_samples_ms"]),
        ("raw fresh client\nGet+Query", b["raw_dynamodb"]["cold_get_query_total_samples_ms"]),
        ("get-payment\ncold total",
         [s["cold_total_ms"] for s in f["get-payment"]["cold"]["samples"]]),
        ("list-payments\ncold total",
         [s["cold_total_ms"] for s in f["list-payments"]["cold"]["samples"]]),
    ]
    colors = ["#888888", "#aaaaaa", "#bbbbbb", "#9ecae1", "#3182bd", "#fdae6b", "#e6550d",
              "#bbbbbb", "#bbbbbb", "#a1d99b", "#c994c7"]
    positions = range(1, len(cold_series) + 1)
    box = cold_ax.boxplot([s for _, s in cold_series], positions=list(positions),
                          widths=0.6, patch_artist=True, showfliers=False)
    for patch, color in zip(box["boxes"], colors):
        patch.set_facecolor(color)
        patch.set_alpha(0.6)
    for x, (_, samples), color in zip(positions, cold_series, colors):
        jitter = [x + (i % 7 - 3) * 0.04 for i in range(len(samples))]
        cold_ax.scatter(jitter, samples, s=12, color=color, edgecolor="black", linewidth=0.3,
                        zorder=3)
    for name, x in (("create-account", 5), ("create-payment", 7), ("get-payment", 10),
                    ("list-payments", 11)):
        row = next(t for t in r["targets"] if t["metric"].startswith("Cold total p50"))
        limit = TARGET_COLD_RATIO * row["baselines"][name]
        # Grey dots where the ratio is information only (the reads, see READ_TARGETS).
        held = name in WRITE_FUNCTIONS or "cold" in READ_TARGETS
        cold_ax.hlines(limit, x - 0.4, x + 0.4, colors="red" if held else "grey",
                       linestyles="--" if held else ":", linewidth=1.2)
    cold_ax.set_xticks(list(positions))
    cold_ax.set_xticklabels([label for label, _ in cold_series], fontsize=7)
    cold_ax.set_ylabel("ms (process start -> ...)")
    cold_ax.set_yscale("log")
    cold_ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    cold_ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    cold_ax.set_title(f"Cold starts (n={len(cold_series[0][1])} each; red dashes: "
                      f"{TARGET_COLD_RATIO}x baseline target; grey dots: the same ratio, "
                      "information)", fontsize=10)
    cold_ax.grid(True, axis="y", alpha=0.3, which="both")

    raw = b["raw_dynamodb"]["warm_samples_ms"]
    warm_series = [
        ("hello-world (runtime + emulator)", b["hello"]["warm"]["samples_ms"], "#888888", ":"),
        ("raw GetItem", raw["get_item"], "#74c476", "--"),
        ("raw PutItem", raw["put_item"], "#31a354", "--"),
        ("raw GetItem + PutItem", [g + p for g, p in zip(raw["get_item"], raw["put_item"])],
         "#006d2c", "-."),
        ("raw TransactWriteItems", raw["transact_write_items"], "#756bb1", "-."),
        ("create-account", f["create-account"]["warm"]["samples_ms"], "#3182bd", "-"),
        ("create-payment", f["create-payment"]["warm"]["samples_ms"], "#e6550d", "-"),
        ("raw GetItem + GetItem", raw["get_plus_get"], "#31a354", ":"),
        ("raw GetItem + Query", raw["get_plus_query"], "#7a0177", ":"),
        ("get-payment", f["get-payment"]["warm"]["samples_ms"], "#41ab5d", "-"),
        ("list-payments", f["list-payments"]["warm"]["samples_ms"], "#ae017e", "-"),
    ]
    for label, samples, color, style in warm_series:
        if not samples:
            continue
        ordered = sorted(samples)
        n = len(ordered)
        warm_ax.plot(ordered, [(i + 1) / n for i in range(n)], style, color=color,
                     linewidth=1.6, label=f"{label} (p50 {percentile(samples, 50):.2f} ms, "
                                          f"p99 {percentile(samples, 99):.2f})")
    limit = TARGET_WARM_RATIO * b["raw_dynamodb"]["warm"]["interleaved_with"]["create-payment"][
        "get_plus_put_ms"]["p50"]
    warm_ax.axvline(limit, color="red", linestyle="--", linewidth=1,
                    label=f"create-payment p50 target ({limit:.2f} ms)")
    for q in (0.5, 0.9, 0.99):
        warm_ax.axhline(q, color="black", alpha=0.15, linewidth=0.8)
    warm_ax.set_xscale("log")
    warm_ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    warm_ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    warm_ax.tick_params(axis="x", which="minor", labelsize=7)
    warm_ax.set_xlabel("ms (event handed out -> response posted; raw: per call)")
    warm_ax.set_ylabel("fraction of invocations")
    warm_ax.set_title(f"Warm latency CDF (n={len(f['create-payment']['warm']['samples_ms'])} "
                      f"per function)")
    warm_ax.legend(fontsize=7.5, loc="lower right")
    warm_ax.grid(True, alpha=0.3, which="both")
    fig.suptitle(f"payments API benchmark ({r['mode']} run, {r['generated']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return matplotlib.__version__


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument("--enforce", action="store_true",
                        help="exit 3 when a target is missed (never in smoke mode)")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--profile", default="release",
                        help="the cargo build profile of the binaries in --bin-dir (reported)")
    parser.add_argument("--dynamodb-port", type=int, required=True)
    parser.add_argument("--clients-table", required=True)
    parser.add_argument("--payments-table", required=True)
    parser.add_argument("--audit-table", required=True)
    args = parser.parse_args()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    bench = None
    try:
        bench = Bench(args)
        results = bench.run()
        out = Path(args.out)
        (out / "results.md").write_text(markdown(results))
        results["matplotlib_version"] = plot(results, out / "latency.png")
        (out / "results.json").write_text(json.dumps(results, indent=1))
    except BenchError as err:
        log(f"FAILED: {err}")
        return 1
    except KeyboardInterrupt as err:
        log(f"interrupted ({err})")
        return 130
    finally:
        stop_all_processes()
        if bench is not None:
            bench.proxy.close()

    print(markdown(results))
    failed = [(row["metric"], name) for row in results["targets"] if row["pass"]
              for name, ok in row["pass"].items() if not ok]
    log(f"results: {out / 'results.json'}, {out / 'results.md'}, {out / 'latency.png'} "
        f"(matplotlib {results['matplotlib_version']}); run took {results['duration_s']:.0f} s")
    if failed:
        log(f"{len(failed)} target(s) missed: " + "; ".join(f"{m} [{n}]" for m, n in failed)
            + ("" if args.mode == "full" and args.enforce else " (not enforced)"))
        if args.mode == "full" and args.enforce:
            return 3
    else:
        log("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
