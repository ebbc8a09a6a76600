//! The binlog as a replica reads it: the bottom layer every change reader of the MySQL family
//! uses (replication, the two-way watcher, change tracking). It reads the source's position
//! (`SHOW MASTER STATUS`, or `SHOW BINARY LOG STATUS` on MySQL 8.2+ where the former is gone),
//! opens a dump stream by file/position or by GTID, gives every dump connection its own server
//! id, and decodes events into what happened: row changes of a table (with the source session's
//! foreign-key checks), commits with the position after them, statements with the session state
//! they were logged with, and file rotations. It knows nothing of appliers or destinations.
//!
//! Positions: the position after a commit is `(file, end of the XID/COMMIT event)`, with the
//! MariaDB GTID state advanced by the GTID events read so far (see `gtid`); a stream opened at
//! such a position continues with the next transaction.
//!
//! Transactions' GTIDs: every event of an event group (its rows, statements and the commit that
//! ends it) carries the GTID its group's GTID event announced, MariaDB's (type 162) or MySQL's
//! (33, and 42 for tagged ones); `None` where the source logs none (MySQL's anonymous GTID
//! event, type 34, with `gtid_mode` OFF; servers before GTIDs). A group ends with its XID or
//! `COMMIT`/`ROLLBACK`, or, when it is a single statement (MariaDB's `FL_STANDALONE`, or a MySQL
//! statement outside `BEGIN`), with that statement; what follows the end until the next GTID
//! event has none. Groups never interleave in a binlog, so this is the group's own GTID.
//!
//! MariaDB: the session sets `@mariadb_slave_capability = 4` so the server sends its own events
//! (GTID, annotate) instead of replacing them; the first, fake ROTATE (position 0) may carry the
//! checksum bytes in its file name ([`binlog_file_name`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dts_core::{BinlogPosition, ConnectionSpec, ConnectorError, ErrorClass};
use futures::{FutureExt, StreamExt};
use mysql_async::binlog::RowsEventFlags;
use mysql_async::binlog::events::{Event, EventData, RowsEventData, StatusVarVal, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest};

use crate::connection::{Session, text_column};
use crate::gtid::{self, Gtid, GtidState};

/// One row change of a transaction, with the row images as the binlog carries them (the
/// table's columns in order; `None` for a column the image leaves out).
#[derive(Debug, Clone)]
pub enum RowChange {
    Insert(Vec<Option<BinlogValue<'static>>>),
    Update { before: Vec<Option<BinlogValue<'static>>>, after: Vec<Option<BinlogValue<'static>>> },
    Delete(Vec<Option<BinlogValue<'static>>>),
}

/// The session state a statement was logged with (the Query event's status variables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementSession {
    /// `sql_mode` as its bit value (what `SET SESSION sql_mode = <n>` takes).
    pub sql_mode: Option<u64>,
    /// `character_set_client`, `collation_connection`, `collation_server` as collation ids.
    pub charset: Option<(u16, u16, u16)>,
}

/// What happened at one point of the binlog.
#[derive(Debug)]
pub enum BinlogEvent {
    /// The row changes of one row event of `database`.`table`.
    Rows {
        database: String,
        table: String,
        /// The position at the end of the row event (unique and increasing: an event id).
        position: BinlogPosition,
        /// The source session's foreign_key_checks: with them on, the source cascaded.
        fk_checks: bool,
        server_id: u32,
        timestamp: u32,
        changes: Vec<RowChange>,
        /// The GTID of the transaction (see the module's docs).
        gtid: Option<Gtid>,
    },
    /// A row event of a table the caller did not want (not decoded).
    SkippedRows { server_id: u32 },
    /// The end of a transaction (XID or `COMMIT`): `position` is where the next one starts.
    Commit { position: BinlogPosition, server_id: u32, timestamp: u32, gtid: Option<Gtid> },
    /// A statement outside a transaction (DDL and the like); `position` is after it.
    Statement {
        /// The session's default database when it was logged (may be empty).
        schema: String,
        sql: Vec<u8>,
        session: StatementSession,
        position: BinlogPosition,
        server_id: u32,
        timestamp: u32,
        /// The GTID of the statement's event group (its own, for DDL).
        gtid: Option<Gtid>,
    },
    /// The stream moved to the start of another file.
    Rotate { position: BinlogPosition },
}

fn fatal(summary: impl Into<String>, detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorClass::Fatal, summary, detail.to_string())
}

