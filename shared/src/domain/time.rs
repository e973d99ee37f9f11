//! Instants and the time source. Handlers and key lifecycle take a [`Clock`] so tests can
//! move time (grace periods, expiry) without sleeping.

use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A UTC instant, rendered as RFC 3339 with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let millis = at.millisecond();
        Timestamp(
            at.replace_millisecond(millis)
                .expect("millisecond from the same instant"),
        )
    }

    /// An RFC 3339 date-time, at any offset, whose UTC instant falls in the years 0000 to
    /// 9999 (so that its rendering keeps its fixed width, and with it its sort order).
    pub fn parse(value: &str) -> Option<Self> {
        let at = OffsetDateTime::parse(value, &Rfc3339)
            .ok()?
            .checked_to_offset(time::UtcOffset::UTC)?;
        (0..=9999)
            .contains(&at.year())
            .then(|| Self::from_datetime(at))
    }

    /// `self + by`, or `None` past the end of the calendar.
    pub fn checked_plus(self, by: std::time::Duration) -> Option<Self> {
        let by = time::Duration::try_from(by).ok()?;
        self.0.checked_add(by).map(Self::from_datetime)
    }

    /// `self + by` for durations the service itself chooses (grace periods, retention).
    pub fn plus(self, by: std::time::Duration) -> Self {
        self.checked_plus(by)
            .expect("durations the service adds stay within the calendar")
    }

    /// `self - by`, or `None` before the start of the calendar.
    pub fn checked_minus(self, by: std::time::Duration) -> Option<Self> {
        let by = time::Duration::try_from(by).ok()?;
        self.0.checked_sub(by).map(Self::from_datetime)
    }

    /// `self - by` for durations the service itself chooses (the key-use interval).
    pub fn minus(self, by: std::time::Duration) -> Self {
        self.checked_minus(by)
            .expect("durations the service subtracts stay within the calendar")
    }

    /// The instant `millis` milliseconds after the Unix epoch (clocks that tests drive).
    pub fn from_unix_millis(millis: u64) -> Self {
        Self::from_datetime(
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .expect("milliseconds since 1970 within the calendar"),
        )
    }

    /// Milliseconds since the Unix epoch (0 for an instant before it).
    pub fn unix_millis(self) -> u64 {
        u64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    }

    /// Seconds since the Unix epoch (DynamoDB TTL attributes use this).
    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn to_rfc3339(self) -> String {
        const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        self.0
            .format(FORMAT)
            .expect("a UTC timestamp always formats")
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

/// Where "now" comes from: the system clock in the functions, a movable one in tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Timestamp::now))
    }

    /// A clock that reads its time from `now` (tests build movable clocks with this).
    pub fn from_fn(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now().to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        let ts = Timestamp::parse("2026-11-26T17:36:44.123456+02:00").unwrap();
        assert_eq!(ts.to_rfc3339(), "2026-11-26T15:36:44.123Z");
        let now = Timestamp::now().to_rfc3339();
        assert_eq!(Timestamp::parse(&now).unwrap().to_rfc3339(), now);
        assert_eq!(Timestamp::parse("yesterday"), None);
    }

    #[test]
    fn instants_outside_four_digit_utc_years_are_refused_not_a_panic() {
        assert_eq!(Timestamp::parse("9999-12-31T23:59:59-01:00"), None);
        assert_eq!(Timestamp::parse("0000-01-01T00:00:00+01:00"), None);
        let last = Timestamp::parse("9999-12-31T23:59:59.999+00:00").unwrap();
        assert_eq!(last.to_rfc3339(), "9999-12-31T23:59:59.999Z");
        let first = Timestamp::parse("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(first.to_rfc3339(), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn adding_past_the_calendar_is_refused_not_a_panic() {
        let ts = Timestamp::parse("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(ts.checked_plus(Duration::from_secs(86_400)), None);
        assert_eq!(ts.checked_plus(Duration::MAX), None);
        assert!(ts.checked_plus(Duration::ZERO).is_some());
    }

    #[test]
    fn a_clock_from_a_function_reads_it() {
        let fixed = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(Clock::from_fn(move || fixed).now(), fixed);
    }
}
