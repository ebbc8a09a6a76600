//! Change tracking's stage: the source family's change stream published to the change bus,
//! batch by batch, for as long as the job lives, from the source's position at the first start
//! or from the subscription's start time (`subscriptionStartTime` in `ExternParams`).
//!
//! Delivery: a batch's end position is checkpointed only after the bus acknowledged every event
//! of the batch (and of the batches before it); after a crash the stream re-opens at the last
//! checkpoint, so events after it are published again, with the same ids (derived from their
//! source positions), which the bus or a consumer that de-duplicates by id drops. Nothing is
//! lost; nothing is seen twice by such a consumer. Transient source or bus outages are retried
//! without a deadline, shown in the job's detail meanwhile.
//!
//! A changed selection (ModifySubscription, ModifySubscribeObjects: the objects or the DDL/DML
//! choice in the job's spec) takes effect at a transaction boundary: wherever everything the
//! loop submitted is confirmed and checkpointed (before it submits a batch that starts a
//! transaction, and while the source is idle) it compares the stored spec with the one it
//! runs, and on a change it ends the task without publishing that batch; the engine starts the task again with the
//! new plan at that checkpoint. A transaction committed after the change was stored is read
//! after it, so it is published with the new selection, and what counts a transaction's
//! messages (Debezium's `total_order`) counts them under one selection. (A transaction already
//! being published in several batches when the change comes is finished with the old selection;
//! if the task stops before its end is checkpointed, it is read again with the new one. Message
//! ids are the events' positions, not counts, so they stay stable either way: `dts_bus::id`.)

use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dts_core::change::ChangeKind;
use dts_core::{
    ChangeBatch, ChangeSink, ChangeStream, Connector, ConnectorError, ErrorClass, Lag, MigrationPlan, MigrationSpec,
    Position, ReplicationObserver, TRACKING_STEP,
};
use dts_store::{JobRecord, Store};
use tokio_util::sync::CancellationToken;

use crate::checkpoints::{REPLICATING, ScopedCheckpoints, TRACKING_POSITION, blocking};
use crate::drive::{Outcome, Retry, Watched};
use crate::observer::JobObserver;
use crate::stages::Steps;
use crate::{ConnectorRegistry, Engine};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The subscription's start time (unix seconds), when it has one.
fn start_time(plan: &MigrationPlan) -> Option<i64> {
    dts_core::extern_params::subscription_start_time(plan.extern_params.as_deref())
}

/// What of a job's spec decides which events its stream publishes.
fn selection(spec: &MigrationSpec) -> String {
    serde_json::json!([spec.options.migrate_object, spec.database_info, spec.options.extern_params]).to_string()
}

/// Watches the stored job for a selection other than the one the stream runs with.
struct SelectionWatch {
    store: Arc<Store>,
    job_id: String,
    running: String,
}

impl SelectionWatch {
    fn new(store: &Arc<Store>, job: &JobRecord) -> Self {
        Self { store: store.clone(), job_id: job.job_id.clone(), running: selection(&job.spec) }
    }

    /// Whether the stored selection differs from the running one.
    async fn changed(&self) -> bool {
        let id = self.job_id.clone();
        match blocking(&self.store, move |s| s.job(&id)).await {
            Ok(Some(job)) => selection(&job.spec) != self.running,
            _ => false,
        }
    }
}

/// How many batches the stream's reader may hold ahead of the publisher: the next batch is
/// read and decoded (on the reader's task) while the bus acknowledges the one before.
const READ_AHEAD: usize = 2;

/// Stops a task when dropped: the reader ends with the loop that consumes it, whichever way.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads batches ahead of the publisher until an error (sent on, then the reader stops) or
/// until the publisher is gone. Order is the stream's: one reader, one FIFO channel.
async fn read_ahead<S: ChangeStream>(
    mut stream: S,
    batch_size: usize,
    to: tokio::sync::mpsc::Sender<Result<Option<ChangeBatch>, ConnectorError>>,
) {
    loop {
        let next = stream.next_batch(batch_size, Duration::from_secs(1)).await;
        let failed = next.is_err();
        if to.send(next).await.is_err() || failed {
            return;
        }
    }
}

/// A batch submitted to the bus and not yet confirmed.
struct InFlight {
    ticket: u64,
    end: Option<Position>,
    rows: u64,
    newest_ms: i64,
}

