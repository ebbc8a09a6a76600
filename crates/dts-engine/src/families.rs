//! The one place where a job's route picks its connector: the families this build runs, as a
//! closed enum dispatching every connector trait to the family's own connector. Adding a family
//! is a variant here, its arm in `connector`, and its engine names in `dts_core::route`.

use dts_core::{
    Capabilities, ChangeBatch, ChangeReplicator, ChangeSink, ChangeSource, ChangeStream, CheckReport, Checker,
    Checkpoints, CompareOptions, ConnectorError, ConsistencyChecker, DatabaseFamily, ErrorClass, FullLoader,
    LoadSummary, MigrationPlan, Position, ProgressFn, ReleaseReason, Releaser, ReplicationObserver, Route, StreamMode,
    StructureMigrator, StructurePhase, StructureSummary, TableDiff,
};
use dts_mysql::MySqlConnector;
use dts_redis::RedisConnector;

use crate::ConnectorRegistry;

/// The connector of one family.
#[derive(Debug, Clone)]
pub enum AnyConnector {
    MySql(MySqlConnector),
    Redis(RedisConnector),
}

/// The change stream of one family.
#[allow(clippy::large_enum_variant)] // one stream per task; boxing buys nothing
pub enum AnyStream {
    MySql(<MySqlConnector as ChangeSource>::Stream),
    Redis(<RedisConnector as ChangeSource>::Stream),
}

/// The families of this build, with their settings, and the change bus when one is configured.
pub struct Families {
    mysql: AnyConnector,
    redis: AnyConnector,
    change_sink: Option<Box<dyn ChangeSink>>,
}

impl Families {
    pub fn new(mysql: MySqlConnector) -> Self {
        Self {
            mysql: AnyConnector::MySql(mysql),
            redis: AnyConnector::Redis(RedisConnector::default()),
            change_sink: None,
        }
    }

    /// Where change tracking jobs publish.
    pub fn with_change_sink(mut self, sink: Box<dyn ChangeSink>) -> Self {
        self.change_sink = Some(sink);
        self
    }
}

impl Default for Families {
    fn default() -> Self {
        Self::new(MySqlConnector::default())
    }
}

impl ConnectorRegistry for Families {
    type Connector = AnyConnector;

    fn connector(&self, route: &Route) -> Result<&AnyConnector, ConnectorError> {
        match route.family {
            DatabaseFamily::MySql => Ok(&self.mysql),
            DatabaseFamily::Redis => Ok(&self.redis),
            other => Err(ConnectorError::new(
                ErrorClass::NeedsOperator,
                format!("this dts build has no connector for the {other} family"),
                "",
            )),
        }
    }

    fn change_sink(&self) -> Option<&dyn ChangeSink> {
        self.change_sink.as_deref()
    }
}

impl Checker for AnyConnector {
    async fn check(&self, plan: &MigrationPlan, progress: ProgressFn<'_>) -> CheckReport {
        match self {
            Self::MySql(c) => c.check(plan, progress).await,
            Self::Redis(c) => c.check(plan, progress).await,
        }
    }
}

impl StructureMigrator for AnyConnector {
    async fn migrate_structure_phase(
        &self,
        plan: &MigrationPlan,
        phase: StructurePhase,
        progress: ProgressFn<'_>,
    ) -> Result<StructureSummary, ConnectorError> {
        match self {
            Self::MySql(c) => c.migrate_structure_phase(plan, phase, progress).await,
            Self::Redis(c) => c.migrate_structure_phase(plan, phase, progress).await,
        }
    }
}

impl FullLoader for AnyConnector {
    async fn load(
        &self,
        plan: &MigrationPlan,
        checkpoints: &dyn Checkpoints,
        progress: ProgressFn<'_>,
    ) -> Result<LoadSummary, ConnectorError> {
        match self {
            Self::MySql(c) => c.load(plan, checkpoints, progress).await,
            Self::Redis(c) => c.load(plan, checkpoints, progress).await,
        }
    }
}

impl ChangeReplicator for AnyConnector {
    async fn current_position(&self, plan: &MigrationPlan) -> Result<Position, ConnectorError> {
        match self {
            Self::MySql(c) => c.current_position(plan).await,
            Self::Redis(c) => c.current_position(plan).await,
        }
    }

    async fn replicate(
        &self,
        plan: &MigrationPlan,
        start: Position,
        mode: StreamMode,
        checkpoints: &dyn Checkpoints,
        observer: &dyn ReplicationObserver,
    ) -> Result<Position, ConnectorError> {
        match self {
            Self::MySql(c) => c.replicate(plan, start, mode, checkpoints, observer).await,
            Self::Redis(c) => c.replicate(plan, start, mode, checkpoints, observer).await,
        }
    }
}

impl ChangeStream for AnyStream {
    async fn next_batch(
        &mut self,
        max_events: usize,
        idle: std::time::Duration,
    ) -> Result<Option<ChangeBatch>, ConnectorError> {
        match self {
            Self::MySql(s) => s.next_batch(max_events, idle).await,
            Self::Redis(s) => s.next_batch(max_events, idle).await,
        }
    }
}

impl ChangeSource for AnyConnector {
    type Stream = AnyStream;

    async fn changes(&self, plan: &MigrationPlan, start: Position) -> Result<AnyStream, ConnectorError> {
        match self {
            Self::MySql(c) => c.changes(plan, start).await.map(AnyStream::MySql),
            Self::Redis(c) => c.changes(plan, start).await.map(AnyStream::Redis),
        }
    }

    async fn position_at(&self, plan: &MigrationPlan, unix_secs: i64) -> Result<Position, ConnectorError> {
        match self {
            Self::MySql(c) => c.position_at(plan, unix_secs).await,
            Self::Redis(c) => c.position_at(plan, unix_secs).await,
        }
    }
}

impl ConsistencyChecker for AnyConnector {
    async fn tables(&self, plan: &MigrationPlan) -> Result<Vec<(String, String)>, ConnectorError> {
        match self {
            Self::MySql(c) => c.tables(plan).await,
            Self::Redis(c) => c.tables(plan).await,
        }
    }

    async fn compare(
        &self,
        plan: &MigrationPlan,
        database: &str,
        table: &str,
        options: &CompareOptions,
    ) -> Result<TableDiff, ConnectorError> {
        match self {
            Self::MySql(c) => c.compare(plan, database, table, options).await,
            Self::Redis(c) => c.compare(plan, database, table, options).await,
        }
    }

    async fn repair_sql(
        &self,
        plan: &MigrationPlan,
        diff: &TableDiff,
        limit: usize,
    ) -> Result<Vec<String>, ConnectorError> {
        match self {
            Self::MySql(c) => c.repair_sql(plan, diff, limit).await,
            Self::Redis(c) => c.repair_sql(plan, diff, limit).await,
        }
    }
}

impl Releaser for AnyConnector {
    async fn release(
        &self,
        plan: &MigrationPlan,
        reason: ReleaseReason,
        checkpoints: &dyn Checkpoints,
    ) -> Result<(), ConnectorError> {
        match self {
            Self::MySql(c) => c.release(plan, reason, checkpoints).await,
            Self::Redis(c) => c.release(plan, reason, checkpoints).await,
        }
    }
}

impl dts_core::Connector for AnyConnector {
    fn capabilities(&self) -> Capabilities {
        match self {
            Self::MySql(c) => c.capabilities(),
            Self::Redis(c) => c.capabilities(),
        }
    }
}
