//! Per-account request rate limits, and how the execution environments serving an account
//! share its limit.
//!
//! **Within one environment** an account's requests are counted in one-second windows
//! (seconds since the Unix epoch, by the environment's clock) and estimated over a sliding
//! second: the previous window's count weighted by how much of it the last second still
//! covers, plus the current window's. One environment never admits more than the limit in a
//! window (its own admissions are part of its estimate).
//!
//! **Across environments** (Lambda serves a busy account from several, and each route is a
//! function of its own) the environments share the limit by demand. Each publishes, in the
//! account's one shared item, how many requests a second it is offered, with a lease; the
//! answer to that write is every environment's latest claim. From it each environment takes a
//! max-min fair share of the limit ([`share`]): every claim up to an even split is granted
//! whole, the rest of the limit is split evenly among the larger ones, and what nobody claims
//! is lent evenly to all. Each environment then admits at the rate of its share (a token
//! bucket of [`BUCKET_MS`] of it, and at most [`BURST_PERCENT`] of it in any one second),
//! never above the limit. Claims carry room for the demand to vary ([`headroom`]), so an
//! account under its limit keeps every request while the shares still add up to the limit.
//!
//! An environment reports only when it has something to say: once it is offered a
//! sixty-fourth of the limit in a second (never for an account that barely uses it), a second
//! later (when its demand is first measured), then on a lease whose length keeps the cost at
//! about one write per [`REPORT_COST_FACTOR`] admitted requests while the account is busy, and
//! [`QUIET_INTERVAL_MS`] while the account is below half its limit; and sooner when its own
//! demand moves by half. Claims whose lease has run out no longer count; they are removed by
//! the next report that sees them.
//!
//! **Bounds.** Without a share (before its first answer, or while its reports fail or hang
//! for over [`STALL_MS`]) an environment decides by the limit alone: `E` environments admit
//! at most `E x limit` in a window, the bound before shares existed. With shares, the
//! environments' allowances add up to the limit over the claims they know of, so a steady
//! load settles at the limit however it is spread; docs/data-model.md has the simulated and
//! measured figures and [`simulation`] the scenarios.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::invalid::InvalidValue;
use super::random::{self, RandomSourceFailed};

#[cfg(any(test, feature = "test-support"))]
pub mod simulation;

/// The length of a counting window.
pub const WINDOW_MS: u64 = 1000;

/// A request, in the millionths the token bucket counts in: an allowance in thousandths of a
/// request per second accrues exactly that many millionths per millisecond.
const TOKEN: u64 = 1_000_000;

/// Requests per second are carried in thousandths.
const MILLI: u64 = 1000;

/// Reports are spaced so that, while an account is busy, its environments together write
/// about once per this many requests of its limit: each of `N` environments reports every
/// `REPORT_COST_FACTOR x N / limit` seconds.
pub const REPORT_COST_FACTOR: u64 = 25;

/// The bounds of that spacing, and the least time between two reports of one environment.
pub const MIN_INTERVAL_MS: u64 = 1000;
pub const MAX_INTERVAL_MS: u64 = 30_000;

/// The spacing of reports while the account, as the last answer showed it, is offered less
/// than half its limit.
pub const QUIET_INTERVAL_MS: u64 = 30_000;

/// A claim's lease, in report intervals: a claim outlives its environment's next report
/// twice over, so a late report never makes it vanish.
const LEASE_INTERVALS: u64 = 3;

/// How much of its share an environment may save up: unused allowance of this long.
pub const BUCKET_MS: u64 = 3000;

/// The most of its share an environment admits in any one second, in percent: a saved-up
/// burst from every environment at once stays within twice the limit.
pub const BURST_PERCENT: u64 = 200;

/// A report in flight for longer than this, or one that failed, leaves the environment
/// deciding by the limit alone until a report succeeds: a slow or failing DynamoDB never
/// turns into refusals of an account under its limit.
pub const STALL_MS: u64 = 1000;

/// Claims that had run out this long before an answer showed them are removed by the next
/// report.
const EXPIRED_GRACE_MS: u64 = 10_000;

/// An environment reports an account once it is offered this fraction of the limit in a
/// sliding second (at least one request).
const REPORT_THRESHOLD_DIVISOR: u64 = 64;

