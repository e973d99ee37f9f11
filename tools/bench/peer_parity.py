#!/usr/bin/env python3
"""Parity check: the benchmark's Node.js peer (tools/bench/node-peer) answers `POST /payments`
as create-payment does, response by response.

    python3 tools/bench/peer_parity.py              # starts what it needs, stops it after
    python3 tools/bench/peer_parity.py --peer tools/bench/node-peer/dist/index.mjs

Both functions run as in the benchmark (tools/bench/harness.py's classes: the Runtime API
emulator, DynamoDB Local behind the TLS front, the same environment), one process each, and
get the same cases: a new payment, its replay, the key reused, a payment without a key, the
key refusals, and the 4xx of method, content type, size, JSON and field rules. For each case
it compares the status, the headers the API documents (content-type, cache-control,
idempotent-replayed, retry-after, allow), x-request-id (the invocation's id) and the body
text, with payment ids, timestamps and request ids masked; and it checks that each side
answers what the case is for (the status and error code), that a replay's body is the first
answer's, and that a keyed payment's id is the one derived from account and key. Cases where
the peer is known to differ (the JSON reader's simplifications listed in index.mjs's header)
are shown and not judged.

Without --dynamodb-port it starts DynamoDB Local in memory on a free loopback port
(scripts/dynamodb-local), creates the tables (payments-admin) and a throwaway CA
(tools/bench/make-ca.sh); `scripts/bench.sh --smoke` passes its own instead. Needs the
binaries (cargo build --workspace --bins), `make tools` (DynamoDB Local, the peer's packages),
node and openssl. Exits 1 when a response differs. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import PEER, Bench, BenchError, RuntimeApi, response_body  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RUST = "create-payment"
DOCUMENTED_HEADERS = ("content-type", "cache-control", "idempotent-replayed", "retry-after",
                      "allow")
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PAYMENT_ID = re.compile(r"pay_[0-9A-Za-z]{20}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
PAYMENT = {"amount": 1250, "currency": "usd", "description": "parity payment, café ☕"}


def payment_id_for(account: str, key: str) -> str:
    """shared::domain::payment_id_for."""
    digest = hashlib.sha256(b"payment-id/v1\0" + account.encode() + b"\0" + key.encode()).digest()
    value = int.from_bytes(digest[:16], "big") % 62 ** 20
    chars = []
    for _ in range(20):
        value, digit = divmod(value, 62)
        chars.append(ID_ALPHABET[digit])
    return "pay_" + "".join(reversed(chars))


def well_formed_key(secret: bytes, checksum_ok: bool = True) -> str:
    """A test-environment API key of the right shape: prefix, 43 characters of canonical
    base64url, and the CRC-32 of both (or a wrong one)."""
    head = "sk_test_" + base64.urlsafe_b64encode(secret).decode().rstrip("=")
    crc = zlib.crc32(head.encode()) ^ (0 if checksum_ok else 1)
    return head + base64.urlsafe_b64encode(crc.to_bytes(4, "big")).decode().rstrip("=")


class Case:
    """One request, sent to both functions. `build(ctx)` makes the event for a side: ctx has
    the side's name, the account's key and id, and `key(tag)`, an Idempotency-Key of this run
    and side. `status` and `code` are what each side must answer (for a case that is not a
    known difference)."""

    def __init__(self, label: str, build, status: int, code: str | None = None, *,
                 replay_of: str | None = None, derived_from: str | None = None,
                 known_difference: str | None = None):
        self.label = label
        self.build = build
        self.status = status
        self.code = code
        self.replay_of = replay_of  # the label of the case whose body a replay repeats
        self.derived_from = derived_from  # the Idempotency-Key tag the payment id derives from
        self.known_difference = known_difference


def event(bench: Bench, ctx: dict, body: str | dict | None = None, *, api_key: str | None = "",
          idempotency_key: str | None = None, content_type: str | None = "application/json",
          method: str = "POST", base64_body: bool = False) -> dict:
    """An API Gateway HTTP API event for /payments; `api_key` "" is the account's key, None
    none at all; `body` a dict (JSON) or the body's text."""
    headers = {}
    if api_key is not None:
        headers["x-api-key"] = api_key or ctx["api_key"]
    if idempotency_key is not None:
        headers["idempotency-key"] = idempotency_key
    built = bench.api_event(f"{method} /payments", None, headers)
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body)
        if content_type is not None:
            built["headers"]["content-type"] = content_type
        if base64_body:
            text = base64.b64encode(text.encode()).decode()
            built["isBase64Encoded"] = True
        built["body"] = text
    return built


