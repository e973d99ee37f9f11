//! Prints, as JSON, the facts of the API contract that the code decides: every error
//! response (status, type, code), the limits of each field, the accepted currencies, and the
//! request deadline's margin and default budget.
//! The contract tests (`tests/contract`) compare `docs/openapi.yaml` with this output, so
//! the spec is checked against the code's own values rather than its source text.
//!
//! ```text
//! cargo run --quiet -p shared --example api_contract
//! ```

use shared::domain::{
    AccountName, Amount, Currency, Description, Email, IdempotencyKey, IpAllowList, KeyName,
    Permission,
};
use shared::http::body::{MAX_BODY_BYTES, MAX_ROLL_GRACE};
use shared::http::deadline::{DEFAULT_BUDGET, RESPONSE_MARGIN};
use shared::http::ApiError;
use shared::store::lifecycle::MAX_KEY_ENTRIES;

fn main() {
    let facts = serde_json::json!({
        "errors": ApiError::catalogue(),
        "limits": {
            "name_max_chars": AccountName::MAX_CHARS,
            "email_max_chars": Email::MAX_CHARS,
            "description_max_chars": Description::MAX_CHARS,
            "amount_min": Amount::MIN,
            "amount_max": Amount::MAX,
            "body_max_bytes": MAX_BODY_BYTES,
            "idempotency_key_max_len": IdempotencyKey::MAX_LEN,
            "key_name_max_chars": KeyName::MAX_CHARS,
            "allowed_ips_max": IpAllowList::MAX_RANGES,
            "roll_grace_max_s": MAX_ROLL_GRACE.as_secs(),
            "key_entries_max": MAX_KEY_ENTRIES,
            "permissions": Permission::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        },
        "currencies": Currency::all().map(Currency::code).collect::<Vec<_>>(),
        "deadline": {
            "response_margin_ms": RESPONSE_MARGIN.as_millis() as u64,
            "default_budget_ms": DEFAULT_BUDGET.as_millis() as u64,
        },
    });
    println!("{facts:#}");
}
