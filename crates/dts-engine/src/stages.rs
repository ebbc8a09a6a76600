//! A job's stages, written once for every family: Prepare (the plan, and the release an
//! earlier run owes), structure, the full load or a snapshot inside the stream, the change
//! stream (incremental replication, or change tracking's publishing), triggers after the data,
//! and the consistency check; then the job's end. Which of them a job runs follows from its
//! kind, the stages asked and its connector's capabilities (`dts_core::plan_steps`).
//!
//! Resumption: every stage is idempotent on its connector, and the engine's own checkpoints say
//! how far a job got (`checkpoints`): a job whose stream started goes straight back to it; a
//! job whose full load started does not compare its structure again. So a restart at any stage
//! boundary, or inside a stage, finishes the work instead of repeating or losing it.

use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use dts_core::{
    CONSISTENCY_STEP, CheckScope, Connector, JobEvent, JobKind, JobStatus, MigrationPlan, Position, ReleaseReason,
    Releaser, SnapshotMode, StreamMode, StructurePhase, plan_steps,
};
use dts_store::{COMPLETE_MODE_KEY, JobError, JobRecord, now_string};
use tokio_util::sync::CancellationToken;

use crate::checkpoints::{CONSISTENCY_CHECKED, LOAD_STARTED, REPLICATING, STREAM_START, ScopedCheckpoints, blocking};
use crate::drive::{Outcome, Retry, Watched};
use crate::observer::JobObserver;
use crate::scheduler::HELP_DOC;
use crate::{ConnectorRegistry, Engine, resolve_plan};

const PREPARE: &str = "Prepare";
const STRUCTURE: &str = "StructureMigration";
const FULL: &str = "FullDataMigration";
const INCREMENTAL: &str = "IncrementalMigration";

/// The steps a job runs, and their numbers.
pub(crate) struct Steps(Vec<(&'static str, &'static str)>);

impl Steps {
    pub(crate) fn has(&self, id: &str) -> bool {
        self.0.iter().any(|(s, _)| *s == id)
    }

    pub(crate) fn number(&self, id: &str) -> Option<i64> {
        self.0.iter().position(|(s, _)| *s == id).map(|i| i as i64 + 1)
    }
}

fn percent(p: Arc<std::sync::atomic::AtomicI64>) -> impl Fn(u64, u64) + Send + Sync {
    move |done: u64, total: u64| p.store((done * 100 / total.max(1)) as i64, std::sync::atomic::Ordering::Relaxed)
}

impl<R: ConnectorRegistry> Engine<R> {
    pub(crate) fn engine_checkpoints(&self, id: &str) -> ScopedCheckpoints {
        ScopedCheckpoints::engine(&self.store, id)
    }

    pub(crate) fn family_checkpoints(&self, plan: &MigrationPlan) -> ScopedCheckpoints {
        ScopedCheckpoints::family(&self.store, &plan.job_id, plan.route.family)
    }

    /// Marks step `step_id` running (and the ones before it successful), if it is ahead.
    pub(crate) async fn start_step(&self, id: &str, step_id: &'static str) {
        self.update(id, move |j| {
            if let Some(no) = j.detail.step_no(step_id)
                && j.detail.step_now < no
            {
                j.detail.begin_step(no, &now_string());
            }
            Ok(())
        })
        .await;
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

    /// The task of a job in Running, ReadyComplete or Completing: its stages, then its end.
    pub(crate) async fn run_job(self: Arc<Self>, job: JobRecord, token: CancellationToken) {
        let id = job.job_id.clone();
        let outcome = if self.wait_for_start(&job, &token).await {
            self.run_stages(&job, &token).await
        } else {
            Outcome::Stopped
        };
        match outcome {
            Outcome::Done => {
                self.update(&id, |j| {
                    j.apply(JobEvent::Finished)?;
                    j.detail.finish();
                    j.end_time = now_string();
                    j.request_release(ReleaseReason::Ended);
                    Ok(())
                })
                .await;
                tracing::info!(job_id = %id, "job finished");
            }
            Outcome::Stopped => {
                if self.job(&id).await.is_some_and(|j| j.status == JobStatus::Stopping) {
                    self.finish_stop(&id).await;
                }
            }
            Outcome::Failed(message) => {
                tracing::warn!(job_id = %id, error = %message, "job failed");
                self.update(&id, move |j| {
                    j.apply(JobEvent::Failed)?;
                    j.detail.fail_current();
                    j.end_time = now_string();
                    j.errors.push(JobError { log: message, help: HELP_DOC.into() });
                    j.request_release(ReleaseReason::Ended);
                    Ok(())
                })
                .await;
            }
        }
    }

    async fn run_stages(&self, job: &JobRecord, token: &CancellationToken) -> Outcome {
        let id = &job.job_id;
        let (instances, for_plan) = (self.instances.clone(), job.clone());
        let plan = match blocking(&self.store, move |s| resolve_plan(s, &for_plan, &instances)).await {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(format!("[{PREPARE}] {e}")),
        };
        let connector = match self.registry.connector(&plan.route) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(format!("[{PREPARE}] {}", e.summary)),
        };
        // A fresh start releases what the earlier run left before anything runs.
        let job_id = id.clone();
        let pending = blocking(&self.store, move |s| s.pending_release(&job_id)).await.ok().flatten();
        if let Some(pending) = pending.filter(|p| !p.deleted) {
            self.start_step(id, PREPARE).await;
            let checkpoints = self.family_checkpoints(&plan);
            let released = self
                .drive(id, token, PREPARE, Retry::Budget, None, |_| {
                    connector.release(&plan, pending.reason, &checkpoints)
                })
                .await;
            if let Err(outcome) = released {
                return outcome;
            }
            let job_id = id.clone();
            if let Err(e) = blocking(&self.store, move |s| s.finish_release(&job_id)).await {
                return Outcome::Failed(format!("[{PREPARE}] cannot clear the earlier run's checkpoints: {e}"));
            }
            tracing::info!(job_id = %id, reason = pending.reason.as_str(), "the earlier run's resources are released");
        }
        self.run_steps(job, &plan, connector, token).await
    }

