//! The engine loop and the tasks it runs: one task per job in an active status, at most one
//! per job, cancelled when the job is stopped, suspended or reset.
//!
//! Progress flows from connectors into atomics and is persisted by the task twice a second,
//! so connectors never wait for the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use dts_core::{
    CONSISTENCY_STEP, ChangeReplicator, CheckScope, Completion, ConflictArbiter, MigrationPlan, ReplicationObserver,
    StepStatus,
};
use dts_core::{
    CheckItem, CheckReport, Checker, Checkpoints, ConnectorError, ErrorClass, FullLoader, InstanceRegistry, JobEvent,
    JobStatus, StructureMigrator, StructurePhase,
};
use dts_mysql::{FullLoadSettings, MySqlConnector, ReplicationSettings};
use dts_store::{
    COMPLETE_MODE_KEY, CheckState, JobError, JobRecord, STOPPED_ON_REQUEST, Store, StoreError, now_string,
};
use std::future::Future;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::plan::resolve_plan;
use crate::two_way::LocalChanges;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How often the engine looks at the store even when nobody woke it.
    pub poll_interval: Duration,
    /// How long transient errors are retried before a job fails.
    pub retry_budget: Duration,
    /// Full-load tuning.
    pub full_load: FullLoadSettings,
    /// Replication tuning (parallel apply lanes).
    pub replication: ReplicationSettings,
    /// An incremental job is ReadyComplete once it is at most this many seconds behind.
    pub ready_lag_secs: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            retry_budget: Duration::from_secs(300),
            full_load: FullLoadSettings::default(),
            replication: ReplicationSettings::default(),
            ready_lag_secs: 1,
        }
    }
}

/// The job engine.
pub struct Engine {
    store: Arc<Store>,
    registry: InstanceRegistry,
    wake: Arc<Notify>,
    config: EngineConfig,
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Per running incremental job: 0 replicate, 1 complete waitForSync, 2 complete immediately.
    completions: Mutex<HashMap<String, Arc<AtomicU8>>>,
    /// Two-way instances (by loop guard): the local changes both directions report.
    two_way: Mutex<HashMap<u32, Arc<LocalChanges>>>,
}

/// Where a job without a full load records the source position it started replicating from.
const INCREMENTAL_START_KEY: &str = "incremental/start";

/// Set when a job's incremental step begins: its structure and full load are complete.
const REPLICATING_KEY: &str = "incremental/started";

/// Set once a replicating job's consistency check (before ReadyComplete) has run.
const CHECKED_KEY: &str = "incremental/consistency_checked";

pub(crate) const HELP_DOC: &str = "https://github.com/dts-project/dts/blob/main/README.md#troubleshooting";

/// How a job's task ended.
enum Outcome {
    Done,
    Stopped,
    Failed(String),
}

