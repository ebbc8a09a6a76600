//! Debezium-compatible JSON (the MySQL connector's change-event envelope, schemaless, as Kafka
//! Connect's `JsonConverter` writes it with `schemas.enable=false`).
//!
//! Row value: `{"before", "after", "source": {version, connector "mysql", name, ts_ms, ts_us,
//! ts_ns, snapshot, db, sequence, table, server_id, gtid, file, pos, row, thread, query},
//! "transaction": {id, total_order, data_collection_order} | null, "op": c|u|d|r|t, "ts_ms",
//! "ts_us", "ts_ns"}`; key: `{"<pk column>": value, ...}`. A delete is followed by a tombstone
//! (same key, no value) when configured; an update that changes the primary key becomes a delete
//! (plus tombstone) and a create, as Debezium emits it. DDL: a schema-change value
//! `{source, ts_ms, databaseName, schemaName, ddl, tableChanges: []}` keyed by
//! `{"databaseName"}`. Heartbeat: key `{"serverName"}`, value `{"ts_ms"}`. BEGIN and COMMIT
//! produce no message (they only number the `transaction` block).
//!
//! Column values follow Debezium's MySQL defaults with `decimal.handling.mode=string`,
//! `binary.handling.mode=base64`, `time.precision.mode=adaptive_time_microseconds` and exact
//! unsigned BIGINT: integers as JSON numbers (BIGINT UNSIGNED beyond i64 too), DECIMAL as its
//! text, FLOAT/DOUBLE as the shortest text that reads back to the same float, DATE as days since
//! the epoch, TIME as microseconds (negative and beyond 24 h kept), DATETIME(0-3) as ms and
//! DATETIME(4-6) as µs since the epoch, TIMESTAMP as ISO-8601 UTC text with the column's
//! fractional digits, YEAR as a number, text as strings, binary as base64, BIT(1) as a boolean
//! and BIT(n) as base64 of its bytes in little-endian order (Debezium's `Bits`), ENUM as its
//! member, SET as its members joined by `,`, JSON as the document text (`io.debezium.data.Json`),
//! GEOMETRY as `{"wkb": base64, "srid": n}`. Where Debezium loses a value (MySQL's zero dates and
//! dates with a zero month or day, which no day number can express) the text MySQL shows is
//! written instead (`"0000-00-00"`, `"0000-00-00 00:00:00.000000"`).

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use dts_core::Position;
use dts_core::change::{ChangeEvent, ColumnInfo, RowChange, Value, mysql_type};

use crate::error::BusError;
use crate::temporal;

/// What the Debezium writer needs from the encoder's configuration and state.
pub(crate) struct Context<'a> {
    pub server_name: &'a str,
    pub version: &'a str,
    pub now_ms: i64,
    /// `(transaction id, total_order, data_collection_order)`.
    pub transaction: Option<(&'a str, u64, u64)>,
}

