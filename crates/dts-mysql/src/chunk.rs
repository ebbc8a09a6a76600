//! How the full load cuts tables into chunks, and the SQL that reads, and clears, one chunk.
//!
//! A table with a one-column integer primary key is cut into key ranges of about `chunk_rows`
//! rows (from MIN/MAX inside the snapshot); the first range is open below and the last open
//! above, so rows inserted later (a resumed load at a newer snapshot) still belong to a chunk.
//! Any other table is one chunk. The plan is stored with the job, so a resumed load cuts the
//! same chunks again and a chunk's key range is what its idempotent re-copy deletes first.

use dts_core::ConnectorError;
use mysql_async::Row;
use serde::{Deserialize, Serialize};

use crate::connection::{Session, text_column};
use crate::definition::{qualified, quote_ident};
use crate::literal::LiteralKind;

/// A copyable column (generated columns are left out: the destination computes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub kind: LiteralKind,
    /// `IS_NULLABLE`: digests need a NULL flag only for these.
    pub nullable: bool,
    /// An ENUM without `''` among its members: an empty value read from it is the ENUM's error
    /// value (index 0, stored by a non-strict source), which only a non-strict write (with a
    /// "data truncated" warning) can store again (see `full_load::check_stored`).
    pub enum_error_value: bool,
}

/// What the load needs to know about one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLayout {
    pub database: String,
    pub table: String,
    pub columns: Vec<ColumnInfo>,
    /// The single integer primary-key column, if the table has one.
    pub integer_key: Option<String>,
    /// Estimated rows (information_schema), for progress and chunk sizing.
    pub estimated_rows: u64,
    /// `(database, table)` on the destination (renamed, or the same names).
    pub target: (String, String),
}

/// One unit of copying and of checkpointing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// `<object key>#n` (see [`chunk_id`]); plans stored by earlier releases keep their
    /// `db.table#n` ids, which their done-checkpoints match.
    pub id: String,
    pub database: String,
    pub table: String,
    /// The key column when the chunk is a key range.
    pub key: Option<String>,
    /// Inclusive lower bound (decimal), absent = unbounded.
    pub lower: Option<String>,
    /// Exclusive upper bound (decimal), absent = unbounded.
    pub upper: Option<String>,
    pub estimated_rows: u64,
}

/// A chunk's id: the table's length-prefixed object key and the chunk's number, so tables
/// whose names contain dots (`a.b`+`c`, `a`+`b.c`) never share a chunk id.
pub fn chunk_id(database: &str, table: &str, n: i128) -> String {
    format!("{}#{n}", dts_core::selection::object_key(&[database, table]))
}

impl TableLayout {
    /// Reads columns, key and size of `db.table` on the source.
    pub async fn read(source: &mut Session, database: &str, table: &str) -> Result<TableLayout, ConnectorError> {
        let cols: Vec<(String, String, String, String, String)> = source
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, EXTRA, IS_NULLABLE, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                vec![database.to_string(), table.to_string()],
                "reading table columns",
            )
            .await?;
        // `VIRTUAL GENERATED` / `STORED GENERATED` are computed by the destination; MySQL 8's
        // `DEFAULT_GENERATED` (an expression default such as CURRENT_TIMESTAMP) is ordinary data.
        let columns = cols
            .into_iter()
            .filter(|(_, _, extra, _, _)| {
                let extra = extra.to_ascii_uppercase();
                !(extra.contains("VIRTUAL GENERATED") || extra.contains("STORED GENERATED"))
            })
            .map(|(name, data_type, _, nullable, column_type)| ColumnInfo {
                name,
                nullable: nullable.eq_ignore_ascii_case("YES"),
                enum_error_value: data_type.eq_ignore_ascii_case("enum")
                    && !["(''", ",''"].iter().any(|p| column_type.contains(p)),
                kind: match data_type.to_ascii_lowercase().as_str() {
                    "json" => LiteralKind::Json,
                    "float" => LiteralKind::Float,
                    _ => LiteralKind::Bytes,
                },
            })
            .collect();
        let key: Vec<(String, String)> = source
            .exec(
                "SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k \
                 JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME \
                 AND c.COLUMN_NAME = k.COLUMN_NAME \
                 WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY' ORDER BY k.ORDINAL_POSITION",
                vec![database.to_string(), table.to_string()],
                "reading the primary key",
            )
            .await?;
        let integer_key = match key.as_slice() {
            [(col, ty)]
                if ["tinyint", "smallint", "mediumint", "int", "bigint"]
                    .contains(&ty.to_ascii_lowercase().as_str()) =>
            {
                Some(col.clone())
            }
            _ => None,
        };
        let est: Vec<Option<u64>> = source
            .exec(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                vec![database.to_string(), table.to_string()],
                "estimating table size",
            )
            .await?;
        Ok(TableLayout {
            target: (database.to_string(), table.to_string()),
            database: database.to_string(),
            table: table.to_string(),
            columns,
            integer_key,
            estimated_rows: est.into_iter().next().flatten().unwrap_or(0),
        })
    }

    /// Cuts the table into chunks, reading the key's bounds inside the reader's snapshot.
    pub async fn plan(&self, reader: &mut Session, chunk_rows: u64) -> Result<Vec<Chunk>, ConnectorError> {
        let whole = |est| {
            vec![Chunk {
                id: chunk_id(&self.database, &self.table, 0),
                database: self.database.clone(),
                table: self.table.clone(),
                key: None,
                lower: None,
                upper: None,
                estimated_rows: est,
            }]
        };
        let Some(key) = &self.integer_key else { return Ok(whole(self.estimated_rows)) };
        let rows: Vec<Row> = reader
            .rows(
                &format!(
                    "SELECT MIN({k}), MAX({k}) FROM {}",
                    qualified(&self.database, &self.table),
                    k = quote_ident(key)
                ),
                "reading key bounds",
            )
            .await?;
        let parse =
            |i| rows.first().and_then(|r| text_column(r, i).ok().flatten()).and_then(|s| s.parse::<i128>().ok());
        let (Some(min), Some(max)) = (parse(0), parse(1)) else {
            return Ok(whole(0));
        };
        // The estimate only sizes the chunks; the bounds, read in the snapshot, make them exact.
        let count = self.estimated_rows.max(1) as i128;
        let n = (count as u64).div_ceil(chunk_rows.max(1)).max(1) as i128;
        let span = max - min + 1;
        let step = (span + n - 1) / n;
        let per_chunk = (count as u64).div_ceil(n as u64);
        let mut chunks = Vec::new();
        for i in 0..n {
            let lo = min + i * step;
            if lo > max {
                break;
            }
            let hi = lo + step;
            chunks.push(Chunk {
                id: chunk_id(&self.database, &self.table, i),
                database: self.database.clone(),
                table: self.table.clone(),
                key: Some(key.clone()),
                lower: (i > 0).then(|| lo.to_string()),
                upper: (hi <= max).then(|| hi.to_string()),
                estimated_rows: per_chunk,
            });
        }
        Ok(chunks)
    }
}

