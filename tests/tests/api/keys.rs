use std::sync::Arc;
use std::time::Duration;

use payments_tests::TestApp;
use payments_tests::{issued, operator};
use serde_json::json;
use shared::domain::KeyState;
use shared::domain::{AccountId, AccountStatus, KeyId};
use shared::domain::{ApiKey, KeyEnvironment};
use shared::store::lifecycle::{AdminError, Revocation};
use shared::store::{Entity, StoreError};

const MINUTE: Duration = Duration::from_secs(60);

async fn pays(app: &TestApp, key: &str) -> u16 {
    app.create_payment(Some(key), json!({"amount": 100, "currency": "USD"}))
        .await
        .status
}

fn new_key() -> ApiKey {
    ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap()
}

async fn rotate(app: &TestApp, account: &AccountId, key: &ApiKey, grace: Duration) -> KeyId {
    // One second later, so keys list in the order they were issued.
    app.clock.advance(Duration::from_secs(1));
    app.store()
        .rotate_key(
            account,
            &issued(key, app.clock.clock().now()),
            grace,
            app.clock.clock().now(),
            &operator(),
        )
        .await
        .unwrap()
        .new_key_id
}

async fn states(app: &TestApp, account: &AccountId) -> Vec<KeyState> {
    let keys = app
        .store()
        .account_keys(account, app.clock.clock().now())
        .await
        .unwrap()
        .keys;
    keys.iter().map(|k| k.state).collect()
}

#[tokio::test]
async fn rotation_keeps_the_old_key_working_through_its_grace_period() {
    let app = TestApp::spawn().await;
    let (account_id, old) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let new = new_key();
    rotate(&app, &account, &new, 60 * MINUTE).await;

    assert_eq!(
        pays(&app, &old).await,
        201,
        "old key inside the grace period"
    );
    assert_eq!(pays(&app, new.expose_once()).await, 201, "new key at once");
    assert_eq!(
        states(&app, &account).await,
        [KeyState::Expiring, KeyState::Active]
    );

    app.clock.advance(59 * MINUTE);
    assert_eq!(pays(&app, &old).await, 201);
    app.clock.advance(MINUTE);
    let refused = app
        .create_payment(Some(&old), json!({"amount": 100, "currency": "USD"}))
        .await;
    assert_eq!(refused.status, 401, "old key after the grace period");
    assert_eq!(refused.error_code(), "invalid_api_key");
    assert_eq!(pays(&app, new.expose_once()).await, 201);
    assert_eq!(
        states(&app, &account).await,
        [KeyState::Expired, KeyState::Active]
    );
}

#[tokio::test]
async fn rotation_with_no_grace_retires_the_old_key_at_once() {
    let app = TestApp::spawn().await;
    let (account_id, old) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let new = new_key();
    rotate(&app, &account, &new, Duration::ZERO).await;
    assert_eq!(pays(&app, &old).await, 401);
    assert_eq!(pays(&app, new.expose_once()).await, 201);
}

#[tokio::test]
async fn a_second_rotation_does_not_extend_a_shorter_grace() {
    let app = TestApp::spawn().await;
    let (account_id, first) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let second = new_key();
    rotate(&app, &account, &second, 10 * MINUTE).await;
    let third = new_key();
    let rotation = app
        .store()
        .rotate_key(
            &account,
            &issued(&third, app.clock.clock().now()),
            60 * MINUTE,
            app.clock.clock().now(),
            &operator(),
        )
        .await
        .unwrap();
    // Only the second key gets the new hour; the first keeps its ten minutes.
    assert_eq!(rotation.retiring.len(), 1);
    app.clock.advance(11 * MINUTE);
    assert_eq!(pays(&app, &first).await, 401);
    assert_eq!(pays(&app, second.expose_once()).await, 201);
    assert_eq!(pays(&app, third.expose_once()).await, 201);
}

#[tokio::test]
async fn an_account_whose_keys_are_all_dead_can_be_given_a_new_one() {
    let app = TestApp::spawn().await;
    let (account_id, old) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let keys = app
        .store()
        .account_keys(&account, app.clock.clock().now())
        .await
        .unwrap()
        .keys;
    let old_id = keys[0].key_id.clone();
    let now = app.clock.clock().now();
    app.store()
        .revoke_key(&old_id, now, &operator())
        .await
        .unwrap();
    assert_eq!(pays(&app, &old).await, 401);

    // Nothing left to retire: the rotation only issues the new key.
    let new = new_key();
    let rotation = app
        .store()
        .rotate_key(&account, &issued(&new, now), 60 * MINUTE, now, &operator())
        .await
        .unwrap();
    assert!(rotation.retiring.is_empty());
    assert_eq!(pays(&app, new.expose_once()).await, 201);
    assert_eq!(pays(&app, &old).await, 401);
}

