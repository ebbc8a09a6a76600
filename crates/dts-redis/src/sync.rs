//! One replication of a standalone Redis source into the destination: where to resume (the
//! checkpoint and the destination's marker), the handshake, the snapshot of a full resync, and
//! the command stream until the job completes.
//!
//! Resume: the checkpoint `position` holds the replication id, the offset the destination has
//! applied and the stream's selected database; it is written after the destination executed
//! the batch (at most once a second), and the marker written inside every batch's transaction
//! is at least as new. dts asks `PSYNC <replid> <offset + 1>` from the newer of the two; only
//! when the master no longer holds that part of its backlog does it send a snapshot again
//! (`FULLRESYNC`), which is reported. While a snapshot is being loaded the checkpoint says so,
//! so a crash during the load starts a new full resync rather than continuing a half-loaded
//! destination.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dts_core::{
    Checkpoints, Completion, ConnectionSpec, ConnectorError, ErrorClass, Lag, MigrationPlan, Position, RedisPosition,
    ReplicationObserver, ReplicationOffset, StreamMode,
};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::conn::{Conn, info_field, keyspace};
use crate::dbs::DbSelection;
use crate::error::{RedisError, Result};
use crate::full_sync::{self, WriteMode};
use crate::pipeline::{Pipeline, Shape};
use crate::rdb::RdbLimits;
use crate::replica::{SnapshotFraming, SyncStart, handshake, send_ack};
use crate::settings::RedisSettings;
use crate::stream::{Action, TxBatch, classify, marker_key, marker_value, parse_marker};

/// The checkpoint key of the stream's position.
pub const POSITION_KEY: &str = "position";
/// A destination transaction holds at most this many commands or bytes.
const TX_COMMANDS: u64 = 4096;
const TX_BYTES: usize = 1024 * 1024;

/// The stored position of a standalone source's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredPosition {
    /// A snapshot is being loaded: nothing to continue from.
    Loading {
        full_sync: bool,
    },
    At {
        replid: String,
        offset: i64,
        db: u32,
    },
}

/// The RDB version a Redis version writes (and the newest it reads).
pub fn rdb_version_of(redis_version: &str) -> u16 {
    let mut parts = redis_version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match (major, minor) {
        (8.., _) => 12,
        (7, 4..) => 12,
        (7, 2..) => 11,
        (7, _) => 10,
        (5 | 6, _) => 9,
        (4, _) => 8,
        (3, 2..) => 7,
        _ => 6,
    }
}

fn err(what: &str) -> impl FnOnce(RedisError) -> ConnectorError + '_ {
    move |e| e.into_connector(what)
}

async fn load_position(ckpt: &dyn Checkpoints) -> Result<Option<StoredPosition>, ConnectorError> {
    Ok(ckpt.get(POSITION_KEY).await?.and_then(|v| serde_json::from_str(&v).ok()))
}

async fn save_position(ckpt: &dyn Checkpoints, p: &StoredPosition) -> Result<(), ConnectorError> {
    let v = serde_json::to_string(p).map_err(|e| ConnectorError::new(ErrorClass::Fatal, "position", e.to_string()))?;
    ckpt.put(POSITION_KEY, &v).await
}

/// The destination's marker of the job, if any.
async fn read_marker(dest: &mut Conn, marker_db: u32, job_id: &str) -> Result<Option<(String, i64, u32)>> {
    dest.ok(&["SELECT".to_string(), marker_db.to_string()]).await?;
    let v = dest.ok(&["GET".to_string(), marker_key(job_id)]).await?;
    Ok(v.text().and_then(|t| parse_marker(&t)))
}

/// Where to resume: the newer of the checkpoint and the marker, when both name the same stream.
fn resume_point(stored: Option<StoredPosition>, marker: Option<(String, i64, u32)>) -> Option<(String, i64, u32)> {
    match stored {
        None | Some(StoredPosition::Loading { .. }) => None,
        Some(StoredPosition::At { replid, offset, db }) => match marker {
            Some((m_id, m_off, m_db)) if m_id == replid && m_off > offset => Some((m_id, m_off, m_db)),
            _ => Some((replid, offset, db)),
        },
    }
}

/// What the replication needs besides the plan.
pub struct SyncContext<'a> {
    pub plan: &'a MigrationPlan,
    pub checkpoints: &'a dyn Checkpoints,
    pub observer: &'a dyn ReplicationObserver,
    pub limits: RdbLimits,
}

fn position(replid: &str, offset: i64) -> Position {
    Position::Redis(RedisPosition {
        shards: [(String::new(), ReplicationOffset { replid: replid.to_string(), offset })].into(),
    })
}

