//! The snapshot of a full resync, written to the destination while it is read: every key of a
//! selected database as `RESTORE key ttl payload REPLACE ABSTTL` when the destination reads the
//! source's RDB version, otherwise (and for keys too big to hold) as commands in batches; to a
//! standalone destination through the pipelined writer, to a cluster each key to the master
//! that serves its slot (`cluster`), function libraries to every master.
//!
//! Correctness: the RDB is the master's state at the offset `FULLRESYNC` named; writing each of
//! its keys (replacing what is there) after the selected databases were emptied, and no others,
//! leaves the destination equal to that state, whatever an earlier interrupted attempt wrote.
//! A key whose absolute expiry has passed is skipped (Redis would not load it either). Memory:
//! one batch of commands plus what the reader holds (bounded by its limits), whatever the size
//! of a key.

use bytes::Bytes;
use tokio::io::AsyncBufRead;

use crate::cluster::ClusterWriter;
use crate::dbs::DbSelection;
use crate::error::{RedisError, Result};
use crate::pipeline::{Pipeline, Shape};
use crate::rdb::{Elements, KeyRecord, RdbEvent, RdbLimits, RdbReader, ValueKind};
use crate::resp::encode_command;

/// A batch is sent when it holds this many commands or bytes.
const BATCH_COMMANDS: usize = 256;
const BATCH_BYTES: usize = 1024 * 1024;

/// How the snapshot's keys are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteMode {
    /// The destination reads this RDB version or newer (RESTORE works).
    pub destination_rdb_version: u16,
    /// A cluster destination: database 0 only (a key of another selected database is refused).
    pub single_database: bool,
}

/// Where the snapshot's commands go.
pub enum SnapshotOut<'a> {
    /// A standalone destination.
    Pipeline(&'a mut Pipeline),
    /// A cluster destination, each key to its slot's master.
    Cluster(&'a mut ClusterWriter),
}

/// What the snapshot held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub keys: u64,
    pub big_keys: u64,
    pub expired_skipped: u64,
    pub rdb_version: u16,
}

/// Batches commands for the destination.
struct Batcher<'a> {
    out: SnapshotOut<'a>,
    buf: Vec<u8>,
    commands: usize,
    /// The database the destination connection has selected.
    selected: Option<u32>,
    /// Keys written so far (the pipeline's mark).
    keys: u64,
    /// Keys a cluster destination has executed (its flushes are synchronous).
    flushed: u64,
    /// Plain strings (no TTL) waiting to go out as one `MSET` (standalone destination).
    strings: Vec<Bytes>,
}

/// Plain strings per `MSET`: one command dispatch on the destination for many keys.
const MSET_KEYS: usize = 64;

