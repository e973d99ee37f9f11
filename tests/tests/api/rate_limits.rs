//! Per-account rate limits across execution environments, against DynamoDB Local: each
//! simulated environment has a limiter of its own (its own counts and share, as an execution
//! environment has), their claims meet in the account's item in DynamoDB Local, and the
//! arrivals are scheduled on a logical clock (each report answered before the next arrival),
//! so that a loaded machine cannot change a verdict. The scenarios and targets are the
//! simulation's (`shared::domain::simulation`); docs/data-model.md gives both sets of
//! figures.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use payments_tests::calls::Calls;
use payments_tests::{keyed_request, operator, TestApp, TestResponse};
use serde_json::json;
use shared::domain::simulation::{arrivals, Arrivals, Load, Scenario, START_MS};
use shared::domain::{
    AccountId, ApiKey, Clock, IpAllowList, KeyEnvironment, KeyId, KeyKind, KeyPrefix, Permissions,
    RateLimit, Timestamp,
};
use shared::http::auth::{AuthenticatedClient, KeyUse};
use shared::http::limit::RateLimiter;
use shared::store::dynamo::DynamoStore;

/// A clock the test moves, in milliseconds since the Unix epoch.
#[derive(Clone)]
struct LogicalClock(Arc<AtomicU64>);

impl LogicalClock {
    fn new() -> Self {
        LogicalClock(Arc::new(AtomicU64::new(START_MS)))
    }

    fn set_us(&self, after_start_us: u64) -> Timestamp {
        let ms = START_MS + after_start_us / 1000;
        self.0.store(ms, Ordering::SeqCst);
        at_ms(ms)
    }

    fn clock(&self) -> Clock {
        let now = self.0.clone();
        Clock::from_fn(move || at_ms(now.load(Ordering::SeqCst)))
    }
}