#[tokio::test]
async fn revocation_applies_on_the_next_request() {
    let app = TestApp::spawn().await;
    let (account_id, old) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let new = new_key();
    let new_id = rotate(&app, &account, &new, 60 * MINUTE).await;
    assert_eq!(pays(&app, new.expose_once()).await, 201);

    let now = app.clock.clock().now();
    let (owner, outcome) = app
        .store()
        .revoke_key(&new_id, now, &operator())
        .await
        .unwrap();
    assert_eq!((owner, outcome), (account.clone(), Revocation::Revoked));
    assert_eq!(pays(&app, new.expose_once()).await, 401);
    assert_eq!(pays(&app, &old).await, 201, "other keys unaffected");
    let again = app
        .store()
        .revoke_key(&new_id, now, &operator())
        .await
        .unwrap();
    assert_eq!(again.1, Revocation::AlreadyRevoked);
    assert_eq!(
        states(&app, &account).await,
        [KeyState::Expiring, KeyState::Revoked]
    );

    let unknown = KeyId::parse("key_AAAAAAAAAAAAAAAAAAAA").unwrap();
    assert!(matches!(
        app.store().revoke_key(&unknown, now, &operator()).await,
        Err(AdminError::Store(StoreError::NotFound {
            entity: Entity::Key,
            ..
        }))
    ));
}

#[tokio::test]
async fn deactivation_stops_every_key_and_reactivation_restores_them() {
    let app = TestApp::spawn().await;
    let (account_id, old) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let new = new_key();
    rotate(&app, &account, &new, 60 * MINUTE).await;
    let now = app.clock.clock().now();

    app.store()
        .set_account_status(&account, AccountStatus::Inactive, now, &operator())
        .await
        .unwrap();
    assert_eq!(pays(&app, &old).await, 401);
    assert_eq!(pays(&app, new.expose_once()).await, 401);
    // A key issued while the account is inactive is inactive too.
    let during = new_key();
    rotate(&app, &account, &during, 60 * MINUTE).await;
    assert_eq!(pays(&app, during.expose_once()).await, 401);

    app.store()
        .set_account_status(&account, AccountStatus::Active, now, &operator())
        .await
        .unwrap();
    for key in [old.as_str(), new.expose_once(), during.expose_once()] {
        assert_eq!(pays(&app, key).await, 201);
    }
}

#[tokio::test]
async fn unknown_accounts_are_not_found() {
    let app = TestApp::spawn().await;
    let nobody = AccountId::parse("acct_AAAAAAAAAAAAAAAAAAAA").unwrap();
    let now = app.clock.clock().now();
    let store = app.store();
    assert!(matches!(
        store
            .rotate_key(&nobody, &issued(&new_key(), now), MINUTE, now, &operator())
            .await,
        Err(AdminError::Store(StoreError::NotFound {
            entity: Entity::Account,
            ..
        }))
    ));
    assert!(matches!(
        store
            .set_account_status(&nobody, AccountStatus::Inactive, now, &operator())
            .await,
        Err(AdminError::Store(StoreError::NotFound { .. }))
    ));
    assert!(matches!(
        store.account_keys(&nobody, now).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_to_one_account_never_lose_an_update() {
    let app = Arc::new(TestApp::spawn().await);
    let (account_id, _) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (app, account) = (Arc::clone(&app), account.clone());
        tasks.spawn(async move {
            let key = new_key();
            let now = app.clock.clock().now();
            app.store()
                .rotate_key(&account, &issued(&key, now), MINUTE, now, &operator())
                .await
                .map(|_| key)
        });
    }
    let mut issued = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(key) => issued.push(key),
            Err(AdminError::Store(StoreError::ChangedConcurrently { .. })) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(!issued.is_empty());
    // Every rotation that reported success is recorded on the account, and its key works.
    assert_eq!(states(&app, &account).await.len(), 1 + issued.len());
    for key in &issued {
        assert_eq!(pays(&app, key.expose_once()).await, 201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotating_account_always_has_a_working_key() {
    let app = Arc::new(TestApp::spawn().await);
    let (account_id, old) = app.new_client().await;
    let account = AccountId::parse(&account_id).unwrap();
    let new = Arc::new(new_key());

    // Payments keep flowing, trying the old key and then the new one, while the account
    // rotates with no grace at all. Because the rotation is atomic, whenever the old key has
    // stopped working the new one already works.
    let rotated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (app, new, rotated) = (Arc::clone(&app), Arc::clone(&new), Arc::clone(&rotated));
        tokio::spawn(async move {
            let (mut old_worked, mut new_worked, mut after) = (0, 0, 0);
            // Until ten payments after the rotation finished (bounded, in case it never does).
            for _ in 0..2000 {
                if pays(&app, &old).await == 201 {
                    old_worked += 1;
                } else {
                    assert_eq!(pays(&app, new.expose_once()).await, 201, "no working key");
                    new_worked += 1;
                }
                if rotated.load(std::sync::atomic::Ordering::SeqCst) {
                    after += 1;
                    if after == 10 {
                        break;
                    }
                }
            }
            (old_worked, new_worked)
        })
    };
    // Let payments flow with the old key first.
    while app.payments_of(&account_id).await.len() < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rotate(&app, &account, &new, Duration::ZERO).await;
    rotated.store(true, std::sync::atomic::Ordering::SeqCst);
    let (old_worked, new_worked) = checker.await.unwrap();
    assert!(
        old_worked >= 5,
        "old key worked before the rotation: {old_worked}"
    );
    assert!(new_worked >= 5, "new key worked after it: {new_worked}");
}
