//! From change events to bus messages: one [`Encoder`] per subscription, fed the source's
//! events in order, producing messages in either [`Format`] with stable ids.
//!
//! Ids come from the events' positions alone ([`crate::id`]). Besides them the encoder keeps
//! only per-transaction state: for an event with a transaction id (its source transaction's
//! GTID), Debezium's `transaction` block (`id`, `total_order` counting the transaction's row
//! messages from 1, `data_collection_order` counting them per table) and the transaction's first
//! position (Alibaba's `safeSourcePosition`). The state starts over when an event of another
//! transaction comes, and when an event of the same one is not after the last one seen (same
//! binlog file, larger offset, or the same offset and a larger index): the stream re-read the
//! transaction from its start, as a reader re-opened at a checkpoint does (checkpoints are
//! transaction boundaries) while the bus channel and this encoder live on, for instance after a
//! source error in a transaction published in several batches. So a transaction published in
//! parts is numbered on across its batches, and one read again is numbered as the first time
//! (with the same selection: the counts are over the events the encoder is given).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dts_core::Position;
use dts_core::change::{ChangeEvent, ChangeKind, ColumnInfo, RowChange, RowOp, UniqueKey, Value};

use crate::alibaba;
use crate::debezium;
use crate::error::BusError;
use crate::id::MessageIds;
use crate::message::{Message, MessageKind};
use crate::naming::Route;

/// The wire format of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Debezium-compatible JSON (the default).
    #[default]
    DebeziumJson,
    /// Alibaba's Avro `com.alibaba.dts.formats.avro.Record`.
    AlibabaAvro,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DebeziumJson => "debezium-json",
            Self::AlibabaAvro => "alibaba-avro",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "debezium-json" | "json" => Some(Self::DebeziumJson),
            "alibaba-avro" | "avro" => Some(Self::AlibabaAvro),
            _ => None,
        }
    }
}

/// How a subscription's events are encoded.
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    pub format: Format,
    /// The first part of every message id: the subscription's job id, stable for its life.
    pub source_id: String,
    /// Debezium `source.name` (the logical server name, Debezium's `topic.prefix`).
    pub server_name: String,
    /// Debezium `source.version`: the producer's version.
    pub connector_version: String,
    /// Alibaba `source.version`: the source server's version (`10.11.19-MariaDB`).
    pub source_version: String,
    /// Debezium: a tombstone (same key, no value) after each delete.
    pub tombstones: bool,
    /// Debezium: the `transaction` block on row events of transactions with an id.
    pub transaction_metadata: bool,
}

impl EncoderOptions {
    pub fn new(format: Format, source_id: impl Into<String>) -> Self {
        let source_id = source_id.into();
        Self {
            format,
            server_name: source_id.clone(),
            source_id,
            connector_version: concat!("dts-", env!("CARGO_PKG_VERSION")).into(),
            source_version: String::new(),
            tombstones: true,
            transaction_metadata: true,
        }
    }
}

#[derive(Debug, Default)]
struct TransactionState {
    id: Option<String>,
    start: Option<Position>,
    /// The binlog offset and index of the transaction's last event seen.
    last: Option<(u64, u32)>,
    total: u64,
    per_table: HashMap<(String, String), u64>,
}

impl TransactionState {
    fn new(ev: &ChangeEvent) -> Self {
        Self { id: ev.transaction.clone(), start: Some(ev.position.clone()), ..Default::default() }
    }

    /// Whether `ev` continues this transaction: the same id and, for binlog positions, later in
    /// the transaction's file than its last event seen (an event at or before it is the
    /// transaction read again from its start).
    fn continued_by(&self, ev: &ChangeEvent) -> bool {
        if ev.transaction != self.id {
            return false;
        }
        match (&ev.position, &self.start, self.last) {
            (Position::Binlog(p), Some(Position::Binlog(start)), Some(last)) => {
                p.file == start.file && (p.offset, ev.index) > last
            }
            _ => true,
        }
    }
}

/// `pk_uk_info` of the last table seen (tables share their column and key lists between
/// events, so a pointer comparison finds it).
type KeyInfoCache = Option<(Arc<[ColumnInfo]>, Arc<[UniqueKey]>, String)>;

/// Encodes one subscription's change events, in source order.
#[derive(Debug)]
pub struct Encoder {
    options: EncoderOptions,
    ids: MessageIds,
    tx: TransactionState,
    key_info: KeyInfoCache,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn key_changed(row: &RowChange) -> bool {
    match (&row.before, &row.after) {
        (Some(b), Some(a)) => row.columns.iter().zip(b.iter().zip(a)).any(|(c, (x, y))| c.key && x != y),
        _ => false,
    }
}

impl Encoder {
    pub fn new(options: EncoderOptions) -> Self {
        let ids = MessageIds::new(options.source_id.clone());
        Self { options, ids, tx: TransactionState::default(), key_info: None }
    }

