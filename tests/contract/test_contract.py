"""Contract tests: docs/openapi.yaml against the running local stack, and against the code.

`test_api_with_key` and `test_payments_without_key` let schemathesis generate requests from
the spec (the spec's examples; the coverage phase's boundary, missing and invalid values;
then random fuzzing; each in positive and negative mode) and send them to a real local
stack (`conftest.stack`). Every response must be documented (status, content type,
headers, body schema, all with `additionalProperties: false`), none may be a 5xx, every
request that violates the spec must be refused with a documented 4xx, and every request
that the spec allows must be accepted (see `acceptance_not_checked` for the exceptions that
JSON Schema cannot express). A failure prints the request as a curl command.

The `test_spec_*` tests need no stack: they compare the spec's routes, error statuses,
types and codes, currencies and limits with Cargo.toml's router table and with the values
the code itself prints (`shared/examples/api_contract.rs`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tomllib
from pathlib import Path

import pytest
import schemathesis
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC = REPO_ROOT / "docs" / "openapi.yaml"

# Hypothesis examples per operation and test; the examples and coverage phases add their own
# deterministic cases, about 50 per operation. Override with CONTRACT_MAX_EXAMPLES.
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "50"))
# Fixed so that runs are reproducible; set CONTRACT_SEED to another number to explore.
SEED = int(os.environ.get("CONTRACT_SEED", "20261126"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# A request that violates the spec must get one of these. (413 is not in schemathesis'
# default list, and a negative body can exceed 16 KiB; 404 is what a malformed payment id
# gets, the same as an unknown one, by design; 429 comes before any check of the request,
# for an account over its rate limit, which the stack under test sets out of reach.)
REJECTION_STATUSES = ["400", "401", "404", "405", "413", "415", "422", "429"]
# A request that the spec allows must get one of these: 401 without a key, 404 for a
# well-formed payment or key id (in the path or as a cursor) that names none of the
# account's, 409 for a key change the account's keys refuse (an eleventh live key after the
# generated POST /keys made ten), 422 when a generated Idempotency-Key comes again with
# another body, 429 for an account over its rate limit.
ACCEPTANCE_STATUSES = ["2xx", "401", "404", "409", "422", "429"]


def contract_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "request-timeout": 60,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                # No .hypothesis/ directory in the work tree.
                "database": "none",
                # The tests send the key themselves (or none): no made-up x-api-key values.
                "with-security-parameters": False,
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {
                "negative_data_rejection": {"expected-statuses": REJECTION_STATUSES},
                "positive_data_acceptance": {"expected-statuses": ACCEPTANCE_STATUSES},
            },
        }
    )


# Loaded at import, so that each operation is its own test item, and the stack's URL is
# passed to every call. (`schemathesis.pytest.from_fixture` could take the URL from a
# fixture, but 4.32.5 fails under pytest 9: it sets `request.node._nodeid`, which pytest 9
# no longer has.)
schema = schemathesis.openapi.from_path(SPEC, config=contract_config())
payment_operations = schema.include(path_regex="^/payments")
keyed_operations = schema.include(path_regex="^/(payments|keys)")


def local_router_cannot_carry(request) -> str | None:
    """Why `cargo lambda watch` answers this request itself instead of invoking a function.

    Bytes that are not UTF-8 in a JSON body or in a header value (it answers 500,
    text/plain), and control characters in a header value (its HTTP parser answers 400 with
    no body). Negative mode sends such requests on purpose. In AWS, API Gateway stands in
    that place; either way the request never reaches our code.
    """
    body = request.body
    if isinstance(body, bytes) and not is_utf8(body):
        return "body is not UTF-8"
    for name, value in request.headers.items():
        raw = value if isinstance(value, bytes) else value.encode("latin-1")
        if any((b < 0x20 and b != 0x09) or b == 0x7F for b in raw):
            return f"control character in {name}"
        if not is_utf8(raw):
            return f"{name} is not UTF-8"
    return None


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def acceptance_not_checked(case) -> str | None:
    """Why a schema-valid body may rightly be refused: what JSON Schema cannot say.

    - `amount: 1250.0` (and a roll's `expires_in: 60.0`) is an `integer` to JSON Schema
      (the same number as 1250), but the service takes only an integer literal and answers
      400 (see the Amount schema).
    - `starting_after` with `ending_before`: each is valid alone, together a 400 (a rule
      across parameters, which OpenAPI cannot state).
    - Non-ASCII e-mail addresses: the service allows Unicode alphanumerics in domain labels
      and counts lengths in UTF-8 bytes; the spec's pattern admits a superset there.
    - A new key's `allowed_ips`: which strings are addresses or ranges, and that a range has
      no host bits set; and its `expires_at`, which must lie ahead (a generated date-time
      mostly lies in the past).
    """
    query = case.query if isinstance(case.query, dict) else {}
    if "starting_after" in query and "ending_before" in query:
        return "both cursors"
    body = case.body if isinstance(case.body, dict) else {}
    if isinstance(body.get("amount"), float):
        return "amount sent as a float"
    if isinstance(body.get("expires_in"), float):
        return "expires_in sent as a float"
    email = body.get("email")
    if isinstance(email, str) and not email.isascii():
        return "non-ASCII email"
    if case.path == "/keys" and body.get("allowed_ips"):
        return "IP ranges"
    if case.path == "/keys" and isinstance(body.get("expires_at"), str):
        return "expires_at"
    return None


def call_and_validate(case, stack, sent, test: str, headers: dict[str, str] | None = None):
    response = case.call(base_url=stack.base_url, headers=headers)
    operation = f"{case.method} {case.path}"
    reason = local_router_cannot_carry(response.request)
    # Every response of our functions has an x-request-id; the router's own answers do not.
    if reason is not None and "x-request-id" not in response.headers:
        sent[(test, operation, f"{response.status_code} from the local router: {reason}")] += 1
        return response
    checks = list(CHECKS)
    unchecked = acceptance_not_checked(case)
    if unchecked is None:
        checks.append(positive_data_acceptance)
    else:
        sent[(test, operation, f"acceptance not checked: {unchecked}")] += 1
    case.validate_response(
        response,
        checks=checks,
        headers=headers,
        transport_kwargs={"base_url": stack.base_url, "headers": headers},
    )
    assert_request_id_matches(response)
    sent[(test, operation, str(response.status_code))] += 1
    return response


def assert_request_id_matches(response) -> None:
    """What the spec says in prose: an error's `request_id` is its `x-request-id` header."""
    if response.status_code >= 400 and "x-request-id" in response.headers:
        body = response.json()
        assert body["error"]["request_id"] == response.headers["x-request-id"][0], body


@schema.parametrize()
def test_api_with_key(case, stack, api_key, sent):
    """Every operation; the payment and key routes with the secret key of a fresh account."""
    headers = {"x-api-key": api_key} if case.path.startswith(("/payments", "/keys")) else None
    call_and_validate(case, stack, sent, "with a valid key", headers)


@keyed_operations.parametrize()
def test_payments_without_key(case, stack, sent):
    """The payment and key routes without any `x-api-key`: whatever else is sent, a 401."""
    assert "x-api-key" not in {name.lower() for name in (case.headers or {})}
    response = call_and_validate(case, stack, sent, "without a key")
    # The coverage phase also tries other methods, which the router answers (404).
    if case.method.upper() == case.operation.method.upper() and "x-request-id" in response.headers:
        assert response.status_code == 401, response.text


# ---------------------------------------------------------------------------------------
# Documented responses that generated requests do not reach, sent on purpose and checked
# against the spec in the same way.

RESPONSE_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def send(stack, path: str, body, headers: dict[str, str] | None = None, expect: int = 201):
    """POSTs `body` as JSON, checks the response against the spec, returns it."""
    case = schema[path]["POST"].Case(body=body, media_type="application/json")
    response = case.call(base_url=stack.base_url, headers=headers)
    assert response.status_code == expect, response.text
    case.validate_response(
        response,
        checks=RESPONSE_CHECKS + ([] if expect >= 500 else [not_a_server_error]),
        headers=headers,
    )
    assert_request_id_matches(response)
    return response


def fetch(stack, path: str, headers: dict[str, str] | None, expect: int, **case):
    """GETs `path` (path parameters and query in `case`), checks the response against the
    spec, returns it."""
    case = schema[path]["GET"].Case(**case)
    response = case.call(base_url=stack.base_url, headers=headers)
    assert response.status_code == expect, response.text
    case.validate_response(
        response,
        checks=RESPONSE_CHECKS + ([] if expect >= 500 else [not_a_server_error]),
        headers=headers,
    )
    assert_request_id_matches(response)
    return response


def test_unknown_foreign_and_malformed_payments_are_one_404(stack, api_key):
    status, _, other = stack.post("/accounts", {"name": "Other Contract Ltd"})
    assert status == 201
    _, _, foreign = stack.post("/payments", {"amount": 1, "currency": "usd"}, {"x-api-key": other["api_key"]})
    key = {"x-api-key": api_key}
    bodies = []
    for id in [foreign["id"], "pay_00000000000000000000", "pay_short"]:
        error = fetch(stack, "/payments/{id}", key, 404, path_parameters={"id": id}).json()["error"]
        assert (error["code"], error["param"]) == ("resource_missing", "id")
        bodies.append({**error, "request_id": None})
    for cursor in ["starting_after", "ending_before"]:
        for id in [foreign["id"], "pay_00000000000000000000"]:
            error = fetch(stack, "/payments", key, 404, query={cursor: id}).json()["error"]
            bodies.append({**error, "param": "id", "request_id": None})
    assert all(body == bodies[0] for body in bodies), bodies


def test_payload_too_large(stack, api_key):
    big = "x" * (16 * 1024)
    for path, body, headers in [
        ("/accounts", {"name": big}, None),
        ("/payments", {"amount": 1, "currency": "usd", "description": big}, {"x-api-key": api_key}),
    ]:
        error = send(stack, path, body, headers, expect=413).json()["error"]
        assert error["code"] == "payload_too_large"


def test_idempotent_replay_and_key_reuse(stack, api_key):
    key = {"x-api-key": api_key, "Idempotency-Key": f"contract-{secrets.token_hex(8)}"}
    first = send(stack, "/payments", {"amount": 1250, "currency": "eur", "description": "Order 1"}, key)
    assert "idempotent-replayed" not in first.headers
    # The same request (currency in another case, on the other route) is a replay.
    again = send(stack, "/payments/create", {"currency": "EUR", "amount": 1250, "description": "Order 1"}, key)
    assert again.headers["idempotent-replayed"] == ["true"]
    assert again.json() == first.json()
    reused = send(stack, "/payments", {"amount": 1251, "currency": "eur", "description": "Order 1"}, key, expect=422)
    assert reused.json()["error"]["param"] == "Idempotency-Key"


def call(stack, path: str, method: str, headers: dict[str, str] | None, expect: int, **case):
    """Sends `method path` (path parameters, query and body in `case`), checks the response
    against the spec, returns it."""
    case = schema[path][method].Case(**case)
    response = case.call(base_url=stack.base_url, headers=headers)
    assert response.status_code == expect, response.text
    case.validate_response(
        response,
        checks=RESPONSE_CHECKS + ([] if expect >= 500 else [not_a_server_error]),
        headers=headers,
    )
    assert_request_id_matches(response)
    return response


def test_key_answers_are_the_documented_ones(stack):
    """Each answer of the key routes, reached on purpose: created, listed, read, rolled,
    refused (403, 409, 404) and revoked, each checked against the spec."""
    status, _, account = stack.post("/accounts", {"name": "Contract Keys Ltd"})
    assert status == 201
    secret = {"x-api-key": account["api_key"]}
    json_body = {"media_type": "application/json"}
    reader = call(stack, "/keys", "POST", secret, 201, body={"name": "reader", "permissions": ["payments:read"]},
                  **json_body).json()
    assert reader["api_key"].startswith("rk_test_") and reader["kind"] == "restricted"
    listing = call(stack, "/keys", "GET", secret, 200).json()
    assert [key["id"] for key in listing["data"]][0] == reader["id"]
    secret_id = listing["data"][-1]["id"]
    call(stack, "/keys/{id}", "GET", secret, 200, path_parameters={"id": reader["id"]})
    # The read-only key: refused a payment and the keys, with the permission named.
    denied = send(stack, "/payments", {"amount": 1, "currency": "usd"}, {"x-api-key": reader["api_key"]}, expect=403)
    assert denied.json()["error"]["message"] == "This key does not have the payments:write permission."
    call(stack, "/keys", "GET", {"x-api-key": reader["api_key"]}, 403)
    rolled = call(stack, "/keys/{id}/roll", "POST", secret, 201, path_parameters={"id": reader["id"]},
                  body={"expires_in": 600}, **json_body).json()
    assert rolled["name"] == "reader" and rolled["permissions"] == ["payments:read"]
    again = call(stack, "/keys/{id}/roll", "POST", secret, 409, path_parameters={"id": reader["id"]},
                 body={"expires_in": 600}, **json_body)
    assert again.json()["error"]["code"] == "key_not_active"
    locked = call(stack, "/keys/{id}", "DELETE", secret, 409, path_parameters={"id": secret_id})
    assert locked.json()["error"]["code"] == "would_lock_out"
    revoked = call(stack, "/keys/{id}", "DELETE", secret, 200, path_parameters={"id": rolled["id"]}).json()
    assert revoked["status"] == "revoked"
    # Another account's key, an unknown id and a malformed one: one 404.
    _, _, other = stack.post("/accounts", {"name": "Other Keys Ltd"})
    _, _, theirs = stack.get("/keys", {"x-api-key": other["api_key"]})
    bodies = []
    for id in [theirs["data"][0]["id"], "key_00000000000000000000", "key_short"]:
        error = call(stack, "/keys/{id}", "GET", secret, 404, path_parameters={"id": id}).json()["error"]
        assert (error["code"], error["param"]) == ("resource_missing", "id")
        bodies.append({**error, "request_id": None})
    assert all(body == bodies[0] for body in bodies), bodies


def test_keys_that_do_not_authenticate(stack, api_key):
    tampered = api_key[:-1] + ("A" if api_key[-1] != "A" else "B")
    live = "sk_live_" + api_key.removeprefix("sk_test_")
    bodies = []
    for key in [tampered, live, "nope", api_key + "x"]:
        response = send(stack, "/payments", {"amount": 1, "currency": "usd"}, {"x-api-key": key}, expect=401)
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key"
        bodies.append({**error, "request_id": None})
    assert all(body == bodies[0] for body in bodies), "invalid_api_key responses must not differ"


# ---------------------------------------------------------------------------------------
# The spec against the code, without a stack.


def load_spec() -> dict:
    return yaml.safe_load(SPEC.read_text())


def repo_file(path: str) -> str:
    return (REPO_ROOT / path).read_text()


@pytest.fixture(scope="session")
def code_facts() -> dict:
    """What the code itself says about the contract (errors, limits, currencies), printed by
    `shared/examples/api_contract.rs`: the code's own values, not its source text."""
    output = subprocess.run(
        ["cargo", "run", "--quiet", "-p", "shared", "--example", "api_contract"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    return json.loads(output)


def spec_errors(spec: dict) -> dict[str, set[tuple[str, str]]]:
    """status -> the (type, code) pairs the spec documents for it, on any operation."""
    schemas = spec["components"]["schemas"]
    responses = spec["components"]["responses"]
    errors: dict[str, set[tuple[str, str]]] = {}
    for item in spec["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = responses[response["$ref"].rsplit("/", 1)[1]]
                schema = response["content"]["application/json"]["schema"]
                name = schema["$ref"].rsplit("/", 1)[1]
                fields = schemas[name].get("properties", {}).get("error", {}).get("properties")
                if fields is None:
                    assert status.startswith("2"), f"{status} has no error schema"
                    continue
                codes = fields["code"].get("enum") or [fields["code"]["const"]]
                errors.setdefault(status, set()).update((fields["type"]["const"], code) for code in codes)
    return errors


def test_spec_routes_are_the_routes_the_stack_serves():
    spec = load_spec()
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    router = tomllib.loads(repo_file("Cargo.toml"))["workspace"]["metadata"]["lambda"]["watch"]["router"]
    served = {(route["method"].upper(), path) for path, routes in router.items() for route in routes}
    assert documented == served
    functions = {
        (route["method"].upper(), path): route["function"] for path, routes in router.items() for route in routes
    }
    assert functions == {
        ("POST", "/accounts"): "create-account",
        ("POST", "/payments"): "create-payment",
        ("POST", "/payments/create"): "create-payment",
        ("GET", "/payments"): "list-payments",
        ("GET", "/payments/{id}"): "get-payment",
        ("POST", "/keys"): "create-key",
        ("GET", "/keys"): "list-keys",
        ("GET", "/keys/{id}"): "get-key",
        ("DELETE", "/keys/{id}"): "revoke-key",
        ("POST", "/keys/{id}/roll"): "roll-key",
    }
    # The two payment routes are one operation: the same parameters, body and responses.
    payments, alias = spec["paths"]["/payments"]["post"], spec["paths"]["/payments/create"]["post"]
    for field in ("parameters", "requestBody", "responses", "security"):
        assert payments.get(field) == alias.get(field), field


def test_spec_documents_exactly_the_errors_the_api_returns(code_facts):
    """Every (status, type, code) the one error mapping can produce is documented, on the
    operation that can return it, and nothing else is."""
    implemented: dict[str, set[tuple[str, str]]] = {}
    for error in code_facts["errors"]:
        implemented.setdefault(str(error["status"]), set()).add((error["type"], error["code"]))
    assert spec_errors(load_spec()) == implemented


def test_spec_currencies_are_the_ones_the_service_accepts(code_facts):
    spec = load_spec()
    listed = code_facts["currencies"]
    schemas = spec["components"]["schemas"]
    assert schemas["CurrencyCode"]["enum"] == listed
    pattern = re.compile(schemas["CreatePaymentRequest"]["properties"]["currency"]["pattern"])
    for code in listed:
        for variant in (code, code.lower(), code[0] + code[1:].lower()):
            assert pattern.search(variant), variant
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    accepted = {a + b + c for a in letters for b in letters for c in letters if pattern.search(a + b + c)}
    assert accepted == set(listed)
    for bad in ["", "US", "USDD", "usd ", " usd", "ÜSD", "US1"]:
        assert not pattern.search(bad), bad


def test_spec_limits_are_the_code_limits(code_facts):
    spec = load_spec()
    schemas = spec["components"]["schemas"]
    limits = code_facts["limits"]
    assert schemas["AccountName"]["maxLength"] == limits["name_max_chars"]
    assert schemas["Email"]["maxLength"] == limits["email_max_chars"]
    assert schemas["Description"]["maxLength"] == limits["description_max_chars"]
    assert schemas["Amount"]["minimum"] == limits["amount_min"]
    assert schemas["Amount"]["maximum"] == limits["amount_max"]
    body_max = limits["body_max_bytes"]
    assert f"{body_max // 1024} KiB ({body_max} bytes)" in spec["info"]["description"]
    idempotency = spec["components"]["parameters"]["IdempotencyKey"]["schema"]
    assert idempotency["maxLength"] == limits["idempotency_key_max_len"]
    assert schemas["KeyName"]["maxLength"] == limits["key_name_max_chars"]
    create = schemas["CreateKeyRequest"]["properties"]
    assert create["allowed_ips"]["oneOf"][0]["maxItems"] == limits["allowed_ips_max"]
    roll = schemas["RollKeyRequest"]["properties"]["expires_in"]["oneOf"][0]
    assert roll["maximum"] == limits["roll_grace_max_s"]
    assert schemas["KeyList"]["properties"]["data"]["maxItems"] == limits["key_entries_max"]
    assert schemas["Permission"]["enum"] == limits["permissions"]


def test_function_timeout_and_request_deadline_agree(code_facts):
    """Every function's Lambda timeout leaves the request deadline's margin: the budget a
    request gets outside Lambda is the template's timeout less that margin, so code and
    template cannot drift apart."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load(repo_file("template.yaml"), Loader=Loader)
    default = template["Globals"]["Function"]["Timeout"]
    timeouts = {
        name: resource.get("Properties", {}).get("Timeout", default)
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert len(timeouts) == 9, timeouts
    deadline = code_facts["deadline"]
    for name, timeout in timeouts.items():
        assert timeout * 1000 - deadline["response_margin_ms"] == deadline["default_budget_ms"], name


def test_spec_is_valid_openapi_with_valid_examples():
    schema.validate()
    spec = load_spec()
    registry = Registry().with_resource("urn:spec", DRAFT202012.create_resource(spec))

    def validator(pointer: str):
        return Draft202012Validator({"$ref": f"urn:spec#{pointer}"}, registry=registry)

    for name, definition in spec["components"]["schemas"].items():
        Draft202012Validator.check_schema(definition)
        # A `required` property missing from `properties` would slip past
        # `additionalProperties: false` (schemathesis adds an empty schema for it).
        missing = set(definition.get("required", [])) - set(definition.get("properties", {}))
        assert not missing, f"{name}: required but not in properties: {missing}"
        if "example" in definition:
            validator(f"/components/schemas/{name}").validate(definition["example"])
    body = spec["paths"]["/accounts"]["post"]["requestBody"]["content"]["application/json"]
    validator("/components/schemas/CreateAccountRequest").validate(body["example"])
    body = spec["components"]["requestBodies"]["CreatePayment"]["content"]["application/json"]
    validator("/components/schemas/CreatePaymentRequest").validate(body["example"])
    body = spec["paths"]["/keys"]["post"]["requestBody"]["content"]["application/json"]
    for example in body["examples"].values():
        validator("/components/schemas/CreateKeyRequest").validate(example["value"])
    parameter = spec["components"]["parameters"]["IdempotencyKey"]
    validator("/components/parameters/IdempotencyKey/schema").validate(parameter["example"])
    # Every response example, on the routes and in the shared responses, against its schema.
    answers = [(f"/components/responses/{name}", response)
               for name, response in spec["components"]["responses"].items()]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                pointer = f"/paths/{path.replace('~', '~0').replace('/', '~1')}/{method}/responses/{status}"
                answers.append((pointer, response))
    examples = 0
    for pointer, response in answers:
        content = response.get("content", {}).get("application/json")
        if content is None:
            continue
        for example in [content["example"]] if "example" in content else []:
            validator(f"{pointer}/content/application~1json/schema").validate(example)
            examples += 1
        for example in content.get("examples", {}).values():
            validator(f"{pointer}/content/application~1json/schema").validate(example["value"])
            examples += 1
    # The key routes show what they answer: their success and their refusals.
    shared = spec["components"]["responses"]
    for path, item in spec["paths"].items():
        for method, operation in item.items() if path.startswith("/keys") else []:
            for status, response in operation["responses"].items():
                if status.startswith("2") or status in ("403", "404", "409"):
                    if "$ref" in response:
                        response = shared[response["$ref"].rsplit("/", 1)[1]]
                    content = response["content"]["application/json"]
                    assert "example" in content or "examples" in content, f"{method} {path} {status}"
    assert examples, "no response example was checked"


def test_the_functions_neither_panicked_nor_failed(stack):
    """After all the requests above (pytest runs this file in order): no panic, and no
    5xx logged by either function. So a request that the local router answered itself (see
    `local_router_cannot_carry`) cannot hide a function failing on it.
    """
    log = stack.watch_log.read_text(errors="replace")
    assert "panicked at" not in log, log[-5000:]
    errors = [line for line in log.splitlines() if line.startswith("{") and '"level":"ERROR"' in line]
    assert not errors, "\n".join(errors[-20:])


def test_service_unavailable_when_dynamodb_is_down(stack, api_key):
    """Last (it stops DynamoDB Local): a 503 with `retry-after`, as documented."""
    stack.stop_dynamodb()
    for path, body, headers in [
        ("/accounts", {"name": "Nobody Ltd"}, None),
        ("/payments", {"amount": 1, "currency": "usd"}, {"x-api-key": api_key}),
    ]:
        response = send(stack, path, body, headers, expect=503)
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["retry-after"] == ["1"]
    key = {"x-api-key": api_key}
    for path, case in [
        ("/payments/{id}", {"path_parameters": {"id": "pay_00000000000000000000"}}),
        ("/payments", {"query": {}}),
    ]:
        response = fetch(stack, path, key, 503, **case)
        assert response.json()["error"]["code"] == "service_unavailable"
