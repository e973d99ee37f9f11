//! API key format, generation and hashing: everything about what a key looks like lives here.
//!
//! A key is `<kind>_<env>_` (`sk_` a secret key, `rk_` a restricted one; `test` or
//! `live`) + 43 characters of base64url (32 bytes from the OS CSPRNG) + a 6-character
//! base64url checksum (CRC-32 of everything before it), 57 characters in all:
//!
//! ```text
//! sk_test_9rAQ7yJx0m7dVgT0n8nV6dC3m6oKq5b6w1Yk3y7Xo0E_Xq2w1A
//! └kind+env┘└─────────────── secret (256 bits) ───────────────┘└chk─┘
//! ```
//!
//! The checksum is not a security control (CRC-32 is public); it lets the service refuse a
//! mistyped or invented key without a database call, and lets secret scanners recognise real
//! keys with few false positives. Only the SHA-256 digest of a key is stored. A fast hash is
//! enough because the secret has 256 bits of entropy: there is no dictionary to try and no
//! brute force that a slow password hash would meaningfully slow down.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::key::AuthFailure;
use super::permission::KeyKind;
use super::random::{self, RandomSourceFailed};

const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;
const ENV_PREFIX_CHARS: usize = 8;
/// How many secret characters the display prefix reveals: 24 of 256 bits, enough for support
/// staff to tell keys apart, far too few to help a guesser.
const DISPLAY_SECRET_CHARS: usize = 4;
pub const KEY_LENGTH: usize = ENV_PREFIX_CHARS + SECRET_CHARS + CHECKSUM_CHARS;

string_enum!(
    /// Which deployment a key belongs to, as `API_KEY_ENVIRONMENT` spells it. Each stack
    /// accepts only its own environment's keys, so a test key can never move money in
    /// production.
    KeyEnvironment {
        Test = "test",
        Live = "live",
    }
);

/// The first characters of every key of a kind and environment: `sk_test_`, `rk_live_`.
pub fn key_prefix(kind: KeyKind, env: KeyEnvironment) -> String {
    format!("{}_{}_", kind.code(), env.as_str())
}

/// The kind and environment a key's first characters name, read as [`key_prefix`] writes
/// them, without building each prefix to compare: this runs on every request.
fn kind_and_environment(prefix: &str) -> Option<(KeyKind, KeyEnvironment)> {
    let (code, env) = prefix.strip_suffix('_')?.split_once('_')?;
    let kind = KeyKind::ALL
        .iter()
        .copied()
        .find(|kind| kind.code() == code)?;
    Some((kind, KeyEnvironment::parse(env)?))
}

impl FromStr for KeyEnvironment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
            .ok_or_else(|| format!("unknown key environment {s:?}: expected test or live"))
    }
}

/// A complete API key. Its text is kept in a zeroize-on-drop secret and never appears in
/// `Debug` output; the only way to read it is [`ApiKey::expose_once`].
pub struct ApiKey {
    text: SecretString,
}

impl ApiKey {
    /// Mints a new key of `kind` from the operating system's CSPRNG.
    pub fn generate(kind: KeyKind, env: KeyEnvironment) -> Result<Self, RandomSourceFailed> {
        let mut secret = [0u8; SECRET_BYTES];
        random::fill(&mut secret)?;
        let mut text = String::with_capacity(KEY_LENGTH);
        text.push_str(&key_prefix(kind, env));
        URL_SAFE_NO_PAD.encode_string(secret, &mut text);
        let checksum = checksum(&text);
        text.push_str(&checksum);
        secret.fill(0);
        Ok(ApiKey {
            text: SecretString::from(text),
        })
    }

    /// Checks everything that can be checked without a database: length, kind and
    /// environment, alphabet, canonical encoding and checksum.
    pub fn parse(raw: &str, expected: KeyEnvironment) -> Result<Self, AuthFailure> {
        if raw.len() != KEY_LENGTH || !raw.is_ascii() {
            return Err(AuthFailure::Malformed);
        }
        let (prefix, rest) = raw.split_at(ENV_PREFIX_CHARS);
        let (_, env) = kind_and_environment(prefix).ok_or(AuthFailure::Malformed)?;
        let (secret, given_checksum) = rest.split_at(SECRET_CHARS);
        let decoded = URL_SAFE_NO_PAD
            .decode(secret)
            .map_err(|_| AuthFailure::Malformed)?;
        if decoded.len() != SECRET_BYTES || !is_base64url(given_checksum) {
            return Err(AuthFailure::Malformed);
        }
        if checksum(&raw[..ENV_PREFIX_CHARS + SECRET_CHARS]) != given_checksum {
            return Err(AuthFailure::BadChecksum);
        }
        if env != expected {
            return Err(AuthFailure::WrongEnvironment);
        }
        Ok(ApiKey {
            text: SecretString::from(raw.to_owned()),
        })
    }