    pub fn options(&self) -> &EncoderOptions {
        &self.options
    }

    fn track_transaction(&mut self, ev: &ChangeEvent) {
        if ev.transaction.is_some() {
            if !self.tx.continued_by(ev) {
                self.tx = TransactionState::new(ev);
            }
            if let Position::Binlog(p) = &ev.position {
                self.tx.last = Some((p.offset, ev.index));
            }
        } else {
            match ev.kind {
                ChangeKind::Begin => {
                    self.tx = TransactionState { start: Some(ev.position.clone()), ..Default::default() };
                }
                ChangeKind::Heartbeat => {}
                _ if self.tx.id.is_some() => self.tx = TransactionState::default(),
                _ => {}
            }
        }
    }

    /// Encodes one event into zero or more messages appended to `out` (Debezium writes no
    /// message for BEGIN/COMMIT; a delete may add a tombstone; a key change two messages).
    pub fn encode(&mut self, ev: &ChangeEvent, out: &mut Vec<Message>) -> Result<(), BusError> {
        let id = self.ids.id(ev);
        self.track_transaction(ev);
        match self.options.format {
            Format::DebeziumJson => self.encode_debezium(id, ev, out),
            Format::AlibabaAvro => self.encode_alibaba(id, ev, out),
        }
    }

