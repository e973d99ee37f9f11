#!/usr/bin/env python3
"""Benchmark harness for the payments Lambda functions (`make bench`, scripts/bench.sh).

Runs each function the way Lambda does: a process talking to a Runtime API
(`bench-runtime-api`, tools/bench/runtime-api, driven by this script), against DynamoDB Local
behind TLS on loopback (`bench-tls-front`, with a throwaway CA from tools/bench/make-ca.sh
that every client is told to trust), and measures, against baselines taken in the same run:

* init (process start -> first `GET .../invocation/next`) and cold total (process start ->
  first response posted), over cold starts interleaved round by round;
* warm latency (event handed out -> response posted), in blocks alternating with blocks of
  the raw calls; each latency target judged on an estimate that holds from run to run (the
  median of per-round or per-block ratios, or pooled p99s with a bootstrap interval), with
  its spread;
* each function's own time (latency less its DynamoDB calls' time, from its metrics line)
  and its CPU time per invocation;
* DynamoDB attempts and consumed capacity per request, from the functions' own metrics line
  (EMF), which the client's interceptor fills (`shared::store::usage`);
* instructions per warm invocation (valgrind's callgrind), which do not depend on the noise
  of a shared machine;
* peak resident memory (VmHWM); the zipped arm64 artifacts of scripts/package.sh;
* what a request costs per million in AWS (prices in tools/bench/prices.json): request
  charges, DynamoDB units from the sizes of the items the run wrote, CloudWatch Logs bytes
  as written, X-Ray at its default sampling, and billed duration modelled from CPU time.

Subjects: five functions (create-account, create-payment, get-payment, list-payments, and
create-key on the accounts create-account's warm run made, each given as many keys as it has
room for); create-payment built with ring instead of aws-lc-rs (the TLS crypto),
create-payment talking plain HTTP (the TLS handshake's share), and the peer: create-payment
as the replaced stack would have it, Node.js 20 and the AWS SDK for JavaScript v3
(tools/bench/node-peer).

Baselines: `bench-hello-lambda` (a bare lambda_runtime function: the init floor) and
`bench-raw-dynamodb` (the raw calls each function makes, with the functions' own client).

Standard library only, except the plot (matplotlib, imported lazily). Every server binds
127.0.0.1; every loop is bounded in count and time; every process started is stopped.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

MIB = 1024 * 1024
MB = 1000 * 1000

# The targets the results are judged against (see BENCHMARKS.md).
TARGET_COLD_RATIO = 1.5  # cold total <= 1.5 x (hello cold total + raw calls on a fresh client)
TARGET_WARM_RATIO = 1.25  # warm create-payment p50 <= 1.25 x (raw GetItem + PutItem, warm)
TARGET_TAIL_RATIO = 1.1  # warm create-payment p99 <= 1.1 x the raw calls' p99, same run
TARGET_PAYMENT_CALLS = 2  # DynamoDB attempts per create-payment, no Scan/Query
# DynamoDB attempts per request of each function judged by them: a payment and the reads 2,
# create-key 3 (the key, the account item, one transaction).
TARGET_CALLS = {"create-payment": TARGET_PAYMENT_CALLS, "get-payment": 2, "list-payments": 2,
                "create-key": 3}
TARGET_ZIP_BYTES = 3 * MB  # zipped arm64 artifact
TARGET_RSS_BYTES = 24 * MB  # peak RSS
WRITE_FUNCTIONS = ("create-account", "create-payment")
READ_FUNCTIONS = ("get-payment", "list-payments")
KEY_FUNCTIONS = ("create-key",)
FUNCTIONS = WRITE_FUNCTIONS + READ_FUNCTIONS + KEY_FUNCTIONS
# An account may have 10 keys working at once: create-key can add 9 to each after its first.
NEW_KEYS_PER_ACCOUNT = 9
PEER = "node-peer"  # create-payment in Node.js 20 with the AWS SDK for JavaScript v3
RING = "create-payment-ring"  # create-payment with ring as its TLS crypto
PLAIN = "create-payment-plain"  # create-payment against DynamoDB Local without TLS
# The raw call sequence (bench-raw-dynamodb --sequence) each subject is judged against, cold
# (on a fresh client) and warm (in blocks alternating with the subject's).
RAW_COLD = {"create-account": "transact", "create-payment": "get-put", "get-payment": "get-get",
            "list-payments": "get-query", "create-key": "get-get-transact", PEER: "get-put",
            RING: "get-put", PLAIN: "get-put"}
# The account of the raw baseline's payments (bench-raw-dynamodb's SEEDED_ACCOUNT).
RAW_ACCOUNT = "acct_BenchReads0000000000"
RAW_WARM = {"create-account": "transact", "create-payment": "payment", "get-payment": "get-get",
            "list-payments": "get-query", "create-key": "get-get-transact", PEER: "payment",
            RING: "payment", PLAIN: "payment"}
# The raw sequence that adds keys to accounts `bench-raw-dynamodb seed --key-accounts` wrote.
RAW_KEY_SEQUENCE = "get-get-transact"
# The targets that also hold for the read functions and create-key: those they meet by
# construction or with a stable margin; their other rows are information.
READ_TARGETS: tuple[str, ...] = ("calls", "zip", "rss")
DEFAULT_PAGE = 10  # GET /payments without `limit`
# The operations a request may not make (a payment, a payment by id and a new key read by key
# only; a first page is one Query of the account's index partition, never a Scan).
REFUSED_OPS = {"create-payment": ("Scan", "Query"), "get-payment": ("Scan", "Query"),
               "list-payments": ("Scan",), "create-key": ("Scan", "Query")}

MODES = {
    # cold starts per subject; warm invocations per subject; raw warm rounds per subject, in
    # `blocks` blocks alternating with the subject's; DynamoDB Local (JIT) warm-up rounds;
    # callgrind: warm invocations of the short and the long run (their difference is what a
    # warm invocation costs); seconds allowed per warm phase and for the whole run.
    "full": dict(cold=20, warm=2000, raw_warm=2000, blocks=8, ddb_warmup=8000,
                 callgrind=(10, 110), phase_seconds=300, total_seconds=2400),
    # The smoke run counts instructions of create-payment, hello-world and the raw calls only
    # (each valgrind run costs about 5 s whatever it counts): enough to show the method works.
    "smoke": dict(cold=2, warm=40, raw_warm=40, blocks=2, ddb_warmup=20, callgrind=(1, 3),
                  callgrind_variants=False, phase_seconds=60, total_seconds=600),
    # Where a warm invocation's instructions go (scripts/bench.sh --profile): callgrind's
    # per-function counts of the long run minus the short one's, over the difference.
    "profile": dict(cold=0, warm=0, raw_warm=0, blocks=1, ddb_warmup=200, callgrind=(10, 110),
                    phase_seconds=300, total_seconds=1200),
}

# How many functions of each profile the report lists.
PROFILE_TOP = 60


class BenchError(Exception):
    pass


def now_ns() -> int:
    return time.perf_counter_ns()


def ms(ns: int | float) -> float:
    return ns / 1e6


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Statistics


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (q an integer from 0 to 100), interpolated linearly between the
    closest ranks, as numpy's default: `statistics.quantiles`' inclusive method."""
    if not values:
        return float("nan")
    if q == 0 or len(values) == 1:  # quantiles wants 2 values (Python 3.11)
        return min(values)
    if q == 100:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def quantile_of_sorted(ordered: list[float], q: float) -> float:
    """`percentile` on an already sorted list, for the bootstrap's thousands of resamples."""
    n = len(ordered)
    if n == 0:
        return float("nan")
    position = (n - 1) * q / 100
    low = int(position)
    high = min(low + 1, n - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# A fixed seed: the same measurements give the same intervals, so a report rendered again
# with --report-only matches the run's.
BOOTSTRAP_SEED = 27
BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 95
# Fewer blocks than this and a median of per-block ratios says little: such a run's latency
# verdicts are left unjudged.
MIN_BLOCKS = 5


def spread(values: list[float]) -> dict:
    return {"n": len(values), "median": statistics.median(values) if values else float("nan"),
            "min": min(values, default=float("nan")), "max": max(values, default=float("nan")),
            "values": values}


def interval(estimates: list[float]) -> list[float]:
    ordered = sorted(estimates)
    tail = (100 - CONFIDENCE) / 2
    return [quantile_of_sorted(ordered, tail), quantile_of_sorted(ordered, 100 - tail)]


def median_interval(values: list[float], rng) -> list[float]:
    """A bootstrap interval of the median of `values` (rounds or blocks resampled)."""
    k = len(values)
    if k < 2:
        return [float("nan"), float("nan")]
    return interval([statistics.median(rng.choices(values, k=k))
                     for _ in range(BOOTSTRAP_RESAMPLES)])


def cold_ratio_estimates(subject: list[float], hello: list[float], raw: list[float]) -> dict:
    """Cold total against hello-world's plus the raw calls' on a fresh client, round by round
    (the three were measured in the same round, so drift over the run cancels in each ratio)."""
    rounds = [s / (h + r) for s, h, r in zip(subject, hello, raw) if h + r > 0]
    rng = random.Random(BOOTSTRAP_SEED)
    return {"per_round": spread(rounds), "median_ci": median_interval(rounds, rng),
            "of_p50s": percentile(subject, 50) / (percentile(hello, 50) + percentile(raw, 50))}


def warm_ratio_estimates(subject_blocks: list[list[float]], raw_blocks: list[list[float]],
                         quantiles: tuple[int, ...] = (50, 99)) -> dict:
    """For each quantile: the ratio in each pair of blocks (a function block and the raw block
    run right after it), their median and range, and the ratio of the pooled quantiles with a
    bootstrap interval. Each resample draws pairs of blocks, then samples within each drawn
    block: the spread between blocks (the machine's load moving) and within them both count."""
    pairs = [(sorted(f), sorted(r)) for f, r in zip(subject_blocks, raw_blocks) if f and r]
    pooled_f = sorted(x for f, _ in pairs for x in f)
    pooled_r = sorted(x for _, r in pairs for x in r)
    rng = random.Random(BOOTSTRAP_SEED)
    boot = {q: [] for q in quantiles}
    boot_median = {q: [] for q in quantiles}
    per_block = {q: [quantile_of_sorted(f, q) / quantile_of_sorted(r, q) for f, r in pairs]
                 for q in quantiles}
    k = len(pairs)
    for _ in range(BOOTSTRAP_RESAMPLES if k else 0):
        drawn = [pairs[rng.randrange(k)] for _ in range(k)]
        f_all: list[float] = []
        r_all: list[float] = []
        for f, r in drawn:
            f_all.extend(rng.choices(f, k=len(f)))
            r_all.extend(rng.choices(r, k=len(r)))
        f_all.sort()
        r_all.sort()
        for q in quantiles:
            boot[q].append(quantile_of_sorted(f_all, q) / quantile_of_sorted(r_all, q))
            boot_median[q].append(statistics.median(
                per_block[q][rng.randrange(k)] for _ in range(k)))
    return {
        "blocks": k,
        "samples": [len(pooled_f), len(pooled_r)],
        **{f"p{q}": {"per_block": spread(per_block[q]),
                     "per_block_median_ci": interval(boot_median[q]) if k > 1 else None,
                     "pooled": (quantile_of_sorted(pooled_f, q) / quantile_of_sorted(pooled_r, q)
                                if pairs else float("nan")),
                     "pooled_ci": interval(boot[q]) if k else None}
           for q in quantiles},
    }


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


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used so far (/proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # utime and stime: the 14th and 15th fields, the 12th and 13th after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


# --------------------------------------------------------------------------------------------
# TLS in front of DynamoDB Local


class TlsFront:
    """`bench-tls-front`: TLS on an ephemeral loopback port, plaintext to DynamoDB Local. Its
    stderr (one line per handshake: version, suite, key-exchange group) goes to a log."""

    def __init__(self, binary: Path, ca_dir: Path, upstream_port: int, log_path: Path):
        self.log_path = log_path
        log_file = open(log_path, "wb")
        self.proc = subprocess.Popen([str(binary), str(ca_dir / "chain.pem"),
                                      str(ca_dir / "leaf.key"), str(upstream_port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log_file)
        log_file.close()
        LIVE_PROCESSES.add(self.proc)
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "port":
            stop_process(self.proc)
            raise BenchError(f"bench-tls-front did not start: {line!r}")
        self.port = int(line[1])

    def handshakes(self) -> dict:
        """How many handshakes agreed on each (version, suite, group)."""
        seen = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("handshake "):
                seen[line[len("handshake "):]] += 1
        return dict(seen)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        stop_process(self.proc)


def response_body(response: dict) -> str:
    """An API Gateway response's body as text."""
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode("utf-8", "replace")
    return text


def emf_lines(log_path: Path) -> list[dict]:
    """The metrics lines (EMF) a function wrote, in order: one per request."""
    lines = []
    for line in log_path.read_text(errors="replace").splitlines():
        at = line.find("{")
        if at < 0 or '"_aws"' not in line:
            continue
        try:
            doc = json.loads(line[at:])
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            lines.append(doc)
    return lines


def log_volume(log_path: Path) -> dict | None:
    """What a warm request writes to its log, every line counted (CloudWatch bills each line
    as one event): the lines after the first request's metrics line, over the requests they
    belong to. Init's lines and the first request's are left out."""
    lines = log_path.read_text(errors="replace").splitlines()
    marks = [i for i, line in enumerate(lines) if '"_aws"' in line]
    if len(marks) < 2:
        return None
    after = [line for line in lines[marks[0] + 1:] if line]
    requests = len(marks) - 1
    emf = [line for line in after if '"_aws"' in line]
    return {"requests": requests, "lines": len(after) / requests,
            "bytes": sum(len(line.encode()) for line in after) / requests,
            "emf_bytes": sum(len(line.encode()) for line in emf) / requests}


def scan_table(endpoint: str, table: str, deadline: float) -> list[dict]:
    """Every item of a DynamoDB Local table. DynamoDB Local checks that a request is signed,
    not the signature, so a fixed one does."""
    items: list[dict] = []
    start_key = None
    while time.monotonic() < deadline:
        body = {"TableName": table, **({"ExclusiveStartKey": start_key} if start_key else {})}
        request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.Scan",
            "X-Amz-Date": "20260101T000000Z",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDBENCHMARK0000000/20260101/"
                             "us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, "
                             "Signature=" + "0" * 64,
        })
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                page = json.loads(response.read())
        except OSError as err:
            raise BenchError(f"scanning {table} in DynamoDB Local: {err}") from err
        items.extend(page.get("Items", []))
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return items
    raise BenchError(f"scanning {table} did not finish before the run's deadline")


def item_kind(table_kind: str, item: dict) -> str:
    entity = item.get("entity", {}).get("S")
    if table_kind == "audit":
        return "audit " + item.get("action", {}).get("S", "?")
    if table_kind == "clients" and entity == "api_key":
        # A restricted key's item carries its permissions; a secret key's does not.
        return "api_key restricted" if "permissions" in item else "api_key secret"
    if entity == "payment" and item.get("client_id", {}).get("S") == RAW_ACCOUNT:
        # The raw baseline's payments (the same items as the function's, on an account of
        # its own): kept apart so that the function's sizes are its own.
        return "payment, raw baseline"
    if entity:
        return entity
    return item.get("pk", {}).get("S", "?").partition("#")[0].lower()


def attribute_value_size(value: dict) -> int:
    """DynamoDB's size of one attribute value (its developer guide, "Item sizes")."""
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(attribute_value_size({"N": x}) for x in v)
    if kind == "BS":
        return sum(len(base64.b64decode(x)) for x in v)
    if kind == "L":
        return 3 + sum(attribute_value_size(x) + 1 for x in v)
    if kind == "M":
        return 3 + sum(len(name.encode()) + attribute_value_size(x) + 1 for name, x in v.items())
    raise BenchError(f"unknown attribute type {kind}")


def item_size(item: dict) -> int:
    """Attribute names plus values, as DynamoDB sizes an item for its request units."""
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def spent_of(doc: dict | None) -> dict | None:
    """A request's DynamoDB attempts and capacity, from its metrics line."""
    if doc is None or "DynamoDbOperations" not in doc:
        return None
    outside = doc.get("OutsideRequests") or {}
    return {"ops": list(doc["DynamoDbOperations"]), "read_units": doc["DynamoDbReadUnits"],
            "write_units": doc["DynamoDbWriteUnits"],
            "outside_ops": list(outside.get("DynamoDbOperations", [])),
            "outside_read_units": outside.get("ReadUnits", 0.0),
            "outside_write_units": outside.get("WriteUnits", 0.0)}


def callgrind_total(path: Path) -> int:
    """The instruction count (Ir) of a callgrind output file."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise BenchError(f"no instruction total in {path}")


def annotate(path: str, inclusive: bool) -> dict[str, int]:
    """callgrind_annotate's per-function instruction counts of one output file."""
    command = ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
               "--threshold=100", path]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    counts: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([\d,]+)\s+(?:\([ \d.%]+\)\s+)?\S*?:?(\S.*?)(?: \[.*\])?$", line)
        if match and "PROGRAM TOTALS" not in line:
            counts[match.group(2)] = counts.get(match.group(2), 0) + int(
                match.group(1).replace(",", ""))
    return counts


def subtract_profiles(long: dict[str, int], short: dict[str, int], per: int) -> list[tuple]:
    """(function, instructions per warm invocation), the largest first."""
    rows = [(name, (count - short.get(name, 0)) / per) for name, count in long.items()]
    return sorted((row for row in rows if row[1] > 0), key=lambda row: -row[1])


def profile_table(rows: list[tuple]) -> str:
    lines = ["| instructions | function |", "|---:|---|"]
    lines += [f"| {count:,.0f} | `{name[:160]}` |" for name, count in rows[:PROFILE_TOP]]
    return "\n".join(lines)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.mode = MODES[args.mode]
        self.repo = Path(args.repo).resolve()
        self.out = Path(args.out).resolve()
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home = self.out / "home"  # an empty HOME: no ~/.aws files, as in Lambda
        self.home.mkdir(parents=True, exist_ok=True)
        self.bin = Path(args.bin_dir).resolve()
        self.variants = Path(args.variant_dir).resolve()
        self.ca = Path(args.ca_dir).resolve()
        self.runtime_api = self.bin / "bench-runtime-api"
        self.started = time.monotonic()
        self.deadline = self.started + self.mode["total_seconds"]
        self.tls = TlsFront(self.bin / "bench-tls-front", self.ca, args.dynamodb_port,
                            self.logs / "tls-front.log")
        self.tls_endpoint = f"https://127.0.0.1:{self.tls.port}"
        self.plain_endpoint = f"http://127.0.0.1:{args.dynamodb_port}"
        self.node = shutil.which("node")
        peer = self.repo / "tools" / "bench" / "node-peer" / "dist" / "index.mjs"
        self.commands = {
            "bench-hello-lambda": [str(self.bin / "bench-hello-lambda")],
            **{name: [str(self.bin / name)] for name in FUNCTIONS},
            RING: [str(self.variants / "create-payment-ring")],
            PLAIN: [str(self.bin / "create-payment")],
            PEER: [self.node or "node", str(peer)],
        }
        self.raw_bins = {"aws-lc-rs": self.bin / "bench-raw-dynamodb",
                         "ring": self.variants / "bench-raw-dynamodb-ring"}
        self.api_key: str | None = None
        self.read_payment_id: str | None = None  # a payment of api_key's account
        # The API keys of accounts with room for a new key, one entry per key create-key may
        # still add (create-account's warm run fills it).
        self.key_slots: list[str] = []
        self.key_slots_used = 0
        # The raw key sequence's rounds so far on the accounts `bench-raw-dynamodb seed
        # --key-accounts` wrote, and how many it wrote.
        self.raw_key_rounds = 0
        self.raw_key_accounts = 0
        self.process_count = 0

    # -- environment ------------------------------------------------------------------------

    def base_env(self) -> dict:
        # As in Lambda: the region and the execution role's credentials in the environment.
        # Clients trust the benchmark's CA only: rustls through SSL_CERT_FILE (which replaces
        # the system's roots), Node through NODE_EXTRA_CA_CERTS.
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIDBENCHMARK0000000",
            "AWS_SECRET_ACCESS_KEY": "bench-secret-not-a-secret",
            "AWS_SESSION_TOKEN": "bench-session",
            "SSL_CERT_FILE": str(self.ca / "ca.pem"),
            "NODE_EXTRA_CA_CERTS": str(self.ca / "ca.pem"),
            "RUST_LOG": "warn",
        }

    def endpoint(self, name: str) -> str:
        return self.plain_endpoint if name == PLAIN else self.tls_endpoint

    def function_env(self, name: str, runtime_port: int) -> dict:
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
            # Above any rate a warm loop reaches, so nothing is refused: every request goes
            # through the limiter's decision, and the environment publishes its claim on the
            # account's limit when it first sees the traffic, a second later, and then once a
            # lease (30 s), as for an account under half its limit.
            "DEFAULT_RATE_LIMIT": "5000",
            "DYNAMODB_ENDPOINT": self.endpoint(name),
            # The template's default level: every payment writes its info line, as deployed.
            "RUST_LOG": "info",
        })
        if name == PEER:
            env["NODE_ENV"] = "production"
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

    def create_key_event(self) -> dict:
        """`POST /keys` with the secret key of an account that has room for one more key:
        each account takes NEW_KEYS_PER_ACCOUNT of them in turn, so the account items grow
        from 1 to 10 keys as an account's own do."""
        if self.key_slots_used >= len(self.key_slots):
            raise BenchError(f"no account with room for a new key left ({self.key_slots_used} "
                             "keys created): create-account's warm run made too few accounts")
        api_key = self.key_slots[self.key_slots_used]
        self.key_slots_used += 1
        return self.api_event("POST /keys",
                              {"name": "benchmark key", "permissions": ["payments:read"]},
                              {"x-api-key": api_key})

    def list_payments_event(self) -> dict:
        if self.api_key is None:
            raise BenchError("no API key yet: create-account must run first")
        # The default page, named explicitly (as many clients do): the Query's Limit is 11.
        return self.api_event("GET /payments", None, {"x-api-key": self.api_key},
                              query={"limit": str(DEFAULT_PAGE)})

    # -- invoking ----------------------------------------------------------------------------

    def start_function(self, name: str, api: RuntimeApi, wrapper: list[str] | None = None):
        self.process_count += 1
        log_path = self.logs / f"{name}-{self.process_count}.log"
        log_file = open(log_path, "wb")
        t_start = now_ns()
        proc = subprocess.Popen((wrapper or []) + self.commands[name],
                                env=self.function_env(name, api.port), stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT, cwd=self.home)
        LIVE_PROCESSES.add(proc)
        log_file.close()
        return proc, t_start, log_path

    def wait_for(self, invocation: Invocation, proc: subprocess.Popen, api: RuntimeApi,
                 log_path: Path, timeout: float = 15.0) -> dict:
        """The body of the invocation's response, which must be a 201 (a write) or a 200."""
        response = self.wait_response(invocation, proc, api, log_path, timeout)
        status = response.get("statusCode")
        body_text = response_body(response)
        expected = 200 if api.function_name in READ_FUNCTIONS else 201
        if status != expected:
            raise BenchError(f"{api.function_name}: statusCode {status} (expected {expected}), "
                             f"body {body_text[:500]}")
        try:
            return json.loads(body_text) if body_text else {}
        except ValueError:
            return {"raw": body_text}

    def wait_response(self, invocation: Invocation, proc: subprocess.Popen, api: RuntimeApi,
                      log_path: Path, timeout: float = 15.0) -> dict:
        """The invocation's response as the function posted it (API Gateway's response
        object), whatever its status."""
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
        if not isinstance(response, dict):
            raise BenchError(f"{api.function_name}: response is not an object: "
                             f"{invocation.body[:200]!r}")
        return response

    def cold_start(self, name: str, make_event) -> dict:
        self.check_time(f"{name} cold start")
        api = RuntimeApi(name, self.runtime_api)
        invocation = api.submit(make_event())  # already waiting, as on a cold start
        proc = None
        try:
            proc, t_start, log_path = self.start_function(name, api)
            self.wait_for(invocation, proc, api, log_path)
            memory = memory_kib(proc.pid)
        finally:
            if proc is not None:
                stop_process(proc)
            api.close()
        lines = emf_lines(log_path)
        return {
            "init_ms": ms(api.first_next_ns - t_start),
            "cold_total_ms": ms(invocation.t_done - t_start),
            "first_invoke_ms": ms(invocation.t_done - invocation.t_handed),
            "vm_hwm_kib": memory.get("VmHWM"),
            "dynamodb": spent_of(lines[0] if lines else None),
        }

    def cold_rounds(self, count: int, subjects: dict, raw_jobs: list[tuple[str, str, str]]):
        """`count` rounds of one cold start of every subject (name -> event maker) and one
        fresh-client sample of every raw job (label, crypto, sequence), in an order that
        rotates from round to round, so drift over the run hits all of them alike."""
        log(f"{count} rounds of interleaved cold starts: {', '.join(subjects)}, "
            f"raw {', '.join(label for label, _, _ in raw_jobs)}")
        jobs = [("subject", name) for name in subjects] + [("raw", job[0]) for job in raw_jobs]
        raw_by_label = {job[0]: job for job in raw_jobs}
        samples: dict[tuple[str, str], list[dict]] = {job: [] for job in jobs}
        for i in range(count):
            for kind, name in jobs[i % len(jobs):] + jobs[:i % len(jobs)]:
                if kind == "raw":
                    _, crypto, sequence = raw_by_label[name]
                    endpoint = self.plain_endpoint if name.endswith("plain") else None
                    sample = self.raw("cold", "--sequence", sequence,
                                      *self.raw_accounts(sequence, 1), crypto=crypto,
                                      endpoint=endpoint, timeout=60)
                else:
                    sample = self.cold_start(name, subjects[name])
                samples[(kind, name)].append(sample)
        cold = {name: cold_summary(samples[("subject", name)]) for name in subjects}
        raw = {label: raw_cold_summary(samples[("raw", label)]) for label, _, _ in raw_jobs}
        return cold, raw

    def warm_series(self, name: str, make_event, count: int, interleave=None,
                    wrapper: list[str] | None = None, timeout: float = 15.0,
                    answers: list[dict] | None = None) -> dict:
        """One process, one cold invocation, then `count` warm ones. With `interleave`, the
        invocations run in `blocks` blocks and `interleave()` runs after each block (while
        the function waits on /next, as between invocations in Lambda). With `answers`, every
        response's body is appended to it, in order."""
        answers = [] if answers is None else answers
        log(f"{name}: 1 + {count} invocations in one process"
            + (f" under {wrapper[0]}" if wrapper else ""))
        self.check_time(f"{name} warm")
        api = RuntimeApi(name, self.runtime_api)
        proc = None
        phase_deadline = time.monotonic() + self.mode["phase_seconds"] * (20 if wrapper else 1)
        order: list[str] = []  # per invocation, in order: "first", "resumed" or "timed"
        latencies: list[float] = []
        sample_block: list[int] = []  # the block each timed invocation ran in
        resumed_ms: list[float] = []
        truncated = False
        try:
            first = api.submit(make_event())
            order.append("first")
            proc, t_start, log_path = self.start_function(name, api, wrapper)
            first_body = self.wait_for(first, proc, api, log_path, timeout=timeout * 4)
            answers.append(first_body)
            first_response_bytes = len(response_body(json.loads(first.body)).encode())
            memory_after_first = memory_kib(proc.pid)
            cpu_after_first = cpu_seconds(proc.pid)
            block = math.ceil(count / self.mode["blocks"]) if interleave else count
            # Each block's events are queued before the first is handed out, so the function
            # finds the next one waiting whenever it asks, as a busy function does, and this
            # process sleeps through the block instead of competing for the 2 cores.
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
                    order.append("resumed")
                    answers.append(self.wait_for(resumed, proc, api, log_path, timeout=timeout))
                    resumed_ms.append(ms(resumed.t_done - resumed.t_handed))
                size = min(count - i, block - i % block)
                invocations = api.submit_all([make_event() for _ in range(size)])
                order.extend(["timed"] * size)
                self.wait_for(invocations[-1], proc, api, log_path,
                              timeout=timeout + 0.05 * size * (50 if wrapper else 1))
                for invocation in invocations:
                    # Checks each response.
                    answers.append(self.wait_for(invocation, proc, api, log_path))
                    latencies.append(ms(invocation.t_done - invocation.t_handed))
                    sample_block.append(i // block if block else 0)
                    i += 1
            # Before the last raw block: the function is idle from here on.
            cpu_at_end = cpu_seconds(proc.pid)
            if interleave and not truncated:
                interleave()
            memory = memory_kib(proc.pid)
            if wrapper:
                # valgrind writes its output as the process ends on a signal, not on SIGKILL.
                proc.terminate()
                proc.wait(timeout=120)
            self.check_time(f"{name} warm")
        finally:
            if proc is not None:
                stop_process(proc)
            api.close()
        lines = emf_lines(log_path)
        aligned = len(lines) == len(order)
        timed = [spent_of(doc) for kind, doc in zip(order, lines) if kind == "timed"]
        # The function's own time: the invocation's latency less the time its store calls
        # took, as the function timed them (its metrics line).
        own = ([latency - sum(doc.get("DynamoDbCallLatency") or [])
                for latency, doc in zip(latencies, (d for k, d in zip(order, lines)
                                                     if k == "timed"))]
               if aligned else [])
        warm_invocations = len(order) - 1
        cpu = (cpu_at_end - cpu_after_first) / warm_invocations \
            if warm_invocations > 0 and cpu_at_end is not None and cpu_after_first is not None \
            else None
        return {
            "invocations": len(latencies),
            "truncated": truncated,
            "first_invocation": {"init_ms": ms(api.first_next_ns - t_start),
                                 "cold_total_ms": ms(first.t_done - t_start)},
            "latency_ms": summary(latencies),
            "own_ms": summary(own),
            "cpu_ms_per_invocation": cpu * 1e3 if cpu is not None else None,
            "log_per_request": log_volume(log_path) if not wrapper else None,
            "response_bytes": first_response_bytes,
            "untimed_after_each_pause_ms": resumed_ms,
            "dynamodb_per_request": per_request(timed) if aligned else None,
            "vm_hwm_kib": memory.get("VmHWM"),
            "vm_rss_kib": memory.get("VmRSS"),
            "vm_hwm_kib_after_first": memory_after_first.get("VmHWM"),
            "samples_ms": latencies,
            "sample_block": sample_block,
            "own_samples_ms": own,
            "_first_body": first_body,
            "_log": str(log_path),
        }

    # -- raw DynamoDB baseline ---------------------------------------------------------------

    def raw(self, *extra: str, crypto: str = "aws-lc-rs", endpoint: str | None = None,
            timeout: float = 600, wrapper: list[str] | None = None) -> dict:
        self.check_time("raw DynamoDB baseline")
        command = (wrapper or []) + [str(self.raw_bins[crypto]), *extra,
                                     "--endpoint", endpoint or self.tls_endpoint,
                                     "--clients-table", self.args.clients_table,
                                     "--payments-table", self.args.payments_table,
                                     "--audit-table", self.args.audit_table]
        proc = subprocess.Popen(command, env=self.base_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.home)
        LIVE_PROCESSES.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise BenchError(f"bench-raw-dynamodb {' '.join(extra)} timed out") from err
        finally:
            stop_process(proc)
        if proc.returncode != 0:
            raise BenchError(f"bench-raw-dynamodb {' '.join(extra)} failed "
                             f"({proc.returncode}): {stderr.decode(errors='replace')[:1000]}")
        return json.loads(stdout)

    def raw_warm(self, iterations: int, sequence: str, crypto: str = "aws-lc-rs",
                 endpoint: str | None = None) -> dict:
        return self.raw("warm", "--sequence", sequence, "--iterations", str(iterations),
                        "--max-seconds", str(self.mode["phase_seconds"]),
                        *self.raw_accounts(sequence, iterations), crypto=crypto,
                        endpoint=endpoint)

    def raw_accounts(self, sequence: str, rounds: int) -> list[str]:
        """For the sequence that adds keys, bench-raw-dynamodb's option that has its `rounds`
        rounds go on where the earlier ones stopped: NEW_KEYS_PER_ACCOUNT keys on each seeded
        account in turn, as create-key's requests fill the accounts they use."""
        if sequence != RAW_KEY_SEQUENCE:
            return []
        before = self.raw_key_rounds
        self.raw_key_rounds += rounds
        if self.raw_key_rounds > self.raw_key_accounts * NEW_KEYS_PER_ACCOUNT:
            raise BenchError(f"the raw {sequence} rounds need more than the "
                             f"{self.raw_key_accounts} seeded accounts")
        return ["--rounds-before", str(before)]

    # -- instructions ------------------------------------------------------------------------

    def callgrind(self, label: str) -> tuple[list[str], Path]:
        self.process_count += 1
        path = self.logs / f"callgrind-{label}-{self.process_count}.out"
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}",
                "--log-file=" + str(path.with_suffix(".log"))], path

    def instructions(self, name: str, make_event) -> dict:
        """Instructions of one process that serves 1 + n invocations, for the short and the
        long n: their difference over the difference in n is what one warm invocation
        executes, init and exit cancelling out. The short run's total is init, one cold
        invocation, n warm ones and the exit."""
        def run(n, wrapper):
            self.warm_series(name, make_event, n, wrapper=wrapper, timeout=120.0)
        return self.counted(name, run)

    def raw_instructions(self, sequence: str, crypto: str = "aws-lc-rs") -> dict:
        """The same for the raw calls: one process making 3 untimed rounds (the connection)
        then n timed ones."""
        def run(n, wrapper):
            log(f"raw {sequence} ({crypto}): {n} rounds under valgrind")
            self.raw("warm", "--sequence", sequence, "--iterations", str(n), crypto=crypto,
                     wrapper=wrapper, timeout=600)
        return self.counted(f"raw-{sequence}-{crypto}", run)

    def counted(self, label: str, run) -> dict:
        """The short and the long callgrind runs of `run`, with as many TLS handshakes each:
        under valgrind a process is slow enough that a connection is sometimes dropped and
        made again, and one handshake (a few million instructions) landing in one run and
        not the other would move the per-invocation figure by tens of thousands. Runs are
        repeated (at most three times) until the two made as many handshakes."""
        short, long = self.mode["callgrind"]
        for attempt in range(3):
            totals, files, handshakes = {}, {}, {}
            for n in (short, long):
                wrapper, path = self.callgrind(label)
                before = sum(self.tls.handshakes().values())
                run(n, wrapper)
                handshakes[n] = sum(self.tls.handshakes().values()) - before
                totals[n] = callgrind_total(path)
                files[str(n)] = str(path)
            if handshakes[short] == handshakes[long]:
                break
            log(f"{label}: {handshakes[short]} and {handshakes[long]} TLS handshakes in the "
                "short and long runs; counting again")
        return {"per_warm_invocation": (totals[long] - totals[short]) / (long - short),
                "process_total_short": totals[short],
                "runs": {str(k): v for k, v in totals.items()},
                "handshakes": {str(k): v for k, v in handshakes.items()},
                "attempts": attempt + 1, "files": files}

    # -- where the instructions go ---------------------------------------------------------

    def profile(self) -> str:
        """Per warm invocation, by function (inclusive and self), for create-payment, hello
        and the raw calls: the long callgrind run's counts minus the short run's."""
        self.raw_warm(self.mode["ddb_warmup"], "get-put")
        self.raw("seed", "--key-accounts", "1", timeout=120)
        first = self.warm_series("create-account", self.account_event, 0)["_first_body"]
        self.api_key = first.get("api_key")
        if not self.api_key:
            raise BenchError("create-account's 201 body had no api_key")
        sections = []
        for label, counts in (
            ("create-payment", self.instructions("create-payment", self.payment_event)),
            ("bench-hello-lambda", self.instructions("bench-hello-lambda",
                                                     self.payment_like_event)),
            ("raw payment", self.raw_instructions("payment")),
        ):
            short, long = self.mode["callgrind"]
            files = counts["files"]
            per = (long - short)
            inclusive = subtract_profiles(annotate(files[str(long)], True),
                                          annotate(files[str(short)], True), per)
            exclusive = subtract_profiles(annotate(files[str(long)], False),
                                          annotate(files[str(short)], False), per)
            sections.append(f"## {label}: {counts['per_warm_invocation']:,.0f} instructions per "
                            f"warm invocation\n\n### inclusive\n\n"
                            + profile_table(inclusive) + "\n\n### self\n\n"
                            + profile_table(exclusive))
        return "\n\n".join(sections) + "\n"

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        m = self.mode
        for command in self.commands.values():
            if not Path(command[-1]).exists():
                raise BenchError(f"{command[-1]} is missing (build first)")
        for binary in list(self.raw_bins.values()) + [self.runtime_api]:
            if not binary.exists():
                raise BenchError(f"{binary} is missing (build first)")
        if self.node is None:
            raise BenchError("node is not on PATH (the peer runs on Node.js 20)")
        load_before = os.getloadavg()

        log(f"DynamoDB Local (JIT) warm-up: {m['ddb_warmup']} raw rounds through TLS, discarded")
        self.raw_warm(m["ddb_warmup"], "get-put")
        per_block = max(1, math.ceil(m["raw_warm"] / m["blocks"]))
        # The items the raw read sequences read, and the accounts the raw key sequence adds
        # keys to (its cold samples' and warm blocks' rounds, NEW_KEYS_PER_ACCOUNT on each),
        # written once before anything is timed.
        self.raw_key_accounts = math.ceil((m["cold"] + m["blocks"] * per_block)
                                          / NEW_KEYS_PER_ACCOUNT)
        self.raw("seed", "--key-accounts", str(self.raw_key_accounts), timeout=120)
        raw_blocks: dict[str, list[dict]] = {}

        def interleave_for(name, crypto="aws-lc-rs"):
            def run_block():
                endpoint = self.plain_endpoint if name == PLAIN else None
                raw_blocks.setdefault(name, []).append(
                    self.raw_warm(per_block, RAW_WARM[name], crypto, endpoint))
            return run_block

        warm: dict[str, dict] = {}
        warm["bench-hello-lambda"] = self.warm_series("bench-hello-lambda",
                                                      self.payment_like_event, m["warm"])
        log(f"warm runs alternate {m['blocks']} blocks of invocations with {m['blocks']} blocks "
            f"of {per_block} raw DynamoDB rounds")
        accounts: list[dict] = []
        warm["create-account"] = self.warm_series("create-account", self.account_event, m["warm"],
                                                  interleave=interleave_for("create-account"),
                                                  answers=accounts)
        self.api_key = warm["create-account"]["_first_body"].get("api_key")
        if not self.api_key:
            raise BenchError("create-account's 201 body had no api_key")
        self.fill_key_slots(accounts[1:])
        # Untimed: the account's first payments, so that the read functions' cold starts
        # find a payment to read and a full default page (10, and one more) to list.
        log(f"create-payment: {DEFAULT_PAGE + 1} untimed payments for the read functions")
        seeded = self.warm_series("create-payment", self.payment_event, DEFAULT_PAGE)
        self.read_payment_id = seeded["_first_body"].get("id")
        if not self.read_payment_id:
            raise BenchError("create-payment's 201 body had no id")
        self.check_peer_matches()

        makers = {"bench-hello-lambda": self.payment_like_event,
                  "create-account": self.account_event, "create-payment": self.payment_event,
                  "get-payment": self.get_payment_event,
                  "list-payments": self.list_payments_event,
                  "create-key": self.create_key_event,
                  PEER: self.payment_event, RING: self.payment_event, PLAIN: self.payment_event}
        raw_jobs = [("get-put", "aws-lc-rs", "get-put"), ("transact", "aws-lc-rs", "transact"),
                    ("get-get", "aws-lc-rs", "get-get"), ("get-query", "aws-lc-rs", "get-query"),
                    (RAW_KEY_SEQUENCE, "aws-lc-rs", RAW_KEY_SEQUENCE),
                    ("get-put ring", "ring", "get-put"),
                    ("get-put plain", "aws-lc-rs", "get-put")]
        cold, raw_cold = self.cold_rounds(m["cold"], makers, raw_jobs)
        # The cold rounds start hundreds of processes, each with its own connections and
        # writes; for several seconds after them DynamoDB Local's JVM (its collector and
        # compiler) and the kernel still take CPU, and whichever warm series ran first took
        # the tail (BENCHMARKS.md, The tail target). The same untimed raw rounds as the
        # warm-up let that pass before any warm series, whichever runs first.
        log(f"DynamoDB Local settles after the cold rounds: {m['ddb_warmup']} raw rounds, "
            f"discarded")
        self.raw_warm(m["ddb_warmup"], "get-put")
        for name in ("create-payment", PEER, RING, PLAIN, "get-payment", "list-payments",
                     "create-key"):
            crypto = "ring" if name == RING else "aws-lc-rs"
            warm[name] = self.warm_series(name, makers[name], m["warm"],
                                          interleave=interleave_for(name, crypto))
        page = warm["list-payments"]["_first_body"].get("data")
        if not isinstance(page, list) or len(page) != DEFAULT_PAGE or \
                warm["list-payments"]["_first_body"].get("has_more") is not True:
            raise BenchError(f"list-payments' first page was not {DEFAULT_PAGE} payments with "
                             f"has_more: {str(warm['list-payments']['_first_body'])[:300]}")
        if warm["get-payment"]["_first_body"].get("id") != self.read_payment_id:
            raise BenchError("get-payment did not answer with the payment asked for")
        new_key = warm["create-key"]["_first_body"]
        if not str(new_key.get("id", "")).startswith("key_") \
                or not str(new_key.get("api_key", "")).startswith("rk_test_") \
                or new_key.get("permissions") != ["payments:read"]:
            raise BenchError("create-key's 201 body was not a restricted key with "
                             f"payments:read and its secret: {str(new_key)[:300]}")
        load_after = os.getloadavg()

        variants = m.get("callgrind_variants", True)
        log("instructions (callgrind): create-payment, hello-world, raw calls"
            + (", and the ring and plain builds" if variants else ""))
        instructions = {
            "create-payment": self.instructions("create-payment", self.payment_event),
            "bench-hello-lambda": self.instructions("bench-hello-lambda",
                                                    self.payment_like_event),
            "raw payment": self.raw_instructions("payment"),
        }
        if variants:
            instructions.update({
                RING: self.instructions(RING, self.payment_event),
                PLAIN: self.instructions(PLAIN, self.payment_event),
                "raw payment ring": self.raw_instructions("payment", "ring"),
            })

        subjects = {}
        for name in ("bench-hello-lambda",) + FUNCTIONS + (PEER, RING, PLAIN):
            w = warm.get(name)
            c = cold[name]
            subjects[name] = {
                "cold": c,
                **({"warm": strip_private(w)} if w else {}),
                "peak_rss_kib": max([c["vm_hwm_kib_max"]] + ([w["vm_hwm_kib"] or 0] if w else [])),
            }
        raw_warm = {name: raw_block_stats(blocks) for name, blocks in raw_blocks.items()}
        results = {
            "mode": self.args.mode,
            "build_profile": self.args.profile,
            "bin_dir": str(self.bin),
            "generated": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "load_average_before": load_before,
                     "load_average_after": load_after, "machine": os.uname().machine,
                     "node": subprocess.run([self.node, "--version"], capture_output=True,
                                            text=True).stdout.strip()},
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in m.items()},
            "subjects": subjects,
            "raw": {"cold": raw_cold, "warm": raw_warm},
            "instructions": instructions,
            "tls_handshakes": self.tls.handshakes(),
            "artifacts": self.artifact_sizes(),
            "items": self.item_sizes(),
        }
        results["duration_s"] = time.monotonic() - self.started
        # The measurements, before anything is computed from them (`--report-only` renders
        # the report again from this file).
        (self.out / "measurements.json").write_text(json.dumps(results))
        return results

    def item_sizes(self) -> dict:
        """The sizes of the items this run wrote, read back from DynamoDB Local and sized by
        DynamoDB's rules (the cost section computes request units from them)."""
        tables = {"clients": self.args.clients_table, "payments": self.args.payments_table,
                  "audit": self.args.audit_table}
        sizes: dict[str, list[int]] = {}
        account_sizes: dict[int, list[int]] = {}
        for table_kind, table in tables.items():
            for item in scan_table(self.plain_endpoint, table, self.deadline):
                kind = item_kind(table_kind, item)
                size = item_size(item)
                sizes.setdefault(kind, []).append(size)
                if kind == "account":
                    keys = len(item.get("keys", {}).get("M", {}))
                    account_sizes.setdefault(keys, []).append(size)
        # Medians: a few items of other shapes (the parity check's payments with long
        # descriptions, the raw baseline's seeds) share the tables.
        return {"by_kind": {kind: {"n": len(v), "median": statistics.median(v), "min": min(v),
                                   "max": max(v)} for kind, v in sorted(sizes.items())},
                "account_by_keys": {str(k): statistics.median(v)
                                    for k, v in sorted(account_sizes.items())}}

    def fill_key_slots(self, accounts: list[dict]) -> None:
        """The accounts create-key adds keys to: those of create-account's warm run but the
        first (whose key the payment functions use), NEW_KEYS_PER_ACCOUNT keys each, one
        account after another; enough for every cold start and warm invocation of the run."""
        keys = [body.get("api_key") for body in accounts]
        if not all(isinstance(key, str) and key.startswith("sk_test_") for key in keys):
            raise BenchError("a create-account 201 body had no secret api_key")
        self.key_slots = [key for key in keys for _ in range(NEW_KEYS_PER_ACCOUNT)]
        # Cold starts, then one process: its first invocation, the timed ones, and one
        # untimed after each pause but the last.
        needed = self.mode["cold"] + 1 + self.mode["warm"] + self.mode["blocks"] - 1
        log(f"create-key: {len(keys)} accounts of create-account's warm run, room for "
            f"{len(self.key_slots)} keys ({needed} needed)")
        if len(self.key_slots) < needed:
            raise BenchError(f"create-key needs room for {needed} keys; create-account's "
                             f"{len(keys)} accounts have room for {len(self.key_slots)}")

    def check_peer_matches(self) -> None:
        """The peer answers a payment as create-payment does: same status, same fields."""
        rust = self.warm_series("create-payment", self.payment_event, 0)["_first_body"]
        node = self.warm_series(PEER, self.payment_event, 0)["_first_body"]
        if sorted(rust) != sorted(node):
            raise BenchError(f"the peer's 201 has fields {sorted(node)}, create-payment's "
                             f"{sorted(rust)}")

    def payment_like_event(self) -> dict:
        return self.api_event("POST /payments",
                              {"amount": 1250, "currency": "USD"},
                              {"x-api-key": "sk_test_hello", "idempotency-key": str(uuid.uuid4())})

    # -- artifacts ---------------------------------------------------------------------------

    def artifact_sizes(self) -> dict:
        """The arm64 zips scripts/package.sh made (`.aws-sam/artifacts/sizes.txt`), the ring
        build's and the peer's (scripts/bench.sh), when present."""
        result: dict = {}
        names = {"CreateAccountFunction": "create-account",
                 "CreatePaymentFunction": "create-payment", "GetPaymentFunction": "get-payment",
                 "ListPaymentsFunction": "list-payments", "CreateKeyFunction": "create-key"}
        sizes = self.repo / ".aws-sam" / "artifacts" / "sizes.txt"
        pattern = re.compile(r"^(\S+)\s+bootstrap\s+(\d+)\s+bytes\s+zipped\s+(\d+)\s+bytes")
        if sizes.exists():
            for line in sizes.read_text().splitlines():
                match = pattern.match(line.strip())
                if match and match.group(1) in names:
                    result[names[match.group(1)]] = {"binary_bytes": int(match.group(2)),
                                                     "zipped_bytes": int(match.group(3))}
            result["sizes_txt_written"] = datetime.datetime.fromtimestamp(
                sizes.stat().st_mtime).isoformat(timespec="seconds")
        extra = self.out / "zips" / "sizes.txt"
        if extra.exists():
            for line in extra.read_text().splitlines():
                name, _, size = line.partition(" ")
                if size.strip().isdigit():
                    result[name] = {"zipped_bytes": int(size)}
        return result


