//! Incremental replication, the reading side: the source's binlog from the full load's snapshot
//! position, row events grouped into their transactions and handed to the `applier` (parallel
//! lanes by causality, group commit, the position checkpointed once every lane has committed),
//! DDL of the selected databases replayed.
//!
//! Correctness argument: the snapshot position P is where the copied data stands (see
//! `snapshot`); every change committed after P is in the binlog after P, so applying the binlog
//! from P brings the destination to the source's state. A resumed full load pins later
//! snapshots for some chunks, and a crash may re-apply transactions after the last checkpoint:
//! both only re-apply changes to rows that already have them, which the idempotent statements of
//! `apply` absorb (after-images by key). The checkpoint is written after the destination commit,
//! so nothing is lost; at worst the last transaction is applied twice, harmlessly.
//!
//! MariaDB: the session sets `@mariadb_slave_capability = 4` so the server sends its own
//! events (GTID, annotate) instead of replacing them; the first, fake ROTATE (position 0) is
//! skipped because its file name carries the checksum bytes.
//!
//! Two-way synchronization (no ping-pong): both directions' appliers set their session
//! `server_id` to the plan's loop guard, so MariaDB logs every change dts applies with that id;
//! both readers drop row events and DDL carrying it. A change made by an application is logged
//! with the server's own id and crosses exactly once; its applied copy never comes back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dts_core::{
    BinlogPosition, Checkpoints, Completion, ConnectorError, ErrorClass, MigrationPlan, ReplicationObserver,
};
use futures::StreamExt;
use mysql_async::binlog::RowsEventFlags;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, OptsBuilder};

use crate::MySqlConnector;
use crate::applier::{Dispatcher, Transaction, TwoWay};
use crate::apply::RowChange;
use crate::binlog_filter::{BinlogFilter, database_statement};
use crate::catalog::Catalog;
use crate::connection::{Session, Side, connect, text_column};
use crate::gtid::{self, GtidState};

pub const POSITION_KEY: &str = "incremental/position";
/// Rows of one source transaction held in memory before they are sent ahead.
const PARTIAL_ROWS: u64 = 5_000;

fn fatal(summary: impl Into<String>, detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorClass::Fatal, summary, detail.to_string())
}

fn transient(summary: impl Into<String>, detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorClass::Transient, summary, detail.to_string())
}

fn position_after(a: &BinlogPosition, b: &BinlogPosition) -> bool {
    (a.file.as_str(), a.offset) >= (b.file.as_str(), b.offset)
}

async fn master_position(control: &mut Session) -> Result<BinlogPosition, ConnectorError> {
    let rows: Vec<mysql_async::Row> = control.rows("SHOW MASTER STATUS", "reading the source binlog position").await?;
    let row = rows.first().ok_or_else(|| {
        ConnectorError::new(ErrorClass::NeedsOperator, "the source has no binlog (log_bin is OFF)", "")
    })?;
    let file = text_column(row, 0).ok().flatten().unwrap_or_default();
    let offset = text_column(row, 1).ok().flatten().and_then(|p| p.parse().ok()).unwrap_or(0);
    Ok(BinlogPosition { file, offset, gtid: None })
}

/// The position now, with MariaDB's GTID state at it (where a job without a full load starts).
async fn master_position_with_gtid(control: &mut Session) -> Result<BinlogPosition, ConnectorError> {
    let mut pos = master_position(control).await?;
    let sql = format!("SELECT BINLOG_GTID_POS('{}', {})", pos.file.replace('\'', "''"), pos.offset);
    if let Ok(rows) = control.rows_raw(&sql).await {
        pos.gtid = rows.first().and_then(|r| text_column(r, 0).ok().flatten()).filter(|g| !g.is_empty());
    }
    Ok(pos)
}

/// The source's binlog position now (with its GTID position where the server has one).
pub async fn current_position(conn: &MySqlConnector, plan: &MigrationPlan) -> Result<BinlogPosition, ConnectorError> {
    let mut control = connect(&plan.source, Side::Source, conn.connect_timeout()).await?;
    let pos = master_position_with_gtid(&mut control).await;
    control.close().await;
    pos
}

async fn open_applier(conn: &MySqlConnector, plan: &MigrationPlan) -> Result<Session, ConnectorError> {
    let mut s = connect(&plan.destination, Side::Destination, conn.connect_timeout()).await?;
    s.query_drop(
        "SET NAMES binary; SET SESSION time_zone = '+00:00'; \
         SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
         SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'; \
         SET SESSION foreign_key_checks = 0; SET SESSION innodb_lock_wait_timeout = 10",
        "preparing the applier session",
    )
    .await?;
    if let Some(id) = plan.loop_guard {
        // Two-way synchronization: what this session writes is logged with `id`, which the
        // other direction's reader drops (see `run`).
        s.query_drop(&format!("SET SESSION server_id = {id}"), "marking the applier session (SET server_id)").await?;
    }
    Ok(s)
}

