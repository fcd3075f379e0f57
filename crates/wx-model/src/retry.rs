//! Retry policies: whether, when and how often a failed sub-step runs again.

use crate::text_enum;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

text_enum! {
    /// How the delay grows with the attempt number.
    pub enum Backoff ("retry backoff") {
        /// `base · 2^(attempt-1)`.
        Exponential => "exponential",
        /// `base · attempt`.
        Linear => "linear",
        /// `base` every time.
        None => "none",
    }
}

/// The retry policy of one sub-step (docs/pipeline.md §4.5).
///
/// `attempt` below is the number of attempts consumed so far, counting the one that just failed
/// (1 after the first failure). A step fails for good once `attempt > max_retries`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Whether a failure is retried at all.
    pub should_retry: bool,
    /// Base delay in seconds.
    pub retry_delay_seconds: u32,
    /// How many retries after the first attempt (so `max_retries + 1` attempts in all).
    pub max_retries: u32,
    /// Growth of the delay.
    pub backoff: Backoff,
    /// Upper bound of the delay before jitter, in seconds.
    pub max_delay_seconds: u32,
    /// Relative jitter, applied uniformly in `[-jitter, +jitter]` (0.1 = ±10 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(true, 300, 3, Backoff::Exponential)
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryDecision {
    /// Run again after this delay.
    RetryAfter(Duration),
    /// Retries are exhausted or disabled: the step fails for good.
    GiveUp,
}

impl RetryPolicy {
    /// Default cap of the un-jittered delay: six hours.
    pub const DEFAULT_MAX_DELAY_SECONDS: u32 = 6 * 3600;

    /// A policy with ±10 % jitter and the default cap.
    pub const fn new(
        should_retry: bool,
        retry_delay_seconds: u32,
        max_retries: u32,
        backoff: Backoff,
    ) -> Self {
        RetryPolicy {
            should_retry,
            retry_delay_seconds,
            max_retries,
            backoff,
            max_delay_seconds: Self::DEFAULT_MAX_DELAY_SECONDS,
            jitter: 0.1,
        }
    }

    /// The same policy with a different base delay (test mode uses about 5 s).
    pub fn with_base_delay(mut self, seconds: u32) -> Self {
        self.retry_delay_seconds = seconds;
        self
    }

    /// The delay before jitter for the given consumed attempt count (≥ 1), capped.
    pub fn nominal_delay(&self, attempt: u32) -> Duration {
        let base = f64::from(self.retry_delay_seconds);
        let n = f64::from(attempt.max(1));
        let secs = match self.backoff {
            Backoff::Exponential => base * 2f64.powf(n - 1.0),
            Backoff::Linear => base * n,
            Backoff::None => base,
        };
        Duration::from_secs_f64(secs.min(f64::from(self.max_delay_seconds)))
    }

    /// The jittered delay for the given consumed attempt count.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.nominal_delay(attempt).as_secs_f64();
        let j = self.jitter.clamp(0.0, 1.0);
        let factor = if j > 0.0 {
            rng.gen_range(1.0 - j..=1.0 + j)
        } else {
            1.0
        };
        Duration::from_secs_f64(nominal * factor)
    }

    /// Decide after a failure; `attempt` counts the attempt that just failed.
    pub fn decide(&self, attempt: u32, rng: &mut impl Rng) -> RetryDecision {
        if self.should_retry && attempt <= self.max_retries {
            RetryDecision::RetryAfter(self.delay(attempt, rng))
        } else {
            RetryDecision::GiveUp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn exponential_linear_and_none_grow_as_documented() {
        let exp = RetryPolicy::new(true, 10, 5, Backoff::Exponential);
        let lin = RetryPolicy::new(true, 10, 5, Backoff::Linear);
        let none = RetryPolicy::new(true, 10, 5, Backoff::None);
        let secs = |p: &RetryPolicy, a| p.nominal_delay(a).as_secs();
        assert_eq!([1, 2, 3, 4].map(|a| secs(&exp, a)), [10, 20, 40, 80]);
        assert_eq!([1, 2, 3, 4].map(|a| secs(&lin, a)), [10, 20, 30, 40]);
        assert_eq!([1, 2, 3, 4].map(|a| secs(&none, a)), [10, 10, 10, 10]);
    }

    #[test]
    fn delay_is_capped() {
        let mut p = RetryPolicy::new(true, 60, 100, Backoff::Exponential);
        p.max_delay_seconds = 600;
        assert_eq!(p.nominal_delay(30).as_secs(), 600);
        assert_eq!(
            p.nominal_delay(1000).as_secs(),
            600,
            "huge attempt counts must not overflow"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let p = RetryPolicy::new(true, 100, 5, Backoff::Exponential);
        let mut rng = StdRng::seed_from_u64(7);
        let samples: Vec<f64> = (0..2000)
            .map(|_| p.delay(3, &mut rng).as_secs_f64())
            .collect();
        let (lo, hi) = samples
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        assert!(
            lo >= 360.0 && hi <= 440.0,
            "delay outside ±10 % of 400 s: {lo}..{hi}"
        );
        assert!(
            hi - lo > 40.0,
            "jitter should spread the delays, got {lo}..{hi}"
        );
    }

    #[test]
    fn gives_up_after_max_retries_or_when_disabled() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = RetryPolicy::new(true, 5, 2, Backoff::None);
        assert!(matches!(
            p.decide(1, &mut rng),
            RetryDecision::RetryAfter(_)
        ));
        assert!(matches!(
            p.decide(2, &mut rng),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(p.decide(3, &mut rng), RetryDecision::GiveUp);
        let off = RetryPolicy {
            should_retry: false,
            ..p
        };
        assert_eq!(off.decide(1, &mut rng), RetryDecision::GiveUp);
    }

    #[test]
    fn partial_toml_sections_keep_defaults() {
        let p: RetryPolicy =
            serde_json::from_str(r#"{"max_retries": 9, "backoff": "linear"}"#).unwrap();
        assert_eq!(p.max_retries, 9);
        assert_eq!(p.backoff, Backoff::Linear);
        assert_eq!(
            p.retry_delay_seconds,
            RetryPolicy::default().retry_delay_seconds
        );
    }

    #[test]
    fn misspelt_keys_are_refused() {
        let e = serde_json::from_str::<RetryPolicy>(r#"{"max_retry": 9}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `max_retry`"), "{e}");
    }
}
