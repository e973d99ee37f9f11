"""scripts/check-log-hygiene.py finds what it must, and only that."""

import hashlib
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("check_log_hygiene", ROOT / "scripts" / "check-log-hygiene.py")
hygiene = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(hygiene)

KEY = "rk_test_oriubupQ2TWw6-ylN2Yvy1NZHp8gttObYfwi3fRNvCkNltUXg"
NEEDLES = {
    KEY[hygiene.DISPLAY_PREFIX:]: "an API key",
    hashlib.sha256(KEY.encode()).hexdigest(): "a key digest",
}


def test_a_restricted_key_its_digest_and_ip_ranges_are_found():
    assert hygiene.leaks_in(f'{{"message":"x","key":"{KEY}"}}', NEEDLES) == ["an API key"]
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    assert hygiene.leaks_in(f"pk=KEY#{digest}", NEEDLES) == ["a key digest"]
    for line, found in [
        ('{"allowed_ips":["203.0.113.0/24"]}', "203.0.113.0/24"),
        ('ranges 2001:db8::/32 and more', "2001:db8::/32"),
        ('"::/0"', "::/0"),
        ('"0.0.0.0/0"', "0.0.0.0/0"),
    ]:
        assert hygiene.leaks_in(line, NEEDLES) == [f"an IP range ({found})"], line


def test_what_a_log_line_may_hold_is_not_a_leak():
    for line in [
        f'{{"key_prefix":"{KEY[:12]}","account_id":"acct_AAAAAAAAAAAAAAAAAAAA"}}',
        '{"timestamp":"2026-12-04T20:58:29.053Z","message":"key created"}',
        "http://127.0.0.1:8477/ and [::1]:8000",
        "source 203.0.113.7 at 10:30:00",
        "path /keys/key_4Qm9ZpL1xKc7VbN0aRtB/roll",
        "1/2 done, 3.5/10 ms",
    ]:
        assert hygiene.leaks_in(line, NEEDLES) == [], line


def plant_run(root: Path, keys: list[str]) -> None:
    """A run's capture under `root`: its recorded keys, and clean log lines enough to judge."""
    logs = root / "target" / "test-logs"
    logs.mkdir(parents=True)
    (logs / "1.keys").write_text("".join(f"{key}\n" for key in keys))
    line = '{"level":"INFO","message":"payment created","key_prefix":"sk_test_AbCd"}\n'
    (logs / "1.jsonl").write_text(line * 1000)


def made_up_key(kind: str, n: int) -> str:
    key = f"{kind}_test_" + f"{n:049d}"
    assert len(key) == 57
    return key


def test_a_run_that_recorded_no_restricted_key_fails(tmp_path, capsys):
    secret_keys = [made_up_key("sk", n) for n in range(25)]
    plant_run(tmp_path, secret_keys)
    assert hygiene.main(tmp_path) == 1
    assert "no restricted (rk_) key" in capsys.readouterr().err


def test_a_clean_run_with_restricted_keys_passes_and_a_leak_fails(tmp_path, capsys):
    keys = [made_up_key("sk", n) for n in range(24)] + [KEY]
    plant_run(tmp_path, keys)
    assert hygiene.main(tmp_path) == 0
    assert "(1 restricted)" in capsys.readouterr().out
    with (tmp_path / "target" / "test-logs" / "1.jsonl").open("a") as log:
        log.write(f'{{"message":"oops","key":"{KEY}"}}\n')
    assert hygiene.main(tmp_path) == 1
    assert "an API key" in capsys.readouterr().err