/// Replicates the plan's source into its destination (see the module docs).
pub async fn replicate(cx: SyncContext<'_>, mode: StreamMode) -> Result<Position, ConnectorError> {
    let plan = cx.plan;
    let dbs = DbSelection::of(plan)?;
    let settings = RedisSettings::parse(plan.extern_params.as_deref()).map_err(err("ExternParams"))?;
    let dest_spec = plan.destination()?.clone();
    let marker_db = dbs.first();
    let mut dest = Conn::open(&dest_spec).await.map_err(err("connecting to the destination"))?;
    let stored = load_position(cx.checkpoints).await?;
    let marker = match stored {
        Some(StoredPosition::At { .. }) => {
            read_marker(&mut dest, marker_db, &plan.job_id).await.map_err(err("reading the destination"))?
        }
        _ => None,
    };
    let resume = resume_point(stored, marker);
    let link = handshake(&plan.source, resume.as_ref().map(|(id, off, _)| (id.as_str(), *off)))
        .await
        .map_err(err("connecting to the source as a replica"))?;
    let (replid, offset, db, link) = match link.start.clone() {
        SyncStart::Continue { replid } => {
            let (old_id, offset, db) = resume.clone().unwrap_or_default();
            let replid = if replid.is_empty() { old_id } else { replid };
            tracing::info!(job_id = %plan.job_id, offset, "source continued the replication stream (+CONTINUE)");
            cx.observer.note(format!("resumed the replication stream at offset {offset} without a full resync"));
            (replid, offset, db, link)
        }
        SyncStart::Full { replid, offset } => {
            if let Some((_, old, _)) = &resume {
                tracing::warn!(job_id = %plan.job_id, offset = old, "the source no longer has the stream after the checkpoint: full resync");
                cx.observer.note(format!(
                    "full resync: the source's backlog no longer holds offset {old}; the snapshot is copied again"
                ));
            }
            save_position(cx.checkpoints, &StoredPosition::Loading { full_sync: true }).await?;
            let link = snapshot(&cx, &dbs, &settings, &dest_spec, &mut dest, link, (&replid, offset)).await?;
            save_position(cx.checkpoints, &StoredPosition::At { replid: replid.clone(), offset, db: 0 }).await?;
            cx.observer.snapshot_finished();
            if mode == StreamMode::SnapshotOnly {
                return Ok(position(&replid, offset));
            }
            (replid, offset, 0, link)
        }
    };
    drop(dest);
    let run = StreamRun { cx: &cx, dbs: &dbs, dest_spec: &dest_spec, marker_db, replid, offset, db };
    run.run(link).await
}

/// Loads the snapshot that follows `FULLRESYNC`.
async fn snapshot(
    cx: &SyncContext<'_>,
    dbs: &DbSelection,
    settings: &RedisSettings,
    dest_spec: &ConnectionSpec,
    dest: &mut Conn,
    mut link: crate::replica::ReplicaLink,
    (replid, offset): (&str, i64),
) -> Result<crate::replica::ReplicaLink, ConnectorError> {
    let plan = cx.plan;
    let info = dest.info("server").await.map_err(err("reading the destination"))?;
    let dest_version = rdb_version_of(info_field(&info, "redis_version").unwrap_or("0"));
    if !settings.overwrite {
        // The precheck found the selected databases empty: anything there now was written by
        // an earlier attempt of this job and is replaced by the snapshot.
        match dbs {
            DbSelection::All => {
                dest.ok(&["FLUSHALL"]).await.map_err(err("emptying the destination"))?;
            }
            DbSelection::Only(list) => {
                for d in list {
                    dest.ok(&["SELECT".to_string(), d.to_string()]).await.map_err(err("emptying the destination"))?;
                    dest.ok(&["FLUSHDB"]).await.map_err(err("emptying the destination"))?;
                }
            }
        }
    }
    let total = source_keys(&plan.source, dbs).await.unwrap_or(0);
    let mut pipe = Pipeline::new(Conn::open(dest_spec).await.map_err(err("connecting to the destination"))?, 0, 16);
    let framing = link.snapshot_framing().await.map_err(err("reading the source's snapshot"))?;
    let mode = WriteMode { destination_rdb_version: dest_version, single_database: false };
    let observer = cx.observer;
    let progress = |done: u64| observer.snapshot_progress(done, total.max(done));
    let started = Instant::now();
    let summary = match framing {
        SnapshotFraming::Length(n) => {
            let input = (&mut link.reader).take(n);
            let (summary, rest) = full_sync::load(input, cx.limits, dbs, mode, &mut pipe, progress)
                .await
                .map_err(err("copying the snapshot"))?;
            if rest.limit() != 0 {
                return Err(ConnectorError::new(
                    ErrorClass::Transient,
                    "copying the snapshot: the source sent more snapshot bytes than the RDB held",
                    format!("{} bytes left", rest.limit()),
                ));
            }
            summary
        }
        SnapshotFraming::EofMark(mark) => {
            let (summary, _) = full_sync::load(&mut link.reader, cx.limits, dbs, mode, &mut pipe, progress)
                .await
                .map_err(err("copying the snapshot"))?;
            link.expect_eof_mark(&mark).await.map_err(err("copying the snapshot"))?;
            summary
        }
    };
    let mut marker = Vec::new();
    crate::resp::encode_command(&mut marker, &["SELECT".to_string(), cx_marker_db(dbs).to_string()]);
    crate::resp::encode_command(
        &mut marker,
        &["SET".to_string(), marker_key(&plan.job_id), marker_value(replid, offset, 0)],
    );
    pipe.send(&marker, Shape::Strict(2), summary.keys + 1).await.map_err(err("writing the destination"))?;
    pipe.drain().await.map_err(err("writing the destination"))?;
    tracing::info!(
        job_id = %plan.job_id,
        keys = summary.keys,
        big_keys = summary.big_keys,
        expired_skipped = summary.expired_skipped,
        rdb_version = summary.rdb_version,
        secs = started.elapsed().as_secs_f64(),
        "snapshot copied"
    );
    Ok(link)
}

