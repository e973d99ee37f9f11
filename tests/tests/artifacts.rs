//! Smoke test of the deploy artifacts: the exact arm64 `bootstrap` binaries that `sam build`
//! produced (`make package`), run under qemu-aarch64 against a Lambda Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`, which also routes HTTP like API Gateway) and
//! DynamoDB Local, driven through the whole flow over HTTP: every function's bootstrap.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use payments_tests::dynamodb_endpoint;
use payments_tests::stack::{
    free_port, fresh_tables, log_file, table_env, wait_until_listening, workspace_root, GroupGuard,
};
use reqwest::Client;
use serde_json::{json, Value};
use shared::domain::{ApiKey, KeyEnvironment};

const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

fn artifact(function: &str) -> PathBuf {
    let path = workspace_root()
        .join(".aws-sam/build")
        .join(function)
        .join("bootstrap");
    assert!(
        path.is_file(),
        "{} is missing: run `make package` (make test does) first",
        path.display()
    );
    let header = std::fs::read(&path).expect("read artifact");
    // ELF, 64-bit, e_machine = 183 (AArch64).
    assert_eq!(&header[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(header[4], 2, "not a 64-bit binary");
    assert_eq!(
        u16::from_le_bytes([header[18], header[19]]),
        183,
        "not arm64"
    );
    path
}

fn spawn_function(
    name: &str,
    bootstrap: &Path,
    runtime_port: u16,
    env: &[(&str, &str)],
) -> (GroupGuard, PathBuf) {
    let (log_path, log) = log_file(&format!("artifact-{name}-{runtime_port}.log"));
    let mut command = Command::new("qemu-aarch64");
    command
        .args(["-L", AARCH64_SYSROOT])
        .arg(bootstrap)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        // What the Lambda service sets for a function (the emulator takes a URL with a
        // per-function path where Lambda gives a bare host:port).
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{runtime_port}/.rt/{name}"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
        .env("AWS_REGION", "us-east-1")
        .envs(env.iter().copied())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log);
    (
        GroupGuard::spawn(
            command,
            "qemu-aarch64 (install qemu-user and libc6-arm64-cross)",
        ),
        log_path,
    )
}

/// Each function: its name in the emulator's routes, and its resource in the template.
const FUNCTIONS: [(&str, &str); 9] = [
    ("create-account", "CreateAccountFunction"),
    ("create-payment", "CreatePaymentFunction"),
    ("get-payment", "GetPaymentFunction"),
    ("list-payments", "ListPaymentsFunction"),
    ("create-key", "CreateKeyFunction"),
    ("list-keys", "ListKeysFunction"),
    ("get-key", "GetKeyFunction"),
    ("roll-key", "RollKeyFunction"),
    ("revoke-key", "RevokeKeyFunction"),
];

#[tokio::test]
async fn the_arm64_artifacts_serve_the_contract() {
    let binaries: Vec<(&str, PathBuf)> = FUNCTIONS
        .iter()
        .map(|(name, resource)| (*name, artifact(resource)))
        .collect();
    assert!(
        Path::new(AARCH64_SYSROOT)
            .join("lib/ld-linux-aarch64.so.1")
            .exists(),
        "the arm64 C library is missing: install libc6-arm64-cross"
    );

    let endpoint = dynamodb_endpoint();
    let tables = fresh_tables(&endpoint).await;
    let port = free_port();
    let (emulator_log, log) = log_file(&format!("runtime-api-{port}.log"));
    let mut emulator = Command::new("cargo");
    emulator
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "--invoke-address",
            "127.0.0.1",
        ])
        .args(["--invoke-port", &port.to_string()])
        .current_dir(workspace_root())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let _emulator = GroupGuard::spawn(emulator, "cargo lambda watch --only-lambda-apis");
    assert!(
        wait_until_listening(port, Duration::from_secs(120)),
        "runtime API emulator did not start: {}",
        std::fs::read_to_string(&emulator_log).unwrap_or_default()
    );

    let mut env = table_env(&tables).to_vec();
    env.extend([
        ("API_KEY_ENVIRONMENT", "test"),
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
    ]);
    let running: Vec<(&str, GroupGuard, PathBuf)> = binaries
        .iter()
        .map(|(name, binary)| {
            let (guard, log) = spawn_function(name, binary, port, &env);
            (*name, guard, log)
        })
        .collect();
    let logs = || {
        running
            .iter()
            .map(|(name, _, path)| {
                format!(
                    "{name}:\n{}\n",
                    std::fs::read_to_string(path).unwrap_or_default()
                )
            })
            .collect::<String>()
    };

    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let post = |path: &str, key: Option<&str>, body: Value| {
        let mut request = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };

    let response = post("/accounts", None, json!({"name": "Arm64 Ltd"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", logs());
    let account: Value = response.json().await.unwrap();
    let key = account["api_key"].as_str().unwrap().to_owned();
    payments_tests::record_key(&key);

    let mut created = Vec::new();
    for path in ["/payments", "/payments/create"] {
        let response = post(path, Some(&key), json!({"amount": 999, "currency": "usd"}))
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{path}\n{}", logs());
        let payment: Value = response.json().await.unwrap();
        assert_eq!(payment["client_id"], account["id"]);
        assert_eq!(payment["currency"], "USD");
        created.push(payment);
    }

    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .header("x-api-key", &key)
            .send()
    };
    let response = get(format!("/payments/{}", created[0]["id"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", logs());
    assert_eq!(response.json::<Value>().await.unwrap(), created[0]);
    let response = get("/payments/pay_00000000000000000000".into())
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "{}", logs());
    let newest_first: Vec<Value> = created.iter().rev().map(|p| p["id"].clone()).collect();
    let started = std::time::Instant::now();
    loop {
        let response = get("/payments".into()).await.unwrap();
        assert_eq!(response.status(), 200, "{}", logs());
        let list: Value = response.json().await.unwrap();
        let ids: Vec<Value> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].clone())
            .collect();
        if ids == newest_first || started.elapsed() > Duration::from_secs(5) {
            assert_eq!(ids, newest_first, "{}", logs());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = get("/payments?limit=0".into()).await.unwrap();
    assert_eq!(response.status(), 400);

    let unknown = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    for bad in ["sk_test_bad", unknown.expose_once()] {
        let response = post(
            "/payments",
            Some(bad),
            json!({"amount": 1, "currency": "USD"}),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key");
    }
    let response = post("/payments", None, json!({"amount": 1, "currency": "USD"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // The key routes: a read-only key, refused a payment, listed, read, rolled, revoked.
    let response = post(
        "/keys",
        Some(&key),
        json!({"name": "arm64 reader", "permissions": ["payments:read"]}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201, "{}", logs());
    let reader: Value = response.json().await.unwrap();
    let reader_key = reader["api_key"].as_str().unwrap().to_owned();
    payments_tests::record_key(&reader_key);
    let reader_id = reader["id"].as_str().unwrap().to_owned();
    let response = post(
        "/payments",
        Some(&reader_key),
        json!({"amount": 1, "currency": "USD"}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403, "{}", logs());
    let response = get("/keys".into()).await.unwrap();
    assert_eq!(response.status(), 200, "{}", logs());
    let listing: Value = response.json().await.unwrap();
    assert_eq!(listing["data"][0]["id"], reader_id.as_str());
    let response = get(format!("/keys/{reader_id}")).await.unwrap();
    assert_eq!(response.status(), 200, "{}", logs());
    let response = post(
        &format!("/keys/{reader_id}/roll"),
        Some(&key),
        json!({"expires_in": 60}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201, "{}", logs());
    let rolled: Value = response.json().await.unwrap();
    payments_tests::record_key(rolled["api_key"].as_str().unwrap());
    let response = http
        .delete(format!("{base}/keys/{reader_id}"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", logs());

    let all_logs = logs();
    assert!(all_logs.contains("connection warmed"), "{all_logs}");
    assert!(!all_logs.contains(&key[12..]), "API key in the logs");
    assert!(!all_logs.contains(&reader_key[12..]), "API key in the logs");
}
