//! Data comparison between a source and a destination table, pushed down to both servers: per
//! key-range chunk a row count and an order-independent digest of the rows (BIT_XOR of each
//! row's CRC32 over its column values and NULL flags, plus their SUM for keyless tables: one
//! cheap hash per row); only chunks whose digests differ are drilled down to per-row MD5 digests, to name the
//! keys missing on the destination, extra on it, or different (and which columns differ).
//! Little network, little memory.
//!
//! Live comparison (replication running, `settle_window`): the two servers are read at
//! different moments, so a row changed meanwhile may look different without being so. A key
//! that differs is read again on both sides after the window: equal now → it was in flight;
//! still different while its source row did not change → a real difference (replication had
//! the whole window to apply it); source row changed again → still in flux, read again, and
//! after the last round reported as unsettled, never as different.
//!
//! Memory: one chunk's row digests at a time, at most about `pending_keys` differing keys held
//! for settling (past that they are settled and counted before the scan goes on), and at most
//! `keep_keys` rows kept per kind; the counts are exact whatever the number of differences,
//! and `truncated` says when the lists hold fewer rows than the counts.

use std::collections::BTreeMap;

use dts_core::{CompareOptions, Comparison, ConnectionSpec, ConnectorError, DiffRow, ErrorClass, TableDiff};
use mysql_async::{Row, Value};

use crate::chunk::{Chunk, TableLayout};
use crate::connection::{Session, Side, connect, text_column};
use crate::definition::{qualified, quote_ident};
use crate::literal::LiteralKind;

/// A row's text for the chunk digests: the columns' values joined by 0x1F (FLOAT widened to
/// DOUBLE so that all its digits count), followed by a NULL flag per nullable column (CONCAT_WS
/// skips NULLs, so the flags tell NULL from '' and say which column was NULL).
fn row_text_expr(layout: &TableLayout) -> String {
    let values: Vec<String> = layout.columns.iter().map(value_expr).collect();
    let nulls: Vec<String> =
        layout.columns.iter().filter(|c| c.nullable).map(|c| format!("ISNULL({})", quote_ident(&c.name))).collect();
    if nulls.is_empty() {
        return format!("CONCAT_WS(0x1F, {})", values.join(", "));
    }
    format!("CONCAT_WS(0x1F, {}, CONCAT({}))", values.join(", "), nulls.join(", "))
}

/// A chunk's digest: COUNT, and the BIT_XOR of the rows' CRC32. A keyed table has no two equal
/// rows, so only a collision of the differences could cancel out (2^-32 per differing chunk);
/// a keyless one may hold duplicates, which cancel in a XOR: their SUM is added (it costs a
/// second CRC32 per row, so it is not paid for keyed tables).
fn chunk_digest_sql(layout: &TableLayout, keyed: bool, scan: &str) -> String {
    let crc = format!("CRC32({})", row_text_expr(layout));
    if keyed {
        format!("SELECT COUNT(*), IFNULL(BIT_XOR({crc}), 0){scan}")
    } else {
        format!("SELECT COUNT(*), CONCAT(IFNULL(BIT_XOR({crc}), 0), ':', IFNULL(SUM({crc}), 0)){scan}")
    }
}

fn value_expr(c: &crate::chunk::ColumnInfo) -> String {
    let col = quote_ident(&c.name);
    if c.kind == LiteralKind::Float { format!("{col} * 1e0") } else { col }
}

/// A column as the hex of its text form (`CAST .. AS BINARY`: HEX of a number would drop its
/// fraction), NULL as `N`, apart from ''.
fn column_hex_expr(c: &crate::chunk::ColumnInfo) -> String {
    format!("IFNULL(HEX(CAST({} AS BINARY)), 'N')", value_expr(c))
}

fn row_digest_expr(layout: &TableLayout) -> String {
    let cols: Vec<String> = layout.columns.iter().map(column_hex_expr).collect();
    format!("MD5(CONCAT_WS('|', {}))", cols.join(", "))
}

