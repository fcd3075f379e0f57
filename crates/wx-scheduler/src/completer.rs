//! Recording completions. Every fenced finish goes through a [`Completer`]: completions that
//! arrive while earlier ones are being written are written together, as one batch (one
//! transaction; on PostgreSQL one fence statement), as River's completer does. Nothing waits
//! for a batch to fill: a lone completion is written at once. A batch that fails for a reason
//! other than a transient one is written again one completion at a time, so one bad completion
//! holds back no other; a transient failure is retried with back-off until the lease would
//! have run out anyway (after that the step is rescued and runs again; steps are idempotent).

use crate::metrics::SchedulerMetrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::warn;
use wx_model::Clock;
use wx_store::{Claim, Completion, Db, Fence, StoreError};

/// How a completion was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Written: the claim was still held.
    Applied,
    /// Not written: the lease had been lost (the step was rescued or claimed again).
    Lost,
    /// Not written: the database kept failing until the lease ran out. The step will be
    /// rescued and run again.
    Unrecorded(String),
}

impl From<Fence> for Recorded {
    fn from(f: Fence) -> Recorded {
        match f {
            Fence::Applied => Recorded::Applied,
            Fence::Lost => Recorded::Lost,
        }
    }
}

/// Completer settings.
#[derive(Debug, Clone, Copy)]
pub struct CompleterConfig {
    /// Most completions in one batch (1: one transaction per completion).
    pub max_batch: usize,
    /// Batches written at once (each on its own connection).
    pub writers: usize,
    /// How long a completion may keep failing before it is given up (the lease).
    pub lease: Duration,
}

struct Request {
    claim: Claim,
    completion: Completion,
    deadline: Instant,
    reply: oneshot::Sender<Recorded>,
}

/// A handle on the completer task. Cheap to clone; the task ends once every handle is dropped
/// and what they sent is written.
#[derive(Clone)]
pub struct Completer {
    requests: mpsc::UnboundedSender<Request>,
    lease: Duration,
}

impl Completer {
    /// Starts the completer task on the current runtime.
    pub fn start(
        db: Db,
        clock: Arc<dyn Clock>,
        config: CompleterConfig,
        metrics: Arc<SchedulerMetrics>,
    ) -> (Completer, tokio::task::JoinHandle<()>) {
        let (requests, inbox) = mpsc::unbounded_channel();
        let writer = Writer { db, clock, metrics };
        let task = tokio::spawn(collect(inbox, writer, config));
        (
            Completer {
                requests,
                lease: config.lease,
            },
            task,
        )
    }

    /// Records a completion (fenced by its claim).
    pub async fn finish(&self, claim: Claim, completion: Completion) -> Recorded {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            claim,
            completion,
            deadline: Instant::now() + self.lease,
            reply,
        };
        if self.requests.send(request).is_err() {
            return Recorded::Unrecorded("the completer has stopped".into());
        }
        answer.await.unwrap_or_else(|_| {
            // the writer task was aborted (the runtime is shutting down)
            Recorded::Unrecorded("the completer stopped before writing".into())
        })
    }
}

/// Gathers requests into batches and writes them, up to `writers` batches at once.
async fn collect(
    mut inbox: mpsc::UnboundedReceiver<Request>,
    writer: Writer,
    config: CompleterConfig,
) {
    let writer = Arc::new(writer);
    let free = Arc::new(Semaphore::new(config.writers.max(1)));
    let mut writing = JoinSet::new();
    while let Some(first) = inbox.recv().await {
        // while every writer is busy, more completions queue up and join the next batch
        let Ok(permit) = free.clone().acquire_owned().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < config.max_batch.max(1) {
            match inbox.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        writer.metrics.completion_batch.observe(batch.len() as f64);
        writer.metrics.completion_batches.inc();
        let writer = writer.clone();
        writing.spawn(async move {
            let _permit = permit;
            writer.write(batch).await;
        });
        while writing.try_join_next().is_some() {}
    }
    while writing.join_next().await.is_some() {}
}

struct Writer {
    db: Db,
    clock: Arc<dyn Clock>,
    metrics: Arc<SchedulerMetrics>,
}

impl Writer {
    /// Writes a batch; if it fails for a non-transient reason, writes its completions one by one.
    async fn write(&self, batch: Vec<Request>) {
        if batch.len() == 1 {
            return self.write_retrying(batch).await;
        }
        match self.try_write(&batch).await {
            Ok(fences) => reply(batch, fences),
            Err(e) => {
                self.metrics.db_errors.inc();
                warn!(error = %e, completions = batch.len(), "writing a batch of completions failed; writing them one by one");
                for request in batch {
                    self.write_retrying(vec![request]).await;
                }
            }
        }
    }

    /// Writes, retrying with back-off until the earliest deadline of the batch.
    async fn write_retrying(&self, batch: Vec<Request>) {
        let deadline = batch.iter().map(|r| r.deadline).min();
        let mut pause = Duration::from_millis(100);
        loop {
            let error = match self.try_write(&batch).await {
                Ok(fences) => return reply(batch, fences),
                Err(e) => e,
            };
            self.metrics.db_errors.inc();
            let retry = deadline.is_some_and(|d| Instant::now() < d)
                && (error.is_transient() || matches!(error, StoreError::Query(_)));
            let steps: Vec<String> = batch.iter().map(|r| r.claim.key.to_string()).collect();
            if !retry {
                warn!(steps = ?steps, error = %error, "could not record the completion; the lease will expire and the step will run again");
                let reason = error.to_string();
                for r in batch {
                    let _ = r.reply.send(Recorded::Unrecorded(reason.clone()));
                }
                return;
            }
            warn!(steps = ?steps, error = %error, "recording the completion failed; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn try_write(&self, batch: &[Request]) -> Result<Vec<Fence>, StoreError> {
        let items: Vec<(&Claim, &Completion)> =
            batch.iter().map(|r| (&r.claim, &r.completion)).collect();
        self.db
            .queue()
            .with_clock(&*self.clock)
            .finish_many(&items, self.clock.now())
            .await
    }
}

fn reply(batch: Vec<Request>, fences: Vec<Fence>) {
    for (r, fence) in batch.into_iter().zip(fences) {
        // the step's task may be gone (aborted at shutdown): the completion is written anyway
        let _ = r.reply.send(fence.into());
    }
}
