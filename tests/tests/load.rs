//! A bounded load test on loopback, under faults: many concurrent clients for a fixed time
//! through the local stack (`cargo lambda watch`, debug build, several instances per
//! function) against DynamoDB Local, with a seeded [`Fault::Flaky`] proxy on both legs:
//!
//! - between the functions and DynamoDB, where the SDK's own retries must turn a lost write
//!   response into a replay, and
//! - between the clients and the stack, where a lost response means the payment was stored
//!   and the client never heard of it.
//!
//! Halfway through, DynamoDB loses every response for a second (writes happen, and the
//! SDK's retries may fail as well), so a few clients get 503s for payments that were stored:
//! a few, since the SDK's three attempts spread over up to 3 s and at most four instances of
//! the function run at once.
//!
//! Clients do what docs/api.md tells them: on a 503 (honouring `Retry-After`) or a transport
//! error they retry the same request with the same `Idempotency-Key`. Some payments are
//! submitted by several tasks at once with one key, and some acknowledged keys are sent
//! again. Afterwards the payments table must hold exactly the acknowledged payments, once
//! each, with the amounts the clients sent; every request must have succeeded, and no 5xx
//! but 503 may have been seen.
//!
//! `LOAD_SECONDS` (default 8), `LOAD_CLIENTS` (default 16) and `LOAD_SEED` (default 1) shape
//! the run; results go to `target/load/results.md`. Latencies are those of the successful
//! attempts, excluding each client's first payment, which may wait for a new function
//! instance to start.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use payments_tests::proxy::{Fault, FaultCounts, FaultProxy};
use payments_tests::stack::{workspace_root, LocalStack};
use payments_tests::{dynamodb_endpoint, record_key};
use reqwest::Client;
use serde_json::{json, Value};
use shared::config::dynamodb_client;
use tokio::task::JoinSet;

/// Attempts per payment before the client gives up (and the test fails).
const MAX_ATTEMPTS: u32 = 8;
/// The longest `Retry-After` a client honours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Faults per thousand requests, per leg.
const DYNAMODB_LOSE_PER_MILLE: u32 = 20;
const DYNAMODB_RESET_PER_MILLE: u32 = 20;
const API_LOSE_PER_MILLE: u32 = 20;
const API_RESET_PER_MILLE: u32 = 10;
/// Halfway through, DynamoDB's responses are all lost for this long: writes happen, and
/// when the SDK's retries fail too the client gets a 503 for a payment that exists.
const OUTAGE: Duration = Duration::from_secs(1);

fn setting(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .min(max)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// A small deterministic generator for the clients' choices (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Why a payment was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// A new payment, sent by one task.
    Single,
    /// A new payment, sent by several tasks at once with the same key and body.
    DuplicateSubmit,
    /// An already acknowledged key sent again.
    Resend,
}

/// One account's credentials as the load clients use them.
#[derive(Clone)]
struct Account {
    id: String,
    api_key: String,
}

/// A payment a client asked for: the key and the body it sends on every attempt.
#[derive(Clone)]
struct Order {
    key: String,
    amount: u64,
}

/// The final answer to one submission (one task's attempts with one key).
struct Answer {
    account_id: String,
    key: String,
    amount: u64,
    kind: Kind,
    /// Whether this was the client's first submission (excluded from latencies).
    first: bool,
    id: String,
    replayed: bool,
    attempts: u32,
    /// Time of the attempt that got the 201.
    latency: Duration,
    /// From the first attempt to the 201, retries and waits included.
    total: Duration,
}

/// Everything a client task saw.
#[derive(Default)]
struct Tally {
    answers: Vec<Answer>,
    /// Submissions made, and HTTP requests sent for them.
    submissions: u64,
    requests: u64,
    /// Statuses of every HTTP response other than 201.
    other_statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    /// Submissions that never succeeded, or got an answer a retry cannot fix.
    failures: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.answers.extend(other.answers);
        self.submissions += other.submissions;
        self.requests += other.requests;
        for (status, n) in other.other_statuses {
            *self.other_statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.failures.extend(other.failures);
    }
}

