//! The command stream of one source shard after its snapshot (or after `+CONTINUE`), applied to
//! the destination until the job completes: read ahead in chunks, classified (`stream`), written
//! in batches, acknowledged to the source once a second, checkpointed once the destination has
//! executed a batch, with lag from the shard master's offset.
//!
//! Correctness, standalone destination: each batch is one `MULTI`/`EXEC` that also sets the
//! shard's marker, so the marker and the data change together, and a batch never ends inside a
//! source transaction; a restart resumes from the marker: every command is applied exactly once.
//!
//! Correctness, cluster destination: commands go to their slot's master in stream order (per
//! key, order is all that matters: a cluster orders nothing across slots either); a source
//! transaction whose commands share one slot stays a transaction there, one spanning slots is
//! applied command by command. A batch is flushed and executed on every master before the
//! position after it is checkpointed, so a restart re-applies at most the commands since the
//! last checkpoint (at most about a second of them): at-least-once, not exactly-once, since no
//! marker can change atomically with writes on several masters.
//!
//! A cluster source's shard that runs `FLUSHALL`/`FLUSHDB` empties only its own slots there; on
//! the destination, only the keys of those slots are removed (after everything before it was
//! executed), never the other shards' keys.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dts_core::{Completion, ConnectorError, Lag, ReplicationObserver};

use crate::cluster::ClusterWriter;
use crate::conn::{Conn, info_field};
use crate::error::{RedisError, Result};
use crate::fold::Folder;
use crate::pipeline::Pipeline;
use crate::replica::{ReplicaLink, send_ack};
use crate::resp::Command;
use crate::route::{Route, route, single_slot};
use crate::shards::ShardObserver;
use crate::stream::{Action, TxBatch, classify, marker_value};
use crate::sync::{Shard, StoredPosition, SyncContext, err, save_position};

/// A destination batch holds at most this many commands or bytes.
const TX_COMMANDS: u64 = 4096;
const TX_BYTES: usize = 1024 * 1024;

/// Where the stream's commands go.
enum Sink {
    /// One `MULTI`/`EXEC` per batch with the marker, pipelined.
    /// The batch's commands are folded by key (`fold`) before they are encoded.
    Standalone { pipe: Pipeline, batch: TxBatch, folder: Folder, bytes: usize, marker_db: u32, marker_key: String },
    /// Each command to its slot's master; a batch is flushed synchronously.
    Cluster {
        writer: ClusterWriter,
        /// The commands of an open source transaction.
        tx: Option<Vec<Vec<Bytes>>>,
        commands: u64,
        /// The offset of the last flushed batch.
        flushed: i64,
    },
}

impl Sink {
    fn commands(&self) -> u64 {
        match self {
            Sink::Standalone { folder, .. } => folder.commands,
            Sink::Cluster { commands, .. } => *commands,
        }
    }

    fn full(&self) -> bool {
        match self {
            Sink::Standalone { folder, bytes, .. } => folder.commands >= TX_COMMANDS || *bytes >= TX_BYTES,
            Sink::Cluster { writer, commands, .. } => *commands >= TX_COMMANDS || writer.pending().1 >= TX_BYTES,
        }
    }