    async fn run_steps<C: Connector>(
        &self,
        job: &JobRecord,
        plan: &MigrationPlan,
        connector: &C,
        token: &CancellationToken,
    ) -> Outcome {
        let id = &job.job_id;
        let caps = connector.capabilities();
        let stages = plan.stages;
        let check = CheckScope::of(job.spec.options.consistency_type, None).is_some();
        let steps = Steps(plan_steps(job.kind, stages, check, &caps));
        let shown = steps.0.clone();
        self.update(id, move |j| {
            j.detail.replan(&shown);
            Ok(())
        })
        .await;
        let ecp = self.engine_checkpoints(id);
        let streams = stages.incremental || job.kind == JobKind::ChangeTracking;
        // A job whose stream started (resumed after a suspension, a restart or a crash) goes
        // straight back to it: its earlier steps are complete.
        let replicating = streams
            && (ecp.has(REPLICATING).await || matches!(job.status, JobStatus::ReadyComplete | JobStatus::Completing));
        if !replicating {
            self.start_step(id, PREPARE).await;
        }
        // A full load that started already owns the destination tables now (their secondary
        // keys may be deferred), so the structure is not compared again.
        let load_started = ecp.has(LOAD_STARTED).await;
        let with_data = stages.full_data || stages.incremental;
        if steps.has(STRUCTURE) && !load_started && !replicating {
            self.start_step(id, STRUCTURE).await;
            let phase = if with_data { StructurePhase::BeforeData } else { StructurePhase::All };
            let structure = self
                .drive(id, token, STRUCTURE, Retry::Budget, None, |p| async move {
                    let report = percent(p);
                    connector.migrate_structure_phase(plan, phase, &report).await
                })
                .await;
            match structure {
                Ok(summary) => tracing::info!(job_id = %id, ?summary, "structure migrated"),
                Err(outcome) => return outcome,
            }
        }
        if caps.snapshot == SnapshotMode::Chunked && steps.has(FULL) && !replicating {
            self.start_step(id, FULL).await;
            if let Err(e) = ecp.put_flag(LOAD_STARTED).await {
                return Outcome::Failed(format!("[{FULL}] {}", e.summary));
            }
            let checkpoints = self.family_checkpoints(plan);
            let checkpoints = &checkpoints;
            let load = self
                .drive(id, token, FULL, Retry::Budget, None, |p| async move {
                    let report = percent(p);
                    connector.load(plan, checkpoints, &report).await
                })
                .await;
            match load {
                Ok(summary) => {
                    tracing::info!(job_id = %id, ?summary, "full data migrated");
                    if let Err(e) = ecp.put_position(STREAM_START, &summary.position).await {
                        return Outcome::Failed(format!("[{FULL}] {}", e.summary));
                    }
                }
                Err(outcome) => return outcome,
            }
        }
        if job.kind == JobKind::ChangeTracking {
            return self.track(job, plan, connector, &steps, token).await;
        }
        let mode = if stages.incremental {
            Some(StreamMode::Continuous)
        } else if caps.snapshot == SnapshotMode::InStream && steps.has(FULL) {
            Some(StreamMode::SnapshotOnly)
        } else {
            None
        };
        if let Some(mode) = mode
            && let Err(outcome) = self.stream(job, plan, connector, &steps, mode, replicating, check, token).await
        {
            return outcome;
        }
        if steps.has(STRUCTURE) && with_data {
            // Triggers last: neither the load nor replicated changes may fire them.
            let step = if stages.incremental { INCREMENTAL } else { FULL };
            let triggers = self
                .drive(id, token, step, Retry::Budget, None, |_| async move {
                    connector.migrate_structure_phase(plan, StructurePhase::AfterData, &|_, _| {}).await
                })
                .await;
            if let Err(outcome) = triggers {
                return outcome;
            }
        }
        if steps.has(CONSISTENCY_STEP) {
            // After the full load, or at the end of replication (CompleteMigrateJob): the last word.
            self.start_step(id, CONSISTENCY_STEP).await;
            let settle = stages.incremental.then(|| self.settle_window());
            self.check_consistency(job, plan, connector, settle).await;
        }
        Outcome::Done
    }

