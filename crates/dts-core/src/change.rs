//! Family-neutral change events: what a family's change reader (binlog, WAL, Redis stream)
//! says happened, with source column names and typed values, for consumers that are not a
//! database of the same family (change tracking's encoders, tests). A family's own applier may
//! keep its native row values on its hot path; this is the shape everything else reads.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::position::Position;

/// One column of a source table, as the change reader knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// The column type as the source declares it, lower case (`int unsigned`, `varchar(20)`,
    /// `decimal(10,2)`, `json`).
    pub data_type: String,
    /// The family's numeric type code. MySQL: the `MYSQL_TYPE_*` number a client sees for the
    /// declared type ([`mysql_type`]): TIMESTAMP 7, DATETIME 12, TIME 11, DATE 10, ENUM 247,
    /// SET 248, VARCHAR 15 — not the binlog's storage codes (17, 18, 19 for the fractional
    /// temporal types; 254 for ENUM and SET). Consumers of Alibaba's Avro record pick the value
    /// decoder by this number (`dataTypeNumber`).
    pub type_code: u16,
    /// Part of the primary key (or, for a table without one, of the key used instead).
    pub key: bool,
    pub nullable: bool,
    /// Character set of a text column (`utf8mb4`); `None` for binary and non-text columns.
    pub charset: Option<String>,
    /// An UNSIGNED numeric column.
    #[serde(default)]
    pub unsigned: bool,
    /// DECIMAL: total digits; BIT: number of bits; integers: display width where declared;
    /// text and binary: maximum length. `None` when the type has none.
    #[serde(default)]
    pub precision: Option<u32>,
    /// DECIMAL: digits after the point; TIME, DATETIME, TIMESTAMP: fractional-second digits
    /// (0-6). `None` when the type has none.
    #[serde(default)]
    pub scale: Option<u32>,
}

impl ColumnInfo {
    /// A nullable, non-key column without precision, scale or character set.
    pub fn new(name: impl Into<String>, data_type: impl Into<String>, type_code: u16) -> Self {
        Self {
            name: name.into(),
            data_type: data_type.into(),
            type_code,
            key: false,
            nullable: true,
            charset: None,
            unsigned: false,
            precision: None,
            scale: None,
        }
    }
}

/// MySQL column type codes (`enum_field_types` of the MySQL client protocol).
pub mod mysql_type {
    pub const DECIMAL: u16 = 0;
    pub const TINY: u16 = 1;
    pub const SHORT: u16 = 2;
    pub const LONG: u16 = 3;
    pub const FLOAT: u16 = 4;
    pub const DOUBLE: u16 = 5;
    pub const NULL: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
    pub const LONGLONG: u16 = 8;
    pub const INT24: u16 = 9;
    pub const DATE: u16 = 10;
    pub const TIME: u16 = 11;
    pub const DATETIME: u16 = 12;
    pub const YEAR: u16 = 13;
    pub const NEWDATE: u16 = 14;
    pub const VARCHAR: u16 = 15;
    pub const BIT: u16 = 16;
    /// Binlog storage code of TIMESTAMP(n); reported as [`TIMESTAMP`].
    pub const TIMESTAMP2: u16 = 17;
    /// Binlog storage code of DATETIME(n); reported as [`DATETIME`].
    pub const DATETIME2: u16 = 18;
    /// Binlog storage code of TIME(n); reported as [`TIME`].
    pub const TIME2: u16 = 19;
    pub const JSON: u16 = 245;
    pub const NEWDECIMAL: u16 = 246;
    pub const ENUM: u16 = 247;
    pub const SET: u16 = 248;
    pub const TINY_BLOB: u16 = 249;
    pub const MEDIUM_BLOB: u16 = 250;
    pub const LONG_BLOB: u16 = 251;
    pub const BLOB: u16 = 252;
    pub const VAR_STRING: u16 = 253;
    pub const STRING: u16 = 254;
    pub const GEOMETRY: u16 = 255;
}