/// Publishes the stream from the last acknowledged position (or `start`) until an error, or
/// until the job's selection changed (`Ok(())`, everything published checkpointed).
///
/// Three stages overlap: the stream is read on a task of its own, at most [`READ_AHEAD`]
/// batches ahead; each batch is encoded and submitted to the bus while the one before it is
/// still being stored; then that one is confirmed and its end checkpointed. So at most one
/// batch is in flight (and none while the reader has nothing ready), batches are submitted,
/// confirmed and checkpointed in the order read, and a batch's end is checkpointed only after
/// the bus accepted it and every batch before it (a sink's confirmation covers everything
/// submitted up to the ticket). When the loop ends
/// (an error, a selection change) batches read ahead or in flight and not confirmed are
/// dropped and read again from the checkpoint: their events get the same ids, which the bus or
/// a consumer drops.
#[allow(clippy::too_many_arguments)]
async fn publish<C: Connector>(
    plan: &MigrationPlan,
    connector: &C,
    sink: &dyn ChangeSink,
    ecp: &ScopedCheckpoints,
    observer: &JobObserver,
    start: &Position,
    batch_size: usize,
    watch: &SelectionWatch,
) -> Result<(), ConnectorError> {
    let from = ecp.position(TRACKING_POSITION).await?.unwrap_or_else(|| start.clone());
    let mut last = Some(from.clone());
    let stream = connector.changes(plan, from).await?;
    // A heartbeat first: the subscription's stream or topic exists on the bus from here on.
    sink.heartbeat(plan, last.as_ref()).await?;
    let (to, mut batches) = tokio::sync::mpsc::channel(READ_AHEAD);
    let _reader = AbortOnDrop(tokio::spawn(read_ahead(stream, batch_size, to)).abort_handle());
    // Whether everything submitted so far ends at a transaction boundary.
    let mut boundary = true;
    let mut in_flight: Option<InFlight> = None;
    // Confirms the batch in flight and checkpoints its end.
    let settle = async |in_flight: &mut Option<InFlight>, last: &mut Option<Position>| -> Result<(), ConnectorError> {
        let Some(f) = in_flight.take() else { return Ok(()) };
        sink.confirm(plan, f.ticket).await?;
        if let Some(end) = f.end {
            ecp.put_position(TRACKING_POSITION, &end).await?;
            *last = Some(end);
        }
        observer.applied(f.rows);
        observer.progress(Lag {
            seconds: Some(((now_ms() - f.newest_ms) / 1000).max(0)),
            behind: None,
            caught_up: false,
        });
        Ok(())
    };
    loop {
        // Nothing read ahead: the batch in flight is confirmed while the reader waits.
        let next = match batches.try_recv() {
            Ok(next) => Some(next),
            Err(_) => {
                settle(&mut in_flight, &mut last).await?;
                batches.recv().await
            }
        };
        let Some(next) = next else {
            return Err(ConnectorError::new(
                ErrorClass::Transient,
                "the change stream's reader stopped",
                "the read-ahead task ended without an error",
            ));
        };
        match next? {
            None => {
                settle(&mut in_flight, &mut last).await?;
                sink.heartbeat(plan, last.as_ref()).await?;
                observer.progress(Lag { seconds: Some(0), behind: None, caught_up: true });
                if boundary && watch.changed().await {
                    return Ok(());
                }
            }
            Some(batch) => {
                if boundary && watch.changed().await {
                    settle(&mut in_flight, &mut last).await?;
                    return Ok(());
                }
                let ticket = sink.submit(plan, &batch).await?;
                settle(&mut in_flight, &mut last).await?;
                boundary = batch.end.is_some();
                in_flight = Some(InFlight {
                    ticket,
                    rows: batch.events.iter().filter(|e| matches!(e.kind, ChangeKind::Row(_))).count() as u64,
                    newest_ms: batch.events.iter().map(|e| e.timestamp_ms).max().unwrap_or_else(now_ms),
                    end: batch.end,
                });
            }
        }
    }
}

impl<R: ConnectorRegistry> Engine<R> {
    pub(crate) async fn track<C: Connector>(
        &self,
        job: &JobRecord,
        plan: &MigrationPlan,
        connector: &C,
        _steps: &Steps,
        token: &CancellationToken,
    ) -> Outcome {
        let id = &job.job_id;
        self.start_step(id, TRACKING_STEP).await;
        let ecp = self.engine_checkpoints(id);
        if let Err(e) = ecp.put_flag(REPLICATING).await {
            return Outcome::Failed(format!("[{TRACKING_STEP}] {}", e.summary));
        }
        let Some(sink) = self.registry.change_sink() else {
            return Outcome::Failed(format!(
                "[{TRACKING_STEP}] this dts server has no change bus to publish to ([change_bus] in its config file)"
            ));
        };
        let start = match ecp.position(TRACKING_POSITION).await {
            Ok(Some(p)) => p,
            _ => match self.stream_start(id, token, TRACKING_STEP, plan, connector, start_time(plan)).await {
                Ok(p) => p,
                Err(outcome) => return outcome,
            },
        };
        let observer = JobObserver::new(
            Arc::new(AtomicU8::new(0)),
            true,
            self.config.ready_lag_secs,
            self.config.ready_behind,
            false,
            None,
            0,
            job.detail.applied_changes,
        );
        let watched = Watched { observer: &observer, incremental_step: None };
        let batch_size = self.config.tracking_batch;
        let (ecp, observer_ref, start) = (&ecp, &observer, &start);
        let watch = &SelectionWatch::new(&self.store, job);
        let published = self
            .drive(id, token, TRACKING_STEP, Retry::Forever, Some(watched), |_| {
                publish(plan, connector, sink, ecp, observer_ref, start, batch_size, watch)
            })
            .await;
        match published {
            Ok(()) => {
                // The task ends with the job still running; the engine starts it again at once
                // with the new selection, from the checkpoint just written.
                tracing::info!(job_id = %id, "the subscription's selection changed: its stream restarts at its checkpoint");
                Outcome::Stopped
            }
            Err(outcome) => outcome,
        }
    }
}
