//! Two-way synchronization conflicts: a change arriving from the other server meets a
//! destination row that the destination's own application changed meanwhile.
//!
//! Detection: before a change is applied, the destination row is compared (by the server, with
//! `<=>` over the stored columns) with the change's before-image (update, delete) or checked
//! for absence (insert). A row equal to the after-image is a change applied already (a re-run
//! after a crash), not a conflict. FLOAT/DOUBLE values are left out of the comparison (their
//! binlog text form need not match the stored value digit for digit); keyless tables are not
//! checked (no row identity).
//!
//! Resolution (the later commit wins, see `dts_core::ConflictArbiter`): the destination row's
//! last local commit time comes from the other direction's reader, which reports every change
//! applications make on its source; the applier waits (up to `WAIT_FOR_LOCAL`) until that reader
//! has been idle -- read all its server logged -- after the conflict was found, so the report of
//! the conflicting local change is in.
//! Both directions compare the same two commit times with the same tie-break, so both servers
//! end with the same row.

use std::time::Duration;

use dts_core::{ConflictArbiter, ConflictPolicy, ConnectorError};
use mysql_async::Row;
use mysql_async::Value;
use mysql_async::binlog::value::BinlogValue;

use crate::apply::{ApplyLayout, push_binlog_value};
use crate::binlog::RowChange;
use crate::connection::{Session, text_column};
use crate::definition::{qualified, quote_ident};

/// How long an applier waits for the other direction's reader to report a local change.
const WAIT_FOR_LOCAL: Duration = Duration::from_secs(5);

type Image = [Option<BinlogValue<'static>>];

/// The table's object key (length-prefixed names, so dotted names never collide), `:` and the
/// key's literals: the same text for a row in both directions.
pub fn row_id(layout: &ApplyLayout, image: &Image) -> Option<String> {
    if layout.key.is_empty() {
        return None;
    }
    let mut out = format!("{}:", dts_core::selection::object_key(&[&layout.database, &layout.table])).into_bytes();
    for (n, &i) in layout.key.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        push_binlog_value(&mut out, &layout.columns[i], image.get(i).and_then(Option::as_ref));
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The rows a change touches (both keys of a key-changing update).
pub fn row_ids(layout: &ApplyLayout, change: &RowChange) -> Vec<String> {
    let images: Vec<&Image> = match change {
        RowChange::Insert(a) => vec![a],
        RowChange::Update { before, after } => vec![before, after],
        RowChange::Delete(b) => vec![b],
    };
    let mut ids: Vec<String> = images.into_iter().filter_map(|i| row_id(layout, i)).collect();
    ids.dedup();
    ids
}

/// `(c1 <=> v1 AND ...)` over the stored, non-floating columns of an image.
fn equals(layout: &ApplyLayout, image: &Image) -> Vec<u8> {
    let mut out = b"(TRUE".to_vec();
    for (i, col) in layout.columns.iter().enumerate().filter(|(_, c)| !c.generated) {
        let v = image.get(i).and_then(Option::as_ref);
        if matches!(v, Some(BinlogValue::Value(Value::Float(_) | Value::Double(_)))) {
            continue;
        }
        out.extend_from_slice(b" AND ");
        out.extend_from_slice(quote_ident(&col.name).as_bytes());
        out.extend_from_slice(b" <=> ");
        push_binlog_value(&mut out, col, v);
    }
    out.push(b')');
    out
}

fn key_where(layout: &ApplyLayout, image: &Image) -> Vec<u8> {
    let mut out = b" WHERE ".to_vec();
    for (n, &i) in layout.key.iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(b" AND ");
        }
        out.extend_from_slice(quote_ident(&layout.columns[i].name).as_bytes());
        out.extend_from_slice(b" = ");
        push_binlog_value(&mut out, &layout.columns[i], image.get(i).and_then(Option::as_ref));
    }
    out
}

