//! Message ids: one stable id per change event, derived from where the event is in the source's
//! log, so that an event read again after a restart gets the id it had the first time. The
//! bus (NATS `Nats-Msg-Id`) or the consumer (Kafka: the `dts-id` header) drops a message whose
//! id it has seen.
//!
//! The scheme, for a source id `S` (the subscription's job id):
//!
//! * an event of a source transaction with a GTID `G` (every event of it, BEGIN, rows, COMMIT;
//!   a DDL is its own transaction): `S:G:n`, `n` counting the transaction's events from 0;
//! * any other event: `S:<binlog file>:<offset>:<index>` (the row event's position and the
//!   row's index in it), or `S:<position>:<index>` for other families' positions;
//! * a heartbeat: `S:hb:<timestamp ms>`.
//!
//! Messages beyond the first made from one event (the tombstone after a delete, the delete and
//! create of a primary-key change) append `:t`, `:d`, `:c`.
//!
//! Why it is stable: a MySQL-family binlog can only be resumed at a transaction boundary (a
//! rows event needs its table map, which precedes it in the same transaction), so a reader
//! restarted from any checkpoint hands the encoder each transaction whole again from its first
//! event, and `n` repeats. The GTID form also survives a failover to a replica that logs the same
//! GTIDs, where file names and offsets differ; the file form is used only where the source logs
//! no GTID, and is stable for a restart on the same server. The count `n` is over the events the
//! encoder is given: the subscription's object filter must be the same when a transaction is read
//! again (a changed selection takes effect at a transaction boundary).

use std::fmt::Write as _;

use dts_core::Position;
use dts_core::change::{ChangeEvent, ChangeKind};

/// Assigns message ids to a stream of events, in source order.
#[derive(Debug, Clone)]
pub struct MessageIds {
    source: String,
    transaction: Option<String>,
    ordinal: u32,
}

impl MessageIds {
    pub fn new(source_id: impl Into<String>) -> Self {
        Self { source: source_id.into(), transaction: None, ordinal: 0 }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The id of the next event (events must be given in source order, each once).
    pub fn next(&mut self, event: &ChangeEvent) -> String {
        let mut id = String::with_capacity(self.source.len() + 48);
        id.push_str(&self.source);
        if matches!(event.kind, ChangeKind::Heartbeat) {
            let _ = write!(id, ":hb:{}", event.timestamp_ms);
            return id;
        }
        if let Some(tx) = &event.transaction {
            if self.transaction.as_deref() == Some(tx.as_str()) {
                self.ordinal += 1;
            } else {
                self.transaction = Some(tx.clone());
                self.ordinal = 0;
            }
            let _ = write!(id, ":{tx}:{}", self.ordinal);
            return id;
        }
        self.transaction = None;
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
            ev(200, 0, Some("0-1-7"), ChangeKind::Commit),
            ev(300, 0, Some("0-1-8"), ChangeKind::Begin),
            ev(400, 0, Some("0-1-8"), ChangeKind::Commit),
            ev(500, 0, None, ChangeKind::Begin),
            ev(600, 1, None, ChangeKind::Commit),
            ev(600, 1, None, ChangeKind::Heartbeat),
        ]
    }

    #[test]
    fn ids_count_events_within_a_gtid_transaction_and_fall_back_to_file_positions() {
        let mut ids = MessageIds::new("job1");
        let got: Vec<String> = stream().iter().map(|e| ids.next(e)).collect();
        assert_eq!(
            got,
            [
                "job1:0-1-7:0",
                "job1:0-1-7:1",
                "job1:0-1-8:0",
                "job1:0-1-8:1",
                "job1:bin.000003:500:0",
                "job1:bin.000003:600:1",
                "job1:hb:1700000000000"
            ]
        );
    }

    #[test]
    fn a_restart_from_a_transaction_boundary_repeats_the_same_ids() {
        let events = stream();
        let mut first = MessageIds::new("job1");
        let all: Vec<String> = events.iter().map(|e| first.next(e)).collect();
        // A new process resumes at the second transaction (a checkpoint after the first).
        let mut again = MessageIds::new("job1");
        let resumed: Vec<String> = events[2..].iter().map(|e| again.next(e)).collect();
        assert_eq!(resumed, all[2..]);
    }
}
