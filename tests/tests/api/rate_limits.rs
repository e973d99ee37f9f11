//! Per-account rate limits across several execution environments, against DynamoDB Local:
//! each simulated environment is the payment handler with a limiter of its own (its own
//! counts, as an execution environment has), all sharing the tables, served concurrently.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use payments_tests::{keyed_request, operator, TestApp, TestResponse};
use serde_json::json;
use shared::domain::{AccountId, ApiKey, KeyEnvironment, RateLimit, Timestamp, WINDOW_MS};
use shared::store::dynamo::DynamoStore;

fn environment(app: &TestApp) -> create_payment::State<DynamoStore> {
    payments_tests::payment_environment(app.store().clone(), app.clock.clock(), RateLimit::DEFAULT)
}

/// What one simulated client saw.
#[derive(Default)]
struct History {
    /// Window (by the payment's `created_at`, the instant the limiter decided on) of each
    /// payment created, and its idempotency key.
    created: Vec<(u64, String)>,
    /// Idempotency keys of the requests refused with 429.
    limited: Vec<String>,
    other: Vec<u16>,
}

async fn pay(
    state: &create_payment::State<DynamoStore>,
    key: &str,
    idempotency_key: &str,
) -> TestResponse {
    let body = json!({"amount": 100, "currency": "USD"});
    TestResponse::from_lambda(
        create_payment::handle(state, keyed_request(key, idempotency_key, &body)).await,
    )
}

/// Sends requests of `key` through `state` one after another until `until`.
async fn hammer(
    state: &create_payment::State<DynamoStore>,
    key: &str,
    name: &str,
    until: Instant,
) -> History {
    let mut history = History::default();
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let idempotency_key = format!("{name}-{n}");
        let response = pay(state, key, &idempotency_key).await;
        match response.status {
            201 => {
                let at = Timestamp::parse(response.body["created_at"].as_str().unwrap()).unwrap();
                history
                    .created
                    .push((at.unix_millis() / WINDOW_MS, idempotency_key));
            }
            429 => {
                assert_eq!(response.error_code(), "rate_limited");
                assert!(response.headers.contains_key("retry-after"));
                history.limited.push(idempotency_key);
            }
            status => history.other.push(status),
        }
    }
    history
}

async fn limited_account(app: &TestApp, per_second: u64) -> (AccountId, String) {
    let (id, key) = app.new_client().await;
    let id = AccountId::parse(&id).unwrap();
    app.store()
        .set_rate_limit(
            &id,
            Some(RateLimit::new(per_second).unwrap()),
            Timestamp::now(),
            &operator(),
        )
        .await
        .unwrap();
    (id, key)
}

fn per_window(histories: &[History]) -> BTreeMap<u64, u64> {
    let mut windows = BTreeMap::new();
    for (window, _) in histories.iter().flat_map(|h| &h.created) {
        *windows.entry(*window).or_default() += 1;
    }
    windows
}

