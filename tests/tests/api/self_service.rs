//! The `/keys` routes against DynamoDB Local: an account managing its own keys, the
//! permissions and IP ranges they carry, and races between changes of one key.

use std::collections::BTreeSet;
use std::time::Duration;

use payments_tests::proxy::FaultProxy;
use payments_tests::{TestApp, TestResponse};
use serde_json::{json, Value};
use shared::domain::{AccountId, AuditAction, KeyState};
use shared::http::metrics;

async fn pays(app: &TestApp, key: &str) -> TestResponse {
    app.create_payment(Some(key), json!({"amount": 100, "currency": "USD"}))
        .await
}

/// `POST /payments` from `source`, as API Gateway hands it over.
async fn pays_from(app: &TestApp, key: &str, source: &str) -> u16 {
    let request = shared::testing::Event::new("POST", "/payments")
        .header("x-api-key", key)
        .json(&json!({"amount": 100, "currency": "USD"}))
        .source_ip(source)
        .request();
    app.post_payment(request).await.status
}

/// The id of the account's one key (its first, secret key).
async fn first_key_id(app: &TestApp, key: &str) -> String {
    let listing = app.list_keys(key).await;
    assert_eq!(listing.status, 200, "{:?}", listing.body);
    listing.body["data"][0]["id"].as_str().unwrap().to_owned()
}

/// The account's keys that authenticate now, by id.
async fn working_keys(app: &TestApp, account: &AccountId) -> BTreeSet<String> {
    app.store()
        .account_keys(account, app.clock.clock().now())
        .await
        .unwrap()
        .keys
        .into_iter()
        .filter(|key| key.state.is_live())
        .map(|key| key.key_id.to_string())
        .collect()
}

fn new_key_of(response: &TestResponse) -> (String, String) {
    assert_eq!(response.status, 201, "{:?}", response.body);
    (
        response.body["id"].as_str().unwrap().to_owned(),
        response.body["api_key"].as_str().unwrap().to_owned(),
    )
}

/// The DynamoDB operations the request's metrics line names.
fn operations_of(lines: &[String]) -> Vec<Value> {
    let line: Value = serde_json::from_str(lines.last().expect("a metrics line")).unwrap();
    line["DynamoDbOperations"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_read_only_key_reads_is_refused_writes_and_costs_no_extra_call() {
    let app = TestApp::spawn().await;
    let (account_id, secret) = app.new_client().await;
    let created = app
        .create_key(
            &secret,
            &json!({"name": "reconciliation", "permissions": ["payments:read"]}),
        )
        .await;
    let (reader_id, reader) = new_key_of(&created);
    assert!(reader.starts_with("rk_test_"), "{reader}");
    assert_eq!(reader.len(), secret.len());
    assert_eq!(created.body["kind"], "restricted");
    assert_eq!(created.body["permissions"], json!(["payments:read"]));

    metrics::capture();
    let paid = pays(&app, &secret).await;
    assert_eq!(paid.status, 201);
    let secret_ops = operations_of(&metrics::captured());
    let refused = pays(&app, &reader).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"]["message"],
        "This key does not have the payments:write permission."
    );
    // The refusal read the key's item and nothing else; a write of the secret key made the
    // same read first, then its one write.
    let refused_ops = operations_of(&metrics::captured());
    assert_eq!(refused_ops, json!(["GetItem"]).as_array().unwrap().clone());
    assert_eq!(secret_ops[0], "GetItem");
    assert_eq!(app.payments_of(&account_id).await.len(), 1);

    // It reads, with the same single key read in front of the route's own.
    let id = paid.body["id"].as_str().unwrap();
    let read = app.get_payment(Some(&reader), id).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    let read_ops = operations_of(&metrics::captured());
    assert_eq!(read_ops.len(), 2, "{read_ops:?}");
    assert_eq!(app.list_payments(Some(&reader), &[]).await.status, 200);

    // And it cannot see the keys.
    assert_eq!(app.list_keys(&reader).await.status, 403);
    let listing = app.list_keys(&secret).await;
    let ids: Vec<&str> = listing.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], reader_id, "newest first");
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn roll_then_revoke_and_every_change_is_audited_with_its_key_and_request() {
    let app = TestApp::spawn().await;
    let (account_id, secret) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let secret_id = first_key_id(&app, &secret).await;
    let (job_id, job) = new_key_of(
        &app.create_key(
            &secret,
            &json!({"name": "job", "permissions": ["payments:write"],
                    "allowed_ips": ["203.0.113.0/24"]}),
        )
        .await,
    );
    let rolled = app
        .roll_key(&secret, &job_id, Some(&json!({"expires_in": 3600})))
        .await;
    let (new_id, new) = new_key_of(&rolled);
    assert_eq!(rolled.body["name"], "job");
    assert_eq!(rolled.body["allowed_ips"], json!(["203.0.113.0/24"]));
    assert_eq!(
        rolled.body["permissions"],
        json!(["payments:read", "payments:write"])
    );
    // Both work through the grace, from within their ranges only (a request without a
    // source address included).
    for key in [&job, &new] {
        assert_eq!(pays_from(&app, key, "203.0.113.7").await, 201);
        assert_eq!(pays_from(&app, key, "198.51.100.7").await, 401);
        assert_eq!(pays(&app, key).await.status, 401);
    }
    let old = app.get_key(&secret, &job_id).await;
    assert_eq!(old.body["status"], "expiring");
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(pays_from(&app, &job, "203.0.113.7").await, 401);

    let revoked = app.revoke_key(&secret, &new_id).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(revoked.body["status"], "revoked");
    assert_eq!(pays_from(&app, &new, "203.0.113.7").await, 401);
    let again = app.revoke_key(&secret, &new_id).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.raw_body, revoked.raw_body);

    let events = app.store().audit_events(&account, 10).await.unwrap();
    let changes: Vec<(AuditAction, &str, bool)> = events
        .iter()
        .map(|e| (e.action, e.actor.as_str(), e.request_id.is_some()))
        .collect();
    let actor = format!("key:{secret_id}");
    assert_eq!(
        changes,
        [
            (AuditAction::KeyRevoked, actor.as_str(), true),
            (AuditAction::KeyRolled, actor.as_str(), true),
            (AuditAction::KeyCreated, actor.as_str(), true),
            (AuditAction::AccountCreated, "anonymous", false),
        ]
    );
    assert!(working_keys(&app, &account).await.contains(&secret_id));
}

