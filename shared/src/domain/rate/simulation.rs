//! A deterministic simulation of environments sharing one account's limit: arrivals
//! scheduled on a logical clock, each environment an [`AccountShare`] of its own, the
//! account's shared item a map of claims, and each report answered a fixed latency after it
//! was sent. The scenarios at the bottom are the targets docs/data-model.md gives; the DynamoDB
//! Local test (tests/tests/api/rate_limits.rs) drives real limiters with the same arrivals.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::{AccountShare, Claim, EnvironmentId, RateLimit, Report, Verdict};

/// `per_second` requests a second offered to environment `environment` from `from_ms` to
/// `to_ms` after the start.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub environment: usize,
    pub from_ms: u64,
    pub to_ms: u64,
    /// In thousandths.
    pub per_second: u64,
}

/// Evenly spaced arrivals, or a Poisson process (seeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    Even,
    Poisson { seed: u64 },
}

/// Every arrival of `loads`, as (microseconds after the start, environment), in time order.
/// Evenly spaced arrivals of different environments are staggered across the spacing.
pub fn arrivals(loads: &[Load], environments: usize, kind: Arrivals) -> Vec<(u64, usize)> {
    let mut all = vec![];
    for (index, load) in loads.iter().enumerate() {
        if load.per_second == 0 {
            continue;
        }
        let (from, to) = (load.from_ms * 1000, load.to_ms * 1000);
        match kind {
            Arrivals::Even => {
                let spacing = 1_000_000_000 / load.per_second;
                let mut at = from + spacing * load.environment as u64 / environments as u64;
                while at < to {
                    all.push((at, load.environment));
                    at += spacing;
                }
            }
            Arrivals::Poisson { seed } => {
                let mut random = Xorshift::seeded(seed, index as u64);
                let mean = 1e9 / load.per_second as f64;
                let mut at = from as f64;
                loop {
                    at += -mean * (1.0 - random.uniform()).ln();
                    if at >= to as f64 {
                        break;
                    }
                    all.push((at as u64, load.environment));
                }
            }
        }
    }
    all.sort_unstable();
    all
}

struct Xorshift(u64);

impl Xorshift {
    /// A generator of its own for each (seed, stream): splitmix64 of both.
    fn seeded(seed: u64, stream: u64) -> Self {
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Xorshift((z ^ (z >> 31)) | 1)
    }

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub limit: RateLimit,
    pub environments: usize,
    pub loads: Vec<Load>,
    pub seconds: u64,
    pub arrivals: Arrivals,
    /// Time from a report to its answer.
    pub latency_ms: u64,
    /// Reports sent in this span (ms after the start) fail.
    pub outage: Option<(u64, u64)>,
}

impl Scenario {
    /// `environments` environments, each offered `per_second` (thousandths) for `seconds`.
    pub fn even(limit: u64, environments: usize, per_second: u64, seconds: u64) -> Self {
        let loads = (0..environments)
            .map(|environment| Load {
                environment,
                from_ms: 0,
                to_ms: seconds * 1000,
                per_second,
            })
            .collect();
        Scenario {
            limit: RateLimit::new(limit).expect("a valid limit"),
            environments,
            loads,
            seconds,
            arrivals: Arrivals::Even,
            latency_ms: 5,
            outage: None,
        }
    }
}

/// What a run admitted and wrote, per environment and second.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub admitted: Vec<Vec<u64>>,
    pub offered: Vec<Vec<u64>>,
    /// Reports sent, per second.
    pub writes: Vec<u64>,
}

impl Outcome {
    /// The account's admitted requests in each second.
    pub fn per_second(&self) -> Vec<u64> {
        (0..self.writes.len())
            .map(|second| self.admitted.iter().map(|env| env[second]).sum())
            .collect()
    }

    /// The mean admitted a second over seconds `from` to `to` (the first second is 1).
    pub fn mean(&self, from: usize, to: usize) -> f64 {
        let seconds = &self.per_second()[from - 1..to];
        seconds.iter().sum::<u64>() as f64 / seconds.len() as f64
    }

    pub fn refused(&self) -> u64 {
        let offered: u64 = self.offered.iter().flatten().sum();
        offered - self.admitted.iter().flatten().sum::<u64>()
    }

    pub fn writes_per_admitted(&self) -> f64 {
        let admitted: u64 = self.admitted.iter().flatten().sum();
        self.writes.iter().sum::<u64>() as f64 / admitted as f64
    }
}

/// The simulated clock starts here (milliseconds since the Unix epoch).
pub const START_MS: u64 = 1_800_000_000_000;