def cold_summary(samples: list[dict]) -> dict:
    spent = [s["dynamodb"] for s in samples if s["dynamodb"]]
    return {
        "samples": samples,
        "init_ms": summary([s["init_ms"] for s in samples]),
        "cold_total_ms": summary([s["cold_total_ms"] for s in samples]),
        "first_invoke_ms": summary([s["first_invoke_ms"] for s in samples]),
        "vm_hwm_kib_max": max((s["vm_hwm_kib"] or 0) for s in samples),
        "init_dynamodb": ({"ops": spent[0]["outside_ops"],
                           "read_units": spent[0]["outside_read_units"],
                           "write_units": spent[0]["outside_write_units"]} if spent else None),
    }


def raw_cold_summary(samples: list[dict]) -> dict:
    return {
        "samples": samples,
        "total_ms": summary([s["total_ms"] for s in samples]),
        "client_build_ms": summary([s["client_build_ms"] for s in samples]),
        "calls_ms": {name: summary([s["calls"][name] for s in samples])
                     for name in samples[0]["calls"]},
    }


def per_request(spent: list[dict | None]) -> dict | None:
    """Attempts and capacity per request over a series, from the metrics lines."""
    if not spent or any(s is None for s in spent):
        return None
    n = len(spent)
    attempts = [len(s["ops"]) for s in spent]
    ops = Counter()
    for s in spent:
        ops.update(s["ops"])
    return {"attempts_mean": sum(attempts) / n, "attempts_max": max(attempts),
            "attempts_min": min(attempts),
            "by_operation_mean": {op: v / n for op, v in sorted(ops.items())},
            "read_units_mean": sum(s["read_units"] for s in spent) / n,
            "write_units_mean": sum(s["write_units"] for s in spent) / n,
            "outside_write_units_mean": sum(s["outside_write_units"] for s in spent) / n,
            "outside_requests": dict(sum((Counter(s["outside_ops"]) for s in spent), Counter()))}