fn str_json(buf: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

fn num(buf: &mut Vec<u8>, n: impl std::fmt::Display) {
    let _ = write!(buf, "{n}");
}

fn source(buf: &mut Vec<u8>, cx: &Context<'_>, ev: &ChangeEvent, db: &str, table: Option<&str>, snapshot: bool) {
    buf.extend_from_slice(b"{\"version\":");
    str_json(buf, cx.version);
    buf.extend_from_slice(b",\"connector\":\"mysql\",\"name\":");
    str_json(buf, cx.server_name);
    let ms = ev.timestamp_ms;
    let _ = write!(buf, ",\"ts_ms\":{ms},\"ts_us\":{},\"ts_ns\":{}", ms * 1000, ms * 1_000_000);
    buf.extend_from_slice(if snapshot { b",\"snapshot\":\"true\"" } else { b",\"snapshot\":\"false\"" });
    buf.extend_from_slice(b",\"db\":");
    str_json(buf, db);
    buf.extend_from_slice(b",\"sequence\":null,\"table\":");
    match table {
        Some(t) => str_json(buf, t),
        None => buf.extend_from_slice(b"null"),
    }
    let _ = write!(buf, ",\"server_id\":{},\"gtid\":", ev.server_id);
    match &ev.transaction {
        Some(g) => str_json(buf, g),
        None => buf.extend_from_slice(b"null"),
    }
    let (file, pos) = match &ev.position {
        Position::Binlog(p) => (p.file.as_str(), p.offset),
        _ => ("", 0),
    };
    buf.extend_from_slice(b",\"file\":");
    str_json(buf, file);
    let _ = write!(buf, ",\"pos\":{pos},\"row\":{},\"thread\":null,\"query\":null}}", ev.index);
}

fn envelope_tail(buf: &mut Vec<u8>, cx: &Context<'_>, op: u8) {
    buf.extend_from_slice(b",\"transaction\":");
    match cx.transaction {
        Some((id, total, per_table)) => {
            buf.extend_from_slice(b"{\"id\":");
            str_json(buf, id);
            let _ = write!(buf, ",\"total_order\":{total},\"data_collection_order\":{per_table}}}");
        }
        None => buf.extend_from_slice(b"null"),
    }
    let now = cx.now_ms;
    let _ = write!(
        buf,
        ",\"op\":\"{}\",\"ts_ms\":{now},\"ts_us\":{},\"ts_ns\":{}}}",
        op as char,
        now * 1000,
        now * 1_000_000
    );
}

/// The value of a row change with the given `op` (`c`, `u`, `d`, `r`).
pub(crate) fn row_value(
    cx: &Context<'_>,
    ev: &ChangeEvent,
    row: &RowChange,
    op: u8,
    before: Option<&[Value]>,
    after: Option<&[Value]>,
) -> Result<Vec<u8>, BusError> {
    let mut buf = Vec::with_capacity(512);
    buf.extend_from_slice(b"{\"before\":");
    image(&mut buf, &row.columns, before)?;
    buf.extend_from_slice(b",\"after\":");
    image(&mut buf, &row.columns, after)?;
    buf.extend_from_slice(b",\"source\":");
    source(&mut buf, cx, ev, &row.database, Some(&row.table), op == b'r');
    envelope_tail(&mut buf, cx, op);
    Ok(buf)
}

/// The value of a TRUNCATE of a table.
pub(crate) fn truncate_value(cx: &Context<'_>, ev: &ChangeEvent, database: &str, table: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(384);
    buf.extend_from_slice(b"{\"before\":null,\"after\":null,\"source\":");
    source(&mut buf, cx, ev, database, Some(table), false);
    envelope_tail(&mut buf, cx, b't');
    buf
}

/// The schema-change value of a DDL statement, and its key.
pub(crate) fn ddl(cx: &Context<'_>, ev: &ChangeEvent, database: &str, statement: &str) -> (Vec<u8>, Vec<u8>) {
    let mut buf = Vec::with_capacity(384 + statement.len());
    buf.extend_from_slice(b"{\"source\":");
    source(&mut buf, cx, ev, database, None, false);
    let _ = write!(buf, ",\"ts_ms\":{},\"databaseName\":", cx.now_ms);
    str_json(&mut buf, database);
    buf.extend_from_slice(b",\"schemaName\":null,\"ddl\":");
    str_json(&mut buf, statement);
    buf.extend_from_slice(b",\"tableChanges\":[]}");
    let mut key = Vec::with_capacity(24 + database.len());
    key.extend_from_slice(b"{\"databaseName\":");
    str_json(&mut key, database);
    key.push(b'}');
    (buf, key)
}

/// A heartbeat value and key.
pub(crate) fn heartbeat(cx: &Context<'_>, ev: &ChangeEvent) -> (Vec<u8>, Vec<u8>) {
    let mut key = Vec::with_capacity(24 + cx.server_name.len());
    key.extend_from_slice(b"{\"serverName\":");
    str_json(&mut key, cx.server_name);
    key.push(b'}');
    (format!("{{\"ts_ms\":{}}}", ev.timestamp_ms).into_bytes(), key)
}

/// The record key of a row image: its primary-key columns; `None` for a table without one.
pub(crate) fn key(columns: &[ColumnInfo], values: &[Value]) -> Result<Option<Vec<u8>>, BusError> {
    if !columns.iter().any(|c| c.key) {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(32);
    buf.push(b'{');
    let mut first = true;
    for (c, v) in columns.iter().zip(values) {
        if !c.key {
            continue;
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        str_json(&mut buf, &c.name);
        buf.push(b':');
        value(&mut buf, c, v)?;
    }
    buf.push(b'}');
    Ok(Some(buf))
}

fn image(buf: &mut Vec<u8>, columns: &[ColumnInfo], values: Option<&[Value]>) -> Result<(), BusError> {
    let Some(values) = values else {
        buf.extend_from_slice(b"null");
        return Ok(());
    };
    if values.len() != columns.len() {
        return Err(BusError::Encode(format!("a row image has {} values for {} columns", values.len(), columns.len())));
    }
    buf.push(b'{');
    for (i, (c, v)) in columns.iter().zip(values).enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        str_json(buf, &c.name);
        buf.push(b':');
        value(buf, c, v)?;
    }
    buf.push(b'}');
    Ok(())
}

/// Fractional digits to write for a temporal value: the column's, or 6 when the value has
/// more precision than the column claims (never drop digits).
pub(crate) fn fraction_digits(col: &ColumnInfo, micros: u32) -> u32 {
    let digits = col.scale.unwrap_or(6).min(6);
    if micros.is_multiple_of(10u32.pow(6 - digits)) { digits } else { 6 }
}

fn value(buf: &mut Vec<u8>, col: &ColumnInfo, v: &Value) -> Result<(), BusError> {
    match v {
        Value::Null => buf.extend_from_slice(b"null"),
        Value::Int(i) => num(buf, i),
        Value::UInt(u) => num(buf, u),
        Value::Float(f) => {
            let _ = serde_json::to_writer(&mut *buf, f);
        }
        Value::Double(f) => {
            let _ = serde_json::to_writer(&mut *buf, f);
        }
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) | Value::Enum(s) => str_json(buf, s),
        Value::Set(members) => str_json(buf, &members.join(",")),
        Value::Bytes(b) => match col.type_code {
            mysql_type::BIT if col.precision == Some(1) => {
                let on = b.last().is_some_and(|x| x & 1 == 1);
                buf.extend_from_slice(if on { b"true" } else { b"false" });
            }
            mysql_type::BIT => {
                let le: Vec<u8> = b.iter().rev().copied().collect();
                str_json(buf, &BASE64.encode(le));
            }
            mysql_type::GEOMETRY if b.len() >= 4 => {
                let srid = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                buf.extend_from_slice(b"{\"wkb\":");
                str_json(buf, &BASE64.encode(&b[4..]));
                let _ = write!(buf, ",\"srid\":{srid}}}");
            }
            _ => str_json(buf, &BASE64.encode(b)),
        },
        &Value::Date { year, month, day } => {
            if temporal::is_calendar_date(year, month, day) {
                num(buf, temporal::days_from_civil(year, month, day));
            } else {
                str_json(buf, &temporal::date_text(year, month, day));
            }
        }
        &Value::Time { negative, hours, minutes, seconds, micros } => {
            let total = ((i64::from(hours) * 60 + i64::from(minutes)) * 60 + i64::from(seconds)) * 1_000_000
                + i64::from(micros);
            num(buf, if negative { -total } else { total });
        }
        &Value::DateTime { year, month, day, hour, minute, second, micros } => {
            if temporal::is_calendar_date(year, month, day) {
                let secs = temporal::days_from_civil(year, month, day) * 86_400
                    + i64::from(hour) * 3600
                    + i64::from(minute) * 60
                    + i64::from(second);
                if col.scale.is_some_and(|s| s <= 3) {
                    if micros % 1000 != 0 {
                        return Err(BusError::Encode(format!(
                            "column {} declares {} fractional digits but holds {micros} µs",
                            col.name,
                            col.scale.unwrap_or(0)
                        )));
                    }
                    num(buf, secs * 1000 + i64::from(micros / 1000));
                } else {
                    num(buf, secs * 1_000_000 + i64::from(micros));
                }
            } else {
                let digits = fraction_digits(col, micros);
                str_json(buf, &temporal::datetime_text(year, month, day, hour, minute, second, micros, digits));
            }
        }
        &Value::Timestamp { seconds, micros } => {
            str_json(buf, &temporal::zoned_text(seconds, micros, fraction_digits(col, micros)));
        }
        Value::Year(y) => num(buf, y),
    }
    Ok(())
}
