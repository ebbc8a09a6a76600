//! Applying row changes from the binlog on the destination: how a binlog value becomes a SQL
//! literal, and how inserts, updates and deletes become idempotent statements.
//!
//! Idempotency: an insert or an update writes the full after-image with `REPLACE` (by primary
//! key), a delete removes by key; applying a change twice leaves the same row. Tables without a
//! primary key match on every column with `<=>` and `LIMIT 1` (a re-applied delete there may
//! remove one duplicate too many: such tables are reported by the precheck).

use dts_core::ConnectorError;
use mysql_async::Value;
use mysql_async::binlog::value::BinlogValue;

use crate::connection::Session;
use crate::definition::{qualified, quote_ident};
use crate::literal::push_quoted;

/// How a column's binlog value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Plain,
    /// Unsigned integer of this many bits (the binlog carries the raw bits).
    Unsigned(u32),
    /// TIMESTAMP: the binlog carries epoch seconds.
    Timestamp,
    /// SET: the binlog carries the member bitmap, little-endian.
    Set,
    /// YEAR: 0 arrives as 1900.
    Year,
}

#[derive(Debug, Clone)]
pub struct ApplyColumn {
    pub name: String,
    pub kind: ColumnKind,
    /// Generated columns are in the row image but never written.
    pub generated: bool,
}

/// A destination table as the applier needs it.
#[derive(Debug, Clone)]
pub struct ApplyLayout {
    pub database: String,
    pub table: String,
    pub columns: Vec<ApplyColumn>,
    /// Positions of the primary-key columns; empty without a primary key.
    pub key: Vec<usize>,
    /// `REPLACE INTO db.t (stored columns) VALUES `, built once per layout.
    pub replace_prefix: Vec<u8>,
}

impl ApplyLayout {
    pub async fn read(dst: &mut Session, database: &str, table: &str) -> Result<ApplyLayout, ConnectorError> {
        let cols: Vec<(String, String, String, String)> = dst
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, EXTRA FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                vec![database.to_string(), table.to_string()],
                "reading destination columns",
            )
            .await?;
        let key_cols: Vec<String> = dst
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
                vec![database.to_string(), table.to_string()],
                "reading the destination primary key",
            )
            .await?;
        let columns: Vec<ApplyColumn> = cols
            .into_iter()
            .map(|(name, data_type, column_type, extra)| {
                let dt = data_type.to_ascii_lowercase();
                let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
                let kind = match dt.as_str() {
                    "tinyint" if unsigned => ColumnKind::Unsigned(8),
                    "smallint" if unsigned => ColumnKind::Unsigned(16),
                    "mediumint" if unsigned => ColumnKind::Unsigned(24),
                    "int" if unsigned => ColumnKind::Unsigned(32),
                    "bigint" if unsigned => ColumnKind::Unsigned(64),
                    "timestamp" => ColumnKind::Timestamp,
                    "set" => ColumnKind::Set,
                    "year" => ColumnKind::Year,
                    _ => ColumnKind::Plain,
                };
                let extra = extra.to_ascii_uppercase();
                let generated = extra.contains("VIRTUAL GENERATED") || extra.contains("STORED GENERATED");
                ApplyColumn { name, kind, generated }
            })
            .collect();
        let key = key_cols.iter().filter_map(|k| columns.iter().position(|c| &c.name == k)).collect();
        let stored: Vec<String> = columns.iter().filter(|c| !c.generated).map(|c| quote_ident(&c.name)).collect();
        let replace_prefix =
            format!("REPLACE INTO {} ({}) VALUES ", qualified(database, table), stored.join(",")).into_bytes();
        Ok(ApplyLayout { database: database.into(), table: table.into(), columns, key, replace_prefix })
    }
}

