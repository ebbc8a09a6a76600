//! MySQL-family connector of dts (MySQL, MariaDB, Percona) over `mysql_async`: the precheck,
//! structure migration, full load, binlog replication, consistency check and release of a job,
//! behind the `dts_core::Connector` traits.
//!
//! Layers, bottom up: `connection` (sessions, error classes), `binlog` (the source's binlog as
//! decoded events; used by replication, the two-way watcher and change tracking), then the
//! stages. `replication` reads and dispatches to the `applier`, which writes with `apply`;
//! `two_way_watch` reads beside it for conflicts; nothing below imports what is above it.
//!
//! Precheck items, in report order: `source_connectivity`, `destination_connectivity`,
//! `version`, `source_privileges`, `destination_privileges`, `source_objects`,
//! `destination_conflicts`, `definers`, then for migrate type 3 `binlog_enabled`, `binlog_format`,
//! `binlog_row_image`, `server_id`, `binlog_compress`, `binlog_row_value_options` (no
//! `PARTIAL_JSON`), and last `primary_keys` (a warning; for migrate type 3 a failure for tables
//! without any key).
//!
//! [`Checker`]: dts_core::Checker
//! [`StructureMigrator`]: dts_core::StructureMigrator

use std::time::Duration;

mod accounts;
mod applier;
mod apply;
mod binlog;
mod binlog_change;
mod binlog_filter;
mod binlog_time;
mod catalog;
mod checker;
mod chunk;
mod conflict;
mod connection;
mod definer;
mod definition;
mod full_load;
mod grants;
mod gtid;
mod index_deferral;
mod literal;
mod net_apply;
mod replication;
mod snapshot;
mod sql_tokens;
mod statement;
mod structure;
mod two_way_watch;
mod verify;
mod version;

pub use binlog::{BinlogDecoder, BinlogEvent, BinlogReader, RowChange, StatementSession, decode_stream};
pub use binlog_change::{BinlogChangeStream, SourceColumns};
pub use connection::Side;
pub use definition::{quote_ident, strip_definer};
pub use full_load::{DONE_PREFIX, FullLoadSettings, PLAN_KEY, SNAPSHOT_KEY};
pub use gtid::Gtid;
pub use verify::{compare_table, repair_sql};
pub use version::{Flavor, ServerVersion};

/// The MySQL-family connector. Stateless apart from its settings: every call opens its own
/// sessions and closes them before returning, so one value can serve many jobs at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlConnector {
    connect_timeout: Duration,
    full_load: FullLoadSettings,
    replication: ReplicationSettings,
}

/// Incremental replication tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSettings {
    /// Destination sessions that apply independent source transactions in parallel (see
    /// `applier`); two-way synchronization always uses one. One by default: a lane folds what
    /// it holds by key into a few batched statements per table (`net_apply`), and one lane holds
    /// the most; on 2 cores a backlog drained at 77k row changes/s with one lane, 46k with two
    /// and 30k with eight (`bench/backlog.sh`). More lanes help only where a destination with
    /// idle cores applies tables that take the per-change path.
    pub apply_lanes: usize,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self { apply_lanes: 1 }
    }
}

impl MySqlConnector {
    /// Default connect timeout: long enough for a remote server, short enough for a precheck.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new() -> Self {
        Self {
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            full_load: FullLoadSettings::default(),
            replication: ReplicationSettings::default(),
        }
    }

    /// How long to wait for a server to accept a session before a `Transient` error.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Full-load tuning (parallelism, chunk and statement sizes, destination binlog).
    pub fn with_full_load_settings(mut self, settings: FullLoadSettings) -> Self {
        self.full_load = settings;
        self
    }

    pub fn full_load_settings(&self) -> &FullLoadSettings {
        &self.full_load
    }

    /// Replication tuning (parallel apply lanes).
    pub fn with_replication_settings(mut self, settings: ReplicationSettings) -> Self {
        self.replication = settings;
        self
    }

    pub fn replication_settings(&self) -> &ReplicationSettings {
        &self.replication
    }
}

impl dts_core::FullLoader for MySqlConnector {
    fn load(
        &self,
        plan: &dts_core::MigrationPlan,
        checkpoints: &dyn dts_core::Checkpoints,
        progress: dts_core::ProgressFn<'_>,
    ) -> impl std::future::Future<Output = Result<dts_core::LoadSummary, dts_core::ConnectorError>> + Send {
        full_load::run(self, plan, checkpoints, progress)
    }
}