/// A typed column value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Value {
    Null,
    Int(i64),
    /// Unsigned values beyond `i64`.
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Exact decimal, as its text (`-12.50`): never through a float.
    Decimal(String),
    /// Text in its column's character set, decoded to UTF-8.
    Text(String),
    /// Binary strings, BLOBs, BIT (big-endian, `(M+7)/8` bytes), geometry (MySQL's internal
    /// form: a 4-byte little-endian SRID, then WKB): the bytes as stored.
    Bytes(Vec<u8>),
    /// `YYYY-MM-DD`; MySQL's zero date and dates with a zero month or day are kept as logged.
    Date {
        year: u16,
        month: u8,
        day: u8,
    },
    /// A TIME value (may be negative and over 24 h), with microseconds. Zero is never negative.
    Time {
        negative: bool,
        hours: u32,
        minutes: u8,
        seconds: u8,
        micros: u32,
    },
    /// A DATETIME without time zone, with microseconds.
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
    },
    /// A TIMESTAMP: seconds and microseconds since the Unix epoch, UTC.
    Timestamp {
        seconds: i64,
        micros: u32,
    },
    Year(u16),
    /// JSON document text.
    Json(String),
    /// ENUM member (its text).
    Enum(String),
    /// SET members (their texts), in the order of the column's definition.
    Set(Vec<String>),
}

/// What a row change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOp {
    Insert,
    Update,
    Delete,
    /// A row read by the snapshot (not a change).
    Read,
}

/// A unique key of a table other than the primary key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueKey {
    pub name: String,
    /// Column names in key order.
    pub columns: Vec<String>,
}

/// One row change: `before` for updates and deletes, `after` for inserts, updates and reads,
/// values in the order of `columns`. The primary key is the columns marked `key`, in column
/// order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    pub database: String,
    /// The schema between database and table (PostgreSQL); `None` for two-level families.
    pub schema: Option<String>,
    pub table: String,
    pub op: RowOp,
    pub columns: Arc<[ColumnInfo]>,
    /// The table's unique keys besides the primary key (shared by every change of the table).
    #[serde(default)]
    pub unique_keys: Arc<[UniqueKey]>,
    pub before: Option<Vec<Value>>,
    pub after: Option<Vec<Value>>,
}

/// What happened at one point of the change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    Begin,
    Row(RowChange),
    /// A schema change, with the statement as the source logged it.
    Ddl {
        database: String,
        statement: String,
    },
    /// TRUNCATE of a table.
    Truncate {
        database: String,
        table: String,
    },
    Commit,
    /// The source is alive and has nothing new up to `position`; `timestamp_ms` is when that
    /// was last known.
    Heartbeat,
}

/// One event of a change stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The position of the event (for a row, the position of its row event), unique within a
    /// source's stream and increasing: what change tracking derives message ids from.
    pub position: Position,
    /// The event's index within the log event at `position` (rows of one row event share it).
    pub index: u32,
    /// Source commit time, milliseconds since the Unix epoch (seconds resolution where the
    /// source logs only seconds).
    pub timestamp_ms: i64,
    /// The source's id of the server that logged it (MySQL `server_id`).
    pub server_id: u32,
    /// The id of the source transaction the event belongs to, on every event of it (BEGIN, rows,
    /// COMMIT; a DDL is its own transaction): the GTID where the source logs one (MariaDB
    /// `domain-server-seq`, MySQL `uuid:n`). Message ids of change tracking count events within
    /// it, so that they survive a failover to a replica that logs the same GTIDs.
    pub transaction: Option<String>,
    pub kind: ChangeKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_rows_stored_before_precision_and_unique_keys_existed_still_read() {
        let col: ColumnInfo = serde_json::from_str(
            r#"{"name":"id","data_type":"int","type_code":3,"key":true,"nullable":false,"charset":null}"#,
        )
        .unwrap();
        assert_eq!((col.unsigned, col.precision, col.scale), (false, None, None));
        let row: RowChange = serde_json::from_value(serde_json::json!({
            "database": "d", "schema": null, "table": "t", "op": "insert",
            "columns": [col], "before": null, "after": [{"t": "int", "v": 1}]
        }))
        .unwrap();
        assert!(row.unique_keys.is_empty());
        assert_eq!(row.after, Some(vec![Value::Int(1)]));
    }
}
