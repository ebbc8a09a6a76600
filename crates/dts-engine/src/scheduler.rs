//! The engine loop: it looks at the store (woken by the API, or every `poll_interval`) and runs
//! one task per job that needs one: a precheck, the job's stages, or the release of what a
//! deleted, reset, restarted or ended job holds. A task whose job left the active statuses is
//! cancelled. However a task ends (done, failed, cancelled, panicked) its mark is cleared, and a
//! job whose task panicked fails with an ErrorInfo instead of staying stuck.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dts_core::{InstanceRegistry, JobEvent, JobStatus, ReleaseReason};
use dts_store::{COMPLETE_MODE_KEY, JobError, JobRecord, STOPPED_ON_REQUEST, Store, StoreError, now_string};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::checkpoints::blocking;
use crate::two_way::LocalChanges;
use crate::{ConnectorRegistry, Families};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How often the engine looks at the store even when nobody woke it.
    pub poll_interval: Duration,
    /// How long a migration's step retries transient errors before the job fails. Steps that
    /// run for as long as the job lives (synchronization, change tracking) retry without one.
    pub retry_budget: Duration,
    /// The longest wait between two attempts of a step.
    pub retry_backoff_cap: Duration,
    /// An incremental job is ReadyComplete once it is at most this many seconds behind.
    pub ready_lag_secs: i64,
    /// ...or, for a family whose stream carries no commit times, at most this much of its log
    /// (in the family's unit) behind.
    pub ready_behind: u64,
    /// How often a running step's progress is written to the store.
    pub persist_interval: Duration,
    /// Change tracking: events per published batch.
    pub tracking_batch: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            retry_budget: Duration::from_secs(300),
            retry_backoff_cap: Duration::from_secs(30),
            ready_lag_secs: 1,
            ready_behind: 1 << 20,
            persist_interval: Duration::from_millis(500),
            tracking_batch: 2048,
        }
    }
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskKind {
    Check,
    Job,
    Release,
}

