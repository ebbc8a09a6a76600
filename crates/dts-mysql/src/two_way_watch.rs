//! Two-way synchronization's watcher: a second binlog reader on a job's source that only
//! reports, as far ahead as the source has logged, which rows applications changed and when
//! (`ConflictArbiter::local_change`), and says when it has read everything
//! (`ConflictArbiter::reader_idle`). It runs beside the job's own reader and applier, so an
//! applier that waits for the other direction's reports never waits on that direction's
//! applier (which may itself be waiting): the two directions cannot block each other.

use std::collections::HashMap;
use std::time::Duration;

use dts_core::{BinlogPosition, ConflictArbiter, ConnectorError, MigrationPlan};

use crate::MySqlConnector;
use crate::apply::ApplyLayout;
use crate::binlog::{self, BinlogEvent, BinlogReader};
use crate::conflict::row_ids;
use crate::connection::{Side, connect};

/// How long the stream may be quiet before the watcher reports that it has read everything.
const IDLE: Duration = Duration::from_millis(100);

/// Watches the source from `from` until an error (it never ends otherwise).
pub async fn watch(
    conn: &MySqlConnector,
    plan: &MigrationPlan,
    from: BinlogPosition,
    server: &str,
    arbiter: &dyn ConflictArbiter,
) -> ConnectorError {
    let e = match run(conn, plan, from.clone(), server, arbiter).await {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Server error 1236: the source cannot serve this position.
    if !e.detail.contains("1236") {
        return e;
    }
    // A position it cannot open even by GTID (a server without GTIDs whose file is gone): the
    // watcher goes on from the source's current position, and says so (local changes made
    // before now are not reported to the conflict rule).
    tracing::warn!(server, summary = %e.summary, detail = %e.detail, "watcher restarts at the source's current position");
    let now = match crate::replication::current_position(conn, plan).await {
        Ok(p) => p,
        Err(e2) => return e2,
    };
    match run(conn, plan, BinlogPosition { gtid: None, ..now }, server, arbiter).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn run(
    conn: &MySqlConnector,
    plan: &MigrationPlan,
    from: BinlogPosition,
    server: &str,
    arbiter: &dyn ConflictArbiter,
) -> Result<std::convert::Infallible, ConnectorError> {
    let mut control = connect(&plan.source, Side::Source, conn.connect_timeout()).await?;
    let id = binlog::dump_server_id(2_000_000);
    let mut reader = BinlogReader::open(&plan.source, &mut control, &from, id, "the two-way watcher").await?;
    let mut layouts: HashMap<(String, String), ApplyLayout> = HashMap::new();
    loop {
        let Some(event) = reader.next(IDLE, &|_, _| true).await? else {
            arbiter.reader_idle(server);
            continue;
        };
        match event {
            BinlogEvent::Statement { .. } => layouts.clear(),
            BinlogEvent::Rows { database, table, server_id, timestamp, changes, .. }
                if plan.loop_guard != Some(server_id) =>
            {
                let key = (database, table);
                if !layouts.contains_key(&key) {
                    let layout = ApplyLayout::read(&mut control, &key.0, &key.1).await?;
                    layouts.insert(key.clone(), layout);
                }
                let layout = &layouts[&key];
                for change in &changes {
                    for row_id in row_ids(layout, change) {
                        arbiter.local_change(server, &row_id, timestamp);
                    }
                }
            }
            _ => {}
        }
    }
}