/// The shared counts DynamoDB holds for `account`: (window, requests).
async fn shared_counts(app: &TestApp, account: &AccountId) -> Vec<(u64, u64)> {
    let prefix = format!("RATE#{account}#");
    app.scan(&app.clients_table)
        .await
        .into_iter()
        .filter_map(|item| {
            let pk = item["pk"].as_s().ok()?.clone();
            let window = pk.strip_prefix(&prefix)?.parse().ok()?;
            assert!(item.contains_key("ttl"), "a count without a TTL: {pk}");
            Some((window, item["requests"].as_n().ok()?.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn several_environments_hold_the_limit_within_the_stated_bound() {
    const LIMIT: u64 = 20;
    const ENVIRONMENTS: u64 = 4;
    let app = TestApp::spawn().await;
    let (account, key) = limited_account(&app, LIMIT).await;
    let (_, other_key) = app.new_client().await;
    let environments: Vec<_> = (0..ENVIRONMENTS).map(|_| environment(&app)).collect();
    let until = Instant::now() + Duration::from_secs(3);

    // The limited account floods every environment; meanwhile another account pays at a
    // modest rate through the same environments, and a key guesser tries its luck.
    let floods = async {
        let [a, b, c, d] = &environments[..] else {
            unreachable!("four environments")
        };
        let (a, b, c, d) = tokio::join!(
            hammer(a, &key, "env0", until),
            hammer(b, &key, "env1", until),
            hammer(c, &key, "env2", until),
            hammer(d, &key, "env3", until),
        );
        vec![a, b, c, d]
    };
    let other = async {
        let mut statuses = vec![];
        for n in 0..30 {
            let state = &environments[n % environments.len()];
            statuses.push(pay(state, &other_key, &format!("other-{n}")).await.status);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        statuses
    };
    let guesser = async {
        let guess =
            ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
        let mut statuses = HashSet::new();
        for n in 0..200 {
            let state = &environments[n % environments.len()];
            statuses.insert(
                pay(state, guess.expose_once(), &format!("guess-{n}"))
                    .await
                    .status,
            );
        }
        statuses
    };
    let (histories, other, guesses) = tokio::join!(floods, other, guesser);

    assert!(histories.iter().all(|h| h.other.is_empty()));
    assert_eq!(other, vec![201; 30], "another account is not limited");
    assert_eq!(guesses, HashSet::from([401]));
    let windows = per_window(&histories);
    let admitted: u64 = windows.values().sum();
    let limited: usize = histories.iter().map(|h| h.limited.len()).sum();
    println!("admitted per window: {windows:?}; {limited} limited");
    assert!(limited > 0, "the flood was over the limit");
    // The bound: at most ENVIRONMENTS x LIMIT in any one-second window.
    for (window, count) in &windows {
        assert!(
            *count <= ENVIRONMENTS * LIMIT,
            "window {window}: {count} admitted"
        );
    }
    // And the limit is there to be used: the account got at least its limit each whole
    // second of the run.
    let whole: Vec<u64> = windows.values().copied().skip(1).collect();
    let whole = &whole[..whole.len().saturating_sub(1)];
    assert!(whole.iter().all(|&n| n >= LIMIT), "{windows:?}");

    // Nothing written for a 429: the stored payments are exactly the 201s.
    let created: HashSet<String> = histories
        .iter()
        .flat_map(|h| h.created.iter().map(|(_, key)| key.clone()))
        .collect();
    let stored: HashSet<String> = app
        .payments_of(account.as_str())
        .await
        .iter()
        .map(|item| item["idempotency_key"].as_s().unwrap().clone())
        .collect();
    assert_eq!(stored, created);
    for refused in histories.iter().flat_map(|h| &h.limited) {
        assert!(!stored.contains(refused));
    }

    // The environments reconciled through DynamoDB, never counting more than was admitted
    // (the last second's requests may still be unreported).
    let counts = shared_counts(&app, &account).await;
    let reported: u64 = counts.iter().map(|(_, n)| n).sum();
    assert!(
        reported > 0 && reported <= admitted,
        "{reported} of {admitted}"
    );
    assert!(counts.len() as u64 <= 5, "{counts:?}");
}

#[tokio::test]
async fn one_environment_never_admits_more_than_the_limit_in_a_second() {
    const LIMIT: u64 = 10;
    let app = TestApp::spawn().await;
    let (_, key) = limited_account(&app, LIMIT).await;
    let state = environment(&app);
    let history = hammer(
        &state,
        &key,
        "solo",
        Instant::now() + Duration::from_secs(2),
    )
    .await;
    let windows = per_window(std::slice::from_ref(&history));
    assert!(windows.values().all(|&n| n <= LIMIT), "{windows:?}");
    assert!(windows.values().sum::<u64>() >= LIMIT, "{windows:?}");
    assert!(!history.limited.is_empty());
}
