//! Back-off after failed claim rounds: exponential pauses, and a warning at most every
//! `LOG_EVERY` that says how many rounds failed since the last one.

use std::time::Duration;
use tokio::time::Instant;

/// The first pause after a failure.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause.
const MAX_PAUSE: Duration = Duration::from_secs(30);
/// The shortest interval between two warnings.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The state of consecutive claim failures.
#[derive(Debug, Default)]
pub(crate) struct ClaimBackoff {
    failures: u32,
    unreported: u64,
    last_report: Option<Instant>,
}

/// What to do after a failure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AfterFailure {
    /// How long to pause before claiming again.
    pub pause: Duration,
    /// `Some(n)`: warn now, about `n` failed rounds (this one included) since the last warning.
    pub report: Option<u64>,
}

impl ClaimBackoff {
    /// Records a failed round at `now`.
    pub fn failed(&mut self, now: Instant) -> AfterFailure {
        self.failures = self.failures.saturating_add(1);
        self.unreported += 1;
        let doublings = self.failures.saturating_sub(1).min(16);
        let pause = FIRST_PAUSE.saturating_mul(1 << doublings).min(MAX_PAUSE);
        let due = self.last_report.is_none_or(|t| now - t >= LOG_EVERY);
        let report = due.then(|| {
            self.last_report = Some(now);
            std::mem::take(&mut self.unreported)
        });
        AfterFailure { pause, report }
    }

    /// Records a successful round; returns how many rounds had failed in a row, if any.
    pub fn succeeded(&mut self) -> Option<u32> {
        let failed = std::mem::take(&mut self.failures);
        self.unreported = 0;
        self.last_report = None;
        (failed > 0).then_some(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_warnings_are_rate_limited_with_a_count() {
        let mut b = ClaimBackoff::default();
        let t0 = Instant::now();
        let first = b.failed(t0);
        assert_eq!(
            first,
            AfterFailure {
                pause: FIRST_PAUSE,
                report: Some(1)
            }
        );
        let mut at = t0;
        let mut pauses = vec![first.pause];
        let mut reports = Vec::new();
        for _ in 0..40 {
            at += Duration::from_secs(1);
            let f = b.failed(at);
            pauses.push(f.pause);
            reports.extend(f.report);
        }
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(pauses[2], FIRST_PAUSE * 4);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]), "{pauses:?}");
        assert_eq!(*pauses.last().unwrap(), MAX_PAUSE);
        // 40 more failures, one a second: a warning every 10 s, each counting 10 rounds
        assert_eq!(reports, vec![10, 10, 10, 10]);
        assert_eq!(b.succeeded(), Some(41));
        assert_eq!(b.succeeded(), None);
        assert_eq!(b.failed(at).pause, FIRST_PAUSE, "a success starts over");
    }
}