    /// The command (`raw_len` bytes in the stream, when it came from it), in database `db`.
    async fn add(&mut self, db: u32, args: &[Bytes], raw_len: Option<usize>) -> Result<()> {
        match self {
            Sink::Standalone { folder, bytes, .. } => {
                *bytes += raw_len.unwrap_or_else(|| args.iter().map(|a| a.len() + 16).sum());
                folder.push(db, args.to_vec());
            }
            Sink::Cluster { writer, tx, commands, .. } => {
                if db != 0 {
                    return Err(RedisError::Operator(format!(
                        "the source wrote to database {db}, and a cluster destination has database 0 only; \
                         select database 0 (DatabaseInfo [{{\"Database\":\"0\"}}])"
                    )));
                }
                if args.first().is_some_and(|n| n.eq_ignore_ascii_case(b"SWAPDB") || n.eq_ignore_ascii_case(b"MOVE")) {
                    return Err(RedisError::Operator(format!(
                        "{} moves keys between databases, which a cluster destination does not have",
                        crate::replica::describe(args)
                    )));
                }
                *commands += 1;
                match tx {
                    Some(list) => list.push(args.to_vec()),
                    None if route(args) == Route::All => {
                        // Keyless writes (FLUSHDB, FUNCTION) reach every master between the
                        // same neighbours on each: everything before them is executed first.
                        writer.flush().await?;
                        writer.push(args.to_vec())?;
                        writer.flush().await?;
                    }
                    None => writer.push(args.to_vec())?,
                }
            }
        }
        Ok(())
    }

    fn begin(&mut self) {
        if let Sink::Cluster { tx, .. } = self {
            *tx = Some(Vec::new());
        }
    }

