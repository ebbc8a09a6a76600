//! The command stream after the snapshot, applied to the destination: each batch of replicated
//! commands in one `MULTI`/`EXEC` that also sets dts's applied-offset marker, so the marker and
//! the data change together.
//!
//! Correctness: the master's stream is applied in order on one connection. A batch never ends
//! inside a source `MULTI`/`EXEC`, so a source transaction stays atomic (its own MULTI/EXEC is
//! dropped: the batch's is a superset). After a crash, the resume offset is the marker's (what
//! the destination has), so a non-idempotent command (`INCR`, `LPUSH`) is applied exactly once.
//! The selected database is part of the position (a continued stream does not repeat `SELECT`).

use bytes::Bytes;

use crate::dbs::DbSelection;
use crate::error::{RedisError, Result};
use crate::pipeline::Shape;
use crate::resp::{Command, encode_command};

/// What the applier does with one replicated command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Offset only (PING, REPLCONF, a newline, a command in an unselected database).
    Skip,
    /// `REPLCONF GETACK`: the master asks for an ACK now.
    Ack,
    /// The stream's `SELECT`.
    Select(u32),
    /// Source transaction boundaries (dropped; the batch's own transaction wraps them).
    Begin,
    Commit,
    /// Forward the command as it came, in the current database.
    Forward,
    /// Forward these commands instead, each with the database to run it in.
    Rewrite(Vec<(u32, Vec<Bytes>)>),
}

/// Decides what to do with `cmd`, the stream being in database `db`.
pub fn classify(cmd: &Command, db: u32, dbs: &DbSelection) -> Result<Action> {
    let Some(name) = cmd.args.first() else { return Ok(Action::Skip) };
    let upper = name.to_ascii_uppercase();
    Ok(match upper.as_slice() {
        b"PING" => Action::Skip,
        b"REPLCONF" => match cmd.args.get(1) {
            Some(a) if a.eq_ignore_ascii_case(b"GETACK") => Action::Ack,
            _ => Action::Skip,
        },
        b"SELECT" => {
            let n = cmd.args.get(1).and_then(|a| std::str::from_utf8(a).ok()?.parse().ok()).ok_or_else(|| {
                RedisError::Protocol("a SELECT without a database number in the replication stream".into())
            })?;
            Action::Select(n)
        }
        b"MULTI" => Action::Begin,
        b"EXEC" => Action::Commit,
        b"FLUSHALL" => {
            if dbs.is_all() {
                Action::Forward
            } else if let DbSelection::Only(list) = dbs {
                let mut flush = vec![Bytes::from_static(b"FLUSHDB")];
                flush.extend(cmd.args.iter().skip(1).cloned());
                Action::Rewrite(list.iter().map(|d| (*d, flush.clone())).collect())
            } else {
                Action::Skip
            }
        }
        b"SWAPDB" => {
            let a = db_arg(cmd, 1)?;
            let b = db_arg(cmd, 2)?;
            match (dbs.contains(a), dbs.contains(b)) {
                (true, true) => Action::Forward,
                (false, false) => Action::Skip,
                _ => {
                    return Err(RedisError::Operator(format!(
                        "SWAPDB {a} {b} swaps a selected database with one not selected; select both or neither"
                    )));
                }
            }
        }
        b"MOVE" => {
            let target = db_arg(cmd, 2)?;
            match (dbs.contains(db), dbs.contains(target)) {
                (true, true) => Action::Forward,
                (false, false) => Action::Skip,
                (true, false) => {
                    let key = cmd.args.get(1).cloned().unwrap_or_default();
                    Action::Rewrite(vec![(db, vec![Bytes::from_static(b"DEL"), key])])
                }
                (false, true) => {
                    return Err(RedisError::Operator(format!(
                        "MOVE into selected database {target} from database {db}, which is not selected; select both"
                    )));
                }
            }
        }
        _ if dbs.contains(db) => Action::Forward,
        _ => Action::Skip,
    })
}

fn db_arg(cmd: &Command, i: usize) -> Result<u32> {
    cmd.args.get(i).and_then(|a| std::str::from_utf8(a).ok()?.parse().ok()).ok_or_else(|| {
        RedisError::Protocol(format!("{} without a database number", String::from_utf8_lossy(&cmd.args[0])))
    })
}

/// One destination transaction being built.
pub struct TxBatch {
    pub buf: Vec<u8>,
    pub queued: usize,
    /// Commands of the source (for the applied count).
    pub commands: u64,
    /// The destination connection's selected database at the end of the batch.
    pub dest_db: Option<u32>,
}