fn transient(summary: impl Into<String>, detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorClass::Transient, summary, detail.to_string())
}

/// The binlog file and offset the source writes next. MySQL 8.4 removed `SHOW MASTER STATUS`
/// for `SHOW BINARY LOG STATUS` (8.2+); MariaDB has only the former (and `SHOW BINLOG STATUS`).
pub async fn master_position(control: &mut Session) -> Result<BinlogPosition, ConnectorError> {
    let rows = match control.rows_raw("SHOW MASTER STATUS").await {
        Ok(rows) => rows,
        Err(_) => control.rows("SHOW BINARY LOG STATUS", "reading the source binlog position").await?,
    };
    let row = rows.first().ok_or_else(|| {
        ConnectorError::new(ErrorClass::NeedsOperator, "the source has no binlog (log_bin is OFF)", "")
    })?;
    let file = text_column(row, 0).ok().flatten().unwrap_or_default();
    let offset = text_column(row, 1).ok().flatten().and_then(|p| p.parse().ok()).unwrap_or(0);
    Ok(BinlogPosition { file, offset, gtid: None })
}

/// The position now, with MariaDB's GTID state at it (where a job without a full load starts).
pub async fn master_position_with_gtid(control: &mut Session) -> Result<BinlogPosition, ConnectorError> {
    let mut pos = master_position(control).await?;
    with_gtid(control, &mut pos).await;
    Ok(pos)
}

/// Adds MariaDB's GTID state at `pos` (`BINLOG_GTID_POS`; MySQL has none).
pub async fn with_gtid(control: &mut Session, pos: &mut BinlogPosition) {
    let sql =
        format!("SELECT BINLOG_GTID_POS('{}', {})", pos.file.replace('\\', "\\\\").replace('\'', "''"), pos.offset);
    if let Ok(rows) = control.rows_raw(&sql).await {
        pos.gtid = rows.first().and_then(|r| text_column(r, 0).ok().flatten()).filter(|g| !g.is_empty());
    }
}

/// Whether position `a` is at or after `b` (same server's file names).
pub fn position_at_or_after(a: &BinlogPosition, b: &BinlogPosition) -> bool {
    (a.file.as_str(), a.offset) >= (b.file.as_str(), b.offset)
}

/// The value of a signed MEDIUMINT from the binlog decoder. `mysql_common` reads a signed
/// 24-bit integer (`eat_i24_le`) into the low 3 bytes of a zeroed `i32` without extending its
/// sign, so -1 arrives as 16,777,215. A signed MEDIUMINT holds [-2^23, 2^23); a decoded value in
/// [2^23, 2^24) can only be such a negative value's 24 bits, so subtracting 2^24 restores it;
/// anything else (already negative, should the decoder extend the sign one day) is kept.
pub fn signed_int24(v: i64) -> i64 {
    if (1 << 23..1 << 24).contains(&v) { v - (1 << 24) } else { v }
}

/// The file name of a ROTATE event. The stream's first, artificial ROTATE arrives before the
/// format description, so its name may still carry the 4 checksum bytes: the name is cut after
/// the 6-digit sequence number that follows its last dot. The dot is looked for before the last
/// 4 bytes (a checksum byte may itself be a dot); the sequence number is longer than that.
pub fn binlog_file_name(raw: &[u8]) -> String {
    let head = &raw[..raw.len().saturating_sub(4)];
    let cut = head.iter().rposition(|&b| b == b'.').map_or(raw.len(), |dot| {
        let digits = raw[dot + 1..].iter().take(6).take_while(|b| b.is_ascii_digit()).count();
        dot + 1 + digits
    });
    String::from_utf8_lossy(&raw[..cut]).into_owned()
}

/// A server id for a binlog dump connection, in `[base, base + 1,000,000)`: the source drops an
/// older dump connection that registers with the same id, so every connection of this process
/// gets its own (a counter) and processes differ by their start time.
pub fn dump_server_id(base: u32) -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    base + (nanos / 1000 + n * 7919) % 1_000_000
}

/// Whether the source still has binlog file `file`.
async fn has_binlog(control: &mut Session, file: &str) -> Result<bool, ConnectorError> {
    let rows: Vec<mysql_async::Row> = control.rows("SHOW BINARY LOGS", "listing the source's binlog files").await?;
    Ok(rows.iter().any(|r| text_column(r, 0).ok().flatten().as_deref() == Some(file)))
}