/// Sends one payment as docs/api.md tells clients to: on a 429 or a 503 (after
/// `Retry-After`) or a transport error, the same request again with the same key, up to `MAX_ATTEMPTS` times.
async fn submit(
    http: Client,
    url: String,
    account: Account,
    order: Order,
    kind: Kind,
    first: bool,
) -> Tally {
    let mut tally = Tally {
        submissions: 1,
        ..Tally::default()
    };
    let body = json!({"amount": order.amount, "currency": "EUR", "description": "load"});
    let started = Instant::now();
    for attempt in 1..=MAX_ATTEMPTS {
        let sent = Instant::now();
        tally.requests += 1;
        let result = http
            .post(&url)
            .header("x-api-key", &account.api_key)
            .header("idempotency-key", &order.key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let response = match result {
            Ok(response) => response,
            Err(_) => {
                tally.transport_errors += 1;
                tokio::time::sleep(Duration::from_millis(20 << attempt.min(4))).await;
                continue;
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let Ok(text) = response.text().await else {
            tally.transport_errors += 1;
            continue;
        };
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            201 => {
                tally.answers.push(Answer {
                    account_id: account.id.clone(),
                    key: order.key.clone(),
                    amount: order.amount,
                    kind,
                    first,
                    id: answer["id"].as_str().unwrap_or_default().to_owned(),
                    replayed,
                    attempts: attempt,
                    latency: sent.elapsed(),
                    total: started.elapsed(),
                });
                if answer["amount"] != order.amount || answer["client_id"] != account.id.as_str() {
                    tally
                        .failures
                        .push(format!("{}: 201 with {text}", order.key));
                }
                return tally;
            }
            // Over the account's rate limit (nothing was done) or unavailable: the same
            // request again after Retry-After.
            429 | 503 => {
                *tally.other_statuses.entry(status).or_default() += 1;
                let wait = Duration::from_secs(retry_after.unwrap_or(1)).min(MAX_RETRY_AFTER);
                tokio::time::sleep(wait).await;
            }
            _ => {
                *tally.other_statuses.entry(status).or_default() += 1;
                tally
                    .failures
                    .push(format!("{}: {status} {text}", order.key));
                return tally;
            }
        }
    }
    tally.failures.push(format!(
        "{}: no success in {MAX_ATTEMPTS} attempts",
        order.key
    ));
    tally
}

/// One client until the deadline: mostly new payments, some sent by two or three tasks at
/// once, some acknowledged keys again.
async fn run_client(
    http: Client,
    url: String,
    account: Account,
    client: usize,
    seed: u64,
    deadline: Instant,
) -> Tally {
    let mut rng = Rng(seed ^ (client as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    let mut tally = Tally::default();
    let mut acknowledged: Vec<Order> = Vec::new();
    let mut sequence = 0u64;
    while Instant::now() < deadline {
        let roll = rng.below(100);
        let first = sequence == 0;
        let (kind, order, senders) = if roll < 8 && !acknowledged.is_empty() {
            let order = acknowledged[rng.below(acknowledged.len() as u64) as usize].clone();
            (Kind::Resend, order, 1)
        } else {
            sequence += 1;
            let order = Order {
                key: format!("load-{client}-{sequence}"),
                amount: 1 + rng.below(99_999),
            };
            if roll >= 85 {
                (Kind::DuplicateSubmit, order, 2 + rng.below(2))
            } else {
                (Kind::Single, order, 1)
            }
        };
        let mut senders_set = JoinSet::new();
        for _ in 0..senders {
            senders_set.spawn(submit(
                http.clone(),
                url.clone(),
                account.clone(),
                order.clone(),
                kind,
                first,
            ));
        }
        let mut succeeded = true;
        while let Some(result) = senders_set.join_next().await {
            let result = result.expect("submission task");
            succeeded &= result.failures.is_empty();
            tally.merge(result);
        }
        if succeeded && kind != Kind::Resend {
            acknowledged.push(order);
        }
    }
    tally
}

/// Every payment item: (id, account, idempotency key, amount).
async fn stored_payments(table: &str) -> Vec<(String, String, String, u64)> {
    let database = dynamodb_client(Some(&dynamodb_endpoint())).await;
    let mut stored = Vec::new();
    let mut start = None;
    loop {
        let page = database
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let text = |name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            let amount = item
                .get("amount")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            stored.push((
                text("pk"),
                text("client_id"),
                text("idempotency_key"),
                amount,
            ));
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return stored;
        }
    }
}

fn fault_row(leg: &str, counts: FaultCounts) -> String {
    format!(
        "| {leg} | {} | {} | {} | {} |\n",
        counts.forwarded, counts.lost_responses, counts.resets, counts.unframed
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_under_faults_store_every_payment_exactly_once() {
    let wall = Instant::now();
    let seconds = setting("LOAD_SECONDS", 8, 120);
    let clients = setting("LOAD_CLIENTS", 16, 64) as usize;
    let seed = setting("LOAD_SEED", 1, u64::MAX);

    // The proxies run on this test's runtime, and are dropped after the stack.
    let dynamodb_proxy = FaultProxy::start(&dynamodb_endpoint()).await;
    let stack = LocalStack::start_with_concurrency(&dynamodb_proxy.endpoint, 4).await;
    let api_proxy = FaultProxy::start(&stack.base_url).await;
    let setup_http = Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();

    // Set-up without faults: one account per client (account creation is not idempotent),
    // and one payment, which builds or starts the payments function.
    let mut accounts = Vec::new();
    for i in 0..clients {
        let response = setup_http
            .post(format!("{}/accounts", stack.base_url))
            .header("content-type", "application/json")
            .body(json!({"name": format!("Load client {i}")}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", stack.log());
        let body: Value = response.json().await.unwrap();
        let api_key = body["api_key"].as_str().unwrap().to_owned();
        record_key(&api_key);
        accounts.push(Account {
            id: body["id"].as_str().unwrap().to_owned(),
            api_key,
        });
    }
    let warm_up = submit(
        setup_http.clone(),
        format!("{}/payments", stack.base_url),
        accounts[0].clone(),
        Order {
            key: "warm-up".to_owned(),
            amount: 1,
        },
        Kind::Single,
        true,
    )
    .await;
    assert!(
        warm_up.failures.is_empty(),
        "{:?}\n{}",
        warm_up.failures,
        stack.log()
    );

    let dynamodb_flaky = |seed| Fault::Flaky {
        seed,
        lose_response_per_mille: DYNAMODB_LOSE_PER_MILLE,
        reset_per_mille: DYNAMODB_RESET_PER_MILLE,
    };
    dynamodb_proxy.set(dynamodb_flaky(seed));
    api_proxy.set(Fault::Flaky {
        seed: seed.wrapping_add(1),
        lose_response_per_mille: API_LOSE_PER_MILLE,
        reset_per_mille: API_RESET_PER_MILLE,
    });
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("{}/payments", api_proxy.endpoint);

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = JoinSet::new();
    for (client, account) in accounts.iter().cloned().enumerate() {
        tasks.spawn(run_client(
            http.clone(),
            url.clone(),
            account,
            client,
            seed,
            deadline,
        ));
    }
    let outage_at = Duration::from_secs(seconds) / 2;
    let outage = async {
        tokio::time::sleep_until((started + outage_at).into()).await;
        dynamodb_proxy.set(Fault::LoseResponses);
        tokio::time::sleep(OUTAGE).await;
        dynamodb_proxy.set(dynamodb_flaky(seed.wrapping_add(2)));
    };
    let answers = async {
        let mut tally = warm_up;
        while let Some(result) = tasks.join_next().await {
            tally.merge(result.expect("client task"));
        }
        tally
    };
    let ((), tally) = tokio::join!(outage, answers);
    let elapsed = started.elapsed();
    let (dynamodb_faults, api_faults) = (dynamodb_proxy.counts(), api_proxy.counts());
    dynamodb_proxy.set(Fault::None);
    api_proxy.set(Fault::None);

    let stored = stored_payments(&stack.payments_table).await;
    let report = summary(&Run {
        clients,
        seed,
        elapsed,
        outage_at,
        wall: wall.elapsed(),
        tally: &tally,
        stored: stored.len(),
        dynamodb_faults,
        api_faults,
    });
    println!("{report}");
    let dir = workspace_root().join("target").join("load");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.md"), &report).unwrap();

    let problems = problems(&tally, &stored, &accounts);
    assert!(problems.is_empty(), "{}\n\n{report}", problems.join("\n"));
    assert!(
        dynamodb_faults.lost_responses + dynamodb_faults.resets > 0
            && api_faults.lost_responses + api_faults.resets > 0,
        "faults were injected on both legs: {dynamodb_faults:?} {api_faults:?}"
    );
}

/// Up to three examples from a list, for failure messages.
fn examples<T: std::fmt::Debug>(items: &[T]) -> String {
    format!("{:?}", &items[..items.len().min(3)])
}

/// Everything wrong with the run, one line per kind of problem.
fn problems(
    tally: &Tally,
    stored: &[(String, String, String, u64)],
    accounts: &[Account],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut note = |what: &str, found: Vec<String>| {
        if !found.is_empty() {
            problems.push(format!("{} {what}, e.g. {}", found.len(), examples(&found)));
        }
    };

    // Every request eventually succeeded, and the only 5xx was 503 (a 429, answered by a
    // retry after Retry-After, would be an account over its rate limit).
    note("submissions failed", tally.failures.clone());
    note(
        "statuses other than 201, 429 and 503 seen",
        tally
            .other_statuses
            .iter()
            .filter(|(&status, _)| status != 503 && status != 429)
            .map(|(status, n)| format!("{n} x {status}"))
            .collect(),
    );

    // Every answer for one key names the same payment, at most one of them created it,
    // and a resent key is always a replay.
    let mut by_key: HashMap<(&str, &str), (&str, u64, usize)> = HashMap::new();
    let mut differing = Vec::new();
    let mut resent_not_replayed = Vec::new();
    for answer in &tally.answers {
        let entry = by_key.entry((&answer.account_id, &answer.key)).or_insert((
            &answer.id,
            answer.amount,
            0,
        ));
        if (entry.0, entry.1) != (answer.id.as_str(), answer.amount) {
            differing.push(format!("{}: {} and {}", answer.key, entry.0, answer.id));
        }
        if !answer.replayed {
            entry.2 += 1;
        }
        if answer.kind == Kind::Resend && !answer.replayed {
            resent_not_replayed.push(answer.key.clone());
        }
    }
    note("keys answered with different payments", differing);
    note("resent keys not replayed", resent_not_replayed);
    note(
        "keys answered as newly created more than once",
        by_key
            .iter()
            .filter(|(_, v)| v.2 > 1)
            .map(|(k, v)| format!("{}: {} times", k.1, v.2))
            .collect(),
    );

    // The table holds exactly the acknowledged payments, once each, as the clients sent
    // them: one per acknowledged key, and nothing else.
    let acknowledged: HashSet<&str> = by_key.values().map(|v| v.0).collect();
    let stored_ids: HashSet<&str> = stored.iter().map(|p| p.0.as_str()).collect();
    note(
        "stored payments no client was told about",
        stored
            .iter()
            .filter(|p| !acknowledged.contains(p.0.as_str()))
            .map(|p| format!("{} (key {}, amount {})", p.0, p.2, p.3))
            .collect(),
    );
    note(
        "acknowledged payments not stored",
        acknowledged
            .iter()
            .filter(|id| !stored_ids.contains(*id))
            .map(|id| id.to_string())
            .collect(),
    );
    let mut stored_keys = HashSet::new();
    let mut twice = Vec::new();
    let mut altered = Vec::new();
    for (id, account, key, amount) in stored {
        if !stored_keys.insert((account.as_str(), key.as_str())) {
            twice.push(format!("{account}/{key}"));
        }
        if let Some(&(acknowledged_id, sent, _)) = by_key.get(&(account.as_str(), key.as_str())) {
            if (acknowledged_id, sent) != (id.as_str(), *amount) {
                altered.push(format!(
                    "{id}: {amount}, acknowledged {acknowledged_id} for {sent}"
                ));
            }
        }
    }
    note("keys stored more than once", twice);
    note("payments stored unlike their acknowledgement", altered);
    if stored.len() != by_key.len() {
        problems.push(format!(
            "{} payments stored for {} acknowledged keys",
            stored.len(),
            by_key.len()
        ));
    }
    let silent: Vec<String> = accounts
        .iter()
        .filter(|account| {
            !tally
                .answers
                .iter()
                .any(|a| a.account_id == account.id && !a.first)
        })
        .map(|account| account.id.clone())
        .collect();
    if !silent.is_empty() {
        problems.push(format!("{} clients got no payment through", silent.len()));
    }
    problems
}

struct Run<'a> {
    clients: usize,
    seed: u64,
    elapsed: Duration,
    outage_at: Duration,
    wall: Duration,
    tally: &'a Tally,
    stored: usize,
    dynamodb_faults: FaultCounts,
    api_faults: FaultCounts,
}

fn summary(run: &Run) -> String {
    let tally = run.tally;
    let retries = tally.requests - tally.submissions;
    let replays = |keep: &dyn Fn(&Answer) -> bool| {
        tally
            .answers
            .iter()
            .filter(|a| a.replayed && keep(a))
            .count()
    };
    let submissions = |kind| tally.answers.iter().filter(|a| a.kind == kind).count();
    let mut latencies: Vec<Duration> = tally
        .answers
        .iter()
        .filter(|a| !a.first)
        .map(|a| a.latency)
        .collect();
    latencies.sort();
    if latencies.is_empty() {
        latencies.push(Duration::ZERO);
    }
    let slowest_total = tally
        .answers
        .iter()
        .map(|a| a.total)
        .max()
        .unwrap_or_default();
    let unavailable = tally.other_statuses.get(&503).copied().unwrap_or(0);
    let other_5xx: u64 = tally
        .other_statuses
        .iter()
        .filter(|(&s, _)| s >= 500 && s != 503)
        .map(|(_, n)| n)
        .sum();
    let seconds = run.elapsed.as_secs_f64();
    format!(
        "| clients | duration | payments | requests | retries | replays | throughput | p50 | p90 | p99 | max | 503 | other 5xx |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
         | {} | {seconds:.1} s | {} | {} | {retries} | {} | {:.0} payments/s, {:.0} req/s | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {unavailable} | {other_5xx} |\n\
         \n\
         Submissions answered: {} single, {} duplicate-submit (2 or 3 tasks at once, one key), \
         {} resends of an acknowledged key; {} failed.\n\
         Replays: {} on resends, {} among duplicate submits, {} to a single sender after its own retry, \
         {} on a single sender's first attempt (the SDK's retry after a lost DynamoDB response).\n\
         Client-visible: {} transport errors, {unavailable} 503s; slowest payment including retries \
         {:.0} ms. DynamoDB lost every response for {:.1} s from {:.1} s in. Seed {}; wall time \
         {:.1} s.\n\
         \n\
         | faults injected | forwarded | lost responses | resets | unframed |\n\
         |---|---|---|---|---|\n\
         {}{}",
        run.clients,
        run.stored,
        tally.requests,
        replays(&|_| true),
        run.stored as f64 / seconds,
        tally.requests as f64 / seconds,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
        submissions(Kind::Single),
        submissions(Kind::DuplicateSubmit),
        submissions(Kind::Resend),
        tally.failures.len(),
        replays(&|a| a.kind == Kind::Resend),
        replays(&|a| a.kind == Kind::DuplicateSubmit),
        replays(&|a| a.kind == Kind::Single && a.attempts > 1),
        replays(&|a| a.kind == Kind::Single && a.attempts == 1),
        tally.transport_errors,
        ms(slowest_total),
        OUTAGE.as_secs_f64(),
        run.outage_at.as_secs_f64(),
        run.seed,
        run.wall.as_secs_f64(),
        fault_row("functions to DynamoDB", run.dynamodb_faults),
        fault_row("clients to the stack", run.api_faults),
    )
}