impl Default for MySqlConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl dts_core::ChangeReplicator for MySqlConnector {
    async fn current_position(
        &self,
        plan: &dts_core::MigrationPlan,
    ) -> Result<dts_core::Position, dts_core::ConnectorError> {
        replication::current_position(self, plan).await.map(dts_core::Position::Binlog)
    }

    async fn replicate(
        &self,
        plan: &dts_core::MigrationPlan,
        start: dts_core::Position,
        _mode: dts_core::StreamMode,
        checkpoints: &dyn dts_core::Checkpoints,
        observer: &dyn dts_core::ReplicationObserver,
    ) -> Result<dts_core::Position, dts_core::ConnectorError> {
        replication::run(self, plan, start, checkpoints, observer).await.map(dts_core::Position::Binlog)
    }
}

impl dts_core::ChangeSource for MySqlConnector {
    type Stream = binlog_change::BinlogChangeStream;

    async fn changes(
        &self,
        plan: &dts_core::MigrationPlan,
        start: dts_core::Position,
    ) -> Result<Self::Stream, dts_core::ConnectorError> {
        binlog_change::BinlogChangeStream::open(plan, start, self.connect_timeout).await
    }

    async fn position_at(
        &self,
        plan: &dts_core::MigrationPlan,
        unix_secs: i64,
    ) -> Result<dts_core::Position, dts_core::ConnectorError> {
        let mut control = connection::connect(&plan.source, Side::Source, self.connect_timeout).await?;
        let pos = binlog_time::position_at(&plan.source, &mut control, unix_secs).await;
        control.close().await;
        pos.map(dts_core::Position::Binlog)
    }
}

impl dts_core::Releaser for MySqlConnector {
    /// Adds back the secondary keys a full load deferred (their definitions live only in the
    /// job's checkpoints). Nothing else outlives a job: binlog dump connections end with it.
    async fn release(
        &self,
        plan: &dts_core::MigrationPlan,
        reason: dts_core::ReleaseReason,
        checkpoints: &dyn dts_core::Checkpoints,
    ) -> Result<(), dts_core::ConnectorError> {
        if checkpoints.scan(index_deferral::DEFERRED_PREFIX).await?.is_empty() {
            return Ok(());
        }
        // Deferred keys are the destination's; a plan without one cannot drop the record.
        let destination = plan.destination()?;
        tracing::info!(job_id = %plan.job_id, reason = reason.as_str(), "restoring deferred secondary keys before the job's checkpoints go");
        let mut dest = connection::connect(destination, Side::Destination, self.connect_timeout).await?;
        let result = index_deferral::release_all(&mut dest, checkpoints).await;
        dest.close().await;
        result
    }
}

impl dts_core::Connector for MySqlConnector {
    fn capabilities(&self) -> dts_core::Capabilities {
        dts_core::Capabilities {
            structure: true,
            snapshot: dts_core::SnapshotMode::Chunked,
            two_way: true,
            ddl_in_stream: true,
            consistency_check: true,
        }
    }
}

impl dts_core::ConsistencyChecker for MySqlConnector {
    async fn tables(&self, plan: &dts_core::MigrationPlan) -> Result<Vec<(String, String)>, dts_core::ConnectorError> {
        let mut s = connection::connect(&plan.source, Side::Source, self.connect_timeout).await?;
        let catalog = catalog::Catalog::read(&mut s, &plan.selection).await;
        s.close().await;
        let catalog = catalog?;
        Ok(catalog.databases.iter().flat_map(|d| d.tables.iter().map(|t| (d.name.clone(), t.clone()))).collect())
    }

    async fn compare(
        &self,
        plan: &dts_core::MigrationPlan,
        database: &str,
        table: &str,
        options: &dts_core::CompareOptions,
    ) -> Result<dts_core::TableDiff, dts_core::ConnectorError> {
        let target = plan.selection.target(database, table);
        verify::compare_table(
            &plan.source,
            plan.destination()?,
            (database, table),
            &target,
            options,
            self.connect_timeout,
        )
        .await
    }

    async fn repair_sql(
        &self,
        plan: &dts_core::MigrationPlan,
        diff: &dts_core::TableDiff,
        limit: usize,
    ) -> Result<Vec<String>, dts_core::ConnectorError> {
        let target = plan.selection.target(&diff.database, &diff.table);
        verify::repair_sql(&plan.source, diff, &target, limit, self.connect_timeout).await
    }
}

#[cfg(test)]
mod tests {
    use dts_core::Connector;

    #[test]
    fn the_connector_can_do_what_the_route_table_declares_for_its_family() {
        assert_eq!(super::MySqlConnector::default().capabilities(), dts_core::DatabaseFamily::MySql.capabilities());
    }
}
