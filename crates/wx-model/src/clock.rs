//! The injected clock: every component asks a [`Clock`] for "now", so tests can shift time.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

/// A source of the current UTC time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock shifted by an adjustable offset (tests jump forward in time with it).
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: Mutex<Duration>,
}

impl OffsetClock {
    /// A clock that starts at the system time.
    pub fn new() -> Self {
        OffsetClock::default()
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut o = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        *o += by;
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_clock_moves_forward() {
        let c = OffsetClock::new();
        let before = c.now();
        c.advance(Duration::hours(5));
        let after = c.now();
        assert!(after - before >= Duration::hours(5));
        assert!(after - before < Duration::hours(5) + Duration::seconds(5));
    }
}