impl Engine {
    pub fn new(store: Arc<Store>, registry: InstanceRegistry, wake: Arc<Notify>, config: EngineConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            registry,
            wake,
            config,
            running: Mutex::new(HashMap::new()),
            completions: Mutex::new(HashMap::new()),
            two_way: Mutex::new(HashMap::new()),
        })
    }

    /// Runs until `shutdown` is cancelled; running tasks are cancelled with it (their jobs stay
    /// in their active status and resume at the next start).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.tick() {
                tracing::error!(error = %e, "engine cannot read jobs");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        for token in self.running.lock().unwrap_or_else(|e| e.into_inner()).values() {
            token.cancel();
        }
    }

    fn is_running(&self, job_id: &str) -> bool {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).contains_key(job_id)
    }

    fn tick(self: &Arc<Self>) -> Result<(), StoreError> {
        let active = self.store.active_jobs()?;
        // A task whose job left the active statuses (suspended, reset, deleted) stops now; its
        // checkpoints stay for a resume.
        for (id, token) in self.running.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if !active.iter().any(|j| &j.job_id == id) {
                token.cancel();
            }
        }
        for job in active {
            match job.status {
                JobStatus::Checking | JobStatus::Running | JobStatus::ReadyComplete
                    if !self.is_running(&job.job_id) =>
                {
                    self.spawn(job)
                }
                JobStatus::Completing if self.is_running(&job.job_id) => {
                    let mode = self.store.checkpoint(&job.job_id, COMPLETE_MODE_KEY).ok().flatten();
                    if let Some(flag) = self.completions.lock().unwrap_or_else(|e| e.into_inner()).get(&job.job_id) {
                        flag.store(if mode.as_deref() == Some("immediately") { 2 } else { 1 }, Ordering::Relaxed);
                    }
                }
                JobStatus::Completing if job.spec.stages().incremental => self.spawn(job),
                JobStatus::Stopping => {
                    let token = self.running.lock().unwrap_or_else(|e| e.into_inner()).get(&job.job_id).cloned();
                    match token {
                        Some(t) => t.cancel(),
                        None => self.finish_stop(&job.job_id),
                    }
                }
                JobStatus::Completing if !self.is_running(&job.job_id) => {
                    self.update(&job.job_id, |j| {
                        j.apply(JobEvent::Finished)?;
                        j.end_time = now_string();
                        j.detail.finish();
                        Ok(())
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn spawn(self: &Arc<Self>, job: JobRecord) {
        let token = CancellationToken::new();
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(job.job_id.clone(), token.clone());
        let engine = self.clone();
        tokio::spawn(async move {
            let id = job.job_id.clone();
            if job.status == JobStatus::Checking {
                engine.clone().run_check(job, token).await;
            } else {
                engine.clone().run_migration(job, token).await;
            }
            engine.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            engine.completions.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            engine.wake.notify_one();
        });
    }

    /// Applies a change to a job, logging (not propagating) store failures: the next tick
    /// retries whatever did not stick.
    fn update(&self, job_id: &str, change: impl FnOnce(&mut JobRecord) -> Result<(), StoreError>) -> bool {
        match self.store.update_job(job_id, change) {
            Ok(_) => true,
            Err(StoreError::Illegal(t)) => {
                tracing::info!(job_id, from = ?t.from, event = ?t.event, "job changed meanwhile; update skipped");
                false
            }
            Err(e) => {
                tracing::warn!(job_id, error = %e, "cannot update job");
                false
            }
        }
    }

    fn finish_stop(&self, job_id: &str) {
        self.update(job_id, |j| {
            j.apply(JobEvent::Stopped)?;
            j.detail.fail_current();
            j.end_time = now_string();
            j.errors.push(JobError { log: STOPPED_ON_REQUEST.into(), help: HELP_DOC.into() });
            Ok(())
        });
        tracing::info!(job_id, "job stopped");
    }

    async fn run_check(self: Arc<Self>, job: JobRecord, token: CancellationToken) {
        let id = job.job_id.clone();
        tracing::info!(job_id = %id, "precheck started");
        let progress = Arc::new(AtomicI64::new(0));
        self.update(&id, |j| {
            if j.status != JobStatus::Checking {
                return Err(StoreError::Rejected("no longer checking".into()));
            }
            j.check.status = "running".into();
            j.check.progress = 0;
            Ok(())
        });
        let report = match resolve_plan(&self.store, &job, &self.registry) {
            Err(e) => CheckReport {
                items: vec![CheckItem::failed(
                    "job_plan",
                    "the job's endpoints and objects resolve",
                    "a usable job",
                    e.to_string(),
                    None,
                )],
            },
            Ok(plan) => {
                let p = progress.clone();
                let report_progress = move |done: u64, total: u64| {
                    p.store((done * 100 / total.max(1)) as i64, Ordering::Relaxed);
                };
                let check = MySqlConnector::default();
                let fut = check.check(&plan, &report_progress);
                tokio::pin!(fut);
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tokio::select! {
                        r = &mut fut => break r,
                        _ = token.cancelled() => return,
                        _ = tick.tick() => {
                            let pct = progress.load(Ordering::Relaxed).min(99);
                            self.update(&id, |j| { j.check.progress = pct; Ok(()) });
                        }
                    }
                }
            }
        };
        let passed = report.passed();
        let message = if passed { "ok".to_string() } else { report.failure_summary() };
        self.update(&id, |j| {
            j.apply(if passed { JobEvent::CheckPassed } else { JobEvent::CheckFailed })?;
            j.check = CheckState {
                status: "finished".into(),
                progress: 100,
                flag: i64::from(passed),
                error_code: if passed { 0 } else { -1 },
                error_message: message,
                report: Some(report),
            };
            Ok(())
        });
        tracing::info!(job_id = %id, passed, "precheck finished");
    }

    /// Waits for a scheduled job's `ExpectTime` (UTC); false when cancelled meanwhile.
    async fn wait_for_start(&self, job: &JobRecord, token: &CancellationToken) -> bool {
        let Some(at) = job.spec.options.expect_time.as_deref().filter(|_| job.spec.options.run_mode == 2) else {
            return true;
        };
        let Ok(at) = NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S") else { return true };
        let wait = (at.and_utc() - Utc::now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            tracing::info!(job_id = %job.job_id, seconds = wait.as_secs(), "scheduled job waits for its ExpectTime");
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = token.cancelled() => false,
        }
    }

    async fn run_migration(self: Arc<Self>, job: JobRecord, token: CancellationToken) {
        let id = job.job_id.clone();
        let outcome =
            if self.wait_for_start(&job, &token).await { self.run_steps(&job, &token).await } else { Outcome::Stopped };
        match outcome {
            Outcome::Done => {
                self.update(&id, |j| {
                    j.apply(JobEvent::Finished)?;
                    j.detail.finish();
                    j.end_time = now_string();
                    Ok(())
                });
                tracing::info!(job_id = %id, "migration finished");
            }
            Outcome::Stopped => {
                if self.store.job(&id).ok().flatten().is_some_and(|j| j.status == JobStatus::Stopping) {
                    self.finish_stop(&id);
                }
            }
            Outcome::Failed(message) => {
                self.update(&id, |j| {
                    j.apply(JobEvent::Failed)?;
                    j.detail.fail_current();
                    j.end_time = now_string();
                    j.errors.push(JobError { log: message.clone(), help: HELP_DOC.into() });
                    Ok(())
                });
                tracing::warn!(job_id = %id, error = %message, "migration failed");
            }
        }
    }

    /// Runs one connector step to its end: progress persisted twice a second, transient
    /// errors retried with backoff within the retry budget, cancellation honoured at once.
    async fn drive<T, F, Fut>(
        &self,
        id: &str,
        token: &CancellationToken,
        step: &str,
        mut attempt: F,
    ) -> Result<T, Outcome>
    where
        F: FnMut(Arc<AtomicI64>) -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        let progress = Arc::new(AtomicI64::new(0));
        let deadline = tokio::time::Instant::now() + self.config.retry_budget;
        let mut backoff = Duration::from_millis(500);
        loop {
            let fut = attempt(progress.clone());
            tokio::pin!(fut);
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let result = loop {
                tokio::select! {
                    r = &mut fut => break r,
                    _ = token.cancelled() => return Err(Outcome::Stopped),
                    _ = tick.tick() => {
                        let pct = progress.load(Ordering::Relaxed);
                        self.update(id, |j| { j.detail.set_step_progress(pct); Ok(()) });
                    }
                }
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.class == ErrorClass::Transient && tokio::time::Instant::now() < deadline => {
                    tracing::warn!(job_id = %id, step, error = %e.summary, detail = %e.detail, "transient error; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = token.cancelled() => return Err(Outcome::Stopped),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::warn!(job_id = %id, step, detail = %e.detail, "step failed");
                    return Err(Outcome::Failed(format!("[{step}] {}", e.summary)));
                }
            }
        }
    }

    async fn run_steps(&self, job: &JobRecord, token: &CancellationToken) -> Outcome {
        let id = &job.job_id;
        let stages = job.spec.stages();
        let start_step = |step_id: &str| {
            self.update(id, |j| {
                if let Some(no) = j.detail.step_no(step_id) {
                    j.detail.begin_step(no, &now_string());
                }
                Ok(())
            })
        };
        // A job that replicated already (resumed after a suspension, a restart or a crash) goes
        // straight back to replication: its structure and full load are complete.
        let replicating = stages.incremental
            && (matches!(self.store.checkpoint(id, REPLICATING_KEY), Ok(Some(_)))
                || matches!(self.store.checkpoint(id, dts_mysql::POSITION_KEY), Ok(Some(_)))
                || matches!(job.status, JobStatus::ReadyComplete | JobStatus::Completing));
        if !replicating {
            start_step("Prepare");
        }
        let plan = match resolve_plan(&self.store, job, &self.registry) {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(format!("[Prepare] {e}")),
        };
        let connector = MySqlConnector::default()
            .with_full_load_settings(self.config.full_load.clone())
            .with_replication_settings(self.config.replication.clone());
        let (plan, connector) = (&plan, &connector);
        // A full load that started already (a resumed job) owns the destination tables now:
        // their secondary keys may be deferred, so the structure is not compared again.
        let load_started = matches!(self.store.checkpoint(id, dts_mysql::PLAN_KEY), Ok(Some(_)));
        let percent = |p: Arc<AtomicI64>| {
            move |done: u64, total: u64| p.store((done * 100 / total.max(1)) as i64, Ordering::Relaxed)
        };
        let with_data = stages.full_data || stages.incremental;
        let check = stages.full_data && CheckScope::of(job.spec.options.consistency_type, None).is_some();
        let phase = if with_data { StructurePhase::BeforeData } else { StructurePhase::All };
        if stages.structure && !load_started && !replicating {
            start_step("StructureMigration");
            let structure = self
                .drive(id, token, "StructureMigration", |p| async move {
                    let report = percent(p);
                    connector.migrate_structure_phase(plan, phase, &report).await
                })
                .await;
            match structure {
                Ok(summary) => tracing::info!(job_id = %id, ?summary, "structure migrated"),
                Err(outcome) => return outcome,
            }
        }
        if stages.full_data && !replicating {
            start_step("FullDataMigration");
            let checkpoints = StoreCheckpoints { store: &self.store, job_id: id };
            let checkpoints = &checkpoints;
            let load = self
                .drive(id, token, "FullDataMigration", |p| async move {
                    let report = percent(p);
                    connector.load(plan, checkpoints, &report).await
                })
                .await;
            match load {
                Ok(summary) => tracing::info!(job_id = %id, ?summary, "full data migrated"),
                Err(outcome) => return outcome,
            }
        }
        if stages.incremental {
            start_step("IncrementalMigration");
            // From here on a resumed job goes straight back to replication.
            let _ = self.store.put_checkpoint(id, REPLICATING_KEY, &now_string());
            let start = if stages.full_data {
                self.store
                    .checkpoint(id, dts_mysql::SNAPSHOT_KEY)
                    .ok()
                    .flatten()
                    .and_then(|json| serde_json::from_str::<Option<dts_core::BinlogPosition>>(&json).ok())
                    .flatten()
            } else {
                match self.incremental_start(id, token, plan, connector).await {
                    Ok(p) => Some(p),
                    Err(outcome) => return outcome,
                }
            };
            let Some(start) = start else {
                return Outcome::Failed(
                    "[IncrementalMigration] the full load recorded no binlog position: is log_bin ON on the source?"
                        .into(),
                );
            };
            let flag = Arc::new(AtomicU8::new(match job.status {
                JobStatus::Completing => {
                    let mode = self.store.checkpoint(id, COMPLETE_MODE_KEY).ok().flatten();
                    if mode.as_deref() == Some("immediately") { 2 } else { 1 }
                }
                _ => 0,
            }));
            self.completions.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), flag.clone());
            // A job that checks consistency reports ReadyComplete only after a check made once
            // it caught up (replication goes on meanwhile).
            let checked = matches!(self.store.checkpoint(id, CHECKED_KEY), Ok(Some(_)));
            let hold = check && !checked && job.status == JobStatus::Running;
            let ready = Arc::new(tokio::sync::Notify::new());
            let observer = JobObserver {
                engine: self,
                job_id: id,
                flag,
                caught_up: AtomicBool::new(job.status != JobStatus::Running),
                last_write: Mutex::new(std::time::Instant::now() - Duration::from_secs(10)),
                lag_secs: self.config.ready_lag_secs,
                hold,
                ready: ready.clone(),
                local_changes: job.spec.loop_guard.map(|guard| {
                    self.two_way.lock().unwrap_or_else(|e| e.into_inner()).entry(guard).or_default().clone()
                }),
                conflicts: AtomicU64::new(job.detail.conflicts),
            };
            let (checkpoints, observer, start) =
                (&StoreCheckpoints { store: &self.store, job_id: id }, &observer, &start);
            let replicated = self.drive(id, token, "IncrementalMigration", |_| async move {
                connector.replicate(plan, start.clone(), checkpoints, observer).await
            });
            let check_when_ready = async {
                if !hold {
                    return std::future::pending().await;
                }
                ready.notified().await;
                self.check_consistency(job, plan, connector, Some(self.settle_window())).await;
                let _ = self.store.put_checkpoint(id, CHECKED_KEY, &now_string());
                self.update(id, |j| {
                    if j.status == JobStatus::Running {
                        j.apply(JobEvent::CaughtUp)?;
                        tracing::info!(job_id = %j.job_id, "checked and caught up: ReadyComplete");
                    }
                    Ok(())
                });
                std::future::pending::<()>().await
            };
            let replicated = tokio::select! {
                r = replicated => r,
                () = check_when_ready => unreachable!("the check future never ends"),
            };
            match replicated {
                Ok(pos) => tracing::info!(job_id = %id, position = %pos, "replication completed"),
                Err(outcome) => return outcome,
            }
        }
        if stages.structure && with_data {
            // Triggers last: neither the load nor replicated changes may fire them.
            let step = if stages.incremental { "IncrementalMigration" } else { "FullDataMigration" };
            let triggers = self
                .drive(id, token, step, |_| async move {
                    connector.migrate_structure_phase(plan, StructurePhase::AfterData, &|_, _| {}).await
                })
                .await;
            if let Err(outcome) = triggers {
                return outcome;
            }
        }
        if check {
            // After the full load, or at the end of replication (CompleteMigrateJob): the last word.
            start_step(CONSISTENCY_STEP);
            let settle = stages.incremental.then(|| self.settle_window());
            self.check_consistency(job, plan, connector, settle).await;
        }
        Outcome::Done
    }

    /// How long a live check waits before comparing a differing row again: the lag a caught-up
    /// job may have, plus margin.
    fn settle_window(&self) -> Duration {
        Duration::from_secs(self.config.ready_lag_secs.max(0) as u64 + 2)
    }

    /// Runs a consistency check; a check that cannot run is recorded on the job, not fatal to it.
    async fn check_consistency(
        &self,
        job: &JobRecord,
        plan: &MigrationPlan,
        connector: &MySqlConnector,
        settle: Option<Duration>,
    ) {
        let progress = Arc::new(AtomicI64::new(0));
        let run = crate::consistency::run(&self.store, job, plan, connector, settle, progress.clone());
        tokio::pin!(run);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tick.tick() => {
                    let pct = progress.load(Ordering::Relaxed);
                    if job_step_is(&self.store, &job.job_id, CONSISTENCY_STEP) {
                        self.update(&job.job_id, |j| { j.detail.set_step_progress(pct); Ok(()) });
                    }
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(job_id = %job.job_id, summary = %e.summary, detail = %e.detail, "consistency check failed");
            self.update(&job.job_id, |j| {
                j.detail.set_step_status(CONSISTENCY_STEP, StepStatus::Failed, &now_string());
                j.errors.push(JobError { log: format!("[ConsistencyCheck] {}", e.summary), help: HELP_DOC.into() });
                Ok(())
            });
        }
    }
}

/// Whether the job's current step is `step_id`.
fn job_step_is(store: &Store, job_id: &str, step_id: &str) -> bool {
    store.job(job_id).ok().flatten().is_some_and(|j| j.detail.step_no(step_id) == Some(j.detail.step_now))
}

impl Engine {
    /// Where a job without a full load starts replicating: the source's position when it first
    /// started, recorded so that a resumed job continues from there, not from "now".
    async fn incremental_start(
        &self,
        id: &str,
        token: &CancellationToken,
        plan: &MigrationPlan,
        connector: &MySqlConnector,
    ) -> Result<dts_core::BinlogPosition, Outcome> {
        let recorded = self.store.checkpoint(id, INCREMENTAL_START_KEY).ok().flatten();
        if let Some(p) = recorded.and_then(|json| serde_json::from_str(&json).ok()) {
            return Ok(p);
        }
        let now = self
            .drive(id, token, "IncrementalMigration", |_| async move { connector.current_position(plan).await })
            .await?;
        let json = serde_json::to_string(&now).map_err(|e| Outcome::Failed(format!("[IncrementalMigration] {e}")))?;
        self.store
            .put_checkpoint(id, INCREMENTAL_START_KEY, &json)
            .map_err(|e| Outcome::Failed(format!("[IncrementalMigration] cannot record the start position: {e}")))?;
        Ok(now)
    }
}

/// Lag and completion of a replicating job, between the connector and the store.
struct JobObserver<'a> {
    engine: &'a Engine,
    job_id: &'a str,
    flag: Arc<AtomicU8>,
    caught_up: AtomicBool,
    last_write: Mutex<std::time::Instant>,
    lag_secs: i64,
    /// Caught up is not ReadyComplete yet: `ready` is notified instead (a check runs first).
    hold: bool,
    ready: Arc<tokio::sync::Notify>,
    /// Two-way: the instance's registry of local changes (both directions share it).
    local_changes: Option<Arc<LocalChanges>>,
    /// Conflicts this job settled (shown in the job's detail).
    conflicts: AtomicU64,
}