#[tokio::test]
async fn a_key_with_an_end_of_its_own_is_expiring_and_cannot_be_rolled() {
    let app = TestApp::spawn().await;
    let (account_id, secret) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let secret_id = first_key_id(&app, &secret).await;
    let end = app.clock.clock().now().plus(Duration::from_secs(86_400));
    let created = app
        .create_key(
            &secret,
            &json!({"name": "quarterly", "permissions": ["payments:read"],
                    "expires_at": end.to_rfc3339()}),
        )
        .await;
    let (old_id, _) = new_key_of(&created);
    assert_eq!(created.body["status"], "expiring");
    let before = working_keys(&app, &account).await;
    for body in [None, Some(json!({"expires_in": 3600}))] {
        let refused = app.roll_key(&secret, &old_id, body.as_ref()).await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (409, "key_not_active"),
            "{:?}",
            refused.body
        );
    }
    assert_eq!(working_keys(&app, &account).await, before, "no key made");
    let kept = app.get_key(&secret, &old_id).await;
    assert_eq!(kept.body["status"], "expiring");
    assert_eq!(kept.body["expires_at"], end.to_rfc3339());
    // Revoking the new key of a roll gives the rolled key back active, with no end.
    let (new_id, new) = new_key_of(
        &app.roll_key(&secret, &secret_id, Some(&json!({"expires_in": 600})))
            .await,
    );
    assert_eq!(app.revoke_key(&secret, &new_id).await.status, 200);
    let back = app.get_key(&secret, &secret_id).await;
    assert_eq!(back.body["status"], "active");
    assert_eq!(back.body["expires_at"], Value::Null);
    assert_eq!(pays(&app, &new).await.status, 401);
}

#[tokio::test]
async fn the_last_key_that_manages_keys_cannot_be_revoked_but_can_be_rolled() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.new_client().await;
    let secret_id = first_key_id(&app, &secret).await;
    let refused = app.revoke_key(&secret, &secret_id).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.error_code(), "would_lock_out");
    assert_eq!(pays(&app, &secret).await.status, 201, "nothing changed");
    let rolled = app
        .roll_key(&secret, &secret_id, Some(&json!({"expires_in": 60})))
        .await;
    let (_, new) = new_key_of(&rolled);
    assert!(new.starts_with("sk_test_"));
    // The rolled key is expiring now; the new one is the last active manager of keys.
    assert_eq!(app.revoke_key(&new, &secret_id).await.status, 200);
}

