//! Key lifecycle under the conditions an incident brings: many keys, operators whose clock
//! is off, key items the TTL already deleted, a damaged key entry.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use payments_tests::{issued, operator, TestApp};
use serde_json::json;
use shared::domain::{AccountId, AccountStatus, ApiKey, KeyEnvironment, KeyId};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

async fn pays(app: &TestApp, key: &str) -> u16 {
    app.create_payment(Some(key), json!({"amount": 100, "currency": "USD"}))
        .await
        .status
}

fn new_key() -> ApiKey {
    ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap()
}

async fn account(app: &TestApp) -> (AccountId, String) {
    let (id, key) = app.new_client().await;
    (AccountId::parse(&id).unwrap(), key)
}

fn key_pk(key: &str) -> String {
    let key = ApiKey::parse(key, KeyEnvironment::Test).unwrap();
    format!("KEY#{}", key.digest().to_hex())
}

async fn account_item(app: &TestApp, id: &AccountId) -> HashMap<String, AttributeValue> {
    app.client
        .get_item()
        .table_name(&app.clients_table)
        .key("pk", AttributeValue::S(format!("ACCOUNT#{id}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

#[tokio::test]
async fn deactivation_stops_every_key_after_many_rotations() {
    let app = TestApp::spawn().await;
    let (id, first) = account(&app).await;
    let mut working = vec![first];
    for _ in 0..105 {
        app.clock.advance(Duration::from_secs(1));
        let now = app.clock.clock().now();
        let key = new_key();
        if app
            .store()
            .rotate_key(&id, &issued(&key, now), 30 * DAY, now, &operator())
            .await
            .is_ok()
        {
            working.push(key.expose_once().to_owned());
        }
    }
    let now = app.clock.clock().now();
    app.store()
        .set_account_status(&id, AccountStatus::Inactive, now, &operator())
        .await
        .expect("the emergency stop works whatever the number of keys");
    for key in &working {
        assert_eq!(pays(&app, key).await, 401);
    }
    app.store()
        .set_account_status(&id, AccountStatus::Active, now, &operator())
        .await
        .unwrap();
    assert_eq!(pays(&app, working.last().unwrap()).await, 201);
}

#[tokio::test]
async fn dead_keys_do_not_grow_the_account_item_without_bound() {
    let app = TestApp::spawn().await;
    let (id, _) = account(&app).await;
    let mut last = String::new();
    for _ in 0..105 {
        app.clock.advance(Duration::from_secs(1));
        let now = app.clock.clock().now();
        let key = new_key();
        app.store()
            .rotate_key(&id, &issued(&key, now), Duration::ZERO, now, &operator())
            .await
            .expect("a rotation with no grace leaves one live key");
        last = key.expose_once().to_owned();
    }
    let item = account_item(&app, &id).await;
    let entries = item["keys"].as_m().unwrap().len();
    assert!(
        entries <= 25,
        "{entries} key entries kept on the account item"
    );
    let now = app.clock.clock().now();
    app.store()
        .set_account_status(&id, AccountStatus::Inactive, now, &operator())
        .await
        .unwrap();
    assert_eq!(pays(&app, &last).await, 401);
}

#[tokio::test]
async fn which_keys_a_deactivation_stops_does_not_depend_on_the_operators_clock() {
    let app = TestApp::spawn().await;
    let (id, old) = account(&app).await;
    let now = app.clock.clock().now();
    let new = new_key();
    app.store()
        .rotate_key(&id, &issued(&new, now), 10 * MINUTE, now, &operator())
        .await
        .unwrap();
    // The operator's clock runs an hour ahead: it believes the old key expired already.
    let operator_now = now.plus(60 * MINUTE);
    app.store()
        .set_account_status(&id, AccountStatus::Inactive, operator_now, &operator())
        .await
        .unwrap();
    assert_eq!(
        pays(&app, &old).await,
        401,
        "the old key still had 10 minutes"
    );
    assert_eq!(pays(&app, new.expose_once()).await, 401);
}

#[tokio::test]
async fn revoking_a_key_whose_item_the_ttl_deleted_is_not_a_conflict() {
    let app = TestApp::spawn().await;
    let (id, old) = account(&app).await;
    let now = app.clock.clock().now();
    let new = new_key();
    app.store()
        .rotate_key(&id, &issued(&new, now), Duration::ZERO, now, &operator())
        .await
        .unwrap();
    let keys = app.store().account_keys(&id, now).await.unwrap().keys;
    let old_id: KeyId = keys[0].key_id.clone();
    // What DynamoDB's TTL does some time after the key's end.
    app.client
        .delete_item()
        .table_name(&app.clients_table)
        .key("pk", AttributeValue::S(key_pk(&old)))
        .send()
        .await
        .unwrap();
    let later = now.plus(40 * DAY);
    let outcome = app.store().revoke_key(&old_id, later, &operator()).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(pays(&app, &old).await, 401);
    assert_eq!(pays(&app, new.expose_once()).await, 201);
}

#[tokio::test]
async fn one_malformed_key_entry_leaves_the_account_manageable() {
    let app = TestApp::spawn().await;
    let (id, damaged) = account(&app).await;
    let now = app.clock.clock().now();
    let keys = app.store().account_keys(&id, now).await.unwrap().keys;
    let damaged_id = keys[0].key_id.clone();
    app.client
        .update_item()
        .table_name(&app.clients_table)
        .key("pk", AttributeValue::S(format!("ACCOUNT#{id}")))
        .update_expression("SET #keys.#key.#created = :bad")
        .expression_attribute_names("#keys", "keys")
        .expression_attribute_names("#key", damaged_id.as_str())
        .expression_attribute_names("#created", "created_at")
        .expression_attribute_values(":bad", AttributeValue::S("yesterday".into()))
        .send()
        .await
        .unwrap();

    let listing = app
        .store()
        .account_keys(&id, now)
        .await
        .expect("keys list still works");
    assert!(listing.keys.is_empty());
    assert_eq!(listing.malformed, vec![damaged_id.to_string()]);
    let new = new_key();
    app.clock.advance(Duration::from_secs(1));
    let now = app.clock.clock().now();
    app.store()
        .rotate_key(&id, &issued(&new, now), 10 * MINUTE, now, &operator())
        .await
        .expect("rotation still works");
    app.store()
        .set_account_status(&id, AccountStatus::Inactive, now, &operator())
        .await
        .expect("deactivation still works");
    assert_eq!(pays(&app, &damaged).await, 401);
    assert_eq!(pays(&app, new.expose_once()).await, 401);
}

/// The payment handler with its DynamoDB calls counted.
fn counted_payments(
    app: &TestApp,
    calls: &payments_tests::calls::Calls,
) -> create_payment::State<shared::store::dynamo::DynamoStore> {
    // A default limit whose reports wait for 157 requests in a second: every UpdateItem these
    // tests count is a key's use.
    payments_tests::payment_environment(
        shared::store::dynamo::DynamoStore::new(calls.counting(&app.client), app.tables()),
        app.clock.clock(),
        shared::domain::RateLimit::new(10_000).expect("a valid limit"),
    )
}

async fn last_used(app: &TestApp, id: &AccountId) -> Option<shared::domain::Timestamp> {
    let now = app.clock.clock().now();
    app.store().account_keys(id, now).await.unwrap().keys[0].last_used_at
}

/// The key's `last_used_at` once the background record of a use has landed (bounded wait).
async fn recorded_use(
    app: &TestApp,
    id: &AccountId,
    after: Option<shared::domain::Timestamp>,
) -> shared::domain::Timestamp {
    for _ in 0..100 {
        if let Some(at) = last_used(app, id).await.filter(|at| Some(*at) > after) {
            return at;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no use recorded after {after:?}");
}

#[tokio::test]
async fn a_key_records_its_use_at_most_once_an_interval() {
    let app = TestApp::spawn().await;
    let (id, key) = account(&app).await;
    assert_eq!(last_used(&app, &id).await, None, "never used yet");
    let calls = payments_tests::calls::Calls::default();
    let state = counted_payments(&app, &calls);
    let pay = |n: u32| {
        create_payment::handle(
            &state,
            payments_tests::keyed_request(
                &key,
                &format!("use-{n}"),
                &json!({"amount": 1, "currency": "USD"}),
            ),
        )
    };

    let first_at = app.clock.clock().now();
    assert_eq!(pay(0).await.status(), 201);
    let recorded = recorded_use(&app, &id, None).await;
    assert!(recorded >= first_at && recorded <= app.clock.clock().now());
    for n in 1..6 {
        assert_eq!(pay(n).await.status(), 201);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(calls.of("PutItem"), 6);
    assert_eq!(
        calls.of("UpdateItem"),
        1,
        "one recorded use for six requests"
    );
    assert_eq!(
        last_used(&app, &id).await,
        Some(recorded),
        "not rewritten within the hour"
    );

    // Past the interval, the next request records again; the ones after it do not.
    app.clock
        .advance(shared::http::auth::KEY_USE_INTERVAL + Duration::from_secs(1));
    assert_eq!(pay(6).await.status(), 201);
    let again = recorded_use(&app, &id, Some(recorded)).await;
    for n in 7..10 {
        assert_eq!(pay(n).await.status(), 201);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(calls.of("UpdateItem"), 2);
    assert_eq!(last_used(&app, &id).await, Some(again));
}

#[tokio::test]
async fn a_damaged_key_item_costs_its_last_use_not_the_listing() {
    let app = TestApp::spawn().await;
    let (id, key) = account(&app).await;
    app.client
        .update_item()
        .table_name(&app.clients_table)
        .key("pk", AttributeValue::S(key_pk(&key)))
        .update_expression("SET last_used_at = :bad")
        .expression_attribute_values(":bad", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    let listing = app
        .store()
        .account_keys(&id, app.clock.clock().now())
        .await
        .expect("keys list still works");
    assert_eq!(listing.keys.len(), 1);
    assert_eq!(listing.keys[0].last_used_at, None);
}