/// A first claim's rate is taken over at least this long.
const YOUNG_RATE_MIN_MS: u64 = 100;

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

    fn milli(self) -> u64 {
        u64::from(self.0) * MILLI
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

/// One execution environment, as its claims name it: 64 random bits, drawn once per
/// environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvironmentId(u64);

impl EnvironmentId {
    pub fn generate() -> Result<Self, RandomSourceFailed> {
        let mut bytes = [0u8; 8];
        random::fill(&mut bytes)?;
        Ok(EnvironmentId(u64::from_le_bytes(bytes)))
    }

    /// The 16 lowercase hexadecimal digits [`fmt::Display`] writes.
    pub fn parse(value: &str) -> Option<Self> {
        (value.len() == 16
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| u64::from_str_radix(value, 16).ok().map(EnvironmentId))
        .flatten()
    }

    pub fn from_number(number: u64) -> Self {
        EnvironmentId(number)
    }
}

impl fmt::Display for EnvironmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What one environment says of one account in the shared item: the requests it is offered
/// a second, until when that holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub environment: EnvironmentId,
    /// Requests offered a second (admitted or not), in thousandths.
    pub demand: u64,
    /// Milliseconds since the Unix epoch; the claim counts until then.
    pub until_ms: u64,
    /// Whether `demand` was measured over a second or more; an environment's first claim is
    /// the rate of its first few requests.
    pub measured: bool,
}

/// A write to the account's shared item: this environment's claim, and the claims found
/// long expired, to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub claim: Claim,
    pub expired: Vec<EnvironmentId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted, and counted.
    Admit,
    /// Over the limit (or this environment's share of it): not counted. Retrying after
    /// `retry_after` finds room, unless other requests take it first.
    Refuse { retry_after: Duration },
}

/// What the counts say about one request, and the report to send, when one is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub report: Option<Report>,
}

/// One environment's counts and share of one account's limit.
#[derive(Debug, Clone)]
pub struct AccountShare {
    environment: EnvironmentId,
    /// The window the `_current` counts are of.
    window: u64,
    admitted_previous: u64,
    admitted_current: u64,
    offered_previous: u64,
    offered_current: u64,
    /// Offered since the last report was sent: its average demand.
    offered_since_report: u64,
    first_seen_ms: Option<u64>,
    /// What the last answer said, while it holds.
    view: Option<View>,
    bucket: Bucket,
    /// Whether the last decision was by the share (a new share starts an empty bucket).
    by_share: bool,
    in_flight_since: Option<u64>,
    failed: bool,
    /// After a failed report, the next waits until then.
    retry_at_ms: u64,
    last_report_ms: Option<u64>,
    /// This environment's claim as the account's item last received it.
    published: Option<Claim>,
}

/// The other environments' claims as the last answer gave them, and this environment's
/// share of the limit by them.
#[derive(Debug, Clone)]
struct View {
    others: Vec<Claim>,
    /// Thousandths of a request per second.
    allowance: u64,
    /// Whether the account is offered at least half its limit: only then does the share
    /// decide (below half, every environment may go up to the limit alone until its demand
    /// grows and it reports).
    contested: bool,
    /// The limit the share was reckoned for (an operator may change it).
    limit: RateLimit,
    next_report_ms: u64,
    /// When a claim in `others` runs out, and the share grows.
    recompute_at_ms: u64,
    expired: Vec<EnvironmentId>,
}

/// Unused allowance, in millionths of a request.
#[derive(Debug, Clone, Default)]
struct Bucket {
    tokens: u64,
    at_ms: u64,
}

impl Bucket {
    fn capacity(allowance: u64) -> u64 {
        (allowance * BUCKET_MS).max(2 * TOKEN)
    }

    fn refill(&mut self, now_ms: u64, allowance: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        self.tokens = (self.tokens + allowance * elapsed).min(Self::capacity(allowance));
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// Milliseconds until the bucket holds a request.
    fn wait_ms(&self, allowance: u64) -> u64 {
        TOKEN.saturating_sub(self.tokens).div_ceil(allowance.max(1))
    }
}

impl AccountShare {
    pub fn new(environment: EnvironmentId) -> Self {
        AccountShare {
            environment,
            window: 0,
            admitted_previous: 0,
            admitted_current: 0,
            offered_previous: 0,
            offered_current: 0,
            offered_since_report: 0,
            first_seen_ms: None,
            view: None,
            bucket: Bucket::default(),
            by_share: false,
            in_flight_since: None,
            failed: false,
            retry_at_ms: 0,
            last_report_ms: None,
            published: None,
        }
    }

    /// Moves the counts to `window`. A clock that steps back keeps the later window.
    fn roll(&mut self, window: u64) {
        if window <= self.window {
            return;
        }
        if window == self.window + 1 {
            self.admitted_previous = self.admitted_current;
            self.offered_previous = self.offered_current;
        } else {
            self.admitted_previous = 0;
            self.offered_previous = 0;
        }
        self.admitted_current = 0;
        self.offered_current = 0;
        self.window = window;
    }

