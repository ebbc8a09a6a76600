//! The traits a database family implements, and what the engine hands them: the seam between
//! the family-agnostic engine and each family's connector.
//!
//! The engine runs a job's stages (precheck, structure, full load, incremental, consistency,
//! release) by calling these traits on the connector its route picks; it never parses a
//! family's position and never reads a family's checkpoint keys. A connector sees only its own
//! checkpoint scope (`<family>/...`).
//!
//! Cancellation: the engine cancels a connector call by dropping its future (a stopped job);
//! every method must therefore leave the destination in a state from which calling it again
//! finishes the work (idempotent re-run), which is also what makes a crash survivable.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::check::CheckReport;
use crate::error::{ConnectorError, ErrorClass};
use crate::job::{ConflictPolicy, JobKind, Stages};
use crate::position::Position;
use crate::route::Route;
use crate::selection::ObjectSelection;

/// Where and as whom to connect. The password's `Debug` is redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionSpec {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The database to connect to, for families that connect to one (PostgreSQL).
    pub database: Option<String>,
    /// Whether and how the connection is encrypted.
    pub tls: TlsMode,
}

/// Encryption of a connection to a database.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain TCP.
    #[default]
    Disabled,
    /// Encrypted, the server's certificate not verified.
    Required,
    /// Encrypted, the certificate verified against `ca` (PEM text; the system roots when `None`)
    /// and the host name checked.
    VerifyFull { ca: Option<String> },
}

impl fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSpec")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Display for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// The change bus a change-tracking job publishes to (the bus's address is the server's
/// `[change_bus]` configuration, not the job's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusTarget {
    /// The subscription's name on the bus (stream / topic).
    pub subscription: String,
}

/// Where a job's data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A database of the job's family.
    Database(ConnectionSpec),
    /// The change bus (change tracking).
    ChangeBus(BusTarget),
}

/// A resolved job: what to move, from where, to where.
#[derive(Debug, Clone)]
pub struct MigrationPlan {
    pub job_id: String,
    pub kind: JobKind,
    pub route: Route,
    /// The steps the job runs.
    pub stages: Stages,
    pub selection: ObjectSelection,
    pub source: ConnectionSpec,
    pub target: Target,
    /// `IsOverrideRoot` = 1.
    pub override_root: bool,
    /// Two-way synchronization: the applier writes with this `server_id`, and the reader drops
    /// every transaction the source logged with it (the other direction's writes).
    pub loop_guard: Option<u32>,
    /// Two-way synchronization: how conflicts are settled.
    pub conflict_policy: ConflictPolicy,
    /// `MigrateOption.ExternParams` as given (a JSON object), for family-specific settings.
    pub extern_params: Option<String>,
}

impl MigrationPlan {
    /// The destination database; a change-tracking plan has none.
    pub fn destination(&self) -> Result<&ConnectionSpec, ConnectorError> {
        match &self.target {
            Target::Database(spec) => Ok(spec),
            Target::ChangeBus(_) => Err(ConnectorError::new(
                ErrorClass::Fatal,
                "this job publishes to the change bus and has no destination database",
                "",
            )),
        }
    }
}

/// Progress of a long step: `done` of `total` units (objects, rows, keys, ...).
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// How a family takes its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// A separate full load ([`FullLoader`]) pinned to a position the stream then starts at.
    Chunked,
    /// The snapshot arrives inside the change stream (Redis PSYNC sends an RDB, then commands):
    /// [`ChangeReplicator::replicate`] copies it and reports its end to the observer.
    InStream,
    /// No snapshot: only changes.
    None,
}

/// What a family's connector can do. The steps a job shows and runs follow from these
/// ([`crate::progress::plan_steps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Has a structure step (schemas, tables, routines).
    pub structure: bool,
    pub snapshot: SnapshotMode,
    /// Can replicate in both directions at once (loop guard, conflicts).
    pub two_way: bool,
    /// The change stream carries schema changes, which the stream replays.
    pub ddl_in_stream: bool,
    /// Has a data consistency check ([`ConsistencyChecker`]).
    pub consistency_check: bool,
}

/// Runs every precheck of a plan against both servers.
///
/// Never short-circuits: one item per check, so the operator sees everything to fix at once.
/// Read-only on both sides. Connection failures are items, not errors.
pub trait Checker {
    fn check(&self, plan: &MigrationPlan, progress: ProgressFn<'_>) -> impl Future<Output = CheckReport> + Send;
}

/// Creates the selected schema objects of the source on the destination.
///
/// Ordering: databases, then tables, then views (in dependency order), then routines, then
/// triggers. Idempotent: an object that already exists on the destination with the same
/// definition is skipped, so a re-run after a crash or a stop finishes the work. A family
/// without structure ([`Capabilities::structure`] false) is never called.
pub trait StructureMigrator {
    /// Every object of the selection ([`StructurePhase::All`]).
    fn migrate_structure(
        &self,
        plan: &MigrationPlan,
        progress: ProgressFn<'_>,
    ) -> impl Future<Output = Result<StructureSummary, ConnectorError>> + Send {
        self.migrate_structure_phase(plan, StructurePhase::All, progress)
    }