impl Batcher<'_> {
    /// A string key without a TTL: `MSET` with its neighbours (the RDB has each key once per
    /// database, and the batch is sent before any other command, so order is kept).
    async fn plain_string(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        if matches!(self.out, SnapshotOut::Cluster(_)) {
            return self.command(&[Bytes::from_static(b"SET"), key, value]).await;
        }
        if self.strings.is_empty() {
            self.strings.push(Bytes::from_static(b"MSET"));
        }
        self.strings.push(key);
        self.strings.push(value);
        if self.strings.len() > MSET_KEYS * 2 {
            self.emit_strings().await?;
        }
        Ok(())
    }

    async fn emit_strings(&mut self) -> Result<()> {
        if self.strings.is_empty() {
            return Ok(());
        }
        let args = std::mem::take(&mut self.strings);
        self.encode(&args).await
    }

    async fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        self.emit_strings().await?;
        self.encode(args).await
    }

    async fn encode<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let full = match &mut self.out {
            SnapshotOut::Pipeline(_) => {
                encode_command(&mut self.buf, args);
                self.commands += 1;
                self.commands >= BATCH_COMMANDS || self.buf.len() >= BATCH_BYTES
            }
            SnapshotOut::Cluster(w) => {
                w.push(args.iter().map(|a| Bytes::copy_from_slice(a.as_ref())).collect())?;
                let (commands, bytes) = w.pending();
                commands >= BATCH_COMMANDS * 4 || bytes >= BATCH_BYTES * 4
            }
        };
        if full {
            self.flush_out().await?;
        }
        Ok(())
    }

    async fn select(&mut self, db: u32) -> Result<()> {
        if matches!(self.out, SnapshotOut::Cluster(_)) {
            return Ok(());
        }
        if self.selected != Some(db) {
            self.command(&["SELECT".to_string(), db.to_string()]).await?;
            self.selected = Some(db);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.emit_strings().await?;
        self.flush_out().await
    }

    /// Sends what is encoded (pending strings stay pending).
    async fn flush_out(&mut self) -> Result<()> {
        match &mut self.out {
            SnapshotOut::Pipeline(pipe) => {
                if self.commands > 0 {
                    pipe.send(&self.buf, Shape::Strict(self.commands), self.keys).await?;
                    self.buf.clear();
                    self.commands = 0;
                }
            }
            SnapshotOut::Cluster(w) => {
                w.flush().await?;
                self.flushed = self.keys;
            }
        }
        Ok(())
    }

    /// Keys the destination has executed.
    fn applied(&self) -> u64 {
        match &self.out {
            SnapshotOut::Pipeline(pipe) => pipe.applied(),
            SnapshotOut::Cluster(_) => self.flushed,
        }
    }

    /// Waits until the destination executed everything.
    async fn drain(&mut self) -> Result<()> {
        self.flush().await?;
        if let SnapshotOut::Pipeline(pipe) = &mut self.out {
            pipe.drain().await?;
        }
        Ok(())
    }

    /// The database a key of `db` is written to.
    fn target(&self, db: u32, mode: WriteMode) -> Result<u32> {
        if mode.single_database && db != 0 {
            return Err(RedisError::Operator(format!(
                "the source holds keys in database {db}, and a cluster destination has database 0 only; \
                 select database 0 (DatabaseInfo [{{\"Database\":\"0\"}}]) or move the keys"
            )));
        }
        Ok(db)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Reads the RDB from `input` and writes the selected databases' keys to `out`;
/// `progress(keys)` after each batch. Returns once the destination has executed every write.
pub async fn load<R, F>(
    input: R,
    limits: RdbLimits,
    dbs: &DbSelection,
    mode: WriteMode,
    out: SnapshotOut<'_>,
    progress: F,
) -> Result<(SnapshotSummary, R)>
where
    R: AsyncBufRead + Unpin + Send,
    F: Fn(u64),
{
    let chunk = limits.chunk_elements;
    let mut reader = RdbReader::new(input, limits);
    let version = reader.header().await?;
    let restore = mode.destination_rdb_version >= version;
    let mut summary = SnapshotSummary { rdb_version: version, ..Default::default() };
    let mut b = Batcher {
        out,
        buf: Vec::with_capacity(BATCH_BYTES + 64 * 1024),
        commands: 0,
        selected: None,
        keys: 0,
        flushed: 0,
        strings: Vec::new(),
    };
    let mut db: u32 = 0;
    let mut big: Option<(Bytes, ValueKind, Option<i64>)> = None;
    let mut reported = 0u64;
    while let Some(event) = reader.next().await? {
        match event {
            RdbEvent::SelectDb(n) => db = n,
            RdbEvent::Key(rec) => {
                if !dbs.contains(db) {
                    continue;
                }
                if rec.expire_at_ms.is_some_and(|t| t <= now_ms()) {
                    summary.expired_skipped += 1;
                    continue;
                }
                let target = b.target(db, mode)?;
                b.select(target).await?;
                if rec.rdb_type == 0 {
                    // A string: SET is cheaper than RESTORE on both sides (no CRC, no payload).
                    let value = match rec.elements(chunk)?.pop() {
                        Some(Elements::String(v)) => v,
                        _ => return Err(RedisError::Protocol("a string key without its value".into())),
                    };
                    match rec.expire_at_ms {
                        Some(t) => {
                            b.command(&[&b"SET"[..], &rec.key, &value, b"PXAT", t.to_string().as_bytes()]).await?
                        }
                        None => b.plain_string(rec.key.clone(), value).await?,
                    }
                } else if restore {
                    let payload = rec.restore_payload(version);
                    let ttl = rec.expire_at_ms.unwrap_or(0).to_string();
                    if rec.expire_at_ms.is_some() {
                        b.command(&[&b"RESTORE"[..], &rec.key, ttl.as_bytes(), &payload, b"REPLACE", b"ABSTTL"])
                            .await?;
                    } else {
                        b.command(&[&b"RESTORE"[..], &rec.key, b"0", &payload, b"REPLACE"]).await?;
                    }
                } else {
                    write_as_commands(&mut b, &rec, chunk).await?;
                }
                summary.keys += 1;
                b.keys = summary.keys;
            }
            RdbEvent::BigKeyStart { key, kind, expire_at_ms } => {
                if dbs.contains(db) && expire_at_ms.is_none_or(|t| t > now_ms()) {
                    let target = b.target(db, mode)?;
                    b.select(target).await?;
                    b.command(&[&b"DEL"[..], &key]).await?;
                    big = Some((key, kind, expire_at_ms));
                } else {
                    big = None;
                }
            }
            RdbEvent::BigKeyChunk(elements) => {
                if let Some((key, _, _)) = &big {
                    let key = key.clone();
                    add_elements(&mut b, &key, elements).await?;
                }
            }
            RdbEvent::BigKeyEnd => {
                if let Some((key, _, expire)) = big.take() {
                    if let Some(t) = expire {
                        b.command(&[&b"PEXPIREAT"[..], &key, t.to_string().as_bytes()]).await?;
                    }
                    summary.keys += 1;
                    summary.big_keys += 1;
                    b.keys = summary.keys;
                }
            }
            RdbEvent::Function(code) => {
                b.command(&[&b"FUNCTION"[..], b"LOAD", b"REPLACE", &code]).await?;
            }
            RdbEvent::Aux { .. } | RdbEvent::ResizeDb { .. } | RdbEvent::ModuleAux { .. } => {}
        }
        let applied = b.applied();
        if applied >= reported + 1000 {
            reported = applied;
            progress(applied);
        }
    }
    b.drain().await?;
    progress(summary.keys);
    Ok((summary, reader.into_inner()))
}

/// A key as commands (a destination that cannot RESTORE the source's RDB version).
async fn write_as_commands(b: &mut Batcher<'_>, rec: &KeyRecord, chunk: usize) -> Result<()> {
    let elements = rec.elements(chunk).map_err(|e| {
        RedisError::Operator(format!(
            "key `{}` ({:?}) cannot be written to a destination older than the source: {e}",
            String::from_utf8_lossy(&rec.key[..rec.key.len().min(64)]),
            rec.kind
        ))
    })?;
    b.command(&[&b"DEL"[..], &rec.key]).await?;
    for e in elements {
        add_elements(b, &rec.key, e).await?;
    }
    if let Some(t) = rec.expire_at_ms {
        b.command(&[&b"PEXPIREAT"[..], &rec.key, t.to_string().as_bytes()]).await?;
    }
    Ok(())
}

/// The command that adds `elements` to `key`.
async fn add_elements(b: &mut Batcher<'_>, key: &Bytes, elements: Elements) -> Result<()> {
    let mut args: Vec<Bytes> = Vec::new();
    match elements {
        Elements::String(v) => args.extend([Bytes::from_static(b"SET"), key.clone(), v]),
        Elements::List(items) if !items.is_empty() => {
            args.extend([Bytes::from_static(b"RPUSH"), key.clone()]);
            args.extend(items);
        }
        Elements::Set(items) if !items.is_empty() => {
            args.extend([Bytes::from_static(b"SADD"), key.clone()]);
            args.extend(items);
        }
        Elements::SortedSet(items) if !items.is_empty() => {
            args.extend([Bytes::from_static(b"ZADD"), key.clone()]);
            for (member, score) in items {
                args.push(Bytes::from(format_score(score)));
                args.push(member);
            }
        }
        Elements::Hash(items) if !items.is_empty() => {
            args.extend([Bytes::from_static(b"HSET"), key.clone()]);
            for (field, value) in items {
                args.push(field);
                args.push(value);
            }
        }
        _ => return Ok(()),
    }
    b.command(&args).await
}

/// A score as Redis reads it back exactly (`inf`, `-inf`, or the shortest round-trip decimal).
pub fn format_score(score: f64) -> String {
    if score == f64::INFINITY {
        "inf".into()
    } else if score == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        format!("{score:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_format_so_that_redis_reads_them_back_exactly() {
        assert_eq!(format_score(1.5), "1.5");
        assert_eq!(format_score(0.1), "0.1");
        assert_eq!(format_score(f64::INFINITY), "inf");
        assert_eq!(format_score(-3.0), "-3.0");
        let x = 1.0 / 3.0;
        assert_eq!(format_score(x).parse::<f64>().unwrap(), x);
    }
}
