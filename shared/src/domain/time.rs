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
        let mut out = String::with_capacity(24);
        push_rfc3339(&mut out, self.0, 3);
        out
    }
}

/// `at` in UTC as RFC 3339 with `digits` (1 to 9) digits of fraction, appended to `out`:
/// `2026-12-07T05:37:17.067Z` for 3. Written digit by digit rather than through a format
/// description: every request renders a few of these.
pub fn push_rfc3339(out: &mut String, at: OffsetDateTime, digits: u32) {
    let digits = digits.clamp(1, 9);
    let at = at.to_offset(time::UtcOffset::UTC);
    let (year, month, day) = at.to_calendar_date();
    if year < 0 {
        out.push('-');
    }
    push_digits(out, year.unsigned_abs(), 4);
    out.push('-');
    push_digits(out, u32::from(u8::from(month)), 2);
    out.push('-');
    push_digits(out, u32::from(day), 2);
    out.push('T');
    push_digits(out, u32::from(at.hour()), 2);
    out.push(':');
    push_digits(out, u32::from(at.minute()), 2);
    out.push(':');
    push_digits(out, u32::from(at.second()), 2);
    out.push('.');
    push_digits(out, at.nanosecond() / 10u32.pow(9 - digits), digits);
    out.push('Z');
}

/// `value` in decimal, zero-padded to at least `width` digits.
fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut unit = 10u32.pow(width - 1);
    while value / unit >= 10 {
        unit *= 10;
    }
    while unit > 0 {
        out.push(char::from(b'0' + (value / unit % 10) as u8));
        unit /= 10;
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
    fn the_digit_writer_agrees_with_a_format_description() {
        use time::macros::format_description;
        let millis = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let micros = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        // Every day of 400 years (leap days and century years included), each at a
        // different time of day and fraction, and the ends of the calendar.
        let mut instants: Vec<OffsetDateTime> = (0..146_097i128)
            .map(|day| {
                let nanos = (day * 86_400 + day * 7_919 % 86_400) * 1_000_000_000
                    + day * 123_457 % 1_000_000_000;
                OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap()
            })
            .collect();
        instants.push(time::macros::datetime!(0000-01-01 00:00:00 UTC));
        instants.push(time::macros::datetime!(9999-12-31 23:59:59.999999999 UTC));
        instants.push(time::macros::datetime!(2026-12-07 07:37:17.067924 +02:00));
        for at in instants {
            let (mut three, mut six) = (String::new(), String::new());
            push_rfc3339(&mut three, at, 3);
            push_rfc3339(&mut six, at, 6);
            let utc = at.to_offset(time::UtcOffset::UTC);
            assert_eq!(three, utc.format(millis).unwrap(), "{at}");
            assert_eq!(six, utc.format(micros).unwrap(), "{at}");
        }
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
