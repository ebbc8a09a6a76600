//! Net apply: the row changes a lane holds for one destination transaction, collapsed to their
//! net effect per primary key and written as few, cheap statements: one `DELETE ... IN` per
//! table for the rows that end absent, one multi-row upsert for the rows that were (re)created,
//! and, for rows that were only updated, an `UPDATE` of only the columns that changed (rows that
//! changed the same columns joined to a table value constructor of their new values, one
//! statement per chunk).
//!
//! Why: the per-change upsert (`apply::statements`) makes the destination attempt an insert,
//! meet the duplicate and then update, for every update of the source: measured at about 2.7x
//! the server CPU per change that a native replica spends (`bench/backlog.sh`, BENCHMARKS.md).
//!
//! Correctness argument.
//! - **Which tables.** Only tables whose rows are told apart byte for byte by their primary key
//!   and nothing else ([`eligible`]): a primary key without collated text, no other unique key,
//!   no cascading foreign keys referencing it. Two different keys are then two different rows
//!   that no statement of another key can touch, so the order between the statements of
//!   different keys does not matter; only the order of changes to one key does, and that is
//!   folded into its net effect. Other tables keep the per-change path.
//! - **Same end state.** The window's changes all commit in one destination transaction (a lane
//!   commits only between source transactions, and drains its window into that transaction's
//!   statements before the COMMIT), so only the state at the commit is visible. For each key the
//!   fold ([`Net::fold`]) keeps: absent at the end -> `DELETE`; created in the window (an insert,
//!   or an update of an absent row) -> the full last image, upserted (all columns written); only
//!   updated -> the columns where the last after-image differs from the first before-image. A
//!   key change is a delete of the old key and a creation of the new one.
//! - **Re-apply after a crash.** The restart re-applies from the checkpoint, in source order,
//!   with the destination possibly ahead of it. Deletes and full upserts set a row to an exact
//!   state. An update of changed columns sets each of those columns to its value at that point;
//!   every later change to a column is re-applied after it, so each column ends at the value of
//!   the last source change that wrote it, and a row deleted or re-created later is deleted or
//!   rewritten whole by that later change. The destination converges to the source.
//! - **Order with other work of the lane.** A change that cannot be folded (another table's
//!   cascade, a table on the per-change path) drains the window first, so statements reach the
//!   destination in source order across tables wherever it could matter.
//! - **Memory.** The window holds at most what the lane holds unsent (`FLUSH_BYTES`); the lane
//!   drains it when it is that large, when it is idle, and before every commit.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use mysql_async::Value;
use mysql_async::binlog::value::BinlogValue;

use crate::apply::{ApplyLayout, push_binlog_value, values_tuple};
use crate::binlog::RowChange;
use crate::definition::{qualified, quote_ident};

type Row = Vec<Option<BinlogValue<'static>>>;
/// Rows (before, after) that changed the same columns.
type SameColumns = (Vec<usize>, Vec<(Row, Row)>);

/// Keys in one `DELETE ... IN` list (below MariaDB's `in_predicate_conversion_threshold`,
/// 1,000, beyond which the list becomes a derived table), and rows in one joined `UPDATE`.
const DELETE_KEYS: usize = 500;

/// Whether a table's changes may be folded by key (see the module's argument).
pub fn eligible(layout: &ApplyLayout) -> bool {
    !layout.key.is_empty()
        && layout.unique.is_empty()
        && !layout.cascades
        && layout.key.iter().all(|&i| !layout.columns[i].collated && !layout.columns[i].generated)
}

/// The net effect of a window's changes on one key.
#[derive(Debug)]
enum Net {
    /// Absent at the end; the image carries the key values.
    Deleted(Row),
    /// Created in the window (or found absent and updated): written whole.
    Full(Row),
    /// Present before and after, only updated.
    Changed { before: Row, after: Row },
}

impl Net {
    /// Folds the next change to this key.
    fn fold(self, change: Step) -> Net {
        match (self, change) {
            (_, Step::Delete(row)) => Net::Deleted(row),
            (_, Step::Create(row)) => Net::Full(row),
            (Net::Full(_) | Net::Deleted(_), Step::Update(_, after)) => Net::Full(after),
            (Net::Changed { before, .. }, Step::Update(_, after)) => Net::Changed { before, after },
        }
    }

