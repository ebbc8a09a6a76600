//! Family-neutral change events from the binlog: a decoded row event of `binlog` turned into
//! `dts_core::change` rows with the source's column names and typed values, for readers that
//! are not a MySQL applier (change tracking). The applier keeps the binlog's own values on its
//! hot path.
//!
//! The binlog's row images carry values without names and, on MariaDB, without signedness or
//! ENUM/SET member names; those come from the source's catalog (`SourceColumns`, read once per
//! table and again after DDL). How each type arrives: integers as signed 64-bit values (an
//! unsigned column's value is its bits), DECIMAL as its text, TIMESTAMP as epoch seconds
//! (with a fraction), DATE/DATETIME and TIME as temporal values, SET as its member bitmap, ENUM
//! as its member index, MySQL's JSON as binary JSON, BINARY(n) without its trailing 0x00 bytes
//! (padded back to n here), everything else as bytes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dts_core::change::{
    ChangeEvent, ChangeKind, ColumnInfo, RowChange as NeutralRow, RowOp, UniqueKey, Value as Neutral,
};
use dts_core::{ChangeBatch, ConnectorError, ErrorClass, MigrationPlan, Position};
use mysql_async::Value;
use mysql_async::binlog::value::BinlogValue;

use crate::binlog::{self, BinlogEvent, BinlogReader, RowChange};
use crate::binlog_filter::{BinlogFilter, Decision};
use crate::connection::{Session, Side, connect};

/// How a column's binlog value is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Signed,
    /// Signed MEDIUMINT: the binlog decoder yields its 24 bits unextended (see
    /// [`crate::binlog::signed_int24`]).
    SignedInt24,
    /// Unsigned integer of this many bits.
    Unsigned(u32),
    Float,
    Decimal,
    /// Text in a character set (decoded to UTF-8; invalid bytes replaced).
    Text,
    Bytes,
    /// `BINARY(n)`: bytes, `n` of them.
    Binary(usize),
    Date,
    DateTime,
    Timestamp,
    Time,
    Year,
    Json,
    Enum(Vec<String>),
    Set(Vec<String>),
}

/// A source table's columns as change events name and type them.
#[derive(Debug, Clone)]
pub struct SourceColumns {
    pub columns: Arc<[ColumnInfo]>,
    pub unique_keys: Arc<[UniqueKey]>,
    kinds: Vec<Kind>,
}

/// One column as `information_schema.COLUMNS` describes it.
struct CatalogColumn {
    name: String,
    data_type: String,
    column_type: String,
    key: String,
    nullable: String,
    charset: Option<String>,
    precision: Option<u64>,
    scale: Option<u64>,
}

/// The members of `enum('a','b')` / `set('x','y')` (quotes doubled inside).
fn members(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else { return Vec::new() };
    let body = &column_type[open + 1..column_type.rfind(')').unwrap_or(column_type.len())];
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '\'') => quoted = true,
            (true, '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            (true, '\'') => {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            }
            (true, c) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// The `MYSQL_TYPE_*` code of a column type.
fn type_code(data_type: &str) -> u16 {
    match data_type {
        "decimal" => 246,
        "tinyint" => 1,
        "smallint" => 2,
        "int" | "integer" => 3,
        "float" => 4,
        "double" | "real" => 5,
        "timestamp" => 7,
        "bigint" => 8,
        "mediumint" => 9,
        "date" => 10,
        "time" => 11,
        "datetime" => 12,
        "year" => 13,
        "varchar" | "varbinary" => 15,
        "bit" => 16,
        "json" => 245,
        "enum" => 247,
        "set" => 248,
        "tinyblob" | "tinytext" => 249,
        "mediumblob" | "mediumtext" => 250,
        "longblob" | "longtext" => 251,
        "blob" | "text" => 252,
        "char" | "binary" => 254,
        _ => 255,
    }
}