impl Chunk {
    /// `WHERE ...` of this chunk's key range (empty for a whole table).
    fn predicate(&self) -> String {
        let Some(key) = &self.key else { return String::new() };
        let k = quote_ident(key);
        let mut parts = Vec::new();
        if let Some(lo) = &self.lower {
            parts.push(format!("{k} >= {lo}"));
        }
        if let Some(hi) = &self.upper {
            parts.push(format!("{k} < {hi}"));
        }
        if parts.is_empty() { String::new() } else { format!(" WHERE {}", parts.join(" AND ")) }
    }

    /// The same scan of the table's destination copy `target`.
    pub fn scan_clause_at(&self, target: &(String, String)) -> String {
        format!(" FROM {}{}", qualified(&target.0, &target.1), self.predicate())
    }

    /// ` FROM db.table WHERE <key range>` of this chunk.
    pub fn scan_clause(&self) -> String {
        format!(" FROM {}{}", qualified(&self.database, &self.table), self.predicate())
    }

    /// Reads the chunk's rows in key order.
    pub fn select_sql(&self, columns: &[ColumnInfo]) -> String {
        let cols = columns
            .iter()
            .map(|c| match c.kind {
                LiteralKind::Float => format!("{} * 1e0", quote_ident(&c.name)),
                LiteralKind::Bytes | LiteralKind::Json => quote_ident(&c.name),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let order = self.key.as_ref().map(|k| format!(" ORDER BY {}", quote_ident(k))).unwrap_or_default();
        format!("SELECT {cols} FROM {}{}{order}", qualified(&self.database, &self.table), self.predicate())
    }

    /// Clears whatever an interrupted copy of this chunk left on the destination, in its
    /// destination table `target`.
    pub fn delete_sql(&self, target: &(String, String)) -> String {
        format!("DELETE FROM {}{}", qualified(&target.0, &target.1), self.predicate())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_chunks_read_and_clear_exactly_their_key_range() {
        let c = Chunk {
            id: "d.t#1".into(),
            database: "d".into(),
            table: "t".into(),
            key: Some("id".into()),
            lower: Some("10".into()),
            upper: Some("20".into()),
            estimated_rows: 10,
        };
        let cols = vec![
            ColumnInfo { name: "id".into(), kind: LiteralKind::Bytes, nullable: false, enum_error_value: false },
            ColumnInfo { name: "f".into(), kind: LiteralKind::Float, nullable: true, enum_error_value: false },
        ];
        assert_eq!(
            c.select_sql(&cols),
            "SELECT `id`, `f` * 1e0 FROM `d`.`t` WHERE `id` >= 10 AND `id` < 20 ORDER BY `id`"
        );
        assert_eq!(c.delete_sql(&("d".into(), "t".into())), "DELETE FROM `d`.`t` WHERE `id` >= 10 AND `id` < 20");
        assert_eq!(c.delete_sql(&("d2".into(), "t2".into())), "DELETE FROM `d2`.`t2` WHERE `id` >= 10 AND `id` < 20");
        let whole = Chunk { key: None, lower: None, upper: None, ..c };
        assert_eq!(whole.delete_sql(&("d".into(), "t".into())), "DELETE FROM `d`.`t`");
    }
}