fn key_expr(key_cols: &[String]) -> String {
    let parts: Vec<String> =
        key_cols.iter().map(|k| format!("'{}=', IFNULL({}, 'NULL')", k.replace('\'', "''"), quote_ident(k))).collect();
    format!("CONCAT_WS(',', {})", parts.iter().map(|p| format!("CONCAT({p})")).collect::<Vec<_>>().join(", "))
}

/// How rows of one table are identified and selected.
struct RowIdentity {
    /// The key's text (`col=value,...`), or the row digest for keyless tables.
    key: String,
    /// Hex of each key column, comma separated (empty for keyless tables).
    key_hex: String,
    key_cols: Vec<String>,
    row_digest: String,
}

impl RowIdentity {
    fn new(layout: &TableLayout, key_cols: Vec<String>) -> Self {
        let row_digest = row_digest_expr(layout);
        if key_cols.is_empty() {
            return Self { key: row_digest.clone(), key_hex: "''".into(), key_cols, row_digest };
        }
        let hex: Vec<String> = key_cols.iter().map(|k| format!("HEX(CAST({} AS BINARY))", quote_ident(k))).collect();
        Self { key: key_expr(&key_cols), key_hex: format!("CONCAT_WS(',', {})", hex.join(", ")), key_cols, row_digest }
    }

    /// A WHERE condition selecting the row (`key_hex` from the drill-down).
    fn predicate(&self, key: &str, key_hex: &str) -> String {
        if self.key_cols.is_empty() {
            return format!("{} = '{}'", self.row_digest, key.replace('\'', "''"));
        }
        let cols: Vec<String> = self.key_cols.iter().map(|k| quote_ident(k)).collect();
        let vals: Vec<String> = key_hex.split(',').map(|h| format!("X'{h}'")).collect();
        format!("({}) = ({})", cols.join(", "), vals.join(", "))
    }
}

async fn chunk_digest(s: &mut Session, sql: &str) -> Result<(u64, String), ConnectorError> {
    let rows: Vec<Row> = s.rows(sql, "computing a chunk digest").await?;
    let r = rows.first();
    let count = r.and_then(|r| text_column(r, 0).ok().flatten()).and_then(|c| c.parse().ok()).unwrap_or(0);
    let digest = r.and_then(|r| text_column(r, 1).ok().flatten()).unwrap_or_default();
    Ok((count, digest))
}

/// key → (sorted row digests, key hex) of one chunk.
type Digests = BTreeMap<String, (Vec<String>, String)>;

async fn row_digests(s: &mut Session, sql: &str) -> Result<Digests, ConnectorError> {
    let rows: Vec<Row> = s.rows(sql, "reading row digests").await?;
    let mut out: Digests = BTreeMap::new();
    for r in rows {
        let key = text_column(&r, 0).ok().flatten().unwrap_or_default();
        let digest = text_column(&r, 1).ok().flatten().unwrap_or_default();
        let hex = text_column(&r, 2).ok().flatten().unwrap_or_default();
        let e = out.entry(key).or_insert_with(|| (Vec::new(), hex));
        e.0.push(digest);
    }
    for v in out.values_mut() {
        v.0.sort();
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missing,
    Extra,
    Different,
}

/// A key that differs, with the source digests it was seen with.
struct Pending {
    kind: Kind,
    key_hex: String,
    source: Option<Vec<String>>,
    /// The source row changed since the previous look.
    moving: bool,
}

/// The differing keys of one chunk's drill-down.
fn classify(keyed: bool, s_rows: &Digests, d_rows: &Digests) -> BTreeMap<String, Pending> {
    let mut out = BTreeMap::new();
    for (k, (sv, hex)) in s_rows {
        let kind = match d_rows.get(k) {
            None => Kind::Missing,
            Some((dv, _)) if dv == sv => continue,
            // Without a key a row is its digest: the surplus is on one side.
            Some((dv, _)) if !keyed && sv.len() > dv.len() => Kind::Missing,
            Some(_) if !keyed => Kind::Extra,
            Some(_) => Kind::Different,
        };
        out.insert(k.clone(), Pending { kind, key_hex: hex.clone(), source: Some(sv.clone()), moving: false });
    }
    for (k, (_, hex)) in d_rows.iter().filter(|(k, _)| !s_rows.contains_key(*k)) {
        out.insert(k.clone(), Pending { kind: Kind::Extra, key_hex: hex.clone(), source: None, moving: false });
    }
    out
}

/// Whether chunk `index` of `db.table` is in a `percent` sample (deterministic, spread out).
fn sampled(database: &str, table: &str, index: usize, percent: u8) -> bool {
    if percent >= 100 {
        return true;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{database}.{table}#{index}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h % 100 < u64::from(percent)
}

async fn sessions(
    source: &ConnectionSpec,
    destination: &ConnectionSpec,
    timeout: std::time::Duration,
) -> Result<(Session, Session), ConnectorError> {
    let (mut src, mut dst) =
        (connect(source, Side::Source, timeout).await?, connect(destination, Side::Destination, timeout).await?);
    for s in [&mut src, &mut dst] {
        s.query_drop("SET NAMES binary; SET SESSION time_zone = '+00:00'", "preparing a comparison session").await?;
    }
    Ok((src, dst))
}

async fn layout_and_key(
    src: &mut Session,
    database: &str,
    table: &str,
) -> Result<(TableLayout, Vec<String>), ConnectorError> {
    let layout = TableLayout::read(src, database, table).await?;
    if layout.columns.is_empty() {
        return Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!("table {} does not exist on the source", qualified(database, table)),
            "",
        ));
    }
    let key_cols: Vec<String> = src
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            vec![database.to_string(), table.to_string()],
            "reading the primary key",
        )
        .await?;
    Ok((layout, key_cols))
}

