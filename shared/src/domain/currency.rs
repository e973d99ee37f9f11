//! ISO 4217 alphabetic currency codes.

use std::fmt;

use super::invalid::InvalidValue;

/// Active ISO 4217 codes (list published 2024). Fund codes, precious metals and testing codes
/// (XAG, XAU, XTS, XXX, ...) are deliberately absent: they are not payment currencies.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD",
    "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF",
    "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN",
    "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD",
    "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES",
    "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN",
    "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP",
    "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK",
    "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
    "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// A currency the API accepts: always one of [`ISO_4217`], always upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Currency {
    /// Accepts a code in any letter case; unknown codes are refused.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let upper = raw.to_ascii_uppercase();
        ISO_4217
            .binary_search(&upper.as_str())
            .map(|i| Currency(ISO_4217[i]))
            .map_err(|_| {
                InvalidValue::new(
                    "currency",
                    "currency must be an ISO 4217 alphabetic code such as USD or EUR.",
                )
            })
    }

    pub fn code(self) -> &'static str {
        self.0
    }

    /// Every currency the API accepts, in code order.
    pub fn all() -> impl Iterator<Item = Currency> {
        ISO_4217.iter().map(|&code| Currency(code))
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_well_formed() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
        assert!(ISO_4217
            .iter()
            .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn any_case_in_upper_case_out() {
        for raw in ["usd", "USD", "uSd"] {
            assert_eq!(Currency::parse(raw).unwrap().code(), "USD");
        }
        assert_eq!(Currency::parse("jpy").unwrap().to_string(), "JPY");
    }

    #[test]
    fn unknown_and_malformed_codes_are_refused() {
        for raw in [
            "", "US", "USDD", "XXX", "XAU", "ABC", "usd ", " usd", "ÜSD", "US1",
        ] {
            let err = Currency::parse(raw).unwrap_err();
            assert_eq!(err.field, "currency", "{raw:?}");
        }
    }
}
