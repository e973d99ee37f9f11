//! A randomized, seeded fault campaign, and the invariant checker that judges it.
//!
//! Many concurrent clients drive the real handlers (create-account, create-payment,
//! get-payment) while DynamoDB Local sits behind a fault proxy, and a nemesis, choosing
//! from the seed, changes the faults every few seconds: requests dropped before they reach
//! DynamoDB, forwarded with their responses dropped, connections reset, requests held past
//! the SDK's 2 s attempt timeout before they are forwarded, DynamoDB paused (SIGSTOP) or
//! restarted. Meanwhile an operator creates accounts, rotates keys and revokes them, and
//! accounts manage their own keys through the API: they create restricted keys
//! (`POST /keys`), read each new key back (`GET /keys/{id}`), roll their keys
//! (`POST /keys/{id}/roll`) and revoke them (`DELETE /keys/{id}`).
//!
//! Clients behave as docs/api.md tells them to. Some send an `Idempotency-Key` and, on a
//! 429, a 503 or a lost answer, send the same request again with it. Some send none: on a
//! 503 `payment_outcome_unknown` they look the payment up (`GET /payments/{payment_id}`),
//! and if it is not there they send the request again with the `idempotency_key` the 503
//! named; on any answer that says nothing was recorded they pay again.
//! All honour `Retry-After`. A client whose key is refused takes its account's newest key.
//!
//! Afterwards the checker reads the payments table and the histories and asserts:
//! every acknowledged payment is stored exactly once, with the body the client was given;
//! at most one payment per account and `Idempotency-Key`, and at most one per payment a
//! client made without a key; every stored payment was sent by a client of its account;
//! an answer that said nothing was recorded recorded nothing; a key never succeeds on a
//! request sent after its revocation (or retirement) was acknowledged, and a key whose
//! issuance was acknowledged is never refused before an operator touched it; every request is
//! answered within its deadline; and no status is outside those the API documents.
//!
//! An account whose roll or create gets no answer, or one that may have been applied (a 503
//! `outcome_unknown`, a 500), does what docs/api.md says: it lists its keys (`GET /keys`,
//! with the key it used, which works through a self-roll's grace) and revokes the new key
//! it never saw: for a roll, the one beside its rolled key, now expiring (which undoes the
//! roll); for a create, the one with the name its request gave. Then it sends the change
//! again. The checker asserts that afterwards every key of such an account that works is a
//! key whose secret a client was given (a lost answer never leaves a working key behind that
//! nobody holds), that no create or roll request made more than one key (by the audit
//! trail, which records each change with its request id), and that every new key read back
//! is the key its 201 described.
//!
//! `CHAOS_SECONDS` (default 60), `CHAOS_SEED` (default: from the clock; printed) and
//! `CHAOS_CLIENTS` (default 12) shape the run; `make chaos SECONDS=1800` runs a long one.
//! The report goes to stdout and `target/chaos/report.md`. A seed fixes every choice the
//! campaign makes (faults, clients, operator); the interleaving of concurrent tasks does not
//! replay exactly. A violation prints the seed and, for each, the shortest history that
//! shows it: the attempts of that one payment (or key) and the faults and operator actions
//! that overlapped them.

// The client futures here nest the handlers' (request pipeline, route, SDK) several levels
// deep, past the compiler's default depth for computing their layout.
#![recursion_limit = "256"]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use payments_tests::dynamodb_local::DynamoDbLocal;
use payments_tests::proxy::{splitmix64, ChaosRates, Fault, FaultProxy};
use payments_tests::stack::workspace_root;
use payments_tests::{json_request, keyed_request, operator, TestApp, TestResponse};
use serde_json::{json, Value};
use shared::config::dynamodb_client;
use shared::domain::{AccountId, ApiKey, AuditAction, KeyEnvironment, KeyId, Timestamp};
use shared::store::dynamo::DynamoStore;
use shared::store::IssuedKey;
use shared::testing::with_deadline_in;

