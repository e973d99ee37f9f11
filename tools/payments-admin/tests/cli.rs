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
                "1w",
                "--key-environment",
                "test",
            ],
            "not a duration",
        ),
        (
            vec!["keys", "rotate", account.as_str(), "--grace", "1h"],
            "--key-environment",
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

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["accounts", "--help"],
        vec!["accounts", "show", "--help"],
        vec!["accounts", "deactivate", "--help"],
        vec!["accounts", "reactivate", "--help"],
        vec!["keys", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["keys", "revoke", "--help"],
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
