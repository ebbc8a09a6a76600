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
    BinlogPosition, Checkpoints, Completion, ConnectorError, ErrorClass, Lag, MigrationPlan, Position,
    ReplicationObserver,
};

use crate::MySqlConnector;
use crate::applier::{Dispatcher, Durable, POSITION_KEY, Transaction, TwoWay};
use crate::binlog::{self, BinlogEvent, BinlogReader};
use crate::binlog_filter::{self, BinlogFilter, Decision};
use crate::connection::{Session, Side, connect};
use crate::definer;

/// Rows of one source transaction held in memory before they are sent ahead.
const PARTIAL_ROWS: u64 = 5_000;

fn fatal(summary: impl Into<String>, detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorClass::Fatal, summary, detail.to_string())
}

/// The source's binlog position now (with its GTID position where the server has one).
pub async fn current_position(conn: &MySqlConnector, plan: &MigrationPlan) -> Result<BinlogPosition, ConnectorError> {
    let mut control = connect(&plan.source, Side::Source, conn.connect_timeout()).await?;
    let pos = binlog::master_position_with_gtid(&mut control).await;
    control.close().await;
    pos
}

async fn open_applier(conn: &MySqlConnector, plan: &MigrationPlan) -> Result<Session, ConnectorError> {
    let mut s = connect(plan.destination()?, Side::Destination, conn.connect_timeout()).await?;
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

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Where replication starts: its own checkpoint, else `start` (the snapshot's position, or the
/// source's position when the job first started).
async fn start_position(start: Position, checkpoints: &dyn Checkpoints) -> Result<BinlogPosition, ConnectorError> {
    if let Some(json) = checkpoints.get(POSITION_KEY).await? {
        return serde_json::from_str(&json).map_err(|e| fatal("bad replication checkpoint", e));
    }
    match start {
        Position::Binlog(p) => Ok(p),
        Position::None => Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            "the full load recorded no binlog position: is log_bin ON on the source?",
            "",
        )),
        other => Err(fatal("a MySQL-family job was handed a position of another family", other)),
    }
}

