//! The retrying sub-step wrapper: turns a step's result into a queue completion.
//!
//! A step returns [`StepResult`]: success with its effects, "not ready, look again at T"
//! (no attempt consumed), or a [`StepFailure`]. Failures become a retry at the time the kind's
//! [`RetryPolicy`] says, or a final failure once retries are exhausted (or the failure is not
//! worth retrying, e.g. a tampered chunk). The sanitized error is stored in the step row's
//! `error_json` and, for miner steps, mirrored into `weather_forecast_stats.forecast_error_msg`.
//! All effects are written by the store in the same transaction as the fenced completion.

use chrono::{DateTime, Utc};
use rand::Rng;
use wx_model::retry::RetryDecision;
use wx_model::step::Scope;
use wx_model::{Blame, ErrorKind, RetryPolicy, StepError};
use wx_store::{Claim, Completion, Effects, Outcome, StatsPatch};

/// How a step ended when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Done; apply these effects.
    Done(Effects),
    /// Data not ready: run again at `until` without consuming an attempt; apply `effects`
    /// (e.g. the leads scored so far).
    Wait {
        /// When to look again.
        until: DateTime<Utc>,
        /// What is awaited, for operators.
        reason: String,
        /// Effects of the work done so far.
        effects: Effects,
    },
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFailure {
    /// What went wrong (sanitized).
    pub error: StepError,
    /// Whether another attempt may succeed (network trouble: yes; a tampered chunk: no).
    pub retryable: bool,
    /// Effects to apply with the failure in any case (e.g. hosting status).
    pub effects: Box<Effects>,
    /// Effects to apply only when the step fails for good (e.g. a terminal forecast status).
    pub on_final: Box<Effects>,
    /// No retry after this time: a retry that would come later fails for good now (the
    /// submission window of verification, docs/operating.md "Fair play").
    pub retry_until: Option<DateTime<Utc>>,
}

impl StepFailure {
    /// A retryable failure without effects.
    pub fn retryable(kind: ErrorKind, blame: Blame, message: &str) -> Self {
        StepFailure {
            error: StepError::new(kind, blame, message, &[]),
            retryable: true,
            effects: Box::default(),
            on_final: Box::default(),
            retry_until: None,
        }
    }

    /// A failure that no retry can fix.
    pub fn permanent(kind: ErrorKind, blame: Blame, message: &str) -> Self {
        StepFailure {
            retryable: false,
            ..StepFailure::retryable(kind, blame, message)
        }
    }

    /// Adds effects applied only when the step fails for good.
    pub fn on_final(mut self, effects: Effects) -> Self {
        self.on_final = Box::new(effects);
        self
    }

    /// Retries end at `deadline`: a retry due later becomes a final failure.
    pub fn retry_until(mut self, deadline: DateTime<Utc>) -> Self {
        self.retry_until = Some(deadline);
        self
    }

    /// Adds effects applied with the failure in any case.
    pub fn with_effects(mut self, effects: Effects) -> Self {
        self.effects = Box::new(effects);
        self
    }
}

/// What a step returns.
pub type StepResult = Result<StepOutcome, StepFailure>;