/// Whether the destination row contradicts the change (the destination changed it meanwhile).
async fn contradicts(dst: &mut Session, layout: &ApplyLayout, change: &RowChange) -> Result<bool, ConnectorError> {
    let (probe, expected_before, after): (&Image, Option<&Image>, Option<&Image>) = match change {
        RowChange::Insert(a) => (a, None, Some(a)),
        RowChange::Update { before, after } => (before, Some(before), Some(after)),
        RowChange::Delete(b) => (b, Some(b), None),
    };
    let mut sql = b"SELECT ".to_vec();
    sql.extend_from_slice(&expected_before.map_or_else(|| b"FALSE".to_vec(), |b| equals(layout, b)));
    sql.extend_from_slice(b", ");
    sql.extend_from_slice(&after.map_or_else(|| b"FALSE".to_vec(), |a| equals(layout, a)));
    sql.extend_from_slice(format!(" FROM {}", qualified(&layout.database, &layout.table)).as_bytes());
    sql.extend_from_slice(&key_where(layout, probe));
    let rows: Vec<Row> = dst.rows(&String::from_utf8_lossy(&sql), "checking a row for a two-way conflict").await?;
    let flag = |r: &Row, i: usize| text_column(r, i).ok().flatten().as_deref() == Some("1");
    Ok(match (change, rows.first()) {
        // An insert meets no row, or its own (re-applied) row.
        (RowChange::Insert(_), None) => false,
        (RowChange::Insert(_), Some(r)) => !flag(r, 1),
        // A delete meets its before-image, or nothing (re-applied).
        (RowChange::Delete(_), None) => false,
        (RowChange::Delete(_), Some(r)) => !flag(r, 0),
        // An update meets its before-image or its after-image (re-applied).
        (RowChange::Update { .. }, None) => true,
        (RowChange::Update { .. }, Some(r)) => !flag(r, 0) && !flag(r, 1),
    })
}

/// Where a change comes from and goes to (`host:port`), when it was committed, and the rule.
pub struct Crossing<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub commit_ts: u32,
    pub policy: ConflictPolicy,
}

/// Whether the arriving change wins under the later-commit rule, given the destination row's
/// last local commit time (`None`: no application change was reported, so nothing is newer).
pub fn later_commit_wins(crossing: &Crossing<'_>, local: Option<u32>) -> bool {
    match local {
        None => true,
        Some(t) if t != crossing.commit_ts => crossing.commit_ts > t,
        Some(_) => crossing.from < crossing.to,
    }
}

/// Keeps the changes that win under the later-commit rule; counts every conflict.
pub async fn settle(
    dst: &mut Session,
    layout: &ApplyLayout,
    changes: Vec<RowChange>,
    crossing: &Crossing<'_>,
    arbiter: &dyn ConflictArbiter,
) -> Result<Vec<RowChange>, ConnectorError> {
    if layout.key.is_empty() {
        return Ok(changes);
    }
    let mut kept = Vec::with_capacity(changes.len());
    for change in changes {
        if !contradicts(dst, layout, &change).await? {
            kept.push(change);
            continue;
        }
        let ids = row_ids(layout, &change);
        let (wins, local) = match crossing.policy {
            ConflictPolicy::Overwrite => (true, None),
            ConflictPolicy::Ignore => (false, None),
            ConflictPolicy::TaskFailed => {
                return Err(ConnectorError::new(
                    dts_core::ErrorClass::NeedsOperator,
                    format!("two-way conflict on {} (conflictPolicy TaskFailed)", ids.join(", ")),
                    format!("a change committed at {} met a row changed on {}", crossing.commit_ts, crossing.to),
                ));
            }
            ConflictPolicy::LaterCommitWins => {
                // The local change happened before now; once the other direction's reader has read
                // everything its server logged after this moment, it has reported that change.
                let found = std::time::Instant::now();
                let deadline = tokio::time::Instant::now() + WAIT_FOR_LOCAL;
                while !arbiter.reader_idle_since(crossing.to, found) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let local = ids.iter().filter_map(|id| arbiter.local_commit_time(crossing.to, id)).max();
                (later_commit_wins(crossing, local), local)
            }
        };
        arbiter.conflict(wins);
        tracing::info!(row = ?ids, incoming = crossing.commit_ts, local = ?local, incoming_wins = wins, "two-way conflict");
        if wins {
            kept.push(change);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_later_commit_wins_and_a_tie_goes_the_same_way_from_both_sides() {
        let forward = |ts| Crossing { from: "a:1", to: "b:2", commit_ts: ts, policy: ConflictPolicy::default() };
        let reverse = |ts| Crossing { from: "b:2", to: "a:1", commit_ts: ts, policy: ConflictPolicy::default() };
        assert!(later_commit_wins(&forward(10), Some(9)));
        assert!(!later_commit_wins(&forward(9), Some(10)));
        assert!(later_commit_wins(&forward(9), None));
        // Same second: A's change wins in both directions (A's address sorts first).
        assert!(later_commit_wins(&forward(10), Some(10)));
        assert!(!later_commit_wins(&reverse(10), Some(10)));
    }
}
