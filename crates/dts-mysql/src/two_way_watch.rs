//! Two-way synchronization's watcher: a second binlog reader on a job's source that only
//! reports, as far ahead as the source has logged, which rows applications changed and when
//! (`ConflictArbiter::local_change`), and says when it has read everything
//! (`ConflictArbiter::reader_idle`). It runs beside the job's own reader and applier, so an
//! applier that waits for the other direction's reports never waits on that direction's
//! applier (which may itself be waiting): the two directions cannot block each other.

use std::collections::HashMap;
use std::time::Duration;

use dts_core::{BinlogPosition, ConflictArbiter, ConnectorError, ErrorClass, MigrationPlan};
use futures::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};

use crate::MySqlConnector;
use crate::apply::{ApplyLayout, RowChange};
use crate::conflict::row_ids;
use crate::connection::{Side, connect};

/// How long the stream may be quiet before the watcher reports that it has read everything.
const IDLE: Duration = Duration::from_millis(100);

fn transient(summary: &str, detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorClass::Transient, summary, detail.to_string())
}

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
    let mut from = from;
    let id = crate::replication::dump_server_id(2_000_000);
    let mut stream = crate::replication::open_stream(plan, &mut control, &mut from, id, "the two-way watcher").await?;
    let mut layouts: HashMap<(String, String), ApplyLayout> = HashMap::new();
    loop {
        let event = match tokio::time::timeout(IDLE, stream.next()).await {
            Err(_) => {
                arbiter.reader_idle(server);
                continue;
            }
            Ok(None) => return Err(transient("the source closed the watching binlog stream", "end of stream")),
            Ok(Some(Err(e))) => return Err(transient("the watching binlog stream failed", e)),
            Ok(Some(Ok(ev))) => ev,
        };
        let header = event.header();
        let Ok(Some(data)) = event.read_data() else { continue };
        match data {
            EventData::QueryEvent(_) => layouts.clear(),
            EventData::RowsEvent(rows) if plan.loop_guard != Some(header.server_id()) => {
                let Some(tme) = stream.get_tme(rows.table_id()) else { continue };
                let key = (tme.database_name().into_owned(), tme.table_name().into_owned());
                if !layouts.contains_key(&key) {
                    let layout = ApplyLayout::read(&mut control, &key.0, &key.1).await?;
                    layouts.insert(key.clone(), layout);
                }
                let layout = &layouts[&key];
                for row in rows.rows(tme) {
                    let Ok((before, after)) = row else { continue };
                    let before = before.map(|r| r.unwrap().into_iter().map(Some).collect::<Vec<_>>());
                    let after = after.map(|r| r.unwrap().into_iter().map(Some).collect::<Vec<_>>());
                    let change = match (&rows, before, after) {
                        (RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_), _, Some(a)) => {
                            RowChange::Insert(a)
                        }
                        (RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_), Some(b), _) => {
                            RowChange::Delete(b)
                        }
                        (_, Some(b), Some(a)) => RowChange::Update { before: b, after: a },
                        _ => continue,
                    };
                    for row_id in row_ids(layout, &change) {
                        arbiter.local_change(server, &row_id, header.timestamp());
                    }
                }
            }
            _ => {}
        }
    }
}
