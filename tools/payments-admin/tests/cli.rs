//! The operator CLI end to end: the real binary against DynamoDB Local, every command and
//! its error cases.

// The payment handler's future (deadline, auth, SDK call) nests deeper than the compiler's
// default layout depth once this file's own async helpers wrap it.
#![recursion_limit = "256"]

use std::process::{Command, Output};

use payments_tests::TestApp;
use serde_json::{json, Value};

struct Cli<'a> {
    app: &'a TestApp,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_payments-admin"))
            .args(["--endpoint-url", &payments_tests::dynamodb_endpoint()])
            .args(["--clients-table", &self.app.clients_table])
            .args(["--payments-table", &self.app.payments_table])
            .args(["--audit-table", &self.app.audit_table])
            .args(["--actor", "cli-test"])
            .args(args)
            .env_remove("API_KEY_ENVIRONMENT")
            .output()
            .expect("run payments-admin")
    }

    /// Runs with --json, expects success, returns the parsed stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON on stdout")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn pays(app: &TestApp, key: &str) -> u16 {
    app.create_payment(Some(key), json!({"amount": 1, "currency": "USD"}))
        .await
        .status
}

#[tokio::test]
async fn every_command_end_to_end() {
    let app = TestApp::spawn().await;
    let cli = Cli { app: &app };
    let (account, first_key) = app.new_client().await;

    // accounts show
    let shown = cli.json(&["accounts", "show", &account]);
    assert_eq!(shown["account"]["id"], account.as_str());
    assert_eq!(shown["account"]["status"], "active");
    assert_eq!(shown["keys"].as_array().unwrap().len(), 1);
    let human = cli.run(&["accounts", "show", &account]);
    assert!(human.status.success());
    assert!(text(&human.stdout).contains("status=active"));

    // keys list: ids, prefixes, dates, state; never a secret or a digest
    let listed = cli.json(&["keys", "list", &account]);
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["prefix"], &first_key[..12]);
    assert_eq!(keys[0]["state"], "active");
    let first_key_id = keys[0]["key_id"].as_str().unwrap().to_owned();
    let digest = shared::domain::ApiKey::parse(&first_key, shared::domain::KeyEnvironment::Test)
        .unwrap()
        .digest()
        .to_hex();
    let listing = listed.to_string();
    assert!(!listing.contains(&first_key[12..]) && !listing.contains(&digest));

    // keys rotate: a new key, shown once, working at once; the old one in its grace period
    let rotated = cli.json(&[
        "keys",
        "rotate",
        &account,
        "--grace",
        "1h",
        "--key-environment",
        "test",
    ]);
    let new_key = rotated["api_key"].as_str().unwrap().to_owned();
    assert!(new_key.starts_with("sk_test_"));
    assert_eq!(rotated["retiring"][0]["key_id"], first_key_id.as_str());
    assert_eq!(pays(&app, &new_key).await, 201);
    assert_eq!(pays(&app, &first_key).await, 201);
    let listed = cli.json(&["keys", "list", &account]);
    let states: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.len(), 2);
    assert!(states.contains(&"expiring") && states.contains(&"active"));
    assert!(!listed.to_string().contains(&new_key[12..]));

    // keys revoke: the old key stops on the next request; revoking twice is harmless
    let revoked = cli.json(&["keys", "revoke", &first_key_id]);
    assert_eq!(revoked["already_revoked"], false);
    assert_eq!(pays(&app, &first_key).await, 401);
    assert_eq!(pays(&app, &new_key).await, 201);
    assert_eq!(
        cli.json(&["keys", "revoke", &first_key_id])["already_revoked"],
        true
    );

    // accounts deactivate / reactivate
    let off = cli.json(&["accounts", "deactivate", &account]);
    assert_eq!(
        (off["status"].as_str(), off["changed"].as_bool()),
        (Some("inactive"), Some(true))
    );
    assert_eq!(pays(&app, &new_key).await, 401);
    assert_eq!(
        cli.json(&["accounts", "deactivate", &account])["changed"],
        false
    );
    cli.json(&["accounts", "reactivate", &account]);
    assert_eq!(pays(&app, &new_key).await, 201);
    assert_eq!(pays(&app, &first_key).await, 401, "revoked stays revoked");

    // audit events on stderr: who, what, no secrets
    let output = cli.run(&[
        "keys",
        "rotate",
        &account,
        "--grace",
        "0",
        "--key-environment",
        "test",
    ]);
    assert!(output.status.success());
    let stderr = text(&output.stderr);
    let audit: Value = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["action"] == "key.rotated")
        .unwrap_or_else(|| panic!("no audit event in: {stderr}"));
    assert_eq!(audit["actor"], "cli-test");
    assert_eq!(audit["account_id"], account.as_str());
    assert!(audit["at"].is_string());
    let printed_key = text(&output.stdout)
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("sk_test_")
                .map(|rest| format!("sk_test_{rest}"))
        })
        .expect("new key printed once");
    assert!(!stderr.contains(&printed_key[12..]), "key in the audit log");
    assert_eq!(pays(&app, &printed_key).await, 201);
    assert_eq!(pays(&app, &new_key).await, 401, "grace 0 retires at once");

    // audit list: the durable trail, newest first
    let trail = cli.json(&["audit", "list", &account]);
    let events = trail["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "key.rotated",
            "account.reactivated",
            "account.deactivated",
            "key.revoked",
            "key.rotated",
            "account.created",
        ]
    );
    for event in events {
        assert!(
            event["at"].is_string() && event["actor"].is_string(),
            "{event}"
        );
    }
    assert_eq!(events[0]["actor"], "cli-test");
    assert_eq!(events[5]["actor"], "anonymous");
    let limited = cli.json(&["audit", "list", &account, "--limit", "2"]);
    assert_eq!(limited["events"].as_array().unwrap().len(), 2);
    let human = cli.run(&["audit", "list", &account]);
    assert!(text(&human.stdout).contains("account.deactivated"));
    for secret in [&first_key[12..], &new_key[12..], &printed_key[12..]] {
        assert!(!trail.to_string().contains(secret));
    }
}

