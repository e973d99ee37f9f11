//! Benchmark baseline: raw DynamoDB calls with exactly the functions' client
//! (`shared::config::dynamodb_client`: same SDK, timeouts, retries, HTTP client), on items
//! shaped like the ones the functions read and write. Prints one JSON document on stdout.
//!
//! ```text
//! bench-raw-dynamodb warm --endpoint URL --clients-table T --payments-table T \
//!     [--iterations N] [--max-seconds S]
//! bench-raw-dynamodb cold --sequence get-put|transact --endpoint URL ...
//! ```
//!
//! `warm`: one client; seeds a key item, warms the connection (untimed), then times up to N
//! rounds of GetItem (strongly consistent, the auth lookup), PutItem (conditional new
//! payment) and TransactWriteItems (three conditional puts, the account creation).
//!
//! `cold`: one sample per process, like a fresh execution environment: builds a new client
//! and times the calls a request needs on that fresh connection. `get-put` is what
//! create-payment needs (GetItem then PutItem); `transact` is what create-account needs.
//! Run `warm` once first: it seeds the key item `cold get-put` reads.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use serde_json::json;

use shared::config::dynamodb_client;
use shared::domain::{AccountId, ApiKey, KeyEnvironment, KeyId, PaymentId, Timestamp};
use shared::store::items::{account, key, PK};

type Item = HashMap<String, AttributeValue>;

/// Partition key of the seeded key item: a fixed, valid-looking digest so every process
/// reads the same item.
const SEEDED_KEY_PK: &str = "KEY#b3e1c0a9d8f7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c4b";

struct Args {
    mode: String,
    sequence: String,
    endpoint: String,
    clients_table: String,
    payments_table: String,
    iterations: usize,
    max_seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1);
    let mode = argv
        .next()
        .ok_or("usage: bench-raw-dynamodb warm|cold [options]")?;
    if mode != "warm" && mode != "cold" {
        return Err(format!("unknown mode {mode:?}; expected warm or cold"));
    }
    let mut args = Args {
        mode,
        sequence: "get-put".to_owned(),
        endpoint: String::new(),
        clients_table: String::new(),
        payments_table: String::new(),
        iterations: 1000,
        max_seconds: 120.0,
    };
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sequence" => args.sequence = value,
            "--endpoint" => args.endpoint = value,
            "--clients-table" => args.clients_table = value,
            "--payments-table" => args.payments_table = value,
            "--iterations" => {
                args.iterations = value.parse().map_err(|e| format!("--iterations: {e}"))?
            }
            "--max-seconds" => {
                args.max_seconds = value.parse().map_err(|e| format!("--max-seconds: {e}"))?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if args.endpoint.is_empty() || args.clients_table.is_empty() || args.payments_table.is_empty() {
        return Err("--endpoint, --clients-table and --payments-table are required".to_owned());
    }
    if args.sequence != "get-put" && args.sequence != "transact" {
        return Err(format!("unknown --sequence {:?}", args.sequence));
    }
    Ok(args)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn ms(elapsed: Duration) -> f64 {
    (elapsed.as_nanos() as f64) / 1e6
}

fn fail(what: &str, err: impl std::fmt::Display) -> String {
    format!("{what} failed: {err}")
}

/// Same attributes as the functions' key item (`shared::store::items::key::new_item`).
fn key_item(pk: &str) -> Result<Item, String> {
    Ok(HashMap::from([
        (PK.to_owned(), s(pk)),
        ("entity".to_owned(), s("api_key")),
        (
            "key_id".to_owned(),
            s(KeyId::generate().map_err(|e| fail("id", e))?.as_str()),
        ),
        (
            "account_id".to_owned(),
            s(AccountId::generate().map_err(|e| fail("id", e))?.as_str()),
        ),
        ("prefix".to_owned(), s("sk_test_abcd")),
        ("status".to_owned(), s("active")),
        ("account_status".to_owned(), s("active")),
        ("created_at".to_owned(), s(Timestamp::now().to_rfc3339())),
    ]))
}

/// Same attributes and typical sizes as a payment item written by create-payment.
fn payment_item() -> Result<Item, String> {
    Ok(HashMap::from([
        (
            PK.to_owned(),
            s(PaymentId::generate().map_err(|e| fail("id", e))?.as_str()),
        ),
        ("entity".to_owned(), s("payment")),
        (
            "client_id".to_owned(),
            s(AccountId::generate().map_err(|e| fail("id", e))?.as_str()),
        ),
        ("amount".to_owned(), AttributeValue::N("1250".to_owned())),
        ("currency".to_owned(), s("USD")),
        ("status".to_owned(), s("pending")),
        ("created_at".to_owned(), s(Timestamp::now().to_rfc3339())),
        ("request_fingerprint".to_owned(), s("f".repeat(64))),
        ("description".to_owned(), s("benchmark payment")),
        (
            "idempotency_key".to_owned(),
            s("bench-00000000-0000-0000-0000-000000000000"),
        ),
    ]))
}

/// The three items create-account writes in one transaction: account, key, key reference.
fn account_puts(table: &str) -> Result<Vec<TransactWriteItem>, String> {
    let account_id = AccountId::generate().map_err(|e| fail("id", e))?;
    let key_id = KeyId::generate().map_err(|e| fail("id", e))?;
    let key = ApiKey::generate(KeyEnvironment::Test).map_err(|e| fail("key", e))?;
    let now = Timestamp::now().to_rfc3339();
    let key_pk_value = key::pk(&key.digest());
    let account = HashMap::from([
        (PK.to_owned(), s(account::pk(&account_id))),
        ("entity".to_owned(), s("account")),
        ("account_id".to_owned(), s(account_id.as_str())),
        ("name".to_owned(), s("Benchmark Account")),
        ("status".to_owned(), s("active")),
        ("created_at".to_owned(), s(now.clone())),
        (
            "keys".to_owned(),
            AttributeValue::M(HashMap::from([(
                key_id.as_str().to_owned(),
                AttributeValue::M(HashMap::from([
                    ("digest".to_owned(), s(key.digest().to_hex())),
                    ("prefix".to_owned(), s(key.display_prefix().as_str())),
                    ("status".to_owned(), s("active")),
                    ("created_at".to_owned(), s(now.clone())),
                ])),
            )])),
        ),
        ("version".to_owned(), AttributeValue::N("1".to_owned())),
    ]);
    let mut key_item = key_item(&key_pk_value)?;
    key_item.insert("key_id".to_owned(), s(key_id.as_str()));
    key_item.insert("account_id".to_owned(), s(account_id.as_str()));
    let key_ref = HashMap::from([
        (PK.to_owned(), s(key::ref_pk(&key_id))),
        ("entity".to_owned(), s("api_key_ref")),
        ("key_id".to_owned(), s(key_id.as_str())),
        ("account_id".to_owned(), s(account_id.as_str())),
    ]);
    [account, key_item, key_ref]
        .into_iter()
        .map(|item| {
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| fail("Put builder", e))?;
            Ok(TransactWriteItem::builder().put(put).build())
        })
        .collect()
}