fn gtid_text(state: &GtidState) -> Option<String> {
    (!state.is_empty()).then(|| state.to_string())
}

/// A decoded binlog stream from the source.
pub struct BinlogReader {
    stream: BinlogStream,
    decoder: BinlogDecoder,
}

/// The decoding half of the reader: one event in, what happened out, with the file name and
/// GTID state it tracks. No I/O, so it is what `fuzz/` drives with arbitrary bytes.
#[derive(Debug, Default)]
pub struct BinlogDecoder {
    file: String,
    gtid: GtidState,
    /// The GTID of the event group being read, until it ends.
    group: Option<Gtid>,
    /// The group is a transaction (BEGIN or a non-standalone MariaDB GTID event): a statement
    /// inside it does not end it.
    in_transaction: bool,
}

impl BinlogReader {
    /// Opens a dump stream on the source at `pos`. A position whose file the source no longer
    /// has (purged, another server after a failover, a name damaged by an older dts) opens at
    /// its GTID state instead when it has one: the server finds the position itself (the
    /// stream's first ROTATE names the file). `control` is a session on the source.
    pub async fn open(
        source: &ConnectionSpec,
        control: &mut Session,
        pos: &BinlogPosition,
        server_id: u32,
        doing: &str,
    ) -> Result<BinlogReader, ConnectorError> {
        let opts = crate::connection::opts(source);
        let mut conn = mysql_async::Conn::new(opts).await.map_err(|e| {
            transient(format!("cannot connect to source {}:{} for {doing}", source.host, source.port), e)
        })?;
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(|e| transient("cannot prepare a binlog session", e))?;
        let gtid = pos.gtid.as_deref().map(GtidState::parse).unwrap_or_default();
        let mut file = pos.file.clone();
        let request = if !gtid.is_empty() && !has_binlog(control, &pos.file).await? {
            tracing::info!(gtid = %gtid, file = %pos.file, doing, "the position's binlog file is gone: opening by GTID");
            conn.query_drop(format!("SET @slave_connect_state = '{gtid}', @slave_gtid_strict_mode = 0"))
                .await
                .map_err(|e| transient("cannot set the GTID position of a binlog session", e))?;
            file.clear();
            BinlogStreamRequest::new(server_id).with_pos(4u64)
        } else {
            BinlogStreamRequest::new(server_id).with_filename(pos.file.as_bytes()).with_pos(pos.offset)
        };
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| transient(format!("cannot open the binlog stream for {doing}"), e))?;
        Ok(BinlogReader { stream, decoder: BinlogDecoder { file, gtid, ..Default::default() } })
    }

    /// The time of the stream's format description event: for a stream opened at a file's
    /// offset 4, when the source began that file. `None` when none came within `wait`.
    pub async fn format_description_time(&mut self, wait: Duration) -> Result<Option<u32>, ConnectorError> {
        const FORMAT_DESCRIPTION_EVENT: u8 = 15;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let read = std::panic::AssertUnwindSafe(self.stream.next()).catch_unwind();
            let event = match tokio::time::timeout_at(deadline, read).await {
                Err(_) | Ok(Ok(None)) => return Ok(None),
                Ok(Err(_)) => return Err(fatal("cannot decode a binlog event", "malformed event in the stream")),
                Ok(Ok(Some(Err(e)))) => return Err(transient("the binlog stream from the source failed", e)),
                Ok(Ok(Some(Ok(ev)))) => ev,
            };
            if event.header().event_type_raw() == FORMAT_DESCRIPTION_EVENT {
                return Ok(Some(event.header().timestamp()));
            }
        }
    }

    /// The position after everything read so far (the file and GTID state; the offset of the
    /// last commit is carried by the events themselves).
    pub fn position_at(&self, offset: u64) -> BinlogPosition {
        self.decoder.position_at(offset)
    }

    /// The next event that matters, waiting at most `wait`: `Ok(None)` when the stream was
    /// idle that long. Row events of tables for which `wanted(database, table)` is false are not
    /// decoded. Events that carry nothing (format descriptions, annotations, `BEGIN`) are
    /// skipped.
    pub async fn next(
        &mut self,
        wait: Duration,
        wanted: &(dyn Fn(&str, &str) -> bool + Sync),
    ) -> Result<Option<BinlogEvent>, ConnectorError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // The stream's own parser (mysql_common) panics on some malformed events (found by
            // fuzzing: a truncated TRANSACTION_PAYLOAD event): that is a fatal error of the job,
            // not a crash of the task.
            let read = std::panic::AssertUnwindSafe(self.stream.next()).catch_unwind();
            let event = match tokio::time::timeout_at(deadline, read).await {
                Err(_) => return Ok(None),
                Ok(Err(_)) => return Err(fatal("cannot decode a binlog event", "malformed event in the stream")),
                Ok(Ok(None)) => return Err(transient("the source closed the binlog stream", "end of stream")),
                Ok(Ok(Some(Err(e)))) => return Err(transient("the binlog stream from the source failed", e)),
                Ok(Ok(Some(Ok(ev)))) => ev,
            };
            let stream = &self.stream;
            if let Some(decoded) = self.decoder.decode(&event, &|id| stream.get_tme(id), wanted)? {
                return Ok(Some(decoded));
            }
        }
    }
}

