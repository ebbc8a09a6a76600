//! Secondary indexes built after the data: plain (non-unique, non-fulltext) secondary keys of
//! a table are dropped on the destination before its rows are loaded and added back, all in
//! one `ALTER TABLE`, once every chunk is copied; a sorted bulk build is much cheaper than
//! maintaining the index row by row.
//!
//! Crash safety: the exact key definitions (taken from the destination's own `SHOW CREATE
//! TABLE`) are checkpointed as `pending` before the drop, and marked `restored` only after the
//! `ALTER TABLE ... ADD KEY` committed; a resumed load restores whatever is still pending and
//! skips keys that already exist. A pending record is never overwritten by a later, smaller
//! one (the keys are merged), and each table has its own record: the key is the table's
//! length-prefixed object key (`full_load/deferred/1:a|3:b.c`), so `a.b`+`c` and `a`+`b.c`
//! never share one. Records of earlier releases (`full_load/deferred/db.table`) are read too:
//! each carries its table's names, which is what a restore goes by. The job's release
//! (`release_all`) adds back every pending key before the checkpoints go; only a table that
//! no longer exists on the destination is skipped. Unique keys stay (they enforce data rules), so do keys a
//! foreign key needs (the drop fails and the table keeps its keys).

use dts_core::{Checkpoints, ConnectorError};
use mysql_async::Row;
use serde::{Deserialize, Serialize};

use crate::connection::{Session, server_code, text_column};
use crate::definition::{qualified, quote_ident};

pub const DEFERRED_PREFIX: &str = "full_load/deferred/";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Deferred {
    database: String,
    table: String,
    /// `(name, definition)`, definition as in SHOW CREATE TABLE: ``KEY `k_1` (`k`)``.
    keys: Vec<(String, String)>,
    restored: bool,
}

fn cp_error(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(dts_core::ErrorClass::Fatal, "cannot read or write the job's checkpoints", e.to_string())
}

/// Plain secondary keys of a `SHOW CREATE TABLE` text.
fn plain_keys(create: &str) -> Vec<(String, String)> {
    create
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("KEY `"))
        .filter_map(|l| {
            let def = l.trim_end_matches(',').to_string();
            let name = def.strip_prefix("KEY `")?.split('`').next()?.to_string();
            Some((name, def))
        })
        .collect()
}

/// Drops the plain secondary keys of `db.table` on the destination, checkpointing them first.
pub async fn defer(
    dest: &mut Session,
    checkpoints: &dyn Checkpoints,
    database: &str,
    table: &str,
) -> Result<(), ConnectorError> {
    let rows: Vec<Row> = match dest.rows_raw(&format!("SHOW CREATE TABLE {}", qualified(database, table))).await {
        Ok(rows) => rows,
        Err(e) if matches!(server_code(&e), Some(1146 | 1049)) => {
            return Err(ConnectorError::new(
                dts_core::ErrorClass::NeedsOperator,
                format!(
                    "table {} does not exist on the destination (migrate the structure first)",
                    qualified(database, table)
                ),
                e.to_string(),
            ));
        }
        Err(e) => return Err(dest.error(&e, "reading a destination table")),
    };
    let create = rows.first().and_then(|r| text_column(r, 1).ok().flatten()).unwrap_or_default();
    let keys = plain_keys(&create);
    if keys.is_empty() {
        return Ok(());
    }
    let key = record_key(database, table);
    let mut record = Deferred { database: database.into(), table: table.into(), keys, restored: false };
    // Keys a pending record holds are already dropped (absent from SHOW CREATE TABLE): they stay.
    if let Some(earlier) = find(checkpoints, database, table).await?.filter(|(_, r)| !r.restored) {
        for k in earlier.1.keys {
            if !record.keys.iter().any(|(n, _)| *n == k.0) {
                record.keys.push(k);
            }
        }
    }
    checkpoints.put(&key, &serde_json::to_string(&record).map_err(cp_error)?).await?;
    let drops = record.keys.iter().map(|(n, _)| format!("DROP KEY {}", quote_ident(n))).collect::<Vec<_>>().join(", ");
    if let Err(e) = dest.query_drop_raw(&format!("ALTER TABLE {} {drops}", qualified(database, table))).await {
        tracing::info!(database, table, error = %e, "secondary keys stay during the load");
        let kept = Deferred { restored: true, ..record };
        checkpoints.put(&key, &serde_json::to_string(&kept).map_err(cp_error)?).await?;
    }
    Ok(())
}

