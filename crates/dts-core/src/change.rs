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
    /// The family's numeric type code (MySQL: the `MYSQL_TYPE_*` number of the column).
    pub type_code: u16,
    /// Part of the primary key (or, for a table without one, of the key used instead).
    pub key: bool,
    pub nullable: bool,
    /// Character set of a text column (`utf8mb4`); `None` for binary and non-text columns.
    pub charset: Option<String>,
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
    /// Binary strings, BLOBs, BIT, geometry: the bytes as stored.
    Bytes(Vec<u8>),
    /// `YYYY-MM-DD`.
    Date {
        year: u16,
        month: u8,
        day: u8,
    },
    /// A TIME value (may be negative and over 24 h), with microseconds.
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
    /// SET members (their texts).
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

/// One row change: `before` for updates and deletes, `after` for inserts, updates and reads,
/// values in the order of `columns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    pub database: String,
    /// The schema between database and table (PostgreSQL); `None` for two-level families.
    pub schema: Option<String>,
    pub table: String,
    pub op: RowOp,
    pub columns: Arc<[ColumnInfo]>,
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
    /// The source is alive and has nothing new up to `position`.
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
    /// The source transaction's id where the source has one (a GTID, an xid).
    pub transaction: Option<String>,
    pub kind: ChangeKind,
}
