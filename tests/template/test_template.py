"""Offline checks of template.yaml: every deployment property that can be verified without
an AWS account is asserted here, on the template as written and on the CloudFormation that
the SAM transform produces from it, so that no change can drop one silently.

Each check is a function returning a list of problems; the tests assert that the real
template has none, and that a template broken on purpose is caught.
"""

import copy
import os
from pathlib import Path

import pytest
import yaml
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags (!Ref, !GetAtt, ...) into their
    long form ({"Ref": ...}, {"Fn::GetAtt": [...]})."""


def _construct_tag(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template():
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


class NoManagedPolicies:
    def load(self):
        return {}


def transformed(template):
    """The CloudFormation the SAM transform makes of `template`. Local CodeUri paths are
    swapped for S3 URIs first, as `sam package` would."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = copy.deepcopy(template)
    for function in resources_of(template, "AWS::Serverless::Function").values():
        function["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    return transform(template, {}, NoManagedPolicies())


@pytest.fixture(scope="module")
def raw():
    return load_template()


@pytest.fixture(scope="module")
def cfn(raw):
    return transformed(raw)


def resources_of(template, type_name):
    return {
        name: res
        for name, res in template["Resources"].items()
        if res["Type"] == type_name
    }


def as_list(value):
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------
# Checks


# X-Ray's write actions take no resource-level permissions: the one allowed "*".
XRAY_WRITE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# SAM's role for CodeDeploy (canary deployments) and the one managed policy it needs.
CODEDEPLOY_ROLE = "CodeDeployServiceRole"
CODEDEPLOY_POLICY = "arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"


def check_iam(cfn):
    """No wildcard actions or resources (but X-Ray's writes), no managed policies (but
    CodeDeploy's own role), inline policies only."""
    problems = []
    for name, role in resources_of(cfn, "AWS::IAM::Role").items():
        props = role["Properties"]
        managed = props.get("ManagedPolicyArns")
        if managed and not (name == CODEDEPLOY_ROLE and managed == [CODEDEPLOY_POLICY]):
            problems.append(f"{name}: managed policies {managed}")
        for policy in props.get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                if statement.get("Effect") != "Allow":
                    continue
                for action in as_list(statement.get("Action", [])):
                    if "*" in action:
                        problems.append(f"{name}: wildcard action {action}")
                xray_only = set(as_list(statement.get("Action", []))) <= XRAY_WRITE
                for resource in as_list(statement.get("Resource", [])):
                    if resource == "*" and xray_only:
                        continue
                    if resource == "*" or (isinstance(resource, str) and resource.endswith(":*")):
                        problems.append(f"{name}: wildcard resource {resource}")
                if "NotAction" in statement or "NotResource" in statement:
                    problems.append(f"{name}: NotAction/NotResource")
    for name in resources_of(cfn, "AWS::Serverless::Function"):
        problems.append(f"{name}: untransformed function")
    return problems


def grants(cfn, role_name):
    """{action: [resources]} granted by a role's inline policies."""
    granted = {}
    role = cfn["Resources"][role_name]["Properties"]
    for policy in role.get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            for action in as_list(statement["Action"]):
                granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    return granted


def conditions(cfn, role_name, action):
    """The Condition blocks of a role's statements that grant `action`."""
    found = []
    role = cfn["Resources"][role_name]["Properties"]
    for policy in role.get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            if action in as_list(statement["Action"]):
                found.append(statement.get("Condition"))
    return found


# The only writes the payment functions may make to the clients table: a key's last use,
# and an environment's claim on its account's rate limit (on the account's RATE# item, only
# the claims and the TTL) that answers every claim.
KEY_USE_CONDITION = {
    "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "last_used_at"]},
    "StringEqualsIfExists": {"dynamodb:ReturnValues": "NONE"},
}
REQUEST_COUNT_CONDITION = {
    "ForAllValues:StringLike": {
        "dynamodb:LeadingKeys": ["RATE#*"],
        "dynamodb:Attributes": ["pk", "ttl", "env_*"],
    },
    "StringEquals": {"dynamodb:ReturnValues": "ALL_NEW"},
}


# What a key change may update: the account item and key items, never a payment or a
# request count.
KEY_CHANGE_CONDITION = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ACCOUNT#*", "KEY#*"]}}
# The roles of the routes that authenticate their caller's key, and whether each changes keys.
AUTHENTICATED_ROLES = {
    "CreatePaymentRole": False,
    "GetPaymentRole": False,
    "ListPaymentsRole": False,
    "ListKeysRole": False,
    "GetKeyRole": False,
    "CreateKeyRole": True,
    "RollKeyRole": True,
    "RevokeKeyRole": True,
}


def check_key_use_grants(cfn):
    problems = []
    for role, changes_keys in AUTHENTICATED_ROLES.items():
        found = conditions(cfn, role, "dynamodb:UpdateItem")
        expected = [KEY_USE_CONDITION, REQUEST_COUNT_CONDITION]
        if changes_keys:
            expected.append(KEY_CHANGE_CONDITION)
        if found != expected:
            problems.append(f"{role}: UpdateItem conditions {found}")
    return problems


def check_functions(raw):
    problems = []
    functions = resources_of(raw, "AWS::Serverless::Function")
    expected = {
        "CreateAccountFunction": "functions/create-account",
        "CreatePaymentFunction": "functions/create-payment",
        "GetPaymentFunction": "functions/get-payment",
        "ListPaymentsFunction": "functions/list-payments",
        "CreateKeyFunction": "functions/create-key",
        "ListKeysFunction": "functions/list-keys",
        "GetKeyFunction": "functions/get-key",
        "RollKeyFunction": "functions/roll-key",
        "RevokeKeyFunction": "functions/revoke-key",
    }
    if set(functions) != set(expected):
        problems.append(f"functions are {sorted(functions)}")
    globals_ = raw.get("Globals", {}).get("Function", {})
    for name, function in functions.items():
        props = {**globals_, **function["Properties"]}
        if props.get("Runtime") != "provided.al2023":
            problems.append(f"{name}: runtime {props.get('Runtime')}")
        if props.get("Architectures") != ["arm64"]:
            problems.append(f"{name}: architectures {props.get('Architectures')}")
        if props.get("Handler") != "bootstrap":
            problems.append(f"{name}: handler {props.get('Handler')}")
        if function.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{name}: build method")
        if props.get("CodeUri") != expected.get(name):
            problems.append(f"{name}: CodeUri {props.get('CodeUri')}")
        if not (128 <= props.get("MemorySize", 0) <= 1024):
            problems.append(f"{name}: memory {props.get('MemorySize')}")
        if not (6 <= props.get("Timeout", 0) <= 29):
            # Above the SDK's 5 s operation timeout, below API Gateway's 30 s limit.
            problems.append(f"{name}: timeout {props.get('Timeout')}")
        variables = props.get("Environment", {}).get("Variables", {})
        for var in ("CLIENTS_TABLE", "PAYMENTS_TABLE", "AUDIT_TABLE", "API_KEY_ENVIRONMENT",
                    "DEFAULT_RATE_LIMIT", "RUST_LOG"):
            if var not in variables:
                problems.append(f"{name}: missing env {var}")
        if "LogGroup" not in props.get("LoggingConfig", {}):
            problems.append(f"{name}: no dedicated log group")
        if props.get("LoggingConfig", {}).get("ApplicationLogLevel") != "TRACE":
            # Lambda's own filter would drop the EMF metrics lines at WARN or ERROR.
            problems.append(f"{name}: application log level filtered by Lambda")
        if props.get("LoggingConfig", {}).get("SystemLogLevel") != "INFO":
            # WARN would drop the REPORT lines (duration, memory, init) of healthy requests.
            problems.append(f"{name}: system log level {props.get('LoggingConfig', {}).get('SystemLogLevel')}")
        if props.get("AutoPublishAlias") != "live":
            problems.append(f"{name}: no live alias")
        if props.get("Tracing") != "Active":
            problems.append(f"{name}: tracing {props.get('Tracing')}")
        if props.get("ReservedConcurrentExecutions") != {
            "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
        }:
            problems.append(f"{name}: reserved concurrency not tied to its parameter")
    return problems


def check_tables(raw):
    problems = []
    tables = resources_of(raw, "AWS::DynamoDB::Table")
    if set(tables) != {"ClientsTable", "PaymentsTable", "AuditTable"}:
        problems.append(f"tables are {sorted(tables)}")
    for name, table in tables.items():
        props = table["Properties"]
        if table.get("DeletionPolicy") != "Retain" or table.get("UpdateReplacePolicy") != "Retain":
            problems.append(f"{name}: not retained on delete/replace")
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            problems.append(f"{name}: billing {props.get('BillingMode')}")
        pitr = props.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled") is not True:
            problems.append(f"{name}: no point-in-time recovery")
        if props.get("SSESpecification", {}).get("SSEEnabled") is not True:
            problems.append(f"{name}: no server-side encryption")
        if props.get("DeletionProtectionEnabled") != {"Ref": "TableDeletionProtection"}:
            problems.append(f"{name}: deletion protection not tied to its parameter")
        keys = props.get("KeySchema", [])
        expected_keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
        if name == "AuditTable":
            expected_keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        if keys != expected_keys:
            problems.append(f"{name}: key schema {keys}")
        indexes = props.get("GlobalSecondaryIndexes", [])
        expected_indexes = []
        if name == "PaymentsTable":
            expected_indexes = [
                {
                    "IndexName": "by_account",
                    "KeySchema": [
                        {"AttributeName": "client_id", "KeyType": "HASH"},
                        {"AttributeName": "list_key", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ]
        if indexes != expected_indexes:
            problems.append(f"{name}: global secondary indexes {indexes}")
        if props.get("LocalSecondaryIndexes"):
            # An LSI caps each account's item collection at 10 GB (docs/data-model.md).
            problems.append(f"{name}: local secondary index")
        defined = {d["AttributeName"]: d["AttributeType"] for d in props.get("AttributeDefinitions", [])}
        used = {k["AttributeName"] for k in keys} | {
            k["AttributeName"] for index in indexes for k in index["KeySchema"]
        }
        if set(defined) != used or set(defined.values()) != {"S"}:
            problems.append(f"{name}: attribute definitions {defined}")
    for name in ("ClientsTable", "AuditTable"):
        ttl = tables.get(name, {}).get("Properties", {}).get("TimeToLiveSpecification", {})
        if not ttl.get("Enabled") or ttl.get("AttributeName") != "ttl":
            problems.append(f"{name}: no TTL attribute")
    if raw["Parameters"]["TableDeletionProtection"].get("Default") != "true":
        problems.append("deletion protection is not on by default")
    return problems


def check_api(raw, cfn):
    problems = []
    api = raw["Resources"].get("HttpApi", {})
    if api.get("Type") != "AWS::Serverless::HttpApi":
        problems.append("no HttpApi")
    props = api.get("Properties", {})
    throttle = props.get("DefaultRouteSettings", {})
    if "ThrottlingRateLimit" not in throttle or "ThrottlingBurstLimit" not in throttle:
        problems.append("no stage throttling")
    access = props.get("AccessLogSettings", {})
    if not access.get("DestinationArn") or "$context.requestId" not in access.get("Format", ""):
        problems.append("no access logging")
    if "header" in access.get("Format", "").lower():
        problems.append("access log format logs headers")
    for name, group in resources_of(raw, "AWS::Logs::LogGroup").items():
        if "RetentionInDays" not in group["Properties"]:
            problems.append(f"{name}: no retention")
    if len(resources_of(raw, "AWS::Logs::LogGroup")) < 3:
        problems.append("expected access and function log groups")

    # Routes as API Gateway will see them after the SAM transform.
    routes = {}
    for api_res in resources_of(cfn, "AWS::ApiGatewayV2::Api").values():
        for path, methods in api_res["Properties"].get("Body", {}).get("paths", {}).items():
            for method, spec in methods.items():
                integration = spec.get("x-amazon-apigateway-integration", {})
                uri = str(integration.get("uri"))
                routes[f"{method.upper()} {path}"] = (uri, integration.get("payloadFormatVersion"), spec.get("security"))
    for route in resources_of(cfn, "AWS::ApiGatewayV2::Route").values():
        key = route["Properties"]["RouteKey"]
        routes[key] = ("route", None, route["Properties"].get("AuthorizationType"))
    for key, function in [
        ("POST /payments", "CreatePaymentFunction"),
        ("POST /payments/create", "CreatePaymentFunction"),
        ("GET /payments/{id}", "GetPaymentFunction"),
        ("GET /payments", "ListPaymentsFunction"),
        ("POST /keys", "CreateKeyFunction"),
        ("GET /keys", "ListKeysFunction"),
        ("GET /keys/{id}", "GetKeyFunction"),
        ("POST /keys/{id}/roll", "RollKeyFunction"),
        ("DELETE /keys/{id}", "RevokeKeyFunction"),
    ]:
        uri, version, security = routes.get(key, ("", None, None))
        if function not in uri:
            problems.append(f"{key} does not reach {function}")
        if version != "2.0":
            problems.append(f"{key}: payload format {version}")
        if security:
            problems.append(f"{key}: has an API Gateway authorizer {security}")
    accounts = resources_of(cfn, "AWS::ApiGatewayV2::Route")
    account_routes = [r for r in accounts.values() if r["Properties"]["RouteKey"] == "POST /accounts"]
    if len(account_routes) != 1:
        problems.append("POST /accounts route missing")
    else:
        auth = account_routes[0]["Properties"].get("AuthorizationType")
        if auth != {"Fn::If": ["AccountsOpen", "NONE", "AWS_IAM"]}:
            problems.append(f"POST /accounts authorization {auth}")
        if raw["Parameters"]["AccountsEndpointAuth"].get("Default") != "AWS_IAM":
            problems.append("POST /accounts is not IAM-protected by default")
    integrations = resources_of(cfn, "AWS::ApiGatewayV2::Integration")
    for name, integration in integrations.items():
        if integration["Properties"].get("PayloadFormatVersion") != "2.0":
            problems.append(f"{name}: payload format")
    # API Gateway API keys are not authentication and would answer 403 instead of our 401.
    for type_name in ("AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan"):
        if resources_of(cfn, type_name):
            problems.append(f"{type_name} present")
    for route in accounts.values():
        if route["Properties"].get("ApiKeyRequired"):
            problems.append("ApiKeyRequired set")
    return problems


# ---------------------------------------------------------------------------------------
# Tests on the real template


def test_iam_is_least_privilege(cfn):
    assert check_iam(cfn) == []
    account = grants(cfn, "CreateAccountRole")
    payment = grants(cfn, "CreatePaymentRole")
    clients = {"Fn::GetAtt": ["ClientsTable", "Arn"]}
    payments = {"Fn::GetAtt": ["PaymentsTable", "Arn"]}
    audit = {"Fn::GetAtt": ["AuditTable", "Arn"]}
    assert check_key_use_grants(cfn) == []
    # Active tracing: X-Ray's two write actions, which take no resource (checked above).
    XRAY = {"xray:PutTelemetryRecords": ["*"], "xray:PutTraceSegments": ["*"]}
    # Account creation adds audit events; nothing in the stack reads or changes them.
    assert account == {
        "dynamodb:PutItem": [clients, audit],
        "logs:CreateLogStream": [{"Fn::GetAtt": ["CreateAccountLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["CreateAccountLogGroup", "Arn"]}],
        **XRAY,
    }
    assert payment == {
        "dynamodb:GetItem": [clients],
        "dynamodb:PutItem": [payments],
        "dynamodb:UpdateItem": [clients, clients],
        "logs:CreateLogStream": [{"Fn::GetAtt": ["CreatePaymentLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["CreatePaymentLogGroup", "Arn"]}],
        **XRAY,
    }
    # Retrieve reads; it never writes, queries or scans.
    assert grants(cfn, "GetPaymentRole") == {
        "dynamodb:GetItem": [clients, payments],
        "dynamodb:UpdateItem": [clients, clients],
        "logs:CreateLogStream": [{"Fn::GetAtt": ["GetPaymentLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["GetPaymentLogGroup", "Arn"]}],
        **XRAY,
    }
    # List queries the index only (the account is its partition key), never the table.
    assert grants(cfn, "ListPaymentsRole") == {
        "dynamodb:GetItem": [clients, payments],
        "dynamodb:UpdateItem": [clients, clients],
        "dynamodb:Query": [{"Fn::Sub": "${PaymentsTable.Arn}/index/by_account"}],
        "logs:CreateLogStream": [{"Fn::GetAtt": ["ListPaymentsLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["ListPaymentsLogGroup", "Arn"]}],
        **XRAY,
    }
    # The key routes: no access to payments. Reading keys is the account item and a batch
    # read of its key items (for their last use); changing them, one transaction of the
    # account item, key items and references, and the change's audit event.
    key_use = {
        "dynamodb:GetItem": [clients],
        "dynamodb:UpdateItem": [clients, clients],
    }
    for reader in ("ListKeys", "GetKey"):
        assert grants(cfn, f"{reader}Role") == {
            **key_use,
            "dynamodb:BatchGetItem": [clients],
            "logs:CreateLogStream": [{"Fn::GetAtt": [f"{reader}LogGroup", "Arn"]}],
            "logs:PutLogEvents": [{"Fn::GetAtt": [f"{reader}LogGroup", "Arn"]}],
            **XRAY,
        }
        assert conditions(cfn, f"{reader}Role", "dynamodb:BatchGetItem") == [
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["KEY#*"]}}
        ]
    for writer, puts in (("CreateKey", True), ("RollKey", True), ("RevokeKey", False)):
        expected = {
            "dynamodb:GetItem": [clients],
            "dynamodb:UpdateItem": [clients, clients, clients],
            "dynamodb:PutItem": [clients, audit] if puts else [audit],
            "logs:CreateLogStream": [{"Fn::GetAtt": [f"{writer}LogGroup", "Arn"]}],
            "logs:PutLogEvents": [{"Fn::GetAtt": [f"{writer}LogGroup", "Arn"]}],
            **XRAY,
        }
        assert grants(cfn, f"{writer}Role") == expected, writer
        if puts:
            # New key items and references only, never an account or a payment.
            assert conditions(cfn, f"{writer}Role", "dynamodb:PutItem") == [
                {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["KEY#*", "KEYID#*"]}},
                None,
            ]
    # Nothing in the stack scans.
    for role in resources_of(cfn, "AWS::IAM::Role"):
        assert "dynamodb:Scan" not in grants(cfn, role), role
    roles = {
        name: fn["Properties"]["Role"]
        for name, fn in resources_of(cfn, "AWS::Lambda::Function").items()
    }
    assert roles == {
        f"{name}Function": {"Fn::GetAtt": [f"{name}Role", "Arn"]}
        for name in ("CreateAccount", "CreatePayment", "GetPayment", "ListPayments",
                     "CreateKey", "ListKeys", "GetKey", "RollKey", "RevokeKey")
    }


def test_functions_are_arm64_rust_with_their_settings(raw):
    assert check_functions(raw) == []


def test_tables_are_protected(raw):
    assert check_tables(raw) == []


def test_api_routes_auth_throttling_and_logs(raw, cfn):
    assert check_api(raw, cfn) == []


def test_outputs(raw):
    assert {"ApiUrl", "ClientsTableName", "PaymentsTableName", "AuditTableName"} <= set(raw["Outputs"])


# ---------------------------------------------------------------------------------------
# The checks catch what they are meant to catch


def test_checks_catch_a_wildcard_action(raw):
    broken = copy.deepcopy(raw)
    statements = broken["Resources"]["CreatePaymentRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements[0]["Action"] = ["dynamodb:*"]
    assert any("wildcard action" in p for p in check_iam(transformed(broken)))


def test_checks_catch_a_wildcard_resource_and_managed_policy(raw):
    broken = copy.deepcopy(raw)
    role = broken["Resources"]["CreateAccountRole"]["Properties"]
    role["Policies"][0]["PolicyDocument"]["Statement"][0]["Resource"] = "*"
    role["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"]
    problems = check_iam(transformed(broken))
    assert any("wildcard resource" in p for p in problems)
    assert any("managed policies" in p for p in problems)


def test_checks_catch_an_open_accounts_route(raw):
    broken = copy.deepcopy(raw)
    broken["Resources"]["CreateAccountRoute"]["Properties"]["AuthorizationType"] = "NONE"
    assert any("POST /accounts authorization" in p for p in check_api(broken, transformed(broken)))


def test_checks_catch_missing_pitr_throttling_and_x86(raw):
    broken = copy.deepcopy(raw)
    del broken["Resources"]["PaymentsTable"]["Properties"]["PointInTimeRecoverySpecification"]
    del broken["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    broken["Globals"]["Function"]["Architectures"] = ["x86_64"]
    del broken["Resources"]["ApiAccessLogGroup"]["Properties"]["RetentionInDays"]
    assert any("point-in-time" in p for p in check_tables(broken))
    api_problems = check_api(broken, transformed(broken))
    assert "no stage throttling" in api_problems
    assert any("no retention" in p for p in api_problems)
    assert any("architectures" in p for p in check_functions(broken))


def test_checks_catch_an_authorizer_on_payments(raw):
    broken = copy.deepcopy(raw)
    api = broken["Resources"]["HttpApi"]["Properties"]
    api["Auth"] = {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}
    assert any("authorizer" in p for p in check_api(broken, transformed(broken)))


def test_checks_catch_an_lsi_or_a_missing_index(raw):
    broken = copy.deepcopy(raw)
    props = broken["Resources"]["PaymentsTable"]["Properties"]
    props["LocalSecondaryIndexes"] = props.pop("GlobalSecondaryIndexes")
    problems = check_tables(broken)
    assert any("local secondary index" in p for p in problems)
    assert any("global secondary indexes" in p for p in problems)


def test_checks_catch_an_unrestricted_key_use_grant(cfn):
    broken = copy.deepcopy(cfn)
    for policy in broken["Resources"]["GetPaymentRole"]["Properties"]["Policies"]:
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            statement.pop("Condition", None)
    assert check_key_use_grants(broken) == ["GetPaymentRole: UpdateItem conditions [None, None]"]


def test_checks_catch_an_audit_table_without_retention(raw):
    broken = copy.deepcopy(raw)
    del broken["Resources"]["AuditTable"]["Properties"]["TimeToLiveSpecification"]
    assert "AuditTable: no TTL attribute" in check_tables(broken)


# ---------------------------------------------------------------------------------------
# Operability: alarms, their topic, rollback triggers, suppressions with reasons

FUNCTION_ALARMS = {
    "CreateAccountFunction": ["CreateAccountServerErrorsAlarm", "CreateAccountThrottlesAlarm"],
    "CreatePaymentFunction": ["CreatePaymentServerErrorsAlarm", "CreatePaymentThrottlesAlarm"],
    "GetPaymentFunction": ["GetPaymentServerErrorsAlarm", "GetPaymentThrottlesAlarm"],
    "ListPaymentsFunction": ["ListPaymentsServerErrorsAlarm", "ListPaymentsThrottlesAlarm"],
    "CreateKeyFunction": ["CreateKeyServerErrorsAlarm", "CreateKeyThrottlesAlarm"],
    "ListKeysFunction": ["ListKeysServerErrorsAlarm", "ListKeysThrottlesAlarm"],
    "GetKeyFunction": ["GetKeyServerErrorsAlarm", "GetKeyThrottlesAlarm"],
    "RollKeyFunction": ["RollKeyServerErrorsAlarm", "RollKeyThrottlesAlarm"],
    "RevokeKeyFunction": ["RevokeKeyServerErrorsAlarm", "RevokeKeyThrottlesAlarm"],
}
SERVICE_ALARMS = [
    "ApiServerErrorRateAlarm",
    "ApiLatencyAlarm",
    "AuthRefusalsAlarm",
    "RateLimitedAlarm",
    "KeyChangeRefusalsAlarm",
    "DynamoDbThrottlesAlarm",
    "DynamoDbSystemErrorsAlarm",
    "ConcurrencyAlarm",
]
# The EMF metrics' Function dimension, as the functions name themselves.
FUNCTION_METRIC_NAMES = {
    "CreateAccountFunction": "create_account",
    "CreatePaymentFunction": "create_payment",
    "GetPaymentFunction": "get_payment",
    "ListPaymentsFunction": "list_payments",
    "CreateKeyFunction": "create_key",
    "ListKeysFunction": "list_keys",
    "GetKeyFunction": "get_key",
    "RollKeyFunction": "roll_key",
    "RevokeKeyFunction": "revoke_key",
}


def check_alarms(raw):
    problems = []
    alarms = resources_of(raw, "AWS::CloudWatch::Alarm")
    expected = set(SERVICE_ALARMS) | {a for pair in FUNCTION_ALARMS.values() for a in pair}
    if set(alarms) != expected:
        problems.append(f"alarms missing {sorted(expected - set(alarms))}, extra {sorted(set(alarms) - expected)}")
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        if props.get("AlarmActions") != [{"Ref": "AlarmTopic"}]:
            problems.append(f"{name}: does not notify the alarm topic")
        if props.get("TreatMissingData") != "notBreaching":
            problems.append(f"{name}: missing data would alarm")
        if not props.get("AlarmDescription"):
            problems.append(f"{name}: no description")
        threshold = props.get("Threshold")
        if not (isinstance(threshold, dict) and "Ref" in threshold):
            problems.append(f"{name}: threshold {threshold} is not a parameter")
    for function, (errors, _) in FUNCTION_ALARMS.items():
        dims = alarms.get(errors, {}).get("Properties", {}).get("Dimensions", [])
        if {"Name": "Function", "Value": FUNCTION_METRIC_NAMES[function]} not in dims:
            problems.append(f"{errors}: not on {function}'s own metrics")
    if set(resources_of(raw, "AWS::CloudWatch::Dashboard")) != {"Dashboard"}:
        problems.append("no dashboard")
    topics = resources_of(raw, "AWS::SNS::Topic")
    if set(topics) != {"AlarmTopic"}:
        problems.append(f"topics {sorted(topics)}")
    subscription = raw["Resources"].get("AlarmEmailSubscription", {})
    if subscription.get("Condition") != "HasAlarmEmail":
        problems.append("no optional e-mail subscription")
    for parameter in ["ApiServerErrorRatePercent", "ApiLatencyP99Ms", "FunctionServerErrors",
                      "FunctionThrottlesPerMinute", "DynamoDbErrorsPerMinute",
                      "AuthRefusalsPer5Minutes", "RateLimitedPer5Minutes", "KeyRefusalsPer5Minutes",
                      "ConcurrencyAlarmThreshold",
                      "AlarmEmail", "DefaultRateLimit"]:
        if "Default" not in raw["Parameters"].get(parameter, {}):
            problems.append(f"parameter {parameter} missing or without a default")
    return problems


# Every 403 and 409 a self-service key change can answer, by the function's metric name: what
# KeyChangeRefusalsAlarm watches. create-key judges no existing key's state (no
# key_not_active, no would_lock_out), and revoke-key adds no key (no too_many_live_keys).
KEY_CHANGE_REFUSALS = {
    ("create_key", "insufficient_permissions"),
    ("create_key", "too_many_live_keys"),
    ("roll_key", "insufficient_permissions"),
    ("roll_key", "key_not_active"),
    ("roll_key", "too_many_live_keys"),
    ("revoke_key", "insufficient_permissions"),
    ("revoke_key", "would_lock_out"),
}


def check_key_change_alarm(raw):
    problems = []
    queries = raw["Resources"]["KeyChangeRefusalsAlarm"]["Properties"]["Metrics"]
    watched = set()
    for query in queries:
        if "MetricStat" not in query:
            continue
        dimensions = {d["Name"]: d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"]}
        watched.add((dimensions["Function"], dimensions["Outcome"]))
    if watched != KEY_CHANGE_REFUSALS:
        problems.append(f"watches {sorted(watched - KEY_CHANGE_REFUSALS)} beyond the refusals, "
                        f"misses {sorted(KEY_CHANGE_REFUSALS - watched)}")
    # CloudWatch's hard limit for a metric math alarm.
    if len(watched) > 10:
        problems.append(f"{len(watched)} metrics, at most 10")
    expressions = [q["Expression"] for q in queries if "Expression" in q]
    if expressions != ["SUM(METRICS())"]:
        problems.append(f"expressions {expressions}")
    return problems


def test_the_key_change_alarm_watches_every_refusal_of_a_key_change(raw):
    assert check_key_change_alarm(raw) == []
    # Every 409 the spec documents for the key routes is one of them.
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    conflict = spec["components"]["schemas"]["KeyConflictError"]["properties"]["error"]["properties"]
    assert set(conflict["code"]["enum"]) <= {outcome for _, outcome in KEY_CHANGE_REFUSALS}


def test_checks_catch_an_unwatched_key_change_refusal(raw):
    broken = copy.deepcopy(raw)
    queries = broken["Resources"]["KeyChangeRefusalsAlarm"]["Properties"]["Metrics"]
    queries[:] = [q for q in queries if q["Id"] != "roll_key3"]
    assert check_key_change_alarm(broken) == [
        "watches [] beyond the refusals, misses [('roll_key', 'too_many_live_keys')]"
    ]


def check_deployments(raw, cfn):
    problems = []
    functions = resources_of(raw, "AWS::Serverless::Function")
    for name, alarms in FUNCTION_ALARMS.items():
        preference = functions.get(name, {}).get("Properties", {}).get("DeploymentPreference", {})
        if preference.get("Type") != {"Ref": "DeploymentType"}:
            problems.append(f"{name}: deployment type {preference.get('Type')}")
        if preference.get("Alarms") != [{"Ref": alarm} for alarm in alarms]:
            problems.append(f"{name}: rollback alarms {preference.get('Alarms')}")
    if not resources_of(cfn, "AWS::CodeDeploy::DeploymentGroup"):
        problems.append("no CodeDeploy deployment groups")
    # Every route invokes the `live` alias, never the unpublished function.
    for api in resources_of(cfn, "AWS::ApiGatewayV2::Api").values():
        for path, methods in api["Properties"].get("Body", {}).get("paths", {}).items():
            for method, spec in methods.items():
                uri = str(spec.get("x-amazon-apigateway-integration", {}).get("uri"))
                if "Aliaslive" not in uri:
                    problems.append(f"{method.upper()} {path} invokes {uri}")
    for name, integration in resources_of(cfn, "AWS::ApiGatewayV2::Integration").items():
        if integration["Properties"].get("IntegrationUri") != {"Ref": "CreateAccountFunctionAliaslive"}:
            problems.append(f"{name}: invokes {integration['Properties'].get('IntegrationUri')}")
    return problems


def check_suppressions(raw):
    """Every checkov skip and cfn-lint ignore sits on its resource with a reason."""
    problems = []
    for name, resource in raw["Resources"].items():
        metadata = resource.get("Metadata", {})
        for skip in metadata.get("checkov", {}).get("skip", []):
            if len(str(skip.get("comment", "")).strip()) < 20:
                problems.append(f"{name}: checkov {skip.get('id')} without a reason")
        reasons = metadata.get("SuppressionReasons", {})
        for rule in metadata.get("cfn-lint", {}).get("config", {}).get("ignore_checks", []):
            if len(str(reasons.get(rule, "")).strip()) < 20:
                problems.append(f"{name}: cfn-lint {rule} without a reason")
    return problems


def test_alarms_notify_and_cover_each_function(raw):
    assert check_alarms(raw) == []


def test_deployments_are_gradual_and_roll_back_on_alarms(raw, cfn):
    assert check_deployments(raw, cfn) == []


def test_every_suppression_has_its_reason(raw):
    assert check_suppressions(raw) == []
    skipped = {
        skip["id"]
        for resource in raw["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    # Exactly the checks argued against, each in its own comment beside the resource.
    assert skipped == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173", "CKV_AWS_158", "CKV_AWS_119", "CKV_AWS_26"}


def test_checks_catch_a_missing_alarm_or_rollback_trigger(raw):
    broken = copy.deepcopy(raw)
    del broken["Resources"]["AuthRefusalsAlarm"]
    assert any("AuthRefusalsAlarm" in p for p in check_alarms(broken))
    broken = copy.deepcopy(raw)
    broken["Resources"]["CreatePaymentFunction"]["Properties"]["DeploymentPreference"]["Alarms"].pop()
    assert check_deployments(broken, transformed(broken)) == [
        "CreatePaymentFunction: rollback alarms [{'Ref': 'CreatePaymentServerErrorsAlarm'}]"
    ]
    broken = copy.deepcopy(raw)
    broken["Resources"]["CreateAccountIntegration"]["Properties"]["IntegrationUri"] = {
        "Fn::GetAtt": ["CreateAccountFunction", "Arn"]
    }
    assert any("CreateAccountIntegration" in p for p in check_deployments(broken, transformed(broken)))
    broken = copy.deepcopy(raw)
    broken["Globals"]["Function"]["AutoPublishAlias"] = None
    assert any("no live alias" in p for p in check_functions(broken))


def test_checks_catch_a_suppression_without_its_reason(raw):
    broken = copy.deepcopy(raw)
    broken["Resources"]["PaymentsTable"]["Metadata"]["checkov"]["skip"][0]["comment"] = ""
    assert check_suppressions(broken) == ["PaymentsTable: checkov CKV_AWS_119 without a reason"]
    broken = copy.deepcopy(raw)
    del broken["Resources"]["GetPaymentFunction"]["Metadata"]["SuppressionReasons"]
    assert check_suppressions(broken) == ["GetPaymentFunction: cfn-lint WS1004 without a reason"]


def test_checks_catch_report_lines_dropped(raw):
    broken = copy.deepcopy(raw)
    broken["Resources"]["ListPaymentsFunction"]["Properties"]["LoggingConfig"]["SystemLogLevel"] = "WARN"
    assert check_functions(broken) == ["ListPaymentsFunction: system log level WARN"]


def test_the_dashboard_body_is_valid_json_on_the_service_metrics(raw):
    import json
    import re

    body, variables = raw["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(variables) == {"Ns"}
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    titles = [w["properties"]["title"] for w in dashboard["widgets"]]
    assert len(titles) >= 5, titles
    names = {m[1] for w in dashboard["widgets"] for m in w["properties"]["metrics"] if m[0] != "..."}
    assert {"Requests", "DynamoDbCallLatency", "AuthRefusals", "RateLimited", "Latency"} <= names