fn cx_marker_db(dbs: &DbSelection) -> u32 {
    dbs.first()
}

/// The keys of the selected databases on the source now.
pub async fn source_keys(source: &ConnectionSpec, dbs: &DbSelection) -> Result<u64> {
    let mut c = Conn::open(source).await?;
    let info = c.info("keyspace").await?;
    Ok(keyspace(&info).into_iter().filter(|(d, _)| dbs.contains(*d)).map(|(_, k)| k).sum())
}

/// The stream phase's state.
struct StreamRun<'a> {
    cx: &'a SyncContext<'a>,
    dbs: &'a DbSelection,
    dest_spec: &'a ConnectionSpec,
    marker_db: u32,
    replid: String,
    offset: i64,
    db: u32,
}

/// A batch sent and not yet confirmed: where the stream stands after it.
struct InFlight {
    offset: i64,
    db: u32,
    commands: u64,
}

impl StreamRun<'_> {
    async fn run(mut self, link: crate::replica::ReplicaLink) -> Result<Position, ConnectorError> {
        let plan = self.cx.plan;
        let observer = self.cx.observer;
        let (mut commands, mut acks) = link.stream(TX_BYTES, 64);
        let dest = Conn::open(self.dest_spec).await.map_err(err("connecting to the destination"))?;
        let mut pipe = Pipeline::new(dest, self.offset as u64, 16);
        let mut info = Conn::open(&plan.source).await.map_err(err("connecting to the source"))?;
        let mut batch = TxBatch::new(None);
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
                let mut at = 0usize;
                for cmd in &chunk.commands {
                    let raw = &chunk.raw[at..at + cmd.raw_len];
                    at += cmd.raw_len;
                    self.offset += cmd.raw_len as i64;
                    match classify(cmd, self.db, self.dbs).map_err(err("replicating"))? {
                        Action::Skip => {}
                        Action::Ack => need_ack = true,
                        Action::Select(n) => self.db = n,
                        Action::Begin => in_multi = true,
                        Action::Commit => in_multi = false,
                        Action::Forward => batch.raw(self.db, raw),
                        Action::Rewrite(list) => {
                            for (d, args) in list {
                                batch.args(d, &args);
                            }
                        }
                    }
                    if !in_multi && (batch.commands >= TX_COMMANDS || batch.buf.len() >= TX_BYTES) {
                        self.send(&mut pipe, &mut batch, &mut in_flight).await?;
                    }
                }
                if !in_multi && !batch.is_empty() {
                    self.send(&mut pipe, &mut batch, &mut in_flight).await?;
                }
            }
            // What the destination has executed.
            let done = pipe.applied() as i64;
            pipe.check().map_err(err("writing the destination"))?;
            let mut confirmed = 0;
            while in_flight.front().is_some_and(|f| f.offset <= done) {
                let f = in_flight.pop_front().expect("front exists");
                (applied, applied_db) = (f.offset, f.db);
                confirmed += f.commands;
            }
            if confirmed > 0 {
                observer.applied(confirmed);
            }
            if in_flight.is_empty() && batch.is_empty() && !in_multi {
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
                    save_position(
                        self.cx.checkpoints,
                        &StoredPosition::At { replid: self.replid.clone(), offset: applied, db: applied_db },
                    )
                    .await?;
                    saved = applied;
                }
                let master = master_offset(&mut info).await.map_err(err("reading the source's offset"))?;
                samples.push_back((master, Instant::now()));
                if samples.len() > 600 {
                    samples.pop_front();
                }
                observer.progress(lag(&samples, applied));
            }
            match observer.completion() {
                Completion::None => {}
                Completion::Immediately if !in_multi => {
                    return self.finish(&mut pipe, &mut batch, &mut in_flight).await;
                }
                Completion::WaitForSync => {
                    let target = match wait_for {
                        Some(t) => t,
                        None => {
                            let t = master_offset(&mut info).await.map_err(err("reading the source's offset"))?;
                            wait_for = Some(t);
                            t
                        }
                    };
                    if self.offset >= target && !in_multi {
                        return self.finish(&mut pipe, &mut batch, &mut in_flight).await;
                    }
                }
                Completion::Immediately => {}
            }
        }
    }

    async fn send(
        &self,
        pipe: &mut Pipeline,
        batch: &mut TxBatch,
        in_flight: &mut VecDeque<InFlight>,
    ) -> Result<(), ConnectorError> {
        let full = std::mem::replace(batch, TxBatch::new(None));
        let commands = full.commands;
        let value = marker_value(&self.replid, self.offset, self.db);
        let (bytes, shape, dest_db) = full.finish(self.marker_db, &marker_key(&self.cx.plan.job_id), &value, self.db);
        *batch = TxBatch::new(dest_db);
        pipe.send(&bytes, shape, self.offset as u64).await.map_err(err("writing the destination"))?;
        in_flight.push_back(InFlight { offset: self.offset, db: self.db, commands });
        Ok(())
    }

    async fn finish(
        &self,
        pipe: &mut Pipeline,
        batch: &mut TxBatch,
        in_flight: &mut VecDeque<InFlight>,
    ) -> Result<Position, ConnectorError> {
        if !batch.is_empty() {
            self.send(pipe, batch, in_flight).await?;
        }
        pipe.drain().await.map_err(err("writing the destination"))?;
        let confirmed: u64 = in_flight.drain(..).map(|f| f.commands).sum();
        self.cx.observer.applied(confirmed);
        save_position(
            self.cx.checkpoints,
            &StoredPosition::At { replid: self.replid.clone(), offset: self.offset, db: self.db },
        )
        .await?;
        self.cx.observer.progress(Lag { seconds: Some(0), behind: Some(0), caught_up: true });
        Ok(position(&self.replid, self.offset))
    }
}