    fn start(change: Step) -> Net {
        match change {
            Step::Delete(row) => Net::Deleted(row),
            Step::Create(row) => Net::Full(row),
            Step::Update(before, after) => Net::Changed { before, after },
        }
    }
}

/// A change to one key (a key change is split into a delete and a create).
enum Step {
    Delete(Row),
    Create(Row),
    Update(Row, Row),
}

/// One table's folded changes, keys in first-seen order.
struct NetTable {
    layout: Arc<ApplyLayout>,
    order: Vec<Vec<u8>>,
    nets: HashMap<Vec<u8>, Net>,
}

/// The folded changes of a lane's open window, per table.
#[derive(Default)]
pub struct NetWindow {
    tables: Vec<NetTable>,
    index: HashMap<u64, usize>,
    /// Changes folded in (for the memory bound; a folded change is at most one image kept).
    bytes: usize,
}

fn key_of(layout: &ApplyLayout, row: &Row, out: &mut Vec<u8>) {
    out.clear();
    for &i in &layout.key {
        push_binlog_value(out, &layout.columns[i], row.get(i).and_then(Option::as_ref));
        out.push(0);
    }
}

fn image_bytes(row: &Row) -> usize {
    row.iter()
        .map(|v| match v {
            Some(BinlogValue::Value(Value::Bytes(b))) => b.len() + 8,
            Some(BinlogValue::Jsonb(_) | BinlogValue::JsonDiff(_)) => 256,
            _ => 8,
        })
        .sum()
}

impl NetWindow {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Approximate bytes of images held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Folds a table's changes (in source order) into the window.
    pub fn fold(&mut self, tag: u64, layout: &Arc<ApplyLayout>, changes: Vec<RowChange>) {
        let at = *self.index.entry(tag).or_insert_with(|| {
            self.tables.push(NetTable { layout: layout.clone(), order: Vec::new(), nets: HashMap::new() });
            self.tables.len() - 1
        });
        let table = &mut self.tables[at];
        let mut key = Vec::new();
        for change in changes {
            let steps: Vec<Step> = match change {
                RowChange::Insert(row) => vec![Step::Create(row)],
                RowChange::Delete(row) => vec![Step::Delete(row)],
                RowChange::Update { before, after } => {
                    let moved = table.layout.key.iter().any(|&i| before.get(i) != after.get(i));
                    if moved {
                        vec![Step::Delete(before), Step::Create(after)]
                    } else {
                        vec![Step::Update(before, after)]
                    }
                }
            };
            for step in steps {
                let image = match &step {
                    Step::Delete(r) | Step::Create(r) | Step::Update(_, r) => r,
                };
                self.bytes += image_bytes(image);
                key_of(&table.layout, image, &mut key);
                match table.nets.entry(key.clone()) {
                    Entry::Occupied(mut e) => {
                        let net = std::mem::replace(e.get_mut(), Net::Deleted(Vec::new()));
                        *e.get_mut() = net.fold(step);
                    }
                    Entry::Vacant(e) => {
                        table.order.push(key.clone());
                        e.insert(Net::start(step));
                    }
                }
            }
        }
    }

    /// The window's statements (emptying it): per table, deletes, then upserts, then updates.
    pub fn drain(&mut self, max_bytes: usize, out: &mut Vec<Vec<u8>>) {
        self.index.clear();
        self.bytes = 0;
        for mut table in self.tables.drain(..) {
            let layout = table.layout.clone();
            let mut deletes = Vec::new();
            let mut fulls = Vec::new();
            let mut updates = Vec::new();
            for key in table.order.drain(..) {
                match table.nets.remove(&key) {
                    Some(Net::Deleted(row)) => deletes.push(row),
                    Some(Net::Full(row)) => fulls.push(row),
                    Some(Net::Changed { before, after }) => updates.push((before, after)),
                    None => {}
                }
            }
            for chunk in deletes.chunks(DELETE_KEYS) {
                out.push(delete_keys(&layout, chunk));
            }
            upserts(&layout, &fulls, max_bytes, out);
            // Updates that change the same columns go together, one joined UPDATE per chunk.
            let mut by_columns: Vec<SameColumns> = Vec::new();
            for (before, after) in updates {
                let changed = changed_columns(&layout, &before, &after);
                if changed.is_empty() {
                    continue;
                }
                match by_columns.iter_mut().find(|(c, _)| *c == changed) {
                    Some((_, rows)) => rows.push((before, after)),
                    None => by_columns.push((changed, vec![(before, after)])),
                }
            }
            for (changed, rows) in &by_columns {
                if let [(before, after)] = &rows[..] {
                    out.push(update_one(&layout, changed, before, after));
                    continue;
                }
                update_joined(&layout, changed, rows, max_bytes, out);
            }
        }
    }
}