/// Event types [`BinlogDecoder::decode`] parses besides the GTID events: QUERY, ROTATE, XID and
/// the row events (v1 and v2 write/update/delete, MySQL's partial update).
const DECODED_EVENTS: [u8; 10] = [2, 4, 16, 23, 24, 25, 30, 31, 32, 39];

/// The table map of a table id, as the stream remembers them.
pub type TableMaps<'a> = dyn Fn(u64) -> Option<&'a TableMapEvent<'static>> + 'a;

impl BinlogDecoder {
    /// A decoder that starts in `file` with no GTID state.
    pub fn new(file: &str) -> BinlogDecoder {
        BinlogDecoder { file: file.to_string(), ..Default::default() }
    }

    /// The position at `offset` of the current file, with the GTID state read so far.
    pub fn position_at(&self, offset: u64) -> BinlogPosition {
        BinlogPosition { file: self.file.clone(), offset, gtid: gtid_text(&self.gtid) }
    }

    /// Decodes one event: `Ok(None)` for events that carry nothing (format descriptions,
    /// annotations, `BEGIN`, GTID events, which only advance the state). Row events of tables
    /// for which `wanted(database, table)` is false are not decoded. Malformed input is an
    /// error, never a panic (a panic of the parser underneath is caught and made one).
    pub fn decode(
        &mut self,
        event: &Event,
        table_maps: &TableMaps<'_>,
        wanted: &(dyn Fn(&str, &str) -> bool + Sync),
    ) -> Result<Option<BinlogEvent>, ConnectorError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.decode_event(event, table_maps, wanted)))
            .unwrap_or_else(|_| Err(fatal("cannot decode a binlog event", "malformed event")))
    }

    fn decode_event(
        &mut self,
        event: &Event,
        table_maps: &TableMaps<'_>,
        wanted: &(dyn Fn(&str, &str) -> bool + Sync),
    ) -> Result<Option<BinlogEvent>, ConnectorError> {
        let header = event.header();
        let (server_id, timestamp, log_pos) = (header.server_id(), header.timestamp(), u64::from(header.log_pos()));
        match header.event_type_raw() {
            gtid::MARIADB_GTID_EVENT => {
                let announced = Gtid::from_mariadb_event(event.data(), server_id);
                if let Some((gtid, _)) = &announced {
                    self.gtid.apply(gtid);
                }
                self.in_transaction = announced.as_ref().is_some_and(|(_, standalone)| !standalone);
                self.group = announced.map(|(gtid, _)| gtid);
                return Ok(None);
            }
            gtid::MYSQL_GTID_EVENT | gtid::MYSQL_TAGGED_GTID_EVENT => {
                // A GTID event that does not parse leaves its transaction without a GTID rather
                // than failing a stream that does not need it.
                self.group = match event.read_data() {
                    Ok(Some(EventData::GtidEvent(g))) => {
                        Some(Gtid::MySql { sid: g.sid(), tag: g.tag().map(|t| t.as_str().to_string()), gno: g.gno() })
                    }
                    _ => None,
                };
                self.in_transaction = false;
                return Ok(None);
            }
            gtid::MYSQL_ANONYMOUS_GTID_EVENT => {
                (self.group, self.in_transaction) = (None, false);
                return Ok(None);
            }
            _ => {}
        }
        // Only the events dts acts on are parsed: parsing others costs time and, for some types,
        // trusts lengths in the event (a PREVIOUS_GTIDS event with a huge count made the parser
        // allocate petabytes: found by fuzzing).
        if !DECODED_EVENTS.contains(&header.event_type_raw()) {
            return Ok(None);
        }
        let data = event.read_data().map_err(|e| fatal("cannot decode a binlog event", e))?;
        match data {
            // ROTATE: a real one ends a file; an artificial one (log_pos 0) starts the stream
            // or moves to the next file after one that ended without a rotate (a crash).
            Some(EventData::RotateEvent(r)) => {
                let name = binlog_file_name(r.name_raw());
                if log_pos != 0 || name != self.file {
                    self.file = name;
                    return Ok(Some(BinlogEvent::Rotate { position: self.position_at(r.position()) }));
                }
                Ok(None)
            }
            Some(EventData::RowsEvent(rows)) => {
                let Some(tme) = table_maps(rows.table_id()) else {
                    return Err(fatal("a row event without its table map", rows.table_id()));
                };
                let (database, table) = (tme.database_name().into_owned(), tme.table_name().into_owned());
                if !wanted(&database, &table) {
                    return Ok(Some(BinlogEvent::SkippedRows { server_id }));
                }
                let fk_checks = !rows.flags().contains(RowsEventFlags::NO_FOREIGN_KEY_CHECKS);
                let mut changes = Vec::new();
                for row in rows.rows(tme) {
                    let (before, after) = row.map_err(|e| fatal("cannot decode a binlog row", e))?;
                    let before = before.map(|r| r.unwrap().into_iter().map(Some).collect::<Vec<_>>());
                    let after = after.map(|r| r.unwrap().into_iter().map(Some).collect::<Vec<_>>());
                    changes.push(match (&rows, before, after) {
                        (RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_), _, Some(a)) => {
                            RowChange::Insert(a)
                        }
                        (RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_), Some(b), _) => {
                            RowChange::Delete(b)
                        }
                        (_, Some(b), Some(a)) => RowChange::Update { before: b, after: a },
                        _ => continue,
                    });
                }
                let position = self.position_at(log_pos);
                let gtid = self.group.clone();
                Ok(Some(BinlogEvent::Rows {
                    database,
                    table,
                    position,
                    fk_checks,
                    server_id,
                    timestamp,
                    changes,
                    gtid,
                }))
            }
            Some(EventData::XidEvent(_)) => {
                let gtid = self.end_group();
                Ok(Some(BinlogEvent::Commit { position: self.position_at(log_pos), server_id, timestamp, gtid }))
            }
            Some(EventData::QueryEvent(q)) => {
                let sql = q.query_raw();
                let trimmed = sql.trim_ascii();
                if trimmed.eq_ignore_ascii_case(b"BEGIN") {
                    self.in_transaction = true;
                    return Ok(None);
                }
                let position = self.position_at(log_pos);
                if trimmed.eq_ignore_ascii_case(b"COMMIT") {
                    let gtid = self.end_group();
                    return Ok(Some(BinlogEvent::Commit { position, server_id, timestamp, gtid }));
                }
                // A statement ends its group unless the group is a transaction it is part of.
                let gtid = if self.in_transaction && !trimmed.eq_ignore_ascii_case(b"ROLLBACK") {
                    self.group.clone()
                } else {
                    self.end_group()
                };
                let mut session = StatementSession::default();
                for var in q.status_vars().iter() {
                    match var.get_value() {
                        Ok(StatusVarVal::SqlMode(mode)) => session.sql_mode = Some(mode.0),
                        Ok(StatusVarVal::Charset { charset_client, collation_connection, collation_server }) => {
                            session.charset = Some((charset_client, collation_connection, collation_server))
                        }
                        _ => {}
                    }
                }
                Ok(Some(BinlogEvent::Statement {
                    schema: q.schema().into_owned(),
                    sql: trimmed.to_vec(),
                    session,
                    position,
                    server_id,
                    timestamp,
                    gtid,
                }))
            }
            _ => Ok(None),
        }
    }

    /// The GTID of the event group that ends here; events after it have none until the next
    /// GTID event.
    fn end_group(&mut self) -> Option<Gtid> {
        self.in_transaction = false;
        self.group.take()
    }
}