/// The master's replication offset now.
async fn master_offset(info: &mut Conn) -> Result<i64> {
    let fields = info.info("replication").await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_versions_map_to_the_rdb_versions_they_write() {
        assert_eq!(rdb_version_of("7.0.15"), 10);
        assert_eq!(rdb_version_of("7.2.4"), 11);
        assert_eq!(rdb_version_of("6.2.14"), 9);
        assert_eq!(rdb_version_of("8.0.0"), 12);
    }

    #[test]
    fn the_newer_of_checkpoint_and_marker_is_where_the_stream_resumes() {
        let id = "a".repeat(40);
        let at = |o| Some(StoredPosition::At { replid: id.clone(), offset: o, db: 1 });
        assert_eq!(resume_point(at(10), Some((id.clone(), 20, 2))), Some((id.clone(), 20, 2)));
        assert_eq!(resume_point(at(30), Some((id.clone(), 20, 2))), Some((id.clone(), 30, 1)));
        assert_eq!(resume_point(at(10), Some(("b".repeat(40), 99, 0))), Some((id.clone(), 10, 1)));
        assert_eq!(resume_point(Some(StoredPosition::Loading { full_sync: true }), None), None);
        assert_eq!(resume_point(None, Some((id, 5, 0))), None);
    }

    #[test]
    fn stored_positions_round_trip_as_json() {
        let p = StoredPosition::At { replid: "c".repeat(40), offset: 7, db: 2 };
        assert_eq!(serde_json::from_str::<StoredPosition>(&serde_json::to_string(&p).unwrap()).unwrap(), p);
        let l = StoredPosition::Loading { full_sync: true };
        assert_eq!(serde_json::from_str::<StoredPosition>(&serde_json::to_string(&l).unwrap()).unwrap(), l);
    }
}