def raw_block_stats(blocks: list[dict]) -> dict:
    """A raw sequence's warm rounds over its blocks: each call and the sum per round."""
    calls = [k for k in ("get_item_ms", "get_account_ms", "put_item_ms", "get_payment_ms",
                         "query_ms", "transact_write_items_ms") if blocks[0].get(k)]
    pooled = {k: [x for b in blocks for x in b[k]] for k in calls}
    rounds = [sum(v) for v in zip(*(pooled[k] for k in calls))]
    n = sum(b["iterations"] for b in blocks)
    attempts = Counter()
    read_units = write_units = 0.0
    for b in blocks:
        attempts.update(b["dynamodb"]["attempts"])
        read_units += b["dynamodb"]["read_units"]
        write_units += b["dynamodb"]["write_units"]
    return {
        "iterations": n,
        "blocks": len(blocks),
        "truncated": any(b["truncated"] for b in blocks),
        **{k: summary(v) for k, v in pooled.items()},
        "round_ms": summary(rounds),
        "round_p50_by_block_ms": [percentile([sum(v) for v in zip(*(b[k] for k in calls))], 50)
                                  for b in blocks],
        "dynamodb_per_round": {"attempts": {op: v / n for op, v in attempts.items()},
                               "read_units": read_units / n, "write_units": write_units / n},
        "_round_samples_ms": rounds,
        # Per block, for the per-block ratios and the bootstrap (verdicts).
        "round_samples_by_block_ms": [[sum(v) for v in zip(*(b[k] for k in calls))]
                                      for b in blocks],
        "_transact_samples_ms": pooled.get("transact_write_items_ms", []),
    }