/// The file name of a ROTATE event. The stream's first, artificial ROTATE arrives before the
/// format description, so its name may still carry the 4 checksum bytes: the name is cut after
/// the 6-digit sequence number that follows its last dot. The dot is looked for before the last
/// 4 bytes (a checksum byte may itself be a dot); the sequence number is longer than that.
fn binlog_file_name(raw: &[u8]) -> String {
    let head = &raw[..raw.len().saturating_sub(4)];
    let cut = head.iter().rposition(|&b| b == b'.').map_or(raw.len(), |dot| {
        let digits = raw[dot + 1..].iter().take(6).take_while(|b| b.is_ascii_digit()).count();
        dot + 1 + digits
    });
    String::from_utf8_lossy(&raw[..cut]).into_owned()
}

/// A server id for a binlog dump connection, in `[base, base + 1,000,000)`: the source drops an
/// older dump connection that registers with the same id, so every connection of this process
/// gets its own (a counter) and processes differ by their start time.
pub(crate) fn dump_server_id(base: u32) -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    base + (nanos / 1000 + n * 7919) % 1_000_000
}

fn gtid_text(state: &GtidState) -> Option<String> {
    (!state.is_empty()).then(|| state.to_string())
}

/// Whether the source still has binlog file `file`.
async fn has_binlog(control: &mut Session, file: &str) -> Result<bool, ConnectorError> {
    let rows: Vec<mysql_async::Row> = control.rows("SHOW BINARY LOGS", "listing the source's binlog files").await?;
    Ok(rows.iter().any(|r| text_column(r, 0).ok().flatten().as_deref() == Some(file)))
}

/// Opens a binlog stream on the source at `pos`. A position whose file the source no longer
/// has (purged, another server after a failover, a name damaged by an older dts) opens at its
/// GTID state instead when it has one: the server finds the position itself, and `pos.file`
/// is cleared (the stream's first ROTATE names the file).
pub(crate) async fn open_stream(
    plan: &MigrationPlan,
    control: &mut Session,
    pos: &mut BinlogPosition,
    server_id: u32,
    doing: &str,
) -> Result<mysql_async::BinlogStream, ConnectorError> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(plan.source.host.clone())
        .tcp_port(plan.source.port)
        .user(Some(plan.source.user.clone()))
        .pass(Some(plan.source.password.clone()))
        .prefer_socket(false);
    let mut source = mysql_async::Conn::new(opts).await.map_err(|e| {
        transient(format!("cannot connect to source {}:{} for {doing}", plan.source.host, plan.source.port), e)
    })?;
    source
        .query_drop("SET @mariadb_slave_capability = 4")
        .await
        .map_err(|e| transient("cannot prepare a binlog session", e))?;
    let gtid = pos.gtid.as_deref().map(GtidState::parse).unwrap_or_default();
    let request = if !gtid.is_empty() && !has_binlog(control, &pos.file).await? {
        tracing::info!(gtid = %gtid, file = %pos.file, doing, "the position's binlog file is gone: opening by GTID");
        source
            .query_drop(format!("SET @slave_connect_state = '{gtid}', @slave_gtid_strict_mode = 0"))
            .await
            .map_err(|e| transient("cannot set the GTID position of a binlog session", e))?;
        pos.file.clear();
        BinlogStreamRequest::new(server_id).with_pos(4u64)
    } else {
        BinlogStreamRequest::new(server_id).with_filename(pos.file.as_bytes()).with_pos(pos.offset)
    };
    source
        .get_binlog_stream(request)
        .await
        .map_err(|e| transient(format!("cannot open the binlog stream for {doing}"), e))
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Runs replication until completed; for two-way synchronization with the watcher of the
/// source beside it (`two_way_watch`), reporting local changes for conflicts.
pub async fn run(
    conn: &MySqlConnector,
    plan: &MigrationPlan,
    start: BinlogPosition,
    checkpoints: &dyn Checkpoints,
    observer: &dyn ReplicationObserver,
) -> Result<BinlogPosition, ConnectorError> {
    let pos: BinlogPosition = match checkpoints.get(POSITION_KEY)? {
        Some(json) => serde_json::from_str(&json).map_err(|e| fatal("bad replication checkpoint", e))?,
        None => start,
    };
    let arbiter = observer.arbiter().filter(|_| plan.loop_guard.is_some());
    // Two-way: one lane (conflict checks read the destination on the applying session).
    let lanes = if arbiter.is_some() { 1 } else { conn.replication_settings().apply_lanes.max(1) };
    let control = open_applier(conn, plan).await?;
    let mut sessions = Vec::with_capacity(lanes);
    for _ in 0..lanes {
        sessions.push(open_applier(conn, plan).await?);
    }
    let two_way = arbiter.map(|arbiter| TwoWay {
        from: format!("{}:{}", plan.source.host, plan.source.port),
        to: format!("{}:{}", plan.destination.host, plan.destination.port),
        policy: plan.conflict_policy,
        arbiter,
    });
    let (mut dispatcher, lane_loops) = Dispatcher::new(control, sessions, two_way, plan.selection.clone(), checkpoints);
    let lanes = futures::future::join_all(lane_loops);
    let reader = replicate(conn, plan, pos.clone(), &mut dispatcher, observer);
    let Some(arbiter) = arbiter else {
        return tokio::select! {
            r = reader => r,
            _ = lanes => Err(fatal("the apply lanes stopped", "all lanes ended")),
        };
    };
    let server = format!("{}:{}", plan.source.host, plan.source.port);
    let watcher = crate::two_way_watch::watch(conn, plan, pos, &server, arbiter);
    tokio::select! {
        r = reader => r,
        _ = lanes => Err(fatal("the apply lanes stopped", "all lanes ended")),
        e = watcher => Err(e),
    }
}