/// `DELETE` of the rows with these keys: `key IN (...)` for one key column, an OR of equalities
/// for a composite key (both use the primary key's range access).
fn delete_keys(layout: &ApplyLayout, rows: &[Row]) -> Vec<u8> {
    let mut s = format!("DELETE FROM {} WHERE ", qualified(&layout.database, &layout.table)).into_bytes();
    if let [k] = layout.key[..] {
        s.extend_from_slice(quote_ident(&layout.columns[k].name).as_bytes());
        s.extend_from_slice(b" IN (");
        for (n, row) in rows.iter().enumerate() {
            if n > 0 {
                s.push(b',');
            }
            push_binlog_value(&mut s, &layout.columns[k], row.get(k).and_then(Option::as_ref));
        }
        s.push(b')');
    } else {
        for (n, row) in rows.iter().enumerate() {
            if n > 0 {
                s.extend_from_slice(b" OR ");
            }
            s.push(b'(');
            push_key_eq(&mut s, layout, row);
            s.push(b')');
        }
    }
    s
}

fn push_key_eq(s: &mut Vec<u8>, layout: &ApplyLayout, row: &Row) {
    for (n, &i) in layout.key.iter().enumerate() {
        if n > 0 {
            s.extend_from_slice(b" AND ");
        }
        s.extend_from_slice(quote_ident(&layout.columns[i].name).as_bytes());
        s.push(b'=');
        push_binlog_value(s, &layout.columns[i], row.get(i).and_then(Option::as_ref));
    }
}

