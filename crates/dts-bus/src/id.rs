//! Message ids: one stable id per change event, derived from where the event is in the source's
//! log, so that an event read again after a restart gets the id it had the first time. The
//! bus (NATS `Nats-Msg-Id`) or the consumer (Kafka: the `dts-id` header) drops a message whose
//! id it has seen.
//!
//! The scheme, for a source id `S` (the subscription's job id):
//!
//! * a change: `S:<binlog file>:<offset>:<index>` (the row event's position and the row's index
//!   in it; a commit's or statement's position, index 0), or `S:<position>:<index>` for other
//!   families' positions;
//! * a heartbeat: `S:hb:<timestamp ms>`.
//!
//! Messages beyond the first made from one event (the tombstone after a delete, the delete and
//! create of a primary-key change) append `:t`, `:d`, `:c`.
//!
//! Why it is stable: an event's position and index are where the source logged it, the same
//! however often and from wherever it is read on that server, and unique (positions increase
//! along the log; rows of one row event differ by index). Nothing else goes in: no count of
//! events, so neither where a reader resumed, nor how a transaction was split into batches, nor
//! which events the subscription's filters left out (the stream's object selection, the sink's
//! DDL/DML choice) changes an id.
//!
//! Why not the transaction's GTID (`S:G:n`, `n` counting the transaction's events), although
//! every event carries it ([`ChangeEvent::transaction`]) and it would survive a failover to a
//! replica that logs the same GTIDs, where file names and offsets differ: `n` counts the events
//! the encoder is given, after both filters, and that is not stable.
//!
//! * A changed selection takes effect at a transaction boundary while the process runs, but a
//!   transaction already being published in several batches is finished with the old one; if
//!   the process stops before that transaction's end is checkpointed, it is read again with the
//!   new selection and its events are counted differently. A table added to the selection then
//!   gives its rows the numbers other rows had the first time (`S:G:0` for a row that was never
//!   sent): the bus drops them as duplicates, and they are lost. File ids cannot collide so.
//! * A source error in the middle of a transaction published in parts re-opens the stream at
//!   the checkpoint before it while the bus channel, and its count, lives on; the count would
//!   have to notice the re-read to restart at 0.
//!
//! The cost of file ids: after a failover to another server (a reader that resumes by GTID
//! because its file is gone), events after the last checkpoint are published again under the
//! other server's file names, so a de-duplicating consumer may see up to a batch of them twice.
//! Delivery stays at least once, as Alibaba's and Tencent's are; nothing is lost. The GTID
//! itself is in every message for consumers that de-duplicate by transaction (Debezium
//! `source.gtid` and `transaction.id`, Alibaba `sourceTxid`).
//!
//! Before GTIDs were filled in for MariaDB sources, no event had one and every id was a file id,
//! so ids did not change with it.

use std::fmt::Write as _;

use dts_core::Position;
use dts_core::change::{ChangeEvent, ChangeKind};

/// Assigns message ids to events.
#[derive(Debug, Clone)]
pub struct MessageIds {
    source: String,
}

impl MessageIds {
    pub fn new(source_id: impl Into<String>) -> Self {
        Self { source: source_id.into() }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The id of an event.
    pub fn id(&self, event: &ChangeEvent) -> String {
        let mut id = String::with_capacity(self.source.len() + 48);
        id.push_str(&self.source);
        if matches!(event.kind, ChangeKind::Heartbeat) {
            let _ = write!(id, ":hb:{}", event.timestamp_ms);
            return id;
        }
        match &event.position {
            Position::Binlog(p) => {
                let _ = write!(id, ":{}:{}:{}", p.file, p.offset, event.index);
            }
            other => {
                let _ = write!(id, ":{other}:{}", event.index);
            }
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use dts_core::BinlogPosition;

    use super::*;

    fn ev(offset: u64, index: u32, tx: Option<&str>, kind: ChangeKind) -> ChangeEvent {
        ChangeEvent {
            position: Position::Binlog(BinlogPosition { file: "bin.000003".into(), offset, gtid: None }),
            index,
            timestamp_ms: 1_700_000_000_000,
            server_id: 1,
            transaction: tx.map(str::to_string),
            kind,
        }
    }

    fn stream() -> Vec<ChangeEvent> {
        vec![
            ev(100, 0, Some("0-1-7"), ChangeKind::Begin),
            ev(150, 0, Some("0-1-7"), ChangeKind::Commit),
            ev(300, 0, Some("0-1-8"), ChangeKind::Begin),
            ev(350, 0, Some("0-1-8"), ChangeKind::Ddl { database: "d".into(), statement: "DROP TABLE t".into() }),
            ev(400, 0, Some("0-1-8"), ChangeKind::Commit),
            ev(500, 0, None, ChangeKind::Begin),
            ev(600, 1, None, ChangeKind::Commit),
            ev(600, 1, None, ChangeKind::Heartbeat),
        ]
    }

    #[test]
    fn ids_are_the_events_file_positions_with_or_without_a_gtid() {
        let ids = MessageIds::new("job1");
        let got: Vec<String> = stream().iter().map(|e| ids.id(e)).collect();
        assert_eq!(
            got,
            [
                "job1:bin.000003:100:0",
                "job1:bin.000003:150:0",
                "job1:bin.000003:300:0",
                "job1:bin.000003:350:0",
                "job1:bin.000003:400:0",
                "job1:bin.000003:500:0",
                "job1:bin.000003:600:1",
                "job1:hb:1700000000000"
            ]
        );
    }

    #[test]
    fn an_events_id_is_the_same_whichever_events_of_its_transaction_were_read_before_it() {
        let events = stream();
        let ids = MessageIds::new("job1");
        let all: Vec<String> = events.iter().map(|e| ids.id(e)).collect();
        // A restart in the middle of the second transaction, and a reading of it with its DDL
        // left out (a changed selection): the events read get the ids they had.
        let mid: Vec<String> = events[3..].iter().map(|e| ids.id(e)).collect();
        assert_eq!(mid, all[3..]);
        let filtered: Vec<String> = [&events[2], &events[4]].iter().map(|e| ids.id(e)).collect();
        assert_eq!(filtered, [all[2].clone(), all[4].clone()]);
    }
}
