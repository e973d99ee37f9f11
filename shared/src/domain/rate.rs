//! Per-account request rate limits, and how one execution environment counts an account's
//! requests against its limit.
//!
//! Time runs in one-second windows (seconds since the Unix epoch, by the environment's
//! clock). An environment admits a request when its estimate of the account's requests in
//! the last second, with this one, stays within the limit. The estimate is a sliding window
//! over the last two fixed windows: the previous window's count, weighted by how much of it
//! the last second still covers, plus the current window's. Each count is what the
//! environment knows: the account's shared count as DynamoDB last answered it, plus the
//! requests this environment admitted since.
//!
//! An environment reports the requests it admitted to the shared count (one atomic `ADD`
//! that answers the new total) only when it has admitted [`RateLimit::report_step`]
//! unreported requests of the account, with at most one report in flight and at most one
//! started per [`RECONCILE_INTERVAL_MS`] per account. An account well within its limit
//! therefore costs no write at all in most requests; a busy one costs each environment at
//! most one write a second. Refused requests are never counted.
//!
//! The bound: each environment alone never admits more than the limit in one window (its
//! own admissions are part of its estimate), so in any one-second window an account gets at
//! most `E x limit` requests through `E` environments serving it at once, and exactly the
//! limit through one. Once the environments have reported, each counts the others' requests
//! too, and a sustained overload settles well below that bound (docs/data-model.md gives the
//! measured figures). Environments that each see fewer than half a report step per second
//! never report, so such a spread-out load is bounded only by `E x step / 2` a second.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::invalid::InvalidValue;

/// The length of a counting window.
pub const WINDOW_MS: u64 = 1000;

/// The least time between two reports of one account's requests by one environment.
pub const RECONCILE_INTERVAL_MS: u64 = 1000;

/// A request rate: at most this many requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RateLimit(u32);

impl RateLimit {
    /// Stripe's live-mode limit, and the stack's default unless `DefaultRateLimit` says
    /// otherwise.
    pub const DEFAULT: RateLimit = RateLimit(100);
    pub const MAX: u32 = 100_000;

    pub fn new(per_second: u64) -> Result<Self, InvalidValue> {
        match u32::try_from(per_second) {
            Ok(value @ 1..=Self::MAX) => Ok(RateLimit(value)),
            _ => Err(InvalidValue::new(
                "rate_limit",
                format!("a rate limit is 1 to {} requests per second.", Self::MAX),
            )),
        }
    }

    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let value = value.trim();
        let number = value
            .parse::<u64>()
            .map_err(|_| RateLimit::new(0).unwrap_err())?;
        RateLimit::new(number)
    }

    pub fn per_second(self) -> u32 {
        self.0
    }

    /// How many requests an environment admits before it reports them: a tenth of the
    /// limit (at least 1), so that reports cost at most one write per step of requests.
    pub fn report_step(self) -> u64 {
        u64::from(self.0).div_ceil(10)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.0)
    }
}

/// An account's rate limit as operators set it: the stack's default, or its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitSetting {
    Default,
    Own(RateLimit),
}

impl RateLimitSetting {
    pub fn of(own: Option<RateLimit>) -> Self {
        own.map_or(RateLimitSetting::Default, RateLimitSetting::Own)
    }

    pub fn own(self) -> Option<RateLimit> {
        match self {
            RateLimitSetting::Default => None,
            RateLimitSetting::Own(limit) => Some(limit),
        }
    }
}

/// `"default"`, or the number of requests per second.
impl Serialize for RateLimitSetting {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RateLimitSetting::Default => serializer.serialize_str("default"),
            RateLimitSetting::Own(limit) => limit.serialize(serializer),
        }
    }
}

/// Requests of one account admitted by this environment, to add to the account's shared
/// count of `window`: one write, so the requests still unreported from the window before go
/// into this one (`earlier` of them). Other environments see those a little late, which errs
/// towards refusing; this environment, which counted them already, takes them out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub window: u64,
    pub count: u64,
    pub earlier: u64,
}