    fn encode_debezium(&mut self, id: String, ev: &ChangeEvent, out: &mut Vec<Message>) -> Result<(), BusError> {
        let o = &self.options;
        let mut cx = debezium::Context {
            server_name: &o.server_name,
            version: &o.connector_version,
            now_ms: now_ms(),
            transaction: None,
        };
        let ts = ev.timestamp_ms;
        match &ev.kind {
            ChangeKind::Begin | ChangeKind::Commit => {}
            ChangeKind::Heartbeat => {
                let (value, key) = debezium::heartbeat(&cx, ev);
                out.push(Message {
                    id,
                    route: Route::Heartbeat,
                    kind: MessageKind::Heartbeat,
                    key: Some(key.into()),
                    payload: Some(value.into()),
                    source_ts_ms: ts,
                });
            }
            ChangeKind::Ddl { database, statement } => {
                let (value, key) = debezium::ddl(&cx, ev, database, statement);
                out.push(Message {
                    id,
                    route: Route::Ddl { database: database.clone() },
                    kind: MessageKind::Ddl,
                    key: Some(key.into()),
                    payload: Some(value.into()),
                    source_ts_ms: ts,
                });
            }
            ChangeKind::Truncate { database, table } => {
                let value = debezium::truncate_value(&cx, ev, database, table);
                out.push(Message {
                    id,
                    route: Route::Table { database: database.clone(), table: table.clone() },
                    kind: MessageKind::Truncate,
                    key: None,
                    payload: Some(value.into()),
                    source_ts_ms: ts,
                });
            }
            ChangeKind::Row(row) => {
                if o.transaction_metadata
                    && let Some(tx) = &self.tx.id
                {
                    self.tx.total += 1;
                    let n = self.tx.per_table.entry((row.database.clone(), row.table.clone())).or_insert(0);
                    *n += 1;
                    cx.transaction = Some((tx.as_str(), self.tx.total, *n));
                }
                let route = Route::Table { database: row.database.clone(), table: row.table.clone() };
                let image_key = |values: &Option<Vec<Value>>| -> Result<Option<Bytes>, BusError> {
                    match values {
                        Some(v) => Ok(debezium::key(&row.columns, v)?.map(Bytes::from)),
                        None => Ok(None),
                    }
                };
                let msg = |id: String, kind, key: Option<Bytes>, payload: Option<Vec<u8>>| Message {
                    id,
                    route: route.clone(),
                    kind,
                    key,
                    payload: payload.map(Bytes::from),
                    source_ts_ms: ts,
                };
                match row.op {
                    RowOp::Insert | RowOp::Read => {
                        let (op, kind) =
                            if row.op == RowOp::Read { (b'r', MessageKind::Read) } else { (b'c', MessageKind::Insert) };
                        let value = debezium::row_value(&cx, ev, row, op, None, row.after.as_deref())?;
                        out.push(msg(id, kind, image_key(&row.after)?, Some(value)));
                    }
                    RowOp::Update if key_changed(row) => {
                        let old_key = image_key(&row.before)?;
                        let delete = debezium::row_value(&cx, ev, row, b'd', row.before.as_deref(), None)?;
                        out.push(msg(format!("{id}:d"), MessageKind::Delete, old_key.clone(), Some(delete)));
                        if o.tombstones {
                            out.push(msg(format!("{id}:t"), MessageKind::Tombstone, old_key, None));
                        }
                        let create = debezium::row_value(&cx, ev, row, b'c', None, row.after.as_deref())?;
                        out.push(msg(format!("{id}:c"), MessageKind::Insert, image_key(&row.after)?, Some(create)));
                    }
                    RowOp::Update => {
                        let value =
                            debezium::row_value(&cx, ev, row, b'u', row.before.as_deref(), row.after.as_deref())?;
                        out.push(msg(id, MessageKind::Update, image_key(&row.after)?, Some(value)));
                    }
                    RowOp::Delete => {
                        let key = image_key(&row.before)?;
                        let value = debezium::row_value(&cx, ev, row, b'd', row.before.as_deref(), None)?;
                        let tombstone = o.tombstones && key.is_some();
                        let tomb_id = format!("{id}:t");
                        out.push(msg(id, MessageKind::Delete, key.clone(), Some(value)));
                        if tombstone {
                            out.push(msg(tomb_id, MessageKind::Tombstone, key, None));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn encode_alibaba(&mut self, id: String, ev: &ChangeEvent, out: &mut Vec<Message>) -> Result<(), BusError> {
        if let ChangeKind::Row(row) = &ev.kind {
            let cached = self
                .key_info
                .as_ref()
                .is_some_and(|(c, u, _)| Arc::ptr_eq(c, &row.columns) && Arc::ptr_eq(u, &row.unique_keys));
            if !cached {
                self.key_info = Some((row.columns.clone(), row.unique_keys.clone(), alibaba::pk_uk_info(row)));
            }
        }
        let key_info = self.key_info.as_ref().map_or("", |k| k.2.as_str());
        let cx = alibaba::Context {
            id: &id,
            source_version: &self.options.source_version,
            transaction_start: self.tx.start.as_ref(),
        };
        let ts = ev.timestamp_ms;
        let (route, kind, key, payload) = match &ev.kind {
            ChangeKind::Begin => (
                Route::Transaction,
                MessageKind::Begin,
                None,
                alibaba::control_record(&cx, ev, alibaba::Operation::Begin, None, None),
            ),
            ChangeKind::Commit => (
                Route::Transaction,
                MessageKind::Commit,
                None,
                alibaba::control_record(&cx, ev, alibaba::Operation::Commit, None, None),
            ),
            ChangeKind::Heartbeat => (
                Route::Heartbeat,
                MessageKind::Heartbeat,
                None,
                alibaba::control_record(&cx, ev, alibaba::Operation::Heartbeat, None, None),
            ),
            ChangeKind::Ddl { database, statement } => (
                Route::Ddl { database: database.clone() },
                MessageKind::Ddl,
                None,
                alibaba::control_record(&cx, ev, alibaba::Operation::Ddl, Some(database), Some(statement)),
            ),
            ChangeKind::Truncate { database, table } => {
                let statement =
                    format!("TRUNCATE TABLE `{}`.`{}`", database.replace('`', "``"), table.replace('`', "``"));
                (
                    Route::Table { database: database.clone(), table: table.clone() },
                    MessageKind::Truncate,
                    None,
                    alibaba::control_record(&cx, ev, alibaba::Operation::Ddl, Some(database), Some(&statement)),
                )
            }
            ChangeKind::Row(row) => {
                let (op, kind, image) = match row.op {
                    RowOp::Insert => (alibaba::Operation::Insert, MessageKind::Insert, &row.after),
                    RowOp::Read => (alibaba::Operation::Insert, MessageKind::Read, &row.after),
                    RowOp::Update => (alibaba::Operation::Update, MessageKind::Update, &row.after),
                    RowOp::Delete => (alibaba::Operation::Delete, MessageKind::Delete, &row.before),
                };
                let key = match image {
                    Some(values) => debezium::key(&row.columns, values)?.map(Bytes::from),
                    None => None,
                };
                let route = Route::Table { database: row.database.clone(), table: row.table.clone() };
                (route, kind, key, alibaba::row_record(&cx, ev, row, op, key_info)?)
            }
        };
        out.push(Message { id, route, kind, key, payload: Some(payload.into()), source_ts_ms: ts });
        Ok(())
    }
}