/// The checkpoint key of a destination table's deferred keys.
fn record_key(database: &str, table: &str) -> String {
    format!("{DEFERRED_PREFIX}{}", dts_core::selection::object_key(&[database, table]))
}

/// The record of a destination table: under its key, or under the key an earlier release gave
/// it (`db.table`, which two tables could share: the record's own names decide).
async fn find(
    checkpoints: &dyn Checkpoints,
    database: &str,
    table: &str,
) -> Result<Option<(String, Deferred)>, ConnectorError> {
    for key in [record_key(database, table), format!("{DEFERRED_PREFIX}{database}.{table}")] {
        if let Some(value) = checkpoints.get(&key).await? {
            let record: Deferred = serde_json::from_str(&value).map_err(cp_error)?;
            if record.database == database && record.table == table {
                return Ok(Some((key, record)));
            }
        }
    }
    Ok(None)
}

/// Adds back every pending deferred key (those already present are skipped).
pub async fn restore_all(dest: &mut Session, checkpoints: &dyn Checkpoints) -> Result<(), ConnectorError> {
    for (key, value) in checkpoints.scan(DEFERRED_PREFIX).await? {
        restore_record(dest, checkpoints, &key, &value).await?;
    }
    Ok(())
}

/// A job is released (deleted, reset, ended): every key it deferred is added back before its
/// checkpoints (the only record of those keys) go. A table that no longer exists on the
/// destination has nothing to restore.
pub async fn release_all(dest: &mut Session, checkpoints: &dyn Checkpoints) -> Result<(), ConnectorError> {
    for (key, value) in checkpoints.scan(DEFERRED_PREFIX).await? {
        let record: Deferred = serde_json::from_str(&value).map_err(cp_error)?;
        if record.restored {
            continue;
        }
        let exists: Vec<String> = dest
            .exec(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                vec![record.database.clone(), record.table.clone()],
                "looking for a table with deferred keys",
            )
            .await?;
        if exists.is_empty() {
            tracing::info!(key, "a table with deferred keys is gone from the destination; nothing to restore");
            continue;
        }
        restore_record(dest, checkpoints, &key, &value).await?;
    }
    Ok(())
}

/// Adds back the pending deferred keys of one destination table, as soon as its last chunk is
/// copied (the other pipelines go on loading meanwhile).
pub async fn restore(
    dest: &mut Session,
    checkpoints: &dyn Checkpoints,
    database: &str,
    table: &str,
) -> Result<(), ConnectorError> {
    match find(checkpoints, database, table).await? {
        Some((key, record)) => {
            restore_record(dest, checkpoints, &key, &serde_json::to_string(&record).map_err(cp_error)?).await
        }
        None => Ok(()),
    }
}

async fn restore_record(
    dest: &mut Session,
    checkpoints: &dyn Checkpoints,
    key: &str,
    value: &str,
) -> Result<(), ConnectorError> {
    let mut record: Deferred = serde_json::from_str(value).map_err(cp_error)?;
    if record.restored {
        return Ok(());
    }
    let present: Vec<String> = dest
        .exec(
            "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            vec![record.database.clone(), record.table.clone()],
            "listing indexes",
        )
        .await?;
    let adds: Vec<String> =
        record.keys.iter().filter(|(n, _)| !present.contains(n)).map(|(_, d)| format!("ADD {d}")).collect();
    if !adds.is_empty() {
        let started = std::time::Instant::now();
        dest.query_drop(
            &format!("ALTER TABLE {} {}", qualified(&record.database, &record.table), adds.join(", ")),
            &format!("building the secondary keys of `{}`.`{}`", record.database, record.table),
        )
        .await?;
        tracing::info!(table = %record.table, keys = adds.len(), millis = started.elapsed().as_millis() as u64, "secondary keys built");
    }
    record.restored = true;
    checkpoints.put(key, &serde_json::to_string(&record).map_err(cp_error)?).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_secondary_keys_are_deferred() {
        let create = "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `k` int,\n  `c` text,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`c`(10)),\n  KEY `k_1` (`k`),\n  FULLTEXT KEY `f` (`c`),\n  KEY `k_2` (`k`,`c`(5)) COMMENT 'x'\n) ENGINE=InnoDB";
        assert_eq!(
            plain_keys(create),
            vec![
                ("k_1".to_string(), "KEY `k_1` (`k`)".to_string()),
                ("k_2".to_string(), "KEY `k_2` (`k`,`c`(5)) COMMENT 'x'".to_string())
            ]
        );
    }
}