    /// The share to decide by at `now_ms`: none while there is no answer to go by, while
    /// reports fail or hang, or while the share is the whole limit (the sliding second alone
    /// then decides, exactly).
    fn allowance(&self, now_ms: u64, limit: RateLimit) -> Option<u64> {
        let view = self.view.as_ref()?;
        let stalled = self
            .in_flight_since
            .is_some_and(|since| now_ms.saturating_sub(since) > STALL_MS);
        (!self.failed
            && !stalled
            && view.contested
            && view.limit == limit
            && view.allowance < limit.milli())
        .then_some(view.allowance)
    }

    /// Decides one request at `now_ms` (milliseconds since the Unix epoch), counting it when
    /// it is admitted.
    pub fn decide(&mut self, now_ms: u64, limit: RateLimit) -> Decision {
        self.roll(now_ms / WINDOW_MS);
        self.first_seen_ms.get_or_insert(now_ms);
        self.offered_current += 1;
        self.offered_since_report += 1;
        if let (Some(view), Some(own)) = (self.view.as_mut(), self.published) {
            if now_ms >= view.recompute_at_ms || view.limit != limit {
                view.recompute(&own, limit, now_ms);
            }
        }
        let allowance = self.allowance(now_ms, limit);
        let into = if now_ms / WINDOW_MS == self.window {
            now_ms % WINDOW_MS
        } else {
            0
        };
        if let Some(allowance) = allowance {
            if self.by_share {
                self.bucket.refill(now_ms, allowance);
            } else {
                self.start_bucket(now_ms, into, allowance);
            }
        }
        self.by_share = allowance.is_some();
        let cap = allowance.map_or(limit.milli(), |allowance| {
            (allowance * BURST_PERCENT / 100).clamp(MILLI, limit.milli())
        });
        let room = has_room(self.admitted_previous, self.admitted_current, into, cap)
            && allowance.is_none_or(|_| self.bucket.tokens >= TOKEN);
        let verdict = if room {
            self.admitted_current += 1;
            if allowance.is_some() {
                self.bucket.tokens -= TOKEN;
            }
            Verdict::Admit
        } else {
            let window_wait = self.window_wait_ms(into, cap);
            let bucket_wait = allowance.map_or(0, |allowance| self.bucket.wait_ms(allowance));
            Verdict::Refuse {
                retry_after: Duration::from_millis(window_wait.max(bucket_wait).max(1)),
            }
        };
        Decision {
            verdict,
            report: self.report_due(now_ms, into, limit),
        }
    }

    /// Milliseconds from `into` the current window until, with no more admissions, the
    /// estimate has room for one request under `cap` (thousandths of a request).
    fn window_wait_ms(&self, into: u64, cap: u64) -> u64 {
        let to_next = WINDOW_MS - into;
        if let Some(at) = first_room(self.admitted_previous, self.admitted_current, cap) {
            at.saturating_sub(into)
        } else if let Some(at) = first_room(self.admitted_current, 0, cap) {
            to_next + at
        } else {
            to_next + WINDOW_MS
        }
    }

    /// The report to send now, if one is due: never two at once.
    fn report_due(&mut self, now_ms: u64, into: u64, limit: RateLimit) -> Option<Report> {
        if self.in_flight_since.is_some() {
            return None;
        }
        // Offered in the second up to and including now, in thousandths (a request exactly a
        // second ago is not in it).
        let recent =
            self.offered_previous * (WINDOW_MS - 1 - into) + self.offered_current * WINDOW_MS;
        let since = self.last_report_ms.map(|at| now_ms.saturating_sub(at));
        // Steadier over the whole time since the last report, once that is over a second.
        let average = match since {
            Some(since) if since > WINDOW_MS => self.offered_since_report * MILLI * 1000 / since,
            _ => recent,
        };
        let due = match (&self.view, self.failed) {
            (_, true) => now_ms >= self.retry_at_ms,
            (None, false) => {
                recent >= u64::from(limit.per_second()).div_ceil(REPORT_THRESHOLD_DIVISOR) * MILLI
            }
            (Some(view), false) => {
                // Demand that has moved beyond what the claim allowed for, either way.
                let published = self.published.map_or(0, |claim| claim.demand);
                // A sudden rise shows in the last second before it moves the average.
                now_ms >= view.next_report_ms
                    || (since.unwrap_or(0) >= MIN_INTERVAL_MS
                        && (average > headroom(published).max(published * 3 / 2)
                            || recent > 2 * headroom(published)
                            || (view.contested && headroom(average) < published / 2)))
            }
        };
        if !due {
            return None;
        }
        // A demand not yet measured over a second: the rate since the first request, over at
        // least a tenth of a second (two requests a millisecond apart are not a rate of
        // 2000 a second), at most the limit.
        let young = self
            .first_seen_ms
            .filter(|first| now_ms.saturating_sub(*first) < WINDOW_MS);
        let demand = match young {
            Some(first) => (self.offered_since_report * MILLI * 1000
                / now_ms.saturating_sub(first).max(YOUNG_RATE_MIN_MS))
            .min(limit.milli()),
            None => average,
        };
        let interval = self.interval(limit);
        let claim = Claim {
            environment: self.environment,
            demand,
            until_ms: now_ms + LEASE_INTERVALS * interval,
            measured: young.is_none(),
        };
        let expired = self
            .view
            .as_mut()
            .map(|view| std::mem::take(&mut view.expired))
            .unwrap_or_default();
        self.in_flight_since = Some(now_ms);
        self.last_report_ms = Some(now_ms);
        self.offered_since_report = 0;
        self.published = Some(claim);
        Some(Report { claim, expired })
    }