/// Compares one table as `opts` says; `target` is its `(database, table)` on the destination.
pub async fn compare_table(
    source: &ConnectionSpec,
    destination: &ConnectionSpec,
    (database, table): (&str, &str),
    target: &(String, String),
    opts: &CompareOptions,
    timeout: std::time::Duration,
) -> Result<TableDiff, ConnectorError> {
    let (mut src, mut dst) = sessions(source, destination, timeout).await?;
    let (mut layout, key_cols) = layout_and_key(&mut src, database, table).await?;
    layout.target = target.clone();
    if opts.count_only {
        let sql = format!("SELECT COUNT(*), '' FROM {}", qualified(database, table));
        let dsql = format!("SELECT COUNT(*), '' FROM {}", qualified(&target.0, &target.1));
        let ((sc, _), (dc, _)) = tokio::try_join!(chunk_digest(&mut src, &sql), chunk_digest(&mut dst, &dsql))?;
        let mut diff = TableDiff::new(database, table, Comparison::Count);
        (diff.source_rows, diff.destination_rows, diff.chunks, diff.chunks_compared) = (sc, dc, 1, 1);
        return Ok(diff);
    }
    let comparison =
        if opts.sample_percent >= 100 { Comparison::Rows } else { Comparison::Sample { percent: opts.sample_percent } };
    let mut diff = TableDiff::new(database, table, comparison);
    let id = RowIdentity::new(&layout, key_cols);
    let keyed = !id.key_cols.is_empty();
    let all: Vec<Chunk> = layout.plan(&mut src, opts.chunk_rows).await?;
    diff.chunks = all.len() as u64;
    let mut chunks: Vec<&Chunk> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| sampled(database, table, *i, opts.sample_percent))
        .map(|(_, c)| c)
        .collect();
    if chunks.is_empty() && !all.is_empty() {
        chunks.push(&all[all.len() / 2]);
    }
    let drill = |scan: &str| format!("SELECT {}, {}, {}{scan}", id.key, id.row_digest, id.key_hex);
    // Differing keys per chunk (by chunk index in `chunks`), at most about `pending_keys` at a
    // time (plus one chunk's): past that they are settled and counted before the scan goes on.
    let mut pending: Vec<(usize, BTreeMap<String, Pending>)> = Vec::new();
    let mut held = 0usize;
    let mut different = Vec::new();
    let mut sides = (&mut src, &mut dst);
    for (i, chunk) in chunks.iter().enumerate() {
        let (scan, dscan) = (chunk.scan_clause(), chunk.scan_clause_at(target));
        let (digest_sql, ddigest_sql) =
            (chunk_digest_sql(&layout, keyed, &scan), chunk_digest_sql(&layout, keyed, &dscan));
        let ((sc, sd), (dc, dd)) =
            tokio::try_join!(chunk_digest(sides.0, &digest_sql), chunk_digest(sides.1, &ddigest_sql))?;
        diff.chunks_compared += 1;
        diff.source_rows += sc;
        diff.destination_rows += dc;
        if sc == dc && sd == dd {
            continue;
        }
        let (sql, dsql) = (drill(&scan), drill(&dscan));
        let (s_rows, d_rows) = tokio::try_join!(row_digests(sides.0, &sql), row_digests(sides.1, &dsql))?;
        let keys = classify(keyed, &s_rows, &d_rows);
        if !keys.is_empty() {
            diff.chunks_differing += 1;
            held += keys.len();
            pending.push((i, keys));
        }
        if held >= opts.pending_keys.max(1) {
            settle(&mut sides, &chunks, target, &drill, &mut pending, opts, keyed).await?;
            fold(&mut diff, &mut different, std::mem::take(&mut pending), &id, opts);
            held = 0;
        }
    }
    settle(&mut sides, &chunks, target, &drill, &mut pending, opts, keyed).await?;
    fold(&mut diff, &mut different, pending, &id, opts);
    if keyed {
        differing_columns(&mut src, &mut dst, &layout, &mut different).await?;
    }
    diff.different = different;
    src.close().await;
    dst.close().await;
    Ok(diff)
}