/// Turns a step result into the completion handed to the queue.
pub fn complete(
    claim: &Claim,
    policy: &RetryPolicy,
    result: StepResult,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Completion {
    match result {
        Ok(StepOutcome::Done(effects)) => Completion {
            outcome: Outcome::Succeeded,
            context: None,
            effects,
        },
        Ok(StepOutcome::Wait {
            until,
            reason,
            effects,
        }) => Completion {
            outcome: Outcome::Wait {
                until: until.max(now),
                reason,
            },
            context: None,
            effects,
        },
        Err(failure) => {
            let attempt = claim.attempt + 1;
            let mut decision = if failure.retryable {
                // the row's max_retries (set at enqueue from the policy) bounds the attempts
                let policy = RetryPolicy {
                    max_retries: claim.max_retries,
                    ..*policy
                };
                policy.decide(attempt, rng)
            } else {
                RetryDecision::GiveUp
            };
            let mut error = failure.error;
            if let (RetryDecision::RetryAfter(delay), Some(deadline)) =
                (&decision, failure.retry_until)
            {
                let at =
                    now + chrono::Duration::from_std(*delay).unwrap_or(chrono::Duration::zero());
                if at > deadline {
                    decision = RetryDecision::GiveUp;
                    error.message = format!(
                        "{} (no retry: late, the submission window closed at {})",
                        error.message,
                        deadline.format("%Y-%m-%dT%H:%M:%SZ")
                    );
                }
            }
            let mut effects = *failure.effects;
            // The miner's error message tells the miner and the operator what went wrong with
            // the miner. A failure of our own side (database, cache, upstream data) that will
            // be retried is not that: it is logged and kept in the step row, and the miner's
            // message stays as it was (docs/pipeline.md §4.6). One that ends the step is shown.
            let ours_and_retried = error.blame == Blame::Infrastructure
                && matches!(decision, RetryDecision::RetryAfter(_));
            if claim.key.kind.scope() != Scope::Run && !ours_and_retried {
                effects.stats.push((
                    claim.key.miner,
                    StatsPatch {
                        forecast_error_msg: Some(error.to_json()),
                        ..Default::default()
                    },
                ));
            }
            match decision {
                RetryDecision::RetryAfter(delay) => Completion {
                    outcome: Outcome::Retry {
                        at: now
                            + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()),
                        error,
                    },
                    context: None,
                    effects,
                },
                RetryDecision::GiveUp => {
                    effects.merge(*failure.on_final);
                    Completion {
                        outcome: Outcome::Failed { error },
                        context: None,
                        effects,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use wx_model::{Backoff, ForecastStatus, MinerUid, RunId, StepKey, StepKind, StepStatus};

    fn claim(attempt: u32, max_retries: u32) -> Claim {
        let now: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        Claim {
            id: 1,
            token: "t".into(),
            key: StepKey::miner(RunId(1), MinerUid::new(7), StepKind::VerifyOpenStore),
            hotkey: "hk".into(),
            attempt,
            max_retries,
            lease_losses: 0,
            claimed_from: StepStatus::Pending,
            context: None,
            started_at: now,
            lease_expires_at: now,
        }
    }

    fn failed_for_good() -> Effects {
        Effects {
            stats: vec![(
                MinerUid::new(7),
                StatsPatch::status(ForecastStatus::VerifyFailed),
            )],
            ..Default::default()
        }
    }

    #[test]
    fn a_retried_failure_of_our_own_side_leaves_the_miners_error_message_alone() {
        let now: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::new(true, 10, 2, Backoff::Exponential)
        };
        let mut rng = StdRng::seed_from_u64(3);
        let ours = || {
            StepFailure::retryable(
                ErrorKind::Database,
                Blame::Infrastructure,
                "database query failed: connection closed",
            )
        };
        let c = complete(&claim(0, 2), &policy, Err(ours()), now, &mut rng);
        assert!(matches!(c.outcome, Outcome::Retry { .. }));
        assert!(
            c.effects.stats.is_empty(),
            "a database outage is not the miner's error: {:?}",
            c.effects.stats
        );
        // the last attempt fails the step: then the message says why
        let c = complete(&claim(2, 2), &policy, Err(ours()), now, &mut rng);
        assert!(matches!(c.outcome, Outcome::Failed { .. }));
        assert!(c.effects.stats.iter().any(|(_, p)| {
            p.forecast_error_msg
                .as_deref()
                .is_some_and(|m| m.contains("connection closed"))
        }));
    }

    #[test]
    fn retryable_failures_retry_until_max_then_fail_with_final_effects() {
        let now: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::new(true, 10, 2, Backoff::Exponential)
        };
        let mut rng = StdRng::seed_from_u64(3);
        let fail = || {
            StepFailure::retryable(ErrorKind::Network, Blame::Miner, "connection refused")
                .on_final(failed_for_good())
        };
        let c = complete(&claim(0, 2), &policy, Err(fail()), now, &mut rng);
        assert!(
            matches!(c.outcome, Outcome::Retry { at, .. } if at == now + chrono::Duration::seconds(10))
        );
        assert_eq!(
            c.effects.stats.len(),
            1,
            "only the error mirror, not the final status"
        );
        assert!(
            c.effects.stats[0]
                .1
                .forecast_error_msg
                .as_deref()
                .unwrap()
                .contains("connection refused")
        );
        let c = complete(&claim(1, 2), &policy, Err(fail()), now, &mut rng);
        assert!(
            matches!(c.outcome, Outcome::Retry { at, .. } if at == now + chrono::Duration::seconds(20))
        );
        let c = complete(&claim(2, 2), &policy, Err(fail()), now, &mut rng);
        assert!(matches!(c.outcome, Outcome::Failed { .. }));
        assert!(
            c.effects
                .stats
                .iter()
                .any(|(_, p)| p.forecast_status == Some(ForecastStatus::VerifyFailed))
        );
    }

    #[test]
    fn permanent_failures_do_not_retry() {
        let now: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let policy = RetryPolicy::new(true, 10, 5, Backoff::Exponential);
        let mut rng = StdRng::seed_from_u64(3);
        let f = StepFailure::permanent(
            ErrorKind::Integrity,
            Blame::Miner,
            "hash mismatch for 2t/0.0.0",
        );
        let c = complete(&claim(0, 5), &policy, Err(f), now, &mut rng);
        match c.outcome {
            Outcome::Failed { error } => assert_eq!(error.kind, ErrorKind::Integrity),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn waiting_is_never_in_the_past() {
        let now: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let w = StepOutcome::Wait {
            until: now - chrono::Duration::hours(1),
            reason: "x".into(),
            effects: Effects::default(),
        };
        let c = complete(&claim(0, 2), &RetryPolicy::default(), Ok(w), now, &mut rng);
        assert!(matches!(c.outcome, Outcome::Wait { until, .. } if until == now));
    }
}