/// How a column's binlog value is read; `length` is its `CHARACTER_MAXIMUM_LENGTH` (or
/// numeric precision).
fn kind(data_type: &str, column_type: &str, charset: Option<&str>, length: Option<u64>) -> Kind {
    let unsigned = column_type.contains("unsigned");
    match data_type {
        "binary" => length.and_then(|n| usize::try_from(n).ok()).map_or(Kind::Bytes, Kind::Binary),
        "tinyint" if unsigned => Kind::Unsigned(8),
        "smallint" if unsigned => Kind::Unsigned(16),
        "mediumint" if unsigned => Kind::Unsigned(24),
        "int" | "integer" if unsigned => Kind::Unsigned(32),
        "bigint" if unsigned => Kind::Unsigned(64),
        "mediumint" => Kind::SignedInt24,
        "tinyint" | "smallint" | "int" | "integer" | "bigint" => Kind::Signed,
        "float" | "double" | "real" => Kind::Float,
        "decimal" => Kind::Decimal,
        "date" => Kind::Date,
        "datetime" => Kind::DateTime,
        "timestamp" => Kind::Timestamp,
        "time" => Kind::Time,
        "year" => Kind::Year,
        "json" => Kind::Json,
        "enum" => Kind::Enum(members(column_type)),
        "set" => Kind::Set(members(column_type)),
        _ if charset.is_some_and(|c| c != "binary") => Kind::Text,
        _ => Kind::Bytes,
    }
}

impl SourceColumns {
    /// The columns of `database`.`table` on the source, in table order.
    pub async fn read(src: &mut Session, database: &str, table: &str) -> Result<SourceColumns, ConnectorError> {
        type Col = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<u64>,
        );
        let cols: Vec<Col> = src
            .exec(
                "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), COLUMN_KEY, IS_NULLABLE, CHARACTER_SET_NAME, \
                 NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_MAXIMUM_LENGTH \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                vec![database.to_string(), table.to_string()],
                "reading source columns",
            )
            .await?;
        let unique: Vec<(String, String)> = src
            .exec(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' \
                 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                vec![database.to_string(), table.to_string()],
                "reading source unique keys",
            )
            .await?;
        let columns = cols
            .into_iter()
            .map(|(name, data_type, column_type, key, nullable, charset, num_p, num_s, dt_p, chars)| {
                let temporal = matches!(data_type.as_str(), "time" | "datetime" | "timestamp");
                CatalogColumn {
                    precision: if temporal { None } else { num_p.or(chars) },
                    scale: if temporal { dt_p } else { num_s.filter(|_| data_type == "decimal") },
                    name,
                    data_type,
                    column_type,
                    key,
                    nullable,
                    charset,
                }
            })
            .collect();
        let mut keys: Vec<UniqueKey> = Vec::new();
        for (index, column) in unique {
            match keys.last_mut() {
                Some(k) if k.name == index => k.columns.push(column),
                _ => keys.push(UniqueKey { name: index, columns: vec![column] }),
            }
        }
        Ok(Self::from_catalog(columns, keys))
    }

    fn from_catalog(cols: Vec<CatalogColumn>, unique_keys: Vec<UniqueKey>) -> SourceColumns {
        let mut infos = Vec::with_capacity(cols.len());
        let mut kinds = Vec::with_capacity(cols.len());
        for c in cols {
            kinds.push(kind(&c.data_type, &c.column_type, c.charset.as_deref(), c.precision));
            infos.push(ColumnInfo {
                type_code: type_code(&c.data_type),
                unsigned: c.column_type.contains("unsigned"),
                precision: c.precision.and_then(|p| u32::try_from(p).ok()),
                scale: c.scale.and_then(|s| u32::try_from(s).ok()),
                name: c.name,
                data_type: c.column_type,
                key: c.key == "PRI",
                nullable: c.nullable == "YES",
                charset: c.charset.filter(|c| c != "binary"),
            });
        }
        SourceColumns { columns: infos.into(), unique_keys: unique_keys.into(), kinds }
    }

    /// One binlog row change as a neutral row change. A row image narrower than the catalog
    /// (the catalog was read after a later `ADD COLUMN`: the stream reads it when it first meets
    /// the table, which may be after the DDL ran on the source) is named by the catalog's first
    /// columns, where a column added at the end leaves the older ones.
    pub fn row(&self, database: &str, table: &str, change: &RowChange) -> NeutralRow {
        let width = match change {
            RowChange::Insert(a) | RowChange::Update { after: a, .. } => a.len(),
            RowChange::Delete(b) => b.len(),
        };
        let (columns, kinds) = if width < self.columns.len() {
            (Arc::from(&self.columns[..width]), &self.kinds[..width])
        } else {
            (self.columns.clone(), &self.kinds[..])
        };
        let image = |row: &[Option<BinlogValue<'static>>]| -> Vec<Neutral> {
            kinds.iter().enumerate().map(|(i, k)| value(k, row.get(i).and_then(Option::as_ref))).collect()
        };
        let (op, before, after) = match change {
            RowChange::Insert(a) => (RowOp::Insert, None, Some(image(a))),
            RowChange::Update { before, after } => (RowOp::Update, Some(image(before)), Some(image(after))),
            RowChange::Delete(b) => (RowOp::Delete, Some(image(b)), None),
        };
        NeutralRow {
            database: database.to_string(),
            schema: None,
            table: table.to_string(),
            op,
            columns,
            unique_keys: self.unique_keys.clone(),
            before,
            after,
        }
    }
}

