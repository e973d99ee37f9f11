//! Benchmark baseline: raw DynamoDB calls with exactly the functions' client
//! (`shared::config::dynamodb_client`: same SDK, timeouts, retries, HTTP client), on items
//! shaped like the ones the functions read and write. Prints one JSON document on stdout.
//!
//! ```text
//! bench-raw-dynamodb warm [--sequence get-put|payment|transact|get-get|get-query|get-get-transact] \
//!     --endpoint URL --clients-table T --payments-table T [--audit-table T] [--iterations N] \
//!     [--max-seconds S] [--rounds-before N]
//! bench-raw-dynamodb cold --sequence get-put|transact|get-get|get-query|get-get-transact \
//!     --endpoint URL ...
//! bench-raw-dynamodb seed [--key-accounts N] --endpoint URL ...
//! ```
//!
//! `warm`: one client; warms the connection (untimed), then times up to N rounds. With
//! `get-put` (the default) each round is GetItem (strongly consistent, the auth lookup),
//! PutItem (conditional new payment) and TransactWriteItems (four conditional puts, the
//! account creation); `warm get-put` first seeds the key item. `payment` is the same without
//! the transaction: exactly create-payment's two calls per round; `transact` is the
//! transaction alone, create-account's one call. With `get-get` (what
//! get-payment needs) each round is the key GetItem then a strongly consistent GetItem of a
//! seeded payment; with `get-query` (what list-payments needs for a first page) the key
//! GetItem then a Query of the seeded account's `by_account` partition, newest first, with
//! the Limit of a default page (10 + 1). With `get-get-transact` (what create-key needs) each
//! round is the key GetItem and the account GetItem (both strongly consistent) of one of the
//! accounts `seed --key-accounts` wrote, then one TransactWriteItems: the account's versioned
//! update adding the new key's entry, the new key item, its reference item and the audit
//! event (in the audit table), built by the very functions create-key's store uses. Each
//! account takes `NEW_KEYS_PER_ACCOUNT` rounds in turn, as many keys as create-key may add to
//! an account after its first, so the account items grow as the function's do. A process
//! goes on where earlier ones stopped: after `--rounds-before N` rounds of earlier processes,
//! its round `i` adds a key to account `(N + i) / NEW_KEYS_PER_ACCOUNT`.
//!
//! `cold`: one sample per process, like a fresh execution environment: builds a new client
//! and times the calls a request needs on that fresh connection. `get-put` is what
//! create-payment needs (GetItem then PutItem); `transact` is what create-account needs;
//! `get-get`, `get-query` and `get-get-transact` as above. Run `warm` once first (it seeds the
//! key item the other sequences read) and, for `get-get`, `get-query` and `get-get-transact`,
//! `seed` (the payments and accounts they read).
//!
//! `warm` and `cold` also report what the timed calls spent (`dynamodb`: attempts by
//! operation and the capacity DynamoDB reported, recorded by the client's own interceptor,
//! `shared::store::usage`).
//!
//! `seed`: writes the key item and `SEEDED_PAYMENTS` payments of one account, shaped by
//! `shared::store::items::payment::new_item` like create-payment's (same attributes,
//! description and idempotency key lengths), so the reads find what the functions find; and,
//! with `--key-accounts N`, N accounts with their first (secret) key, shaped by
//! `shared::store::items::{account, key}::new_item` as create-account writes them.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use serde_json::json;

use shared::config::{dynamodb_client, dynamodb_client_recording};
use shared::domain::{
    fingerprint, Account, AccountId, AccountName, AccountStatus, Actor, Amount, ApiKey,
    AuditAction, AuditEvent, Currency, Description, Email, EventId, IdempotencyKey, IpAllowList,
    KeyDigest, KeyEnvironment, KeyGrant, KeyId, KeyKind, KeyName, NewPayment, Payment, PaymentId,
    PaymentStatus, Permissions, Timestamp,
};
use shared::store::items::payment::{ACCOUNT_ATTRIBUTE, BY_ACCOUNT_INDEX};
use shared::store::items::{account, audit, key, payment, NEW_ITEM_ONLY, PK};
use shared::store::lifecycle::{
    plan_new_key, AccountRecord, AccountSettings, Retire, MAX_LIVE_KEYS,
};
use shared::store::usage::{CallLog, OutsideCalls};
use shared::store::IssuedKey;