def strip_private(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}


# --------------------------------------------------------------------------------------------
# Targets and report

RAW_COLD_LABEL = {"create-account": "transact", "create-payment": "get-put",
                  "get-payment": "get-get", "list-payments": "get-query",
                  "create-key": RAW_KEY_SEQUENCE, PEER: "get-put", RING: "get-put ring",
                  PLAIN: "get-put plain"}


def cold_baseline(r: dict, name: str) -> float:
    """hello-world's cold total + the raw calls the request needs on a fresh client."""
    return (r["subjects"]["bench-hello-lambda"]["cold"]["cold_total_ms"]["p50"]
            + r["raw"]["cold"][RAW_COLD_LABEL[name]]["total_ms"]["p50"])


def warm_baseline(r: dict, name: str, q: str) -> float:
    stats = r["raw"]["warm"][name]
    return stats["round_ms"][q]


def block_samples(warm: dict, blocks: int, key: str = "samples_ms") -> list[list[float]]:
    """A warm series' timed samples, block by block (measurements from before blocks were
    stored: the blocks were equal and in order)."""
    samples = warm.get(key) or []
    index = warm.get("sample_block")
    if not index or len(index) != len(samples):
        size = math.ceil(len(samples) / blocks) if samples else 1
        index = [i // size for i in range(len(samples))]
    grouped: list[list[float]] = [[] for _ in range(max(index, default=-1) + 1)]
    for block, value in zip(index, samples):
        grouped[block].append(value)
    return grouped


def raw_block_samples(stats: dict, blocks: int) -> list[list[float]]:
    by_block = stats.get("round_samples_by_block_ms")
    if by_block:
        return by_block
    pooled = stats.get("_round_samples_ms") or []
    size = math.ceil(len(pooled) / blocks) if pooled else 1
    return [pooled[i:i + size] for i in range(0, len(pooled), size)]


# What each latency target is judged on, and why that estimate (BENCHMARKS.md, Verdicts).
JUDGED_ON = {
    "cold": "median of the per-round ratios",
    "p50": "median of the per-block ratios",
    "p99": "ratio of the pooled p99s",
}


def latency_verdicts(r: dict) -> dict:
    """Every latency ratio with its spread, and the verdicts of the targets that have one."""
    s, raw = r["subjects"], r["raw"]
    blocks = r["settings"]["blocks"]
    hello = [x["cold_total_ms"] for x in s["bench-hello-lambda"]["cold"]["samples"]]
    cold = {}
    for name, label in RAW_COLD_LABEL.items():
        if name in s and label in raw["cold"]:
            cold[name] = cold_ratio_estimates(
                [x["cold_total_ms"] for x in s[name]["cold"]["samples"]], hello,
                [x["total_ms"] for x in raw["cold"][label]["samples"]])
    warm = {}
    for name, stats in raw["warm"].items():
        if s.get(name, {}).get("warm"):
            warm[name] = warm_ratio_estimates(block_samples(s[name]["warm"], blocks),
                                              raw_block_samples(stats, blocks))
    enough = blocks >= MIN_BLOCKS

    def judged(target, subject, limit, value, ci, low, high, also=""):
        passed = value <= limit if enough else None
        clear = ci is not None and (ci[1] <= limit if passed else ci[0] > limit)
        return {"target": target, "subject": subject, "limit": limit, "value": value,
                "ci": ci, "range": [low, high], "pass": passed, "clear": clear, "also": also}

    judgements = []
    for name in WRITE_FUNCTIONS:
        c = cold[name]
        judgements.append(judged("cold total", name, TARGET_COLD_RATIO, c["per_round"]["median"],
                                 c["median_ci"], c["per_round"]["min"], c["per_round"]["max"],
                                 f"ratio of the p50s {c['of_p50s']:.2f}x"))
    w = warm["create-payment"]
    judgements.append(judged("warm p50", "create-payment", TARGET_WARM_RATIO,
                             w["p50"]["per_block"]["median"], w["p50"]["per_block_median_ci"],
                             w["p50"]["per_block"]["min"], w["p50"]["per_block"]["max"],
                             "ratio of the pooled p50s " + ratio_ci_text(w["p50"]["pooled"],
                                                                         w["p50"]["pooled_ci"])))
    judgements.append(judged("warm p99", "create-payment", TARGET_TAIL_RATIO,
                             w["p99"]["pooled"], w["p99"]["pooled_ci"],
                             w["p99"]["per_block"]["min"], w["p99"]["per_block"]["max"],
                             "median of the per-block ratios "
                             f"{w['p99']['per_block']['median']:.2f}x"))
    return {"cold": cold, "warm": warm, "judged": judgements, "enough_blocks": enough,
            "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED,
                          "confidence": CONFIDENCE}}