/// The change stream of a plan's selection as neutral events: rows of selected tables (their
/// position is the end of their row event, with the row's index in it), DDL of the selection,
/// and a commit event closing each transaction (the batch's `end` is the last commit in it).
/// Every event of a source transaction with a GTID carries it as its `transaction`, in the
/// source's notation (MariaDB `0-1-42`, MySQL `uuid:n`): its rows, its commit, a DDL its own.
pub struct BinlogChangeStream {
    reader: BinlogReader,
    control: Session,
    filter: BinlogFilter,
    columns: HashMap<(String, String), SourceColumns>,
}

impl BinlogChangeStream {
    pub async fn open(
        plan: &MigrationPlan,
        start: Position,
        connect_timeout: Duration,
    ) -> Result<BinlogChangeStream, ConnectorError> {
        let Position::Binlog(start) = start else {
            return Err(ConnectorError::new(
                ErrorClass::Fatal,
                "a MySQL-family change stream was handed a position of another family",
                start.to_string(),
            ));
        };
        let mut control = connect(&plan.source, Side::Source, connect_timeout).await?;
        let filter = BinlogFilter::read(&mut control, &plan.selection).await?;
        let id = binlog::dump_server_id(3_000_000);
        let reader = BinlogReader::open(&plan.source, &mut control, &start, id, "change tracking").await?;
        Ok(BinlogChangeStream { reader, control, filter, columns: HashMap::new() })
    }

