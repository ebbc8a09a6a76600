//! The traits a database family implements, and what the engine hands them.
//!
//! Cancellation: the engine cancels a connector call by dropping its future (a stopped job);
//! every method must therefore leave the destination in a state from which calling it again
//! finishes the work (idempotent re-run), which is also what makes a crash survivable.

use std::fmt;
use std::future::Future;

use crate::check::CheckReport;
use crate::error::ConnectorError;
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

/// A resolved job: what to move, from where, to where.
#[derive(Debug, Clone)]
pub struct MigrationPlan {
    /// The steps the job runs.
    pub stages: crate::job::Stages,
    pub selection: ObjectSelection,
    pub source: ConnectionSpec,
    pub destination: ConnectionSpec,
    /// `IsOverrideRoot` = 1.
    pub override_root: bool,
    /// Two-way synchronization: the applier writes with this `server_id`, and the reader drops
    /// every transaction the source logged with it (the other direction's writes).
    pub loop_guard: Option<u32>,
    /// Two-way synchronization: how conflicts are settled.
    pub conflict_policy: crate::job::ConflictPolicy,
}

/// Progress of a long step: `done` of `total` units (objects, rows, ...).
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

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
/// definition is skipped, so a re-run after a crash or a stop finishes the work.
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

/// Where a full load keeps its checkpoints: which chunks are copied, the chunk plan and the
/// snapshot position. Implemented by the engine over the metadata store.
///
/// Durability: `put` returns only after the value is durable; a loader records a chunk as done
/// only after the destination has committed every row of it.
pub trait Checkpoints: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<String>, ConnectorError>;
    fn put(&self, key: &str, value: &str) -> Result<(), ConnectorError>;
    /// Every key starting with `prefix`, with its value.
    fn scan(&self, prefix: &str) -> Result<Vec<(String, String)>, ConnectorError>;
}

/// Copies every row of the selected tables, consistent with one source position.
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSummary {
    pub tables: u64,
    pub chunks: u64,
    /// Chunks found done by an earlier attempt and not copied again.
    pub chunks_resumed: u64,
    pub rows: u64,
    pub bytes: u64,
    /// How long the global read lock was held to pin the snapshot, in microseconds.
    pub lock_held_micros: u64,
    pub position: Option<crate::position::BinlogPosition>,
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

/// The engine's side of a running replication: where lag goes, and whether to complete.
pub trait ReplicationObserver: Send + Sync {
    /// After each applied transaction and when the stream is idle (`caught_up`).
    fn progress(&self, seconds_behind: i64, bytes_behind: u64, caught_up: bool);
    fn completion(&self) -> Completion;
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

/// Applies the source's changes from a position until completed.
///
/// Ordering: transactions in source commit order, each applied as one destination transaction.
/// Idempotent: inserts and updates write full after-images by key (`REPLACE`), deletes by key,
/// so re-applying a transaction applied before a crash leaves the same rows. Durability: the
/// position after a transaction is checkpointed only after its destination commit.
pub trait ChangeReplicator {
    /// The source's position now: where a job without a full load starts replicating.
    fn current_position(
        &self,
        plan: &MigrationPlan,
    ) -> impl Future<Output = Result<crate::position::BinlogPosition, ConnectorError>> + Send;

    fn replicate(
        &self,
        plan: &MigrationPlan,
        start: crate::position::BinlogPosition,
        checkpoints: &dyn Checkpoints,
        observer: &dyn ReplicationObserver,
    ) -> impl Future<Output = Result<crate::position::BinlogPosition, ConnectorError>> + Send;
}

/// Compares the data of a plan's tables on both servers, pushed down to them.
///
/// Read-only on both sides. Ordering: none (a table's chunks in any order). With
/// `settle_window`, a key found different is compared again while its source row keeps
/// changing, so that a running replication reports no false difference.
pub trait ConsistencyChecker {
    /// The base tables of the plan's selection on the source, `(database, table)`.
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

    /// Statements that make the destination's differing rows equal the source's as they are now:
    /// `REPLACE` of missing and different rows, `DELETE` of extra ones; at most `limit`.
    fn repair_sql(
        &self,
        plan: &MigrationPlan,
        diff: &crate::consistency::TableDiff,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, ConnectorError>> + Send;
}
