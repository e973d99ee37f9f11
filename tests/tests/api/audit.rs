//! The audit trail: every operator change and every account creation leaves one event,
//! written in the same transaction as the change.

use std::time::Duration;

use payments_tests::{all_strings, issued, operator, TestApp};
use serde_json::json;
use shared::domain::{AccountId, AccountStatus, ApiKey, AuditAction, KeyEnvironment, KeyStatus};
use shared::store::lifecycle::AdminError;

const MINUTE: Duration = Duration::from_secs(60);

async fn pays(app: &TestApp, key: &str) -> u16 {
    app.create_payment(Some(key), json!({"amount": 1, "currency": "USD"}))
        .await
        .status
}

#[tokio::test]
async fn every_change_is_recorded_newest_first_without_secrets() {
    let app = TestApp::spawn().await;
    let (id, first_key) = app.new_client().await;
    let id = AccountId::parse(&id).unwrap();
    let store = app.store();
    let first_id = store
        .account_keys(&id, app.clock.clock().now())
        .await
        .unwrap()
        .keys[0]
        .key_id
        .clone();

    let step = || {
        app.clock.advance(Duration::from_secs(1));
        app.clock.clock().now()
    };
    let new = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let now = step();
    let rotation = store
        .rotate_key(&id, &issued(&new, now), 10 * MINUTE, now, &operator())
        .await
        .unwrap();
    store
        .revoke_key(&first_id, step(), &operator())
        .await
        .unwrap();
    store
        .set_account_status(&id, AccountStatus::Inactive, step(), &operator())
        .await
        .unwrap();
    store
        .set_account_status(&id, AccountStatus::Active, step(), &operator())
        .await
        .unwrap();

    let events = store.audit_events(&id, 100).await.unwrap();
    let actions: Vec<AuditAction> = events.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::AccountReactivated,
            AuditAction::AccountDeactivated,
            AuditAction::KeyRevoked,
            AuditAction::KeyRotated,
            AuditAction::AccountCreated,
        ]
    );
    assert!(events.windows(2).all(|pair| pair[0].at > pair[1].at));
    let actors: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(
        actors,
        [
            "test-operator",
            "test-operator",
            "test-operator",
            "test-operator",
            "anonymous"
        ]
    );

    let rotated = &events[3];
    assert_eq!(
        rotated.key_ids,
        vec![rotation.new_key_id.clone(), first_id.clone()]
    );
    assert_eq!(rotated.before.keys[&first_id].expires_at, None);
    assert_eq!(
        rotated.after.keys[&first_id].expires_at,
        Some(rotation.retiring[0].expires_at)
    );
    let revoked = &events[2];
    assert_eq!(revoked.key_ids, vec![first_id.clone()]);
    assert_eq!(revoked.before.keys[&first_id].status, KeyStatus::Active);
    assert_eq!(revoked.after.keys[&first_id].status, KeyStatus::Revoked);
    let deactivated = &events[1];
    assert_eq!(
        deactivated.before.account_status,
        Some(AccountStatus::Active)
    );
    assert_eq!(
        deactivated.after.account_status,
        Some(AccountStatus::Inactive)
    );
    assert_eq!(deactivated.key_ids, vec![rotation.new_key_id.clone()]);

    // Never a key, never a digest: every string stored in the audit table, checked.
    let mut strings = Vec::new();
    for item in app.scan(&app.audit_table).await {
        for value in item.values() {
            all_strings(value, &mut strings);
        }
    }
    for secret in [
        first_key.clone(),
        new.expose_once().to_owned(),
        ApiKey::parse(&first_key, KeyEnvironment::Test)
            .unwrap()
            .digest()
            .to_hex(),
        new.digest().to_hex(),
    ] {
        assert!(
            strings.iter().all(|s| !s.contains(&secret[..20])),
            "a key or digest reached the audit table"
        );
    }
}

#[tokio::test]
async fn a_change_whose_audit_event_cannot_be_written_is_not_applied() {
    let app = TestApp::spawn().await;
    let (id, key) = app.new_client().await;
    let id = AccountId::parse(&id).unwrap();
    app.client
        .delete_table()
        .table_name(&app.audit_table)
        .send()
        .await
        .unwrap();
    let now = app.clock.clock().now();
    let new = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let rotation = app
        .store()
        .rotate_key(&id, &issued(&new, now), Duration::ZERO, now, &operator())
        .await;
    assert!(
        matches!(rotation, Err(AdminError::Store(_))),
        "{rotation:?}"
    );
    let deactivation = app
        .store()
        .set_account_status(&id, AccountStatus::Inactive, now, &operator())
        .await;
    assert!(deactivation.is_err());
    // Neither change happened: the old key works, the new one never existed.
    assert_eq!(pays(&app, &key).await, 201);
    assert_eq!(pays(&app, new.expose_once()).await, 401);
    let listing = app.store().account_keys(&id, now).await.unwrap();
    assert_eq!(listing.keys.len(), 1);
    assert_eq!(listing.account.status, AccountStatus::Active);
}
