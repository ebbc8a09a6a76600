//! An encoded change event as the bus carries it: id, route (subject), key, payload and the
//! source time, independent of which bus publishes it.

use bytes::Bytes;

use crate::naming::Route;

/// What a message says happened; consumers see it as the `dts-kind` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Insert,
    Update,
    Delete,
    /// A row read by a snapshot.
    Read,
    /// The empty value after a delete (Debezium format), for log compaction.
    Tombstone,
    Truncate,
    Ddl,
    Begin,
    Commit,
    Heartbeat,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Read => "read",
            Self::Tombstone => "tombstone",
            Self::Truncate => "truncate",
            Self::Ddl => "ddl",
            Self::Begin => "begin",
            Self::Commit => "commit",
            Self::Heartbeat => "heartbeat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Insert,
            Self::Update,
            Self::Delete,
            Self::Read,
            Self::Tombstone,
            Self::Truncate,
            Self::Ddl,
            Self::Begin,
            Self::Commit,
            Self::Heartbeat,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One message ready for the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The stable message id ([`crate::id`]).
    pub id: String,
    pub route: Route,
    pub kind: MessageKind,
    /// The record key: JSON of the primary-key columns for row messages (Debezium's key), the
    /// database for DDL; `None` for keyless tables and table-wide events.
    pub key: Option<Bytes>,
    /// The encoded event; `None` for a tombstone.
    pub payload: Option<Bytes>,
    /// Source commit time of the event, ms since the Unix epoch.
    pub source_ts_ms: i64,
}

/// Header names the publishers set and the consumers read.
pub mod header {
    /// The message id (Kafka; NATS carries it as `Nats-Msg-Id`).
    pub const ID: &str = "dts-id";
    /// Source commit time, ms since the Unix epoch, decimal.
    pub const SOURCE_TS: &str = "dts-source-ts";
    /// [`super::MessageKind::as_str`].
    pub const KIND: &str = "dts-kind";
    /// The record key (NATS only; Kafka has a key field).
    pub const KEY: &str = "dts-key";
    /// `debezium-json` or `alibaba-avro` (Kafka; on NATS the stream's description says it).
    pub const FORMAT: &str = "dts-format";
}