def cases(bench: Bench) -> list[Case]:
    def post(body=None, **kw):
        return lambda ctx: event(bench, ctx, PAYMENT if body is None else body, **kw)

    def field(**changes):
        body = {"amount": 1250, "currency": "USD"}
        body.update(changes)
        return {k: v for k, v in body.items() if v is not Ellipsis}

    def keyed(tag, body=None):
        return lambda ctx: event(bench, ctx, PAYMENT if body is None else body,
                                 idempotency_key=ctx["key"](tag))

    unknown_key = well_formed_key(secrets.token_bytes(32))
    bad_checksum = well_formed_key(secrets.token_bytes(32), checksum_ok=False)
    return [
        Case("new payment (Idempotency-Key)", keyed("a"), 201, derived_from="a"),
        Case("replay: same key, same body", keyed("a"), 201,
             replay_of="new payment (Idempotency-Key)", derived_from="a"),
        Case("same key, another body", keyed("a", {**PAYMENT, "amount": 1251}), 422,
             "idempotency_key_reused"),
        Case("payment without Idempotency-Key", post(field(description=None)), 201),
        Case("body base64-encoded", post(field(), base64_body=True), 201),
        Case("no x-api-key", post(api_key=None), 401, "missing_api_key"),
        Case("malformed x-api-key", post(api_key="sk_test_not-a-key"), 401, "invalid_api_key"),
        Case("x-api-key with a wrong checksum", post(api_key=bad_checksum), 401,
             "invalid_api_key"),
        Case("well-formed unknown x-api-key", post(api_key=unknown_key), 401, "invalid_api_key"),
        Case("wrong method (GET)", lambda ctx: event(bench, ctx, None, method="GET"), 405,
             "method_not_allowed"),
        Case("content-type text/plain", post(content_type="text/plain"), 415,
             "unsupported_media_type"),
        Case("no content-type", post(content_type=None), 415, "unsupported_media_type"),
        Case("body over 16 KiB", post(field(description="x" * 17000)), 413,
             "payload_too_large"),
        Case("Idempotency-Key of 256 characters", post(idempotency_key="k" * 256), 400,
             "parameter_invalid"),
        Case("Idempotency-Key twice, as API Gateway joins it", post(idempotency_key="a,b"),
             400, "parameter_invalid"),
        Case("unknown field with a 100-character name", post(field(**{"n" * 100: 1})), 400,
             "parameter_unknown"),
        Case("amount 1e400", post('{"amount": 1e400, "currency": "USD"}'), 400,
             "parameter_invalid"),
        Case("invalid JSON", post('{"amount": 1250, "currency": '), 400, "invalid_json"),
        Case("empty body", post(""), 400, "invalid_json"),
        Case("body not an object", post('"USD 12.50"'), 400, "invalid_json"),
        Case("body an empty array", post("[]"), 400, "invalid_json"),
        Case("unknown field (client_id)", post(field(client_id="acct_AAAAAAAAAAAAAAAAAAAA")),
             400, "parameter_unknown"),
        Case("missing amount", post(field(amount=...)), 400, "parameter_missing"),
        Case("missing currency", post(field(currency=...)), 400, "parameter_missing"),
        Case("amount a string", post(field(amount="1250")), 400, "parameter_invalid"),
        Case("amount a fraction", post('{"amount": 12.5, "currency": "USD"}'), 400,
             "parameter_invalid"),
        Case("amount -0", post('{"amount": -0, "currency": "USD"}'), 400, "parameter_invalid"),
        Case("amount past i64", post('{"amount": 18446744073709551616, "currency": "USD"}'), 400,
             "parameter_invalid"),
        Case("currency a number", post(field(currency=840)), 400, "parameter_invalid"),
        Case("description a number", post(field(description=7)), 400, "parameter_invalid"),
        Case("wrong type before an unknown field",
             post('{"amount": "1", "client_id": "x", "currency": "USD"}'), 400,
             "parameter_invalid"),
        Case("amount 0", post(field(amount=0)), 400, "parameter_invalid"),
        Case("amount 100000000", post(field(amount=100_000_000)), 400, "parameter_invalid"),
        Case("unknown currency (ZZZ)", post(field(currency="ZZZ")), 400, "parameter_invalid"),
        Case("description of 501 characters", post(field(description="é" * 501)), 400,
             "parameter_invalid"),
        Case("description of 500 characters", post(field(description="é" * 500)), 201),
        # What JSON.parse cannot tell (index.mjs's header): shown, not judged.
        Case("duplicate field", post('{"amount": 1250, "amount": 1251, "currency": "USD"}'), 400,
             known_difference="JSON.parse keeps the last value"),
        Case("positional array", post('[1250, "USD"]'), 201,
             known_difference="serde reads a struct from an array"),
        Case("trailing content", post('{"amount": 1250, "currency": "USD"} {}'), 400,
             known_difference="JSON.parse: not valid JSON"),
        Case("amount 1e3", post('{"amount": 1e3, "currency": "USD"}'), 400,
             known_difference="JSON.parse reads 1000"),
    ]