#[tokio::test]
async fn a_restricted_key_with_every_permission_neither_rolls_nor_revokes_the_secret_key() {
    let app = TestApp::spawn().await;
    let (account_id, secret) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let secret_id = first_key_id(&app, &secret).await;
    let every = json!(["payments:read", "payments:write", "keys:read", "keys:write"]);
    let (manager_id, manager) = new_key_of(
        &app.create_key(&secret, &json!({"name": "manager", "permissions": every}))
            .await,
    );
    for refused in [
        app.roll_key(&manager, &secret_id, Some(&json!({"expires_in": 600})))
            .await,
        app.revoke_key(&manager, &secret_id).await,
    ] {
        assert_eq!(
            (refused.status, refused.error_code()),
            (403, "insufficient_permissions"),
            "{:?}",
            refused.body
        );
        assert_eq!(
            refused.body["error"]["message"],
            "A restricted key cannot roll or revoke a secret key, whatever permissions it holds: use a secret key."
        );
    }
    assert_eq!(
        working_keys(&app, &account).await,
        BTreeSet::from([secret_id.clone(), manager_id.clone()]),
        "no key made, none stopped"
    );
    assert_eq!(pays(&app, &secret).await.status, 201);
    // It rolls itself, into a restricted key; the secret key still manages it.
    let (_, rolled) = new_key_of(
        &app.roll_key(&manager, &manager_id, Some(&json!({"expires_in": 60})))
            .await,
    );
    assert!(rolled.starts_with("rk_test_"), "{rolled}");
    assert_eq!(app.revoke_key(&secret, &manager_id).await.status, 200);
}

#[tokio::test]
async fn two_rolls_of_one_key_at_once_make_one_new_key() {
    let app = TestApp::spawn().await;
    let (account_id, secret) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    for round in 0..3 {
        let (job_id, _) = new_key_of(
            &app.create_key(
                &secret,
                &json!({"name": format!("job {round}"), "permissions": ["payments:read"]}),
            )
            .await,
        );
        let body = json!({"expires_in": 600});
        let (a, b) = tokio::join!(
            app.roll_key(&secret, &job_id, Some(&body)),
            app.roll_key(&secret, &job_id, Some(&body)),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "{:?} {:?}", a.body, b.body);
        let loser = if a.status == 409 { &a } else { &b };
        assert_eq!(loser.error_code(), "key_not_active");
        let made: Vec<String> = app
            .store()
            .account_keys(&account, app.clock.clock().now())
            .await
            .unwrap()
            .keys
            .iter()
            .filter(|key| key.name.as_ref().map(|n| n.as_str()) == Some(&format!("job {round}")))
            .map(|key| key.key_id.to_string())
            .collect();
        assert_eq!(made.len(), 2, "the rolled key and one new key: {made:?}");
    }
}