impl TxBatch {
    pub fn new(dest_db: Option<u32>) -> TxBatch {
        let mut buf = Vec::with_capacity(64 * 1024);
        // No replies for the transaction: the destination neither builds nor sends one per
        // command (a replica's errors are ignored anyway); the marker read after it says
        // whether EXEC ran.
        encode_command(&mut buf, &["CLIENT", "REPLY", "OFF"]);
        encode_command(&mut buf, &["MULTI"]);
        TxBatch { buf, queued: 0, commands: 0, dest_db }
    }

    pub fn is_empty(&self) -> bool {
        self.commands == 0
    }

    pub fn select(&mut self, db: u32) {
        if self.dest_db != Some(db) {
            encode_command(&mut self.buf, &["SELECT".to_string(), db.to_string()]);
            self.queued += 1;
            self.dest_db = Some(db);
        }
    }

    pub fn args(&mut self, db: u32, args: &[Bytes]) {
        self.select(db);
        encode_command(&mut self.buf, args);
        self.queued += 1;
        self.commands += 1;
    }

    /// Sets the marker (`key` in `marker_db` = `value`), closes the transaction, turns replies
    /// back on and reads the marker: the bytes to send and their reply shape (the marker's value
    /// read back proves that EXEC ran; a transaction the destination refused leaves it as it was).
    pub fn finish(mut self, marker_db: u32, key: &str, value: &str) -> (Vec<u8>, Shape, Option<u32>) {
        self.select(marker_db);
        encode_command(&mut self.buf, &["SET", key, value]);
        self.queued += 1;
        encode_command(&mut self.buf, &["EXEC"]);
        encode_command(&mut self.buf, &["CLIENT", "REPLY", "ON"]);
        encode_command(&mut self.buf, &["GET", key]);
        (self.buf, Shape::Marked(Bytes::copy_from_slice(value.as_bytes())), self.dest_db)
    }
}

/// The marker's value: `replid offset db`.
pub fn marker_value(replid: &str, offset: i64, db: u32) -> String {
    format!("{replid} {offset} {db}")
}

/// Reads a marker value.
pub fn parse_marker(value: &str) -> Option<(String, i64, u32)> {
    let mut parts = value.split(' ');
    let replid = parts.next()?.to_string();
    let offset = parts.next()?.parse().ok()?;
    let db = parts.next()?.parse().ok()?;
    (replid.len() == 40).then_some((replid, offset, db))
}

/// What every marker key starts with (a consistency check and a slot purge leave them alone).
pub const MARKER_PREFIX: &str = "dts:applied-offset:";

/// The marker key of a job.
pub fn marker_key(job_id: &str) -> String {
    format!("{MARKER_PREFIX}{job_id}")
}

/// The marker key of one shard of a cluster source (`0-5460`) on a standalone destination.
pub fn shard_marker_key(job_id: &str, shard: &str) -> String {
    if shard.is_empty() { marker_key(job_id) } else { format!("{MARKER_PREFIX}{job_id}:{shard}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Command {
        Command { args: args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect(), raw_len: 0 }
    }

    #[test]
    fn commands_of_unselected_databases_are_skipped_and_flushall_is_narrowed() {
        let dbs = DbSelection::Only(vec![0, 3]);
        assert_eq!(classify(&cmd(&["SET", "k", "v"]), 0, &dbs).unwrap(), Action::Forward);
        assert_eq!(classify(&cmd(&["SET", "k", "v"]), 1, &dbs).unwrap(), Action::Skip);
        assert_eq!(classify(&cmd(&["select", "3"]), 0, &dbs).unwrap(), Action::Select(3));
        assert_eq!(classify(&cmd(&["REPLCONF", "GETACK", "*"]), 0, &dbs).unwrap(), Action::Ack);
        match classify(&cmd(&["FLUSHALL"]), 1, &dbs).unwrap() {
            Action::Rewrite(list) => {
                assert_eq!(list.iter().map(|(d, _)| *d).collect::<Vec<_>>(), vec![0, 3]);
                assert_eq!(list[0].1, vec![Bytes::from("FLUSHDB")]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(classify(&cmd(&["FLUSHALL"]), 1, &DbSelection::All).unwrap(), Action::Forward);
        assert!(classify(&cmd(&["SWAPDB", "0", "1"]), 0, &dbs).is_err());
        assert_eq!(classify(&cmd(&["SWAPDB", "0", "3"]), 0, &dbs).unwrap(), Action::Forward);
        assert_eq!(
            classify(&cmd(&["MOVE", "k", "1"]), 0, &dbs).unwrap(),
            Action::Rewrite(vec![(0, vec![Bytes::from("DEL"), Bytes::from("k")])])
        );
    }

    #[test]
    fn markers_round_trip_and_garbage_is_ignored() {
        let id = "f".repeat(40);
        assert_eq!(parse_marker(&marker_value(&id, 77, 3)), Some((id, 77, 3)));
        assert_eq!(parse_marker("nonsense"), None);
    }
}