/// Runs replication until completed; for two-way synchronization with the watcher of the
/// source beside it (`two_way_watch`), reporting local changes for conflicts.
pub async fn run(
    conn: &MySqlConnector,
    plan: &MigrationPlan,
    start: Position,
    checkpoints: &dyn Checkpoints,
    observer: &dyn ReplicationObserver,
) -> Result<BinlogPosition, ConnectorError> {
    let pos = start_position(start, checkpoints).await?;
    let destination = plan.destination()?;
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
        to: format!("{}:{}", destination.host, destination.port),
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
    let filter = BinlogFilter::read(&mut control, &plan.selection).await?;
    let preserve_definer = definer::preserved(plan);
    // Two-way synchronization: a change logged with the loop guard was written by dts's other
    // direction; its rows and DDL are dropped here (its commit still advances the position).
    let echoed = |server_id: u32| plan.loop_guard == Some(server_id);
    let wanted = |server_id: u32, db: &str, table: &str| !echoed(server_id) && filter.table(db, table);
    let mut reader =
        BinlogReader::open(&plan.source, &mut control, &pos, binlog::dump_server_id(1_000_000), "replication").await?;
    tracing::info!(position = %pos, "replication starts");

    let mut txn = Transaction::default();
    let mut target: Option<BinlogPosition> = None;
    let mut last_distance_check = std::time::Instant::now();
    let mut bytes_behind = 0u64;
    // A position the lanes made durable (and checkpointed): the job's progress.
    macro_rules! durable {
        ($step:expr) => {
            if let Some(Durable { position, timestamp, rows }) = $step {
                pos = position;
                if last_distance_check.elapsed() > Duration::from_secs(2) {
                    last_distance_check = std::time::Instant::now();
                    if let Ok(m) = binlog::master_position(&mut control).await {
                        bytes_behind =
                            if m.file == pos.file { m.offset.saturating_sub(pos.offset) } else { bytes_behind };
                    }
                }
                observer.applied(rows);
                observer.progress(Lag {
                    seconds: Some((now_secs() - i64::from(timestamp)).max(0)),
                    behind: Some(bytes_behind),
                    caught_up: false,
                });
            }
        };
    }
    loop {
        match observer.completion() {
            Completion::Immediately if txn.groups.is_empty() && !applier.mid_transaction() => {
                if let Some(d) = applier.barrier().await? {
                    observer.applied(d.rows);
                    pos = d.position;
                }
                return Ok(pos);
            }
            Completion::WaitForSync if target.is_none() => {
                let t = binlog::master_position(&mut control).await?;
                tracing::info!(target = %t, "completing: waiting for the destination to reach the source position");
                target = Some(t);
            }
            _ => {}
        }
        if let Some(t) = &target
            && txn.groups.is_empty()
            && !applier.busy()
            && binlog::position_at_or_after(&pos, t)
        {
            return Ok(pos);
        }
        if applier.due() {
            durable!(applier.commit().await?);
        }
        let wait = if applier.busy() { Duration::from_millis(10) } else { Duration::from_secs(1) };
        let event = match reader.next(wait, &|db, table| filter.table(db, table)).await? {
            None if applier.has_open_batch() && !applier.mid_transaction() => {
                durable!(applier.commit().await?);
                continue;
            }
            None if applier.in_flight() => {
                durable!(applier.settle().await?);
                continue;
            }
            None => {
                observer.progress(Lag { seconds: Some(0), behind: Some(0), caught_up: true });
                if let Some(t) = &target
                    && txn.groups.is_empty()
                    && !applier.busy()
                {
                    // The stream is idle and everything read is committed: when the source has
                    // not moved past the target, what remains before it are events that carry no
                    // transaction (format, GTID list, checkpoint events of a new file).
                    let now = binlog::master_position(&mut control).await?;
                    if now.file == t.file && now.offset == t.offset {
                        return Ok(pos);
                    }
                }
                continue;
            }
            Some(event) => event,
        };
        match event {
            BinlogEvent::Rotate { position } => pos = position,
            BinlogEvent::SkippedRows { .. } => {}
            BinlogEvent::Rows { database, table, fk_checks, server_id, timestamp, changes, .. } => {
                if !wanted(server_id, &database, &table) {
                    continue;
                }
                txn.timestamp = timestamp;
                txn.extend((database, table), fk_checks, changes);
                // A large source transaction goes to the destination in slices (still one
                // destination transaction, committed only after its XID): memory stays bounded.
                if txn.rows >= PARTIAL_ROWS {
                    durable!(applier.slice(std::mem::take(&mut txn)).await?);
                }
            }
            BinlogEvent::Commit { position, timestamp, .. } => {
                durable!(applier.add(std::mem::take(&mut txn), position, timestamp).await?);
            }
            BinlogEvent::Statement { schema, sql, session, position, server_id, .. } => {
                // A statement ends any transaction: everything dispatched commits first, then
                // the statement runs, then its position is checkpointed (a crash in between
                // replays it).
                let text = String::from_utf8_lossy(&sql);
                let decision =
                    if echoed(server_id) { Decision::Skip } else { filter.ddl(&schema, &text, session.sql_mode) };
                match decision {
                    Decision::Replay { without_schema } => {
                        tracing::info!(schema = %schema, "replaying DDL");
                        // A view, routine or trigger gets invoker rights (`definer`).
                        let program = if preserve_definer {
                            None
                        } else {
                            binlog_filter::program(&schema, &text, session.sql_mode)
                        };
                        let sql = match (&program, std::str::from_utf8(&sql)) {
                            (Some(p), Ok(text)) => definer::invoker_text(text, p.kind).into_bytes(),
                            (Some(p), Err(_)) => {
                                return Err(ConnectorError::new(
                                    ErrorClass::NeedsOperator,
                                    format!(
                                        "replication stopped at {position}: the statement defining `{}`.`{}` is not \
                                         UTF-8, so dts cannot give it invoker rights; create it on the destination \
                                         by hand",
                                        p.db, p.name
                                    ),
                                    text.into_owned(),
                                ));
                            }
                            (None, _) => sql,
                        };
                        // CREATE/DROP DATABASE runs without a default database (it may not exist).
                        let schema = if without_schema { String::new() } else { schema };
                        durable!(applier.ddl(&schema, &sql, &session).await?);
                        if let Some(alter) = program.as_ref().and_then(definer::invoker_alter) {
                            durable!(applier.ddl(&schema, alter.as_bytes(), &session).await?);
                        }
                    }
                    Decision::Skip => durable!(applier.barrier().await?),
                    Decision::Refuse(why) => {
                        if let Some(d) = applier.barrier().await? {
                            observer.applied(d.rows);
                        }
                        return Err(ConnectorError::new(
                            ErrorClass::NeedsOperator,
                            format!("replication stopped at {position}: {why}"),
                            text.into_owned(),
                        ));
                    }
                }
                pos = position;
                applier.checkpoint(&pos).await?;
            }
        }
    }
}