/// Live comparison: reads the pending keys again after the settle window, as long as some
/// source row keeps changing (at most `settle_rounds` times); keys equal now are dropped.
async fn settle(
    (src, dst): &mut (&mut Session, &mut Session),
    chunks: &[&Chunk],
    target: &(String, String),
    drill: &impl Fn(&str) -> String,
    pending: &mut [(usize, BTreeMap<String, Pending>)],
    opts: &CompareOptions,
    keyed: bool,
) -> Result<(), ConnectorError> {
    let Some(window) = opts.settle_window else { return Ok(()) };
    for _ in 0..opts.settle_rounds {
        if pending.iter().all(|(_, keys)| keys.is_empty()) {
            break;
        }
        tokio::time::sleep(window).await;
        let mut still = false;
        for (i, keys) in pending.iter_mut().filter(|(_, k)| !k.is_empty()) {
            let (sql, dsql) = (drill(&chunks[*i].scan_clause()), drill(&chunks[*i].scan_clause_at(target)));
            let (s_rows, d_rows) = tokio::try_join!(row_digests(src, &sql), row_digests(dst, &dsql))?;
            let now = classify(keyed, &s_rows, &d_rows);
            keys.retain(|k, _| now.contains_key(k));
            for (k, p) in keys.iter_mut() {
                let fresh = &now[k];
                let moving = fresh.source != p.source;
                // The source row changed again: still in flux, look once more.
                still |= moving;
                *p = Pending { kind: fresh.kind, key_hex: fresh.key_hex.clone(), source: fresh.source.clone(), moving };
            }
        }
        if !still {
            break;
        }
    }
    Ok(())
}

/// Counts settled keys into the diff (exactly), keeping at most `keep_keys` rows per kind.
fn fold(
    diff: &mut TableDiff,
    different: &mut Vec<DiffRow>,
    pending: Vec<(usize, BTreeMap<String, Pending>)>,
    id: &RowIdentity,
    opts: &CompareOptions,
) {
    for (_, keys) in pending {
        for (k, p) in keys {
            if p.moving {
                diff.unsettled_count += 1;
                if diff.unsettled.len() < opts.keep_keys {
                    diff.unsettled.push(k);
                } else {
                    diff.truncated = true;
                }
                continue;
            }
            let (count, list) = match p.kind {
                Kind::Missing => (&mut diff.missing_count, &mut diff.missing),
                Kind::Extra => (&mut diff.extra_count, &mut diff.extra),
                Kind::Different => (&mut diff.different_count, &mut *different),
            };
            *count += 1;
            if list.len() < opts.keep_keys {
                list.push(DiffRow { predicate: id.predicate(&k, &p.key_hex), key: k, columns: Vec::new() });
            } else {
                diff.truncated = true;
            }
        }
    }
}