struct Task {
    kind: TaskKind,
    token: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

/// The job engine, generic over the connectors it can run (`Families` in production, a fake
/// family in the engine's tests).
pub struct Engine<R: ConnectorRegistry = Families> {
    pub(crate) store: Arc<Store>,
    pub(crate) registry: R,
    pub(crate) instances: InstanceRegistry,
    pub(crate) wake: Arc<Notify>,
    pub(crate) config: EngineConfig,
    tasks: Mutex<HashMap<String, Task>>,
    /// Per running incremental job: 0 replicate, 1 complete waitForSync, 2 complete immediately.
    pub(crate) completions: Mutex<HashMap<String, Arc<AtomicU8>>>,
    /// Two-way instances (by loop guard): the local changes both directions report.
    pub(crate) two_way: Mutex<HashMap<u32, Arc<LocalChanges>>>,
}

pub(crate) const HELP_DOC: &str = "https://github.com/dts-project/dts/blob/main/README.md#troubleshooting";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine<Families> {
    pub fn new(
        store: Arc<Store>,
        families: Families,
        instances: InstanceRegistry,
        wake: Arc<Notify>,
        config: EngineConfig,
    ) -> Arc<Self> {
        Engine::with_registry(store, families, instances, wake, config)
    }
}

impl<R: ConnectorRegistry> Engine<R> {
    pub fn with_registry(
        store: Arc<Store>,
        registry: R,
        instances: InstanceRegistry,
        wake: Arc<Notify>,
        config: EngineConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            registry,
            instances,
            wake,
            config,
            tasks: Mutex::new(HashMap::new()),
            completions: Mutex::new(HashMap::new()),
            two_way: Mutex::new(HashMap::new()),
        })
    }

    /// Runs until `shutdown` is cancelled; running tasks are cancelled with it and awaited (their
    /// jobs stay in their active status and resume at the next start).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "engine cannot read jobs");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        let handles: Vec<JoinHandle<()>> = {
            let mut tasks = lock(&self.tasks);
            tasks
                .values_mut()
                .filter_map(|t| {
                    t.token.cancel();
                    t.handle.take()
                })
                .collect()
        };
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
    }

    fn running(&self, job_id: &str) -> Option<TaskKind> {
        lock(&self.tasks).get(job_id).map(|t| t.kind)
    }

    async fn tick(self: &Arc<Self>) -> Result<(), StoreError> {
        let (active, releases) =
            blocking(&self.store, |s| Ok::<_, StoreError>((s.active_jobs()?, s.pending_releases()?))).await?;
        // A task whose job left the active statuses (suspended, reset, deleted) stops now; its
        // checkpoints stay until a release (if one was asked) has run.
        // So does a job's stage task whose job went back to a precheck (reset and configured
        // again between two ticks): the check spawns once the old task has ended.
        for (id, task) in lock(&self.tasks).iter() {
            let status = active.iter().find(|j| &j.job_id == id).map(|j| j.status);
            let left = match (task.kind, status) {
                (TaskKind::Release, _) => false,
                (_, None) => true,
                (TaskKind::Job, Some(s)) => s == JobStatus::Checking,
                _ => false,
            };
            if left {
                task.token.cancel();
            }
        }
        for job in &active {
            let running = self.running(&job.job_id);
            match job.status {
                JobStatus::Checking if running.is_none() => self.spawn(TaskKind::Check, job.clone()),
                JobStatus::Running | JobStatus::ReadyComplete if running.is_none() => {
                    self.spawn(TaskKind::Job, job.clone())
                }
                JobStatus::Completing if running == Some(TaskKind::Job) => {
                    let id = job.job_id.clone();
                    let mode =
                        blocking(&self.store, move |s| s.checkpoint(&id, COMPLETE_MODE_KEY)).await.ok().flatten();
                    if let Some(flag) = lock(&self.completions).get(&job.job_id) {
                        flag.store(if mode.as_deref() == Some("immediately") { 2 } else { 1 }, Ordering::Relaxed);
                    }
                }
                JobStatus::Completing if running.is_none() && job.spec.stages().incremental => {
                    self.spawn(TaskKind::Job, job.clone())
                }
                JobStatus::Completing if running.is_none() => {
                    self.update(&job.job_id, |j| {
                        j.apply(JobEvent::Finished)?;
                        j.end_time = now_string();
                        j.detail.finish();
                        j.request_release(ReleaseReason::Ended);
                        Ok(())
                    })
                    .await;
                }
                JobStatus::Stopping => match lock(&self.tasks).get(&job.job_id) {
                    Some(t) => t.token.cancel(),
                    None => {
                        let id = job.job_id.clone();
                        let this = self.clone();
                        tokio::spawn(async move { this.finish_stop(&id).await });
                    }
                },
                _ => {}
            }
        }
        for release in releases {
            if self.running(&release.job_id).is_some() {
                continue;
            }
            // A job about to run its stages releases inline first (a fresh start); a job being
            // checked releases once its check is over.
            let owned_by_job = !release.deleted
                && active.iter().any(|j| {
                    j.job_id == release.job_id
                        && matches!(
                            j.status,
                            JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Completing | JobStatus::Checking
                        )
                });
            if owned_by_job {
                continue;
            }
            let id = release.job_id.clone();
            let job = blocking(&self.store, move |s| s.job_for_release(&id)).await?;
            match job {
                Some(job) => self.spawn(TaskKind::Release, job),
                None => {
                    let id = release.job_id.clone();
                    blocking(&self.store, move |s| s.finish_release(&id)).await?;
                }
            }
        }
        Ok(())
    }

    /// Starts a task for `job`; it is marked running until it ends, however it ends.
    fn spawn(self: &Arc<Self>, kind: TaskKind, job: JobRecord) {
        let token = CancellationToken::new();
        let id = job.job_id.clone();
        let key = id.clone();
        let engine = self.clone();
        let task_token = token.clone();
        lock(&self.tasks).insert(id.clone(), Task { kind, token, handle: None });
        let handle = tokio::spawn(async move {
            let work = {
                let engine = engine.clone();
                tokio::spawn(async move {
                    match kind {
                        TaskKind::Check => engine.run_check(job, task_token).await,
                        TaskKind::Job => engine.run_job(job, task_token).await,
                        TaskKind::Release => engine.run_release(job, task_token).await,
                    }
                })
            };
            if let Err(e) = work.await
                && e.is_panic()
            {
                let what = e.into_panic();
                let text = what
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| what.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(job_id = %id, panic = %text, ?kind, "a job's task panicked");
                engine.fail_after_panic(&id).await;
            }
            lock(&engine.tasks).remove(&id);
            lock(&engine.completions).remove(&id);
            engine.wake.notify_one();
        });
        // The task may have ended already (then its entry is gone and the handle is dropped).
        if let Some(t) = lock(&self.tasks).get_mut(&key)
            && t.handle.is_none()
        {
            t.handle = Some(handle);
        }
    }

    /// A task panicked: its job fails with an ErrorInfo (a check fails its check), so that Stop,
    /// Delete and a new start work on it.
    async fn fail_after_panic(&self, job_id: &str) {
        self.update(job_id, |j| {
            let event = if j.status == JobStatus::Stopping { JobEvent::Stopped } else { JobEvent::Failed };
            j.apply(event)?;
            j.detail.fail_current();
            j.end_time = now_string();
            j.errors.push(JobError {
                log: "dts hit an internal error while running this job; the server log has the details".into(),
                help: HELP_DOC.into(),
            });
            j.request_release(ReleaseReason::Ended);
            Ok(())
        })
        .await;
    }

    /// Applies a change to a job off the runtime's threads, logging (not propagating) store
    /// failures: the next tick retries whatever did not stick.
    pub(crate) async fn update(
        &self,
        job_id: &str,
        change: impl FnOnce(&mut JobRecord) -> Result<(), StoreError> + Send + 'static,
    ) -> bool {
        let id = job_id.to_string();
        match blocking(&self.store, move |s| s.update_job(&id, change)).await {
            Ok(_) => true,
            Err(StoreError::Illegal(t)) => {
                tracing::info!(job_id, from = ?t.from, event = ?t.event, "job changed meanwhile; update skipped");
                false
            }
            Err(StoreError::NotFound) => false,
            Err(e) => {
                tracing::warn!(job_id, error = %e, "cannot update job");
                false
            }
        }
    }

    /// A job in Stopping whose task has ended: it ends in Failed, "stopped on request".
    pub(crate) async fn finish_stop(&self, job_id: &str) {
        let stopped = self
            .update(job_id, |j| {
                j.apply(JobEvent::Stopped)?;
                j.detail.fail_current();
                j.end_time = now_string();
                j.errors.push(JobError { log: STOPPED_ON_REQUEST.into(), help: HELP_DOC.into() });
                j.request_release(ReleaseReason::Ended);
                Ok(())
            })
            .await;
        if stopped {
            tracing::info!(job_id, "job stopped");
        }
    }

    pub(crate) async fn job(&self, job_id: &str) -> Option<JobRecord> {
        let id = job_id.to_string();
        blocking(&self.store, move |s| s.job(&id)).await.ok().flatten()
    }
}
