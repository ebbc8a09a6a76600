//! Data comparison between a source and a destination table, pushed down to both servers: per
//! key-range chunk a row count and an order-independent digest of the rows (BIT_XOR and SUM of
//! each row's CRC32 over its column values and NULL flags: one cheap hash per row, 64 bits per
//! chunk); only chunks whose digests differ are drilled down to per-row MD5 digests, to name the
//! keys missing on the destination, extra on it, or different. Little network, little memory.

use std::collections::BTreeMap;

use dts_core::{ConnectionSpec, ConnectorError, ErrorClass};
use mysql_async::Row;

use crate::chunk::{Chunk, TableLayout};
use crate::connection::{Session, Side, connect, text_column};
use crate::definition::{qualified, quote_ident};
use crate::literal::LiteralKind;

/// The differences found in one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDiff {
    pub database: String,
    pub table: String,
    pub source_rows: u64,
    pub destination_rows: u64,
    pub chunks: u64,
    pub chunks_differing: u64,
    /// Keys (as `col=value,...`) present on the source only.
    pub missing: Vec<String>,
    /// Keys present on the destination only.
    pub extra: Vec<String>,
    /// Keys whose rows differ.
    pub different: Vec<String>,
}

impl TableDiff {
    pub fn consistent(&self) -> bool {
        self.chunks_differing == 0 && self.source_rows == self.destination_rows
    }
}

/// A row's text for the chunk digests: the columns' values joined by 0x1F (FLOAT widened to
/// DOUBLE so that all its digits count), followed by one NULL flag per column (NULL vs '').
fn row_text_expr(layout: &TableLayout) -> String {
    let value = |c: &crate::chunk::ColumnInfo| {
        let col = quote_ident(&c.name);
        if c.kind == LiteralKind::Float { format!("{col} * 1e0") } else { col }
    };
    let values: Vec<String> = layout.columns.iter().map(value).collect();
    let nulls: Vec<String> = layout.columns.iter().map(|c| format!("ISNULL({})", quote_ident(&c.name))).collect();
    format!("CONCAT_WS(0x1F, {}, CONCAT({}))", values.join(", "), nulls.join(", "))
}

/// Each column as the hex of its text form (`CAST .. AS BINARY`: HEX of a number would drop its
/// fraction; FLOAT widened to DOUBLE so that all its digits count), NULL as `N`, apart from ''.
fn row_digest_expr(layout: &TableLayout) -> String {
    let cols: Vec<String> = layout
        .columns
        .iter()
        .map(|c| {
            let col = quote_ident(&c.name);
            let value = if c.kind == LiteralKind::Float { format!("{col} * 1e0") } else { col };
            format!("IFNULL(HEX(CAST({value} AS BINARY)), 'N')")
        })
        .collect();
    format!("MD5(CONCAT_WS('|', {}))", cols.join(", "))
}

fn key_expr(key_cols: &[String]) -> String {
    if key_cols.is_empty() {
        return "''".into();
    }
    let parts: Vec<String> =
        key_cols.iter().map(|k| format!("'{}=', IFNULL({}, 'NULL')", k.replace('\'', "''"), quote_ident(k))).collect();
    format!("CONCAT_WS(',', {})", parts.iter().map(|p| format!("CONCAT({p})")).collect::<Vec<_>>().join(", "))
}

async fn chunk_digest(s: &mut Session, sql: &str) -> Result<(u64, String), ConnectorError> {
    let rows: Vec<Row> = s.rows(sql, "computing a chunk digest").await?;
    let r = rows.first();
    let count = r.and_then(|r| text_column(r, 0).ok().flatten()).and_then(|c| c.parse().ok()).unwrap_or(0);
    let digest = r.and_then(|r| text_column(r, 1).ok().flatten()).unwrap_or_default();
    Ok((count, digest))
}

async fn row_digests(s: &mut Session, sql: &str) -> Result<BTreeMap<String, Vec<String>>, ConnectorError> {
    let rows: Vec<Row> = s.rows(sql, "reading row digests").await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        let key = text_column(&r, 0).ok().flatten().unwrap_or_default();
        let digest = text_column(&r, 1).ok().flatten().unwrap_or_default();
        out.entry(key).or_default().push(digest);
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

/// Compares one table. `key_columns`: the primary key (empty: every column identifies a row).
pub async fn compare_table(
    source: &ConnectionSpec,
    destination: &ConnectionSpec,
    database: &str,
    table: &str,
    chunk_rows: u64,
    timeout: std::time::Duration,
) -> Result<TableDiff, ConnectorError> {
    let (mut src, mut dst) =
        (connect(source, Side::Source, timeout).await?, connect(destination, Side::Destination, timeout).await?);
    for s in [&mut src, &mut dst] {
        s.query_drop("SET NAMES binary; SET SESSION time_zone = '+00:00'", "preparing a comparison session").await?;
    }
    let layout = TableLayout::read(&mut src, database, table).await?;
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
    let chunks: Vec<Chunk> = layout.plan(&mut src, chunk_rows).await?;
    let row_digest = row_digest_expr(&layout);
    let row_crc = format!("CRC32({})", row_text_expr(&layout));
    let key = if key_cols.is_empty() { row_digest.clone() } else { key_expr(&key_cols) };
    let mut diff =
        TableDiff { database: database.into(), table: table.into(), chunks: chunks.len() as u64, ..Default::default() };
    for chunk in &chunks {
        let scan = chunk.scan_clause();
        let digest_sql =
            format!("SELECT COUNT(*), CONCAT(IFNULL(BIT_XOR({row_crc}), 0), ':', IFNULL(SUM({row_crc}), 0)){scan}");
        let ((sc, sd), (dc, dd)) =
            tokio::try_join!(chunk_digest(&mut src, &digest_sql), chunk_digest(&mut dst, &digest_sql))?;
        diff.source_rows += sc;
        diff.destination_rows += dc;
        if sc == dc && sd == dd {
            continue;
        }
        diff.chunks_differing += 1;
        let rows_sql = format!("SELECT {key}, {row_digest}{scan}");
        let (s_rows, d_rows) = tokio::try_join!(row_digests(&mut src, &rows_sql), row_digests(&mut dst, &rows_sql))?;
        for (k, sv) in &s_rows {
            match d_rows.get(k) {
                None => diff.missing.push(k.clone()),
                Some(dv) if dv != sv => {
                    if key_cols.is_empty() {
                        // Without a key a row is its digest: count the surplus on either side.
                        if sv.len() > dv.len() { diff.missing.push(k.clone()) } else { diff.extra.push(k.clone()) }
                    } else {
                        diff.different.push(k.clone())
                    }
                }
                Some(_) => {}
            }
        }
        diff.extra.extend(d_rows.keys().filter(|k| !s_rows.contains_key(*k)).cloned());
    }
    src.close().await;
    dst.close().await;
    Ok(diff)
}
