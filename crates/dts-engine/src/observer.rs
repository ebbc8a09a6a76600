//! What a running change stream reports, between the connector and the store: lag (seconds
//! and/or the family's log units), applied changes and their rate, the progress of a snapshot
//! that arrives inside the stream, completion requests, and two-way conflicts.
//!
//! Connectors call the observer on their hot path; it only records into memory and never
//! touches the store. The step's driver (`drive`) persists what it recorded on its own schedule,
//! off the runtime's threads, and at once when something urgent happened (first caught up, the
//! snapshot finished), so ReadyComplete is not delayed by the persist interval.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dts_core::{Completion, ConflictArbiter, JobEvent, JobStatus, Lag, ReplicationObserver, RetryState};
use dts_store::{JobRecord, StoreError};
use tokio::sync::Notify;

use crate::two_way::LocalChanges;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Observed {
    lag: Option<Lag>,
    applied: u64,
    snapshot: Option<(u64, u64)>,
    snapshot_finished: bool,
    notes: Vec<String>,
}

/// The observer of one job's change stream.
pub(crate) struct JobObserver {
    flag: Arc<AtomicU8>,
    observed: Mutex<Observed>,
    /// Something the store must see now.
    pub(crate) urgent: Notify,
    /// The job reached ReadyComplete's lag once (in this task or before).
    caught_up: AtomicBool,
    ready_lag_secs: i64,
    ready_behind: u64,
    /// Caught up is not ReadyComplete yet: `ready` is notified instead (a check runs first).
    hold: bool,
    pub(crate) ready: Arc<Notify>,
    local_changes: Option<Arc<LocalChanges>>,
    conflicts: AtomicU64,
    /// The outage the step is riding out, cleared by the next progress.
    pub(crate) retry: Arc<Mutex<Option<RetryState>>>,
    /// For the catch-up rate: (applied, when) at the last persist.
    rate_base: Mutex<(u64, Instant)>,
    /// The in-stream snapshot's end was written to the store.
    snapshot_recorded: AtomicBool,
}

/// How the observer's state is shown in a job.
pub(crate) struct Persisted {
    pub first_ready: bool,
    pub snapshot_finished: bool,
}