impl ConflictArbiter for JobObserver<'_> {
    fn local_change(&self, server: &str, row: &str, commit_ts: u32) {
        if let Some(c) = &self.local_changes {
            c.record(server, row, commit_ts);
        }
    }

    fn local_commit_time(&self, server: &str, row: &str) -> Option<u32> {
        self.local_changes.as_ref().and_then(|c| c.commit_time(server, row))
    }

    fn reader_idle(&self, server: &str) {
        if let Some(c) = &self.local_changes {
            c.mark_idle(server);
        }
    }

    fn reader_idle_since(&self, server: &str, since: std::time::Instant) -> bool {
        self.local_changes.as_ref().is_some_and(|c| c.idle_since(server, since))
    }

    fn conflict(&self, _incoming_won: bool) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }
}

impl ReplicationObserver for JobObserver<'_> {
    fn progress(&self, seconds_behind: i64, bytes_behind: u64, caught_up: bool) {
        let ready = caught_up || seconds_behind <= self.lag_secs;
        let first_ready = ready && !self.caught_up.swap(true, Ordering::Relaxed);
        {
            let mut last = self.last_write.lock().unwrap_or_else(|e| e.into_inner());
            if !first_ready && last.elapsed() < Duration::from_secs(1) {
                return;
            }
            *last = std::time::Instant::now();
        }
        self.engine.update(self.job_id, |j| {
            j.detail.seconds_behind_master = seconds_behind;
            j.detail.master_slave_distance = (bytes_behind / (1024 * 1024)) as i64;
            j.detail.set_step_progress(if ready { 100 } else { 99 });
            j.detail.conflicts = self.conflicts.load(Ordering::Relaxed);
            if first_ready && j.status == JobStatus::Running && !self.hold {
                j.apply(JobEvent::CaughtUp)?;
                tracing::info!(job_id = %j.job_id, "destination caught up: ReadyComplete");
            }
            Ok(())
        });
        if first_ready && self.hold {
            tracing::info!(job_id = %self.job_id, "destination caught up: checking consistency before ReadyComplete");
            self.ready.notify_one();
        }
    }

    fn completion(&self) -> Completion {
        match self.flag.load(Ordering::Relaxed) {
            1 => Completion::WaitForSync,
            2 => Completion::Immediately,
            _ => Completion::None,
        }
    }

    fn arbiter(&self) -> Option<&dyn ConflictArbiter> {
        self.local_changes.as_ref().map(|_| self as &dyn ConflictArbiter)
    }
}

/// A job's checkpoints in the metadata store.
struct StoreCheckpoints<'a> {
    store: &'a Store,
    job_id: &'a str,
}

fn checkpoint_error(e: StoreError) -> ConnectorError {
    ConnectorError::new(ErrorClass::Fatal, "cannot read or write the job's checkpoints", e.to_string())
}

impl Checkpoints for StoreCheckpoints<'_> {
    fn get(&self, key: &str) -> Result<Option<String>, ConnectorError> {
        self.store.checkpoint(self.job_id, key).map_err(checkpoint_error)
    }

    fn put(&self, key: &str, value: &str) -> Result<(), ConnectorError> {
        self.store.put_checkpoint(self.job_id, key, value).map_err(checkpoint_error)
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, String)>, ConnectorError> {
        self.store.checkpoints(self.job_id, prefix).map_err(checkpoint_error)
    }
}
