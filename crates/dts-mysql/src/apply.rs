//! Applying row changes from the binlog on the destination: how a binlog value becomes a SQL
//! literal, and how inserts, updates and deletes become idempotent statements.
//!
//! Idempotency: an insert or an update writes the full after-image (an upsert by primary key,
//! see `ApplyLayout::upsert_prefix`), a delete removes by key; applying a change twice leaves the same row. Tables without a
//! primary key match on every column with `<=>` and `LIMIT 1` (a re-applied delete there may
//! remove one duplicate too many: such tables are reported by the precheck).
//!
//! Cascading foreign keys: InnoDB does not log the child rows an `ON DELETE/UPDATE CASCADE` or
//! `SET NULL` changes, only the parent's change. The applier writes with foreign key checks off,
//! so deletes and updates of a parent table with such children are written by
//! [`cascading_statements`] as plain `DELETE`/`UPDATE` with checks on for that one statement:
//! the destination repeats the cascade as the source did (unless the source session itself had
//! checks off, which the row event's flags say).

use dts_core::ConnectorError;
use mysql_async::Value;
use mysql_async::binlog::value::BinlogValue;

use crate::binlog::RowChange;
use crate::connection::Session;
use crate::definition::{qualified, quote_ident};
use crate::literal::push_quoted;

/// How a column's binlog value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Plain,
    /// Unsigned integer of this many bits (the binlog carries the raw bits).
    Unsigned(u32),
    /// Signed MEDIUMINT: the binlog decoder leaves its sign unextended
    /// ([`crate::binlog::signed_int24`]).
    SignedInt24,
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
    /// Text compared under a collation (case, accents, trailing spaces): two different byte
    /// strings may be the same key.
    pub collated: bool,
}

/// A destination table as the applier needs it.
#[derive(Debug, Clone)]
pub struct ApplyLayout {
    pub database: String,
    pub table: String,
    pub columns: Vec<ApplyColumn>,
    /// Positions of the primary-key columns; empty without a primary key.
    pub key: Vec<usize>,
    /// Positions of the columns of each other unique key.
    pub unique: Vec<Vec<usize>>,
    /// Whether another table's foreign key references this one with a cascading action
    /// (CASCADE, SET NULL, SET DEFAULT on delete or update).
    pub cascades: bool,
    /// How an after-image is written, built once per layout: `upsert_prefix`, value tuples,
    /// `upsert_suffix`. With only a primary key: `INSERT .. ON DUPLICATE KEY UPDATE` (an existing
    /// row is updated under a record lock, no gap lock, so parallel lanes on other keys never
    /// wait for it). With other unique keys: `REPLACE`, which also removes a row holding the
    /// image's unique value (a re-applied change meeting a later state).
    pub upsert_prefix: Vec<u8>,
    pub upsert_suffix: Vec<u8>,
}