    /// How long a live check waits before comparing a differing row again: the lag a caught-up
    /// job may have, plus margin.
    pub(crate) fn settle_window(&self) -> Duration {
        Duration::from_secs(self.config.ready_lag_secs.max(0) as u64 + 2)
    }

    /// Where a stream without a full load starts: the source's position when the job first
    /// started (or, given `at`, of that time: unix seconds), recorded so that a resumed job
    /// continues from there, not from "now".
    pub(crate) async fn stream_start<C: Connector>(
        &self,
        id: &str,
        token: &CancellationToken,
        step: &str,
        plan: &MigrationPlan,
        connector: &C,
        at: Option<i64>,
    ) -> Result<Position, Outcome> {
        let ecp = self.engine_checkpoints(id);
        if let Ok(Some(p)) = ecp.position(STREAM_START).await {
            return Ok(p);
        }
        let now = self
            .drive(id, token, step, Retry::Budget, None, |_| async move {
                match at {
                    Some(t) => connector.position_at(plan, t).await,
                    None => connector.current_position(plan).await,
                }
            })
            .await?;
        ecp.put_position(STREAM_START, &now)
            .await
            .map_err(|e| Outcome::Failed(format!("[{step}] cannot record the start position: {}", e.summary)))?;
        Ok(now)
    }

    /// The change stream into the destination: incremental replication (with an in-stream
    /// snapshot first for families that have one), until completed, stopped or failed.
    #[allow(clippy::too_many_arguments)]
    async fn stream<C: Connector>(
        &self,
        job: &JobRecord,
        plan: &MigrationPlan,
        connector: &C,
        steps: &Steps,
        mode: StreamMode,
        replicating: bool,
        check: bool,
        token: &CancellationToken,
    ) -> Result<(), Outcome> {
        let id = &job.job_id;
        let ecp = self.engine_checkpoints(id);
        let in_stream = connector.capabilities().snapshot == SnapshotMode::InStream;
        let snapshot_first = in_stream && steps.has(FULL) && !replicating;
        let step = if snapshot_first { FULL } else { INCREMENTAL };
        self.start_step(id, step).await;
        if !snapshot_first && mode == StreamMode::Continuous {
            // From here on a resumed job goes straight back to its stream.
            ecp.put_flag(REPLICATING).await.map_err(|e| Outcome::Failed(format!("[{step}] {}", e.summary)))?;
        }
        let start = if in_stream {
            Position::None
        } else if plan.stages.full_data {
            ecp.position(STREAM_START).await.ok().flatten().unwrap_or(Position::None)
        } else {
            self.stream_start(id, token, step, plan, connector, None).await?
        };
        let flag = Arc::new(AtomicU8::new(match job.status {
            JobStatus::Completing => {
                let job_id = id.clone();
                let mode =
                    blocking(&self.store, move |s| s.checkpoint(&job_id, COMPLETE_MODE_KEY)).await.ok().flatten();
                if mode.as_deref() == Some("immediately") { 2 } else { 1 }
            }
            _ => 0,
        }));
        self.completions.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), flag.clone());
        // A job that checks consistency reports ReadyComplete only after a check made once it
        // caught up (replication goes on meanwhile).
        let hold = check
            && mode == StreamMode::Continuous
            && !ecp.has(CONSISTENCY_CHECKED).await
            && job.status == JobStatus::Running;
        let local_changes = job
            .spec
            .loop_guard
            .map(|guard| self.two_way.lock().unwrap_or_else(|e| e.into_inner()).entry(guard).or_default().clone());
        let observer = JobObserver::new(
            flag,
            job.status != JobStatus::Running,
            self.config.ready_lag_secs,
            self.config.ready_behind,
            hold,
            local_changes,
            job.detail.conflicts,
            job.detail.applied_changes,
        );
        let policy = if job.kind.runs_forever() { Retry::Forever } else { Retry::Budget };
        let watched = Watched { observer: &observer, incremental_step: steps.number(INCREMENTAL) };
        let checkpoints = self.family_checkpoints(plan);
        let (checkpoints, observer_ref, start) = (&checkpoints, &observer, &start);
        let replicated = self.drive(id, token, step, policy, Some(watched), |_| async move {
            connector.replicate(plan, start.clone(), mode, checkpoints, observer_ref).await
        });
        let ready = observer.ready.clone();
        let check_when_ready = async {
            if !hold {
                return std::future::pending().await;
            }
            ready.notified().await;
            self.check_consistency(job, plan, connector, Some(self.settle_window())).await;
            let _ = ecp.put_flag(CONSISTENCY_CHECKED).await;
            self.update(id, |j| {
                if j.status == JobStatus::Running {
                    j.apply(JobEvent::CaughtUp)?;
                    tracing::info!(job_id = %j.job_id, "checked and caught up: ReadyComplete");
                }
                Ok(())
            })
            .await;
            std::future::pending::<()>().await
        };
        let replicated = tokio::select! {
            r = replicated => r,
            () = check_when_ready => unreachable!("the check future never ends"),
        };
        let position = replicated?;
        tracing::info!(job_id = %id, %position, "stream completed");
        Ok(())
    }
}
