//! Pinning one consistent snapshot in several reader sessions, and the binlog position it
//! corresponds to.
//!
//! Correctness argument: under `FLUSH TABLES WITH READ LOCK` no transaction can commit, so
//! every reader's `START TRANSACTION WITH CONSISTENT SNAPSHOT` sees the same committed state,
//! and the binlog position (`binlog::master_position`) taken under the same lock is the binlog position of exactly that
//! state: every change after it is in the binlog after that position, none before. The lock is
//! held only for N+2 round trips (measured and reported). Without the RELOAD privilege the
//! readers take their snapshots one after the other without the lock; the position is then the
//! first reader's (MariaDB's `binlog_snapshot_*`), and the load reports that the tables may
//! correspond to slightly different instants (harmless when replication later replays from
//! the earliest position with idempotent apply).

use std::time::Instant;

use dts_core::{BinlogPosition, ConnectorError};
use mysql_async::Row;

use crate::connection::{Session, text_column};

/// The pinned snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub position: Option<BinlogPosition>,
    pub lock_held_micros: u64,
    /// Whether all readers share one snapshot (false when the read lock was not available).
    pub shared: bool,
}

async fn first_row_text(s: &mut Session, sql: &str, doing: &str) -> Result<Vec<Option<String>>, ConnectorError> {
    let rows: Vec<Row> = s.rows(sql, doing).await?;
    Ok(match rows.first() {
        Some(r) => (0..r.len()).map(|i| text_column(r, i).ok().flatten()).collect(),
        None => Vec::new(),
    })
}

async fn gtid_at(control: &mut Session, file: &str, offset: u64) -> Option<String> {
    let sql = format!("SELECT BINLOG_GTID_POS('{}', {offset})", file.replace(['\'', '\\'], ""));
    first_row_text(control, &sql, "reading the GTID position").await.ok()?.into_iter().next().flatten()
}

async fn begin(reader: &mut Session) -> Result<(), ConnectorError> {
    reader
        .query_drop(
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT",
            "starting a consistent snapshot",
        )
        .await
}

/// Starts a consistent-snapshot transaction in every reader and returns its position.
pub async fn pin(control: &mut Session, readers: &mut [Session]) -> Result<Snapshot, ConnectorError> {
    control.query_drop("SET SESSION lock_wait_timeout = 30", "setting the lock wait timeout").await?;
    match control.query_drop_raw("FLUSH TABLES WITH READ LOCK").await {
        Ok(()) => {
            let locked = Instant::now();
            let mut result = Ok(());
            for r in readers.iter_mut() {
                if let Err(e) = begin(r).await {
                    result = Err(e);
                    break;
                }
            }
            let status = crate::binlog::master_position(control).await;
            let unlock = control.query_drop("UNLOCK TABLES", "releasing the read lock").await;
            let lock_held_micros = locked.elapsed().as_micros() as u64;
            result?;
            unlock?;
            // No binlog (log_bin OFF): the snapshot has no position.
            let position = match status {
                Ok(p) if !p.file.is_empty() => {
                    let gtid = gtid_at(control, &p.file, p.offset).await;
                    Some(BinlogPosition { gtid, ..p })
                }
                Ok(_) => None,
                Err(e) if e.class == dts_core::ErrorClass::NeedsOperator => None,
                Err(e) => return Err(e),
            };
            tracing::info!(lock_held_micros, position = ?position, "snapshot pinned under a global read lock");
            Ok(Snapshot { position, lock_held_micros, shared: true })
        }
        Err(e) => {
            tracing::warn!(error = %e, "no global read lock (RELOAD privilege?); readers take separate snapshots");
            for r in readers.iter_mut() {
                begin(r).await?;
            }
            let rows: Vec<Row> =
                readers[0].rows("SHOW STATUS LIKE 'binlog_snapshot_%'", "reading the snapshot position").await?;
            let value = |name: &str| {
                rows.iter()
                    .find(|r| text_column(r, 0).ok().flatten().as_deref() == Some(name))
                    .and_then(|r| text_column(r, 1).ok().flatten())
            };
            let position = match (value("Binlog_snapshot_file"), value("Binlog_snapshot_position")) {
                (Some(file), Some(pos)) if !file.is_empty() => pos.parse().ok().map(|offset| BinlogPosition {
                    file,
                    offset,
                    gtid: value("Binlog_snapshot_gtid").filter(|g| !g.is_empty()),
                }),
                _ => None,
            };
            Ok(Snapshot { position, lock_held_micros: 0, shared: readers.len() == 1 })
        }
    }
}