#[tokio::test]
async fn a_revoke_racing_a_roll_leaves_no_working_key_the_account_did_not_ask_for() {
    let app = TestApp::spawn().await;
    let (account_id, secret) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let secret_id = first_key_id(&app, &secret).await;
    for round in 0..4 {
        let (job_id, _) = new_key_of(
            &app.create_key(
                &secret,
                &json!({"name": format!("job {round}"), "permissions": ["payments:read"]}),
            )
            .await,
        );
        let body = json!({"expires_in": 600});
        let roll = app.roll_key(&secret, &job_id, Some(&body));
        let revoke = app.revoke_key(&secret, &job_id);
        let (rolled, revoked) = if round % 2 == 0 {
            tokio::join!(roll, revoke)
        } else {
            let (revoked, rolled) = tokio::join!(revoke, roll);
            (rolled, revoked)
        };
        assert_eq!(revoked.status, 200, "{:?}", revoked.body);
        // Whichever won, the revoked key is dead, and the only keys that work are the
        // secret key and a key whose secret a 201 handed over.
        let mut asked_for = BTreeSet::from([secret_id.clone()]);
        match rolled.status {
            201 => {
                asked_for.insert(rolled.body["id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(rolled.error_code(), "key_not_active"),
            other => panic!("roll answered {other}: {:?}", rolled.body),
        }
        assert_eq!(working_keys(&app, &account).await, asked_for);
        // Revoke what the round made, so that every round starts from the secret key alone.
        if let Some(id) = rolled.body["id"].as_str() {
            assert_eq!(app.revoke_key(&secret, id).await.status, 200);
        }
        let state = app.get_key(&secret, &job_id).await.body["status"].clone();
        assert_eq!(state, KeyState::Revoked.as_str());
    }
}

#[tokio::test]
async fn another_account_s_key_is_the_404_of_an_unknown_one() {
    let app = TestApp::spawn().await;
    let (_, mine) = app.new_client().await;
    let (_, theirs) = app.new_client().await;
    let their_id = first_key_id(&app, &theirs).await;
    let foreign = app.get_key(&mine, &their_id).await;
    let unknown = app.get_key(&mine, "key_00000000000000000000").await;
    let malformed = app.get_key(&mine, "nope").await;
    assert_eq!(foreign.status, 404);
    assert_eq!(
        foreign.body_without_request_id(),
        unknown.body_without_request_id()
    );
    assert_eq!(
        foreign.body_without_request_id(),
        malformed.body_without_request_id()
    );
    for response in [
        app.revoke_key(&mine, &their_id).await,
        app.roll_key(&mine, &their_id, None).await,
    ] {
        assert_eq!(
            response.body_without_request_id(),
            unknown.body_without_request_id()
        );
    }
    assert_eq!(pays(&app, &theirs).await.status, 201, "untouched");
}

/// A roll whose transaction landed but whose answer was lost: the 503 says it may have
/// happened, `GET /keys` shows that it did, and revoking the new key nobody saw undoes it,
/// so the account rolls again and ends with the keys it holds and no other.
#[tokio::test]
async fn a_roll_whose_answer_is_lost_is_found_out_and_undone_from_get_keys() {
    let app = TestApp::spawn().await;
    let (account_id, secret) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let secret_id = first_key_id(&app, &secret).await;
    let proxy = FaultProxy::start(&payments_tests::dynamodb_endpoint()).await;
    let rolls = roll_key::State {
        edge: app.edge_through(&proxy.endpoint).await,
        ids: shared::domain::IdSource::random(),
    };
    proxy.lose_responses_of("TransactWriteItems");
    let request = shared::testing::Event::new("POST", "/keys/{id}/roll")
        .path(&format!("/keys/{secret_id}/roll"))
        .param("id", &secret_id)
        .header("x-api-key", &secret)
        .json(&json!({"expires_in": 60}))
        .request();
    let lost = TestResponse::from_lambda(roll_key::handle(&rolls, request).await);
    assert_eq!(
        (lost.status, lost.error_code()),
        (503, "outcome_unknown"),
        "{:?}",
        lost.body
    );
    assert!(
        lost.headers.get("retry-after").is_none(),
        "not a blind retry"
    );
    assert!(proxy.counts().lost_responses >= 1, "the fault did happen");

    // The account looks: its key is expiring, and a key it never saw works.
    let listing = app.list_keys(&secret).await;
    let keys = listing.body["data"].as_array().unwrap();
    let mine = keys.iter().find(|k| k["id"] == secret_id.as_str()).unwrap();
    assert_eq!(mine["status"], "expiring", "the roll happened");
    let orphans: Vec<&str> = keys
        .iter()
        .filter(|k| k["id"] != secret_id.as_str() && k["status"] == "active")
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(orphans.len(), 1, "{keys:?}");
    // Revoking it undoes the roll; then the roll is made again, and answered.
    assert_eq!(app.revoke_key(&secret, orphans[0]).await.status, 200);
    assert_eq!(
        app.get_key(&secret, &secret_id).await.body["status"],
        "active"
    );
    let rolled = app
        .roll_key(&secret, &secret_id, Some(&json!({"expires_in": 60})))
        .await;
    let (new_id, new) = new_key_of(&rolled);
    assert_eq!(pays(&app, &new).await.status, 201);
    assert_eq!(
        working_keys(&app, &account).await,
        BTreeSet::from([secret_id, new_id]),
        "the keys the account holds, and no other"
    );
}

/// A create whose transaction landed but whose answer was lost: the 503 says it may have
/// happened, `GET /keys` shows the key by the name the request gave, and revoking it leaves
/// the account with the keys it holds and no other; the create, sent again under a name of
/// its own, is answered.
#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_out_by_its_name_and_revoked() {
    let app = TestApp::spawn().await;
    let (account_id, secret) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let secret_id = first_key_id(&app, &secret).await;
    let proxy = FaultProxy::start(&payments_tests::dynamodb_endpoint()).await;
    let creates = create_key::State {
        edge: app.edge_through(&proxy.endpoint).await,
        ids: shared::domain::IdSource::random(),
    };
    proxy.lose_responses_of("TransactWriteItems");
    let request = shared::testing::Event::new("POST", "/keys")
        .header("x-api-key", &secret)
        .json(&json!({"name": "nightly 1", "permissions": ["payments:read"]}))
        .request();
    let lost = TestResponse::from_lambda(create_key::handle(&creates, request).await);
    assert_eq!(
        (lost.status, lost.error_code()),
        (503, "outcome_unknown"),
        "{:?}",
        lost.body
    );
    assert!(
        lost.headers.get("retry-after").is_none(),
        "not a blind retry"
    );
    assert!(proxy.counts().lost_responses >= 1, "the fault did happen");

    // The account looks for the name it gave: the key is there, and works, though nobody
    // holds its secret.
    let listing = app.list_keys(&secret).await;
    let orphans: Vec<&str> = listing.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == "nightly 1")
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(orphans.len(), 1, "{:?}", listing.body);
    assert_eq!(working_keys(&app, &account).await.len(), 2);
    assert_eq!(app.revoke_key(&secret, orphans[0]).await.status, 200);
    let (new_id, _) = new_key_of(
        &app.create_key(
            &secret,
            &json!({"name": "nightly 2", "permissions": ["payments:read"]}),
        )
        .await,
    );
    assert_eq!(
        working_keys(&app, &account).await,
        BTreeSet::from([secret_id, new_id]),
        "the keys the account holds, and no other"
    );
}