async fn get_key(client: &Client, table: &str) -> Result<f64, String> {
    let started = Instant::now();
    let output = client
        .get_item()
        .table_name(table)
        .key(PK, s(SEEDED_KEY_PK))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| fail("GetItem", DisplayErrorContext(e)))?;
    let elapsed = ms(started.elapsed());
    if output.item.is_none() {
        return Err("GetItem found no seeded key item (run `warm` first)".to_owned());
    }
    Ok(elapsed)
}

async fn put_payment(client: &Client, table: &str) -> Result<f64, String> {
    let item = payment_item()?;
    let started = Instant::now();
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(|e| fail("PutItem", DisplayErrorContext(e)))?;
    Ok(ms(started.elapsed()))
}

async fn transact_account(client: &Client, table: &str) -> Result<f64, String> {
    let puts = account_puts(table)?;
    let started = Instant::now();
    client
        .transact_write_items()
        .set_transact_items(Some(puts))
        .send()
        .await
        .map_err(|e| fail("TransactWriteItems", DisplayErrorContext(e)))?;
    Ok(ms(started.elapsed()))
}

async fn warm(args: &Args) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let client = dynamodb_client(Some(&args.endpoint)).await;
    let client_build_ms = ms(started.elapsed());
    // Seed the key item the GetItem reads, and open the connection: untimed.
    client
        .put_item()
        .table_name(&args.clients_table)
        .set_item(Some(key_item(SEEDED_KEY_PK)?))
        .send()
        .await
        .map_err(|e| fail("seed PutItem", DisplayErrorContext(e)))?;
    for _ in 0..3 {
        get_key(&client, &args.clients_table).await?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.max_seconds);
    let (mut get, mut put, mut transact) = (Vec::new(), Vec::new(), Vec::new());
    let mut truncated = false;
    for _ in 0..args.iterations {
        if Instant::now() >= deadline {
            truncated = true;
            break;
        }
        get.push(get_key(&client, &args.clients_table).await?);
        put.push(put_payment(&client, &args.payments_table).await?);
        transact.push(transact_account(&client, &args.clients_table).await?);
    }
    Ok(json!({
        "mode": "warm",
        "client_build_ms": client_build_ms,
        "iterations": get.len(),
        "truncated": truncated,
        "get_item_ms": get,
        "put_item_ms": put,
        "transact_write_items_ms": transact,
    }))
}

async fn cold(args: &Args) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let client = dynamodb_client(Some(&args.endpoint)).await;
    let client_build_ms = ms(started.elapsed());
    let calls = if args.sequence == "get-put" {
        let first = get_key(&client, &args.clients_table).await?;
        let second = put_payment(&client, &args.payments_table).await?;
        json!({ "get_item_ms": first, "put_item_ms": second })
    } else {
        json!({ "transact_write_items_ms": transact_account(&client, &args.clients_table).await? })
    };
    Ok(json!({
        "mode": "cold",
        "sequence": args.sequence,
        "client_build_ms": client_build_ms,
        "calls": calls,
        // From before the client is built to the last call's answer.
        "total_ms": ms(started.elapsed()),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("bench-raw-dynamodb: {err}");
            return ExitCode::from(2);
        }
    };
    let outcome = if args.mode == "warm" {
        warm(&args).await
    } else {
        cold(&args).await
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("bench-raw-dynamodb: {err}");
            ExitCode::FAILURE
        }
    }
}
