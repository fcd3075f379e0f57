//! What the scheduler runs: the [`StepRunner`] that turns a claim into a completion, and
//! [`PeriodicJob`]s.

use futures::FutureExt;
use futures::future::BoxFuture;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wx_model::{RetryPolicy, StepError, StepKind};
use wx_store::{Claim, Completion, Outcome};

/// Runs one claimed step. Implemented for `wx_steps::Pipeline` (the validator's steps) and by
/// tests; the scheduler only dispatches.
pub trait StepRunner: Send + Sync + 'static {
    /// Runs the step and says how the attempt ended. `cancel` fires when the lease was lost or
    /// the process shuts down past its grace period: stop soon (the completion will be fenced).
    fn run(&self, claim: Claim, cancel: CancellationToken) -> BoxFuture<'static, Completion>;

    /// The retry policy of a kind.
    fn retry_policy(&self, kind: StepKind) -> RetryPolicy;

    /// The policy of lost leases of a kind (its worker died or stalled): the delay before the
    /// step is due again, and how many lost leases (`max_retries`) it takes before the step
    /// gives up. By default the kind's retry policy, always retried.
    fn lease_loss_policy(&self, kind: StepKind) -> RetryPolicy {
        RetryPolicy {
            should_retry: true,
            ..self.retry_policy(kind)
        }
    }

    /// The completion of a step that gives up without running (it lost too many leases, or
    /// its run is over): a failure with `error`, carrying the effects of the step's own final
    /// failure. By default a failure without effects.
    fn give_up(&self, claim: Claim, error: StepError) -> BoxFuture<'static, Completion> {
        let _ = claim;
        futures::future::ready(Completion::bare(Outcome::Failed { error })).boxed()
    }
}

/// Why one run of a [`PeriodicJob`] failed: the job's own typed error (a database or cache
/// error), logged by the scheduler, which knows nothing of the job's content.
pub type JobError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A job the scheduler runs every `interval` (e.g. create the day's run).
pub trait PeriodicJob: Send + Sync + 'static {
    /// For logs.
    fn name(&self) -> &str;
    /// How often.
    fn interval(&self) -> Duration;
    /// One run of the job; errors are logged and the job runs again next interval.
    fn run(&self) -> BoxFuture<'static, Result<(), JobError>>;
}