impl ApplyLayout {
    pub async fn read(dst: &mut Session, database: &str, table: &str) -> Result<ApplyLayout, ConnectorError> {
        let cols: Vec<(String, String, String, String, Option<String>)> = dst
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, EXTRA, COLLATION_NAME FROM information_schema.COLUMNS \
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
            .map(|(name, data_type, column_type, extra, collation)| {
                let dt = data_type.to_ascii_lowercase();
                let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
                let kind = match dt.as_str() {
                    "tinyint" if unsigned => ColumnKind::Unsigned(8),
                    "smallint" if unsigned => ColumnKind::Unsigned(16),
                    "mediumint" if unsigned => ColumnKind::Unsigned(24),
                    "mediumint" => ColumnKind::SignedInt24,
                    "int" if unsigned => ColumnKind::Unsigned(32),
                    "bigint" if unsigned => ColumnKind::Unsigned(64),
                    "timestamp" => ColumnKind::Timestamp,
                    "set" => ColumnKind::Set,
                    "year" => ColumnKind::Year,
                    _ => ColumnKind::Plain,
                };
                let extra = extra.to_ascii_uppercase();
                let generated = extra.contains("VIRTUAL GENERATED") || extra.contains("STORED GENERATED");
                let collated = !matches!(dt.as_str(), "enum" | "set")
                    && collation.is_some_and(|c| !c.eq_ignore_ascii_case("binary"));
                ApplyColumn { name, kind, generated, collated }
            })
            .collect();
        let key: Vec<usize> = key_cols.iter().filter_map(|k| columns.iter().position(|c| &c.name == k)).collect();
        let unique_cols: Vec<(String, String)> = dst
            .exec(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' \
                 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                vec![database.to_string(), table.to_string()],
                "reading the destination unique keys",
            )
            .await?;
        let mut unique: Vec<(String, Vec<usize>)> = Vec::new();
        for (index, column) in unique_cols {
            let Some(pos) = columns.iter().position(|c| c.name == column) else { continue };
            match unique.last_mut() {
                Some((name, cols)) if *name == index => cols.push(pos),
                _ => unique.push((index, vec![pos])),
            }
        }
        let unique: Vec<Vec<usize>> = unique.into_iter().map(|(_, cols)| cols).collect();
        let cascading: Vec<(i64,)> = dst
            .exec(
                "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
                 WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ? \
                 AND (DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') \
                      OR UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT'))",
                vec![database.to_string(), table.to_string()],
                "reading the foreign keys that reference a destination table",
            )
            .await?;
        let cascades = cascading.first().is_some_and(|(n,)| *n > 0);
        let stored: Vec<String> = columns.iter().filter(|c| !c.generated).map(|c| quote_ident(&c.name)).collect();
        let (upsert_prefix, upsert_suffix) = if unique.is_empty() && !key.is_empty() {
            let assign: Vec<String> = stored.iter().map(|c| format!("{c}=VALUES({c})")).collect();
            (
                format!("INSERT INTO {} ({}) VALUES ", qualified(database, table), stored.join(",")).into_bytes(),
                format!(" ON DUPLICATE KEY UPDATE {}", assign.join(",")).into_bytes(),
            )
        } else {
            (
                format!("REPLACE INTO {} ({}) VALUES ", qualified(database, table), stored.join(",")).into_bytes(),
                Vec::new(),
            )
        };
        Ok(ApplyLayout {
            database: database.into(),
            table: table.into(),
            columns,
            key,
            unique,
            cascades,
            upsert_prefix,
            upsert_suffix,
        })
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
        (ColumnKind::SignedInt24, Value::Int(i)) => {
            out.extend_from_slice(crate::binlog::signed_int24(*i).to_string().as_bytes());
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

pub(crate) fn values_tuple(out: &mut Vec<u8>, layout: &ApplyLayout, row: &[Option<BinlogValue<'static>>]) {
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

/// The statements of a group of changes to one table: consecutive after-images (inserts, and
/// updates of keyed tables) merged into one upsert.
pub fn statements(layout: &ApplyLayout, changes: &[RowChange], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, out: &mut Vec<Vec<u8>>| {
        if !pending.is_empty() {
            pending.extend_from_slice(&layout.upsert_suffix);
            out.push(std::mem::take(pending));
        }
    };
    let upsert = |pending: &mut Vec<u8>, out: &mut Vec<Vec<u8>>, row: &[Option<BinlogValue<'static>>]| {
        if pending.is_empty() {
            pending.extend_from_slice(&layout.upsert_prefix);
        } else {
            pending.push(b',');
        }
        values_tuple(pending, layout, row);
        if pending.len() >= max_bytes {
            flush(pending, out);
        }
    };
    for change in changes {
        match change {
            RowChange::Insert(row) => upsert(&mut pending, &mut out, row),
            RowChange::Update { before, after } if layout.key.is_empty() => {
                flush(&mut pending, &mut out);
                out.push(update_row(layout, before, after));
            }
            RowChange::Update { before, after } => {
                if key_changed(layout, before, after) {
                    flush(&mut pending, &mut out);
                    out.push(delete_row(layout, before));
                }
                upsert(&mut pending, &mut out, after);
            }
            RowChange::Delete(row) => {
                flush(&mut pending, &mut out);
                out.push(delete_row(layout, row));
            }
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// The statements of changes to a parent table whose foreign keys cascade, applied with the
/// destination's foreign key actions: deletes and updates by key with checks on for that
/// statement (InnoDB repeats the cascade on the children), then the after-image written as
/// usual (a re-applied update whose before-image is gone still leaves the right row). The
/// session's checks are off again after each statement.
pub fn cascading_statements(layout: &ApplyLayout, changes: &[RowChange]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for change in changes {
        match change {
            RowChange::Insert(_) => out.extend(statements(layout, std::slice::from_ref(change), usize::MAX)),
            RowChange::Update { before, after } => {
                out.push(b"SET SESSION foreign_key_checks = 1".to_vec());
                out.push(update_row(layout, before, after));
                out.push(b"SET SESSION foreign_key_checks = 0".to_vec());
                let mut r = layout.upsert_prefix.clone();
                values_tuple(&mut r, layout, after);
                r.extend_from_slice(&layout.upsert_suffix);
                out.push(r);
            }
            RowChange::Delete(row) => {
                out.push(b"SET SESSION foreign_key_checks = 1".to_vec());
                out.push(delete_row(layout, row));
                out.push(b"SET SESSION foreign_key_checks = 0".to_vec());
            }
        }
    }
    out
}

/// `UPDATE` of the row matching `before` (by key, or every column without one) to `after`.
fn update_row(
    layout: &ApplyLayout,
    before: &[Option<BinlogValue<'static>>],
    after: &[Option<BinlogValue<'static>>],
) -> Vec<u8> {
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
    s
}

/// `DELETE` of the row matching `row`.
fn delete_row(layout: &ApplyLayout, row: &[Option<BinlogValue<'static>>]) -> Vec<u8> {
    let mut d = format!("DELETE FROM {}", qualified(&layout.database, &layout.table)).into_bytes();
    where_row(&mut d, layout, row);
    d
}

/// Causality keys of a change: its primary key in each of its images, equal for two changes
/// that touch the same destination row. One key for the whole table, which keeps all its
/// changes in order on one lane, where rows cannot be told apart byte for byte: without a
/// primary key, with a collated text column in it (`'a' = 'A '`), or with other unique keys
/// (a row's unique value may move to another row, and `REPLACE` takes gap locks that would
/// make lanes deadlock).
pub fn causality_keys(layout: &ApplyLayout, table_tag: u64, change: &RowChange, out: &mut Vec<u64>) {
    use std::hash::{Hash, Hasher};
    if layout.key.is_empty() || !layout.unique.is_empty() || layout.key.iter().any(|&i| layout.columns[i].collated) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (table_tag, u64::MAX).hash(&mut h);
        out.push(h.finish());
        return;
    }
    let images: [Option<&Vec<Option<BinlogValue<'static>>>>; 2] = match change {
        RowChange::Insert(a) => [Some(a), None],
        RowChange::Update { before, after } => [Some(before), Some(after)],
        RowChange::Delete(b) => [Some(b), None],
    };
    let mut literal = Vec::new();
    for image in images.into_iter().flatten() {
        literal.clear();
        for &i in &layout.key {
            push_binlog_value(&mut literal, &layout.columns[i], image.get(i).and_then(Option::as_ref));
            literal.push(0);
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (table_tag, &literal).hash(&mut h);
        out.push(h.finish());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(collated_key: bool, unique: Vec<Vec<usize>>) -> ApplyLayout {
        let col = |name: &str, collated| ApplyColumn {
            name: name.into(),
            kind: ColumnKind::Plain,
            generated: false,
            collated,
        };
        ApplyLayout {
            database: "d".into(),
            table: "t".into(),
            columns: vec![col("id", collated_key), col("v", false)],
            key: vec![0],
            unique,
            cascades: false,
            upsert_prefix: b"INSERT INTO `d`.`t` (`id`,`v`) VALUES ".to_vec(),
            upsert_suffix: b" ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`v`=VALUES(`v`)".to_vec(),
        }
    }

    fn row(id: i64, v: i64) -> Vec<Option<BinlogValue<'static>>> {
        vec![Some(BinlogValue::Value(Value::Int(id))), Some(BinlogValue::Value(Value::Int(v)))]
    }

    fn keys(layout: &ApplyLayout, change: &RowChange) -> Vec<u64> {
        let mut out = Vec::new();
        causality_keys(layout, 7, change, &mut out);
        out
    }

    #[test]
    fn changes_to_one_row_share_a_causality_key_and_other_rows_do_not() {
        let l = layout(false, vec![]);
        let insert = keys(&l, &RowChange::Insert(row(1, 10)));
        let update = keys(&l, &RowChange::Update { before: row(1, 10), after: row(1, 11) });
        let other = keys(&l, &RowChange::Delete(row(2, 10)));
        assert!(update.contains(&insert[0]));
        assert!(!other.contains(&insert[0]));
        // A key change touches both rows.
        let moved = keys(&l, &RowChange::Update { before: row(1, 10), after: row(2, 10) });
        assert!(moved.contains(&insert[0]) && moved.contains(&other[0]));
        // The same key in another table is another row.
        let mut elsewhere = Vec::new();
        causality_keys(&l, 8, &RowChange::Insert(row(1, 10)), &mut elsewhere);
        assert_ne!(elsewhere, insert);
    }

    #[test]
    fn keys_that_compare_under_a_collation_or_with_other_unique_keys_serialize_the_table() {
        for l in [layout(true, vec![]), layout(false, vec![vec![1]])] {
            assert_eq!(keys(&l, &RowChange::Insert(row(1, 10))), keys(&l, &RowChange::Delete(row(2, 20))));
        }
    }

    #[test]
    fn after_images_merge_into_one_upsert_and_deletes_stay_in_order() {
        let l = layout(false, vec![]);
        let changes = vec![
            RowChange::Insert(row(1, 10)),
            RowChange::Update { before: row(2, 1), after: row(2, 2) },
            RowChange::Delete(row(3, 0)),
            RowChange::Insert(row(3, 5)),
        ];
        let sql: Vec<String> =
            statements(&l, &changes, 1 << 20).into_iter().map(|s| String::from_utf8(s).unwrap()).collect();
        assert_eq!(
            sql,
            vec![
                "INSERT INTO `d`.`t` (`id`,`v`) VALUES (1,10),(2,2) ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`v`=VALUES(`v`)",
                "DELETE FROM `d`.`t` WHERE `id` <=> 3",
                "INSERT INTO `d`.`t` (`id`,`v`) VALUES (3,5) ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`v`=VALUES(`v`)",
            ]
        );
    }

    #[test]
    fn a_negative_mediumint_is_written_with_its_sign() {
        let literal = |kind, v: i64| {
            let col = ApplyColumn { name: "m".into(), kind, generated: false, collated: false };
            let mut out = Vec::new();
            push_binlog_value(&mut out, &col, Some(&BinlogValue::Value(Value::Int(v))));
            String::from_utf8(out).unwrap()
        };
        // The decoder's unextended 24 bits of -1, -8388608, 8388607 and 5.
        let signed: Vec<String> =
            [16_777_215, 8_388_608, 8_388_607, 5].into_iter().map(|v| literal(ColumnKind::SignedInt24, v)).collect();
        assert_eq!(signed, ["-1", "-8388608", "8388607", "5"]);
        assert_eq!(literal(ColumnKind::Unsigned(24), 16_777_215), "16777215");
    }
}