    /// The objects of one phase: a data migration creates triggers only after the rows are
    /// copied, so that loading does not fire them.
    fn migrate_structure_phase(
        &self,
        plan: &MigrationPlan,
        phase: StructurePhase,
        progress: ProgressFn<'_>,
    ) -> impl Future<Output = Result<StructureSummary, ConnectorError>> + Send;
}

/// Which objects a structure migration creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructurePhase {
    /// Everything (structure-only jobs).
    All,
    /// Databases, tables, views, routines: what must exist before rows are loaded.
    BeforeData,
    /// Triggers: created once the rows are there.
    AfterData,
}

/// What a structure migration created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StructureSummary {
    pub databases: u64,
    pub tables: u64,
    pub views: u64,
    pub routines: u64,
    pub triggers: u64,
    /// Objects found already present with the same definition (a re-run).
    pub skipped: u64,
    /// Accounts created or updated (whole-instance migrations).
    pub accounts: u64,
}

/// A checkpoint operation's future.
pub type CheckpointFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ConnectorError>> + Send + 'a>>;

/// A job's checkpoints as a connector sees them: keys and values in the connector's own scope
/// (the engine prefixes every key with the family's name). Implemented by the engine over the
/// metadata store, off the async runtime's threads.
///
/// Durability: `put` resolves only after the value is durable; a connector records work as done
/// only after the destination has committed it. Checkpoints live until the job is released
/// (deleted, reset, started afresh, finished or failed for good): a restart or a resume keeps
/// them, so whatever a recovery depends on (e.g. deferred key definitions) is kept.
pub trait Checkpoints: Send + Sync {
    fn get<'a>(&'a self, key: &'a str) -> CheckpointFuture<'a, Option<String>>;
    fn put<'a>(&'a self, key: &'a str, value: &'a str) -> CheckpointFuture<'a, ()>;
    /// Every key starting with `prefix`, with its value, in key order.
    fn scan<'a>(&'a self, prefix: &'a str) -> CheckpointFuture<'a, Vec<(String, String)>>;
}

/// Copies every row of the selected tables, consistent with one source position
/// ([`SnapshotMode::Chunked`] families).
///
/// Ordering: chunks in any order, rows of a chunk in key order. Idempotent per chunk: a chunk
/// not recorded as done is deleted on the destination (by its key range) and copied again, so
/// a crash at any point costs at most the chunks in flight.
pub trait FullLoader {
    fn load(
        &self,
        plan: &MigrationPlan,
        checkpoints: &dyn Checkpoints,
        progress: ProgressFn<'_>,
    ) -> impl Future<Output = Result<LoadSummary, ConnectorError>> + Send;
}

/// What a full load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    pub tables: u64,
    pub chunks: u64,
    /// Chunks found done by an earlier attempt and not copied again.
    pub chunks_resumed: u64,
    pub rows: u64,
    pub bytes: u64,
    /// How long the source was locked to pin the snapshot, in microseconds.
    pub lock_held_micros: u64,
    /// Where the copied data stands in the source's change log: where the stream starts.
    pub position: Position,
}

/// What the operator asked of a replicating job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Keep replicating.
    None,
    /// Stop once the destination has the source's position of the moment of the request.
    WaitForSync,
    /// Stop at the next transaction boundary.
    Immediately,
}

/// How far a replicating job is behind its source. Families that log timestamps say how many
/// seconds; every family says how much of its log is left in its own unit (binlog bytes, a
/// Redis replication offset, WAL bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    /// Seconds between now and the source commit time of the last applied change, when the
    /// source's stream carries commit times.
    pub seconds: Option<i64>,
    /// Log left to read and apply, in the family's unit (`None` when unknown).
    pub behind: Option<u64>,
    /// Everything the source has logged so far is applied (the stream is idle).
    pub caught_up: bool,
}

/// The engine's side of a running replication: where lag and progress go, and whether to
/// complete. Calls are cheap and never block (the engine persists what they report on its
/// own schedule, off the runtime's threads).
pub trait ReplicationObserver: Send + Sync {
    /// After each applied batch and when the stream is idle.
    fn progress(&self, lag: Lag);
    fn completion(&self) -> Completion;
    /// `changes` more row changes (or commands) were applied at the destination.
    fn applied(&self, _changes: u64) {}
    /// [`SnapshotMode::InStream`]: `done` of `total` snapshot units (keys) copied so far.
    fn snapshot_progress(&self, _done: u64, _total: u64) {}
    /// [`SnapshotMode::InStream`]: the snapshot is complete at the destination; what follows
    /// are changes.
    fn snapshot_finished(&self) {}
    /// Something the operator should know about the stream (a full resync instead of a resume,
    /// a source setting changed for the job), shown in the job's detail.
    fn note(&self, _message: String) {}
    /// Two-way synchronization: where both directions meet to settle conflicts.
    fn arbiter(&self) -> Option<&dyn ConflictArbiter> {
        None
    }
}