#[tokio::test]
async fn restricted_keys_created_rolled_and_listed_and_self_service_changes_in_the_trail() {
    let app = TestApp::spawn().await;
    let cli = Cli { app: &app };
    let (account, secret) = app.new_client().await;
    let created = cli.json(&[
        "keys",
        "create",
        &account,
        "--name",
        "reconciliation",
        "--permission",
        "payments:read",
        "--allowed-ip",
        "203.0.113.0/24",
        "--allowed-ip",
        "2001:db8::1",
        "--expires-in",
        "30d",
    ]);
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("rk_test_"), "{created}");
    assert_eq!(created["key"]["kind"], "restricted");
    assert_eq!(created["key"]["permissions"], json!(["payments:read"]));
    assert_eq!(
        created["key"]["allowed_ips"],
        json!(["203.0.113.0/24", "2001:db8::1/128"])
    );
    assert_eq!(created["key"]["state"], "expiring");
    let key_id = created["key"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        pays(&app, &key).await,
        401,
        "no source address: outside its ranges"
    );

    // A key with an end ahead is expiring: it cannot be rolled.
    let output = cli.run(&["keys", "roll", &key_id, "--grace", "10m", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["error"]["code"], "key_not_active", "{body}");

    // Rolled by id, a key without an end: the new key keeps what the old one was given.
    let nightly = cli.json(&[
        "keys",
        "create",
        &account,
        "--name",
        "nightly",
        "--permission",
        "payments:read",
        "--allowed-ip",
        "203.0.113.0/24",
    ]);
    assert_eq!(nightly["key"]["state"], "active");
    let nightly_id = nightly["key"]["key_id"].as_str().unwrap().to_owned();
    let rolled = cli.json(&["keys", "roll", &nightly_id, "--grace", "10m"]);
    assert_eq!(rolled["key"]["name"], "nightly");
    assert_eq!(rolled["key"]["permissions"], json!(["payments:read"]));
    assert_eq!(rolled["key"]["allowed_ips"], json!(["203.0.113.0/24"]));
    assert_eq!(rolled["rolled"]["key_id"], nightly_id.as_str());
    assert!(rolled["api_key"].as_str().unwrap().starts_with("rk_test_"));
    let human = cli.run(&["keys", "list", &account]);
    let table = text(&human.stdout);
    assert!(
        table.contains("PERMISSIONS") && table.contains("ALLOWED IPS"),
        "{table}"
    );
    assert!(table.contains("203.0.113.0/24,2001:db8::1/128"), "{table}");
    assert!(
        table.contains("restricted") && table.contains("reconciliation"),
        "{table}"
    );
    assert!(!table.contains(&key[12..]));

    // A change made through the API: in the trail with its key and request id.
    let made = app
        .create_key(
            &secret,
            &json!({"name": "job", "permissions": ["keys:read"]}),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let trail = cli.json(&["audit", "list", &account]);
    let latest = &trail["events"][0];
    assert_eq!(latest["action"], "key.created");
    assert!(
        latest["actor"].as_str().unwrap().starts_with("key:key_"),
        "{latest}"
    );
    assert!(latest["request_id"].is_string(), "{latest}");
    assert_eq!(trail["events"][1]["actor"], "cli-test");
    assert!(trail["events"][1]["request_id"].is_null());
    let human = text(&cli.run(&["audit", "list", &account]).stdout);
    assert!(human.contains("REQUEST ID"), "{human}");

    // The operator's actor can never pass for a key, in any case. (Not through `cli.run`,
    // whose own --actor would make this a repeated argument.)
    for actor in [
        "key:key_AAAAAAAAAAAAAAAAAAAA",
        "KEY:key_AAAAAAAAAAAAAAAAAAAA",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
            .args(["--endpoint-url", &payments_tests::dynamodb_endpoint()])
            .args(["--clients-table", &app.clients_table])
            .args(["--actor", actor, "keys", "list", &account])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{actor}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("must not start with key:"),
            "{actor}: {stderr}"
        );
    }

    // Bad arguments are usage errors: an unknown permission, a range with host bits set.
    for args in [
        vec![
            "keys",
            "create",
            &account,
            "--name",
            "x",
            "--permission",
            "payments:admin",
        ],
        vec![
            "keys",
            "create",
            &account,
            "--name",
            "x",
            "--permission",
            "keys:read",
            "--allowed-ip",
            "10.0.0.1/8",
        ],
        vec!["keys", "create", &account, "--name", "x"],
    ] {
        let output = cli.run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[tokio::test]
async fn keys_show_when_they_were_last_used_and_rotation_names_those_still_in_use() {
    let app = TestApp::spawn().await;
    let cli = Cli { app: &app };
    let (account, used) = app.new_client().await;
    let listed = cli.json(&["keys", "list", &account]);
    assert!(listed["keys"][0]["last_used_at"].is_null(), "{listed}");

    assert_eq!(pays(&app, &used).await, 201);
    // The use is recorded in the background: give it a moment to land.
    let mut listed = cli.json(&["keys", "list", &account]);
    for _ in 0..50 {
        if listed["keys"][0]["last_used_at"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        listed = cli.json(&["keys", "list", &account]);
    }
    assert!(listed["keys"][0]["last_used_at"].is_string(), "{listed}");
    let used_id = listed["keys"][0]["key_id"].as_str().unwrap().to_owned();

    // The first rotation retires a key in use; the second retires one never used.
    let rotated = cli.json(&["keys", "rotate", &account, "--grace", "1h"]);
    assert_eq!(rotated["retiring"][0]["key_id"], used_id.as_str());
    assert_eq!(rotated["retiring"][0]["recently_used"], true);
    assert_eq!(rotated["recently_used"], json!([used_id]));
    let unused_id = rotated["key_id"].as_str().unwrap().to_owned();
    let output = cli.run(&["keys", "rotate", &account, "--grace", "30m"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("old key {unused_id} stops working at"))
            && stdout.contains("never used"),
        "{stdout}"
    );
    assert!(stdout.contains("STILL IN USE"), "{stdout}");
}

#[tokio::test]
async fn tables_create_is_idempotent() {
    let app = TestApp::spawn().await;
    let cli = Cli { app: &app };
    for _ in 0..2 {
        let out = cli.json(&["tables", "create"]);
        assert_eq!(out["clients_table"], app.clients_table.as_str());
    }
}

/// On an operator's machine the region and credentials come from the SDK's whole chain
/// (environment, profiles, SSO, instance metadata), whose providers make HTTPS calls of their
/// own: with the region and keys in the environment, as a shell exports them, the CLI runs.
#[tokio::test]
async fn region_and_credentials_from_the_sdk_chain() {
    let app = TestApp::spawn().await;
    let home = std::env::temp_dir().join(format!("payments-admin-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
        .args(["--endpoint-url", &payments_tests::dynamodb_endpoint()])
        .args(["--clients-table", &app.clients_table])
        .args(["--payments-table", &app.payments_table])
        .args(["--audit-table", &app.audit_table])
        .args(["tables", "create", "--json"])
        .env_clear()
        .env("HOME", &home)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDOPERATOR00000000")
        .env("AWS_SECRET_ACCESS_KEY", "operator-secret-not-a-secret")
        .output()
        .expect("run payments-admin");
    std::fs::remove_dir_all(&home).unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(out["clients_table"], app.clients_table.as_str());
}

#[tokio::test]
async fn set_limit_applies_on_the_next_request_to_every_key_with_its_audit_event() {
    let app = TestApp::spawn().await;
    let cli = Cli { app: &app };
    let (account, key) = app.new_client().await;
    assert_eq!(
        cli.json(&["accounts", "show", &account])["rate_limit"],
        "default"
    );

    let set = cli.json(&["accounts", "set-limit", &account, "1"]);
    assert_eq!(
        (set["rate_limit"].as_u64(), set["changed"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(
        cli.json(&["accounts", "set-limit", &account, "1"])["changed"],
        false
    );
    assert_eq!(cli.json(&["accounts", "show", &account])["rate_limit"], 1);
    let human = cli.run(&["accounts", "show", &account]);
    assert!(text(&human.stdout).contains("rate_limit=1/s"));
    // One request a second: the next ones within the second are refused.
    assert_eq!(pays(&app, &key).await, 201);
    assert_eq!(pays(&app, &key).await, 429);
    // A key issued by rotation carries the account's limit, and shares its count.
    let rotated = cli.json(&[
        "keys",
        "rotate",
        &account,
        "--grace",
        "1h",
        "--key-environment",
        "test",
    ]);
    let new_key = rotated["api_key"].as_str().unwrap().to_owned();
    assert_eq!(pays(&app, &new_key).await, 429);
    // Back to the default: room again on the next request.
    let reset = cli.json(&["accounts", "set-limit", &account, "default"]);
    assert_eq!(reset["rate_limit"], "default");
    assert_eq!(pays(&app, &new_key).await, 201);
    assert_eq!(pays(&app, &key).await, 201);

    let trail = cli.json(&["audit", "list", &account]);
    let changes: Vec<&Value> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "account.rate_limit_changed")
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        (
            &changes[0]["before"]["rate_limit"],
            &changes[0]["after"]["rate_limit"]
        ),
        (&json!(1), &json!("default"))
    );
    assert_eq!(changes[1]["after"]["rate_limit"], 1);

    for bad in ["0", "100001", "fast"] {
        let output = cli.run(&["accounts", "set-limit", &account, bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert!(text(&output.stderr).contains("not a rate limit"), "{bad}");
    }
    let output = cli.run(&["accounts", "set-limit", "acct_AAAAAAAAAAAAAAAAAAAA", "5"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("not found"));
}

#[tokio::test]
async fn errors_are_clear_and_exit_non_zero() {
    let app = TestApp::spawn().await;
    let cli = Cli { app: &app };
    let (account, _) = app.new_client().await;
    let unknown_account = "acct_AAAAAAAAAAAAAAAAAAAA";
    let unknown_key = "key_AAAAAAAAAAAAAAAAAAAA";

    for args in [
        vec!["accounts", "show", unknown_account],
        vec!["accounts", "deactivate", unknown_account],
        vec!["keys", "list", unknown_account],
        vec![
            "keys",
            "rotate",
            unknown_account,
            "--key-environment",
            "test",
        ],
        vec!["keys", "revoke", unknown_key],
    ] {
        let output = cli.run(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            text(&output.stderr).contains("not found"),
            "{args:?}: {}",
            text(&output.stderr)
        );
        let mut with_json = args.clone();
        with_json.push("--json");
        let output = cli.run(&with_json);
        let body: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{args:?}");
        assert_eq!(body["error"]["retry_safe"], false);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found"));
    }

    // Bad arguments: usage errors (exit 2) naming the problem.
    for (args, needle) in [
        (vec!["accounts", "show", "acct_nope"], "not an account id"),
        (
            vec!["keys", "revoke", "acct_AAAAAAAAAAAAAAAAAAAA"],
            "not a key id",
        ),
        (
            vec![
                "keys",
                "rotate",
                account.as_str(),
                "--grace",
                "24",
                "--key-environment",
                "test",
            ],
            "not a duration",
        ),
        (
            vec![
                "keys",
                "rotate",
                account.as_str(),
                "--key-environment",
                "prod",
            ],
            "unknown key environment",
        ),
        (
            vec!["accounts", "delete", account.as_str()],
            "unrecognized subcommand",
        ),
        (vec![], "Usage"),
    ] {
        let output = cli.run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            text(&output.stderr).contains(needle),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }

    // Nothing above changed the real account.
    let shown = cli.json(&["keys", "list", &account]);
    assert_eq!(shown["keys"].as_array().unwrap().len(), 1);
}

/// DynamoDB out of reach: `tables create` only ever creates what is missing, so whatever
/// happened, the answer is that running it again is safe.
#[test]
fn tables_create_unreachable_says_a_retry_is_safe() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
        .args(["--endpoint-url", &format!("http://127.0.0.1:{port}")])
        .args(["--clients-table", "c", "--payments-table", "p"])
        .args(["--audit-table", "a", "tables", "create", "--json"])
        .output()
        .expect("run payments-admin");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let body: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(body["error"]["retry_safe"], true, "{body}");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["accounts", "--help"],
        vec!["accounts", "show", "--help"],
        vec!["accounts", "deactivate", "--help"],
        vec!["accounts", "reactivate", "--help"],
        vec!["accounts", "set-limit", "--help"],
        vec!["keys", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["keys", "revoke", "--help"],
        vec!["keys", "create", "--help"],
        vec!["keys", "roll", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "list", "--help"],
        vec!["tables", "--help"],
        vec!["tables", "create", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
            .args(&args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(text(&output.stdout).contains("Usage:"), "{args:?}");
    }
}

#[tokio::test]
async fn a_rotation_to_another_key_environment_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let cli = Cli { app: &app };
    let (account, key) = app.new_client().await;
    let rotate = ["keys", "rotate", account.as_str(), "--grace", "0"];

    // The account's keys are test keys: a live key would be refused by this stack.
    let output = cli.run(&[&rotate[..], &["--key-environment", "live"]].concat());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("environment"),
        "{}",
        text(&output.stderr)
    );
    // The deployment's environment disagrees with the flag.
    let output = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
        .args(["--endpoint-url", &payments_tests::dynamodb_endpoint()])
        .args(["--clients-table", &app.clients_table])
        .args(["--payments-table", &app.payments_table])
        .args(["--audit-table", &app.audit_table])
        .args(rotate)
        .args(["--key-environment", "test"])
        .env("API_KEY_ENVIRONMENT", "live")
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0), "{}", text(&output.stderr));

    assert_eq!(pays(&app, &key).await, 201, "the old key still works");
    let listed = cli.json(&["keys", "list", &account]);
    assert_eq!(
        listed["keys"].as_array().unwrap().len(),
        1,
        "nothing written"
    );
}

/// With `--json`, arguments clap refuses are a `usage` failure on stdout too, as every other
/// failure is, still with exit 2 and clap's own message on stderr.
#[test]
fn usage_errors_print_json_with_json() {
    for args in [
        vec!["--json", "accounts", "show", "acct_nope"],
        vec!["accounts", "delete", "acct_AAAAAAAAAAAAAAAAAAAA", "--json"],
        vec![
            "keys",
            "rotate",
            "acct_AAAAAAAAAAAAAAAAAAAA",
            "--grace",
            "24",
            "--json",
        ],
        vec!["--json"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let body: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("{args:?}: stdout {:?}", text(&output.stdout)));
        assert_eq!(body["error"]["code"], "usage", "{args:?}");
        assert_eq!(body["error"]["retry_safe"], false);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.is_empty() && !message.starts_with("error:"),
            "{message}"
        );
        assert!(!text(&output.stderr).is_empty());
    }
    // Without --json, stdout stays empty; help is not a failure.
    let output = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
        .args(["accounts", "show", "acct_nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let help = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
        .args(["--json", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Usage"));
}

#[test]
fn malformed_arguments_are_usage_errors_never_panics() {
    for args in [
        vec![
            "keys",
            "rotate",
            "acct_AAAAAAAAAAAAAAAAAAAA",
            "--grace",
            "1é",
        ],
        vec![
            "keys",
            "rotate",
            "acct_AAAAAAAAAAAAAAAAAAAA",
            "--grace",
            "é",
        ],
        vec!["keys", "revoke", "key_ééééééééééééééééééé"],
        vec!["accounts", "show", "acct_\u{7}"],
        vec!["audit", "list", "acct_AAAAAAAAAAAAAAAAAAAA", "--limit", "0"],
        vec![
            "--actor",
            "\u{1b}[2J",
            "accounts",
            "show",
            "acct_AAAAAAAAAAAAAAAAAAAA",
        ],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_payments-admin"))
            .args(&args)
            .args(["--key-environment", "test"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}
