//! Domain model of dts: jobs and their states, object selections, check reports, job
//! progress, error classes and the connector traits every database family implements.
//!
//! This crate does no I/O. The store persists these types, the engine drives them, the API
//! dialects translate them to and from the cloud vendors' wire models.

pub mod change;
pub mod check;
pub mod connector;
pub mod consistency;
pub mod error;
pub mod extern_params;
pub mod instance;
pub mod job;
pub mod position;
pub mod progress;
pub mod route;
pub mod selection;
pub mod status;

pub use check::{CheckItem, CheckOutcome, CheckReport};
pub use connector::{
    BusTarget, Capabilities, ChangeBatch, ChangeReplicator, ChangeSink, ChangeSource, ChangeStream, Checker,
    CheckpointFuture, Checkpoints, Completion, ConflictArbiter, ConnectionSpec, Connector, ConsistencyChecker,
    FullLoader, Lag, LoadSummary, MigrationPlan, ProgressFn, ReleaseReason, Releaser, ReplicationObserver,
    SnapshotMode, StreamMode, StructureMigrator, StructurePhase, StructureSummary, Target, TlsMode,
};
pub use consistency::{
    CheckScope, CompareOptions, Comparison, ConsistencyReport, DiffRow, REPORT_ROWS_LIMIT, TableDiff,
};
pub use error::{ConnectorError, ErrorClass};
pub use extern_params::{ExternParamsError, ExternSettings};
pub use instance::{InstanceEntry, InstanceRegistry};
pub use job::{
    AccountId, ConflictPolicy, ConsistencyParams, EndpointSpec, JobId, JobKind, MigrateOptions, MigrationSpec, Stages,
    Tag,
};
pub use position::{BinlogPosition, LsnPosition, Position, RedisPosition, ReplicationOffset};
pub use progress::{CONSISTENCY_STEP, JobDetail, RetryState, StepInfo, StepStatus, TRACKING_STEP, plan_steps};
pub use route::{DatabaseFamily, DeclaredTarget, Route, RouteError, TargetKind, route};
pub use selection::{DatabaseSelection, ObjectSelection, SelectionError};
pub use status::{IllegalTransition, JobEvent, JobStatus};