/// Two-way synchronization's conflict rule, shared by both directions of an instance: the later
/// commit wins. Each direction's reader reports the changes applications made on its source;
/// an applier that finds a destination row changed by the destination's own application asks
/// when that change was committed, and applies the incoming change only if it is later (a tie
/// goes to the change coming from the server whose address sorts first, the same answer on
/// both sides, so both converge).
pub trait ConflictArbiter: Send + Sync {
    /// An application changed `row` (`db.table:key`) on `server` (`host:port`) at `commit_ts`.
    fn local_change(&self, server: &str, row: &str, commit_ts: u32);
    /// When an application last changed `row` on `server`, if a reader has seen it.
    fn local_commit_time(&self, server: &str, row: &str) -> Option<u32>;
    /// The reader of `server` has read everything that server logged so far (its stream is idle).
    fn reader_idle(&self, server: &str);
    /// Whether the reader of `server` was idle at some moment after `since`: then every change
    /// made on `server` before `since` has been reported.
    fn reader_idle_since(&self, server: &str, since: std::time::Instant) -> bool;
    /// A conflict was found and settled (`incoming_won`).
    fn conflict(&self, incoming_won: bool);
}

/// How far a replication runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Until completed ([`ReplicationObserver::completion`]) or cancelled.
    Continuous,
    /// [`SnapshotMode::InStream`] families in a full-data-only job: until the snapshot is
    /// complete at the destination.
    SnapshotOnly,
}

/// Applies the source's changes from a position until completed.
///
/// Ordering: transactions in source commit order, each applied as one destination transaction
/// (changes to one row always in source order). Idempotent: re-applying what was applied before
/// a crash leaves the same data. Durability: the connector checkpoints its stream position (in
/// its own scope) only after the destination committed everything before it, and resumes from
/// that checkpoint when there is one; `start` is where a stream without a checkpoint begins.
pub trait ChangeReplicator {
    /// The source's position now: where a job without a full load starts replicating.
    fn current_position(&self, plan: &MigrationPlan) -> impl Future<Output = Result<Position, ConnectorError>> + Send;

    /// Replicates from `start` (or the connector's own checkpoint) until completed; returns the
    /// position the destination reached.
    fn replicate(
        &self,
        plan: &MigrationPlan,
        start: Position,
        mode: StreamMode,
        checkpoints: &dyn Checkpoints,
        observer: &dyn ReplicationObserver,
    ) -> impl Future<Output = Result<Position, ConnectorError>> + Send;
}

/// Compares the data of a plan's objects on both servers, pushed down to them.
///
/// Read-only on both sides. Ordering: none (a table's chunks in any order). With
/// `settle_window`, a key found different is compared again while its source row keeps
/// changing, so that a running replication reports no false difference.
pub trait ConsistencyChecker {
    /// The compared units of the plan's selection on the source, `(database, table)` (Redis:
    /// `(database number, "")`).
    fn tables(
        &self,
        plan: &MigrationPlan,
    ) -> impl Future<Output = Result<Vec<(String, String)>, ConnectorError>> + Send;

    fn compare(
        &self,
        plan: &MigrationPlan,
        database: &str,
        table: &str,
        options: &crate::consistency::CompareOptions,
    ) -> impl Future<Output = Result<crate::consistency::TableDiff, ConnectorError>> + Send;

    /// Statements that make the destination's differing rows equal the source's as they are
    /// now; at most `limit`.
    fn repair_sql(
        &self,
        plan: &MigrationPlan,
        diff: &crate::consistency::TableDiff,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, ConnectorError>> + Send;
}

/// Why a job's resources are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The job was deleted.
    Deleted,
    /// The job was reset to be configured again.
    Reset,
    /// The job is started afresh (its earlier run's state is void).
    FreshStart,
    /// The job finished, failed for good or was stopped.
    Ended,
}

impl ReleaseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Reset => "reset",
            Self::FreshStart => "fresh_start",
            Self::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Deleted, Self::Reset, Self::FreshStart, Self::Ended].into_iter().find(|r| r.as_str() == s)
    }
}

