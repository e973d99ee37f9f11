//! Retrieve and list against DynamoDB Local: strong consistency of retrieve, the one 404,
//! the list's order, pages, bounds and tenant isolation, and how soon a new payment is
//! listed (the index is eventually consistent).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use payments_tests::{TestApp, TestResponse};
use serde_json::{json, Value};

/// How soon a new payment must show up in `GET /payments`. DynamoDB documents GSI
/// propagation as typically under a second; DynamoDB Local applies it at once. The test
/// asserts this bound, which README.md and docs/openapi.yaml state.
const LIST_VISIBILITY_BOUND: Duration = Duration::from_secs(5);

fn ids(response: &TestResponse) -> Vec<String> {
    response.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", response.body))
        .iter()
        .map(|payment| payment["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates `n` payments, each a clock tick apart so the order is certain; oldest first.
async fn payments(app: &TestApp, key: &str, n: usize) -> Vec<Value> {
    let mut created = Vec::new();
    for i in 0..n {
        let response = app
            .create_payment(Some(key), json!({"amount": 100 + i, "currency": "usd"}))
            .await;
        assert_eq!(response.status, 201, "{}", response.body);
        created.push(response.body);
        app.clock.advance(Duration::from_millis(5));
    }
    created
}

fn ids_of(payments: &[Value]) -> Vec<String> {
    payments
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_payment_is_retrievable_on_the_request_right_after_its_201() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let created = app
        .create_payment(
            Some(&key),
            json!({"amount": 1250, "currency": "eur", "description": "Order 1"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap();
    let read = app.get_payment(Some(&key), id).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(
        read.raw_body, created.raw_body,
        "exactly the body the 201 had"
    );
}

#[tokio::test]
async fn foreign_unknown_and_malformed_ids_get_one_identical_404() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let (_, other_key) = app.new_client().await;
    let foreign = app
        .create_payment(Some(&other_key), json!({"amount": 1, "currency": "usd"}))
        .await;
    let foreign_id = foreign.body["id"].as_str().unwrap().to_owned();
    let mut bodies = HashSet::new();
    for id in [
        foreign_id.as_str(),
        "pay_00000000000000000000",
        "pay_short",
        "not-an-id",
    ] {
        let response = app.get_payment(Some(&key), id).await;
        assert_eq!(response.status, 404, "{id}: {}", response.body);
        assert_eq!(response.error_code(), "resource_missing");
        assert_eq!(response.body["error"]["param"], "id");
        bodies.insert(response.body_without_request_id());
    }
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    // The owner still reads it.
    assert_eq!(
        app.get_payment(Some(&other_key), &foreign_id).await.status,
        200
    );
}

#[tokio::test]
async fn a_list_is_newest_first_and_pages_cover_every_payment_once() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let created = payments(&app, &key, 7).await;
    let newest_first: Vec<String> = ids_of(&created).into_iter().rev().collect();

    let first = app.list_payments(Some(&key), &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(ids(&first), newest_first);
    assert_eq!(first.body["has_more"], false);
    assert_eq!(
        first.body["data"][0], created[6],
        "each entry as its 201 showed it"
    );

    // Forwards, three at a time, with starting_after.
    let mut seen = Vec::new();
    let mut query_cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "3")];
        if let Some(cursor) = &query_cursor {
            query.push(("starting_after", cursor.as_str()));
        }
        let page = app.list_payments(Some(&key), &query).await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages += 1;
        seen.extend(ids(&page));
        query_cursor = seen.last().cloned();
        if page.body["has_more"] == false {
            break;
        }
    }
    assert_eq!((pages, &seen), (3, &newest_first));

    // Backwards from past the oldest, with ending_before: each page still newest first.
    let mut pages = Vec::new();
    let mut cursor = newest_first[6].clone();
    loop {
        let page = app
            .list_payments(Some(&key), &[("limit", "2"), ("ending_before", &cursor)])
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page_ids = ids(&page);
        cursor = page_ids[0].clone();
        pages.insert(0, page_ids);
        if page.body["has_more"] == false {
            break;
        }
    }
    assert_eq!(pages.concat(), newest_first[..6].to_vec());
    assert_eq!(pages.len(), 3);

    let one = app.list_payments(Some(&key), &[("limit", "1")]).await;
    assert_eq!(
        (ids(&one), &one.body["has_more"]),
        (vec![newest_first[0].clone()], &json!(true))
    );
}

#[tokio::test]
async fn created_bounds_are_inclusive_and_combine_with_cursors() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let created = payments(&app, &key, 5).await;
    let at = |i: usize| created[i]["created_at"].as_str().unwrap().to_owned();
    let id = |i: usize| created[i]["id"].as_str().unwrap().to_owned();

    let page = app
        .list_payments(
            Some(&key),
            &[("created[gte]", &at(1)), ("created[lte]", &at(3))],
        )
        .await;
    assert_eq!(ids(&page), vec![id(3), id(2), id(1)]);
    let page = app
        .list_payments(
            Some(&key),
            &[
                ("created[gte]", &at(1)),
                ("created[lte]", &at(3)),
                ("starting_after", &id(3)),
            ],
        )
        .await;
    assert_eq!(ids(&page), vec![id(2), id(1)]);
    assert_eq!(page.body["has_more"], false);
    let page = app
        .list_payments(
            Some(&key),
            &[
                ("created[lte]", &at(3)),
                ("ending_before", &id(1)),
                ("limit", "1"),
            ],
        )
        .await;
    assert_eq!(ids(&page), vec![id(2)]);
    assert_eq!(page.body["has_more"], true);
    let page = app
        .list_payments(
            Some(&key),
            &[("created[gte]", &at(4)), ("created[lte]", &at(0))],
        )
        .await;
    assert_eq!((page.status, ids(&page).len()), (200, 0));
}

#[tokio::test]
async fn accounts_never_see_each_other_s_payments_nor_probe_them_with_cursors() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let (_, other_key) = app.new_client().await;
    let mine = payments(&app, &key, 3).await;
    let theirs = payments(&app, &other_key, 4).await;

    let page = app.list_payments(Some(&key), &[("limit", "100")]).await;
    assert_eq!(
        ids(&page),
        ids_of(&mine).into_iter().rev().collect::<Vec<_>>()
    );
    let page = app
        .list_payments(Some(&other_key), &[("limit", "100")])
        .await;
    assert_eq!(
        ids(&page),
        ids_of(&theirs).into_iter().rev().collect::<Vec<_>>()
    );

    for param in ["starting_after", "ending_before"] {
        let mut bodies = HashSet::new();
        for cursor in [
            theirs[2]["id"].as_str().unwrap(),
            "pay_00000000000000000000",
        ] {
            let response = app.list_payments(Some(&key), &[(param, cursor)]).await;
            assert_eq!(response.status, 404, "{}", response.body);
            assert_eq!(response.error_code(), "resource_missing");
            assert_eq!(response.body["error"]["param"], param);
            bodies.insert(response.body_without_request_id());
        }
        assert_eq!(bodies.len(), 1, "{bodies:#?}");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_400_with_param() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    for (query, code, param) in [
        (vec![("limit", "0")], "parameter_invalid", "limit"),
        (vec![("limit", "101")], "parameter_invalid", "limit"),
        (vec![("limit", "abc")], "parameter_invalid", "limit"),
        (
            vec![
                ("starting_after", "pay_00000000000000000000"),
                ("ending_before", "pay_00000000000000000001"),
            ],
            "parameter_invalid",
            "ending_before",
        ),
        (
            vec![("starting_after", "nope")],
            "parameter_invalid",
            "starting_after",
        ),
        (
            vec![("created[lte]", "soon")],
            "parameter_invalid",
            "created[lte]",
        ),
        (vec![("sort", "asc")], "parameter_unknown", "sort"),
        (
            vec![("limit", "1"), ("limit", "1")],
            "parameter_duplicate",
            "limit",
        ),
    ] {
        let response = app.list_payments(Some(&key), &query).await;
        assert_eq!(response.status, 400, "{query:?}");
        assert_eq!(response.error_code(), code, "{query:?}");
        assert_eq!(response.body["error"]["param"], param, "{query:?}");
    }
    let response = app.list_payments(None, &[]).await;
    assert_eq!(response.status, 401);
}

#[tokio::test]
async fn a_new_payment_is_listed_within_the_stated_bound() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let created = app
        .create_payment(Some(&key), json!({"amount": 5, "currency": "usd"}))
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let page = app.list_payments(Some(&key), &[]).await;
        assert_eq!(page.status, 200);
        if ids(&page).contains(&id) {
            break;
        }
        assert!(
            started.elapsed() < LIST_VISIBILITY_BOUND,
            "not listed after {LIST_VISIBILITY_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Retrieve never waits, and a just-created payment is a cursor at once.
    assert_eq!(app.get_payment(Some(&key), &id).await.status, 200);
    let page = app
        .list_payments(Some(&key), &[("ending_before", &id)])
        .await;
    assert_eq!((page.status, ids(&page).len()), (200, 0));
}