fn at_ms(ms: u64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

fn client_of(account: &AccountId, limit: u64) -> AuthenticatedClient {
    AuthenticatedClient {
        account_id: account.clone(),
        key_id: KeyId::generate().unwrap(),
        key_prefix: KeyPrefix::parse("sk_test_AAAA").unwrap(),
        key_use: KeyUse::default(),
        rate_limit: Some(RateLimit::new(limit).unwrap()),
        permissions: Permissions::ALL,
        allowed_ips: IpAllowList::default(),
        expires_at: None,
    }
}

/// Per second of the run: requests admitted (all environments), and refused.
struct Run {
    admitted: Vec<u64>,
    refused: u64,
    /// `UpdateItem`s sent (each report is one).
    writes: usize,
}

impl Run {
    fn mean(&self, from: usize, to: usize) -> f64 {
        let seconds = &self.admitted[from - 1..to];
        seconds.iter().sum::<u64>() as f64 / seconds.len() as f64
    }

    fn writes_per_admitted(&self) -> f64 {
        self.writes as f64 / self.admitted.iter().sum::<u64>() as f64
    }
}

/// Drives `scenario`'s arrivals through one limiter per environment, each publishing to the
/// account's item in DynamoDB Local, on a logical clock.
async fn drive(app: &TestApp, scenario: &Scenario) -> Run {
    let calls = Calls::default();
    let store = DynamoStore::new(calls.counting(&app.client), app.tables());
    let clock = LogicalClock::new();
    let limiters: Vec<RateLimiter> = (0..scenario.environments)
        .map(|_| RateLimiter::new(RateLimit::DEFAULT, clock.clock()))
        .collect();
    let account = AccountId::generate().unwrap();
    let client = client_of(&account, u64::from(scenario.limit.per_second()));
    let mut run = Run {
        admitted: vec![0; scenario.seconds as usize],
        refused: 0,
        writes: 0,
    };
    for (at_us, environment) in arrivals(&scenario.loads, scenario.environments, scenario.arrivals)
    {
        let now = clock.set_us(at_us);
        let limiter = &limiters[environment];
        match limiter.admit(&client, &store, now) {
            Ok(()) => run.admitted[(at_us / 1_000_000) as usize] += 1,
            Err(_) => run.refused += 1,
        }
        limiter.settled().await;
    }
    run.writes = calls.of("UpdateItem");
    run
}

const LIMIT: u64 = 100;
const L: u64 = LIMIT * 1000;

#[tokio::test]
async fn environments_at_three_times_the_limit_settle_at_it() {
    let app = TestApp::spawn().await;
    for environments in [1, 4, 16] {
        let run = drive(&app, &Scenario::even(LIMIT, environments, 3 * L, 20)).await;
        println!(
            "{environments} environments at 3x: {:?}; {:.4} writes per admitted request",
            run.admitted,
            run.writes_per_admitted()
        );
        assert!(run.mean(3, 10) <= 1.2 * LIMIT as f64, "{:?}", run.admitted);
        assert!(run.mean(3, 10) >= 0.95 * LIMIT as f64, "{:?}", run.admitted);
        assert!(
            run.admitted[1..].iter().all(|&n| n <= 2 * LIMIT),
            "{:?}",
            run.admitted
        );
        assert!(run.writes_per_admitted() <= 0.05);
    }
}

#[tokio::test]
async fn spread_out_and_uneven_load_settle_at_the_limit() {
    let app = TestApp::spawn().await;
    let spread = Scenario::even(LIMIT, 64, 3 * L / 64, 20);
    let skewed = Scenario {
        loads: (0..16)
            .map(|n| Load {
                environment: n,
                from_ms: 0,
                to_ms: 20_000,
                per_second: 3 * L * (n as u64 + 1) / 136,
            })
            .collect(),
        ..Scenario::even(LIMIT, 16, 0, 20)
    };
    for (name, scenario) in [
        ("64 environments, 3x together", spread),
        ("16 skewed", skewed),
    ] {
        let run = drive(&app, &scenario).await;
        println!("{name}: {:?}", run.admitted);
        assert!(
            run.mean(3, 20) <= 1.2 * LIMIT as f64,
            "{name}: {:?}",
            run.admitted
        );
        assert!(
            run.mean(3, 20) >= 0.9 * LIMIT as f64,
            "{name}: {:?}",
            run.admitted
        );
    }
}

#[tokio::test]
async fn an_account_under_its_limit_is_never_refused() {
    let app = TestApp::spawn().await;
    for environments in [1, 4, 16] {
        let run = drive(
            &app,
            &Scenario::even(LIMIT, environments, 4 * L / 5 / environments as u64, 20),
        )
        .await;
        assert_eq!(run.refused, 0, "{environments}");
    }
    // With random arrivals an account under its limit goes over it in some seconds; the
    // shares refuse no more than one request in a hundred (the simulation compares that with
    // one environment alone).
    let mut random = Scenario::even(LIMIT, 16, 4 * L / 5 / 16, 20);
    random.arrivals = Arrivals::Poisson { seed: 7 };
    let run = drive(&app, &random).await;
    let offered = run.admitted.iter().sum::<u64>() + run.refused;
    assert!(run.refused * 100 <= offered, "{} of {offered}", run.refused);
}

/// Through the payment handler: four environments, each offered three times the limit, on
/// the logical clock. Every 201 is a stored payment and every 429 stored nothing; another
/// account and a key guesser going through the same environments are not affected and do
/// not count.
#[tokio::test]
async fn payments_through_several_environments_keep_the_limit() {
    const LIMIT: u64 = 20;
    let app = TestApp::spawn().await;
    let (id, key) = app.new_client().await;
    let account = AccountId::parse(&id).unwrap();
    app.store()
        .set_rate_limit(
            &account,
            Some(RateLimit::new(LIMIT).unwrap()),
            Timestamp::now(),
            &operator(),
        )
        .await
        .unwrap();
    let (_, other_key) = app.new_client().await;
    let guess = ApiKey::generate(KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let clock = LogicalClock::new();
    let environments: Vec<_> = (0..4)
        .map(|_| {
            payments_tests::payment_environment(
                app.store().clone(),
                clock.clock(),
                RateLimit::DEFAULT,
            )
        })
        .collect();
    let scenario = Scenario::even(LIMIT, 4, 3 * LIMIT * 1000, 6);
    let mut admitted = vec![0u64; 6];
    let (mut created, mut limited) = (HashSet::new(), HashSet::new());
    let mut others = vec![];
    for (n, (at_us, environment)) in arrivals(&scenario.loads, 4, Arrivals::Even)
        .into_iter()
        .enumerate()
    {
        clock.set_us(at_us);
        let state = &environments[environment];
        let body = json!({"amount": 100, "currency": "USD"});
        let idempotency_key = format!("flood-{n}");
        let response = TestResponse::from_lambda(
            create_payment::handle(state, keyed_request(&key, &idempotency_key, &body)).await,
        );
        match response.status {
            201 => {
                admitted[(at_us / 1_000_000) as usize] += 1;
                created.insert(idempotency_key);
            }
            429 => {
                assert_eq!(response.error_code(), "rate_limited");
                assert!(response.headers.contains_key("retry-after"));
                limited.insert(idempotency_key);
            }
            status => panic!("{status}: {:?}", response.body),
        }
        if n % 40 == 0 {
            let other = create_payment::handle(
                state,
                keyed_request(&other_key, &format!("other-{n}"), &body),
            )
            .await;
            others.push(other.status().as_u16());
            let guessed = create_payment::handle(
                state,
                keyed_request(guess.expose_once(), &format!("guess-{n}"), &body),
            )
            .await;
            assert_eq!(guessed.status(), 401);
        }
        state.edge.limiter().settled().await;
    }
    println!(
        "admitted per second: {admitted:?}; {} limited",
        limited.len()
    );
    assert!(!limited.is_empty());
    let mean = admitted[2..].iter().sum::<u64>() as f64 / 4.0;
    assert!(
        mean <= 1.2 * LIMIT as f64 && mean >= 0.9 * LIMIT as f64,
        "{admitted:?}"
    );
    assert!(
        admitted[1..].iter().all(|&n| n <= 2 * LIMIT),
        "{admitted:?}"
    );
    assert!(others.iter().all(|&status| status == 201), "{others:?}");
    // Nothing written for a 429: the stored payments are exactly the 201s.
    let stored: HashSet<String> = app
        .payments_of(account.as_str())
        .await
        .iter()
        .map(|item| item["idempotency_key"].as_s().unwrap().clone())
        .collect();
    assert_eq!(stored, created);
    // One claim per environment in the account's item, none for the other accounts' guesses.
    let item = app
        .scan(&app.clients_table)
        .await
        .into_iter()
        .find(|item| item["pk"].as_s().unwrap() == &format!("RATE#{account}"))
        .expect("the account's demand item");
    assert!(item.contains_key("ttl"));
    assert_eq!(
        item.keys().filter(|name| name.starts_with("env_")).count(),
        4
    );
}