    /// How long until this environment's next report: by the cost rule while the account is
    /// busy (or not yet known), [`QUIET_INTERVAL_MS`] while it is not.
    fn interval(&self, limit: RateLimit) -> u64 {
        match &self.view {
            Some(view) if !view.contested => QUIET_INTERVAL_MS,
            view => {
                let environments = view.as_ref().map_or(0, |view| view.others.len() as u64) + 1;
                (REPORT_COST_FACTOR * environments * 1000 / u64::from(limit.per_second()))
                    .clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS)
            }
        }
    }

    /// `report` reached the account's item, which then held `claims` (this environment's
    /// among them): the share follows from them.
    pub fn answered(&mut self, report: &Report, claims: Vec<Claim>, now_ms: u64, limit: RateLimit) {
        self.in_flight_since = None;
        self.failed = false;
        let first = self.view.is_none();
        let (others, expired): (Vec<Claim>, Vec<Claim>) = claims
            .into_iter()
            .filter(|claim| claim.environment != self.environment)
            .partition(|claim| claim.until_ms > now_ms);
        let mut view = View {
            others,
            allowance: 0,
            contested: false,
            limit,
            next_report_ms: now_ms,
            recompute_at_ms: now_ms,
            expired: expired
                .into_iter()
                .filter(|claim| claim.until_ms + EXPIRED_GRACE_MS < now_ms)
                .map(|claim| claim.environment)
                .collect(),
        };
        view.recompute(&report.claim, limit, now_ms);
        self.view = Some(view);
        let interval = self.interval(limit);
        // The first answer is followed a second later by a report of the measured demand;
        // every report comes before this environment's claim runs out.
        let next = (now_ms + if first { MIN_INTERVAL_MS } else { interval })
            .min(report.claim.until_ms.saturating_sub(interval / 2))
            .max(now_ms + MIN_INTERVAL_MS);
        let view = self.view.as_mut().expect("set above");
        view.next_report_ms = next;
        view.recompute_at_ms = view.runs_out_at();
        if let Some(allowance) = self.allowance(now_ms, limit) {
            if self.by_share {
                self.bucket.tokens = self.bucket.tokens.min(Bucket::capacity(allowance));
            } else {
                self.roll(now_ms / WINDOW_MS);
                let into = if self.window == now_ms / WINDOW_MS {
                    now_ms % WINDOW_MS
                } else {
                    0
                };
                self.start_bucket(now_ms, into, allowance);
                self.by_share = true;
            }
        }
    }

    /// A share's bucket starts with what is left of a second of the share after what this
    /// environment admitted in the last second by the limit alone, and at most half a second
    /// of it: a burst the share covers is not refused while the bucket fills, and an
    /// environment joining a busy account adds little before the others know of it.
    fn start_bucket(&mut self, now_ms: u64, into: u64, allowance: u64) {
        let admitted =
            self.admitted_previous * (WINDOW_MS - into) + self.admitted_current * WINDOW_MS;
        self.bucket = Bucket {
            tokens: (allowance * WINDOW_MS)
                .saturating_sub(admitted * MILLI)
                .min(allowance * WINDOW_MS / 2),
            at_ms: now_ms,
        };
    }

    /// `report` may not have reached the account's item: until a report succeeds, this
    /// environment decides by the limit alone, and tries again a second later.
    pub fn not_answered(&mut self, _report: &Report, now_ms: u64) {
        self.in_flight_since = None;
        self.failed = true;
        self.retry_at_ms = now_ms + MIN_INTERVAL_MS;
    }

    /// Whether forgetting these counts changes nothing but a report: no report in flight,
    /// and no request in the last two windows.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        self.in_flight_since.is_none() && now_ms / WINDOW_MS > self.window + 1
    }

    /// This environment's share of the limit, in thousandths of a request per second, when
    /// it decides by one short of the whole limit.
    pub fn share_at(&self, now_ms: u64, limit: RateLimit) -> Option<u64> {
        self.allowance(now_ms, limit)
    }
}

