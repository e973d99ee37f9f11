//! What a key may do: its permissions, and the kinds of key that carry them.
//!
//! Four permissions, two per resource; `write` implies `read` of the same resource, so every
//! set here holds the implied one too and lists it. A secret key holds all four; a restricted
//! key a non-empty set of them.

use std::fmt;

use serde::Serialize;

use super::invalid::InvalidValue;
use super::text::echoed;

string_enum!(
    /// One thing a key may do. Declared in the order answers list permissions in, and the
    /// order in which a refusal names the first one missing.
    Permission {
        PaymentsRead = "payments:read",
        PaymentsWrite = "payments:write",
        KeysRead = "keys:read",
        KeysWrite = "keys:write",
    }
);

impl Permission {
    /// The permission this one implies (write implies read of the same resource).
    fn implied(self) -> Option<Permission> {
        match self {
            Permission::PaymentsWrite => Some(Permission::PaymentsRead),
            Permission::KeysWrite => Some(Permission::KeysRead),
            Permission::PaymentsRead | Permission::KeysRead => None,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of permissions, always closed under "write implies read".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

impl Permissions {
    /// Everything: what a secret key holds.
    pub const ALL: Permissions = Permissions(0b1111);
    pub const NONE: Permissions = Permissions(0);

    /// The set holding `permissions` and what they imply.
    pub fn of(permissions: impl IntoIterator<Item = Permission>) -> Self {
        Permissions(
            permissions
                .into_iter()
                .flat_map(|p| std::iter::once(p).chain(p.implied()))
                .fold(0, |bits, p| bits | p.bit()),
        )
    }

    /// Permission names as a request sends them: each known, at least one, in any order
    /// and with repeats.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidValue> {
        let mut set = Vec::new();
        for name in names {
            set.push(Permission::parse(name).ok_or_else(|| {
                InvalidValue::new(
                    "permissions",
                    format!(
                        "Unknown permission {}: permissions are {}.",
                        serde_json::Value::from(echoed(name)),
                        Permission::ALL
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?);
        }
        if set.is_empty() {
            return Err(InvalidValue::new(
                "permissions",
                "permissions must name at least one permission.",
            ));
        }
        Ok(Permissions::of(set))
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// Whether every permission of `self` is in `other`.
    pub fn is_within(self, other: Permissions) -> bool {
        self.0 & !other.0 == 0
    }

    /// The first permission of `needed`, in declaration order, that `self` lacks.
    pub fn first_missing(self, needed: Permissions) -> Option<Permission> {
        needed.iter().find(|&p| !self.contains(p))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions held, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |&p| self.contains(p))
    }
}

impl From<Permission> for Permissions {
    fn from(permission: Permission) -> Self {
        Permissions::of([permission])
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A list of names, in declaration order: `["payments:read", "payments:write"]`.
impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

string_enum!(
    /// What a key is: a secret key holds every permission (the account's own, from
    /// `POST /accounts` or an operator's rotation); a restricted key only those it was given.
    KeyKind {
        Secret = "secret",
        Restricted = "restricted",
    }
);

impl KeyKind {
    /// The first characters of every key of this kind: `sk` or `rk`.
    pub fn code(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk",
            KeyKind::Restricted => "rk",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Permission::*;

    #[test]
    fn write_implies_read_and_sets_list_in_order() {
        let set = Permissions::of([KeysWrite, PaymentsRead]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [PaymentsRead, KeysRead, KeysWrite]
        );
        assert_eq!(
            serde_json::to_value(set).unwrap(),
            serde_json::json!(["payments:read", "keys:read", "keys:write"])
        );
        assert_eq!(
            Permissions::of(Permission::ALL.iter().copied()),
            Permissions::ALL
        );
        assert_eq!(
            Permissions::of([PaymentsWrite]),
            Permissions::of([PaymentsRead, PaymentsWrite])
        );
    }

    #[test]
    fn the_first_missing_permission_is_named_in_order() {
        let reader = Permissions::of([PaymentsRead]);
        assert_eq!(
            reader.first_missing(PaymentsWrite.into()),
            Some(PaymentsWrite)
        );
        assert_eq!(reader.first_missing(PaymentsRead.into()), None);
        assert_eq!(
            reader.first_missing(Permissions::ALL),
            Some(PaymentsWrite),
            "payments:write comes before keys:read"
        );
        assert!(reader.is_within(Permissions::ALL));
        assert!(!Permissions::ALL.is_within(reader));
        assert!(Permissions::NONE.is_within(reader));
    }

    #[test]
    fn requests_name_known_permissions_at_least_one() {
        assert_eq!(
            Permissions::parse(["keys:write", "keys:write"]).unwrap(),
            Permissions::of([KeysRead, KeysWrite])
        );
        for bad in [
            &[][..],
            &["payments:delete"],
            &["Payments:Read"],
            &["keys:read", ""],
        ] {
            let err = Permissions::parse(bad.iter().copied()).unwrap_err();
            assert_eq!(err.field, "permissions", "{bad:?}");
        }
    }

    fn permissions() -> impl Strategy<Value = Permissions> {
        (0u8..16).prop_map(|bits| {
            Permissions::of(
                Permission::ALL
                    .iter()
                    .copied()
                    .filter(|p| bits & p.bit() != 0),
            )
        })
    }

    proptest! {
        /// Closed under implication, and `is_within` agrees with `first_missing`.
        #[test]
        fn sets_are_closed_and_comparisons_agree(a in permissions(), b in permissions()) {
            for p in a.iter() {
                if let Some(implied) = p.implied() {
                    prop_assert!(a.contains(implied));
                }
            }
            prop_assert_eq!(a.is_within(b), b.first_missing(a).is_none());
            prop_assert_eq!(Permissions::of(a.iter()), a);
        }
    }
}
