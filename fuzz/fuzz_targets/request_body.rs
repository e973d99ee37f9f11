//! Request-body parsing: no input panics, and every accepted body holds validated values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::{fingerprint, Currency};
use shared::http::body::{parse_body, CreateAccountRequest, CreatePaymentRequest};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = Some(&b"application/json"[..]);
    if selector % 2 == 0 {
        if let Ok(request) = parse_body::<CreatePaymentRequest>(content_type, body) {
            if let Ok(payment) = request.validate() {
                assert!((1..=99_999_999).contains(&payment.amount.minor_units()));
                let code = payment.currency.code();
                assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()));
                assert_eq!(Currency::parse(code).unwrap(), payment.currency);
                if let Some(description) = &payment.description {
                    assert!(description.as_str().chars().count() <= 500);
                }
                assert_eq!(fingerprint(&payment), fingerprint(&payment.clone()));
            }
        }
    } else if let Ok(request) = parse_body::<CreateAccountRequest>(content_type, body) {
        if let Ok(account) = request.validate() {
            let name = account.name.as_str();
            assert!(!name.trim().is_empty() && name.chars().count() <= 200);
            assert!(!name.chars().any(char::is_control));
            if let Some(email) = &account.email {
                assert!(email.as_str().contains('@') && email.as_str().len() <= 254);
            }
        }
    }
});