impl JobObserver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        flag: Arc<AtomicU8>,
        already_caught_up: bool,
        ready_lag_secs: i64,
        ready_behind: u64,
        hold: bool,
        local_changes: Option<Arc<LocalChanges>>,
        conflicts: u64,
        applied: u64,
    ) -> Self {
        Self {
            flag,
            observed: Mutex::new(Observed { applied, ..Observed::default() }),
            urgent: Notify::new(),
            caught_up: AtomicBool::new(already_caught_up),
            ready_lag_secs,
            ready_behind,
            hold,
            ready: Arc::new(Notify::new()),
            local_changes,
            conflicts: AtomicU64::new(conflicts),
            retry: Arc::new(Mutex::new(None)),
            rate_base: Mutex::new((applied, Instant::now())),
            snapshot_recorded: AtomicBool::new(false),
        }
    }

    fn is_ready(&self, lag: &Lag) -> bool {
        lag.caught_up
            || lag.seconds.is_some_and(|s| s <= self.ready_lag_secs)
            || (lag.seconds.is_none() && lag.behind.is_some_and(|b| b <= self.ready_behind))
    }

    /// The change that shows the observed state in the job (ReadyComplete included), and what
    /// happened for the first time.
    pub(crate) fn persist(
        &self,
        incremental_step: Option<i64>,
    ) -> (impl FnOnce(&mut JobRecord) -> Result<(), StoreError> + Send + 'static, Persisted) {
        let (lag, applied, snapshot, finished, notes) = {
            let mut o = lock(&self.observed);
            (o.lag, o.applied, o.snapshot, o.snapshot_finished, std::mem::take(&mut o.notes))
        };
        let ready = lag.as_ref().is_some_and(|l| self.is_ready(l));
        let first_ready = ready && !self.caught_up.swap(true, Ordering::Relaxed);
        let snapshot_finished = finished && !self.snapshot_recorded.swap(true, Ordering::Relaxed);
        let rate = {
            let mut base = lock(&self.rate_base);
            let secs = base.1.elapsed().as_secs_f64();
            let rate = if secs >= 0.2 { ((applied.saturating_sub(base.0)) as f64 / secs) as u64 } else { u64::MAX };
            if rate != u64::MAX {
                *base = (applied, Instant::now());
            }
            rate
        };
        let conflicts = self.conflicts.load(Ordering::Relaxed);
        let retry = lock(&self.retry).clone();
        let hold = self.hold;
        let change = move |j: &mut JobRecord| {
            let current = j.detail.step_now;
            if let Some(lag) = lag {
                j.detail.seconds_behind_master = lag.seconds.unwrap_or(0);
                j.detail.behind = lag.behind.unwrap_or(0);
                j.detail.master_slave_distance = (lag.behind.unwrap_or(0) / (1024 * 1024)) as i64;
            }
            j.detail.conflicts = conflicts;
            j.detail.applied_changes = applied;
            if rate != u64::MAX {
                j.detail.apply_rate = rate;
            }
            j.detail.retry = retry;
            for note in notes {
                j.detail.add_note(note);
            }
            if let Some(step) = incremental_step {
                if snapshot_finished && current < step {
                    j.detail.begin_step(step, &dts_store::now_string());
                } else if current < step {
                    if let Some((done, total)) = snapshot {
                        j.detail.set_step_progress((done * 100 / total.max(1)).min(99) as i64);
                    }
                } else if lag.is_some() {
                    j.detail.set_step_progress(if ready { 100 } else { 99 });
                }
            }
            if first_ready
                && j.status == JobStatus::Running
                && !hold
                && dts_core::status::accepts(j.kind, JobEvent::CaughtUp)
            {
                j.apply(JobEvent::CaughtUp)?;
                tracing::info!(job_id = %j.job_id, "destination caught up: ReadyComplete");
            }
            Ok(())
        };
        (change, Persisted { first_ready, snapshot_finished })
    }

    /// Whether the step holds ReadyComplete for a consistency check.
    pub(crate) fn holds(&self) -> bool {
        self.hold
    }
}

impl ConflictArbiter for JobObserver {
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

    fn reader_idle_since(&self, server: &str, since: Instant) -> bool {
        self.local_changes.as_ref().is_some_and(|c| c.idle_since(server, since))
    }

    fn conflict(&self, _incoming_won: bool) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }
}

impl ReplicationObserver for JobObserver {
    fn progress(&self, lag: Lag) {
        let first = self.is_ready(&lag) && !self.caught_up.load(Ordering::Relaxed);
        lock(&self.observed).lag = Some(lag);
        // Progress after an outage: the outage is over.
        if let Ok(mut r) = self.retry.try_lock() {
            *r = None;
        }
        if first {
            self.urgent.notify_one();
        }
    }

    fn completion(&self) -> Completion {
        match self.flag.load(Ordering::Relaxed) {
            1 => Completion::WaitForSync,
            2 => Completion::Immediately,
            _ => Completion::None,
        }
    }

    fn applied(&self, changes: u64) {
        lock(&self.observed).applied += changes;
    }

    fn snapshot_progress(&self, done: u64, total: u64) {
        lock(&self.observed).snapshot = Some((done, total));
    }

    fn snapshot_finished(&self) {
        lock(&self.observed).snapshot_finished = true;
        self.urgent.notify_one();
    }

    fn note(&self, message: String) {
        lock(&self.observed).notes.push(message);
        self.urgent.notify_one();
    }

    fn arbiter(&self) -> Option<&dyn ConflictArbiter> {
        self.local_changes.as_ref().map(|_| self as &dyn ConflictArbiter)
    }
}
