//! The time source. Handlers and key lifecycle take a [`Clock`] so tests can move time
//! (grace periods, expiry) without sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::Timestamp;

#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Timestamp::now))
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

/// The real time shifted forward by however far tests have advanced it. Tests move it past
/// grace periods and expiries without sleeping, and it stays close enough to the real time
/// to agree with tools (such as the operator CLI) that use the system clock.
#[derive(Clone, Default)]
pub struct ManualClock(Arc<Mutex<Duration>>);

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    pub fn clock(&self) -> Clock {
        let offset = Arc::clone(&self.0);
        Clock(Arc::new(move || {
            Timestamp::now().plus(*offset.lock().unwrap())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_runs_ahead_by_what_it_was_advanced() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let before = Timestamp::now();
        assert!(clock.now() >= before);
        manual.advance(Duration::from_secs(3600));
        let ahead = clock.now();
        assert!(ahead >= before.plus(Duration::from_secs(3600)));
        assert!(ahead < Timestamp::now().plus(Duration::from_secs(3660)));
    }
}