/// Decodes a raw event stream (the bytes of a binlog file after its magic number, or events as
/// a dump connection delivers them without their packet headers) with a fresh reader and
/// [`BinlogDecoder`], every table wanted: the events decoded, and the error that ended the
/// stream early if one did. Used by `fuzz/` (any input ends in an error, never a panic) and by
/// tests.
pub fn decode_stream(mut data: &[u8]) -> (Vec<BinlogEvent>, Option<String>) {
    use mysql_common::binlog::{EventStreamReader, consts::BinlogVersion};
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut decoder = BinlogDecoder::new("");
    let mut out = Vec::new();
    loop {
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.read(&mut data)));
        let event = match read {
            Ok(Ok(Some(event))) => event,
            Ok(Ok(None)) => return (out, None),
            Ok(Err(e)) => return (out, Some(e.to_string())),
            Err(_) => return (out, Some("malformed event".into())),
        };
        match decoder.decode(&event, &|id| reader.get_tme(id), &|_, _| true) {
            Ok(Some(decoded)) => out.push(decoded),
            Ok(None) => {}
            Err(e) => return (out, Some(e.summary)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v4 event: 19-byte header (timestamp, type, server id, size, next position, flags),
    /// then the body.
    fn event(kind: u8, body: &[u8], log_pos: u32) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        e.push(kind);
        e.extend_from_slice(&7u32.to_le_bytes());
        e.extend_from_slice(&(19 + body.len() as u32).to_le_bytes());
        e.extend_from_slice(&log_pos.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        e
    }

    #[test]
    fn malformed_events_of_every_kind_are_errors_not_panics() {
        // A deterministic stream of events of every type with random bodies and lengths (the
        // regression form of fuzz/fuzz_targets/binlog_events.rs).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut stream = Vec::new();
            for _ in 0..(next() % 4 + 1) {
                let kind = (next() % 180) as u8;
                let len = (next() % 64) as usize;
                let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                stream.extend(event(kind, &body, (next() % 10_000) as u32));
            }
            let _ = decode_stream(&stream);
        }
    }

    #[test]
    fn a_stream_of_a_rotate_a_query_and_a_commit_decodes_with_positions() {
        let mut rotate = 4u64.to_le_bytes().to_vec();
        rotate.extend_from_slice(b"binlog.000002");
        let mut stream = event(4, &rotate, 0);
        stream.extend(event(2, &query("DROP TABLE t"), 200));
        stream.extend(event(2, &query("COMMIT"), 300));
        let (events, error) = decode_stream(&stream);
        assert_eq!(error, None);
        assert!(matches!(&events[0], BinlogEvent::Rotate { position } if position.file == "binlog.000002"));
        assert!(
            matches!(&events[1], BinlogEvent::Statement { schema, sql, position, .. } if schema == "app" && sql == b"DROP TABLE t" && position.offset == 200)
        );
        assert!(matches!(&events[2], BinlogEvent::Commit { position, .. } if position.offset == 300));
    }

    /// A QUERY event body: `sql` run in database `app`.
    fn query(sql: &str) -> Vec<u8> {
        let mut q = Vec::new();
        q.extend_from_slice(&1u32.to_le_bytes()); // thread id
        q.extend_from_slice(&0u32.to_le_bytes()); // execution time
        q.push(3); // schema length
        q.extend_from_slice(&0u16.to_le_bytes()); // error code
        q.extend_from_slice(&0u16.to_le_bytes()); // status vars length
        q.extend_from_slice(b"app\0");
        q.extend_from_slice(sql.as_bytes());
        q
    }

    /// A MariaDB GTID event body: sequence number, domain, flags, padding.
    fn mariadb_gtid(seq: u64, domain: u32, standalone: bool) -> Vec<u8> {
        let mut g = seq.to_le_bytes().to_vec();
        g.extend_from_slice(&domain.to_le_bytes());
        g.push(u8::from(standalone));
        g.extend_from_slice(&[0; 6]);
        g
    }

    /// A MySQL 5.7+ GTID event body (flags, server UUID, number, logical timestamps).
    fn mysql_gtid(sid: [u8; 16], gno: u64) -> Vec<u8> {
        let mut g = vec![1];
        g.extend_from_slice(&sid);
        g.extend_from_slice(&gno.to_le_bytes());
        g.push(2);
        g.extend_from_slice(&[0; 16]);
        g
    }

    /// `(what, GTID)` of each decoded event.
    fn gtids(stream: &[u8]) -> Vec<(String, Option<String>)> {
        let (events, error) = decode_stream(stream);
        assert_eq!(error, None);
        events
            .iter()
            .map(|e| match e {
                BinlogEvent::Statement { sql, gtid, .. } => (String::from_utf8_lossy(sql).into_owned(), gtid.clone()),
                BinlogEvent::Commit { gtid, .. } => ("commit".to_string(), gtid.clone()),
                BinlogEvent::Rows { gtid, .. } => ("rows".to_string(), gtid.clone()),
                other => (format!("{other:?}"), None),
            })
            .map(|(what, gtid)| (what, gtid.map(|g| g.to_string())))
            .collect()
    }

    #[test]
    fn every_event_of_a_mariadb_event_group_carries_its_gtid_and_what_follows_its_end_none() {
        let mut stream = event(162, &mariadb_gtid(41, 0, true), 100);
        stream.extend(event(2, &query("CREATE TABLE t (a INT)"), 200));
        stream.extend(event(2, &query("DROP TABLE u"), 250));
        stream.extend(event(162, &mariadb_gtid(42, 0, false), 300));
        stream.extend(event(2, &query("INSERT INTO t VALUES (1)"), 400));
        stream.extend(event(2, &query("COMMIT"), 500));
        stream.extend(event(162, &mariadb_gtid(9, 2, false), 600));
        stream.extend(event(2, &query("ROLLBACK"), 700));
        let some = |s: &str, g: Option<&str>| (s.to_string(), g.map(str::to_string));
        assert_eq!(
            gtids(&stream),
            [
                some("CREATE TABLE t (a INT)", Some("0-7-41")),
                some("DROP TABLE u", None),
                some("INSERT INTO t VALUES (1)", Some("0-7-42")),
                some("commit", Some("0-7-42")),
                some("ROLLBACK", Some("2-7-9")),
            ]
        );
    }

    #[test]
    fn a_mysql_transaction_carries_its_uuid_gtid_and_an_anonymous_one_none() {
        let sid: [u8; 16] = core::array::from_fn(|i| i as u8 + 0xa0);
        let mut stream = event(33, &mysql_gtid(sid, 5), 100);
        stream.extend(event(2, &query("BEGIN"), 200));
        stream.extend(event(2, &query("INSERT INTO t VALUES (1)"), 300));
        stream.extend(event(2, &query("COMMIT"), 400));
        stream.extend(event(33, &mysql_gtid(sid, 6), 500));
        stream.extend(event(2, &query("ALTER TABLE t ADD b INT"), 600));
        stream.extend(event(2, &query("INSERT INTO t VALUES (2)"), 650));
        stream.extend(event(34, &mysql_gtid([0; 16], 0), 700));
        stream.extend(event(2, &query("BEGIN"), 800));
        stream.extend(event(2, &query("COMMIT"), 900));
        let uuid = "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf";
        let some = |s: &str, g: Option<String>| (s.to_string(), g);
        assert_eq!(
            gtids(&stream),
            [
                some("INSERT INTO t VALUES (1)", Some(format!("{uuid}:5"))),
                some("commit", Some(format!("{uuid}:5"))),
                some("ALTER TABLE t ADD b INT", Some(format!("{uuid}:6"))),
                some("INSERT INTO t VALUES (2)", None),
                some("commit", None),
            ]
        );
    }

    #[test]
    fn rotate_names_lose_trailing_checksum_bytes() {
        assert_eq!(binlog_file_name(b"binlog.000002"), "binlog.000002");
        assert_eq!(binlog_file_name(b"binlog.000001\x12\x34\x56\x78"), "binlog.000001");
        assert_eq!(binlog_file_name(b"mysql-bin.000010789a"), "mysql-bin.000010");
        // A checksum byte that is a dot.
        assert_eq!(binlog_file_name(b"binlog.000001\x12\x2e\x56\x78"), "binlog.000001");
        assert_eq!(binlog_file_name(b"binlog.000001\x2e\x31\x32\x33"), "binlog.000001");
        assert_eq!(binlog_file_name(b"my.bin.000003"), "my.bin.000003");
    }

    #[test]
    fn positions_compare_by_file_then_offset() {
        let p = |f: &str, o| BinlogPosition { file: f.into(), offset: o, gtid: None };
        assert!(position_at_or_after(&p("b.000002", 4), &p("b.000001", 900)));
        assert!(position_at_or_after(&p("b.000001", 900), &p("b.000001", 900)));
        assert!(!position_at_or_after(&p("b.000001", 899), &p("b.000001", 900)));
    }
}