/// What the counts say about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted (and counted); with a report to send, when one is due.
    Admit(Option<Report>),
    /// Over the limit: not counted. Retrying after `retry_after` finds room, unless other
    /// requests take it first.
    Refuse { retry_after: Duration },
}

/// One environment's counts of one account's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// The window `current` counts.
    window: u64,
    /// Best known count of the window before `window`.
    previous: u64,
    /// Best known count of `window`: the shared count last read, plus what this environment
    /// admitted since.
    current: u64,
    /// Admitted here and not yet reported, in the previous and the current window.
    unreported_previous: u64,
    unreported_current: u64,
    reporting: bool,
    last_report_ms: Option<u64>,
}

impl RequestCounts {
    /// Moves the counts to `window`. A clock that steps back keeps the later window.
    fn roll(&mut self, window: u64) {
        if window <= self.window {
            return;
        }
        if window == self.window + 1 {
            self.previous = self.current;
            self.unreported_previous = self.unreported_current;
        } else {
            // Older requests no longer weigh on the last second, and are not worth a report.
            self.previous = 0;
            self.unreported_previous = 0;
        }
        self.current = 0;
        self.unreported_current = 0;
        self.window = window;
    }

    /// Decides one request at `now_ms` (milliseconds since the Unix epoch), counting it when
    /// it is admitted.
    pub fn decide(&mut self, now_ms: u64, limit: RateLimit) -> Decision {
        self.roll(now_ms / WINDOW_MS);
        let into = if now_ms / WINDOW_MS == self.window {
            now_ms % WINDOW_MS
        } else {
            0
        };
        let limit_count = u64::from(limit.per_second());
        if !has_room(self.previous, self.current, into, limit_count) {
            return Decision::Refuse {
                retry_after: Duration::from_millis(self.wait_ms(into, limit_count)),
            };
        }
        self.current += 1;
        self.unreported_current += 1;
        let unreported = self.unreported_previous + self.unreported_current;
        let due = !self.reporting
            && unreported >= limit.report_step()
            && self
                .last_report_ms
                .is_none_or(|at| now_ms.saturating_sub(at) >= RECONCILE_INTERVAL_MS);
        if !due {
            return Decision::Admit(None);
        }
        let report = Report {
            window: self.window,
            count: unreported,
            earlier: self.unreported_previous,
        };
        self.reporting = true;
        self.last_report_ms = Some(now_ms);
        self.unreported_previous = 0;
        self.unreported_current = 0;
        Decision::Admit(Some(report))
    }

    /// The shared count of `report.window` is `total` once `report` was added: the other
    /// environments' reported requests join this environment's counts.
    pub fn reported(&mut self, report: Report, total: u64) {
        self.reporting = false;
        // This environment's own requests of the window before are in `previous` already.
        let total = total.saturating_sub(report.earlier);
        if report.window == self.window {
            self.current = self.current.max(total + self.unreported_current);
        } else if report.window + 1 == self.window {
            self.previous = self.previous.max(total + self.unreported_previous);
        }
    }

    /// `report` may not have reached the shared count: it is sent again with the next one,
    /// while its window still weighs on the last second. (If it did arrive, those requests
    /// count twice, which errs towards refusing, never towards admitting.)
    pub fn not_reported(&mut self, report: Report) {
        self.reporting = false;
        let current = report.count - report.earlier;
        if report.window == self.window {
            self.unreported_previous += report.earlier;
            self.unreported_current += current;
        } else if report.window + 1 == self.window {
            self.unreported_previous += current;
        }
    }

    /// Whether these counts no longer affect any decision or report at `now_ms`.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        !self.reporting && now_ms / WINDOW_MS > self.window + 1
    }

    /// Milliseconds from `into` the current window until, with no more admissions, the
    /// estimate has room for one request.
    fn wait_ms(&self, into: u64, limit: u64) -> u64 {
        let to_next = WINDOW_MS - into;
        if let Some(at) = first_room(self.previous, self.current, limit) {
            at.saturating_sub(into)
        } else if let Some(at) = first_room(self.current, 0, limit) {
            to_next + at
        } else {
            to_next + WINDOW_MS
        }
    }
}