/// Each invocation's deadline, as Lambda would set it: the function must answer by then.
const DEADLINE_MS: i64 = 6_000;
/// A held request is forwarded after this: past the SDK's 2 s attempt timeout.
const DELAY: Duration = Duration::from_millis(2_500);
/// The longest `Retry-After` a client honours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);
/// Attempts of one payment (lookups included) before its client gives up on it.
const MAX_ATTEMPTS: usize = 12;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small seeded generator (SplitMix64), one per task, so each task's choices follow
/// from the seed alone.
struct Rng {
    seed: u64,
    n: u64,
}

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        Rng {
            seed: splitmix64(seed, stream.wrapping_mul(0x9E37_79B9)),
            n: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.n += 1;
        splitmix64(self.seed, self.n)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn per_mille(&mut self, rate: u64) -> bool {
        self.below(1000) < rate
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

/// One request a client sent, and what it got.
#[derive(Debug, Clone)]
struct Attempt {
    what: &'static str,
    key_id: String,
    started_ms: u64,
    elapsed_ms: u64,
    status: u16,
    code: String,
    payment_id: Option<String>,
}

impl Attempt {
    /// The answer says the request recorded nothing (so paying again cannot double).
    fn recorded_nothing(&self) -> bool {
        self.what == "POST"
            && match self.status {
                400 | 401 | 405 | 413 | 415 | 422 | 429 | 500 => true,
                503 => self.code == "service_unavailable",
                _ => false,
            }
    }
}

/// One payment a client set out to make, and everything it did for it.
#[derive(Debug, Clone)]
struct Intent {
    client: usize,
    account: String,
    /// Unique to the intent: how the checker finds its stored payments.
    description: String,
    amount: u64,
    idempotency_key: Option<String>,
    attempts: Vec<Attempt>,
    /// The payment the client was given: a 201's body, or the 200 of its lookup.
    acknowledged: Option<Value>,
}

/// A key the operator (or an account's creation) issued, as clients and the checker know it.
#[derive(Debug, Clone)]
struct BookKey {
    account: String,
    key: String,
    key_id: String,
    /// When an operator change that may stop it began, and when one that stops it was
    /// acknowledged.
    touched_ms: Option<u64>,
    retired_ms: Option<u64>,
}

#[derive(Default)]
struct Book {
    keys: Vec<BookKey>,
    /// Accounts each client pays for.
    accounts_of: HashMap<usize, Vec<String>>,
    /// Operator actions and faults, in order: (at ms, what).
    events: Vec<(u64, String)>,
    fault_counts: BTreeMap<&'static str, u64>,
    created_accounts: Vec<(String, String)>,
    /// Every `POST /accounts` of the operator: (milliseconds it took, status).
    account_creations: Vec<(u64, u16)>,
    /// Every self-service roll and create: its route, its account, the key that made it,
    /// and how it ended.
    key_changes: Vec<(&'static str, String, String, KeyChangeOutcome)>,
    /// Every create and roll request sent: its account and its request id (`x-request-id`,
    /// which the change's audit event records).
    key_requests: Vec<(String, String)>,
    /// New keys read back (`GET /keys/{id}`) that were not the key their 201 described.
    misread_keys: Vec<String>,
    /// The new key of each self-service roll, with when its 201 came.
    rolled_into: HashMap<String, u64>,
    /// Accounts with a key change whose outcome nobody learned (an operator's rotation
    /// whose answer was lost, a roll or create its account could not resolve): a key may
    /// work there that no client was given.
    uncertain: HashSet<String>,
    /// Every answer of the key routes: (route, milliseconds it took, status).
    key_answers: Vec<(&'static str, u64, u16)>,
}

/// How an account's roll of its key, or its creation of a key, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyChangeOutcome {
    /// A 201 on the first request.
    Made,
    /// A 201 after a lost or unknown answer, found out from `GET /keys`.
    MadeAfterLooking,
    /// A lost change found applied, its new key revoked (a roll undone), made again.
    UndoneAndMade,
    /// Refused: the key was already being replaced or no longer works (an operator's
    /// rotation came first), or the account had 10 keys working.
    Refused,
    /// The account could not find out (its key stopped, or every look failed).
    Unresolved,
}

impl KeyChangeOutcome {
    /// A 201, after looking at the keys or not, after revoking a lost change's key or not.
    fn made(looked: bool, undone: bool) -> Self {
        match (looked, undone) {
            (_, true) => KeyChangeOutcome::UndoneAndMade,
            (true, false) => KeyChangeOutcome::MadeAfterLooking,
            (false, false) => KeyChangeOutcome::Made,
        }
    }
}

impl Book {
    /// Whether revoking `key` might undo the roll that made it: during the rolled key's
    /// grace, that gives the rolled key back, which the book would not know.
    fn may_undo_a_roll(&self, key: &BookKey, now_ms: u64) -> bool {
        self.rolled_into
            .get(&key.key_id)
            .is_some_and(|at| now_ms < at + 60_000 + 10_000)
    }

    /// Any key `account` ever had, stopped or not: what a client with a stale configuration
    /// sends.
    fn any_key(&self, account: &str, rng: &mut Rng) -> Option<BookKey> {
        let keys: Vec<&BookKey> = self.keys.iter().filter(|k| k.account == account).collect();
        (!keys.is_empty()).then(|| keys[rng.below(keys.len() as u64) as usize].clone())
    }

    /// The newest key of `account` not known to be stopped.
    fn current_key(&self, account: &str) -> Option<BookKey> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.account == account && k.retired_ms.is_none() && k.touched_ms.is_none())
            .or_else(|| {
                self.keys
                    .iter()
                    .rev()
                    .find(|k| k.account == account && k.retired_ms.is_none())
            })
            .cloned()
    }
}

struct Campaign {
    started: Instant,
    until: Instant,
    app: TestApp,
    book: Mutex<Book>,
    intents: Mutex<Vec<Intent>>,
    other_statuses: Mutex<Vec<(String, u16, String)>>,
}

impl Campaign {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn event(&self, what: String) {
        let at = self.now_ms();
        self.book.lock().unwrap().events.push((at, what));
    }

    fn count(&self, kind: &'static str) {
        *self
            .book
            .lock()
            .unwrap()
            .fault_counts
            .entry(kind)
            .or_default() += 1;
    }
}

fn retry_after(response: &TestResponse) -> Duration {
    response
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(MAX_RETRY_AFTER)
}

async fn post_payment(
    campaign: &Campaign,
    key: &BookKey,
    intent: &Intent,
) -> (Attempt, TestResponse) {
    let body = json!({
        "amount": intent.amount,
        "currency": "EUR",
        "description": intent.description,
    });
    let request = match &intent.idempotency_key {
        Some(idempotency_key) => keyed_request(&key.key, idempotency_key, &body),
        None => json_request("/payments", Some(&key.key), &body),
    };
    let started_ms = campaign.now_ms();
    let started = Instant::now();
    let response = campaign
        .app
        .post_payment(with_deadline_in(request, DEADLINE_MS))
        .await;
    let attempt = Attempt {
        what: "POST",
        key_id: key.key_id.clone(),
        started_ms,
        elapsed_ms: started.elapsed().as_millis() as u64,
        status: response.status,
        code: response.error_code().to_owned(),
        payment_id: response.body["id"]
            .as_str()
            .or(response.body["error"]["payment_id"].as_str())
            .map(str::to_owned),
    };
    (attempt, response)
}

async fn get_payment(campaign: &Campaign, key: &BookKey, id: &str) -> (Attempt, TestResponse) {
    let request = shared::testing::api_gateway_route_request(
        "GET",
        "/payments/{id}",
        &format!("/payments/{id}"),
        &[("id", id)],
        &[],
        &[("x-api-key", key.key.as_str())],
    );
    let started_ms = campaign.now_ms();
    let started = Instant::now();
    let response = TestResponse::from_lambda(
        get_payment::handle(
            &campaign.app.retrieve,
            with_deadline_in(request, DEADLINE_MS),
        )
        .await,
    );
    let attempt = Attempt {
        what: "GET",
        key_id: key.key_id.clone(),
        started_ms,
        elapsed_ms: started.elapsed().as_millis() as u64,
        status: response.status,
        code: response.error_code().to_owned(),
        payment_id: Some(id.to_owned()),
    };
    (attempt, response)
}

/// One payment, made the way docs/api.md tells a client to make it. One request in twenty
/// goes out with any of the account's keys, as from a client whose configuration lags: a
/// stopped key must be refused, and the client then takes the current one.
async fn make_payment(campaign: &Campaign, mut intent: Intent, rng: &mut Rng) -> Intent {
    // Without a key: the payment a 503 named and the client has yet to look up.
    let mut unresolved: Option<String> = None;
    while intent.attempts.len() < MAX_ATTEMPTS && intent.acknowledged.is_none() {
        let stale = rng.per_mille(50);
        let key = {
            let book = campaign.book.lock().unwrap();
            if stale {
                book.any_key(&intent.account, rng)
            } else {
                book.current_key(&intent.account)
            }
        };
        let Some(key) = key else {
            break;
        };
        if let Some(id) = unresolved.clone() {
            let (attempt, response) = get_payment(campaign, &key, &id).await;
            intent.attempts.push(attempt);
            match response.status {
                200 => intent.acknowledged = Some(response.body),
                // Not recorded yet, but the write may still land: pay again only with the
                // key the 503 named, which can find or make just this payment.
                404 => unresolved = None,
                401 => {}
                _ => tokio::time::sleep(retry_after(&response)).await,
            }
            continue;
        }
        let (attempt, response) = post_payment(campaign, &key, &intent).await;
        let code = attempt.code.clone();
        let named = attempt.payment_id.clone();
        intent.attempts.push(attempt);
        match (response.status, code.as_str()) {
            (201, _) => intent.acknowledged = Some(response.body),
            (503, "payment_outcome_unknown") if intent.idempotency_key.is_none() => {
                // Sent without a key: look the payment up, and from now on retry with the
                // key the service drew for it.
                unresolved = named;
                intent.idempotency_key = response.body["error"]["idempotency_key"]
                    .as_str()
                    .map(str::to_owned);
                tokio::time::sleep(retry_after(&response)).await;
            }
            (429 | 503, _) => tokio::time::sleep(retry_after(&response)).await,
            // A refused key (the operator stopped it): the account's newest key next time.
            // A 500 recorded nothing: the same request again.
            (401 | 500, _) => {}
            // A well-formed request, the same each time: nothing else may answer it.
            (status, code) => {
                campaign.other_statuses.lock().unwrap().push((
                    intent.description.clone(),
                    status,
                    code.to_owned(),
                ));
                break;
            }
        }
    }
    intent
}

async fn client(campaign: Arc<Campaign>, id: usize, seed: u64) {
    let mut rng = Rng::new(seed, 1000 + id as u64);
    let mut n = 0;
    while Instant::now() < campaign.until {
        n += 1;
        let accounts = campaign.book.lock().unwrap().accounts_of[&id].clone();
        let account = accounts[rng.below(accounts.len() as u64) as usize].clone();
        let keyed = rng.per_mille(600);
        let intent = Intent {
            client: id,
            account,
            description: format!("c{id}-p{n}"),
            amount: 1 + rng.below(99_999),
            idempotency_key: keyed.then(|| format!("c{id}-k{n}")),
            attempts: vec![],
            acknowledged: None,
        };
        let done = make_payment(&campaign, intent, &mut rng).await;
        // Now and then, read an acknowledged payment back.
        if let (Some(ack), true) = (&done.acknowledged, rng.per_mille(200)) {
            let key = campaign.book.lock().unwrap().current_key(&done.account);
            if let Some(key) = key {
                let id = ack["id"].as_str().unwrap_or_default().to_owned();
                let (_, response) = get_payment(&campaign, &key, &id).await;
                if response.status == 200 && &response.body != ack {
                    campaign.other_statuses.lock().unwrap().push((
                        done.description.clone(),
                        200,
                        format!("read back {} differs from {ack}", response.body),
                    ));
                }
            }
        }
        campaign.intents.lock().unwrap().push(done);
        tokio::time::sleep(rng.millis(0, 40)).await;
    }
}

/// A key route's request as API Gateway hands it over, within the invocation's deadline.
fn key_request(
    method: &str,
    route: &str,
    id: &str,
    key: &str,
    body: Option<Value>,
) -> lambda_http::Request {
    let mut event = shared::testing::Event::new(method, route)
        .path(&route.replace("{id}", id))
        .header("x-api-key", key);
    if route.contains("{id}") {
        event = event.param("id", id);
    }
    if let Some(body) = body {
        event = event.json(&body);
    }
    with_deadline_in(event.request(), DEADLINE_MS)
}

/// Sends one key route's request and notes its answer.
async fn key_call(
    campaign: &Campaign,
    route: &'static str,
    request: lambda_http::Request,
) -> TestResponse {
    let app = &campaign.app;
    let sent = Instant::now();
    let response = TestResponse::from_lambda(match route {
        "create" => create_key::handle(&app.key_create, request).await,
        "roll" => roll_key::handle(&app.key_roll, request).await,
        "list" => list_keys::handle(&app.key_list, request).await,
        "get" => get_key::handle(&app.key_get, request).await,
        "revoke" => revoke_key::handle(&app.key_revoke, request).await,
        other => unreachable!("no key route {other}"),
    });
    campaign.book.lock().unwrap().key_answers.push((
        route,
        sent.elapsed().as_millis() as u64,
        response.status,
    ));
    response
}

/// An account rolls `current`, its key, with the 60 s grace a key rolling itself keeps, and
/// when the answer is lost finds out what happened as docs/api.md says.
async fn self_roll(campaign: &Campaign, current: &BookKey, rng: &mut Rng) -> KeyChangeOutcome {
    let mut looked = false;
    let mut undone = false;
    for _ in 0..MAX_ATTEMPTS {
        let request = key_request(
            "POST",
            "/keys/{id}/roll",
            &current.key_id,
            &current.key,
            Some(json!({"expires_in": 60})),
        );
        let response = key_call(campaign, "roll", request).await;
        note_change_request(campaign, current, &response);
        match (response.status, response.error_code()) {
            (201, _) => {
                let acked = campaign.now_ms();
                if let Some(old) = campaign
                    .book
                    .lock()
                    .unwrap()
                    .keys
                    .iter_mut()
                    .find(|k| k.key_id == current.key_id)
                {
                    old.retired_ms.get_or_insert(acked + 60_000);
                }
                keep_new_key(campaign, current, &response);
                campaign.book.lock().unwrap().rolled_into.insert(
                    response.body["id"].as_str().unwrap_or_default().to_owned(),
                    acked,
                );
                read_back(campaign, current, &response).await;
                return KeyChangeOutcome::made(looked, undone);
            }
            // Nothing was done: wait as told, or give up on a refusal.
            (429, _) | (503, "service_unavailable") => {
                tokio::time::sleep(retry_after(&response)).await;
                continue;
            }
            (401, _) => return KeyChangeOutcome::Refused,
            (409, _) if !looked => return KeyChangeOutcome::Refused,
            // A 409 after a lost answer (the lost roll may be what made the key expiring),
            // a 503 `outcome_unknown`, a 500: look.
            _ => {}
        }
        looked = true;
        let Some(listing) = look_at_keys(campaign, current).await else {
            return KeyChangeOutcome::Unresolved;
        };
        let rolled = listing
            .iter()
            .find(|k| k["id"] == current.key_id.as_str())
            .is_some_and(|k| k["status"] == "expiring");
        if !rolled {
            continue;
        }
        // The roll happened: revoke the new key nobody holds, which undoes the roll.
        let known: HashSet<String> = {
            let book = campaign.book.lock().unwrap();
            book.keys.iter().map(|k| k.key_id.clone()).collect()
        };
        let unseen = |k: &Value| !known.contains(k["id"].as_str().unwrap_or_default());
        let what = format!("the new key of a lost roll of {}", current.key_id);
        match revoke_live(campaign, current, &listing, unseen, &what).await {
            Some(revoked) => undone |= revoked,
            None => return KeyChangeOutcome::Unresolved,
        }
        tokio::time::sleep(rng.millis(0, 200)).await;
    }
    KeyChangeOutcome::Unresolved
}

/// Notes a create or roll request's id, which its audit event carries if it made a key.
fn note_change_request(campaign: &Campaign, current: &BookKey, response: &TestResponse) {
    let id = response
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    campaign
        .book
        .lock()
        .unwrap()
        .key_requests
        .push((current.account.clone(), id));
}

/// The new key a 201 handed over, from now on one the account's clients may use.
fn keep_new_key(campaign: &Campaign, current: &BookKey, response: &TestResponse) {
    let new_key = response.body["api_key"].as_str().unwrap().to_owned();
    payments_tests::record_key(&new_key);
    campaign.book.lock().unwrap().keys.push(BookKey {
        account: current.account.clone(),
        key: new_key,
        key_id: response.body["id"].as_str().unwrap().to_owned(),
        touched_ms: None,
        retired_ms: None,
    });
}

/// Reads the key a 201 made back with `GET /keys/{id}`, through the faults: it must be the
/// key the 201 described (its id, name, kind, prefix, permissions, ranges and creation
/// never change; its status, end and last use may have since).
async fn read_back(campaign: &Campaign, current: &BookKey, made: &TestResponse) {
    let id = made.body["id"].as_str().unwrap_or_default();
    for _ in 0..MAX_ATTEMPTS {
        let request = key_request("GET", "/keys/{id}", id, &current.key, None);
        let response = key_call(campaign, "get", request).await;
        match response.status {
            200 => {
                let fields = [
                    "id",
                    "name",
                    "kind",
                    "prefix",
                    "permissions",
                    "allowed_ips",
                    "created_at",
                ];
                if let Some(field) = fields.iter().find(|f| response.body[**f] != made.body[**f]) {
                    campaign.book.lock().unwrap().misread_keys.push(format!(
                        "key {id} read back with {field} {}, made with {}",
                        response.body[*field], made.body[*field]
                    ));
                }
                return;
            }
            404 => {
                campaign
                    .book
                    .lock()
                    .unwrap()
                    .misread_keys
                    .push(format!("key {id} made (201), then not found"));
                return;
            }
            // The key that reads was stopped meanwhile (an operator's change).
            401 => return,
            _ => tokio::time::sleep(retry_after(&response)).await,
        }
    }
}

/// How long a write sent before its request was answered can still take to reach DynamoDB
/// here (the proxy holds a request `DELAY` before forwarding it): what a client whose
/// create got no answer waits before it looks, or a late write could land after the look.
const IN_FLIGHT: Duration = Duration::from_millis(DELAY.as_millis() as u64 + 1_000);

/// An account creates a restricted key through `POST /keys` with `current`, its key, each
/// request naming the key anew (`n` makes the names unique), and when the answer is lost
/// finds out what happened as docs/api.md says: it lists its keys and revokes any key one
/// of its requests made that it never saw, then creates again.
async fn self_create(
    campaign: &Campaign,
    current: &BookKey,
    rng: &mut Rng,
    n: u64,
) -> KeyChangeOutcome {
    let mut looked = false;
    let mut undone = false;
    let mut names: Vec<String> = vec![];
    for attempt in 0..MAX_ATTEMPTS {
        let name = format!("chaos {n}.{attempt}");
        names.push(name.clone());
        // What the account's clients need, and what this key needs to manage keys: any key
        // the campaign hands its clients may create again (each write implies its read).
        let body = json!({"name": name, "permissions": ["payments:write", "keys:write"]});
        let request = key_request("POST", "/keys", "", &current.key, Some(body));
        let response = key_call(campaign, "create", request).await;
        note_change_request(campaign, current, &response);
        match (response.status, response.error_code()) {
            (201, _) => {
                keep_new_key(campaign, current, &response);
                read_back(campaign, current, &response).await;
                return KeyChangeOutcome::made(looked, undone);
            }
            // Nothing was done: wait as told, or give up on a refusal.
            (429, _) | (503, "service_unavailable") => {
                tokio::time::sleep(retry_after(&response)).await;
                continue;
            }
            // The key stopped (an operator's change): a lost create before it is beyond
            // finding out with it.
            (401, _) if looked => return KeyChangeOutcome::Unresolved,
            (401 | 403 | 409, _) if !looked => return KeyChangeOutcome::Refused,
            // A 503 `outcome_unknown`, a 500, a 409 after a lost answer (the lost create may
            // be what made the tenth key): look, once nothing sent can still land.
            _ => {}
        }
        looked = true;
        tokio::time::sleep(IN_FLIGHT).await;
        let Some(listing) = look_at_keys(campaign, current).await else {
            return KeyChangeOutcome::Unresolved;
        };
        let named = |k: &Value| names.iter().any(|name| k["name"] == name.as_str());
        let what = format!("the key of a lost create by {}", current.key_id);
        match revoke_live(campaign, current, &listing, named, &what).await {
            Some(revoked) => undone |= revoked,
            None => return KeyChangeOutcome::Unresolved,
        }
        tokio::time::sleep(rng.millis(0, 200)).await;
    }
    KeyChangeOutcome::Unresolved
}

/// `GET /keys` with `key`, retried while the answer says nothing (503, lost): the account's
/// keys, or `None` when no answer came.
async fn look_at_keys(campaign: &Campaign, key: &BookKey) -> Option<Vec<Value>> {
    for _ in 0..MAX_ATTEMPTS {
        let request = key_request("GET", "/keys", "", &key.key, None);
        let response = key_call(campaign, "list", request).await;
        match response.status {
            200 => return response.body["data"].as_array().cloned(),
            401 => return None,
            _ => tokio::time::sleep(retry_after(&response)).await,
        }
    }
    None
}

/// `DELETE /keys/{id}` with `key` until it is answered (revoking twice is revoking once).
/// Revokes, with `key`, every live key of `listing` that `ours` picks (one a lost request
/// made that nobody saw), noting each as `what`: whether any was revoked, or `None` if a
/// revoke went unanswered.
async fn revoke_live(
    campaign: &Campaign,
    key: &BookKey,
    listing: &[Value],
    ours: impl Fn(&Value) -> bool,
    what: &str,
) -> Option<bool> {
    let mut revoked = false;
    for orphan in listing
        .iter()
        .filter(|k| matches!(k["status"].as_str(), Some("active" | "expiring")) && ours(k))
    {
        let id = orphan["id"].as_str().unwrap_or_default().to_owned();
        if !revoke_until_answered(campaign, key, &id).await {
            return None;
        }
        campaign.event(format!("revoked {id}, {what}"));
        revoked = true;
    }
    Some(revoked)
}

async fn revoke_until_answered(campaign: &Campaign, key: &BookKey, id: &str) -> bool {
    for _ in 0..MAX_ATTEMPTS {
        let request = key_request("DELETE", "/keys/{id}", id, &key.key, None);
        let response = key_call(campaign, "revoke", request).await;
        match response.status {
            200 => return true,
            401 | 403 | 404 | 409 => return false,
            _ => tokio::time::sleep(retry_after(&response)).await,
        }
    }
    false
}

/// The operator: creates accounts through the API, and rotates and revokes keys with the
/// store's own administration (as `payments-admin` does), straight to DynamoDB. Now and
/// then, instead, an account rolls its own key, or creates a key (or, holding three it
/// made, revokes the oldest), through the API.
async fn operator_task(campaign: Arc<Campaign>, admin: DynamoStore, seed: u64, clients: usize) {
    let mut rng = Rng::new(seed, 2);
    let mut creates = 0;
    while Instant::now() < campaign.until {
        tokio::time::sleep(rng.millis(500, 2_000)).await;
        let roll = rng.below(100);
        let accounts: Vec<String> = {
            let book = campaign.book.lock().unwrap();
            let mut all: Vec<String> = book.accounts_of.values().flatten().cloned().collect();
            all.sort();
            all.dedup();
            all
        };
        let account = accounts[rng.below(accounts.len() as u64) as usize].clone();
        if roll < 25 {
            // A new account, through the API and its faults.
            let request = json_request("/accounts", None, &json!({"name": "Chaos Ltd"}));
            let sent = Instant::now();
            let response = campaign
                .app
                .post_account(with_deadline_in(request, DEADLINE_MS))
                .await;
            campaign
                .book
                .lock()
                .unwrap()
                .account_creations
                .push((sent.elapsed().as_millis() as u64, response.status));
            campaign.event(format!("create account: {}", response.status));
            if response.status == 201 {
                let id = response.body["id"].as_str().unwrap().to_owned();
                let key = response.body["api_key"].as_str().unwrap().to_owned();
                let Ok(listing) = admin
                    .account_keys(&AccountId::parse(&id).unwrap(), Timestamp::now())
                    .await
                else {
                    continue;
                };
                let client = rng.below(clients as u64) as usize;
                let mut book = campaign.book.lock().unwrap();
                book.keys.push(BookKey {
                    account: id.clone(),
                    key: key.clone(),
                    key_id: listing.keys[0].key_id.to_string(),
                    touched_ms: None,
                    retired_ms: None,
                });
                book.created_accounts.push((id.clone(), key));
                book.accounts_of.get_mut(&client).unwrap().push(id);
            }
        } else if roll < 35 {
            // The account rolls the key its clients use.
            let Some(current) = campaign.book.lock().unwrap().current_key(&account) else {
                continue;
            };
            let touched = campaign.now_ms();
            if let Some(key) = campaign
                .book
                .lock()
                .unwrap()
                .keys
                .iter_mut()
                .find(|k| k.key_id == current.key_id)
            {
                key.touched_ms.get_or_insert(touched);
            }
            let outcome = self_roll(&campaign, &current, &mut rng).await;
            campaign.event(format!(
                "roll {} (self, grace 60 s): {outcome:?}",
                current.key_id
            ));
            let mut book = campaign.book.lock().unwrap();
            if outcome == KeyChangeOutcome::Unresolved {
                book.uncertain.insert(account.clone());
            }
            book.key_changes
                .push(("roll", account, current.key_id, outcome));
        } else if roll < 45 {
            // The account creates a key with the key its clients use; once it holds three
            // it made, it revokes the oldest instead, so that its keys stay under the bound.
            let Some(current) = campaign.book.lock().unwrap().current_key(&account) else {
                continue;
            };
            let now_ms = campaign.now_ms();
            let made: Vec<BookKey> = {
                let book = campaign.book.lock().unwrap();
                book.keys
                    .iter()
                    .filter(|k| {
                        k.account == account
                            && k.key.starts_with("rk_")
                            && k.retired_ms.is_none()
                            && !book.may_undo_a_roll(k, now_ms)
                    })
                    .cloned()
                    .collect()
            };
            if made.len() >= 3 && made[0].key_id != current.key_id {
                let oldest = &made[0];
                let touched = campaign.now_ms();
                if let Some(key) = campaign
                    .book
                    .lock()
                    .unwrap()
                    .keys
                    .iter_mut()
                    .find(|k| k.key_id == oldest.key_id)
                {
                    key.touched_ms.get_or_insert(touched);
                }
                let revoked = revoke_until_answered(&campaign, &current, &oldest.key_id).await;
                let acked = campaign.now_ms();
                campaign.event(format!(
                    "revoke {} (self, with {}): {revoked}",
                    oldest.key_id, current.key_id
                ));
                if revoked {
                    let mut book = campaign.book.lock().unwrap();
                    if let Some(key) = book.keys.iter_mut().find(|k| k.key_id == oldest.key_id) {
                        key.retired_ms.get_or_insert(acked);
                    }
                }
                continue;
            }
            creates += 1;
            let outcome = self_create(&campaign, &current, &mut rng, creates).await;
            campaign.event(format!(
                "create a key with {} (self): {outcome:?}",
                current.key_id
            ));
            let mut book = campaign.book.lock().unwrap();
            if outcome == KeyChangeOutcome::Unresolved {
                book.uncertain.insert(account.clone());
            }
            book.key_changes
                .push(("create", account, current.key_id, outcome));
        } else if roll < 70 {
            // Rotate with no grace: the account's secret keys stop as the change is
            // acknowledged (its restricted keys keep working).
            let touched = campaign.now_ms();
            let secret = |k: &BookKey| k.account == account && k.key.starts_with("sk_");
            {
                let mut book = campaign.book.lock().unwrap();
                for key in book.keys.iter_mut().filter(|k| secret(k)) {
                    key.touched_ms.get_or_insert(touched);
                }
            }
            let new_key =
                ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
            let issued = IssuedKey::new(&new_key, KeyId::generate().unwrap(), Timestamp::now());
            let result = admin
                .rotate_key(
                    &AccountId::parse(&account).unwrap(),
                    &issued,
                    Duration::ZERO,
                    Timestamp::now(),
                    &operator(),
                )
                .await;
            let acked = campaign.now_ms();
            campaign.event(format!("rotate {account} (grace 0): {}", result.is_ok()));
            if let Err(shared::store::lifecycle::AdminError::Store(
                shared::store::StoreError::OutcomeUnknown(_),
            )) = &result
            {
                campaign
                    .book
                    .lock()
                    .unwrap()
                    .uncertain
                    .insert(account.clone());
            }
            if result.is_ok() {
                let mut book = campaign.book.lock().unwrap();
                for key in book.keys.iter_mut().filter(|k| secret(k)) {
                    key.retired_ms.get_or_insert(acked);
                }
                book.keys.push(BookKey {
                    account: account.clone(),
                    key: new_key.expose_once().to_owned(),
                    key_id: issued.key_id.to_string(),
                    touched_ms: None,
                    retired_ms: None,
                });
                payments_tests::record_key(new_key.expose_once());
            }
        } else {
            // Revoke one of the account's keys, perhaps the one its clients use.
            let target = {
                let mut book = campaign.book.lock().unwrap();
                let now_ms = campaign.now_ms();
                let live: Vec<usize> = (0..book.keys.len())
                    .filter(|&i| {
                        book.keys[i].account == account
                            && book.keys[i].retired_ms.is_none()
                            && !book.may_undo_a_roll(&book.keys[i], now_ms)
                    })
                    .collect();
                if live.len() < 2 {
                    continue;
                }
                let i = live[rng.below(live.len() as u64 - 1) as usize];
                let touched = campaign.now_ms();
                book.keys[i].touched_ms.get_or_insert(touched);
                book.keys[i].clone()
            };
            let result = admin
                .revoke_key(
                    &KeyId::parse(&target.key_id).unwrap(),
                    Timestamp::now(),
                    &operator(),
                )
                .await;
            let acked = campaign.now_ms();
            campaign.event(format!("revoke {}: {}", target.key_id, result.is_ok()));
            if result.is_ok() {
                let mut book = campaign.book.lock().unwrap();
                if let Some(key) = book.keys.iter_mut().find(|k| k.key_id == target.key_id) {
                    key.retired_ms.get_or_insert(acked);
                }
            }
        }
    }
}

/// The nemesis: every few seconds, another fault.
async fn nemesis(
    campaign: Arc<Campaign>,
    proxy: Arc<FaultProxy>,
    database: Arc<Mutex<DynamoDbLocal>>,
    seed: u64,
) {
    let mut rng = Rng::new(seed, 3);
    while Instant::now() < campaign.until {
        let roll = rng.below(100);
        let rates = |rng: &mut Rng, scale: u32| ChaosRates {
            drop_request: scale * (1 + rng.below(3) as u32),
            lose_response: scale * (1 + rng.below(3) as u32),
            reset: scale * (1 + rng.below(3) as u32),
            delay: scale * (1 + rng.below(2) as u32),
            delay_by: DELAY,
        };
        if roll < 35 {
            let rates = rates(&mut rng, 10);
            proxy.set(Fault::Chaos {
                seed: rng.next(),
                rates,
            });
            campaign.count("chaos (light)");
            campaign.event(format!("proxy: chaos {rates:?}"));
        } else if roll < 50 {
            let rates = rates(&mut rng, 60);
            proxy.set(Fault::Chaos {
                seed: rng.next(),
                rates,
            });
            campaign.count("chaos (heavy)");
            campaign.event(format!("proxy: chaos {rates:?}"));
        } else if roll < 70 {
            proxy.set(Fault::None);
            campaign.count("calm");
            campaign.event("proxy: none".to_owned());
        } else if roll < 85 {
            // Up to past the deadline: requests give up, and their writes land on resume.
            let pause = rng.millis(500, 8_000);
            campaign.event(format!("pause DynamoDB for {pause:?}"));
            campaign.count("pause");
            database.lock().unwrap().pause();
            tokio::time::sleep(pause).await;
            database.lock().unwrap().resume();
            campaign.event("resume DynamoDB".to_owned());
        } else if roll < 95 {
            let down = rng.millis(200, 1_500);
            campaign.event(format!("restart DynamoDB (down {down:?})"));
            campaign.count("restart");
            database.lock().unwrap().stop();
            tokio::time::sleep(down).await;
            let database = Arc::clone(&database);
            tokio::task::spawn_blocking(move || database.lock().unwrap().start())
                .await
                .unwrap();
            campaign.event("DynamoDB back".to_owned());
        } else {
            let refuse = rng.millis(300, 2_000);
            campaign.count("refuse");
            campaign.event(format!("proxy: refuse for {refuse:?}"));
            proxy.set(Fault::Refuse);
            tokio::time::sleep(refuse).await;
            proxy.set(Fault::None);
        }
        tokio::time::sleep(rng.millis(1_000, 4_000)).await;
    }
}

struct Violation {
    what: String,
    history: Vec<String>,
}

fn attempt_line(a: &Attempt) -> String {
    format!(
        "  {:>7} ms  {} with {}  -> {} {} ({} ms){}",
        a.started_ms,
        a.what,
        a.key_id,
        a.status,
        a.code,
        a.elapsed_ms,
        a.payment_id
            .as_ref()
            .map(|id| format!(" [{id}]"))
            .unwrap_or_default()
    )
}

/// The history that shows a violation: the intent's attempts, and the faults and operator
/// actions from its first attempt to its last.
fn history_of(intent: &Intent, events: &[(u64, String)]) -> Vec<String> {
    let mut lines = vec![format!(
        "intent {} by client {} for {} (amount {}, idempotency key {:?}), acknowledged: {}",
        intent.description,
        intent.client,
        intent.account,
        intent.amount,
        intent.idempotency_key,
        intent.acknowledged.is_some()
    )];
    let from = intent.attempts.first().map_or(0, |a| a.started_ms);
    let to = intent
        .attempts
        .last()
        .map_or(0, |a| a.started_ms + a.elapsed_ms);
    let mut merged: Vec<(u64, String)> = intent
        .attempts
        .iter()
        .map(|a| (a.started_ms, attempt_line(a)))
        .collect();
    merged.extend(
        events
            .iter()
            .filter(|(at, _)| *at + 5_000 >= from && *at <= to)
            .map(|(at, what)| (*at, format!("  {at:>7} ms  * {what}"))),
    );
    merged.sort_by_key(|(at, _)| *at);
    lines.extend(merged.into_iter().map(|(_, line)| line));
    lines
}

/// The invariants, over what the tables hold and what the clients were told.
fn check(
    intents: &[Intent],
    book: &Book,
    stored: &[HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
    other_statuses: &[(String, u16, String)],
    working_keys: &HashMap<String, Vec<String>>,
    new_key_events: &[(String, Option<String>)],
) -> Vec<Violation> {
    let mut violations = vec![];
    // Each create or roll request made at most one key, and only the campaign's requests
    // made any: the audit event of each new key, written in its transaction, names the
    // request.
    let sent: HashSet<&str> = book
        .key_requests
        .iter()
        .map(|(_, id)| id.as_str())
        .collect();
    let mut made_by: HashMap<&str, usize> = HashMap::new();
    for (account, request) in new_key_events {
        match request.as_deref() {
            Some(id) if sent.contains(id) => *made_by.entry(id).or_default() += 1,
            other => violations.push(Violation {
                what: format!(
                    "a key of {account} was made by request {other:?}, which no client sent"
                ),
                history: vec![],
            }),
        }
    }
    for (request, made) in made_by.iter().filter(|(_, made)| **made > 1) {
        violations.push(Violation {
            what: format!("request {request} made {made} keys"),
            history: vec![],
        });
    }
    for misread in &book.misread_keys {
        violations.push(Violation {
            what: misread.clone(),
            history: vec![],
        });
    }
    // No key works that no client was given, on an account whose changes all resolved.
    for (account, working) in working_keys {
        if book.uncertain.contains(account) {
            continue;
        }
        for key_id in working {
            if !book.keys.iter().any(|k| &k.key_id == key_id) {
                let history = book
                    .events
                    .iter()
                    .filter(|(_, what)| what.contains(account.as_str()) || what.starts_with("roll"))
                    .map(|(at, what)| format!("  {at:>7} ms  * {what}"))
                    .collect();
                violations.push(Violation {
                    what: format!("key {key_id} of {account} works, but no client was given it"),
                    history,
                });
            }
        }
    }
    for (route, elapsed_ms, status) in &book.key_answers {
        if *elapsed_ms > DEADLINE_MS as u64 {
            violations.push(Violation {
                what: format!("a {route} of a key took {elapsed_ms} ms, past its deadline"),
                history: vec![],
            });
        }
        let documented: &[u16] = match *route {
            "create" => &[201, 400, 401, 403, 409, 413, 415, 429, 500, 503],
            "roll" => &[201, 400, 401, 403, 404, 409, 429, 500, 503],
            "list" => &[200, 401, 403, 429, 500, 503],
            "get" => &[200, 401, 403, 404, 429, 500, 503],
            _ => &[200, 401, 403, 404, 409, 429, 500, 503],
        };
        if !documented.contains(status) {
            violations.push(Violation {
                what: format!("undocumented status {status} for a {route} of a key"),
                history: vec![],
            });
        }
    }
    let by_description: HashMap<&str, &Intent> = intents
        .iter()
        .map(|i| (i.description.as_str(), i))
        .collect();
    let text = |item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut stored_of: HashMap<String, Vec<&HashMap<String, _>>> = HashMap::new();
    let mut by_idempotency: HashMap<(String, String), usize> = HashMap::new();
    for item in stored {
        let description = text(item, "description");
        let account = text(item, "client_id");
        match by_description.get(description.as_str()) {
            None if description.starts_with('c') && description.contains("-p") => {
                // A payment of an intent still running when the campaign ended is not in
                // the histories; every intent is recorded once done, so none is missing.
                violations.push(Violation {
                    what: format!("stored payment {description} was never sent"),
                    history: vec![],
                });
            }
            None => {}
            Some(intent) if intent.account != account => violations.push(Violation {
                what: format!(
                    "payment {description} stored for {account}, sent by a client of {}",
                    intent.account
                ),
                history: history_of(intent, &book.events),
            }),
            Some(_) => {}
        }
        stored_of.entry(description).or_default().push(item);
        if let Some(key) = item.get("idempotency_key").and_then(|v| v.as_s().ok()) {
            *by_idempotency.entry((account, key.clone())).or_default() += 1;
        }
    }
    for ((account, key), n) in &by_idempotency {
        if *n > 1 {
            let history = intents
                .iter()
                .find(|i| &i.account == account && i.idempotency_key.as_ref() == Some(key))
                .map(|i| history_of(i, &book.events))
                .unwrap_or_default();
            violations.push(Violation {
                what: format!("{n} payments of {account} with Idempotency-Key {key}"),
                history,
            });
        }
    }
    for (elapsed_ms, status) in &book.account_creations {
        if *elapsed_ms > DEADLINE_MS as u64 {
            violations.push(Violation {
                what: format!("a POST /accounts took {elapsed_ms} ms, past its deadline"),
                history: vec![],
            });
        }
        if ![201, 400, 401, 413, 415, 500, 503].contains(status) {
            violations.push(Violation {
                what: format!("undocumented status {status} for a POST /accounts"),
                history: vec![],
            });
        }
    }
    for intent in intents {
        let found = stored_of
            .get(intent.description.as_str())
            .map_or(&[][..], |v| v.as_slice());
        let history = || history_of(intent, &book.events);
        if found.len() > 1 {
            violations.push(Violation {
                what: format!(
                    "intent {} stored {} times (doubled)",
                    intent.description,
                    found.len()
                ),
                history: history(),
            });
        }
        if let Some(ack) = &intent.acknowledged {
            match found {
                [] => violations.push(Violation {
                    what: format!("acknowledged payment {} lost", intent.description),
                    history: history(),
                }),
                [item] => {
                    let stored_body = json!({
                        "id": text(item, "pk"),
                        "client_id": text(item, "client_id"),
                        "amount": item.get("amount").and_then(|v| v.as_n().ok())
                            .and_then(|n| n.parse::<u64>().ok()),
                        "currency": text(item, "currency"),
                        "description": text(item, "description"),
                        "status": text(item, "status"),
                        "created_at": text(item, "created_at"),
                    });
                    if &stored_body != ack {
                        violations.push(Violation {
                            what: format!(
                                "payment {} stored as {stored_body}, acknowledged as {ack}",
                                intent.description
                            ),
                            history: history(),
                        });
                    }
                }
                _ => {}
            }
        } else if !found.is_empty()
            && !intent.attempts.is_empty()
            && intent.attempts.iter().all(Attempt::recorded_nothing)
        {
            violations.push(Violation {
                what: format!(
                    "every answer for {} said nothing was recorded, yet it is stored",
                    intent.description
                ),
                history: history(),
            });
        }
        for attempt in &intent.attempts {
            if attempt.elapsed_ms > DEADLINE_MS as u64 {
                violations.push(Violation {
                    what: format!(
                        "a {} for {} took {} ms, past its {} ms deadline",
                        attempt.what, intent.description, attempt.elapsed_ms, DEADLINE_MS
                    ),
                    history: history(),
                });
            }
            let documented: &[u16] = match attempt.what {
                "POST" => &[201, 400, 401, 405, 413, 415, 422, 429, 500, 503],
                _ => &[200, 401, 404, 405, 429, 500, 503],
            };
            if !documented.contains(&attempt.status) {
                violations.push(Violation {
                    what: format!(
                        "undocumented status {} for a {}",
                        attempt.status, attempt.what
                    ),
                    history: history(),
                });
            }
            let Some(key) = book.keys.iter().find(|k| k.key_id == attempt.key_id) else {
                continue;
            };
            let ok = attempt.status == 201 || attempt.status == 200;
            if ok && key.retired_ms.is_some_and(|at| attempt.started_ms > at) {
                violations.push(Violation {
                    what: format!(
                        "key {} succeeded at {} ms, after its retirement was acknowledged at {} ms",
                        key.key_id,
                        attempt.started_ms,
                        key.retired_ms.unwrap()
                    ),
                    history: history(),
                });
            }
            let end = attempt.started_ms + attempt.elapsed_ms;
            if attempt.status == 401 && key.touched_ms.is_none_or(|at| at > end) {
                violations.push(Violation {
                    what: format!(
                        "key {} refused at {} ms, though no operator had touched it",
                        key.key_id, attempt.started_ms
                    ),
                    history: history(),
                });
            }
        }
    }
    for (description, status, code) in other_statuses {
        let history = by_description
            .get(description.as_str())
            .map(|i| history_of(i, &book.events))
            .unwrap_or_default();
        violations.push(Violation {
            what: format!("{description}: a well-formed request got {status} {code}"),
            history,
        });
    }
    violations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_fault_campaign_keeps_every_promise() {
    let seconds = setting("CHAOS_SECONDS", 60);
    let clients = setting("CHAOS_CLIENTS", 12) as usize;
    let seed = setting(
        "CHAOS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    println!("chaos: seed {seed}, {seconds} s, {clients} clients (CHAOS_SEED={seed} to rerun)");

    let database = DynamoDbLocal::start_persistent();
    let direct = database.endpoint();
    let proxy = Arc::new(FaultProxy::start(&direct).await);
    let app = TestApp::spawn_with_endpoint(&proxy.endpoint, true).await;
    let admin = DynamoStore::new(dynamodb_client(Some(&direct)).await, app.tables());
    let database = Arc::new(Mutex::new(database));

    // Set-up without faults: an account for every two clients.
    let mut book = Book::default();
    for client in 0..clients {
        book.accounts_of.insert(client, vec![]);
    }
    for n in 0..clients.div_ceil(2) {
        let (account, key) = app.new_client().await;
        let listing = admin
            .account_keys(&AccountId::parse(&account).unwrap(), Timestamp::now())
            .await
            .unwrap();
        book.keys.push(BookKey {
            account: account.clone(),
            key,
            key_id: listing.keys[0].key_id.to_string(),
            touched_ms: None,
            retired_ms: None,
        });
        for client in [2 * n, 2 * n + 1].into_iter().filter(|c| *c < clients) {
            book.accounts_of
                .get_mut(&client)
                .unwrap()
                .push(account.clone());
        }
    }

    let started = Instant::now();
    let campaign = Arc::new(Campaign {
        started,
        until: started + Duration::from_secs(seconds),
        app,
        book: Mutex::new(book),
        intents: Mutex::new(vec![]),
        other_statuses: Mutex::new(vec![]),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..clients {
        tasks.spawn(client(Arc::clone(&campaign), id, seed));
    }
    tasks.spawn(operator_task(
        Arc::clone(&campaign),
        admin.clone(),
        seed,
        clients,
    ));
    let nemesis = tokio::spawn(nemesis(
        Arc::clone(&campaign),
        Arc::clone(&proxy),
        Arc::clone(&database),
        seed,
    ));
    nemesis.await.unwrap();
    // Faults off; the clients finish the payments they are making.
    proxy.set(Fault::None);
    database.lock().unwrap().resume();
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    // Nothing held by the proxy can land after this.
    tokio::time::sleep(DELAY + Duration::from_secs(1)).await;
    let ran_ms = campaign.now_ms();

    let stored = campaign.app.scan(&campaign.app.payments_table).await;
    let intents = campaign.intents.lock().unwrap().clone();
    let other_statuses = campaign.other_statuses.lock().unwrap().clone();
    // The keys that work now on each clients' account, as the stack's clock sees them, and
    // the audit events of every key made through the API, with the request that made it.
    let mut working_keys: HashMap<String, Vec<String>> = HashMap::new();
    let mut new_key_events: Vec<(String, Option<String>)> = vec![];
    let accounts: HashSet<String> = {
        let book = campaign.book.lock().unwrap();
        book.accounts_of.values().flatten().cloned().collect()
    };
    for account in accounts {
        let listing = admin
            .account_keys(
                &AccountId::parse(&account).unwrap(),
                campaign.app.clock.clock().now(),
            )
            .await
            .expect("the account's keys, with the faults off");
        let events = admin
            .audit_events(&AccountId::parse(&account).unwrap(), 100_000)
            .await
            .expect("the account's audit trail, with the faults off");
        new_key_events.extend(
            events
                .into_iter()
                .filter(|e| matches!(e.action, AuditAction::KeyCreated | AuditAction::KeyRolled))
                .map(|e| (account.clone(), e.request_id)),
        );
        working_keys.insert(
            account,
            listing
                .keys
                .iter()
                .filter(|k| k.state.is_live())
                .map(|k| k.key_id.to_string())
                .collect(),
        );
    }
    let book = campaign.book.lock().unwrap();
    let violations = check(
        &intents,
        &book,
        &stored,
        &other_statuses,
        &working_keys,
        &new_key_events,
    );

    // The report: what the run covered.
    let attempts: Vec<&Attempt> = intents.iter().flat_map(|i| &i.attempts).collect();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for a in &attempts {
        *statuses
            .entry(format!("{} {} {}", a.what, a.status, a.code))
            .or_default() += 1;
    }
    let acknowledged = intents.iter().filter(|i| i.acknowledged.is_some()).count();
    let retried = intents.iter().filter(|i| i.attempts.len() > 1).count();
    let lookups = attempts.iter().filter(|a| a.what == "GET").count();
    let counts = proxy.counts();
    let operator_actions = book.events.iter().filter(|(_, e)| {
        e.starts_with("rotate") || e.starts_with("revoke") || e.starts_with("create account")
    });
    let mut change_outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for (route, _, _, outcome) in &book.key_changes {
        *change_outcomes
            .entry(format!("{route} {outcome:?}"))
            .or_default() += 1;
    }
    let mut key_statuses: BTreeMap<String, u64> = BTreeMap::new();
    for (route, _, status) in &book.key_answers {
        *key_statuses.entry(format!("{route} {status}")).or_default() += 1;
    }
    let mut report = vec![
        format!("# Fault campaign: seed {seed}, {seconds} s, {clients} clients"),
        String::new(),
        format!("- ran {:.1} s in all", ran_ms as f64 / 1000.0),
        format!(
            "- payments: {} intents ({} with an Idempotency-Key), {acknowledged} acknowledged, {retried} retried; {} requests ({} retries, {lookups} lookups); {} payments stored",
            intents.len(),
            intents.iter().filter(|i| i.idempotency_key.is_some()).count(),
            attempts.len(),
            attempts.len().saturating_sub(intents.len() + lookups),
            stored.len()
        ),
        format!(
            "- operator: {} actions ({} accounts created, {} keys issued)",
            operator_actions.count(),
            book.created_accounts.len(),
            book.keys.len()
        ),
        format!(
            "- proxy: {} forwarded, {} dropped before DynamoDB, {} responses lost, {} resets, {} held {} ms, {} connections refused",
            counts.forwarded,
            counts.dropped_requests,
            counts.lost_responses,
            counts.resets,
            counts.delayed,
            DELAY.as_millis(),
            counts.refused
        ),
        format!(
            "- self-service key changes: {} ({change_outcomes:?}), {} keys made through the API; key route answers: {key_statuses:?}; {} accounts left uncertain",
            book.key_changes.len(),
            new_key_events.len(),
            book.uncertain.len()
        ),
        format!("- nemesis: {:?}", book.fault_counts),
        format!("- answers: {statuses:?}"),
        format!("- violations: {}", violations.len()),
    ];
    for violation in violations.iter().take(10) {
        report.push(String::new());
        report.push(format!("VIOLATION: {}", violation.what));
        report.extend(violation.history.iter().cloned());
    }
    let report = report.join("\n");
    println!("{report}");
    let dir = workspace_root().join("target").join("chaos");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("report.md"), format!("{report}\n")).unwrap();
    assert!(
        violations.is_empty(),
        "{} violations; rerun with CHAOS_SEED={seed}",
        violations.len()
    );
    assert!(acknowledged > 0, "the campaign made payments");
}