type Item = HashMap<String, AttributeValue>;

/// Partition key of the seeded key item: a fixed, valid-looking digest so every process
/// reads the same item.
const SEEDED_KEY_PK: &str = "KEY#b3e1c0a9d8f7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c4b";

/// The account whose payments `seed` writes and `get-query` lists.
const SEEDED_ACCOUNT: &str = "acct_BenchReads0000000000";
/// Enough for a full default page (10) and the one more that tells `has_more`.
const SEEDED_PAYMENTS: usize = 12;
/// The default page of `GET /payments`; the function asks for one more to learn `has_more`.
const DEFAULT_PAGE: i32 = 10;

/// The keys create-key may add to an account beside its first: each account `seed
/// --key-accounts` writes takes this many `get-get-transact` rounds.
const NEW_KEYS_PER_ACCOUNT: usize = MAX_LIVE_KEYS - 1;
/// As long as a Lambda request id (a UUID), which create-key's audit events carry.
const REQUEST_ID: &str = "00000000-0000-4000-8000-000000000000";

const SEQUENCES: [&str; 6] = [
    "get-put",
    "payment",
    "transact",
    "get-get",
    "get-query",
    "get-get-transact",
];

struct Args {
    mode: String,
    sequence: String,
    endpoint: String,
    clients_table: String,
    payments_table: String,
    audit_table: String,
    iterations: usize,
    max_seconds: f64,
    /// `seed`: how many accounts to write for `get-get-transact`.
    key_accounts: usize,
    /// `get-get-transact`: the rounds earlier processes made on the seeded accounts.
    rounds_before: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1);
    let mode = argv
        .next()
        .ok_or("usage: bench-raw-dynamodb warm|cold|seed [options]")?;
    if !["warm", "cold", "seed"].contains(&mode.as_str()) {
        return Err(format!(
            "unknown mode {mode:?}; expected warm, cold or seed"
        ));
    }
    let mut args = Args {
        mode,
        sequence: "get-put".to_owned(),
        endpoint: String::new(),
        clients_table: String::new(),
        payments_table: String::new(),
        audit_table: String::new(),
        iterations: 1000,
        max_seconds: 120.0,
        key_accounts: 0,
        rounds_before: 0,
    };
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sequence" => args.sequence = value,
            "--endpoint" => args.endpoint = value,
            "--clients-table" => args.clients_table = value,
            "--payments-table" => args.payments_table = value,
            "--audit-table" => args.audit_table = value,
            "--iterations" => {
                args.iterations = value.parse().map_err(|e| format!("--iterations: {e}"))?
            }
            "--max-seconds" => {
                args.max_seconds = value.parse().map_err(|e| format!("--max-seconds: {e}"))?
            }
            "--key-accounts" => {
                args.key_accounts = value.parse().map_err(|e| format!("--key-accounts: {e}"))?
            }
            "--rounds-before" => {
                args.rounds_before = value.parse().map_err(|e| format!("--rounds-before: {e}"))?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if args.endpoint.is_empty() || args.clients_table.is_empty() || args.payments_table.is_empty() {
        return Err("--endpoint, --clients-table and --payments-table are required".to_owned());
    }
    if !SEQUENCES.contains(&args.sequence.as_str())
        || (args.mode == "cold" && args.sequence == "payment")
    {
        return Err(format!("unknown --sequence {:?}", args.sequence));
    }
    if args.sequence == "get-get-transact" && args.audit_table.is_empty() {
        return Err("--sequence get-get-transact needs --audit-table".to_owned());
    }
    Ok(args)
}