    async fn next(
        &mut self,
        wait: Duration,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<Option<Option<Position>>, ConnectorError> {
        let filter = &self.filter;
        let Some(event) = self.reader.next(wait, &|db, table| filter.table(db, table)).await? else { return Ok(None) };
        let at = |position: &dts_core::BinlogPosition| Position::Binlog(position.clone());
        match event {
            BinlogEvent::Rows { database, table, position, server_id, timestamp, changes, gtid, .. } => {
                let transaction = gtid.map(|g| g.to_string());
                let key = (database, table);
                if !self.columns.contains_key(&key) {
                    let cols = SourceColumns::read(&mut self.control, &key.0, &key.1).await?;
                    self.columns.insert(key.clone(), cols);
                }
                let cols = &self.columns[&key];
                for (i, change) in changes.iter().enumerate() {
                    events.push(ChangeEvent {
                        position: at(&position),
                        index: i as u32,
                        timestamp_ms: i64::from(timestamp) * 1000,
                        server_id,
                        transaction: transaction.clone(),
                        kind: ChangeKind::Row(cols.row(&key.0, &key.1, change)),
                    });
                }
                Ok(Some(None))
            }
            BinlogEvent::Commit { position, server_id, timestamp, gtid } => {
                events.push(ChangeEvent {
                    position: at(&position),
                    index: 0,
                    timestamp_ms: i64::from(timestamp) * 1000,
                    server_id,
                    transaction: gtid.map(|g| g.to_string()),
                    kind: ChangeKind::Commit,
                });
                Ok(Some(Some(at(&position))))
            }
            BinlogEvent::Statement { schema, sql, session, position, server_id, timestamp, gtid } => {
                let text = String::from_utf8_lossy(&sql).into_owned();
                // A statement naming tables of the selection and others is published too: the
                // bus only carries its text, and its consumers see the whole change.
                if !matches!(self.filter.ddl(&schema, &text, session.sql_mode), Decision::Skip) {
                    self.columns.clear();
                    let schema = self.filter.ddl_database(&schema, &text, session.sql_mode);
                    events.push(ChangeEvent {
                        position: at(&position),
                        index: 0,
                        timestamp_ms: i64::from(timestamp) * 1000,
                        server_id,
                        transaction: gtid.map(|g| g.to_string()),
                        kind: ChangeKind::Ddl { database: schema, statement: text },
                    });
                }
                Ok(Some(Some(at(&position))))
            }
            BinlogEvent::Rotate { .. } | BinlogEvent::SkippedRows { .. } => Ok(Some(None)),
        }
    }
}

/// How long a batch of change tracking collects transactions before it is published.
const BATCH_LINGER: Duration = Duration::from_millis(20);

impl dts_core::ChangeStream for BinlogChangeStream {
    async fn next_batch(&mut self, max_events: usize, idle: Duration) -> Result<Option<ChangeBatch>, ConnectorError> {
        let mut events = Vec::new();
        let mut end = None;
        let mut wait = idle;
        let mut first: Option<std::time::Instant> = None;
        loop {
            match self.next(wait, &mut events).await? {
                None if events.is_empty() && end.is_none() => return Ok(None),
                None => return Ok(Some(ChangeBatch { events, end })),
                Some(Some(boundary)) => {
                    end = Some(boundary);
                    // Full, or collecting for long enough: a steady trickle of transactions
                    // (each within 5 ms of the last) must not hold the first one back until
                    // `max_events` arrived.
                    if events.len() >= max_events || first.is_some_and(|t| t.elapsed() >= BATCH_LINGER) {
                        return Ok(Some(ChangeBatch { events, end }));
                    }
                }
                Some(None) if events.len() >= max_events * 2 => {
                    // A large transaction: sent on in parts, the position not yet checkpointable.
                    return Ok(Some(ChangeBatch { events, end: None }));
                }
                Some(None) => {}
            }
            // Once something arrived, what follows closely joins the batch.
            first.get_or_insert_with(std::time::Instant::now);
            wait = Duration::from_millis(5);
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::UInt(u) => i64::try_from(*u).ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// One binlog value of a column of `kind` as a neutral value.
fn value(kind: &Kind, v: Option<&BinlogValue<'_>>) -> Neutral {
    let v = match v {
        None | Some(BinlogValue::Value(Value::NULL)) => return Neutral::Null,
        Some(json @ BinlogValue::Jsonb(_)) => {
            return match Value::try_from(json.clone()) {
                Ok(Value::Bytes(b)) => Neutral::Json(text(&b)),
                _ => Neutral::Null,
            };
        }
        Some(BinlogValue::JsonDiff(_)) => return Neutral::Null,
        Some(BinlogValue::Value(v)) => v,
    };
    match (kind, v) {
        (Kind::Unsigned(bits), Value::Int(i)) => {
            let u = if *bits == 64 { *i as u64 } else { (*i as u64) & ((1u64 << bits) - 1) };
            i64::try_from(u).map_or(Neutral::UInt(u), Neutral::Int)
        }
        (_, Value::UInt(u)) => i64::try_from(*u).map_or(Neutral::UInt(*u), Neutral::Int),
        (Kind::Signed, Value::Int(i)) => Neutral::Int(*i),
        (Kind::SignedInt24, Value::Int(i)) => Neutral::Int(binlog::signed_int24(*i)),
        (_, Value::Float(f)) => Neutral::Float(*f),
        (_, Value::Double(d)) => Neutral::Double(*d),
        (Kind::Decimal, Value::Bytes(b)) => Neutral::Decimal(text(b)),
        // The binlog writes a BINARY(n) value without its trailing 0x00 bytes (the server's
        // `Field_string::pack` strips the pad character, which is 0x00 for binary strings). A
        // stored value always has exactly n bytes, padded with 0x00 on write, so padding back
        // to n restores it exactly: every stripped byte was a trailing 0x00 of those n.
        (Kind::Binary(n), Value::Bytes(b)) if b.len() < *n => {
            let mut padded = b.clone();
            padded.resize(*n, 0);
            Neutral::Bytes(padded)
        }
        (Kind::Text, Value::Bytes(b)) => Neutral::Text(text(b)),
        (Kind::Json, Value::Bytes(b)) => Neutral::Json(text(b)),
        (Kind::Year, v) => match int_of(v) {
            Some(1900) | Some(0) => Neutral::Year(0),
            Some(y) => Neutral::Year(y as u16),
            None => Neutral::Null,
        },
        (Kind::Timestamp, Value::Bytes(b)) => {
            let t = text(b);
            let (secs, frac) = t.split_once('.').unwrap_or((t.as_str(), ""));
            let micros = format!("{frac:0<6}").get(..6).and_then(|f| f.parse().ok()).unwrap_or(0);
            Neutral::Timestamp { seconds: secs.parse().unwrap_or(0), micros }
        }
        (Kind::Timestamp, Value::Int(i)) => Neutral::Timestamp { seconds: *i, micros: 0 },
        (Kind::Date, Value::Date(y, m, d, ..)) => Neutral::Date { year: *y, month: *m, day: *d },
        (_, Value::Date(y, m, d, h, mi, s, us)) => {
            Neutral::DateTime { year: *y, month: *m, day: *d, hour: *h, minute: *mi, second: *s, micros: *us }
        }
        (_, Value::Time(neg, days, h, m, s, us)) => {
            Neutral::Time { negative: *neg, hours: days * 24 + u32::from(*h), minutes: *m, seconds: *s, micros: *us }
        }
        (Kind::Enum(names), v) => match int_of(v) {
            Some(0) => Neutral::Enum(String::new()),
            Some(i) => names.get(i as usize - 1).cloned().map_or(Neutral::Int(i), Neutral::Enum),
            None => Neutral::Null,
        },
        (Kind::Set(names), Value::Bytes(b)) => {
            let mut bits: u64 = 0;
            for (i, byte) in b.iter().enumerate().take(8) {
                bits |= u64::from(*byte) << (8 * i);
            }
            Neutral::Set(names.iter().enumerate().filter(|(i, _)| bits >> i & 1 == 1).map(|(_, n)| n.clone()).collect())
        }
        (_, Value::Bytes(b)) => Neutral::Bytes(b.clone()),
        (_, Value::Int(i)) => Neutral::Int(*i),
        (_, Value::NULL) => Neutral::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, data_type: &str, column_type: &str, charset: Option<&str>) -> CatalogColumn {
        CatalogColumn {
            name: name.into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            key: if name == "id" { "PRI" } else { "" }.into(),
            nullable: "YES".into(),
            charset: charset.map(Into::into),
            precision: None,
            scale: None,
        }
    }

    #[test]
    fn a_row_logged_before_a_column_was_added_is_named_by_the_columns_it_had() {
        let cols = SourceColumns::from_catalog(
            vec![
                col("id", "int", "int(11)", None),
                col("note", "varchar", "varchar(9)", Some("utf8mb4")),
                col("extra", "int", "int(11)", None),
            ],
            Vec::new(),
        );
        let v = |x: Value| Some(BinlogValue::Value(x));
        let change = cols.row("app", "t", &RowChange::Insert(vec![v(Value::Int(1)), v(Value::Bytes(b"one".to_vec()))]));
        let names: Vec<&str> = change.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "note"]);
        assert_eq!(change.after.unwrap(), vec![Neutral::Int(1), Neutral::Text("one".into())]);
    }

    #[test]
    fn binlog_values_become_typed_values_under_their_source_column_names() {
        let cols = SourceColumns::from_catalog(
            vec![
                col("id", "bigint", "bigint(20) unsigned", None),
                col("name", "varchar", "varchar(10)", Some("utf8mb4")),
                col("price", "decimal", "decimal(10,2)", None),
                col("raw", "varbinary", "varbinary(4)", Some("binary")),
                col("state", "enum", "enum('a','it''s')", Some("utf8mb4")),
                col("tags", "set", "set('x','y','z')", Some("utf8mb4")),
                col("at", "timestamp", "timestamp(3)", None),
                col("day", "date", "date", None),
                col("tiny", "tinyint", "tinyint(3) unsigned", None),
            ],
            Vec::new(),
        );
        let v = |x: Value| Some(BinlogValue::Value(x));
        let row = vec![
            v(Value::Int(-1)),
            v(Value::Bytes("héllo".as_bytes().to_vec())),
            v(Value::Bytes(b"-12.50".to_vec())),
            v(Value::Bytes(vec![0, 255])),
            v(Value::Int(2)),
            v(Value::Bytes(vec![0b101])),
            v(Value::Bytes(b"1700000000.123".to_vec())),
            v(Value::Date(2024, 2, 29, 0, 0, 0, 0)),
            v(Value::Int(-56)),
        ];
        let change = cols.row("app", "t", &RowChange::Insert(row));
        assert_eq!(change.op, RowOp::Insert);
        assert_eq!(change.columns[1].name, "name");
        assert!(change.columns[0].key && !change.columns[1].key);
        assert_eq!(
            change.after.unwrap(),
            vec![
                Neutral::UInt(u64::MAX),
                Neutral::Text("héllo".into()),
                Neutral::Decimal("-12.50".into()),
                Neutral::Bytes(vec![0, 255]),
                Neutral::Enum("it's".into()),
                Neutral::Set(vec!["x".into(), "z".into()]),
                Neutral::Timestamp { seconds: 1_700_000_000, micros: 123_000 },
                Neutral::Date { year: 2024, month: 2, day: 29 },
                Neutral::Int(200),
            ]
        );
    }

    #[test]
    fn a_binary_column_value_gets_back_the_trailing_zero_bytes_the_binlog_leaves_out() {
        let mut fixed = col("uuid", "binary", "binary(4)", Some("binary"));
        fixed.precision = Some(4);
        let cols = SourceColumns::from_catalog(vec![fixed, col("raw", "varbinary", "varbinary(4)", None)], Vec::new());
        let v = |x: Vec<u8>| Some(BinlogValue::Value(Value::Bytes(x)));
        let image = |a: Vec<u8>, b: Vec<u8>| cols.row("app", "t", &RowChange::Insert(vec![v(a), v(b)])).after.unwrap();
        assert_eq!(
            image(vec![0, 255, 128], vec![1, 0]),
            [Neutral::Bytes(vec![0, 255, 128, 0]), Neutral::Bytes(vec![1, 0])]
        );
        assert_eq!(image(vec![], vec![]), [Neutral::Bytes(vec![0; 4]), Neutral::Bytes(vec![])]);
        assert_eq!(image(vec![9; 4], vec![9]), [Neutral::Bytes(vec![9; 4]), Neutral::Bytes(vec![9])]);
    }
}