async fn replicate(
    conn: &MySqlConnector,
    plan: &MigrationPlan,
    mut pos: BinlogPosition,
    applier: &mut Dispatcher<'_>,
    observer: &dyn ReplicationObserver,
) -> Result<BinlogPosition, ConnectorError> {
    let mut control = connect(&plan.source, Side::Source, conn.connect_timeout()).await?;
    let catalog = Catalog::read(&mut control, &plan.selection).await?;
    let filter = BinlogFilter::new(&plan.selection, &catalog);
    let mut gtid = pos.gtid.as_deref().map(GtidState::parse).unwrap_or_default();
    let mut stream = open_stream(plan, &mut control, &mut pos, dump_server_id(1_000_000), "replication").await?;
    tracing::info!(position = %pos, "replication starts");

    let mut current_file = pos.file.clone();
    let mut txn = Transaction::default();
    let mut target: Option<BinlogPosition> = None;
    let mut last_distance_check = std::time::Instant::now();
    let mut bytes_behind = 0u64;
    // A position the lanes made durable (and checkpointed): the job's progress.
    macro_rules! durable {
        ($step:expr) => {
            if let Some((committed, timestamp)) = $step {
                pos = committed;
                if last_distance_check.elapsed() > Duration::from_secs(2) {
                    last_distance_check = std::time::Instant::now();
                    if let Ok(m) = master_position(&mut control).await {
                        bytes_behind =
                            if m.file == pos.file { m.offset.saturating_sub(pos.offset) } else { bytes_behind };
                    }
                }
                observer.progress((now_secs() - i64::from(timestamp)).max(0), bytes_behind, false);
            }
        };
    }
    loop {
        match observer.completion() {
            Completion::Immediately if txn.groups.is_empty() && !applier.mid_transaction() => {
                if let Some((committed, _)) = applier.barrier().await? {
                    pos = committed;
                }
                return Ok(pos);
            }
            Completion::WaitForSync if target.is_none() => {
                let t = master_position(&mut control).await?;
                tracing::info!(target = %t, "completing: waiting for the destination to reach the source position");
                target = Some(t);
            }
            _ => {}
        }
        if let Some(t) = &target
            && txn.groups.is_empty()
            && !applier.busy()
            && position_after(&pos, t)
        {
            return Ok(pos);
        }
        if applier.due() {
            durable!(applier.commit().await?);
        }
        let wait = if applier.busy() { Duration::from_millis(10) } else { Duration::from_secs(1) };
        let event = match tokio::time::timeout(wait, stream.next()).await {
            Err(_) if applier.has_open_batch() && !applier.mid_transaction() => {
                durable!(applier.commit().await?);
                continue;
            }
            Err(_) if applier.in_flight() => {
                durable!(applier.settle().await?);
                continue;
            }
            Err(_) => {
                observer.progress(0, 0, true);
                if let Some(t) = &target
                    && txn.groups.is_empty()
                    && !applier.busy()
                {
                    // The stream is idle and everything read is committed: when the source has
                    // not moved past the target, what remains before it are events that carry no
                    // transaction (format, GTID list, checkpoint events of a new file).
                    let now = master_position(&mut control).await?;
                    if now.file == t.file && now.offset == t.offset {
                        return Ok(pos);
                    }
                }
                continue;
            }
            Ok(None) => return Err(transient("the source closed the binlog stream", "end of stream")),
            Ok(Some(Err(e))) => return Err(transient("the binlog stream from the source failed", e)),
            Ok(Some(Ok(ev))) => ev,
        };
        let header = event.header();
        if header.event_type_raw() == gtid::MARIADB_GTID_EVENT {
            gtid.apply_event(event.data(), header.server_id());
            continue;
        }
        // Two-way synchronization: a change logged with the loop guard was written by dts's
        // other direction; its rows and DDL are dropped here (its XID still advances the position).
        let echoed = plan.loop_guard == Some(header.server_id());
        let data = event.read_data().map_err(|e| fatal("cannot decode a binlog event", e))?;
        match data {
            // ROTATE: a real one ends a file; an artificial one (log_pos 0) starts the stream or
            // moves to the next file after one that ended without a rotate (a crashed server).
            Some(EventData::RotateEvent(r)) => {
                let name = binlog_file_name(r.name_raw());
                if header.log_pos() != 0 || name != current_file {
                    current_file = name;
                    pos = BinlogPosition { file: current_file.clone(), offset: r.position(), gtid: gtid_text(&gtid) };
                }
            }
            Some(EventData::RowsEvent(rows)) => {
                let Some(tme) = stream.get_tme(rows.table_id()) else {
                    return Err(fatal("a row event without its table map", rows.table_id()));
                };
                let key = (tme.database_name().into_owned(), tme.table_name().into_owned());
                if echoed || !filter.table(&key.0, &key.1) {
                    continue;
                }
                // The source session's foreign_key_checks: with them on, the source cascaded.
                let fk_checks = !rows.flags().contains(RowsEventFlags::NO_FOREIGN_KEY_CHECKS);
                txn.timestamp = header.timestamp();
                for row in rows.rows(tme) {
                    let (before, after) = row.map_err(|e| fatal("cannot decode a binlog row", e))?;
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
                    txn.push(key.clone(), fk_checks, change);
                }
                // A large source transaction goes to the destination in slices (still one
                // destination transaction, committed only after its XID): memory stays bounded.
                if txn.rows >= PARTIAL_ROWS {
                    durable!(applier.slice(std::mem::take(&mut txn)).await?);
                }
            }
            Some(EventData::XidEvent(_)) => {
                let after = BinlogPosition {
                    file: current_file.clone(),
                    offset: u64::from(header.log_pos()),
                    gtid: gtid_text(&gtid),
                };
                durable!(applier.add(std::mem::take(&mut txn), after, header.timestamp()).await?);
            }
            Some(EventData::QueryEvent(q)) => {
                let sql = q.query();
                let trimmed = sql.trim();
                if trimmed.eq_ignore_ascii_case("BEGIN") {
                    continue;
                }
                let after = BinlogPosition {
                    file: current_file.clone(),
                    offset: u64::from(header.log_pos()),
                    gtid: gtid_text(&gtid),
                };
                if trimmed.eq_ignore_ascii_case("COMMIT") {
                    durable!(applier.add(std::mem::take(&mut txn), after, header.timestamp()).await?);
                    continue;
                }
                // A DDL statement ends any transaction: everything dispatched commits first, then
                // the statement runs, then its position is checkpointed (a crash in between
                // replays it).
                if !echoed && filter.ddl(&q.schema(), trimmed) {
                    tracing::info!(schema = %q.schema(), "replaying DDL");
                    // CREATE/DROP DATABASE runs without a default database (it may not exist).
                    let schema =
                        if database_statement(trimmed).is_some() { String::new() } else { q.schema().into_owned() };
                    durable!(applier.ddl(&schema, trimmed).await?);
                } else {
                    durable!(applier.barrier().await?);
                }
                pos = after;
                applier.checkpoint(&pos)?;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_names_lose_trailing_checksum_bytes() {
        assert_eq!(binlog_file_name(b"binlog.000002"), "binlog.000002");
        assert_eq!(binlog_file_name(b"binlog.000001\x12\x34\x56\x78"), "binlog.000001");
        assert_eq!(binlog_file_name(b"mysql-bin.000010789a"), "mysql-bin.000010");
        // A checksum byte that is a dot.
        assert_eq!(binlog_file_name(b"binlog.000001\x12\x2e\x56\x78"), "binlog.000001");
        assert_eq!(binlog_file_name(b"binlog.000001\x2e\x31\x32\x33"), "binlog.000001");
        assert_eq!(binlog_file_name(b"my.bin.000003"), "my.bin.000003");
    }
}