def ratio_ci_text(value: float, ci: list[float] | None) -> str:
    if ci is None or any(math.isnan(x) for x in ci):
        return f"{value:.2f}x"
    return f"{value:.2f}x [{ci[0]:.2f}, {ci[1]:.2f}]"


def evaluate(r: dict) -> list[dict]:
    s = r["subjects"]
    f = {n: s[n] for n in FUNCTIONS}
    hello = s["bench-hello-lambda"]
    verdicts = r["verdicts"]
    judged_by = {(v["target"], v["subject"]): v for v in verdicts["judged"]}
    rows = []

    def row(metric, unit, values, baselines, target, passed, note="", ratio_text=None):
        rows.append({"metric": metric, "unit": unit, "values": values,
                     "baselines": baselines, "target": target, "pass": passed, "note": note,
                     "ratio_text": ratio_text})

    def judged(kind):
        return [n for n in f if n in WRITE_FUNCTIONS or kind in READ_TARGETS]

    cold_base = {n: cold_baseline(r, n) for n in f}
    cold_ratios = {n: verdicts["cold"][n]["per_round"] for n in f}
    row("Cold total p50 (start -> first response)", "ms",
        {n: f[n]["cold"]["cold_total_ms"]["p50"] for n in f}, cold_base,
        f"<= {TARGET_COLD_RATIO} x baseline, {JUDGED_ON['cold']}",
        {n: judged_by[("cold total", n)]["pass"] for n in judged("cold")},
        "baseline = hello cold total p50 + the raw calls on a fresh client p50, through TLS "
        "(account: TransactWriteItems; payment: GetItem + PutItem; get: GetItem + GetItem; "
        "list: GetItem + Query; key: GetItem + GetItem + TransactWriteItems); ratio = the "
        "median of the per-round ratios (the subject's cold total over hello's plus the raw "
        "calls' of the same round) and their range",
        {n: f"{c['median']:.2f}x ({c['min']:.2f}–{c['max']:.2f})" for n, c in cold_ratios.items()})
    row("Init duration p50 (start -> first /next)", "ms",
        {n: f[n]["cold"]["init_ms"]["p50"] for n in f},
        {n: hello["cold"]["init_ms"]["p50"] for n in f}, "info", None, "baseline = hello init")
    warm_base = {n: warm_baseline(r, n, "p50") for n in f}
    for q in ("p50", "p90", "p99"):
        target, passed, ratio_text = "info", None, None
        w = verdicts["warm"]
        if q == "p50":
            target = f"payment <= {TARGET_WARM_RATIO} x baseline, {JUDGED_ON['p50']}"
            passed = {"create-payment": judged_by[("warm p50", "create-payment")]["pass"]}
            ratio_text = {n: f"{w[n]['p50']['per_block']['median']:.2f}x "
                             f"({w[n]['p50']['per_block']['min']:.2f}–"
                             f"{w[n]['p50']['per_block']['max']:.2f})" for n in f}
        if q == "p99":
            target = f"payment <= {TARGET_TAIL_RATIO} x baseline, {JUDGED_ON['p99']}"
            passed = {"create-payment": judged_by[("warm p99", "create-payment")]["pass"]}
            ratio_text = {n: ratio_ci_text(w[n]["p99"]["pooled"], w[n]["p99"]["pooled_ci"])
                          for n in f}
        row(f"Warm latency {q}", "ms", {n: f[n]["warm"]["latency_ms"][q] for n in f},
            {n: warm_baseline(r, n, q) for n in f}, target, passed,
            "baseline = the raw calls warm, in blocks alternating with the function's own "
            "(account: TransactWriteItems; payment: GetItem + PutItem; get: GetItem + "
            "consistent GetItem; list: GetItem + Query, Limit 11; key: GetItem + consistent "
            "GetItem of the account + TransactWriteItems of its update and 3 puts); ratio: "
            "p50, the median of the per-block ratios and their range; p99, the ratio of the "
            f"pooled p99s with its {CONFIDENCE}% bootstrap interval",
            ratio_text)
    hello_warm = hello["warm"]["latency_ms"]["p50"]
    row("Warm latency p50 vs baseline + runtime round trip", "ms",
        {n: f[n]["warm"]["latency_ms"]["p50"] for n in f},
        {n: warm_base[n] + hello_warm for n in f}, "info", None,
        "baseline = raw warm p50 + hello warm p50 (the Lambda runtime's own round trip to the "
        "Runtime API, which the function's latency includes and the raw calls do not)")
    row("Warm p99 / p50", "x",
        {n: f[n]["warm"]["latency_ms"]["p99"] / f[n]["warm"]["latency_ms"]["p50"] for n in f},
        {n: warm_baseline(r, n, "p99") / warm_baseline(r, n, "p50") for n in f}, "info", None,
        "baseline = the raw calls' own p99/p50")
    per = {n: f[n]["warm"]["dynamodb_per_request"] for n in f}
    if all(per.values()):
        row("DynamoDB attempts per request (max)", "calls",
            {n: per[n]["attempts_max"] for n in f},
            {n: sum(r["raw"]["warm"][n]["dynamodb_per_round"]["attempts"].values()) for n in f},
            f"<= {TARGET_PAYMENT_CALLS} (key: <= {TARGET_CALLS['create-key']}); payment, get, "
            "key: no Scan/Query; list: no Scan",
            {n: per[n]["attempts_max"] <= TARGET_CALLS[n]
             and not any(op in per[n]["by_operation_mean"] for op in REFUSED_OPS[n])
             for n in REFUSED_OPS if n in judged("calls")},
            "from each request's metrics line (the client's interceptor counts every attempt "
            "sent); baseline = the raw calls per round")
        row("Capacity per request (mean)", "units",
            {n: units_text(per[n]["read_units_mean"], per[n]["write_units_mean"]) for n in f},
            {n: units_text(r["raw"]["warm"][n]["dynamodb_per_round"]["read_units"],
                           r["raw"]["warm"][n]["dynamodb_per_round"]["write_units"]) for n in f},
            "info", None, "as DynamoDB Local reports it (ReturnConsumedCapacity=TOTAL); "
            "baseline = the raw calls' per round")
        row("Background writes per request (mean)", "WCU",
            {n: per[n].get("outside_write_units_mean", 0.0) for n in f},
            {n: 0.0 for n in f}, "info", None,
            "off the request path: rate limit claims (DEFAULT_RATE_LIMIT=5000 here: two "
            "when the traffic starts, then one a lease) and key-use records; "
            "by operation: " + "; ".join(f"{n} {per[n]['outside_requests']}" for n in f))
    init = {n: f[n]["cold"]["init_dynamodb"] for n in f}
    if all(init.values()):
        row("DynamoDB during init (warm-up)", "units",
            {n: "+".join(init[n]["ops"]) + " " + units_text(init[n]["read_units"],
                                                           init[n]["write_units"]) for n in f},
            {n: "0" for n in f}, "info", None,
            "the first request's metrics line reports the calls made before it")
    zips = r["artifacts"]
    if any(n in zips for n in f):
        # A function without a zip (sizes.txt from before it existed) shows none, unjudged.
        row("Zipped arm64 artifact", "MB",
            {n: zips[n]["zipped_bytes"] / MB if n in zips else None for n in f},
            {n: TARGET_ZIP_BYTES / MB for n in f}, "<= 3 MB",
            {n: zips[n]["zipped_bytes"] <= TARGET_ZIP_BYTES for n in judged("zip")
             if n in zips},
            f"scripts/package.sh's sizes.txt (written {zips.get('sizes_txt_written')}; "
            "create-key: zipped by scripts/bench.sh from sam build's bootstrap where "
            "sizes.txt lacks it)")
    row("Peak RSS (VmHWM)", "MB", {n: f[n]["peak_rss_kib"] * 1024 / MB for n in f},
        {n: hello["peak_rss_kib"] * 1024 / MB for n in f}, "<= 24 MB",
        {n: f[n]["peak_rss_kib"] * 1024 <= TARGET_RSS_BYTES for n in judged("rss")},
        "baseline = hello")
    return rows


def units_text(read: float, write: float) -> str:
    parts = [f"{read:g} RCU" if read else "", f"{write:g} WCU" if write else ""]
    return " + ".join(p for p in parts if p) or "0"


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
              "list-payments": "list", "create-key": "key"}


def target_table(r: dict, names: tuple[str, ...]) -> list[str]:
    short = " / ".join(SHORT_NAME[n] for n in names)
    lines = [f"| Metric | {' | '.join(names)} | Baseline ({short}) "
             f"| Ratio to baseline ({short}) | Target | Pass/fail |",
             "|---" * (len(names) + 5) + "|"]
    for row in r["targets"]:
        unit = row["unit"]
        values = [fmt(row["values"][n], unit) for n in names]
        bases = [row["baselines"][n] for n in names]
        base_text = fmt(bases[0], unit) if all(b == bases[0] for b in bases) else \
            " / ".join(fmt(b, unit) for b in bases)
        ratios = []
        for n in names:
            b, v = row["baselines"][n], row["values"][n]
            numeric = isinstance(v, (int, float)) and isinstance(b, (int, float))
            if row.get("ratio_text") and n in row["ratio_text"]:
                ratios.append(row["ratio_text"][n])
            else:
                ratios.append(f"{v / b:.2f}x" if numeric and b else "—")
        judged = {n: ok for n, ok in (row["pass"] or {}).items() if n in names}
        verdict = " / ".join(f"{SHORT_NAME[n]}: "
                             f"{'PASS' if ok else 'FAIL' if ok is not None else 'unjudged'}"
                             for n, ok in judged.items()) or "info"
        target = row["target"] if judged else "info"
        unit_text = "" if unit in ("x", "calls", "units") else f" ({unit})"
        lines.append(f"| {row['metric']}{unit_text} | {' | '.join(values)} | {base_text} | "
                     f"{' / '.join(ratios)} | {target} | {verdict} |")
    return lines


def side_by_side(title: str, columns: list[str], rows: list[tuple[str, list, str]]) -> list[str]:
    """A table of one metric per row across `columns`; the last column is the ratio text."""
    lines = [title, "", "| | " + " | ".join(columns) + " | ratio |",
             "|---" * (len(columns) + 2) + "|"]
    for label, values, ratio in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else ("—" if v is None else str(v))
                 for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
    return lines + [""]


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
        and b else "—"


def millions(count) -> float | None:
    return count / 1e6 if isinstance(count, (int, float)) else None