/// Releases what a job holds on servers beyond its own sessions (a PostgreSQL replication slot
/// and publication, a source's replica settings, a MySQL destination's deferred secondary keys).
///
/// Called by the engine once the job's task has ended, before its checkpoints are cleared:
/// after a delete (through either API, also of a running job), a reset, a fresh start, and when
/// the job ended (finished, failed for good, stopped). Idempotent: a crash during a release
/// releases again at the next start. A transient error is retried.
pub trait Releaser {
    fn release(
        &self,
        plan: &MigrationPlan,
        reason: ReleaseReason,
        checkpoints: &dyn Checkpoints,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;
}

/// Some of a source's changes, as family-neutral events in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeBatch {
    pub events: Vec<crate::change::ChangeEvent>,
    /// Where the stream resumes after this batch: set when the batch ends at a transaction
    /// boundary (only such positions are checkpointed); `None` mid-transaction.
    pub end: Option<Position>,
}

/// A source's change stream (change tracking reads it; the engine publishes what it yields).
pub trait ChangeStream: Send + 'static {
    /// The next batch of at most about `max_events` events, waiting at most `idle` for the
    /// first: `Ok(None)` when nothing arrived meanwhile (the source is idle; the engine sends
    /// a heartbeat). Ordering: source commit order; a re-opened stream at a batch's `end`
    /// continues with the next event, and yields the same events (same positions) again when
    /// opened at an earlier position.
    fn next_batch(
        &mut self,
        max_events: usize,
        idle: std::time::Duration,
    ) -> impl Future<Output = Result<Option<ChangeBatch>, ConnectorError>> + Send;
}

/// Reads a source's changes as family-neutral events (change tracking).
pub trait ChangeSource {
    type Stream: ChangeStream;

    /// Opens the change stream of the plan's selection at `start`.
    fn changes(
        &self,
        plan: &MigrationPlan,
        start: Position,
    ) -> impl Future<Output = Result<Self::Stream, ConnectorError>> + Send;

    /// Where a stream starts to yield every transaction committed at or after `unix_secs` (a
    /// subscription's start time). A source whose log no longer reaches back that far, or a
    /// family that cannot tell, answers [`ErrorClass::NeedsOperator`].
    fn position_at(
        &self,
        plan: &MigrationPlan,
        unix_secs: i64,
    ) -> impl Future<Output = Result<Position, ConnectorError>> + Send {
        let _ = (plan, unix_secs);
        std::future::ready(Err(no_start_time()))
    }
}

/// The answer of a family that cannot start its change stream at a time.
pub fn no_start_time() -> ConnectorError {
    ConnectorError::new(ErrorClass::NeedsOperator, "this source cannot start change tracking at a given time", "")
}

/// Where change tracking publishes: the change bus (configured by the server, not the job).
///
/// `publish` resolves only once the bus has durably accepted every event of the batch, in
/// order per key; only then does the engine checkpoint the batch's end. Re-publishing events
/// after a crash (at-least-once) must be harmless: each event's id derives from its source
/// position, and the bus drops or marks duplicates.
pub trait ChangeSink: Send + Sync {
    fn publish<'a>(
        &'a self,
        plan: &'a MigrationPlan,
        batch: &'a ChangeBatch,
    ) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + 'a>>;

    /// Sends a batch on without waiting for the bus to accept it: returns a ticket for
    /// [`ChangeSink::confirm`]. Batches are stored in the order submitted. An error means any
    /// batch submitted and not confirmed may be missing or partial: the caller re-reads from its
    /// checkpoint. The default publishes and waits.
    fn submit<'a>(
        &'a self,
        plan: &'a MigrationPlan,
        batch: &'a ChangeBatch,
    ) -> Pin<Box<dyn Future<Output = Result<u64, ConnectorError>> + Send + 'a>> {
        Box::pin(async move { self.publish(plan, batch).await.map(|()| 0) })
    }

    /// Resolves once the bus durably accepted every batch submitted up to `ticket` (and so
    /// everything before it): only then may their positions be checkpointed.
    fn confirm<'a>(
        &'a self,
        plan: &'a MigrationPlan,
        ticket: u64,
    ) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        let _ = (plan, ticket);
        Box::pin(std::future::ready(Ok(())))
    }

    /// The source is alive and idle at `position` (or it is unknown): consumers see liveness.
    fn heartbeat<'a>(
        &'a self,
        plan: &'a MigrationPlan,
        position: Option<&'a Position>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + 'a>>;

    /// The subscription of job `job_id` was deleted: what the bus holds for it goes (events and
    /// consumer groups); `Ok` when it holds nothing. Called once the job's task has ended.
    fn remove<'a>(&'a self, job_id: &'a str) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        let _ = job_id;
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A database family's connector: every stage's trait, and what it can do.
pub trait Connector:
    Checker + StructureMigrator + FullLoader + ChangeReplicator + ChangeSource + ConsistencyChecker + Releaser + Send + Sync
{
    fn capabilities(&self) -> Capabilities;
}