/// Whether a window that has `current` requests, `into` milliseconds after a window of
/// `previous`, has room for one more within `limit` a second. In thousandths of a request,
/// so that the arithmetic is exact.
fn has_room(previous: u64, current: u64, into: u64, limit: u64) -> bool {
    let estimate = previous * (WINDOW_MS - into) + current * WINDOW_MS;
    estimate + WINDOW_MS <= limit * WINDOW_MS
}

/// The first millisecond of a window (of `current` requests, after one of `previous`) with
/// room for one more request, if any.
fn first_room(previous: u64, current: u64, limit: u64) -> Option<u64> {
    let spare = limit.checked_sub(current + 1)? * WINDOW_MS;
    if previous == 0 {
        return Some(0);
    }
    // previous x (WINDOW - into) <= spare, for the least `into`.
    let into = WINDOW_MS.saturating_sub(spare / previous);
    (into < WINDOW_MS).then_some(into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limit(n: u64) -> RateLimit {
        RateLimit::new(n).unwrap()
    }

    /// Admissions of `n` requests at `at_ms`, and the reports they made.
    fn burst(
        counts: &mut RequestCounts,
        at_ms: u64,
        n: u64,
        rate: RateLimit,
    ) -> (u64, Vec<Report>) {
        let mut admitted = 0;
        let mut reports = vec![];
        for _ in 0..n {
            if let Decision::Admit(report) = counts.decide(at_ms, rate) {
                admitted += 1;
                reports.extend(report);
            }
        }
        (admitted, reports)
    }

    #[test]
    fn limits_are_one_to_the_maximum() {
        assert!(RateLimit::new(0).is_err());
        assert!(RateLimit::new(u64::from(RateLimit::MAX) + 1).is_err());
        assert!(RateLimit::new(u64::MAX).is_err());
        assert_eq!(RateLimit::new(1).unwrap().per_second(), 1);
        assert_eq!(RateLimit::parse(" 250 ").unwrap().per_second(), 250);
        for bad in ["", "-1", "1.5", "ten", "0"] {
            assert_eq!(
                RateLimit::parse(bad).unwrap_err().field,
                "rate_limit",
                "{bad}"
            );
        }
        assert_eq!(RateLimit::DEFAULT.per_second(), 100);
        assert_eq!(limit(1).report_step(), 1);
        assert_eq!(limit(10).report_step(), 1);
        assert_eq!(limit(11).report_step(), 2);
        assert_eq!(limit(100).report_step(), 10);
        assert_eq!(serde_json::to_value(limit(7)).unwrap(), 7);
        let own = RateLimitSetting::of(Some(limit(7)));
        assert_eq!(serde_json::to_value(own).unwrap(), 7);
        assert_eq!(own.own(), Some(limit(7)));
        let default = RateLimitSetting::of(None);
        assert_eq!(serde_json::to_value(default).unwrap(), "default");
        assert_eq!(default.own(), None);
    }

    #[test]
    fn one_environment_admits_exactly_the_limit_in_a_fresh_window() {
        let mut counts = RequestCounts::default();
        let (admitted, _) = burst(&mut counts, 5_000_100, 30, limit(10));
        assert_eq!(admitted, 10);
    }

    #[test]
    fn refusals_are_not_counted_and_the_window_slides() {
        let rate = limit(10);
        let mut counts = RequestCounts::default();
        // 10 at the start of second 5, then 1000 refused ones.
        assert_eq!(burst(&mut counts, 5_000_000, 1010, rate).0, 10);
        // Half-way through the next second, the previous one still weighs 5: room for 5.
        assert_eq!(burst(&mut counts, 5_001_500, 100, rate).0, 5);
        // Two seconds on nothing weighs: the refused ones never counted.
        assert_eq!(burst(&mut counts, 5_003_000, 100, rate).0, 10);
    }

    #[test]
    fn retry_after_is_when_there_is_room_again() {
        let rate = limit(10);
        let mut counts = RequestCounts::default();
        burst(&mut counts, 5_000_000, 10, rate);
        // Full in its first window: room once it weighs 9 or less on the last second, 100 ms
        // into the next window.
        let Decision::Refuse { retry_after } = counts.decide(5_000_200, rate) else {
            panic!("over the limit");
        };
        assert_eq!(retry_after, Duration::from_millis(900));
        assert_eq!(
            counts.decide(5_001_000, rate),
            Decision::Refuse {
                retry_after: Duration::from_millis(100)
            }
        );
        assert!(matches!(
            counts.decide(5_001_099, rate),
            Decision::Refuse { .. }
        ));
        assert!(matches!(counts.decide(5_001_100, rate), Decision::Admit(_)));

        // A limit of 1: a full window leaves no room in the next at all.
        let mut counts = RequestCounts::default();
        burst(&mut counts, 7_000_000, 1, limit(1));
        let Decision::Refuse { retry_after } = counts.decide(7_000_400, limit(1)) else {
            panic!("over the limit");
        };
        assert_eq!(retry_after, Duration::from_millis(1600));
    }

    #[test]
    fn reports_are_due_every_step_and_at_most_once_a_second() {
        let rate = limit(100);
        let mut counts = RequestCounts::default();
        // Nine requests: below the step, nothing to report.
        let (_, reports) = burst(&mut counts, 1_000_000, 9, rate);
        assert!(reports.is_empty());
        // The tenth makes a report of all ten.
        let (_, reports) = burst(&mut counts, 1_000_010, 1, rate);
        assert_eq!(
            reports,
            vec![Report {
                window: 1000,
                count: 10,
                earlier: 0
            }]
        );
        // While it is in flight, and within the second after it, no other.
        let (_, reports) = burst(&mut counts, 1_000_020, 30, rate);
        assert!(reports.is_empty());
        counts.reported(
            Report {
                window: 1000,
                count: 10,
                earlier: 0,
            },
            10,
        );
        let (_, reports) = burst(&mut counts, 1_000_999, 1, rate);
        assert!(reports.is_empty());
        // A second after the last one, the 32 admitted since go in one report, 31 of them
        // from the window before.
        let (_, reports) = burst(&mut counts, 1_001_010, 1, rate);
        assert_eq!(
            reports,
            vec![Report {
                window: 1001,
                count: 32,
                earlier: 31
            }]
        );
        // Taken back, they are not counted twice: the 41 of the window before weigh 40.59
        // 10 ms into this one, with 1 here: room for 58 more (not 27).
        counts.reported(reports[0], 32);
        assert_eq!(burst(&mut counts, 1_001_010, 100, rate).0, 58);
    }

    #[test]
    fn other_environments_reports_count() {
        let rate = limit(100);
        let mut counts = RequestCounts::default();
        let (_, reports) = burst(&mut counts, 2_000_000, 10, rate);
        // The shared count says 95 of this window are taken, with our 10.
        counts.reported(reports[0], 95);
        assert_eq!(burst(&mut counts, 2_000_100, 50, rate).0, 5);
    }

    #[test]
    fn a_lost_report_is_sent_again_with_the_next() {
        let rate = limit(10);
        let mut counts = RequestCounts::default();
        let (_, reports) = burst(&mut counts, 3_000_000, 1, rate);
        counts.not_reported(reports[0]);
        let (_, reports) = burst(&mut counts, 3_001_000, 1, rate);
        assert_eq!(
            reports,
            vec![Report {
                window: 3001,
                count: 2,
                earlier: 1
            }]
        );
    }

    #[test]
    fn counts_go_stale_two_windows_on() {
        let mut counts = RequestCounts::default();
        let (_, reports) = burst(&mut counts, 4_000_000, 1, limit(5));
        // Never while a report is in flight: its answer has somewhere to go.
        assert!(!counts.is_stale(4_002_000));
        counts.reported(reports[0], 1);
        assert!(!counts.is_stale(4_001_999));
        assert!(counts.is_stale(4_002_000));
    }

    #[test]
    fn a_clock_that_steps_back_never_opens_room() {
        let rate = limit(5);
        let mut counts = RequestCounts::default();
        assert_eq!(burst(&mut counts, 9_000_000, 5, rate).0, 5);
        assert_eq!(burst(&mut counts, 8_000_000, 5, rate).0, 0);
    }

    /// `environments` environments each receive `per_environment` requests a second, evenly
    /// spaced (with their phases staggered), for `seconds`; a report's answer arrives
    /// `report_ms` after it was sent. Answers the requests admitted in each window.
    fn simulate(
        environments: u64,
        per_environment: u64,
        seconds: u64,
        report_ms: u64,
        rate: RateLimit,
    ) -> Vec<u64> {
        let start = 1_000_000_000;
        let mut counts = vec![RequestCounts::default(); environments as usize];
        let mut shared = std::collections::HashMap::<u64, u64>::new();
        // (answer time, environment, report)
        let mut in_flight: Vec<(u64, usize, Report)> = vec![];
        let mut admitted = vec![0u64; seconds as usize];
        let spacing = WINDOW_MS * 1000 / per_environment; // microseconds
        for tick in 0..seconds * per_environment {
            for env in 0..environments as usize {
                let now_us = start * 1000 + tick * spacing + env as u64 * spacing / environments;
                let now = now_us / 1000;
                in_flight.retain(|&(at, who, report)| {
                    if at > now {
                        return true;
                    }
                    let total = shared.entry(report.window).or_default();
                    *total += report.count;
                    counts[who].reported(report, *total);
                    false
                });
                if let Decision::Admit(report) = counts[env].decide(now, rate) {
                    admitted[((now - start) / WINDOW_MS) as usize] += 1;
                    if let Some(report) = report {
                        in_flight.push((now + report_ms, env, report));
                    }
                }
            }
        }
        admitted
    }

    #[test]
    fn several_environments_stay_within_the_bound_and_settle_near_the_limit() {
        let rate = limit(100);
        for environments in [1, 2, 4, 8, 16] {
            // Each environment alone gets three times the limit: a runaway client.
            let admitted = simulate(environments, 300, 10, 5, rate);
            let worst = *admitted.iter().max().unwrap();
            let settled = admitted[2..].iter().sum::<u64>() as f64 / 8.0;
            println!(
                "{environments:>2} environments: first second {}, worst {worst}, then {settled:.0}/s",
                admitted[0]
            );
            assert!(worst <= environments * 100, "{admitted:?}");
            // Never below the limit either: a client that is over it still gets all of it.
            assert!(settled >= 95.0, "{environments}: {admitted:?}");
        }
        // One environment: exactly the limit in the first second.
        assert_eq!(simulate(1, 300, 3, 5, rate)[0], 100);
    }

    proptest! {
        /// Whatever the arrival times and the other environments' totals, one environment
        /// never admits more than the limit in one window, and a refusal's wait is at most
        /// two windows.
        #[test]
        fn one_environment_never_admits_more_than_the_limit_in_a_window(
            rate in 1u64..50,
            steps in prop::collection::vec((0u64..400, 0u64..4, any::<bool>()), 1..300),
        ) {
            let rate = limit(rate);
            let mut counts = RequestCounts::default();
            let mut now = 10_000_000;
            let mut per_window = std::collections::HashMap::<u64, u64>::new();
            let mut pending: Option<Report> = None;
            for (advance, others, lose) in steps {
                now += advance;
                match counts.decide(now, rate) {
                    Decision::Admit(report) => {
                        *per_window.entry(now / WINDOW_MS).or_default() += 1;
                        if let Some(report) = report {
                            pending = Some(report);
                        }
                    }
                    Decision::Refuse { retry_after } => {
                        prop_assert!(retry_after >= Duration::from_millis(1));
                        prop_assert!(retry_after <= Duration::from_millis(2 * WINDOW_MS));
                        // Waiting that long, with nothing else admitted, finds room.
                        let later = now + retry_after.as_millis() as u64;
                        let mut waited = counts.clone();
                        prop_assert!(matches!(waited.decide(later, rate), Decision::Admit(_)));
                    }
                }
                if let Some(report) = pending.take() {
                    if lose {
                        counts.not_reported(report);
                    } else {
                        counts.reported(report, report.count + others);
                    }
                }
            }
            for (_, admitted) in per_window {
                prop_assert!(admitted <= u64::from(rate.per_second()));
            }
        }
    }
}