pub fn run(scenario: &Scenario) -> Outcome {
    let seconds = scenario.seconds as usize;
    let mut shares: Vec<AccountShare> = (0..scenario.environments)
        .map(|n| AccountShare::new(EnvironmentId::from_number(n as u64 + 1)))
        .collect();
    let mut item = HashMap::<EnvironmentId, Claim>::new();
    let mut outcome = Outcome {
        admitted: vec![vec![0; seconds]; scenario.environments],
        offered: vec![vec![0; seconds]; scenario.environments],
        writes: vec![0; seconds],
    };
    // Answers due: (time in microseconds, sequence, environment, report, reached the item).
    let mut answers = BinaryHeap::<Reverse<(u64, u64, usize)>>::new();
    let mut reports = HashMap::<u64, (Report, bool)>::new();
    let mut sequence = 0;
    for (at, environment) in arrivals(&scenario.loads, scenario.environments, scenario.arrivals) {
        while let Some(&Reverse((due, number, who))) = answers.peek() {
            if due > at {
                break;
            }
            answers.pop();
            let (report, reached) = reports.remove(&number).expect("sent");
            let now = START_MS + due / 1000;
            if reached {
                for gone in &report.expired {
                    item.remove(gone);
                }
                item.insert(report.claim.environment, report.claim);
                let claims = item.values().copied().collect();
                shares[who].answered(&report, claims, now, scenario.limit);
            } else {
                shares[who].not_answered(&report, now);
            }
        }
        let now = START_MS + at / 1000;
        let second = (at / 1_000_000) as usize;
        outcome.offered[environment][second] += 1;
        let decision = shares[environment].decide(now, scenario.limit);
        if decision.verdict == Verdict::Admit {
            outcome.admitted[environment][second] += 1;
        }
        if let Some(report) = decision.report {
            outcome.writes[second] += 1;
            let reached = scenario
                .outage
                .is_none_or(|(from, to)| at / 1000 < from || at / 1000 >= to);
            sequence += 1;
            reports.insert(sequence, (report, reached));
            answers.push(Reverse((
                at + scenario.latency_ms * 1000,
                sequence,
                environment,
            )));
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 100;
    const L: u64 = LIMIT * 1000;

    fn row(name: &str, outcome: &Outcome) {
        let seconds = outcome.per_second();
        println!(
            "{name:<40} first {:>4}  worst after {:>4}  mean 3-10 {:>6.1}  writes/admitted {:.4}  refused {}",
            seconds[0],
            seconds[1..].iter().max().unwrap(),
            outcome.mean(3, 10.min(seconds.len())),
            outcome.writes_per_admitted(),
            outcome.refused(),
        );
    }

    /// Steady overload: every environment offered three times the limit, one to sixteen
    /// environments; and the same account's load spread over three routes' functions.
    #[test]
    fn steady_overload_settles_within_a_fifth_of_the_limit() {
        for environments in [1, 2, 4, 8, 16, 3, 6, 12] {
            let outcome = run(&Scenario::even(LIMIT, environments, 3 * L, 60));
            row(&format!("{environments} environments, 3x each"), &outcome);
            let seconds = outcome.per_second();
            assert!(outcome.mean(3, 10) <= 1.2 * LIMIT as f64, "{seconds:?}");
            assert!(
                *seconds[1..].iter().max().unwrap() <= 2 * LIMIT,
                "{seconds:?}"
            );
            // Not below it either: an account over its limit gets it.
            assert!(outcome.mean(3, 10) >= 0.95 * LIMIT as f64, "{seconds:?}");
            // Cost over the 60 s.
            assert!(
                outcome.writes_per_admitted() <= 0.05,
                "{}",
                outcome.writes_per_admitted()
            );
        }
    }

    fn load(environment: usize, per_second: u64, seconds: u64) -> Load {
        Load {
            environment,
            from_ms: 0,
            to_ms: seconds * 1000,
            per_second,
        }
    }

    fn scenario(environments: usize, loads: Vec<Load>, seconds: u64) -> Scenario {
        Scenario {
            environments,
            loads,
            ..Scenario::even(LIMIT, 1, 0, seconds)
        }
    }

    /// Each environment's mean admitted and offered a second over seconds 3 to 10.
    fn per_environment(outcome: &Outcome) -> Vec<(f64, f64)> {
        let mean = |seconds: &[u64]| seconds[2..10].iter().sum::<u64>() as f64 / 8.0;
        outcome
            .admitted
            .iter()
            .zip(&outcome.offered)
            .map(|(admitted, offered)| (mean(admitted), mean(offered)))
            .collect()
    }

    /// The same account's load over three routes' functions, unevenly: four environments of
    /// one function offered 1.5x each, two of another 0.75x, one of a third 0.3x.
    #[test]
    fn load_spread_over_routes_settles_at_the_limit() {
        let mut loads = vec![];
        loads.extend((0..4).map(|n| load(n, 3 * L / 2, 60)));
        loads.extend((4..6).map(|n| load(n, 3 * L / 4, 60)));
        loads.push(load(6, 3 * L / 10, 60));
        let outcome = run(&scenario(7, loads, 60));
        row("3 routes, 7 environments, 7.8x in all", &outcome);
        let seconds = outcome.per_second();
        assert!(outcome.mean(3, 10) <= 1.2 * LIMIT as f64, "{seconds:?}");
        assert!(outcome.mean(3, 10) >= 0.95 * LIMIT as f64, "{seconds:?}");
        assert!(
            *seconds[1..].iter().max().unwrap() <= 2 * LIMIT,
            "{seconds:?}"
        );
        assert!(outcome.writes_per_admitted() <= 0.05);
    }

    /// Load spread thinly: 16 or 64 environments offered three times the limit together.
    #[test]
    fn spread_out_load_settles_within_a_fifth_of_the_limit() {
        for environments in [16, 64] {
            let outcome = run(&Scenario::even(
                LIMIT,
                environments,
                3 * L / environments as u64,
                60,
            ));
            row(
                &format!("{environments} environments, 3x together"),
                &outcome,
            );
            let seconds = outcome.per_second();
            // Settled from the third second on.
            assert!(outcome.mean(3, 60) <= 1.2 * LIMIT as f64, "{seconds:?}");
            assert!(outcome.mean(3, 60) >= 0.95 * LIMIT as f64, "{seconds:?}");
            assert!(
                *seconds[1..].iter().max().unwrap() <= 2 * LIMIT,
                "{seconds:?}"
            );
        }
    }

    /// Uneven load: one busy environment and fifteen idle or nearly so, and a skewed split
    /// of three times the limit over sixteen. The account keeps nine tenths of its limit, and
    /// no environment with traffic gets less than half an even share (or all it is offered,
    /// when that is less).
    #[test]
    fn uneven_load_keeps_the_limit_and_half_an_even_share_each() {
        let busy_alone = scenario(16, vec![load(0, 3 * L, 10)], 10);
        let mut trickle = vec![load(0, 3 * L, 10)];
        trickle.extend((1..16).map(|n| load(n, L / 100, 10)));
        let busy_and_trickles = scenario(16, trickle, 10);
        let skewed = scenario(
            16,
            (0..16)
                .map(|n| load(n, 3 * L * (n as u64 + 1) / 136, 10))
                .collect(),
            10,
        );
        for (name, scenario) in [
            ("1 busy, 15 idle", busy_alone),
            ("1 busy, 15 at 0.01x", busy_and_trickles),
            ("16 skewed 1:2:..:16, 3x together", skewed),
        ] {
            let outcome = run(&scenario);
            row(name, &outcome);
            let seconds = outcome.per_second();
            assert!(
                outcome.mean(3, 10) >= 0.9 * LIMIT as f64,
                "{name}: {seconds:?}"
            );
            assert!(
                outcome.mean(3, 10) <= 1.2 * LIMIT as f64,
                "{name}: {seconds:?}"
            );
            let half_even = LIMIT as f64 / 16.0 / 2.0;
            for (n, (admitted, offered)) in per_environment(&outcome).into_iter().enumerate() {
                if offered > 0.0 {
                    assert!(
                        admitted >= offered.min(half_even) * 0.95,
                        "{name}: environment {n} got {admitted} of {offered}"
                    );
                }
            }
        }
    }

    /// An account offered 0.8x its limit, spread over one to sixteen environments, is never
    /// refused, from the first request on.
    #[test]
    fn an_account_under_its_limit_is_never_refused() {
        for environments in [1, 2, 3, 4, 8, 16] {
            let outcome = run(&Scenario::even(
                LIMIT,
                environments,
                4 * L / 5 / environments as u64,
                60,
            ));
            row(
                &format!("{environments} environments, 0.8x together"),
                &outcome,
            );
            assert_eq!(outcome.refused(), 0, "{environments}");
        }
    }

    /// With Poisson arrivals an account at 0.8x its limit does go over it in some seconds,
    /// and one environment refuses those requests; spread over several, the shares refuse
    /// at most one request in a hundred more than one environment alone (seeds 1 to 5: 0.3%
    /// to 0.6% at sixteen environments, half of it in the first two seconds).
    #[test]
    fn random_arrivals_under_the_limit_are_refused_no_more_than_by_one_environment() {
        let alone = {
            let mut scenario = Scenario::even(LIMIT, 1, 4 * L / 5, 60);
            scenario.arrivals = Arrivals::Poisson { seed: 7 };
            run(&scenario)
        };
        row("1 environment, 0.8x, Poisson", &alone);
        for environments in [2, 4, 8, 16] {
            let mut scenario =
                Scenario::even(LIMIT, environments, 4 * L / 5 / environments as u64, 60);
            scenario.arrivals = Arrivals::Poisson { seed: 7 };
            let outcome = run(&scenario);
            row(
                &format!("{environments} environments, 0.8x, Poisson"),
                &outcome,
            );
            let offered: u64 = outcome.offered.iter().flatten().sum();
            assert!(
                outcome.refused() <= alone.refused() + offered / 100,
                "{environments}"
            );
        }
    }

    /// Below half the limit an environment writes when it first sees traffic worth
    /// reporting, a second later, and then once a lease; an account that barely uses its
    /// limit (a request a second in each environment) never writes.
    #[test]
    fn below_half_the_limit_reports_are_rare() {
        for environments in [1, 4, 16] {
            let outcome = run(&Scenario::even(
                LIMIT,
                environments,
                2 * L / 5 / environments as u64,
                60,
            ));
            row(
                &format!("{environments} environments, 0.4x together"),
                &outcome,
            );
            assert_eq!(outcome.refused(), 0);
            let leases = 60_000 / super::super::QUIET_INTERVAL_MS + 1;
            assert!(
                outcome.writes.iter().sum::<u64>() <= environments as u64 * (2 + leases),
                "{:?}",
                outcome.writes
            );
        }
        let mut barely = Scenario::even(LIMIT, 16, 1000, 60);
        for load in &mut barely.loads {
            load.from_ms = 500;
        }
        let barely = run(&barely);
        assert_eq!(barely.writes.iter().sum::<u64>(), 0);
    }

    /// DynamoDB down for ten seconds in the middle of an overload, and under the limit: each
    /// environment falls back to the limit alone (at most the limit each), refuses nothing of
    /// an account under its limit, and settles again within three seconds of the end.
    #[test]
    fn an_outage_falls_back_to_the_limit_in_each_environment() {
        let mut overload = Scenario::even(LIMIT, 4, 3 * L, 30);
        overload.outage = Some((10_000, 20_000));
        let outcome = run(&overload);
        let seconds = outcome.per_second();
        println!("outage 10-20 s, 4 environments at 3x: {seconds:?}");
        assert!(seconds.iter().all(|&n| n <= 4 * LIMIT), "{seconds:?}");
        assert!(outcome.mean(24, 30) <= 1.2 * LIMIT as f64, "{seconds:?}");
        let mut under = Scenario::even(LIMIT, 16, 4 * L / 5 / 16, 30);
        under.outage = Some((10_000, 20_000));
        assert_eq!(run(&under).refused(), 0);
    }

    /// Slow reports: under a second they only delay the shares; over a second each
    /// environment decides by the limit alone while one is in flight.
    #[test]
    fn slow_reports_keep_the_bounds() {
        for latency_ms in [50, 500, 2000] {
            let mut overload = Scenario::even(LIMIT, 16, 3 * L, 30);
            overload.latency_ms = latency_ms;
            let outcome = run(&overload);
            row(
                &format!("16 environments at 3x, reports {latency_ms} ms"),
                &outcome,
            );
            let seconds = outcome.per_second();
            if latency_ms <= super::super::STALL_MS {
                assert!(outcome.mean(5, 30) <= 1.2 * LIMIT as f64, "{seconds:?}");
            } else {
                assert!(seconds.iter().all(|&n| n <= 16 * LIMIT), "{seconds:?}");
            }
            let mut under = Scenario::even(LIMIT, 16, 4 * L / 5 / 16, 30);
            under.latency_ms = latency_ms;
            assert_eq!(run(&under).refused(), 0, "{latency_ms}");
        }
    }

    /// Environments that start while others are at the limit (a scale-out, a restart): a new
    /// environment admits at most the limit before its first answer, the account stays
    /// within twice its limit in any second, and settles again.
    #[test]
    fn new_environments_join_within_the_bounds() {
        let mut loads: Vec<Load> = (0..4).map(|n| load(n, 3 * L, 30)).collect();
        // One of them restarts at 10 s (a new environment takes its traffic), and four more
        // start at 15 s.
        loads[3].to_ms = 10_000;
        loads.push(Load {
            environment: 4,
            from_ms: 10_000,
            to_ms: 30_000,
            per_second: 3 * L,
        });
        loads.extend((5..9).map(|n| Load {
            environment: n,
            from_ms: 15_000,
            to_ms: 30_000,
            per_second: 3 * L,
        }));
        let outcome = run(&scenario(9, loads, 30));
        let seconds = outcome.per_second();
        println!("restart at 10 s, 4 more at 15 s: {seconds:?}");
        assert!(seconds[1..].iter().all(|&n| n <= 2 * LIMIT), "{seconds:?}");
        assert!(outcome.mean(20, 30) <= 1.2 * LIMIT as f64, "{seconds:?}");
        assert!(outcome.admitted[4][10] <= LIMIT);
    }
}