    /// The key's text, for the single response that hands a new key to its owner.
    pub fn expose_once(&self) -> &str {
        self.text.expose_secret()
    }

    pub fn digest(&self) -> KeyDigest {
        KeyDigest(Sha256::digest(self.text.expose_secret().as_bytes()).into())
    }

    pub fn display_prefix(&self) -> KeyPrefix {
        KeyPrefix(self.text.expose_secret()[..ENV_PREFIX_CHARS + DISPLAY_SECRET_CHARS].to_owned())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.display_prefix())
    }
}

fn checksum(body: &str) -> String {
    URL_SAFE_NO_PAD.encode(crc32fast::hash(body.as_bytes()).to_be_bytes())
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// SHA-256 of a key: what the clients table stores and looks keys up by. Not a secret in the
/// sense a key is, but still kept out of logs and `Debug` output.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A digest read back from storage: 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(KeyDigest(bytes))
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest(<redacted>)")
    }
}

/// The first characters of a key (`sk_test_AbCd`): safe to log and to show in support tools.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A prefix read back from storage: a kind and environment prefix and four key
    /// characters.
    pub fn parse(value: &str) -> Option<Self> {
        let (start, rest) = value.split_at_checked(ENV_PREFIX_CHARS)?;
        (kind_and_environment(start).is_some()
            && rest.len() == DISPLAY_SECRET_CHARS
            && is_base64url(rest))
        .then(|| KeyPrefix(value.to_owned()))
    }

    fn kind_and_environment(&self) -> (KeyKind, KeyEnvironment) {
        kind_and_environment(&self.0[..ENV_PREFIX_CHARS])
            .expect("a prefix is only built from a key or parsed")
    }

    /// The environment whose keys start with this prefix.
    pub fn environment(&self) -> KeyEnvironment {
        self.kind_and_environment().1
    }

    /// The kind of the keys that start with this prefix.
    pub fn kind(&self) -> KeyKind {
        self.kind_and_environment().0
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn new_key() -> ApiKey {
        ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap()
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = new_key();
        let text = key.expose_once();
        assert_eq!(text.len(), KEY_LENGTH);
        assert_eq!(KEY_LENGTH, 57);
        assert!(text.starts_with("sk_test_"));
        assert!(is_base64url(&text[ENV_PREFIX_CHARS..]));
        let live = ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Live).unwrap();
        assert!(live.expose_once().starts_with("sk_live_"));
    }

    #[test]
    fn each_kind_and_environment_has_its_prefix_and_only_those_read_back() {
        use crate::domain::KeyKind::{Restricted, Secret};
        use KeyEnvironment::{Live, Test};
        let prefixes = [
            (Secret, Test, "sk_test_"),
            (Secret, Live, "sk_live_"),
            (Restricted, Test, "rk_test_"),
            (Restricted, Live, "rk_live_"),
        ];
        for (kind, env, prefix) in prefixes {
            assert_eq!(key_prefix(kind, env), prefix);
            assert_eq!(prefix.len(), ENV_PREFIX_CHARS);
            assert_eq!(kind_and_environment(prefix), Some((kind, env)));
        }
        for other in [
            "sk_test", "sk__test", "xk_test_", "sk_tesx_", "sktest__", "_sk_test",
        ] {
            assert_eq!(kind_and_environment(other), None, "{other}");
        }
    }

    #[test]
    fn generated_keys_round_trip_through_parse() {
        for _ in 0..100 {
            let key = new_key();
            let parsed = ApiKey::parse(key.expose_once(), KeyEnvironment::Test).unwrap();
            assert_eq!(parsed.digest(), key.digest());
        }
    }

    #[test]
    fn keys_are_unique() {
        let a = new_key();
        let b = new_key();
        assert_ne!(a.expose_once(), b.expose_once());
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = new_key();
        let text = key.expose_once().to_owned();
        for position in ENV_PREFIX_CHARS..KEY_LENGTH {
            let mut bytes = text.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let mutated = String::from_utf8(bytes).unwrap();
            let result = ApiKey::parse(&mutated, KeyEnvironment::Test);
            assert!(
                matches!(
                    result,
                    Err(AuthFailure::BadChecksum) | Err(AuthFailure::Malformed)
                ),
                "position {position} accepted"
            );
        }
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let key = new_key();
        let text = key.expose_once();
        let cases = [
            String::new(),
            text[..KEY_LENGTH - 1].to_owned(),
            format!("{text}A"),
            text.replace("sk_test_", "sk_tesx_"),
            format!("{}é{}", &text[..20], &text[22..]),
            format!("{} {}", &text[..20], &text[21..]),
        ];
        for case in cases {
            assert_eq!(
                ApiKey::parse(&case, KeyEnvironment::Test).unwrap_err(),
                AuthFailure::Malformed,
                "{case:?}"
            );
        }
    }

    #[test]
    fn non_canonical_base64_is_rejected() {
        // The 43rd character carries only 4 bits; a variant with non-zero padding bits decodes
        // to the same bytes and must not count as the same key.
        let key = new_key();
        let text = key.expose_once();
        let last = ENV_PREFIX_CHARS + SECRET_CHARS - 1;
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet
            .iter()
            .position(|&c| c == text.as_bytes()[last])
            .unwrap();
        let mut bytes = text.as_bytes().to_vec();
        bytes[last] = alphabet[index | 1];
        if bytes[last] != text.as_bytes()[last] {
            let body = String::from_utf8(bytes[..last + 1].to_vec()).unwrap();
            let forged = format!("{body}{}", checksum(&body));
            assert_eq!(
                ApiKey::parse(&forged, KeyEnvironment::Test).unwrap_err(),
                AuthFailure::Malformed
            );
        }
    }

    #[test]
    fn keys_of_another_environment_are_refused() {
        let live = ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Live).unwrap();
        assert_eq!(
            ApiKey::parse(live.expose_once(), KeyEnvironment::Test).unwrap_err(),
            AuthFailure::WrongEnvironment
        );
    }

    #[test]
    fn digest_is_sha256_of_the_key_text() {
        let key = new_key();
        let expected: [u8; 32] = Sha256::digest(key.expose_once().as_bytes()).into();
        assert_eq!(key.digest(), KeyDigest(expected));
        let hex = key.digest().to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(KeyDigest::from_hex(&hex), Some(key.digest()));
        // Known answer: SHA-256("abc").
        let abc = KeyDigest(Sha256::digest(b"abc").into());
        assert_eq!(
            abc.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let key = new_key();
        let text = key.expose_once().to_owned();
        let debug = format!("{key:?} {:?}", key.digest());
        assert!(!debug.contains(&text[ENV_PREFIX_CHARS + DISPLAY_SECRET_CHARS..]));
        assert!(!debug.contains(&key.digest().to_hex()));
        assert!(debug.contains(key.display_prefix().as_str()));
        assert_eq!(key.display_prefix().as_str().len(), 12);
    }

    #[test]
    fn prefixes_read_back_from_storage_are_checked() {
        let key = new_key();
        let prefix = key.display_prefix();
        assert_eq!(KeyPrefix::parse(prefix.as_str()), Some(prefix.clone()));
        assert_eq!(prefix.environment(), KeyEnvironment::Test);
        for bad in [
            "",
            "sk_test_",
            "sk_test_AbC",
            "sk_test_AbCde",
            "sk_prod_AbCd",
            "sk_test_Ab!d",
        ] {
            assert_eq!(KeyPrefix::parse(bad), None, "{bad}");
        }
        assert_eq!(KeyDigest::from_hex("zz"), None);
        assert_eq!(KeyDigest::from_hex(&"g".repeat(64)), None);
    }

    /// A change to a valid key, and what parsing must then say.
    #[derive(Debug, Clone)]
    enum Mutation {
        /// None: the key parses.
        Keep,
        /// One character of the secret or checksum replaced by another of the alphabet: the
        /// checksum catches every single-character change.
        Replace {
            at: usize,
            with: u8,
        },
        /// The same, with the checksum recomputed: a different key, still well formed
        /// (positions before the secret's last character, which carries padding bits).
        ReplaceAndReseal {
            at: usize,
            with: u8,
        },
        /// The other environment's prefix, resealed: well formed, but not this stack's.
        OtherEnvironment,
        /// One character removed or one added.
        Truncate,
        Extend(u8),
        /// A non-ASCII character in place of one ASCII character.
        NonAscii {
            at: usize,
        },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let symbol = proptest::sample::select(ALPHABET);
        prop_oneof![
            Just(Mutation::Keep),
            (ENV_PREFIX_CHARS..KEY_LENGTH, symbol.clone())
                .prop_map(|(at, with)| Mutation::Replace { at, with }),
            (
                ENV_PREFIX_CHARS..ENV_PREFIX_CHARS + SECRET_CHARS - 1,
                symbol.clone()
            )
                .prop_map(|(at, with)| Mutation::ReplaceAndReseal { at, with }),
            Just(Mutation::OtherEnvironment),
            Just(Mutation::Truncate),
            symbol.prop_map(Mutation::Extend),
            (0..KEY_LENGTH).prop_map(|at| Mutation::NonAscii { at }),
        ]
    }

    fn reseal(body: &str) -> String {
        format!("{body}{}", checksum(body))
    }

    /// Near-valid keys: a real key with at most one change. Reports, and bounds from below,
    /// the share of cases that parse, so the property cannot pass by never reaching it.
    #[test]
    fn near_valid_keys_parse_exactly_when_they_should() {
        use proptest::test_runner::{Config, TestRunner};
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            ..Config::default()
        });
        let accepted = std::cell::Cell::new(0u32);
        let refused = std::cell::Cell::new(0u32);
        let strategy = (proptest::array::uniform32(any::<u8>()), mutation());
        runner
            .run(&strategy, |(secret, mutation)| {
                let mut body = String::from("sk_test_");
                URL_SAFE_NO_PAD.encode_string(secret, &mut body);
                let valid = reseal(&body);
                let replaced = |text: &str, at: usize, with: u8| {
                    let mut bytes = text.as_bytes().to_vec();
                    bytes[at] = with;
                    String::from_utf8(bytes).unwrap()
                };
                let (candidate, expected): (String, Result<(), &[AuthFailure]>) = match mutation {
                    Mutation::Keep => (valid.clone(), Ok(())),
                    Mutation::Replace { at, with } if valid.as_bytes()[at] == with => {
                        (valid.clone(), Ok(()))
                    }
                    Mutation::Replace { at, with } => (
                        replaced(&valid, at, with),
                        Err(&[AuthFailure::BadChecksum, AuthFailure::Malformed]),
                    ),
                    Mutation::ReplaceAndReseal { at, with } => {
                        (reseal(&replaced(&body, at, with)), Ok(()))
                    }
                    Mutation::OtherEnvironment => (
                        reseal(&body.replacen("sk_test_", "sk_live_", 1)),
                        Err(&[AuthFailure::WrongEnvironment]),
                    ),
                    Mutation::Truncate => (
                        valid[..KEY_LENGTH - 1].to_owned(),
                        Err(&[AuthFailure::Malformed]),
                    ),
                    Mutation::Extend(with) => (
                        format!("{valid}{}", with as char),
                        Err(&[AuthFailure::Malformed]),
                    ),
                    Mutation::NonAscii { at } => (
                        format!("{}é{}", &valid[..at], &valid[at + 1..]),
                        Err(&[AuthFailure::Malformed]),
                    ),
                };
                match (ApiKey::parse(&candidate, KeyEnvironment::Test), expected) {
                    (Ok(key), Ok(())) => {
                        accepted.set(accepted.get() + 1);
                        prop_assert_eq!(key.expose_once(), candidate.as_str());
                        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
                        prop_assert_eq!(key.digest(), KeyDigest(digest));
                        let prefix = key.display_prefix();
                        prop_assert_eq!(prefix.as_str(), &candidate[..12]);
                    }
                    (Err(failure), Err(allowed)) => {
                        refused.set(refused.get() + 1);
                        prop_assert!(allowed.contains(&failure), "{failure:?} not in {allowed:?}");
                    }
                    (outcome, expected) => {
                        prop_assert!(
                            false,
                            "{candidate:?}: got {outcome:?}, expected {expected:?}"
                        )
                    }
                }
                Ok(())
            })
            .unwrap();
        let (accepted, refused) = (accepted.get(), refused.get());
        let share = f64::from(accepted) / f64::from(accepted + refused);
        let percent = share * 100.0;
        println!(
            "near-valid keys: {accepted} accepted, {refused} refused ({percent:.0}% accepted)"
        );
        assert!(share > 0.2 && share < 0.8, "accepted share {share}");
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(raw in ".{0,80}") {
            if let Ok(key) = ApiKey::parse(&raw, KeyEnvironment::Test) {
                prop_assert_eq!(key.expose_once(), raw.as_str());
            }
        }
    }
}
