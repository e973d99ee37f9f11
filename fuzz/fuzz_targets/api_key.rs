//! API-key parsing: no input panics, and every accepted key is exactly the documented format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use shared::domain::{key_prefix, ApiKey, IdempotencyKey, KeyEnvironment, KEY_LENGTH};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = IdempotencyKey::parse(data) {
        assert!((1..=255).contains(&key.as_str().len()));
        assert!(!key.as_str().contains(','));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for environment in [KeyEnvironment::Test, KeyEnvironment::Live] {
        if let Ok(key) = ApiKey::parse(text, environment) {
            assert_eq!(key.expose_once(), text);
            assert_eq!(text.len(), KEY_LENGTH);
            // A secret or a restricted key of this environment.
            let kind = key.display_prefix().kind();
            assert!(text.starts_with(&key_prefix(kind, environment)));
            assert!(text[8..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(key.display_prefix().as_str(), &text[..12]);
            let expected: [u8; 32] = Sha256::digest(text.as_bytes()).into();
            assert_eq!(key.digest().to_hex(), hex::encode(expected));
            // A key is valid in exactly one environment.
            let other = match environment {
                KeyEnvironment::Test => KeyEnvironment::Live,
                KeyEnvironment::Live => KeyEnvironment::Test,
            };
            assert!(ApiKey::parse(text, other).is_err());
        }
    }
});