fn upserts(layout: &ApplyLayout, rows: &[Row], max_bytes: usize, out: &mut Vec<Vec<u8>>) {
    let mut pending: Vec<u8> = Vec::new();
    for row in rows {
        if pending.is_empty() {
            pending.extend_from_slice(&layout.upsert_prefix);
        } else {
            pending.push(b',');
        }
        values_tuple(&mut pending, layout, row);
        if pending.len() >= max_bytes {
            pending.extend_from_slice(&layout.upsert_suffix);
            out.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        pending.extend_from_slice(&layout.upsert_suffix);
        out.push(pending);
    }
}

/// The stored columns where `after` differs from `before`.
fn changed_columns(layout: &ApplyLayout, before: &Row, after: &Row) -> Vec<usize> {
    (0..layout.columns.len()).filter(|&i| !layout.columns[i].generated && before.get(i) != after.get(i)).collect()
}

/// `UPDATE` of one row's `changed` columns, by key.
fn update_one(layout: &ApplyLayout, changed: &[usize], before: &Row, after: &Row) -> Vec<u8> {
    let mut s = format!("UPDATE {} SET ", qualified(&layout.database, &layout.table)).into_bytes();
    for (n, &i) in changed.iter().enumerate() {
        if n > 0 {
            s.push(b',');
        }
        s.extend_from_slice(quote_ident(&layout.columns[i].name).as_bytes());
        s.push(b'=');
        push_binlog_value(&mut s, &layout.columns[i], after.get(i).and_then(Option::as_ref));
    }
    s.extend_from_slice(b" WHERE ");
    push_key_eq(&mut s, layout, before);
    s
}

/// One row of a joined update: the key (from `before`), then the `changed` values (from
/// `after`); the first row names them `k0..` and `c0..`.
fn joined_row(s: &mut Vec<u8>, layout: &ApplyLayout, changed: &[usize], before: &Row, after: &Row, named: bool) {
    let values = layout.key.iter().map(|&i| (i, before, 'k')).chain(changed.iter().map(|&i| (i, after, 'c')));
    let (mut keys, mut cols) = (0, 0);
    for (n, (i, image, kind)) in values.enumerate() {
        if n > 0 {
            s.push(b',');
        }
        push_binlog_value(s, &layout.columns[i], image.get(i).and_then(Option::as_ref));
        if named {
            let at = if kind == 'k' { &mut keys } else { &mut cols };
            s.extend_from_slice(format!(" AS `{kind}{at}`").as_bytes());
            *at += 1;
        }
    }
}

/// Updates of many rows' `changed` columns as one statement: the table joined by its key to a
/// table value constructor of (key, new values) rows, so the destination parses and plans once
/// for the chunk (measured about 3.5x cheaper per row than one `UPDATE` each). The first row is
/// a `SELECT` that names the columns (MariaDB 10.x takes no column list on a derived `VALUES`);
/// each column's type is aggregated over all rows as for a `UNION`, and each value is then
/// assigned to its column exactly as a literal in `SET` would be.
fn update_joined(
    layout: &ApplyLayout,
    changed: &[usize],
    rows: &[(Row, Row)],
    max_bytes: usize,
    out: &mut Vec<Vec<u8>>,
) {
    let table = qualified(&layout.database, &layout.table);
    let mut chunk_start = 0;
    while chunk_start < rows.len() {
        let mut s = format!("UPDATE {table} JOIN (SELECT ").into_bytes();
        let mut n = 0;
        for (before, after) in &rows[chunk_start..] {
            if n > 0 {
                s.extend_from_slice(if n == 1 { b" UNION ALL VALUES (" } else { b",(" });
            }
            joined_row(&mut s, layout, changed, before, after, n == 0);
            if n > 0 {
                s.push(b')');
            }
            n += 1;
            if n >= DELETE_KEYS || s.len() >= max_bytes {
                break;
            }
        }
        s.extend_from_slice(b") AS `dts_v` ON ");
        for (k, &i) in layout.key.iter().enumerate() {
            if k > 0 {
                s.extend_from_slice(b" AND ");
            }
            s.extend_from_slice(
                format!("{table}.{} = `dts_v`.`k{k}`", quote_ident(&layout.columns[i].name)).as_bytes(),
            );
        }
        s.extend_from_slice(b" SET ");
        for (c, &i) in changed.iter().enumerate() {
            if c > 0 {
                s.push(b',');
            }
            s.extend_from_slice(
                format!("{table}.{} = `dts_v`.`c{c}`", quote_ident(&layout.columns[i].name)).as_bytes(),
            );
        }
        out.push(s);
        chunk_start += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{ApplyColumn, ColumnKind};

    fn layout(key: Vec<usize>) -> Arc<ApplyLayout> {
        let col =
            |name: &str| ApplyColumn { name: name.into(), kind: ColumnKind::Plain, generated: false, collated: false };
        Arc::new(ApplyLayout {
            database: "d".into(),
            table: "t".into(),
            columns: vec![col("id"), col("v"), col("w")],
            key,
            unique: vec![],
            cascades: false,
            upsert_prefix: b"INSERT INTO `d`.`t` (`id`,`v`,`w`) VALUES ".to_vec(),
            upsert_suffix: b" ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`v`=VALUES(`v`),`w`=VALUES(`w`)".to_vec(),
        })
    }

    fn row(id: i64, v: i64, w: i64) -> Row {
        [id, v, w].into_iter().map(|x| Some(BinlogValue::Value(Value::Int(x)))).collect()
    }

    fn update(before: Row, after: Row) -> RowChange {
        RowChange::Update { before, after }
    }

    fn sql(window: &mut NetWindow) -> Vec<String> {
        let mut out = Vec::new();
        window.drain(1 << 20, &mut out);
        out.into_iter().map(|s| String::from_utf8(s).unwrap()).collect()
    }

    #[test]
    fn a_key_inserted_updated_three_times_and_deleted_is_one_delete_and_a_reinserted_key_one_upsert() {
        let l = layout(vec![0]);
        let mut w = NetWindow::default();
        w.fold(
            1,
            &l,
            vec![
                RowChange::Insert(row(1, 1, 1)),
                update(row(1, 1, 1), row(1, 2, 1)),
                update(row(1, 2, 1), row(1, 3, 1)),
                update(row(1, 3, 1), row(1, 4, 1)),
                RowChange::Delete(row(1, 4, 1)),
                RowChange::Delete(row(2, 0, 0)),
                RowChange::Insert(row(2, 5, 5)),
            ],
        );
        assert_eq!(
            sql(&mut w),
            vec![
                "DELETE FROM `d`.`t` WHERE `id` IN (1)",
                "INSERT INTO `d`.`t` (`id`,`v`,`w`) VALUES (2,5,5) ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`v`=VALUES(`v`),`w`=VALUES(`w`)",
            ]
        );
        assert!(w.is_empty() && w.bytes() == 0);
    }

    #[test]
    fn updates_write_only_the_columns_that_changed_between_the_first_and_last_image() {
        let l = layout(vec![0]);
        let mut w = NetWindow::default();
        w.fold(1, &l, vec![update(row(7, 1, 1), row(7, 2, 1)), update(row(7, 2, 1), row(7, 2, 9))]);
        w.fold(1, &l, vec![update(row(8, 1, 1), row(8, 2, 1)), update(row(8, 2, 1), row(8, 1, 1))]);
        assert_eq!(sql(&mut w), vec!["UPDATE `d`.`t` SET `v`=2,`w`=9 WHERE `id`=7"]);
    }

    #[test]
    fn updates_of_the_same_columns_join_the_table_to_their_new_values() {
        let l = layout(vec![0]);
        let mut w = NetWindow::default();
        w.fold(
            1,
            &l,
            vec![
                update(row(1, 1, 1), row(1, 2, 1)),
                update(row(2, 5, 5), row(2, 6, 5)),
                update(row(3, 0, 0), row(3, 0, 4)),
            ],
        );
        assert_eq!(
            sql(&mut w),
            vec![
                "UPDATE `d`.`t` JOIN (SELECT 1 AS `k0`,2 AS `c0` UNION ALL VALUES (2,6)) AS `dts_v` ON `d`.`t`.`id` = `dts_v`.`k0` SET `d`.`t`.`v` = `dts_v`.`c0`",
                "UPDATE `d`.`t` SET `w`=4 WHERE `id`=3",
            ]
        );
    }

    #[test]
    fn a_key_change_deletes_the_old_key_and_writes_the_new_row_whole() {
        let l = layout(vec![0]);
        let mut w = NetWindow::default();
        w.fold(1, &l, vec![RowChange::Delete(row(5, 0, 0)), update(row(4, 1, 1), row(5, 1, 2))]);
        assert_eq!(
            sql(&mut w),
            vec![
                "DELETE FROM `d`.`t` WHERE `id` IN (4)",
                "INSERT INTO `d`.`t` (`id`,`v`,`w`) VALUES (5,1,2) ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`v`=VALUES(`v`),`w`=VALUES(`w`)",
            ]
        );
    }

    #[test]
    fn composite_keys_delete_by_an_or_of_equalities_and_tables_stay_apart() {
        let l = layout(vec![0, 1]);
        let other = layout(vec![0]);
        let mut w = NetWindow::default();
        w.fold(1, &l, vec![RowChange::Delete(row(1, 2, 0)), RowChange::Delete(row(3, 4, 0))]);
        w.fold(2, &other, vec![RowChange::Delete(row(1, 2, 0))]);
        assert_eq!(
            sql(&mut w),
            vec![
                "DELETE FROM `d`.`t` WHERE (`id`=1 AND `v`=2) OR (`id`=3 AND `v`=4)",
                "DELETE FROM `d`.`t` WHERE `id` IN (1)",
            ]
        );
    }

    #[test]
    fn an_update_of_a_row_deleted_in_the_window_writes_it_whole() {
        let l = layout(vec![0]);
        let mut w = NetWindow::default();
        w.fold(1, &l, vec![RowChange::Delete(row(3, 1, 1)), update(row(3, 1, 1), row(3, 2, 2))]);
        assert_eq!(
            sql(&mut w),
            vec![
                "INSERT INTO `d`.`t` (`id`,`v`,`w`) VALUES (3,2,2) ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`v`=VALUES(`v`),`w`=VALUES(`w`)"
            ]
        );
    }

    #[test]
    fn only_tables_told_apart_by_their_primary_key_alone_are_folded() {
        let plain = layout(vec![0]);
        assert!(eligible(&plain));
        let mut unique = (*plain).clone();
        unique.unique = vec![vec![1]];
        let mut keyless = (*plain).clone();
        keyless.key.clear();
        let mut cascades = (*plain).clone();
        cascades.cascades = true;
        let mut collated = (*plain).clone();
        collated.columns[0].collated = true;
        for l in [unique, keyless, cascades, collated] {
            assert!(!eligible(&l));
        }
    }
}