class Answer:
    """One side's response to a case, and the masked view that is compared."""

    def __init__(self, response: dict, request_id: str):
        self.response = response
        self.status = response.get("statusCode")
        headers = response.get("headers") or {}
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = response_body(response)
        self.request_id_ok = (self.headers.get("x-request-id") == request_id)
        try:
            self.json = json.loads(self.body)
        except ValueError:
            self.json = None
        masked = self.body.replace(request_id, "<request id>")
        masked = PAYMENT_ID.sub("pay_<id>", masked)
        # Timestamps keep their shape: only the digits are masked.
        self.masked = TIMESTAMP.sub(lambda m: re.sub(r"\d", "0", m.group(0)), masked)

    @property
    def code(self) -> str | None:
        error = self.json.get("error") if isinstance(self.json, dict) else None
        return error.get("code") if isinstance(error, dict) else None

    def summary(self) -> str:
        return f"{self.status} {self.code}" if self.code else str(self.status)

    def view(self) -> dict:
        return {"status": self.status,
                "headers": {name: self.headers.get(name) for name in DOCUMENTED_HEADERS},
                "body": self.masked}


def run_side(bench: Bench, name: str, all_cases: list[Case], ctx: dict) -> dict[str, Answer]:
    """One process of `name` answers every case, in order."""
    api = RuntimeApi(name, bench.runtime_api)
    proc = None
    answers = {}
    try:
        proc, _, log_path = bench.start_function(name, api)
        for case in all_cases:
            invocation = api.submit(case.build(ctx))
            response = bench.wait_response(invocation, proc, api, log_path)
            answers[case.label] = Answer(response, invocation.id)
    finally:
        if proc is not None:
            harness.stop_process(proc)
        api.close()
    return answers


def judge(case: Case, rust: Answer, node: Answer, firsts: dict, ctx: dict) -> list[str]:
    """What is wrong with this case's answers: nothing when they match and do what the case
    is for."""
    problems = []
    a, b = rust.view(), node.view()
    if a["status"] != b["status"]:
        problems.append("status")
    for name in DOCUMENTED_HEADERS:
        if a["headers"][name] != b["headers"][name]:
            problems.append(f"header {name}")
    if a["body"] != b["body"]:
        problems.append("body")
    if case.known_difference:
        return problems
    for side, answer in ((RUST, rust), (PEER, node)):
        if not answer.request_id_ok:
            problems.append(f"{side}: x-request-id is not the invocation's id")
        if answer.status != case.status or answer.code != case.code:
            problems.append(f"{side}: expected {case.status} {case.code or ''}".rstrip())
        if case.replay_of and answer.body != firsts[side][case.replay_of].body:
            problems.append(f"{side}: the replay's body is not the first answer's")
        if case.derived_from and isinstance(answer.json, dict) and \
                answer.json.get("id") != payment_id_for(ctx[side]["account_id"],
                                                        ctx[side]["key"](case.derived_from)):
            problems.append(f"{side}: the payment id is not derived from account and key")
    return problems


def parity(bench: Bench) -> int:
    account = bench.warm_series("create-account", bench.account_event, 0)["_first_body"]
    if not account.get("api_key") or not account.get("id"):
        raise BenchError(f"create-account's 201 has no api_key or id: {sorted(account)}")
    run = secrets.token_hex(4)
    ctx = {side: {"api_key": account["api_key"], "account_id": account["id"],
                  "key": (lambda tag, side=side: f"parity-{run}-{side}-{tag}")}
           for side in (RUST, PEER)}
    all_cases = cases(bench)
    harness.log(f"parity: {len(all_cases)} cases, {RUST} then {PEER}, one process each")
    answers = {side: run_side(bench, side, all_cases, ctx[side]) for side in (RUST, PEER)}

    width = max(len(case.label) for case in all_cases)
    print(f"{'case':<{width}}  {RUST:<28}  {PEER:<28}  verdict")
    failures = []
    for case in all_cases:
        rust, node = answers[RUST][case.label], answers[PEER][case.label]
        problems = judge(case, rust, node, answers, ctx)
        if case.known_difference:
            verdict = (f"differs, as listed ({case.known_difference})" if problems
                       else "same (listed as a difference)")
        elif problems:
            verdict = "DIFFERS: " + "; ".join(problems)
            failures.append((case, rust, node))
        else:
            verdict = "same"
        print(f"{case.label:<{width}}  {rust.summary():<28}  {node.summary():<28}  {verdict}")
    for case, rust, node in failures:
        print(f"\n{case.label}:")
        for side, answer in ((RUST, rust), (PEER, node)):
            print(f"  {side}: {json.dumps(answer.view(), ensure_ascii=False)}")
    judged = sum(1 for case in all_cases if not case.known_difference)
    print(f"\n{judged - len(failures)} of {judged} cases answered alike"
          f" ({len(all_cases) - judged} known differences shown, not judged); logs in "
          f"{bench.logs}")
    return 1 if failures else 0


