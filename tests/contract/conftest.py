"""The local stack the contract tests run against, started and stopped by the tests.

DynamoDB Local (`scripts/dynamodb-local`, the repository's one way of starting it, through
its loopback-only launcher) and `cargo lambda watch` (as `tests/src/stack.rs` starts it),
each on a free port of 127.0.0.1 and in its own process group, so that teardown stops
everything they started. Nothing is reached but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".tools"
VENV_BIN = TOOLS_DIR / "venv" / "bin"
# Logs of the last run's DynamoDB Local and `cargo lambda watch`, kept for a failure's sake.
LOG_DIR = REPO_ROOT / "target" / "contract-logs"
# Hypothesis keeps caches (its Unicode tables) under here rather than in ./.hypothesis.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(REPO_ROOT / "target" / "contract-hypothesis"))
# The first request to each function compiles it if it is stale (`cargo run` under
# `cargo lambda watch`); normally seconds, since `cargo build` ran beforehand.
WARM_UP_TIMEOUT = float(os.environ.get("CONTRACT_WARM_UP_TIMEOUT", "300"))

# Requests go to 127.0.0.1 directly, never through a proxy from the environment (schemathesis
# sends with `requests`, which honours these variables).
for _variable in ("NO_PROXY", "no_proxy"):
    os.environ[_variable] = ",".join(filter(None, [os.environ.get(_variable), "127.0.0.1", "localhost"]))
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}; log:\n{tail(log)}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s; log:\n{tail(log)}")


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Group:
    """A child started as the leader of a new process group; `stop` ends the whole group."""

    def __init__(self, what: str, args: list[str], log: Path, **kwargs) -> None:
        self.what = what
        self.log = log
        self.stopped = False
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        pgid = self.process.pid
        # `cargo lambda watch` starts each function in a process group of its own: note them
        # now, to make sure they are gone too.
        strays = descendants(pgid)
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while any(start_time(pid) == started for pid, started in strays) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid, started in strays:
            if start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log_file.close()


def start_time(pid: int) -> str | None:
    """The start time of process `pid` (tells it from a later process with the same id)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below `pid`."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            started = start_time(child)
            if started is not None:
                found.append((child, started))
            pending.append(child)
    return found


@dataclass
class Stack:
    base_url: str
    dynamodb_endpoint: str
    clients_table: str
    payments_table: str
    watch_log: Path
    dynamodb: Group

    def stop_dynamodb(self) -> None:
        """Takes the database away from the running functions (for the 503 test, run last)."""
        self.dynamodb.stop()

    def post(self, path: str, body: object, headers: dict[str, str] | None = None):
        """A plain JSON POST: (status, headers, parsed body)."""
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json", **(headers or {})},
            method="POST",
        )
        return self._send(request)

    def get(self, path: str, headers: dict[str, str] | None = None):
        """A plain GET: (status, headers, parsed body)."""
        return self._send(urllib.request.Request(self.base_url + path, headers=headers or {}, method="GET"))

    def _send(self, request):
        try:
            with _DIRECT.open(request, timeout=WARM_UP_TIMEOUT) as response:
                return response.status, dict(response.headers), _json_or_text(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), _json_or_text(error.read())