/// Fills `columns` of each different row: the columns whose values differ.
async fn differing_columns(
    src: &mut Session,
    dst: &mut Session,
    layout: &TableLayout,
    rows: &mut [DiffRow],
) -> Result<(), ConnectorError> {
    let cols: Vec<String> = layout.columns.iter().map(column_hex_expr).collect();
    let name = qualified(&layout.database, &layout.table);
    let dname = qualified(&layout.target.0, &layout.target.1);
    for row in rows.iter_mut() {
        let sql = format!("SELECT {} FROM {name} WHERE {}", cols.join(", "), row.predicate);
        let dsql = format!("SELECT {} FROM {dname} WHERE {}", cols.join(", "), row.predicate);
        let (a, b): (Vec<Row>, Vec<Row>) =
            tokio::try_join!(src.rows(&sql, "reading a differing row"), dst.rows(&dsql, "reading a differing row"))?;
        let (Some(a), Some(b)) = (a.first(), b.first()) else { continue };
        row.columns = layout
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| text_column(a, *i).ok().flatten() != text_column(b, *i).ok().flatten())
            .map(|(_, c)| c.name.clone())
            .collect();
    }
    Ok(())
}

/// `REPLACE` for the missing and different rows (as the source has them now), `DELETE` for
/// the extra ones; at most `limit` statements.
pub async fn repair_sql(
    source: &ConnectionSpec,
    diff: &TableDiff,
    target: &(String, String),
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<String>, ConnectorError> {
    let mut src = connect(source, Side::Source, timeout).await?;
    src.query_drop("SET NAMES binary; SET SESSION time_zone = '+00:00'", "preparing a repair session").await?;
    let (layout, _) = layout_and_key(&mut src, &diff.database, &diff.table).await?;
    let name = qualified(&diff.database, &diff.table);
    let dname = qualified(&target.0, &target.1);
    let cols: Vec<String> = layout.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let prefix = format!("REPLACE INTO {dname} ({}) VALUES (", cols.join(", "));
    let mut out = Vec::new();
    for row in diff.missing.iter().chain(diff.different.iter()) {
        if out.len() >= limit {
            break;
        }
        // FLOAT read widened to DOUBLE: its short text form would not round-trip.
        let exprs: Vec<String> = layout.columns.iter().map(value_expr).collect();
        let sql = format!("SELECT {} FROM {name} WHERE {} LIMIT 1", exprs.join(", "), row.predicate);
        let rows: Vec<Row> = src.rows(&sql, "reading a row to repair").await?;
        let Some(r) = rows.into_iter().next() else { continue };
        // Every value as a hex literal: the script is plain ASCII whatever the bytes, and the
        // server converts a binary string to the column's type and character set.
        let mut stmt = prefix.clone();
        for i in 0..layout.columns.len() {
            if i > 0 {
                stmt.push_str(", ");
            }
            match r.as_ref(i) {
                Some(Value::Bytes(b)) => stmt.push_str(&format!("X'{}'", hex::encode_upper(b))),
                Some(Value::NULL) | None => stmt.push_str("NULL"),
                Some(other) => stmt.push_str(&other.as_sql(true)),
            }
        }
        stmt.push_str(");");
        out.push(stmt);
    }
    for row in &diff.extra {
        if out.len() >= limit {
            break;
        }
        out.push(format!("DELETE FROM {dname} WHERE {} LIMIT 1;", row.predicate));
    }
    src.close().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_takes_about_its_percentage_of_chunks_and_always_the_same_ones() {
        let picked = (0..1000).filter(|i| sampled("db", "t", *i, 10)).count();
        assert!((70..=130).contains(&picked), "{picked}");
        assert_eq!(sampled("db", "t", 7, 10), sampled("db", "t", 7, 10));
        assert!((0..50).all(|i| sampled("db", "t", i, 100)));
    }
}
