//! The pipeline as the scheduler's [`StepRunner`]: the daemon and `wx-step run` run steps
//! through it.

use crate::Pipeline;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use wx_model::{RetryPolicy, StepError, StepKind};
use wx_scheduler::StepRunner;
use wx_store::{Claim, Completion};

impl StepRunner for Pipeline {
    fn run(&self, claim: Claim, cancel: CancellationToken) -> BoxFuture<'static, Completion> {
        let pipeline = self.clone();
        async move { pipeline.run(claim, cancel).await }.boxed()
    }

    fn retry_policy(&self, kind: StepKind) -> RetryPolicy {
        Pipeline::retry_policy(self, kind)
    }

    fn lease_loss_policy(&self, kind: StepKind) -> RetryPolicy {
        self.context().config.pipeline.lease_loss_policy(kind)
    }

    fn give_up(&self, claim: Claim, error: StepError) -> BoxFuture<'static, Completion> {
        let pipeline = self.clone();
        async move { pipeline.give_up(claim, error).await }.boxed()
    }
}