def _json_or_text(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")


def ensure_binaries(env: dict[str, str]) -> None:
    debug = REPO_ROOT / "target" / "debug"
    binaries = (
        "payments-admin",
        "create-account",
        "create-payment",
        "get-payment",
        "list-payments",
        "create-key",
        "list-keys",
        "get-key",
        "roll-key",
        "revoke-key",
    )
    if all((debug / name).exists() for name in binaries):
        return
    subprocess.run(
        ["cargo", "build", *(arg for name in binaries for arg in ("-p", name))],
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )


@pytest.fixture(scope="session")
def stack():
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    if shutil.which("cargo-lambda", path=env["PATH"]) is None:
        pytest.fail("cargo-lambda is not installed; run 'make tools'")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    ensure_binaries(env)

    started: list[Group] = []
    # A SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so that the `finally` below still
    # stops the processes; they live in their own sessions and would outlive pytest.
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        ddb_port = free_port()
        # The script execs java, so the group's leader is the JVM itself; if DynamoDB Local
        # is not installed it exits at once with the reason, which wait_for_port shows.
        ddb = Group(
            "DynamoDB Local",
            [str(REPO_ROOT / "scripts" / "dynamodb-local"), str(ddb_port), "-inMemory"],
            LOG_DIR / "dynamodb.log",
            env=env,
        )
        started.append(ddb)
        wait_for_port(ddb_port, 60, ddb.process, ddb.log)
        endpoint = f"http://127.0.0.1:{ddb_port}"

        suffix = secrets.token_hex(4)
        clients_table, payments_table = f"contract-clients-{suffix}", f"contract-payments-{suffix}"
        audit_table = f"contract-audit-{suffix}"
        subprocess.run(
            [
                str(REPO_ROOT / "target" / "debug" / "payments-admin"),
                "--endpoint-url",
                endpoint,
                "--clients-table",
                clients_table,
                "--payments-table",
                payments_table,
                "--audit-table",
                audit_table,
                "tables",
                "create",
            ],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            timeout=60,
        )

        port = free_port()
        env_vars = (
            f"CLIENTS_TABLE={clients_table},PAYMENTS_TABLE={payments_table},"
            f"AUDIT_TABLE={audit_table},"
            f"API_KEY_ENVIRONMENT=test,DYNAMODB_ENDPOINT={endpoint},RUST_LOG=info,"
            # Generated requests reach the checks they are for; rate limits are tested in
            # tests/api and end to end.
            f"DEFAULT_RATE_LIMIT=100000"
        )
        watch_log = LOG_DIR / "watch.log"
        watch = Group(
            "cargo lambda watch",
            [
                "cargo",
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                str(port),
                "--env-vars",
                env_vars,
            ],
            watch_log,
            cwd=REPO_ROOT,
            env=env,
        )
        started.append(watch)
        wait_for_port(port, 120, watch.process, watch_log)
        yield Stack(
            base_url=f"http://127.0.0.1:{port}",
            dynamodb_endpoint=endpoint,
            clients_table=clients_table,
            payments_table=payments_table,
            watch_log=watch_log,
            dynamodb=ddb,
        )
    finally:
        for group in reversed(started):
            group.stop()
        signal.signal(signal.SIGTERM, previous)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def api_key(stack: Stack) -> str:
    """A valid key: the first (secret) key of a fresh account. Also warms up the functions."""
    status, headers, body = stack.post("/accounts", {"name": "Contract Test Ltd", "email": "contract@example.com"})
    assert status == 201, f"POST /accounts: {status} {body}\n{tail(stack.watch_log)}"
    key = body["api_key"]
    status, _, body = stack.post("/payments", {"amount": 1, "currency": "usd"}, {"x-api-key": key})
    assert status == 201, f"POST /payments: {status} {body}\n{tail(stack.watch_log)}"
    payment = body["id"]
    status, _, body = stack.get(f"/payments/{payment}", {"x-api-key": key})
    assert status == 200, f"GET /payments/{{id}}: {status} {body}\n{tail(stack.watch_log)}"
    status, _, body = stack.get("/payments", {"x-api-key": key})
    assert status == 200, f"GET /payments: {status} {body}\n{tail(stack.watch_log)}"
    status, _, body = stack.get("/keys", {"x-api-key": key})
    assert status == 200, f"GET /keys: {status} {body}\n{tail(stack.watch_log)}"
    return key


# Requests the schemathesis tests sent: (test, operation, outcome) -> count. An outcome is a
# status, or a note on a request also counted under its status ("acceptance not checked").
SENT: Counter = Counter()


@pytest.fixture(scope="session")
def sent() -> Counter:
    return SENT


def pytest_terminal_summary(terminalreporter) -> None:
    if not SENT:
        return
    terminalreporter.section("contract: requests sent")
    for test in sorted({test for test, _, _ in SENT}):
        total = sum(n for (t, _, outcome), n in SENT.items() if t == test and not outcome.startswith("acceptance"))
        terminalreporter.write_line(f"{test}: {total} requests")
        for (t, operation, status), n in sorted(SENT.items()):
            if t == test:
                terminalreporter.write_line(f"  {operation} -> {status}: {n}")