/// The attempts by operation and the capacity units in `log`.
fn spent(log: CallLog) -> serde_json::Value {
    let mut attempts: HashMap<&str, usize> = HashMap::new();
    for operation in log.attempts {
        *attempts.entry(operation).or_default() += 1;
    }
    json!({"attempts": attempts, "read_units": log.read_units, "write_units": log.write_units})
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

/// The very item create-payment writes (the store's own builder): its `by_account` index
/// entry included, so the raw PutItem costs DynamoDB what the function's does. A new id
/// each round; the seeded account, an idempotency key of the harness's length.
fn payment_item() -> Result<Item, String> {
    let payment = Payment {
        id: PaymentId::generate().map_err(|e| fail("id", e))?,
        client_id: AccountId::parse(SEEDED_ACCOUNT).ok_or("account id")?,
        amount: Amount::parse(1250).map_err(|e| fail("amount", e))?,
        currency: Currency::parse("USD").map_err(|e| fail("currency", e))?,
        description: Some(
            Description::parse("benchmark payment".to_owned())
                .map_err(|e| fail("description", e))?,
        ),
        status: PaymentStatus::Pending,
        created_at: Timestamp::now(),
        idempotency_key: Some(
            IdempotencyKey::parse(b"bench-00000000-0000-0000-0000-000000000000")
                .map_err(|e| fail("idempotency key", e))?,
        ),
    };
    let print = fingerprint(&NewPayment {
        amount: payment.amount,
        currency: payment.currency,
        description: payment.description.clone(),
    });
    Ok(payment::new_item(&payment, &print))
}

/// The four items create-account writes in one transaction: account, key, key reference and
/// the audit event. The event goes to the clients table here (the service writes it to its
/// audit table; which table an item of a transaction lands in does not change its cost).
fn account_puts(table: &str) -> Result<Vec<TransactWriteItem>, String> {
    let account_id = AccountId::generate().map_err(|e| fail("id", e))?;
    let key_id = KeyId::generate().map_err(|e| fail("id", e))?;
    let key = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test)
        .map_err(|e| fail("key", e))?;
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
    let audit = HashMap::from([
        (PK.to_owned(), s(format!("AUDIT#{account_id}#{now}"))),
        ("entity".to_owned(), s("audit_event")),
        ("event_id".to_owned(), s("evt_AAAAAAAAAAAAAAAAAAAA")),
        ("action".to_owned(), s("account.created")),
        ("actor".to_owned(), s("anonymous")),
        ("account_id".to_owned(), s(account_id.as_str())),
        (
            "key_ids".to_owned(),
            AttributeValue::L(vec![s(key_id.as_str())]),
        ),
        (
            "after".to_owned(),
            AttributeValue::M(HashMap::from([
                ("account_status".to_owned(), s("active")),
                (
                    "keys".to_owned(),
                    AttributeValue::M(HashMap::from([(
                        key_id.as_str().to_owned(),
                        AttributeValue::M(HashMap::from([("status".to_owned(), s("active"))])),
                    )])),
                ),
            ])),
        ),
        ("at".to_owned(), s(now.clone())),
        ("ttl".to_owned(), AttributeValue::N("1900000000".to_owned())),
    ]);
    [account, key_item, key_ref, audit]
        .into_iter()
        .map(|item| put_new(table, item))
        .collect()
}

