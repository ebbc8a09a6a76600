//! The Redis family's `Connector`: what the engine calls for a Redis route. The snapshot
//! arrives inside the replication stream (`SnapshotMode::InStream`), so the full load and
//! structure steps are never called; replication, precheck, consistency and release are.

use dts_core::{
    Capabilities, ChangeBatch, ChangeReplicator, ChangeSource, ChangeStream, CheckReport, Checker, Checkpoints,
    CompareOptions, Connector, ConnectorError, ConsistencyChecker, DatabaseFamily, ErrorClass, FullLoader, LoadSummary,
    MigrationPlan, Position, ProgressFn, ReleaseReason, Releaser, ReplicationObserver, StreamMode, StructureMigrator,
    StructurePhase, StructureSummary, TableDiff,
};

use crate::rdb::RdbLimits;

/// The Redis connector and its settings.
#[derive(Debug, Clone, Default)]
pub struct RedisConnector {
    pub limits: RdbLimits,
}

fn not_applicable(what: &str) -> ConnectorError {
    ConnectorError::new(ErrorClass::Fatal, format!("Redis jobs have no {what} step"), "")
}

impl Checker for RedisConnector {
    async fn check(&self, plan: &MigrationPlan, progress: ProgressFn<'_>) -> CheckReport {
        crate::checker::check(plan, progress).await
    }
}

impl StructureMigrator for RedisConnector {
    async fn migrate_structure_phase(
        &self,
        _plan: &MigrationPlan,
        _phase: StructurePhase,
        _progress: ProgressFn<'_>,
    ) -> Result<StructureSummary, ConnectorError> {
        Ok(StructureSummary::default())
    }
}

impl FullLoader for RedisConnector {
    async fn load(
        &self,
        _plan: &MigrationPlan,
        _checkpoints: &dyn Checkpoints,
        _progress: ProgressFn<'_>,
    ) -> Result<LoadSummary, ConnectorError> {
        Err(not_applicable("separate full load (the snapshot arrives in the replication stream)"))
    }
}

impl ChangeReplicator for RedisConnector {
    async fn current_position(&self, _plan: &MigrationPlan) -> Result<Position, ConnectorError> {
        // A replica starts with a snapshot; there is no position to start from without one.
        Ok(Position::None)
    }

    async fn replicate(
        &self,
        plan: &MigrationPlan,
        _start: Position,
        mode: StreamMode,
        checkpoints: &dyn Checkpoints,
        observer: &dyn ReplicationObserver,
    ) -> Result<Position, ConnectorError> {
        crate::shards::replicate(plan, checkpoints, observer, self.limits, mode).await
    }
}

/// Redis has no change-tracking stream in this build.
pub struct NoChanges;

impl ChangeStream for NoChanges {
    async fn next_batch(
        &mut self,
        _max_events: usize,
        _idle: std::time::Duration,
    ) -> Result<Option<ChangeBatch>, ConnectorError> {
        Err(not_applicable("change tracking"))
    }
}

impl ChangeSource for RedisConnector {
    type Stream = NoChanges;

    async fn changes(&self, _plan: &MigrationPlan, _start: Position) -> Result<NoChanges, ConnectorError> {
        Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            "change tracking of a Redis source is not supported; use a migration or synchronization job",
            "",
        ))
    }
}

impl ConsistencyChecker for RedisConnector {
    async fn tables(&self, plan: &MigrationPlan) -> Result<Vec<(String, String)>, ConnectorError> {
        crate::verify::databases(plan).await
    }

    async fn compare(
        &self,
        plan: &MigrationPlan,
        database: &str,
        _table: &str,
        options: &CompareOptions,
    ) -> Result<TableDiff, ConnectorError> {
        crate::verify::compare(plan, database, options).await
    }

    async fn repair_sql(
        &self,
        plan: &MigrationPlan,
        diff: &TableDiff,
        limit: usize,
    ) -> Result<Vec<String>, ConnectorError> {
        crate::verify::repair_commands(plan, diff, limit).await
    }
}

impl Releaser for RedisConnector {
    /// Puts back the source's replica settings (on every master of a cluster), undoes a
    /// snapshot relay an interruption left on a standalone destination (`relay::recover`) and
    /// removes dts's applied-offset markers from it (a cluster destination has none).
    /// Idempotent.
    async fn release(
        &self,
        plan: &MigrationPlan,
        reason: ReleaseReason,
        checkpoints: &dyn Checkpoints,
    ) -> Result<(), ConnectorError> {
        if checkpoints.get(crate::source_config::SAVED_KEY).await?.is_some_and(|v| v != "[]") {
            let servers = crate::shards::source_servers(plan, checkpoints).await;
            crate::source_config::restore(plan, &servers, checkpoints).await?;
        }
        if let Ok(dest) = plan.destination() {
            crate::relay::recover(checkpoints, crate::sync::POSITION_KEY, dest, &plan.job_id).await?;
            let released = |e: crate::RedisError| e.into_connector("releasing the job");
            match crate::conn::Conn::open(dest).await {
                Ok(mut c) => {
                    if crate::topology::of_conn(&mut c, &dest.host).await.map_err(released)?.is_cluster() {
                        return Ok(());
                    }
                    let dbs = crate::dbs::DbSelection::of(plan)?;
                    let mut keys = vec![crate::stream::marker_key(&plan.job_id)];
                    let prefix = format!("{}/", crate::sync::POSITION_KEY);
                    for (key, _) in checkpoints.scan(&prefix).await? {
                        keys.push(crate::stream::shard_marker_key(&plan.job_id, &key[prefix.len()..]));
                    }
                    c.ok(&["SELECT".to_string(), dbs.first().to_string()]).await.map_err(released)?;
                    for key in keys {
                        c.ok(&["DEL".to_string(), key]).await.map_err(released)?;
                    }
                }
                Err(e) => {
                    tracing::warn!(job_id = %plan.job_id, reason = reason.as_str(), error = %e, "destination unreachable: marker left");
                    return Err(e.into_connector("releasing the job"));
                }
            }
        }
        Ok(())
    }
}

impl Connector for RedisConnector {
    fn capabilities(&self) -> Capabilities {
        DatabaseFamily::Redis.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_equal_the_route_tables() {
        let caps = RedisConnector::default().capabilities();
        assert_eq!(caps, DatabaseFamily::Redis.capabilities());
        assert_eq!(caps.snapshot, dts_core::SnapshotMode::InStream);
    }
}
