"""The benchmark harness's statistics and cost rules (tools/bench/harness.py), on data made
here: the verdicts and the cost table rest on them, and a smoke run is too small to show a
wrong interval or a miscounted item."""

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "bench"))

import harness  # noqa: E402


def lognormal_blocks(seed, blocks, size, mu):
    rng = random.Random(seed)
    return [[rng.lognormvariate(mu, 0.4) for _ in range(size)] for _ in range(blocks)]


def test_quantile_of_sorted_matches_percentile():
    values = [random.Random(3).random() for _ in range(257)]
    for q in (1, 10, 50, 90, 99):
        assert abs(harness.quantile_of_sorted(sorted(values), q)
                   - harness.percentile(values, q)) < 1e-12


def test_warm_ratios_are_reproducible_and_bracket_the_pooled_ratio():
    function = lognormal_blocks(1, 6, 200, 0.3)
    raw = lognormal_blocks(2, 6, 200, 0.2)
    first = harness.warm_ratio_estimates(function, raw)
    again = harness.warm_ratio_estimates(function, raw)
    assert first == again  # the fixed seed: a report rendered again says the same
    assert first["blocks"] == 6
    for q in ("p50", "p99"):
        low, high = first[q]["pooled_ci"]
        assert low <= first[q]["pooled"] <= high
        assert len(first[q]["per_block"]["values"]) == 6
    pooled = (harness.percentile([x for b in function for x in b], 99)
              / harness.percentile([x for b in raw for x in b], 99))
    assert abs(first["p99"]["pooled"] - pooled) < 1e-12


def test_a_drifting_block_widens_the_interval():
    steady_f, steady_r = lognormal_blocks(4, 8, 200, 0.3), lognormal_blocks(5, 8, 200, 0.3)
    drifting_f = [b if i != 3 else [x * 2 for x in b] for i, b in enumerate(steady_f)]
    steady = harness.warm_ratio_estimates(steady_f, steady_r)["p50"]["pooled_ci"]
    drifting = harness.warm_ratio_estimates(drifting_f, steady_r)["p50"]["pooled_ci"]
    assert drifting[1] - drifting[0] > steady[1] - steady[0]


def test_cold_ratios_are_taken_round_by_round():
    result = harness.cold_ratio_estimates([12.0, 30.0, 15.0], [2.0, 4.0, 2.0], [8.0, 16.0, 8.0])
    assert result["per_round"]["values"] == [1.2, 1.5, 1.5]
    assert result["per_round"]["median"] == 1.5


def test_item_size_follows_dynamodb_rules():
    item = {
        "pk": {"S": "pay_abc"},  # 2 + 7
        "amount": {"N": "1250"},  # 6 + (3 significant digits: 2) + 1
        "ok": {"BOOL": True},  # 2 + 1
        "keys": {"M": {"k": {"S": "v"}}},  # 4 + 3 + (1 + 1 + 1)
        "tags": {"L": [{"S": "ab"}]},  # 4 + 3 + (2 + 1)
    }
    assert harness.item_size(item) == 9 + 9 + 3 + 10 + 10


def test_request_units_count_the_index_and_transactions():
    items = {"by_kind": {kind: {"median": size} for kind, size in {
        "api_key secret": 240, "api_key restricted": 260, "api_key_ref": 114,
        "audit account.created": 362, "audit key.created": 444, "payment": 340}.items()},
        "account_by_keys": {"1": 350, "10": 2300}}
    units = harness.request_units(items)
    assert units["create-payment"] == dict(units["create-payment"], read=1, write=2)
    assert units["get-payment"]["read"] == 2
    assert units["list-payments"]["read"] == 1.5  # 11 entries of 340 bytes: under 4 KB
    assert units["create-account"]["write"] == 8  # 4 items under 1 KB, 2 units each
    assert units["create-key"]["write"] > 8  # the account passes 1 KB as keys are added


def test_xray_default_rule():
    sampling = {"reservoir_per_second": 1, "fixed_rate": 0.05}
    assert harness.xray_traced_share(1, sampling) == 1.0
    assert abs(harness.xray_traced_share(10, sampling) - 0.145) < 1e-12


def test_access_log_and_platform_lines_render_as_json():
    line = harness.access_log_line("POST /payments", 201, 345)
    assert "$context" not in line
    assert json.loads(line)["routeKey"] == "POST /payments"
    for event in harness.platform_lines(13):
        assert json.loads(event)["type"].startswith("platform.")