def markdown(r: dict) -> str:
    s, raw, ins = r["subjects"], r["raw"], r["instructions"]
    zips = r["artifacts"]
    lines = [
        f"# Benchmark results ({r['mode']} run, {r['build_profile']} build, {r['generated']})",
        "",
        f"Binaries: the {r['build_profile']} build ({r['bin_dir']}), {r['host']['machine']}; "
        f"DynamoDB Local behind TLS on loopback; Node.js {r['host']['node']} for the peer.",
        "",
        *target_table(r, WRITE_FUNCTIONS),
        "",
        "Read functions (get-payment: `GET /payments/{id}`; list-payments: `GET /payments?limit="
        f"{DEFAULT_PAGE}`); targets that hold for them: {', '.join(READ_TARGETS)}:",
        "",
        *target_table(r, READ_FUNCTIONS),
        "",
        "Key functions (create-key: `POST /keys`, a restricted key with `payments:read`, on "
        f"accounts with room for it, {NEW_KEYS_PER_ACCOUNT} keys each after their first); "
        f"targets that hold for them: {', '.join(READ_TARGETS)}:",
        "",
        *target_table(r, KEY_FUNCTIONS),
        "",
        "Baselines: " + "; ".join(f"*{row['metric']}*: {row['note']}"
                                  for row in r["targets"] if row["note"]),
        "",
    ]
    lines += verdict_section(r)
    lines += own_time_section(r)
    p, n = s["create-payment"], s[PEER]

    def q(subject, path):
        value = subject
        for key in path:
            value = value[key]
        return value

    peer_rows = []
    for label, path in (("cold total p50 (ms)", ("cold", "cold_total_ms", "p50")),
                        ("init p50 (ms)", ("cold", "init_ms", "p50")),
                        ("first invocation p50 (ms)", ("cold", "first_invoke_ms", "p50")),
                        ("warm p50 (ms)", ("warm", "latency_ms", "p50")),
                        ("warm p99 (ms)", ("warm", "latency_ms", "p99"))):
        peer_rows.append((label, [q(p, path), q(n, path)], ratio(q(n, path), q(p, path))))
    peer_rows.append(("peak RSS (MB)", [p["peak_rss_kib"] * 1024 / MB,
                                        n["peak_rss_kib"] * 1024 / MB],
                      ratio(n["peak_rss_kib"], p["peak_rss_kib"])))
    rust_zip = zips.get("create-payment", {}).get("zipped_bytes")
    for label, key in (("zip, SDK bundled (MB)", "node-peer-bundled"),
                       ("zip, handler only (MB; the runtime's SDK)", "node-peer-handler-only")):
        node_zip = zips.get(key, {}).get("zipped_bytes")
        peer_rows.append((label, [rust_zip / MB if rust_zip else None,
                                  node_zip / MB if node_zip else None], ratio(node_zip, rust_zip)))
    raw_p = raw["warm"]["create-payment"]["round_ms"]
    raw_n = raw["warm"][PEER]["round_ms"]
    peer_rows.append(("warm p50 / its raw calls' p50", [p["warm"]["latency_ms"]["p50"] / raw_p["p50"],
                                                        n["warm"]["latency_ms"]["p50"] / raw_n["p50"]],
                      ""))
    lines += side_by_side("## The peer: create-payment on Node.js 20, AWS SDK for JavaScript v3",
                          ["create-payment (Rust)", "node-peer"], peer_rows)

    g = s[RING]
    crypto_rows = []
    for label, path in (("init p50 (ms)", ("cold", "init_ms", "p50")),
                        ("cold total p50 (ms)", ("cold", "cold_total_ms", "p50")),
                        ("warm p50 (ms)", ("warm", "latency_ms", "p50")),
                        ("warm p99 (ms)", ("warm", "latency_ms", "p99"))):
        crypto_rows.append((label, [q(p, path), q(g, path)], ratio(q(g, path), q(p, path))))
    crypto_rows.append(("raw GetItem + PutItem on a fresh client p50 (ms)",
                        [raw["cold"]["get-put"]["total_ms"]["p50"],
                         raw["cold"]["get-put ring"]["total_ms"]["p50"]],
                        ratio(raw["cold"]["get-put ring"]["total_ms"]["p50"],
                              raw["cold"]["get-put"]["total_ms"]["p50"])))
    for label, key in (("instructions per warm invocation (M)", "per_warm_invocation"),
                       (f"instructions, init + {r['settings']['callgrind'][0] + 1} invocations (M)",
                        "process_total_short")):
        a, b = ins["create-payment"][key], ins.get(RING, {}).get(key)
        crypto_rows.append((label, [millions(a), millions(b)], ratio(b, a)))
    ring_zip = zips.get(RING, {}).get("zipped_bytes")
    crypto_rows.append(("zipped arm64 artifact (MB)", [rust_zip / MB if rust_zip else None,
                                                       ring_zip / MB if ring_zip else None],
                        ratio(ring_zip, rust_zip)))
    crypto_rows.append(("peak RSS (MB)", [p["peak_rss_kib"] * 1024 / MB,
                                          g["peak_rss_kib"] * 1024 / MB],
                        ratio(g["peak_rss_kib"], p["peak_rss_kib"])))
    lines += side_by_side("## TLS crypto: create-payment with aws-lc-rs (default) and ring",
                          ["aws-lc-rs", "ring"], crypto_rows)

    t = s[PLAIN]
    init_tls, init_plain = p["cold"]["init_ms"]["p50"], t["cold"]["init_ms"]["p50"]
    first_tls, first_plain = p["cold"]["first_invoke_ms"]["p50"], t["cold"]["first_invoke_ms"]["p50"]
    tls_rows = [
        ("init p50 (ms)", [init_tls, init_plain], ratio(init_tls, init_plain)),
        ("first invocation p50 (ms)", [first_tls, first_plain], ratio(first_tls, first_plain)),
        ("cold total p50 (ms)", [p["cold"]["cold_total_ms"]["p50"],
                                 t["cold"]["cold_total_ms"]["p50"]],
         ratio(p["cold"]["cold_total_ms"]["p50"], t["cold"]["cold_total_ms"]["p50"])),
        ("raw fresh client GetItem + PutItem p50 (ms)",
         [raw["cold"]["get-put"]["total_ms"]["p50"], raw["cold"]["get-put plain"]["total_ms"]["p50"]],
         ratio(raw["cold"]["get-put"]["total_ms"]["p50"],
               raw["cold"]["get-put plain"]["total_ms"]["p50"])),
        ("raw fresh client: first GetItem p50 (ms)",
         [raw["cold"]["get-put"]["calls_ms"]["get_item_ms"]["p50"],
          raw["cold"]["get-put plain"]["calls_ms"]["get_item_ms"]["p50"]], ""),
        (f"instructions, init + {r['settings']['callgrind'][0] + 1} invocations (M)",
         [millions(ins["create-payment"]["process_total_short"]),
          millions(ins.get(PLAIN, {}).get("process_total_short"))],
         ratio(ins["create-payment"]["process_total_short"],
               ins.get(PLAIN, {}).get("process_total_short"))),
        ("instructions per warm invocation (M)",
         [millions(ins["create-payment"]["per_warm_invocation"]),
          millions(ins.get(PLAIN, {}).get("per_warm_invocation"))],
         ratio(ins["create-payment"]["per_warm_invocation"],
               ins.get(PLAIN, {}).get("per_warm_invocation"))),
    ]
    lines += side_by_side("## TLS: create-payment through TLS and in plain HTTP", ["TLS", "plain"],
                          tls_rows)
    lines += [f"TLS's share of init (p50s): {(init_tls - init_plain) / init_tls:.0%} "
              f"({init_tls - init_plain:.2f} ms: the handshake of the warm-up call). The first "
              f"request makes no handshake (the connection was opened during init); it takes "
              f"{first_tls - first_plain:+.2f} ms through TLS ({(first_tls - first_plain) / first_tls:.0%}"
              " of it): record encryption, and the spread of 20 samples. Handshakes the front saw: "
              + "; ".join(f"{k}: {v}" for k, v in r["tls_handshakes"].items()) + ".", ""]

    lines += cost_section(r)
    lines += ["## Instructions (callgrind)", "",
              "| | per warm invocation (M) | process: init + "
              f"{r['settings']['callgrind'][0] + 1} invocations + exit (M) |", "|---|---|---|"]
    for name, stats in ins.items():
        lines.append(f"| {name} | {millions(stats['per_warm_invocation']):.3f} | "
                     f"{millions(stats['process_total_short']):.2f} |")
    lines.append("")

    lines += ["## Details", "", "| | " + " | ".join(s) + " |", "|---" * (len(s) + 1) + "|"]

    def each(label, getter):
        cells = []
        for subject in s.values():
            try:
                v = getter(subject)
                cells.append(f"{v:.2f}" if isinstance(v, float) else str(v))
            except (KeyError, TypeError):
                cells.append("—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for key in ("init_ms", "cold_total_ms", "first_invoke_ms"):
        for qq in ("min", "p50", "p90", "max"):
            each(f"{key} {qq}", lambda x, k=key, qq=qq: x["cold"][k][qq])
    each("warm invocations", lambda x: x["warm"]["invocations"])
    for qq in ("min", "p50", "p90", "p99", "max", "mean"):
        each(f"warm {qq} (ms)", lambda x, qq=qq: x["warm"]["latency_ms"][qq])
    each("DynamoDB attempts/request (mean)",
         lambda x: x["warm"]["dynamodb_per_request"]["attempts_mean"])
    each("VmHWM after 1st invocation (KiB)", lambda x: x["warm"]["vm_hwm_kib_after_first"])
    each("peak VmHWM (KiB)", lambda x: x["peak_rss_kib"])
    lines.append("")
    lines += ["Raw calls (`bench-raw-dynamodb`, the functions' client, through TLS):", "",
              "| | n | p50 (ms) | p90 (ms) | p99 (ms) |", "|---|---|---|---|---|"]
    for name, stats in raw["warm"].items():
        st = stats["round_ms"]
        lines.append(f"| warm, with {name} ({RAW_WARM[name]}) | {st['n']} | {st['p50']:.2f} | "
                     f"{st['p90']:.2f} | {st['p99']:.2f} |")
    for label, stats in raw["cold"].items():
        st = stats["total_ms"]
        lines.append(f"| fresh client {label} | {st['n']} | {st['p50']:.2f} | {st['p90']:.2f} | "
                     f"{st['p99']:.2f} |")
    lines += ["", f"Artifacts: " + ", ".join(f"{k} {v['zipped_bytes'] / MB:.2f} MB"
                                              for k, v in zips.items() if isinstance(v, dict)),
              "", f"Host: {r['host']['cpus']} CPUs, load average before "
              f"{r['host']['load_average_before'][0]:.2f}, after "
              f"{r['host']['load_average_after'][0]:.2f}. Run took {r['duration_s']:.0f} s.", ""]
    if r["mode"] == "smoke":
        lines += ["Smoke run: counts are tiny and targets are not enforced"
                  + (f"; {r['build_profile']} binaries." if r["build_profile"] != "release"
                     else "."), ""]
    return "\n".join(lines)


def verdict_section(r: dict) -> list[str]:
    v = r["verdicts"]
    boot = v["bootstrap"]
    lines = ["## Verdicts: each latency target, its estimate and its spread", "",
             f"Cold starts: {r['settings']['cold']} interleaved rounds; warm: "
             f"{r['settings']['blocks']} blocks of the function alternating with blocks of its "
             "raw calls. A cold target is judged on the median of the per-round ratios, a p50 "
             "target on the median of the per-block ratios, a p99 target on the ratio of the "
             "pooled p99s (a p99 of one block's few hundred samples is mostly noise; the "
             "per-block range is shown for the spread). Intervals: "
             f"{boot['confidence']}% bootstrap, {boot['resamples']} resamples, seed "
             f"{boot['seed']} (rounds resampled for cold; pairs of blocks, then samples within "
             "each, for warm). *Clear* when the whole interval is on the verdict's side of the "
             "target.", ""]
    if not v["enough_blocks"]:
        lines += [f"Fewer than {MIN_BLOCKS} blocks in this run: no latency target is judged.",
                  ""]
    lines += ["| Target | Subject | Judged on | Estimate | Interval | Range | Also | Limit | "
              "Verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for j in v["judged"]:
        kind = "cold" if j["target"] == "cold total" else j["target"].split()[-1]
        verdict = "unjudged" if j["pass"] is None else \
            ("PASS" if j["pass"] else "FAIL") + (", clear" if j["clear"] else
                                                  ", within its interval")
        ci = j["ci"]
        lines.append(f"| {j['target']} | {j['subject']} | {JUDGED_ON[kind]} | "
                     f"{j['value']:.2f}x | "
                     + (f"{ci[0]:.2f}–{ci[1]:.2f}" if ci and not math.isnan(ci[0]) else "—")
                     + f" | {j['range'][0]:.2f}–{j['range'][1]:.2f} | {j['also']} | "
                     f"<= {j['limit']}x | {verdict} |")
    lines += ["", "Every subject, for information (same estimates; no target):", "",
              "| Subject | cold: median per-round ratio (range) | warm p50: median per-block "
              "ratio (range) | warm p50: pooled [interval] | warm p99: pooled [interval] | "
              "warm p99: per-block range |", "|---|---|---|---|---|---|"]
    for name in list(v["cold"]) + [n for n in v["warm"] if n not in v["cold"]]:
        c = v["cold"].get(name)
        w = v["warm"].get(name)
        cells = [f"{c['per_round']['median']:.2f}x ({c['per_round']['min']:.2f}–"
                 f"{c['per_round']['max']:.2f})" if c else "—"]
        if w and w["blocks"]:
            b50, b99 = w["p50"]["per_block"], w["p99"]["per_block"]
            cells += [f"{b50['median']:.2f}x ({b50['min']:.2f}–{b50['max']:.2f})",
                      ratio_ci_text(w["p50"]["pooled"], w["p50"]["pooled_ci"]),
                      ratio_ci_text(w["p99"]["pooled"], w["p99"]["pooled_ci"]),
                      f"{b99['min']:.2f}–{b99['max']:.2f}"]
        else:
            cells += ["—"] * 4
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def own_time_section(r: dict) -> list[str]:
    s = r["subjects"]
    blocks = r["settings"]["blocks"]
    lines = ["## Own time: latency less the DynamoDB calls", "",
             "Each warm invocation's latency less the time its store calls took (the "
             "`DynamoDbCallLatency` values of its metrics line): parsing, auth, rules, JSON, "
             "logs and metrics, and the runtime's round trip to the Runtime API. The calls' "
             "time includes the SDK's own work on them (signing, serialising, TLS), so own "
             "time is what the function adds to its calls. CPU per invocation: the process's "
             "user + system time over its warm invocations (/proc), everything it runs on the "
             "CPU, calls included.", "",
             "| Subject | warm p50 (ms) | own p50 (ms) | own p99 (ms) | own p50 per block, "
             "range (ms) | calls' time p50 (ms) | CPU per invocation (ms) |",
             "|---|---|---|---|---|---|---|"]
    for name, subject in s.items():
        w = subject.get("warm")
        if not w or not w.get("own_samples_ms"):
            continue
        own = w["own_samples_ms"]
        by_block = [percentile(b, 50) for b in block_samples(w, blocks, "own_samples_ms") if b]
        calls = [lat - o for lat, o in zip(w["samples_ms"], own)]
        cpu = w.get("cpu_ms_per_invocation")
        lines.append(f"| {name} | {w['latency_ms']['p50']:.2f} | {percentile(own, 50):.2f} | "
                     f"{percentile(own, 99):.2f} | {min(by_block):.2f}–{max(by_block):.2f} | "
                     f"{percentile(calls, 50):.2f} | "
                     + (f"{cpu:.2f}" if cpu is not None else "—") + " |")
    return lines + [""]


# --------------------------------------------------------------------------------------------
# Cost per million requests

BENCH_DIR = Path(__file__).resolve().parent
PRICES = BENCH_DIR / "prices.json"
TEMPLATE = BENCH_DIR.parent.parent / "template.yaml"
MEMORY_MB = 256  # the template's MemorySize
FULL_VCPU_MB = 1769  # Lambda gives one vCPU at 1,769 MB, and CPU in proportion below it
ROUND_TRIPS_MS = (2, 5, 10)  # assumed DynamoDB round trip per call, in AWS
TOTAL_AT_RTT_MS = 5
# For the estimate from instructions: a Graviton2 core at 2.5 GHz taken at one instruction
# a cycle. An assumption, not a measurement: arm64 instruction counts differ from x86_64's.
ASSUMED_INSTRUCTIONS_PER_MS = 2.5e6
XRAY_RATE_PER_SECOND = 10  # assumed steady requests a second on each function
XRAY_RATES_SHOWN = (1, 10, 100)
LOG_RETENTION_DAYS = 30  # the template's LogRetentionDays default
GIB = 1024 ** 3
LIST_QUERY_ITEMS = DEFAULT_PAGE + 1
# Each route: its HTTP method and path (the access log's routeKey), its status, and what it
# reads and writes, by the kinds of item_kind(). create-key's account item is read and
# updated as it grows by a key (from 1 to 10 entries in the run); its units are taken over
# that growth.
ROUTES = {
    "create-account": {"route": "POST /accounts", "status": 201},
    "create-payment": {"route": "POST /payments", "status": 201},
    "get-payment": {"route": "GET /payments/{id}", "status": 200},
    "list-payments": {"route": "GET /payments", "status": 200},
    "create-key": {"route": "POST /keys", "status": 201},
    PEER: {"route": "POST /payments", "status": 201},
}
PARTS = ("Lambda requests", "Lambda duration", "API Gateway", "DynamoDB reads",
         "DynamoDB writes", "CloudWatch Logs ingestion", "CloudWatch Logs storage", "X-Ray")


def load_prices() -> dict:
    return json.loads(PRICES.read_text())


def units(size: float, unit_bytes: int) -> int:
    return max(1, math.ceil(size / unit_bytes))


def account_size(by_keys: dict[str, float], keys: int) -> float:
    """An account item's size with `keys` key entries, interpolated between the sizes seen."""
    seen = sorted((int(k), v) for k, v in by_keys.items())
    below = [(k, v) for k, v in seen if k <= keys]
    above = [(k, v) for k, v in seen if k >= keys]
    if not below:
        return above[0][1]
    if not above:
        return below[-1][1]
    (k0, v0), (k1, v1) = below[-1], above[0]
    return v0 if k1 == k0 else v0 + (v1 - v0) * (keys - k0) / (k1 - k0)


def request_units(items: dict) -> dict[str, dict]:
    """Read and write request units of one request of each route, from the sizes of the
    items it reads and writes (DynamoDB's rules, not DynamoDB Local's report)."""
    kind = {k: v["median"] for k, v in items["by_kind"].items()}
    secret_key_read = units(kind["api_key secret"], 4096)  # strongly consistent GetItem
    payment = kind["payment"]
    # The index projects every attribute: an entry is the item's size again.
    payment_write = units(payment, 1024) + units(payment, 1024)
    by_keys = items["account_by_keys"]
    # create-key takes an account from k to k + 1 keys, k = 1..9, in equal numbers.
    steps = range(1, NEW_KEYS_PER_ACCOUNT + 1)
    account_read = sum(units(account_size(by_keys, k), 4096) for k in steps) / len(steps)
    account_update = sum(units(max(account_size(by_keys, k), account_size(by_keys, k + 1)),
                               1024) for k in steps) / len(steps)
    result = {
        "create-account": {
            "read": 0.0,
            # One transaction of four puts: 2 units per KB of each item.
            "write": 2 * (units(account_size(by_keys, 1), 1024) + units(kind["api_key secret"], 1024)
                          + units(kind["api_key_ref"], 1024)
                          + units(kind["audit account.created"], 1024)),
            "how": "TransactWriteItems: account, key, key reference, audit event (2 per KB each)"},
        "create-payment": {
            "read": secret_key_read, "write": payment_write,
            "how": f"key GetItem (consistent); PutItem of a {payment:.0f}-byte payment + its "
                   "by_account entry (projection ALL)"},
        "get-payment": {
            "read": secret_key_read + units(payment, 4096), "write": 0.0,
            "how": "key GetItem + payment GetItem, both consistent"},
        "list-payments": {
            "read": secret_key_read + 0.5 * units(LIST_QUERY_ITEMS * payment, 4096),
            "write": 0.0,
            "how": f"key GetItem + Query of {LIST_QUERY_ITEMS} index entries "
                   f"({LIST_QUERY_ITEMS * payment:.0f} bytes, eventually consistent)"},
        "create-key": {
            "read": secret_key_read + account_read,
            "write": 2 * (account_update + units(kind["api_key restricted"], 1024)
                          + units(kind["api_key_ref"], 1024)
                          + units(kind["audit key.created"], 1024)),
            "how": "key GetItem + account GetItem (consistent); TransactWriteItems: account "
                   "update (the larger of before and after), key, key reference, audit event"},
    }
    result[PEER] = dict(result["create-payment"], how="as create-payment (the same items)")
    return result


def access_log_line(route: str, status: int, response_bytes: int) -> str:
    """The HTTP API's access log line of one request: the template's format, rendered with
    values of the size API Gateway gives them."""
    lines = TEMPLATE.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Format: >-"), None)
    if start is None:
        raise BenchError("no access log Format in template.yaml")
    indent = len(lines[start + 1]) - len(lines[start + 1].lstrip())
    block = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        block.append(line.strip())
    # A folded scalar (>-): its lines join with single spaces.
    fmt = " ".join(line for line in block if line)
    values = {
        "$context.requestId": "Jq3Zbhx9IAMEbTw=",
        "$context.identity.sourceIp": "203.0.113.25",
        "$context.requestTime": "07/Dec/2026:05:15:03 +0000",
        "$context.routeKey": route,
        "$context.status": str(status),
        "$context.responseLength": str(response_bytes),
        "$context.integrationLatency": "14",
        "$context.integration.requestId": str(uuid.UUID(int=0x9C3F)),
        # An IAM principal only on POST /accounts with AWS_IAM (the template's default).
        "$context.identity.userArn": ("arn:aws:sts::123456789012:assumed-role/payments-operator/"
                                      "operator-session" if route == "POST /accounts" else "-"),
    }
    for key in sorted(values, key=len, reverse=True):
        fmt = fmt.replace(key, values[key])
    return fmt


def platform_lines(billed_ms: int) -> list[str]:
    """Lambda's JSON platform events of one invocation (the template's LogFormat: JSON,
    Tracing: Active), from the telemetry schema with values of a real invocation's size."""
    time_ = "2026-12-07T05:15:03.123Z"
    request_id = str(uuid.UUID(int=0x7D2A))
    tracing = {"spanId": "5e1b3c7a9f2d4e6b", "type": "X-Amzn-Trace-Id",
               "value": "Root=1-6753d5e7-3f1a9c2b7d4e5f60718293a4;Parent=5e1b3c7a9f2d4e6b;"
                        "Sampled=0"}
    duration = round(billed_ms - 0.4, 3)
    events = [
        {"time": time_, "type": "platform.start",
         "record": {"requestId": request_id, "version": "12", "tracing": tracing}},
        {"time": time_, "type": "platform.runtimeDone",
         "record": {"requestId": request_id, "status": "success", "tracing": tracing,
                    "spans": [{"name": "responseLatency", "start": time_, "durationMs": 0.712},
                              {"name": "responseDuration", "start": time_, "durationMs": 0.034}],
                    "metrics": {"durationMs": duration, "producedBytes": 512}}},
        {"time": time_, "type": "platform.report",
         "record": {"requestId": request_id,
                    "metrics": {"durationMs": duration, "billedDurationMs": billed_ms,
                                "memorySizeMB": MEMORY_MB, "maxMemoryUsedMB": 24},
                    "tracing": tracing, "status": "success"}},
    ]
    return [json.dumps(event, separators=(",", ":")) for event in events]


def xray_traced_share(rate: float, sampling: dict) -> float:
    """The share of requests the default rule records at a steady `rate` a second."""
    reservoir = min(rate, sampling["reservoir_per_second"])
    return (reservoir + sampling["fixed_rate"] * max(rate - reservoir, 0)) / rate


def cost_model(r: dict) -> dict | None:
    """Cost per million requests of each route and of the peer (BENCHMARKS.md, Cost)."""
    if "items" not in r:
        return None
    book = load_prices()
    price = {k: v.get("usd", v.get("bytes")) for k, v in book["prices"].items()}
    share = MEMORY_MB / FULL_VCPU_MB
    overhead = price["cloudwatch_logs_event_overhead_bytes"]
    dynamo = request_units(r["items"])
    traced = xray_traced_share(XRAY_RATE_PER_SECOND, book["xray_default_sampling"])
    routes = {}
    for name, spec in ROUTES.items():
        w = r["subjects"][name].get("warm") or {}
        per = w.get("dynamodb_per_request") or {}
        calls = per.get("attempts_mean", 0)
        cpu = w.get("cpu_ms_per_invocation")
        own_p50 = (w.get("own_ms") or {}).get("p50")
        cpu_ms = cpu if cpu is not None else own_p50
        if cpu_ms is None:
            return None
        # At 256 MB the CPU work runs at a 1769th of 256 of a vCPU; the round trips wait.
        duration = {rtt: cpu_ms / share + calls * rtt for rtt in ROUND_TRIPS_MS}
        billed = {rtt: math.ceil(d) for rtt, d in duration.items()}
        gb_s = {rtt: MEMORY_MB / 1024 * b / 1000 for rtt, b in billed.items()}
        duration_usd = {rtt: g * 1e6 * price["lambda_arm64_gb_second"] for rtt, g in gb_s.items()}
        logs = w.get("log_per_request")
        if not logs:
            return None
        platform = platform_lines(billed[TOTAL_AT_RTT_MS])
        access = access_log_line(spec["route"], spec["status"], w.get("response_bytes", 0))
        log_bytes = {
            "function": logs["bytes"] + overhead * logs["lines"],
            "platform": sum(len(line) + overhead for line in platform),
            "access": len(access) + overhead,
        }
        ingested_gib = sum(log_bytes.values()) * 1e6 / GIB
        parts = {
            "Lambda requests": price["lambda_request"],
            "Lambda duration": duration_usd[TOTAL_AT_RTT_MS],
            "API Gateway": price["http_api_request"],
            "DynamoDB reads": dynamo[name]["read"] * price["dynamodb_read_request_unit"],
            "DynamoDB writes": dynamo[name]["write"] * price["dynamodb_write_request_unit"],
            "CloudWatch Logs ingestion": ingested_gib * price["cloudwatch_logs_ingestion_gb"],
            "CloudWatch Logs storage": ingested_gib * LOG_RETENTION_DAYS / 30
            * price["cloudwatch_logs_storage_gb_month"],
            "X-Ray": traced * price["xray_trace_recorded"],
        }
        routes[name] = {
            "calls": calls, "cpu_ms": cpu, "own_p50_ms": own_p50,
            "duration_ms": duration, "billed_ms": billed, "duration_usd": duration_usd,
            "dynamodb": dynamo[name], "log_lines": logs["lines"], "log_bytes": log_bytes,
            "emf_bytes": logs["emf_bytes"], "access_log_line": access,
            "parts": parts, "total": sum(parts.values()),
        }
    from_instructions = None
    counted = (r.get("instructions") or {}).get("create-payment")
    if counted and "create-payment" in routes:
        per_invocation = counted["per_warm_invocation"]
        cpu_ms = per_invocation / ASSUMED_INSTRUCTIONS_PER_MS
        calls = routes["create-payment"]["calls"]
        billed = {rtt: math.ceil(cpu_ms / share + calls * rtt) for rtt in ROUND_TRIPS_MS}
        measured_cpu = routes["create-payment"]["cpu_ms"]
        from_instructions = {
            "route": "create-payment", "instructions": per_invocation, "cpu_ms": cpu_ms,
            "instructions_per_cpu_ms_here": (per_invocation / measured_cpu
                                             if measured_cpu else None),
            "billed_ms": billed,
            "duration_usd": {rtt: MEMORY_MB / 1024 * b / 1000 * 1e6
                             * price["lambda_arm64_gb_second"] for rtt, b in billed.items()}}
    return {"routes": routes, "prices": book, "from_instructions": from_instructions,
            "assumptions": {"memory_mb": MEMORY_MB, "cpu_share": share,
                            "round_trips_ms": list(ROUND_TRIPS_MS),
                            "total_at_round_trip_ms": TOTAL_AT_RTT_MS,
                            "xray_rate_per_second": XRAY_RATE_PER_SECOND,
                            "xray_traced_share": traced,
                            "xray_traced_share_at": {str(rate): xray_traced_share(
                                rate, book["xray_default_sampling"]) for rate in XRAY_RATES_SHOWN},
                            "log_retention_days": LOG_RETENTION_DAYS}}


# The design choice that moves each part, for the line under the cost table; by route where
# the reason differs.
LEVERS = {
    "Lambda requests": "nothing but fewer invocations: it is per request",
    "Lambda duration": "memory size (more memory, more CPU: fewer billed ms for the CPU-bound "
                       "part) and the DynamoDB round trips each request waits on",
    "API Gateway": "the API type (HTTP API is the cheaper one) or fewer requests",
    "DynamoDB reads": "consistency (an eventually consistent read is half a unit)",
    "DynamoDB writes": "what each write carries",
    "CloudWatch Logs ingestion": "log volume",
    "CloudWatch Logs storage": "retention (LogRetentionDays) and log volume",
    "X-Ray": "the sampling rule (its reservoir of one a second is most of it at low rates)",
}
ROUTE_LEVERS = {
    ("create-account", "DynamoDB writes"):
        "the transaction: four items at 2 units each (all or nothing doubles every write); the "
        "clients table has no index, so no projection enters",
    ("create-key", "DynamoDB writes"):
        "the account item's size: its map of key entries passes 1 KB after a few keys, and "
        "every update of it in the transaction then costs 4 units",
    ("create-payment", "DynamoDB writes"):
        "the by_account index: its entry costs 1 unit whatever the projection (the payment is "
        "under 1 KB), so KEYS_ONLY would save storage, not writes, and make each listed "
        "payment a read of its own",
}
ROUTE_LEVERS[(PEER, "DynamoDB writes")] = ROUTE_LEVERS[("create-payment", "DynamoDB writes")]


def cost_section(r: dict) -> list[str]:
    cost = r.get("cost")
    if not cost:
        return ["## Cost per million requests", "",
                "Not computed: these measurements lack the log volume, CPU time or item sizes "
                "it needs (a run of the harness from before the cost model).", ""]
    a = cost["assumptions"]
    routes = cost["routes"]
    names = list(routes)
    lines = ["## Cost per million requests (us-east-1, list prices)", "",
             f"Prices: `tools/bench/prices.json` (each with its source and the date it was "
             f"read). Model: {MEMORY_MB} MB arm64 gets {a['cpu_share']:.3f} of a vCPU "
             f"({MEMORY_MB}/{FULL_VCPU_MB}); a request's billed duration is its CPU time per "
             "invocation measured here divided by that share, plus one assumed DynamoDB round "
             "trip per call, rounded up to the millisecond. This machine is "
             f"{r['host']['machine']} with whole cores, not Graviton at that share: the CPU "
             "time is this machine's, taken as a Graviton core's; the division assumes the "
             "CPU quota binds (a request whose CPU fits the unused quota runs at full speed, "
             "so this is the upper estimate); the round trip is AWS's, which DynamoDB Local "
             "cannot give. Totals use a round trip of "
             f"{a['total_at_round_trip_ms']} ms. DynamoDB: units from the sizes of the items "
             "this run wrote, read back and sized by DynamoDB's rules (not DynamoDB Local's "
             "ReturnConsumedCapacity, which under-reports transactions and failed conditions); "
             "warm-up calls during init, key-use records (at most one per key an hour) and "
             "rate-limit claims (at most about 0.04 writes per request at an account's limit) "
             "are left out. Logs: every line the function writes per warm request, as measured, "
             "plus Lambda's platform lines (estimated from the documented JSON schema) and the "
             "access log line (the template's format rendered), each plus the 26 bytes CloudWatch "
             f"counts per event; stored {a['log_retention_days']} days (the template's default), "
             f"at the ingested size. X-Ray: the default rule at {a['xray_rate_per_second']} "
             f"requests a second on each function ({a['xray_traced_share']:.1%} recorded; "
             + ", ".join(f"{v:.1%} at {k}/s" for k, v in a["xray_traced_share_at"].items())
             + "). Free tiers left out.", ""]
    if r["build_profile"] != "release":
        lines += [f"These are {r['mode']} figures from {r['build_profile']} binaries: their CPU "
                  "time, and so the duration rows, are not the release build's.", ""]
    lines += ["Per route, USD per million requests:", "",
              "| Part | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for part in PARTS:
        lines.append(f"| {part} | " + " | ".join(
            f"{routes[n]['parts'][part]:.3f} ({routes[n]['parts'][part] / routes[n]['total']:.0%})"
            for n in names) + " |")
    lines.append("| **Total** | " + " | ".join(f"**{routes[n]['total']:.2f}**" for n in names)
                 + " |")
    lines += ["", "What goes into it, per request:", "",
              "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
              "| DynamoDB calls | " + " | ".join(f"{routes[n]['calls']:g}" for n in names) + " |",
              "| read units | " + " | ".join(f"{routes[n]['dynamodb']['read']:g}"
                                          for n in names) + " |",
              "| write units | " + " | ".join(f"{routes[n]['dynamodb']['write']:g}"
                                           for n in names) + " |",
              "| function log lines | " + " | ".join(f"{routes[n]['log_lines']:.2f}"
                                                  for n in names) + " |",
              "| function log bytes (of which EMF) | " + " | ".join(
                  f"{routes[n]['log_bytes']['function']:.0f} ({routes[n]['emf_bytes']:.0f})"
                  for n in names) + " |",
              "| platform lines' bytes (3 events) | " + " | ".join(
                  f"{routes[n]['log_bytes']['platform']:.0f}" for n in names) + " |",
              "| access log bytes | " + " | ".join(f"{routes[n]['log_bytes']['access']:.0f}"
                                                for n in names) + " |"]
    lines += ["", "Function log bytes include 26 bytes per line. DynamoDB units: "
              + "; ".join(f"{n}: {routes[n]['dynamodb']['how']}" for n in names) + ".", "",
              "Lambda duration over the assumed round trip (ms billed, and USD per million):", "",
              "| | CPU per invocation here (ms) | own time p50 here (ms) | "
              + " | ".join(f"{rtt} ms a call" for rtt in ROUND_TRIPS_MS) + " |",
              "|---" * (len(ROUND_TRIPS_MS) + 3) + "|"]
    for n in names:
        route = routes[n]
        cpu = "—" if route["cpu_ms"] is None else f"{route['cpu_ms']:.2f}"
        own = "—" if route["own_p50_ms"] is None else f"{route['own_p50_ms']:.2f}"
        lines.append(f"| {n} | {cpu} | {own} | " + " | ".join(
            f"{route['billed_ms'][rtt]} ms, ${route['duration_usd'][rtt]:.3f}"
            for rtt in ROUND_TRIPS_MS) + " |")
    est = cost.get("from_instructions")
    if est:
        lines.append(f"| {est['route']}, from its instructions | {est['cpu_ms']:.2f} "
                     f"({est['instructions'] / 1e6:.3f} M at "
                     f"{ASSUMED_INSTRUCTIONS_PER_MS / 1e6:g} M a ms) | — | " + " | ".join(
                         f"{est['billed_ms'][rtt]} ms, ${est['duration_usd'][rtt]:.3f}"
                         for rtt in ROUND_TRIPS_MS) + " |")
        here = est["instructions_per_cpu_ms_here"]
        lines += ["", f"The last row prices {est['route']}'s instructions per warm invocation "
                  "(callgrind, this run) instead of its CPU time, at an assumed "
                  f"{ASSUMED_INSTRUCTIONS_PER_MS / 1e6:g} million a millisecond on a Graviton2 "
                  "core (2.5 GHz, one a cycle; x86_64 counts stand in for arm64's)"
                  + (f"; its CPU time here ran {here / 1e6:.2f} million a millisecond"
                     if here else "") + ". The other routes' instructions are not counted."]
    lines += ["", "Not in these figures: DynamoDB storage, data transfer out of AWS, the "
              "custom metrics the metrics lines create (billed per metric a month, not per "
              "request), X-Ray retrievals and scans, free tiers.",
              "", "What dominates, and what would move it:", ""]
    for n in names:
        parts = sorted(routes[n]["parts"].items(), key=lambda kv: kv[1], reverse=True)
        (first, v1), (second, v2) = parts[0], parts[1]
        total = routes[n]["total"]
        lever = ROUTE_LEVERS.get((n, first), LEVERS[first])
        if first == "CloudWatch Logs ingestion":
            b = routes[n]["log_bytes"]
            lever = (f"log volume: per request the function writes {b['function']:.0f} bytes "
                     f"({routes[n]['emf_bytes']:.0f} of them the metrics line, whose dimension "
                     f"sets could be fewer), Lambda's platform lines about {b['platform']:.0f} "
                     "(SystemLogLevel WARN would drop them, and REPORT's figures with them), "
                     f"the access log {b['access']:.0f}")
        lines.append(f"- {n}: {first} ({v1 / total:.0%}), then {second} ({v2 / total:.0%}); "
                     f"{first} moves with {lever}.")
    return lines + [""]


# --------------------------------------------------------------------------------------------
# Plot


def plot(r: dict, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    s, raw = r["subjects"], r["raw"]
    fig, (cold_ax, warm_ax) = plt.subplots(1, 2, figsize=(20, 7.5))

    def totals(name):
        return [x["cold_total_ms"] for x in s[name]["cold"]["samples"]]

    cold_series = [
        ("hello\ncold total", totals("bench-hello-lambda"), "#888888"),
        ("raw fresh client\nGet+Put", [x["total_ms"] for x in raw["cold"]["get-put"]["samples"]],
         "#aaaaaa"),
        ("create-account", totals("create-account"), "#3182bd"),
        ("create-payment", totals("create-payment"), "#e6550d"),
        ("create-payment\nring", totals(RING), "#fd8d3c"),
        ("create-payment\nplain HTTP", totals(PLAIN), "#fdd0a2"),
        ("node-peer\n(Node.js 20)", totals(PEER), "#6a51a3"),
        ("get-payment", totals("get-payment"), "#41ab5d"),
        ("list-payments", totals("list-payments"), "#ae017e"),
        ("create-key", totals("create-key"), "#8c6d31"),
    ]
    positions = list(range(1, len(cold_series) + 1))
    box = cold_ax.boxplot([x for _, x, _ in cold_series], positions=positions, widths=0.6,
                          patch_artist=True, showfliers=False)
    for patch, (_, _, color) in zip(box["boxes"], cold_series):
        patch.set_facecolor(color)
        patch.set_alpha(0.6)
    for x, (_, samples, color) in zip(positions, cold_series):
        jitter = [x + (i % 7 - 3) * 0.04 for i in range(len(samples))]
        cold_ax.scatter(jitter, samples, s=12, color=color, edgecolor="black", linewidth=0.3,
                        zorder=3)
    for name, x in (("create-account", 3), ("create-payment", 4)):
        limit = TARGET_COLD_RATIO * cold_baseline(r, name)
        cold_ax.hlines(limit, x - 0.4, x + 0.4, colors="red", linestyles="--", linewidth=1.2)
    cold_ax.set_xticks(positions)
    cold_ax.set_xticklabels([label for label, _, _ in cold_series], fontsize=7.5)
    cold_ax.set_ylabel("ms (process start -> first response posted)")
    cold_ax.set_yscale("log")
    cold_ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    cold_ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    cold_ax.set_title(f"Cold starts through TLS (n={len(cold_series[0][1])} each; red dashes: "
                      f"the {TARGET_COLD_RATIO}x baseline target)", fontsize=10)
    cold_ax.grid(True, axis="y", alpha=0.3, which="both")

    warm_series = [
        ("hello-world (runtime + emulator)", s["bench-hello-lambda"]["warm"]["samples_ms"],
         "#888888", ":"),
        ("raw GetItem + PutItem", raw["warm"]["create-payment"]["_round_samples_ms"], "#006d2c",
         "-."),
        ("raw TransactWriteItems", raw["warm"]["create-account"]["_round_samples_ms"], "#756bb1",
         "-."),
        ("create-account", s["create-account"]["warm"]["samples_ms"], "#3182bd", "-"),
        ("create-payment", s["create-payment"]["warm"]["samples_ms"], "#e6550d", "-"),
        ("create-payment, ring", s[RING]["warm"]["samples_ms"], "#fd8d3c", "--"),
        ("node-peer (Node.js 20, SDK v3)", s[PEER]["warm"]["samples_ms"], "#6a51a3", "-"),
        ("get-payment", s["get-payment"]["warm"]["samples_ms"], "#41ab5d", "-"),
        ("list-payments", s["list-payments"]["warm"]["samples_ms"], "#ae017e", "-"),
        ("raw GetItem + GetItem + TransactWriteItems",
         raw["warm"]["create-key"]["_round_samples_ms"], "#bd9e39", "-."),
        ("create-key", s["create-key"]["warm"]["samples_ms"], "#8c6d31", "-"),
    ]
    for label, samples, color, style in warm_series:
        if not samples:
            continue
        ordered = sorted(samples)
        n = len(ordered)
        warm_ax.plot(ordered, [(i + 1) / n for i in range(n)], style, color=color,
                     linewidth=1.6, label=f"{label} (p50 {percentile(samples, 50):.2f} ms, "
                                          f"p99 {percentile(samples, 99):.2f})")
    for q, target in (("p50", TARGET_WARM_RATIO), ("p99", TARGET_TAIL_RATIO)):
        limit = target * warm_baseline(r, "create-payment", q)
        warm_ax.axvline(limit, color="red", linestyle="--" if q == "p50" else ":", linewidth=1,
                        label=f"create-payment {q} target ({limit:.2f} ms)")
    for level in (0.5, 0.9, 0.99):
        warm_ax.axhline(level, color="black", alpha=0.15, linewidth=0.8)
    warm_ax.set_xscale("log")
    warm_ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    warm_ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    warm_ax.tick_params(axis="x", which="minor", labelsize=7)
    warm_ax.set_xlabel("ms (event handed out -> response posted; raw: per round)")
    warm_ax.set_ylabel("fraction of invocations")
    warm_ax.set_title(f"Warm latency CDF (n={s['create-payment']['warm']['invocations']} per "
                      "function)")
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
    parser.add_argument("--repo")
    parser.add_argument("--out", required=True)
    parser.add_argument("--bin-dir")
    parser.add_argument("--variant-dir",
                        help="create-payment-ring and bench-raw-dynamodb-ring (ring builds)")
    parser.add_argument("--ca-dir", help="tools/bench/make-ca.sh's output")
    parser.add_argument("--profile", default="release",
                        help="the cargo build profile of the binaries in --bin-dir (reported)")
    parser.add_argument("--dynamodb-port", type=int)
    parser.add_argument("--clients-table")
    parser.add_argument("--payments-table")
    parser.add_argument("--audit-table")
    parser.add_argument("--report-only", metavar="MEASUREMENTS_JSON",
                        help="render results.md, results.json and the plot from a run's "
                             "measurements.json, measuring nothing")
    args = parser.parse_args()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    bench = None
    out = Path(args.out)
    try:
        if args.mode == "profile":
            bench = Bench(args)
            (out / "profile.md").write_text(bench.profile())
            log(f"profile: {out / 'profile.md'}")
            return 0
        if args.report_only:
            results = json.loads(Path(args.report_only).read_text())
        else:
            bench = Bench(args)
            results = bench.run()
        results["verdicts"] = latency_verdicts(results)
        results["cost"] = cost_model(results)
        results["targets"] = evaluate(results)
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
            bench.tls.close()

    print(markdown(results))
    failed = [(row["metric"], name) for row in results["targets"] if row["pass"]
              for name, ok in row["pass"].items() if ok is False]
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
