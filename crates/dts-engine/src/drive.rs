//! Driving one connector step to its end: cancellation honoured at once, transient errors
//! retried with capped backoff (within the retry budget for a migration, without a deadline for
//! a step that runs as long as the job lives, the outage shown in the job's detail), and the
//! step's progress persisted on a timer and on urgent events, off the runtime's threads.

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dts_core::{ConnectorError, ErrorClass, RetryState};
use dts_store::now_string;
use tokio_util::sync::CancellationToken;

use crate::observer::JobObserver;
use crate::{ConnectorRegistry, Engine};

/// How a job's task ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done,
    Stopped,
    Failed(String),
}

/// How long a step retries transient errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Within the engine's retry budget (a migration's steps).
    Budget,
    /// For as long as the job lives (a synchronization's or change tracking's stream).
    Forever,
}

/// A change stream's observer, and the number of its incremental step (for an in-stream
/// snapshot's step change).
#[derive(Clone, Copy)]
pub(crate) struct Watched<'a> {
    pub observer: &'a JobObserver,
    pub incremental_step: Option<i64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn urgent(watched: Option<Watched<'_>>) {
    match watched {
        Some(w) => w.observer.urgent.notified().await,
        None => std::future::pending().await,
    }
}

impl<R: ConnectorRegistry> Engine<R> {
    /// Writes a step's progress (and its stream's observed state) to the job.
    async fn persist(
        &self,
        id: &str,
        progress: &AtomicI64,
        watched: Option<Watched<'_>>,
        retry: &Mutex<Option<RetryState>>,
    ) {
        let pct = progress.load(Ordering::Relaxed);
        let retry_now = lock(retry).clone();
        match watched {
            Some(w) => {
                let (change, happened) = w.observer.persist(w.incremental_step);
                self.update(id, change).await;
                if happened.first_ready && w.observer.holds() {
                    tracing::info!(job_id = %id, "destination caught up: checking consistency before ReadyComplete");
                    w.observer.ready.notify_one();
                }
                if happened.snapshot_finished {
                    tracing::info!(job_id = %id, "the snapshot inside the stream is complete: incremental");
                    let _ = self.engine_checkpoints(id).put_flag(crate::checkpoints::REPLICATING).await;
                }
            }
            None => {
                self.update(id, move |j| {
                    if pct >= 0 {
                        j.detail.set_step_progress(pct);
                    }
                    j.detail.retry = retry_now;
                    Ok(())
                })
                .await;
            }
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the job's task is cancelled.
    pub(crate) async fn drive<T, F, Fut>(
        &self,
        id: &str,
        token: &CancellationToken,
        step: &str,
        policy: Retry,
        watched: Option<Watched<'_>>,
        mut attempt: F,
    ) -> Result<T, Outcome>
    where
        F: FnMut(Arc<AtomicI64>) -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        let progress = Arc::new(AtomicI64::new(-1));
        let retry = watched.map(|w| w.observer.retry.clone()).unwrap_or_else(|| Arc::new(Mutex::new(None)));
        let deadline = tokio::time::Instant::now() + self.config.retry_budget;
        let mut backoff = Duration::from_millis(500);
        loop {
            let fut = attempt(progress.clone());
            tokio::pin!(fut);
            let mut tick = tokio::time::interval(self.config.persist_interval);
            let result = loop {
                tokio::select! {
                    r = &mut fut => break r,
                    _ = token.cancelled() => return Err(Outcome::Stopped),
                    _ = tick.tick() => self.persist(id, &progress, watched, &retry).await,
                    _ = urgent(watched) => self.persist(id, &progress, watched, &retry).await,
                }
            };
            match result {
                Ok(v) => {
                    *lock(&retry) = None;
                    self.persist(id, &progress, watched, &retry).await;
                    return Ok(v);
                }
                Err(e)
                    if e.class == ErrorClass::Transient
                        && (policy == Retry::Forever || tokio::time::Instant::now() < deadline) =>
                {
                    tracing::warn!(job_id = %id, step, error = %e.summary, detail = %e.detail, "transient error; retrying");
                    {
                        let mut r = lock(&retry);
                        let state = r.get_or_insert_with(|| RetryState {
                            since: now_string(),
                            attempts: 0,
                            step: step.to_string(),
                            error: String::new(),
                        });
                        state.attempts += 1;
                        state.error = e.summary.clone();
                    }
                    self.persist(id, &progress, watched, &retry).await;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = token.cancelled() => return Err(Outcome::Stopped),
                    }
                    backoff = (backoff * 2).min(self.config.retry_backoff_cap);
                }
                Err(e) => {
                    tracing::warn!(job_id = %id, step, summary = %e.summary, detail = %e.detail, "step failed");
                    return Err(Outcome::Failed(format!("[{step}] {}", e.summary)));
                }
            }
        }
    }
}