/// Appends one binlog value as a literal for `col`.
pub fn push_binlog_value(out: &mut Vec<u8>, col: &ApplyColumn, value: Option<&BinlogValue<'_>>) {
    let v = match value {
        None | Some(BinlogValue::Value(Value::NULL)) => return out.extend_from_slice(b"NULL"),
        Some(BinlogValue::Value(v)) => v,
        Some(json @ BinlogValue::Jsonb(_)) => {
            // MySQL's binary JSON: its text form, as utf8mb4 (the JSON type refuses binary strings).
            return match Value::try_from(json.clone()) {
                Ok(Value::Bytes(text)) => {
                    out.extend_from_slice(b"CONVERT(");
                    push_quoted(out, &text);
                    out.extend_from_slice(b" USING utf8mb4)");
                }
                _ => out.extend_from_slice(b"NULL"),
            };
        }
        Some(BinlogValue::JsonDiff(_)) => return out.extend_from_slice(b"NULL"),
    };
    match (col.kind, v) {
        (ColumnKind::Unsigned(bits), Value::Int(i)) if *i < 0 => {
            let u = if bits == 64 { *i as u64 } else { (*i as u64) & ((1u64 << bits) - 1) };
            out.extend_from_slice(u.to_string().as_bytes());
        }
        (ColumnKind::Timestamp, Value::Bytes(b)) if b.as_slice() == b"0" => {
            out.extend_from_slice(b"'0000-00-00 00:00:00'");
        }
        (ColumnKind::Timestamp, Value::Bytes(b)) => {
            out.extend_from_slice(b"FROM_UNIXTIME(");
            push_quoted(out, b);
            out.push(b')');
        }
        (ColumnKind::Timestamp, Value::Int(i)) => {
            if *i == 0 {
                out.extend_from_slice(b"'0000-00-00 00:00:00'");
            } else {
                out.extend_from_slice(format!("FROM_UNIXTIME({i})").as_bytes());
            }
        }
        (ColumnKind::Set, Value::Bytes(b)) => {
            let mut n: u64 = 0;
            for (i, byte) in b.iter().enumerate().take(8) {
                n |= u64::from(*byte) << (8 * i);
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        (ColumnKind::Year, Value::Bytes(b)) if b.as_slice() == b"1900" => out.push(b'0'),
        (_, Value::Bytes(b)) => push_quoted(out, b),
        (_, Value::Int(i)) => out.extend_from_slice(i.to_string().as_bytes()),
        (_, Value::UInt(u)) => out.extend_from_slice(u.to_string().as_bytes()),
        (_, other) => out.extend_from_slice(other.as_sql(false).as_bytes()),
    }
}

/// One row change of a transaction.
pub enum RowChange {
    Insert(Vec<Option<BinlogValue<'static>>>),
    Update { before: Vec<Option<BinlogValue<'static>>>, after: Vec<Option<BinlogValue<'static>>> },
    Delete(Vec<Option<BinlogValue<'static>>>),
}

fn values_tuple(out: &mut Vec<u8>, layout: &ApplyLayout, row: &[Option<BinlogValue<'static>>]) {
    out.push(b'(');
    let mut first = true;
    for (i, col) in layout.columns.iter().enumerate().filter(|(_, c)| !c.generated) {
        if !first {
            out.push(b',');
        }
        first = false;
        push_binlog_value(out, col, row.get(i).and_then(Option::as_ref));
    }
    out.push(b')');
}

/// `WHERE` matching a row image: by key, or by every stored column without a key.
fn where_row(out: &mut Vec<u8>, layout: &ApplyLayout, row: &[Option<BinlogValue<'static>>]) {
    out.extend_from_slice(b" WHERE ");
    let cols: Vec<usize> = if layout.key.is_empty() {
        (0..layout.columns.len()).filter(|&i| !layout.columns[i].generated).collect()
    } else {
        layout.key.clone()
    };
    for (n, i) in cols.iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(b" AND ");
        }
        out.extend_from_slice(quote_ident(&layout.columns[*i].name).as_bytes());
        out.extend_from_slice(b" <=> ");
        push_binlog_value(out, &layout.columns[*i], row.get(*i).and_then(Option::as_ref));
    }
    if layout.key.is_empty() {
        out.extend_from_slice(b" LIMIT 1");
    }
}

fn key_changed(
    layout: &ApplyLayout,
    before: &[Option<BinlogValue<'static>>],
    after: &[Option<BinlogValue<'static>>],
) -> bool {
    layout.key.iter().any(|&i| before.get(i) != after.get(i))
}

/// The statements of a group of changes to one table, consecutive inserts merged.
pub fn statements(layout: &ApplyLayout, changes: &[RowChange], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, out: &mut Vec<Vec<u8>>| {
        if !pending.is_empty() {
            out.push(std::mem::take(pending));
        }
    };
    for change in changes {
        match change {
            RowChange::Insert(row) => {
                if pending.is_empty() {
                    pending = layout.replace_prefix.clone();
                } else {
                    pending.push(b',');
                }
                values_tuple(&mut pending, layout, row);
                if pending.len() >= max_bytes {
                    flush(&mut pending, &mut out);
                }
            }
            RowChange::Update { before, after } => {
                flush(&mut pending, &mut out);
                if layout.key.is_empty() {
                    let mut s = format!("UPDATE {} SET ", qualified(&layout.database, &layout.table)).into_bytes();
                    let mut first = true;
                    for (i, col) in layout.columns.iter().enumerate().filter(|(_, c)| !c.generated) {
                        if !first {
                            s.push(b',');
                        }
                        first = false;
                        s.extend_from_slice(quote_ident(&col.name).as_bytes());
                        s.push(b'=');
                        push_binlog_value(&mut s, col, after.get(i).and_then(Option::as_ref));
                    }
                    where_row(&mut s, layout, before);
                    out.push(s);
                } else {
                    if key_changed(layout, before, after) {
                        let mut d = format!("DELETE FROM {}", qualified(&layout.database, &layout.table)).into_bytes();
                        where_row(&mut d, layout, before);
                        out.push(d);
                    }
                    let mut s = layout.replace_prefix.clone();
                    values_tuple(&mut s, layout, after);
                    out.push(s);
                }
            }
            RowChange::Delete(row) => {
                flush(&mut pending, &mut out);
                let mut d = format!("DELETE FROM {}", qualified(&layout.database, &layout.table)).into_bytes();
                where_row(&mut d, layout, row);
                out.push(d);
            }
        }
    }
    flush(&mut pending, &mut out);
    out
}
