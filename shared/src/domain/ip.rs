//! Where a key may be used from: a list of IPv4 and IPv6 ranges (CIDR), checked against the
//! source address API Gateway saw.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::invalid::InvalidValue;
use super::text::echoed;

/// One range of addresses. A bare address is the range of just it (/32 or /128), and an
/// IPv4-mapped IPv6 range (`::ffff:192.0.2.0/120`) is the IPv4 range it maps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpRange(IpNet);

impl IpRange {
    /// `192.0.2.0/24`, `2001:db8::/32`, `192.0.2.7`. A range with host bits set
    /// (`192.0.2.7/24`) is refused: it does not say which range was meant.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let invalid = |why: &str| {
            InvalidValue::new(
                "allowed_ips",
                format!(
                    "allowed_ips: {} {why}",
                    serde_json::Value::from(echoed(text))
                ),
            )
        };
        let net = match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(address) => IpNet::from(address),
                Err(_) => {
                    return Err(invalid(
                        "is not an IPv4 or IPv6 address or range (CIDR, such as 192.0.2.0/24).",
                    ))
                }
            },
        };
        if net.trunc() != net {
            return Err(invalid(&format!(
                "has host bits set: the range is {}.",
                net.trunc()
            )));
        }
        Ok(IpRange(canonical(net)))
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&address.to_canonical())
    }

    /// Whether every address of `self` is in `other`.
    pub fn is_within(&self, other: &IpRange) -> bool {
        other.0.contains(&self.0)
    }
}

/// An IPv4-mapped IPv6 range as the IPv4 range it maps, when it maps one whole.
fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpRange({})", self.0)
    }
}

impl Serialize for IpRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// The ranges a key works from; empty: anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IpAllowList(Vec<IpRange>);

impl IpAllowList {
    /// At most this many ranges per key: enough for a client's egress ranges, and a bound on
    /// the key item that every request reads.
    pub const MAX_RANGES: usize = 16;

    /// Ranges as a request sends them (duplicates folded, kept in the order given).
    pub fn parse<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidValue> {
        let mut ranges: Vec<IpRange> = Vec::new();
        for text in texts {
            let range = IpRange::parse(text)?;
            if !ranges.contains(&range) {
                ranges.push(range);
            }
            if ranges.len() > Self::MAX_RANGES {
                return Err(InvalidValue::new(
                    "allowed_ips",
                    format!("allowed_ips holds at most {} ranges.", Self::MAX_RANGES),
                ));
            }
        }
        Ok(IpAllowList(ranges))
    }

    /// No limit: the key works from anywhere.
    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[IpRange] {
        &self.0
    }

    /// Whether a request from `source` may use the key. A limited key used where the
    /// source is unknown is refused.
    pub fn admits(&self, source: Option<IpAddr>) -> bool {
        self.is_open()
            || source.is_some_and(|address| self.0.iter().any(|range| range.contains(address)))
    }

    /// Whether every address `self` admits, `other` admits too.
    pub fn is_within(&self, other: &IpAllowList) -> bool {
        other.is_open()
            || (!self.is_open()
                && self
                    .0
                    .iter()
                    .all(|range| other.0.iter().any(|outer| range.is_within(outer))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(texts: &[&str]) -> IpAllowList {
        IpAllowList::parse(texts.iter().copied()).unwrap()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn ranges_parse_bare_addresses_and_refuse_host_bits() {
        assert_eq!(
            IpRange::parse("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(
            IpRange::parse("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            IpRange::parse("192.0.2.0/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            IpRange::parse("::ffff:192.0.2.0/120").unwrap().to_string(),
            "192.0.2.0/24",
            "an IPv4-mapped range is the IPv4 range"
        );
        let err = IpRange::parse("192.0.2.7/24").unwrap_err();
        assert_eq!(err.field, "allowed_ips");
        assert!(err.message.contains("192.0.2.0/24"), "{}", err.message);
        for bad in [
            "",
            "192.0.2",
            "192.0.2.0/33",
            "localhost",
            "192.0.2.0/",
            "::/129",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_list_admits_its_ranges_and_ipv4_mapped_addresses_as_ipv4() {
        let office = list(&["203.0.113.0/24", "2001:db8::/32"]);
        assert!(office.admits(ip("203.0.113.9")));
        assert!(office.admits(ip("::ffff:203.0.113.9")));
        assert!(office.admits(ip("2001:db8::7")));
        assert!(!office.admits(ip("198.51.100.1")));
        assert!(!office.admits(None), "a limited key needs a known source");
        assert!(IpAllowList::default().admits(None));
        let everywhere = list(&["0.0.0.0/0", "::/0"]);
        assert!(everywhere.admits(ip("127.0.0.1")) && everywhere.admits(ip("::1")));
    }

    #[test]
    fn within_means_every_address_of_one_is_in_the_other() {
        let office = list(&["203.0.113.0/24"]);
        assert!(list(&["203.0.113.128/25", "203.0.113.7"]).is_within(&office));
        assert!(!list(&["203.0.112.0/23"]).is_within(&office));
        assert!(
            !IpAllowList::default().is_within(&office),
            "anywhere is not within a range"
        );
        assert!(office.is_within(&IpAllowList::default()));
        assert!(IpAllowList::default().is_within(&IpAllowList::default()));
    }

    #[test]
    fn lists_are_bounded_and_fold_duplicates() {
        assert_eq!(list(&["192.0.2.1", "192.0.2.1/32"]).ranges().len(), 1);
        let many: Vec<String> = (0..=IpAllowList::MAX_RANGES)
            .map(|n| format!("192.0.2.{n}"))
            .collect();
        assert!(IpAllowList::parse(many.iter().map(String::as_str)).is_err());
    }
}