    fn commit(&mut self) -> Result<()> {
        if let Sink::Cluster { writer, tx, .. } = self {
            let list = tx.take().unwrap_or_default();
            let routes: Vec<Route> = list.iter().map(|c| route(c)).collect();
            match single_slot(&routes) {
                Some(slot) if list.len() > 1 => {
                    let commands = list
                        .into_iter()
                        .zip(routes)
                        .map(|(c, r)| match r {
                            Route::Split(mut one) => one.pop().map(|(_, c)| c).unwrap_or_default(),
                            _ => c,
                        })
                        .collect();
                    writer.push_tx(slot, commands)?;
                }
                _ => {
                    for c in list {
                        writer.push(c)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends the batch; the position after it is `(replid, offset, db)`.
    async fn send(&mut self, replid: &str, offset: i64, db: u32) -> Result<()> {
        match self {
            Sink::Standalone { pipe, batch, folder, bytes, marker_db, marker_key } => {
                for (d, args) in folder.take() {
                    batch.args(d, &args);
                }
                *bytes = 0;
                let full = std::mem::replace(batch, TxBatch::new(None));
                let value = marker_value(replid, offset, db);
                let (bytes, shape, dest_db) = full.finish(*marker_db, marker_key, &value);
                *batch = TxBatch::new(dest_db);
                pipe.send(&bytes, shape, offset as u64).await
            }
            Sink::Cluster { writer, commands, flushed, .. } => {
                writer.flush().await?;
                *commands = 0;
                *flushed = offset;
                Ok(())
            }
        }
    }

    /// The offset after the last batch the destination executed.
    fn applied(&self) -> Result<i64> {
        match self {
            Sink::Standalone { pipe, .. } => {
                pipe.check()?;
                Ok(pipe.applied() as i64)
            }
            Sink::Cluster { flushed, .. } => Ok(*flushed),
        }
    }

    async fn drain(&mut self) -> Result<()> {
        if let Sink::Standalone { pipe, .. } = self {
            pipe.drain().await?;
        }
        Ok(())
    }
}

/// A batch sent and not yet confirmed: where the stream stands after it.
struct InFlight {
    offset: i64,
    db: u32,
    commands: u64,
}

/// The stream phase of one shard.
pub(crate) struct StreamRun<'a> {
    pub cx: &'a SyncContext<'a>,
    pub shard: &'a Shard,
    pub observer: &'a ShardObserver<'a>,
    pub replid: String,
    pub offset: i64,
    pub db: u32,
}

impl StreamRun<'_> {
    async fn open_sink(&self) -> Result<Sink, ConnectorError> {
        match self.cx.dest.cluster_writer(false) {
            Some(writer) => Ok(Sink::Cluster { writer, tx: None, commands: 0, flushed: self.offset }),
            None => {
                let dest = Conn::open(self.cx.dest.spec()).await.map_err(err("connecting to the destination"))?;
                Ok(Sink::Standalone {
                    pipe: Pipeline::new(dest, self.offset as u64, 16),
                    batch: TxBatch::new(None),
                    folder: Folder::default(),
                    bytes: 0,
                    marker_db: self.cx.dbs.first(),
                    marker_key: self.shard.marker_key(self.cx),
                })
            }
        }
    }

    /// Applies the stream until the observer asks for completion; returns the position reached.
    pub async fn run(mut self, link: ReplicaLink) -> Result<(String, i64), ConnectorError> {
        let observer = self.observer;
        // At most 8 chunks of 1 MiB read ahead: memory follows this, not the source's backlog.
        let (mut commands, mut acks) = link.stream(TX_BYTES, 8);
        let mut sink = self.open_sink().await?;
        let mut info = Conn::open(&self.shard.source).await.map_err(err("connecting to the source"))?;
        let mut in_multi = false;
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let (mut applied, mut applied_db) = (self.offset, self.db);
        let mut saved = applied;
        let mut samples: VecDeque<(i64, Instant)> = VecDeque::new();
        let mut last_tick = Instant::now() - Duration::from_secs(2);
        let mut wait_for: Option<i64> = None;
        loop {
            let chunk = commands.next(Duration::from_millis(50)).await.map_err(err("reading the source's stream"))?;
            let mut need_ack = false;
            if let Some(chunk) = chunk {
                for cmd in &chunk.commands {
                    self.offset += cmd.raw_len as i64;
                    if let Some(ranges) = self.shard.slots.as_deref()
                        && (cmd.is("FLUSHALL") || cmd.is("FLUSHDB"))
                    {
                        self.purge(&mut sink, &mut in_flight, ranges, cmd).await?;
                        continue;
                    }
                    let apply = |e: RedisError| e.into_connector("replicating");
                    match classify(cmd, self.db, self.cx.dbs).map_err(apply)? {
                        Action::Skip => {}
                        Action::Ack => need_ack = true,
                        Action::Select(n) => self.db = n,
                        Action::Begin => {
                            in_multi = true;
                            sink.begin();
                        }
                        Action::Commit => {
                            in_multi = false;
                            sink.commit().map_err(apply)?;
                        }
                        Action::Forward => sink.add(self.db, &cmd.args, Some(cmd.raw_len)).await.map_err(apply)?,
                        Action::Rewrite(list) => {
                            for (d, args) in list {
                                sink.add(d, &args, None).await.map_err(apply)?;
                            }
                        }
                    }
                    if !in_multi && sink.full() {
                        self.send(&mut sink, &mut in_flight).await?;
                    }
                }
                if !in_multi && sink.commands() > 0 {
                    self.send(&mut sink, &mut in_flight).await?;
                }
            }
            // What the destination has executed.
            let done = sink.applied().map_err(err("writing the destination"))?;
            let mut confirmed = 0;
            while in_flight.front().is_some_and(|f| f.offset <= done) {
                let f = in_flight.pop_front().expect("front exists");
                (applied, applied_db) = (f.offset, f.db);
                confirmed += f.commands;
            }
            if confirmed > 0 {
                observer.applied(confirmed);
            }
            if in_flight.is_empty() && sink.commands() == 0 && !in_multi {
                // Only skipped commands since: nothing to write for them.
                (applied, applied_db) = (self.offset, self.db);
            }
            if need_ack {
                send_ack(&mut acks, applied).await.map_err(err("acknowledging the source"))?;
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                send_ack(&mut acks, applied).await.map_err(err("acknowledging the source"))?;
                if applied != saved {
                    let at = StoredPosition::At { replid: self.replid.clone(), offset: applied, db: applied_db };
                    save_position(self.cx.checkpoints, &self.shard.checkpoint_key(), &at).await?;
                    saved = applied;
                }
                let master = master_offset(&mut info, self.shard.slots.is_some())
                    .await
                    .map_err(err("reading the source's offset"))?;
                samples.push_back((master, Instant::now()));
                if samples.len() > 600 {
                    samples.pop_front();
                }
                observer.progress(lag(&samples, applied));
            }
            match observer.completion() {
                Completion::None => {}
                Completion::Immediately if !in_multi => {
                    return self.finish(&mut sink, &mut in_flight).await;
                }
                Completion::WaitForSync => {
                    let target = match wait_for {
                        Some(t) => t,
                        None => {
                            let t = master_offset(&mut info, self.shard.slots.is_some())
                                .await
                                .map_err(err("reading the source's offset"))?;
                            wait_for = Some(t);
                            t
                        }
                    };
                    if self.offset >= target && !in_multi {
                        return self.finish(&mut sink, &mut in_flight).await;
                    }
                }
                Completion::Immediately => {}
            }
        }
    }

    async fn send(&self, sink: &mut Sink, in_flight: &mut VecDeque<InFlight>) -> Result<(), ConnectorError> {
        let commands = sink.commands();
        sink.send(&self.replid, self.offset, self.db).await.map_err(err("writing the destination"))?;
        in_flight.push_back(InFlight { offset: self.offset, db: self.db, commands });
        Ok(())
    }

    /// A cluster source shard's `FLUSHALL`/`FLUSHDB`: everything before it executed, then the
    /// shard's slots emptied on the destination.
    async fn purge(
        &self,
        sink: &mut Sink,
        in_flight: &mut VecDeque<InFlight>,
        ranges: &[(u16, u16)],
        cmd: &Command,
    ) -> Result<(), ConnectorError> {
        if sink.commands() > 0 {
            self.send(sink, in_flight).await?;
        }
        sink.drain().await.map_err(err("writing the destination"))?;
        let removed = self.cx.dest.purge_slots(ranges).await.map_err(err("emptying the shard's slots"))?;
        tracing::info!(job_id = %self.cx.plan.job_id, shard = %self.shard.name, removed, command = %cmd.name(),
            "the source shard was flushed: its slots were emptied on the destination");
        Ok(())
    }

    async fn finish(
        &self,
        sink: &mut Sink,
        in_flight: &mut VecDeque<InFlight>,
    ) -> Result<(String, i64), ConnectorError> {
        if sink.commands() > 0 {
            self.send(sink, in_flight).await?;
        }
        sink.drain().await.map_err(err("writing the destination"))?;
        let confirmed: u64 = in_flight.drain(..).map(|f| f.commands).sum();
        self.observer.applied(confirmed);
        let at = StoredPosition::At { replid: self.replid.clone(), offset: self.offset, db: self.db };
        save_position(self.cx.checkpoints, &self.shard.checkpoint_key(), &at).await?;
        self.observer.progress(Lag { seconds: Some(0), behind: Some(0), caught_up: true });
        Ok((self.replid.clone(), self.offset))
    }
}

/// The source's replication offset now. A cluster shard's server must still be a master (after
/// a failover the job reconnects to the shard's new master); a standalone source may be a
/// replica itself.
async fn master_offset(info: &mut Conn, must_be_master: bool) -> Result<i64> {
    let fields = info.info("replication").await?;
    if must_be_master && info_field(&fields, "role").is_some_and(|r| r != "master") {
        return Err(RedisError::Closed);
    }
    Ok(info_field(&fields, "master_repl_offset").and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Lag from the master's offsets sampled once a second: bytes behind the newest sample, and
/// seconds since the master first passed the applied offset.
fn lag(samples: &VecDeque<(i64, Instant)>, applied: i64) -> Lag {
    let Some(&(newest, _)) = samples.back() else { return Lag::default() };
    let behind = (newest - applied).max(0) as u64;
    let caught_up = behind == 0;
    let seconds = if caught_up {
        0
    } else {
        samples.iter().find(|(m, _)| *m > applied).map(|(_, t)| t.elapsed().as_secs() as i64).unwrap_or(0)
    };
    Lag { seconds: Some(seconds), behind: Some(behind), caught_up }
}