/// A put of a new item in a transaction, conditional as every creating write is.
fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, String> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(NEW_ITEM_ONLY)
        .build()
        .map_err(|e| fail("Put builder", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The `i`th account `seed --key-accounts` writes.
fn key_account_id(i: usize) -> Result<AccountId, String> {
    AccountId::parse(&format!("acct_BenchKeys{i:011}")).ok_or_else(|| "account id".to_owned())
}

/// The digest of the `i`th seeded account's first key: fixed, so every process finds the
/// key item without reading anything first.
fn key_account_digest(i: usize) -> Result<KeyDigest, String> {
    KeyDigest::from_hex(&format!("be7c{i:060x}")).ok_or_else(|| "key digest".to_owned())
}

/// The seeded account this process's `round`th `get-get-transact` round adds a key to.
fn key_account_of(args: &Args, round: usize) -> usize {
    (args.rounds_before + round) / NEW_KEYS_PER_ACCOUNT
}

/// The `i`th seeded account and its first key's item, as create-account writes them.
fn key_account_items(i: usize) -> Result<[Item; 2], String> {
    let now = Timestamp::now();
    let account = Account {
        id: key_account_id(i)?,
        name: AccountName::parse(format!("Bench Account {i:08x}")).map_err(|e| fail("name", e))?,
        email: Some(
            Email::parse(format!("bench-{i:08x}@example.com")).map_err(|e| fail("email", e))?,
        ),
        status: AccountStatus::Active,
        created_at: now,
    };
    let secret =
        ApiKey::generate(KeyKind::Secret, KeyEnvironment::Test).map_err(|e| fail("key", e))?;
    let mut first = IssuedKey::new(&secret, KeyId::generate().map_err(|e| fail("id", e))?, now);
    first.digest = key_account_digest(i)?;
    let settings = AccountSettings {
        status: AccountStatus::Active,
        rate_limit: None,
    };
    Ok([
        account::new_item(&account, &first),
        key::new_item(&account.id, settings, &first),
    ])
}

/// create-key's transaction for a new restricted key on `record`'s account, made by the key
/// `caller`: the same items, conditions and audit event as `DynamoStore::create_key` writes.
fn new_key_writes(
    args: &Args,
    record: &AccountRecord,
    caller: &KeyId,
) -> Result<Vec<TransactWriteItem>, String> {
    let now = Timestamp::now();
    let secret =
        ApiKey::generate(KeyKind::Restricted, KeyEnvironment::Test).map_err(|e| fail("key", e))?;
    let grant = KeyGrant {
        name: Some(KeyName::parse("benchmark key".to_owned()).map_err(|e| fail("name", e))?),
        permissions: Permissions::parse(["payments:read"]).map_err(|e| fail("permissions", e))?,
        allowed_ips: IpAllowList::default(),
        expires_at: None,
    };
    let new_key = IssuedKey::with_grant(
        &secret,
        KeyId::generate().map_err(|e| fail("id", e))?,
        now,
        grant,
    );
    // Refuses an 11th live key, as the function does: the account had no room left.
    let plan = plan_new_key(record, &new_key, Retire::Nothing, now)
        .map_err(|e| fail("new key on the seeded account", e))?;
    let account_id = &record.account.id;
    let event = AuditEvent {
        event_id: EventId::generate().map_err(|e| fail("id", e))?,
        action: AuditAction::KeyCreated,
        actor: Actor::key(caller),
        account_id: account_id.clone(),
        key_ids: vec![new_key.key_id.clone()],
        before: plan.before,
        after: plan.after,
        at: now,
        request_id: Some(REQUEST_ID.to_owned()),
    };
    let update = account::rotation_update(
        &args.clients_table,
        record,
        &new_key,
        &plan.retiring,
        &plan.pruned,
        plan.retire_at,
    );
    Ok(vec![
        TransactWriteItem::builder().update(update).build(),
        put_new(
            &args.clients_table,
            key::new_item(account_id, record.settings(), &new_key),
        )?,
        put_new(
            &args.clients_table,
            key::new_ref_item(account_id, &new_key.key_id),
        )?,
        put_new(&args.audit_table, audit::new_item(&event))?,
    ])
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
        .condition_expression(NEW_ITEM_ONLY)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
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

/// The `i`th seeded payment of `SEEDED_ACCOUNT`, one second apart, the last the newest.
fn seeded_payment(i: usize) -> Result<Payment, String> {
    let new = NewPayment {
        amount: Amount::parse(1250).map_err(|e| fail("amount", e))?,
        currency: Currency::parse("USD").map_err(|e| fail("currency", e))?,
        description: Some(
            Description::parse("benchmark payment".to_owned())
                .map_err(|e| fail("description", e))?,
        ),
    };
    let start = Timestamp::parse("2026-01-01T00:00:00Z").ok_or("timestamp")?;
    Ok(Payment {
        id: PaymentId::parse(&format!("pay_BenchRead{i:011}")).ok_or("payment id")?,
        client_id: AccountId::parse(SEEDED_ACCOUNT).ok_or("account id")?,
        amount: new.amount,
        currency: new.currency,
        description: new.description,
        status: PaymentStatus::Pending,
        created_at: start.plus(Duration::from_secs(i as u64)),
        // The length of the harness's idempotency keys (`bench-` and a UUID).
        idempotency_key: Some(
            IdempotencyKey::parse(format!("bench-{i:036}").as_bytes())
                .map_err(|e| fail("idempotency key", e))?,
        ),
    })
}

/// The seeded payment `get-get` reads: the newest, as the harness's get-payment events
/// read one of their account's payments.
fn read_payment_id() -> String {
    format!("pay_BenchRead{:011}", SEEDED_PAYMENTS - 1)
}

async fn seed(args: &Args) -> Result<serde_json::Value, String> {
    let client = dynamodb_client(Some(&args.endpoint)).await;
    client
        .put_item()
        .table_name(&args.clients_table)
        .set_item(Some(key_item(SEEDED_KEY_PK)?))
        .send()
        .await
        .map_err(|e| fail("seed key PutItem", DisplayErrorContext(e)))?;
    for i in 0..SEEDED_PAYMENTS {
        let payment = seeded_payment(i)?;
        let print = fingerprint(&NewPayment {
            amount: payment.amount,
            currency: payment.currency,
            description: payment.description.clone(),
        });
        client
            .put_item()
            .table_name(&args.payments_table)
            .set_item(Some(payment::new_item(&payment, &print)))
            .send()
            .await
            .map_err(|e| fail("seed payment PutItem", DisplayErrorContext(e)))?;
    }
    for i in 0..args.key_accounts {
        for item in key_account_items(i)? {
            client
                .put_item()
                .table_name(&args.clients_table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| fail("seed account PutItem", DisplayErrorContext(e)))?;
        }
    }
    Ok(json!({
        "mode": "seed",
        "account": SEEDED_ACCOUNT,
        "payments": SEEDED_PAYMENTS,
        "key_accounts": args.key_accounts,
    }))
}

/// get-payment's second call: the payment by id, strongly consistent.
async fn get_payment(client: &Client, table: &str) -> Result<f64, String> {
    let started = Instant::now();
    let output = client
        .get_item()
        .table_name(table)
        .key(PK, s(read_payment_id()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| fail("GetItem payment", DisplayErrorContext(e)))?;
    let elapsed = ms(started.elapsed());
    if output.item.is_none() {
        return Err("GetItem found no seeded payment (run `seed` first)".to_owned());
    }
    Ok(elapsed)
}

/// list-payments' second call for a first default page: the account's index partition,
/// newest first, one more than the page.
async fn query_page(client: &Client, table: &str) -> Result<f64, String> {
    let started = Instant::now();
    let output = client
        .query()
        .table_name(table)
        .index_name(BY_ACCOUNT_INDEX)
        .key_condition_expression("#account = :account")
        .expression_attribute_names("#account", ACCOUNT_ATTRIBUTE)
        .expression_attribute_values(":account", s(SEEDED_ACCOUNT))
        .scan_index_forward(false)
        .limit(DEFAULT_PAGE + 1)
        .send()
        .await
        .map_err(|e| fail("Query", DisplayErrorContext(e)))?;
    let elapsed = ms(started.elapsed());
    let found = output.items.map_or(0, |items| items.len());
    if found != (DEFAULT_PAGE + 1) as usize {
        return Err(format!(
            "Query found {found} seeded payments, not {} (run `seed` first)",
            DEFAULT_PAGE + 1
        ));
    }
    Ok(elapsed)
}

/// One round of a read sequence: the key GetItem, then the second call; both timed.
async fn read_round(client: &Client, args: &Args) -> Result<(f64, f64), String> {
    let key = get_key(client, &args.clients_table).await?;
    let second = if args.sequence == "get-get" {
        get_payment(client, &args.payments_table).await?
    } else {
        query_page(client, &args.payments_table).await?
    };
    Ok((key, second))
}

/// The name of a read sequence's second call in the JSON reports.
fn second_call(sequence: &str) -> &'static str {
    if sequence == "get-get" {
        "get_payment_ms"
    } else {
        "query_ms"
    }
}

/// create-key's two reads on the `account`th seeded account: the calling key's item, then
/// the account item it names, both strongly consistent and timed; with what they read.
async fn key_reads(
    client: &Client,
    args: &Args,
    account: usize,
) -> Result<(f64, f64, KeyId, AccountRecord), String> {
    let started = Instant::now();
    let output = client
        .get_item()
        .table_name(&args.clients_table)
        .key(PK, s(key::pk(&key_account_digest(account)?)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| fail("GetItem key", DisplayErrorContext(e)))?;
    let get_key_ms = ms(started.elapsed());
    let caller = key::record_from_item(&output.item.ok_or_else(|| {
        format!("GetItem found no key of seeded account {account} (run `seed --key-accounts`)")
    })?)
    .map_err(|e| fail("key item", e))?;
    let started = Instant::now();
    let output = client
        .get_item()
        .table_name(&args.clients_table)
        .key(PK, s(account::pk(&caller.account_id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| fail("GetItem account", DisplayErrorContext(e)))?;
    let get_account_ms = ms(started.elapsed());
    let record = account::record_from_item(
        &output
            .item
            .ok_or_else(|| format!("GetItem found no seeded account {account}"))?,
    )
    .map_err(|e| fail("account item", e))?;
    Ok((get_key_ms, get_account_ms, caller.key_id, record))
}

/// One `get-get-transact` round on the `account`th seeded account: the two reads, then the
/// transaction; each call timed.
async fn key_round(client: &Client, args: &Args, account: usize) -> Result<[f64; 3], String> {
    let (get_key_ms, get_account_ms, caller, record) = key_reads(client, args, account).await?;
    let writes = new_key_writes(args, &record, &caller)?;
    let started = Instant::now();
    client
        .transact_write_items()
        .set_transact_items(Some(writes))
        .send()
        .await
        .map_err(|e| fail("TransactWriteItems", DisplayErrorContext(e)))?;
    Ok([get_key_ms, get_account_ms, ms(started.elapsed())])
}

async fn warm_keys(args: &Args) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    // Every call of this client is made outside a request: all of them land here.
    let outside = OutsideCalls::default();
    let client = dynamodb_client_recording(Some(&args.endpoint), &outside).await;
    let client_build_ms = ms(started.elapsed());
    // Open the connection with reads only (untimed), so every account keeps its room.
    for _ in 0..3 {
        key_reads(&client, args, key_account_of(args, 0)).await?;
    }
    outside.take();
    let deadline = Instant::now() + Duration::from_secs_f64(args.max_seconds);
    let (mut get_key, mut get_account, mut transact) = (Vec::new(), Vec::new(), Vec::new());
    let mut truncated = false;
    for round in 0..args.iterations {
        if Instant::now() >= deadline {
            truncated = true;
            break;
        }
        let [key_ms, account_ms, transact_ms] =
            key_round(&client, args, key_account_of(args, round)).await?;
        get_key.push(key_ms);
        get_account.push(account_ms);
        transact.push(transact_ms);
    }
    Ok(json!({
        "mode": "warm",
        "sequence": args.sequence,
        "client_build_ms": client_build_ms,
        "iterations": transact.len(),
        "truncated": truncated,
        "get_item_ms": get_key,
        "get_account_ms": get_account,
        "transact_write_items_ms": transact,
        "dynamodb": spent(outside.take()),
    }))
}

async fn warm_reads(args: &Args) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    // Every call of this client is made outside a request: all of them land here.
    let outside = OutsideCalls::default();
    let client = dynamodb_client_recording(Some(&args.endpoint), &outside).await;
    let client_build_ms = ms(started.elapsed());
    // Open the connection: untimed.
    for _ in 0..3 {
        read_round(&client, args).await?;
    }
    outside.take();
    let deadline = Instant::now() + Duration::from_secs_f64(args.max_seconds);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let mut truncated = false;
    for _ in 0..args.iterations {
        if Instant::now() >= deadline {
            truncated = true;
            break;
        }
        let (key, other) = read_round(&client, args).await?;
        first.push(key);
        second.push(other);
    }
    Ok(json!({
        "mode": "warm",
        "sequence": args.sequence,
        "client_build_ms": client_build_ms,
        "iterations": first.len(),
        "truncated": truncated,
        "get_item_ms": first,
        second_call(&args.sequence): second,
        "dynamodb": spent(outside.take()),
    }))
}

async fn warm(args: &Args) -> Result<serde_json::Value, String> {
    if args.sequence == "get-get-transact" {
        return warm_keys(args).await;
    }
    if !["get-put", "payment", "transact"].contains(&args.sequence.as_str()) {
        return warm_reads(args).await;
    }
    let with_payment = args.sequence != "transact";
    let with_transact = args.sequence != "payment";
    let started = Instant::now();
    // Every call of this client is made outside a request: all of them land here.
    let outside = OutsideCalls::default();
    let client = dynamodb_client_recording(Some(&args.endpoint), &outside).await;
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
    outside.take();
    let deadline = Instant::now() + Duration::from_secs_f64(args.max_seconds);
    let (mut get, mut put, mut transact) = (Vec::new(), Vec::new(), Vec::new());
    let mut truncated = false;
    for _ in 0..args.iterations {
        if Instant::now() >= deadline {
            truncated = true;
            break;
        }
        if with_payment {
            get.push(get_key(&client, &args.clients_table).await?);
            put.push(put_payment(&client, &args.payments_table).await?);
        }
        if with_transact {
            transact.push(transact_account(&client, &args.clients_table).await?);
        }
    }
    Ok(json!({
        "mode": "warm",
        "client_build_ms": client_build_ms,
        "iterations": get.len().max(transact.len()),
        "truncated": truncated,
        "get_item_ms": get,
        "put_item_ms": put,
        "transact_write_items_ms": transact,
        "dynamodb": spent(outside.take()),
    }))
}

async fn cold(args: &Args) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    // Every call of this client is made outside a request: all of them land here.
    let outside = OutsideCalls::default();
    let client = dynamodb_client_recording(Some(&args.endpoint), &outside).await;
    let client_build_ms = ms(started.elapsed());
    let calls = if args.sequence == "get-put" {
        let first = get_key(&client, &args.clients_table).await?;
        let second = put_payment(&client, &args.payments_table).await?;
        json!({ "get_item_ms": first, "put_item_ms": second })
    } else if args.sequence == "get-get-transact" {
        let [key_ms, account_ms, transact_ms] =
            key_round(&client, args, key_account_of(args, 0)).await?;
        json!({
            "get_item_ms": key_ms,
            "get_account_ms": account_ms,
            "transact_write_items_ms": transact_ms,
        })
    } else if args.sequence != "transact" {
        let (first, second) = read_round(&client, args).await?;
        json!({ "get_item_ms": first, second_call(&args.sequence): second })
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
        "dynamodb": spent(outside.take()),
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
    let outcome = match args.mode.as_str() {
        "warm" => warm(&args).await,
        "seed" => seed(&args).await,
        _ => cold(&args).await,
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