impl View {
    /// A claim counts until its lease runs out, and in any case until this environment's
    /// next report has brought a newer one.
    fn live_until(&self, claim: &Claim) -> u64 {
        claim.until_ms.max(self.next_report_ms + MIN_INTERVAL_MS)
    }

    fn runs_out_at(&self) -> u64 {
        self.others
            .iter()
            .map(|claim| self.live_until(claim))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The share by the claims still live at `now_ms`, this environment's (`own`) included.
    fn recompute(&mut self, own: &Claim, limit: RateLimit, now_ms: u64) {
        let next = self.next_report_ms + MIN_INTERVAL_MS;
        self.others
            .retain(|claim| claim.until_ms.max(next) > now_ms);
        let offered = self.others.iter().map(|claim| claim.demand).sum::<u64>() + own.demand;
        self.contested = offered * 2 >= limit.milli();
        self.limit = limit;
        let mut claims: Vec<u64> = self
            .others
            .iter()
            .map(|claim| headroom(claim.demand))
            .collect();
        claims.push(headroom(own.demand));
        self.allowance = share(limit.milli(), &mut claims, headroom(own.demand));
        self.recompute_at_ms = self.runs_out_at();
    }
}

/// A demand (thousandths of a request per second) with room to vary: a quarter more, or two
/// standard deviations of a Poisson count over a second, whichever is more.
pub fn headroom(demand: u64) -> u64 {
    demand + (demand / 4).max(2 * (demand * MILLI).isqrt())
}

/// The max-min fair share of `limit` for a claim of `own` among `claims` (`own` among them):
/// claims up to an even split of what is left are granted whole, the larger ones share the
/// rest evenly, and what no claim needs is split evenly among all.
pub fn share(limit: u64, claims: &mut [u64], own: u64) -> u64 {
    claims.sort_unstable();
    let count = claims.len() as u64;
    let mut left = limit;
    for (granted, &claim) in claims.iter().enumerate() {
        let even = left / (count - granted as u64);
        if claim > even {
            return own.min(even);
        }
        left -= claim;
    }
    own + left / count.max(1)
}

/// Whether a window that has `current` requests, `into` milliseconds after a window of
/// `previous`, has room for one more within `cap` thousandths of a request a second. In
/// thousandths, so that the arithmetic is exact.
fn has_room(previous: u64, current: u64, into: u64, cap: u64) -> bool {
    previous * (WINDOW_MS - into) + (current + 1) * WINDOW_MS <= cap
}

/// The first millisecond of a window (of `current` requests, after one of `previous`) with
/// room for one more request under `cap`, if any.
fn first_room(previous: u64, current: u64, cap: u64) -> Option<u64> {
    let spare = cap.checked_sub((current + 1) * WINDOW_MS)?;
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

    impl AccountShare {
        /// The share at a limit of 100, as the tests below use.
        fn share_at_test(&self, now_ms: u64) -> Option<u64> {
            self.share_at(now_ms, limit(100))
        }
    }

    fn environment(n: u64) -> EnvironmentId {
        EnvironmentId::from_number(n)
    }

    /// Decisions on `n` requests at `at_ms`: how many were admitted, and the reports made.
    fn burst(share: &mut AccountShare, at_ms: u64, n: u64, rate: RateLimit) -> (u64, Vec<Report>) {
        let mut admitted = 0;
        let mut reports = vec![];
        for _ in 0..n {
            let decision = share.decide(at_ms, rate);
            if decision.verdict == Verdict::Admit {
                admitted += 1;
            }
            reports.extend(decision.report);
        }
        (admitted, reports)
    }

    fn claim(environment: u64, per_second: u64, until_ms: u64) -> Claim {
        Claim {
            environment: super::EnvironmentId(environment),
            demand: per_second * MILLI,
            until_ms,
            measured: true,
        }
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
        assert_eq!(serde_json::to_value(limit(7)).unwrap(), 7);
        let own = RateLimitSetting::of(Some(limit(7)));
        assert_eq!(serde_json::to_value(own).unwrap(), 7);
        assert_eq!(own.own(), Some(limit(7)));
        let default = RateLimitSetting::of(None);
        assert_eq!(serde_json::to_value(default).unwrap(), "default");
        assert_eq!(default.own(), None);
    }

    #[test]
    fn environment_ids_are_sixteen_hex_digits() {
        let id = EnvironmentId::generate().unwrap();
        assert_ne!(id, EnvironmentId::generate().unwrap());
        let text = id.to_string();
        assert_eq!(text.len(), 16);
        assert_eq!(EnvironmentId::parse(&text), Some(id));
        assert_eq!(environment(255).to_string(), "00000000000000ff");
        for bad in [
            "",
            "ff",
            "00000000000000FF",
            "00000000000000fg",
            "000000000000000ff",
        ] {
            assert_eq!(EnvironmentId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_new_environment_admits_exactly_the_limit_in_a_fresh_window() {
        let mut share = AccountShare::new(environment(1));
        let (admitted, _) = burst(&mut share, 5_000_100, 30, limit(10));
        assert_eq!(admitted, 10);
    }

    #[test]
    fn refusals_are_not_counted_and_the_window_slides() {
        let rate = limit(10);
        let mut share = AccountShare::new(environment(1));
        // 10 at the start of second 5, then 1000 refused ones.
        assert_eq!(burst(&mut share, 5_000_000, 1010, rate).0, 10);
        // Half-way through the next second, the previous one still weighs 5: room for 5.
        assert_eq!(burst(&mut share, 5_001_500, 100, rate).0, 5);
        // Two seconds on nothing weighs: the refused ones never counted.
        assert_eq!(burst(&mut share, 5_003_000, 100, rate).0, 10);
    }

    #[test]
    fn retry_after_is_when_there_is_room_again() {
        let rate = limit(10);
        let mut share = AccountShare::new(environment(1));
        burst(&mut share, 5_000_000, 10, rate);
        // Full in its first window: room once it weighs 9 or less on the last second, 100 ms
        // into the next window.
        let refused = share.decide(5_000_200, rate).verdict;
        assert_eq!(
            refused,
            Verdict::Refuse {
                retry_after: Duration::from_millis(900)
            }
        );
        assert_eq!(
            share.decide(5_001_000, rate).verdict,
            Verdict::Refuse {
                retry_after: Duration::from_millis(100)
            }
        );
        assert_ne!(share.decide(5_001_099, rate).verdict, Verdict::Admit);
        assert_eq!(share.decide(5_001_100, rate).verdict, Verdict::Admit);

        // A limit of 1: a full window leaves no room in the next at all.
        let mut share = AccountShare::new(environment(1));
        burst(&mut share, 7_000_000, 1, limit(1));
        assert_eq!(
            share.decide(7_000_400, limit(1)).verdict,
            Verdict::Refuse {
                retry_after: Duration::from_millis(1600)
            }
        );
    }

    #[test]
    fn a_clock_that_steps_back_never_opens_room() {
        let rate = limit(5);
        let mut share = AccountShare::new(environment(1));
        assert_eq!(burst(&mut share, 9_000_000, 5, rate).0, 5);
        assert_eq!(burst(&mut share, 8_000_000, 5, rate).0, 0);
    }

    #[test]
    fn an_account_that_barely_uses_its_limit_is_never_reported() {
        // A sixty-fourth of 100 is 2 a second: one request a second never reports.
        let rate = limit(100);
        let mut share = AccountShare::new(environment(1));
        for second in 0..30 {
            assert!(share
                .decide(1_000_500 + second * 1000, rate)
                .report
                .is_none());
        }
        // Two in a second do; a limit of 64 or less reports on the first request.
        assert!(share.decide(1_030_500, rate).report.is_none());
        assert!(share.decide(1_030_600, rate).report.is_some());
        let mut small = AccountShare::new(environment(1));
        assert!(small.decide(1_000_000, limit(64)).report.is_some());
    }

    #[test]
    fn the_first_report_claims_the_rate_so_far_and_the_second_the_measured_demand() {
        let rate = limit(100);
        let mut share = AccountShare::new(environment(1));
        let (_, reports) = burst(&mut share, 1_000_000, 2, rate);
        let first = &reports[0];
        assert_eq!(first.claim.environment, environment(1));
        // Two requests, over the least span a first rate is taken over (100 ms): 20 a second,
        // not yet measured.
        assert_eq!(first.claim.demand, 20 * MILLI);
        assert!(!first.claim.measured);
        // Alone, and under half the limit: the sliding second decides, as before any answer.
        share.answered(first, vec![first.claim], 1_000_005, rate);
        assert_eq!(share.view.as_ref().unwrap().allowance, 100 * MILLI);
        assert_eq!(share.share_at_test(1_000_005), None);
        // A second on, 40 a second offered, reported as measured.
        let mut second = vec![];
        for i in 0..40 {
            second.extend(share.decide(1_000_010 + i * 25, rate).report);
        }
        assert!(second.is_empty(), "not before a second has passed");
        let report = share.decide(1_001_010, rate).report.unwrap();
        assert_eq!(report.claim.demand, 41 * MILLI * 1000 / 1010);
        assert!(report.claim.measured);
        // Under half the limit, as the first answer showed: the claim holds three quiet
        // intervals, and the next report is one later.
        share.answered(&report, vec![report.claim], 1_001_015, rate);
        assert_eq!(share.interval(rate), QUIET_INTERVAL_MS);
        assert_eq!(
            report.claim.until_ms,
            1_001_010 + LEASE_INTERVALS * QUIET_INTERVAL_MS
        );
    }

    #[test]
    fn shares_follow_the_claims_and_grow_when_one_runs_out() {
        let rate = limit(100);
        let mut share = AccountShare::new(environment(1));
        let (_, reports) = burst(&mut share, 2_000_000, 2, rate);
        // Three others, each offered 300 a second; its own first claim 20 a second (with
        // room, 28.9): the account is busy, and all four claim more than an even share of 25.
        let claims = vec![
            reports[0].claim,
            claim(2, 300, 2_010_000),
            claim(3, 300, 2_010_000),
            claim(4, 300, 2_020_000),
        ];
        share.answered(&reports[0], claims, 2_000_010, rate);
        assert_eq!(share.share_at_test(2_000_010), Some(25 * MILLI));
        // Its next report is due a second on; at 2_010_000 two claims run out (they outlive
        // that report by a second), leaving two: its own, under an even split, granted whole.
        assert_eq!(share.view.as_ref().unwrap().next_report_ms, 2_001_010);
        share.in_flight_since = Some(2_001_010);
        share.decide(2_002_011, rate);
        assert_eq!(share.view.as_ref().unwrap().others.len(), 3);
        share.in_flight_since = None;
        share.view.as_mut().unwrap().next_report_ms = 2_005_000;
        share.decide(2_010_000, rate);
        assert_eq!(share.share_at_test(2_010_000), Some(headroom(20 * MILLI)));
        assert_eq!(headroom(20 * MILLI), 28_944);
    }

    #[test]
    fn a_new_limit_applies_on_the_next_request() {
        let mut share = AccountShare::new(environment(1));
        let (_, reports) = burst(&mut share, 6_000_000, 1, limit(10));
        let own = Claim {
            demand: 300 * MILLI,
            measured: true,
            ..reports[0].claim
        };
        share.answered(
            &reports[0],
            vec![own, claim(2, 300, 6_100_000)],
            6_000_010,
            limit(10),
        );
        share.published = Some(own);
        assert_eq!(share.share_at(6_000_010, limit(10)), Some(5 * MILLI));
        // An operator raises the limit: the share is reckoned again on the next request,
        // not at the next report. Two claims of 375 with room leave 250 to lend: 500 each.
        share.decide(6_000_020, limit(1000));
        assert_eq!(share.share_at(6_000_020, limit(1000)), Some(500 * MILLI));
    }

    #[test]
    fn a_share_is_admitted_at_its_rate_and_saves_up_to_a_burst() {
        let rate = limit(100);
        let mut share = AccountShare::new(environment(1));
        let (_, reports) = burst(&mut share, 3_000_000, 2, rate);
        let mut claims = vec![reports[0].claim];
        claims.extend((2..=10).map(|n| claim(n, 300, 3_100_000)));
        share.answered(&reports[0], claims, 3_000_000, rate);
        // Ten even shares of 10 a second. The bucket starts with what is left of a second of
        // the share after the 2 admitted by the limit alone (8), at most half a second of it:
        // 5, and half a request more by 50 ms; then one every 100 ms.
        assert_eq!(share.share_at_test(3_000_000), Some(10 * MILLI));
        assert_eq!(burst(&mut share, 3_000_050, 20, rate).0, 5);
        assert_eq!(
            share.decide(3_000_050, rate).verdict,
            Verdict::Refuse {
                retry_after: Duration::from_millis(50)
            }
        );
        assert_eq!(share.decide(3_000_100, rate).verdict, Verdict::Admit);
        assert_ne!(share.decide(3_000_101, rate).verdict, Verdict::Admit);
        // Three seconds unused save up 30, of which at most 20 go in one second.
        let (admitted, _) = burst(&mut share, 3_005_000, 100, rate);
        assert_eq!(admitted, 20);
    }

    #[test]
    fn a_failed_or_hanging_report_leaves_the_limit_alone() {
        let rate = limit(100);
        let mut share = AccountShare::new(environment(1));
        let (_, reports) = burst(&mut share, 4_000_000, 2, rate);
        let mut claims = vec![reports[0].claim];
        claims.extend((2..=10).map(|n| claim(n, 300, 4_100_000)));
        share.answered(&reports[0], claims, 4_000_000, rate);
        assert_eq!(share.share_at_test(4_000_000), Some(10 * MILLI));
        // The next report hangs: for a second, the share holds; then the limit alone.
        let report = share.decide(4_001_000, rate).report.unwrap();
        assert_eq!(share.share_at_test(4_002_000), Some(10 * MILLI));
        assert_eq!(share.share_at_test(4_002_001), None);
        assert_eq!(burst(&mut share, 4_003_000, 200, rate).0, 100);
        // It fails: still the limit alone, and another report a second later.
        share.not_answered(&report, 4_003_500);
        assert_eq!(share.share_at_test(4_003_500), None);
        assert!(share.decide(4_004_499, rate).report.is_none());
        let again = share.decide(4_004_500, rate).report.unwrap();
        // Answered: back to the share, whose bucket starts with what is left of a second of
        // it (50) after what the last second weighs (42).
        share.answered(
            &again,
            vec![again.claim, claim(2, 300, 4_100_000)],
            4_004_600,
            rate,
        );
        assert_eq!(share.share_at_test(4_004_600), Some(50 * MILLI));
        assert_eq!(burst(&mut share, 4_004_600, 20, rate).0, 8);
    }

    #[test]
    fn claims_long_run_out_are_removed_by_the_next_report() {
        let rate = limit(100);
        let mut share = AccountShare::new(environment(1));
        let (_, reports) = burst(&mut share, 5_000_000, 2, rate);
        let claims = vec![
            reports[0].claim,
            claim(2, 10, 4_980_000),
            claim(3, 10, 4_995_000),
        ];
        share.answered(&reports[0], claims, 5_000_000, rate);
        let next = share.decide(5_001_000, rate).report.unwrap();
        assert_eq!(next.expired, vec![environment(2)]);
    }

    #[test]
    fn headroom_is_a_quarter_or_two_poisson_deviations() {
        assert_eq!(headroom(0), 0);
        // 5 a second: 2 x sqrt(5) = 4.47 more.
        assert_eq!(headroom(5 * MILLI), 5 * MILLI + 4472);
        // 1000 a second: a quarter more.
        assert_eq!(headroom(1000 * MILLI), 1250 * MILLI);
    }

    #[test]
    fn shares_are_max_min_fair() {
        // Small claims whole, the rest even.
        assert_eq!(share(100, &mut [10, 200, 300], 10), 10);
        assert_eq!(share(100, &mut [10, 200, 300], 200), 45);
        // Spare capacity lent evenly.
        assert_eq!(share(100, &mut [10, 20, 30], 20), 33);
        assert_eq!(share(100, &mut [100], 100), 100);
    }

    proptest! {
        /// The shares of every claimant, each computed from the same claims, add up to no
        /// more than the limit; each is at least its claim or an even split, whichever is
        /// less; a larger claim never gets less.
        #[test]
        fn shares_add_up_to_the_limit_and_are_fair(
            limit in 1u64..1_000_000,
            claims in prop::collection::vec(0u64..2_000_000, 1..70),
        ) {
            let shares: Vec<u64> = claims
                .iter()
                .map(|&own| share(limit, &mut claims.clone(), own))
                .collect();
            prop_assert!(shares.iter().sum::<u64>() <= limit);
            let even = limit / claims.len() as u64;
            for (&claim, &granted) in claims.iter().zip(&shares) {
                prop_assert!(granted >= claim.min(even));
                prop_assert!(granted <= limit);
            }
            for (a, b) in claims.iter().zip(&shares) {
                for (c, d) in claims.iter().zip(&shares) {
                    if a <= c {
                        prop_assert!(b <= d || a == c);
                    }
                }
            }
        }

        /// Whatever the arrival times, the other environments' claims and which reports fail,
        /// one environment never admits more than the limit in a window, and a refusal's
        /// wait finds room when nothing else is admitted meanwhile.
        #[test]
        fn one_environment_never_admits_more_than_the_limit_in_a_window(
            rate in 1u64..50,
            steps in prop::collection::vec((0u64..400, prop::collection::vec(0u64..200, 0..5), any::<bool>()), 1..300),
        ) {
            let rate = limit(rate);
            let mut share = AccountShare::new(environment(1));
            let mut now = 10_000_000;
            let mut per_window = std::collections::HashMap::<u64, u64>::new();
            for (advance, others, fail) in steps {
                now += advance;
                let decision = share.decide(now, rate);
                match decision.verdict {
                    Verdict::Admit => *per_window.entry(now / WINDOW_MS).or_default() += 1,
                    Verdict::Refuse { retry_after } => {
                        prop_assert!(retry_after >= Duration::from_millis(1));
                        let later = now + retry_after.as_millis() as u64;
                        let mut waited = share.clone();
                        prop_assert_eq!(waited.decide(later, rate).verdict, Verdict::Admit);
                    }
                }
                if let Some(report) = decision.report {
                    if fail {
                        share.not_answered(&report, now);
                    } else {
                        let mut claims = vec![report.claim];
                        claims.extend(others.iter().enumerate().map(|(i, &per_second)| {
                            claim(100 + i as u64, per_second, now + 5000)
                        }));
                        share.answered(&report, claims, now, rate);
                    }
                }
            }
            for (_, admitted) in per_window {
                prop_assert!(admitted <= u64::from(rate.per_second()));
            }
        }
    }
}