# --------------------------------------------------------------------------------------------
# Standing up what the benchmark would have (DynamoDB Local, tables, CA) when it is not given


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dynamodb(out: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log_file = open(out / "dynamodb-local.log", "wb")
    proc = subprocess.Popen([str(REPO / "scripts" / "dynamodb-local"), str(port), "-inMemory"],
                            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.2)
    stop(proc)
    raise BenchError(f"DynamoDB Local did not start (log {out / 'dynamodb-local.log'})")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    parser.add_argument("--bin-dir", default=str(target / "debug"),
                        help="create-account, create-payment, bench-runtime-api, "
                             "bench-tls-front (and payments-admin without --dynamodb-port)")
    parser.add_argument("--peer", default=str(REPO / "tools/bench/node-peer/index.mjs"),
                        help="the peer's module: index.mjs (default) or the bundle, dist/index.mjs")
    parser.add_argument("--out", default=str(target / "bench" / "parity"),
                        help="logs go to OUT/logs")
    parser.add_argument("--dynamodb-port", type=int,
                        help="an existing DynamoDB Local (plain HTTP) with the tables below")
    parser.add_argument("--ca-dir", help="tools/bench/make-ca.sh's output (with --dynamodb-port)")
    parser.add_argument("--clients-table", default="parity-clients")
    parser.add_argument("--payments-table", default="parity-payments")
    parser.add_argument("--audit-table", default="parity-audit")
    args = parser.parse_args()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    out = Path(args.out).resolve()
    bin_dir = Path(args.bin_dir).resolve()
    shutil.rmtree(out / "logs", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    dynamodb = None
    bench = None
    try:
        node = shutil.which("node")
        if node is None:
            raise BenchError("node is not on PATH")
        needed = ["create-account", RUST, "bench-runtime-api", "bench-tls-front"]
        if args.dynamodb_port is None:
            needed.append("payments-admin")
        for name in needed:
            if not (bin_dir / name).exists():
                raise BenchError(f"{bin_dir / name} is missing (cargo build --workspace --bins)")
        if not Path(args.peer).exists():
            raise BenchError(f"{args.peer} is missing")
        if args.dynamodb_port is None:
            dynamodb, args.dynamodb_port = start_dynamodb(out)
            subprocess.run([str(bin_dir / "payments-admin"), "--endpoint-url",
                            f"http://127.0.0.1:{args.dynamodb_port}",
                            "--clients-table", args.clients_table,
                            "--payments-table", args.payments_table,
                            "--audit-table", args.audit_table, "tables", "create"],
                           check=True, stdout=subprocess.DEVNULL)
        if args.ca_dir is None:
            args.ca_dir = str(out / "ca")
            subprocess.run([str(REPO / "tools/bench/make-ca.sh"), args.ca_dir], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bench = Bench(argparse.Namespace(
            mode="smoke", repo=str(REPO), out=str(out), bin_dir=str(bin_dir),
            variant_dir=str(out), ca_dir=args.ca_dir, dynamodb_port=args.dynamodb_port,
            clients_table=args.clients_table, payments_table=args.payments_table,
            audit_table=args.audit_table))
        bench.commands[PEER] = [node, str(Path(args.peer).resolve())]
        return parity(bench)
    except (BenchError, subprocess.CalledProcessError) as err:
        harness.log(f"parity FAILED: {err}")
        return 1
    except KeyboardInterrupt as err:
        harness.log(f"interrupted ({err})")
        return 130
    finally:
        harness.stop_all_processes()
        if bench is not None:
            bench.tls.close()
        if dynamodb is not None:
            stop(dynamodb)


if __name__ == "__main__":
    sys.exit(main())
