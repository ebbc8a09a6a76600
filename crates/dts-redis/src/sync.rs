//! One replication of one source shard (a standalone source is one shard; a cluster source has
//! one per master) into the destination: where to resume (the shard's checkpoint and, on a
//! standalone destination, its marker), the handshake, the snapshot of a full resync, then the
//! command stream (`apply`) until the job completes.
//!
//! Resume: the shard's checkpoint (`position`, or `position/<slots>` for a cluster master) holds
//! the replication id, the offset the destination has applied and the stream's selected
//! database; it is written after the destination executed the batch (at most once a second).
//! On a standalone destination the marker written inside every batch's transaction is at least
//! as new. dts asks `PSYNC <replid> <offset + 1>` from the newer of the two; only when the master
//! no longer holds that part of its backlog does it send a snapshot again (`FULLRESYNC`), which
//! is reported. A cluster shard's checkpoint is named by its slots, so after a failover the
//! promoted replica, which serves the same slots and keeps the old replication id as its
//! second one (psync2), continues the stream. While a snapshot is being loaded the checkpoint
//! says so, so a crash during the load starts a new full resync rather than continuing a
//! half-loaded destination.
//!
//! Before a snapshot the destination is emptied of what the snapshot replaces (unless
//! `DstOverwrite`): the selected databases for a standalone source, only the shard's slots for a
//! cluster master (`dest`).
//!
//! The snapshot goes through the relay when that is safe (`relay`: a standalone source and
//! destination, every database, no `DstOverwrite`; the destination loads the RDB itself as a
//! replica of dts), otherwise it is written as commands (`full_sync`). Either way the stream then
//! continues from the same `(replid, offset)`. A relay a crash left behind is undone before
//! anything else when the shard's replication starts again.

use std::time::Instant;

use dts_core::{
    Checkpoints, ConnectionSpec, ConnectorError, ErrorClass, MigrationPlan, ReplicationObserver, StreamMode,
};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::apply::StreamRun;
use crate::conn::{Conn, info_field, keyspace};
use crate::dbs::DbSelection;
use crate::dest::Dest;
use crate::error::{RedisError, Result};
use crate::full_sync::{self, SnapshotOut, WriteMode};
use crate::pipeline::{Pipeline, Shape};
use crate::rdb::RdbLimits;
use crate::relay::{Outcome, Relay, RelayRecord};
use crate::replica::{ReplicaLink, SnapshotFraming, SyncStart, handshake};
use crate::settings::RedisSettings;
use crate::shards::ShardObserver;
use crate::slots::SlotRanges;
use crate::stream::{marker_value, parse_marker, shard_marker_key};

/// The checkpoint key of a standalone source's position (a cluster master's is
/// `position/<slots>`).
pub const POSITION_KEY: &str = "position";

/// The stored position of a shard's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredPosition {
    /// A snapshot is being loaded: nothing to continue from.
    Loading {
        full_sync: bool,
        /// A snapshot relay that may be live on the destination (put back by `relay::recover`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        relay: Option<RelayRecord>,
        /// A relay of this snapshot failed on the destination: the next attempt uses commands.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        relay_failed: bool,
    },
    At {
        replid: String,
        offset: i64,
        db: u32,
    },
}

/// One source shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Empty for a standalone source; the slots' name (`0-5460`) for a cluster master.
    pub name: String,
    /// Where to replicate from (the shard's master).
    pub source: ConnectionSpec,
    /// A cluster master's slots.
    pub slots: Option<SlotRanges>,
}

impl Shard {
    pub fn checkpoint_key(&self) -> String {
        position_key(&self.name)
    }

    /// The shard's marker key on a standalone destination.
    pub fn marker_key(&self, cx: &SyncContext<'_>) -> String {
        shard_marker_key(&cx.plan.job_id, &self.name)
    }
}

/// The checkpoint key of a shard's position.
pub fn position_key(shard: &str) -> String {
    if shard.is_empty() { POSITION_KEY.to_string() } else { format!("{POSITION_KEY}/{shard}") }
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

pub(crate) fn err(what: &str) -> impl FnOnce(RedisError) -> ConnectorError + '_ {
    move |e| e.into_connector(what)
}

pub(crate) async fn load_position(ckpt: &dyn Checkpoints, key: &str) -> Result<Option<StoredPosition>, ConnectorError> {
    Ok(ckpt.get(key).await?.and_then(|v| serde_json::from_str(&v).ok()))
}

pub(crate) async fn save_position(ckpt: &dyn Checkpoints, key: &str, p: &StoredPosition) -> Result<(), ConnectorError> {
    let v = serde_json::to_string(p).map_err(|e| ConnectorError::new(ErrorClass::Fatal, "position", e.to_string()))?;
    ckpt.put(key, &v).await
}

/// The destination's marker, if any.
async fn read_marker(dest: &mut Conn, marker_db: u32, key: &str) -> Result<Option<(String, i64, u32)>> {
    dest.ok(&["SELECT".to_string(), marker_db.to_string()]).await?;
    let v = dest.ok(&["GET", key]).await?;
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

/// What every shard's replication shares.
pub struct SyncContext<'a> {
    pub plan: &'a MigrationPlan,
    pub checkpoints: &'a dyn Checkpoints,
    pub limits: RdbLimits,
    pub dbs: &'a DbSelection,
    pub settings: &'a RedisSettings,
    pub dest: &'a Dest,
    /// The destination was emptied once for every shard of a new cluster-source job: a shard's
    /// snapshot then needs no purge of its slots.
    pub emptied: bool,
}

/// Replicates one shard (see the module docs); returns the replication id and offset reached.
pub async fn replicate_shard(
    cx: &SyncContext<'_>,
    shard: &Shard,
    observer: &ShardObserver<'_>,
    mode: StreamMode,
) -> Result<(String, i64), ConnectorError> {
    let plan = cx.plan;
    let key = shard.checkpoint_key();
    if let Dest::Standalone(spec) = cx.dest
        && let Some(note) = crate::relay::recover(cx.checkpoints, &key, spec, &plan.job_id).await?
    {
        observer.note(note);
    }
    let stored = load_position(cx.checkpoints, &key).await?;
    let relay_failed = matches!(stored, Some(StoredPosition::Loading { relay_failed: true, .. }));
    let marker = match (&stored, cx.dest) {
        (Some(StoredPosition::At { .. }), Dest::Standalone(spec)) => {
            let mut dest = Conn::open(spec).await.map_err(err("connecting to the destination"))?;
            read_marker(&mut dest, cx.dbs.first(), &shard.marker_key(cx))
                .await
                .map_err(err("reading the destination"))?
        }
        _ => None,
    };
    let resume = resume_point(stored, marker);
    let link = handshake(&shard.source, resume.as_ref().map(|(id, off, _)| (id.as_str(), *off)))
        .await
        .map_err(err("connecting to the source as a replica"))?;
    let (replid, offset, db, link) = match link.start.clone() {
        SyncStart::Continue { replid } => {
            let (old_id, offset, db) = resume.clone().unwrap_or_default();
            let replid = if replid.is_empty() { old_id } else { replid };
            tracing::info!(job_id = %plan.job_id, shard = %shard.name, offset, "source continued the replication stream (+CONTINUE)");
            observer.note(format!("resumed the replication stream at offset {offset} without a full resync"));
            observer.ready(false);
            (replid, offset, db, link)
        }
        SyncStart::Full { replid, offset } => {
            if let Some((_, old, _)) = &resume {
                tracing::warn!(job_id = %plan.job_id, shard = %shard.name, offset = old, "the source no longer has the stream after the checkpoint: full resync");
                observer.note(format!(
                    "full resync: the source's backlog no longer holds offset {old}; the snapshot is copied again"
                ));
            }
            let loading = StoredPosition::Loading { full_sync: true, relay: None, relay_failed };
            save_position(cx.checkpoints, &key, &loading).await?;
            let link = snapshot(cx, shard, observer, link, (&replid, offset), relay_failed).await?;
            let at = StoredPosition::At { replid: replid.clone(), offset, db: 0 };
            save_position(cx.checkpoints, &key, &at).await?;
            observer.ready(true);
            if mode == StreamMode::SnapshotOnly {
                return Ok((replid, offset));
            }
            (replid, offset, 0, link)
        }
    };
    let run = StreamRun { cx, shard, observer, replid, offset, db };
    run.run(link).await
}

/// Loads the snapshot that follows `FULLRESYNC`: through the relay when it is safe, otherwise
/// as commands (`relay_failed`: a relay of this snapshot failed on the destination before).
async fn snapshot<'a>(
    cx: &'a SyncContext<'a>,
    shard: &'a Shard,
    observer: &'a ShardObserver<'a>,
    link: ReplicaLink,
    (replid, offset): (&str, i64),
    relay_failed: bool,
) -> Result<ReplicaLink, ConnectorError> {
    let plan = cx.plan;
    let total = source_keys(&shard.source, cx.dbs).await.unwrap_or(0);
    let mut link = link;
    let framing = link.snapshot_framing().await.map_err(err("reading the source's snapshot"))?;
    if let Some(relay) = Relay::prepare(cx, shard, observer, relay_failed).await? {
        match relay.run(link, &framing, (replid, offset), total).await? {
            Outcome::Loaded(link) => return Ok(link),
            Outcome::NotUsed(back) => link = back,
        }
    }
    let mut dest = Conn::open(cx.dest.spec()).await.map_err(err("connecting to the destination"))?;
    let info = dest.info("server").await.map_err(err("reading the destination"))?;
    let dest_version = rdb_version_of(info_field(&info, "redis_version").unwrap_or("0"));
    if !cx.settings.overwrite {
        // The precheck found the selected databases empty: anything there now was written by
        // an earlier attempt of this job and is replaced by the snapshot.
        match &shard.slots {
            None => cx.dest.empty(cx.dbs).await.map_err(err("emptying the destination"))?,
            Some(_) if cx.emptied => {}
            Some(ranges) => {
                let removed = cx.dest.purge_slots(ranges).await.map_err(err("emptying the shard's slots"))?;
                tracing::info!(job_id = %plan.job_id, shard = %shard.name, removed, "the shard's slots were emptied on the destination");
            }
        }
    }
    let mut pipe = None;
    let mut writer = cx.dest.cluster_writer(true);
    let out = match writer.as_mut() {
        Some(w) => SnapshotOut::Cluster(w),
        None => {
            let conn = Conn::open(cx.dest.spec()).await.map_err(err("connecting to the destination"))?;
            SnapshotOut::Pipeline(pipe.insert(Pipeline::new(conn, 0, 16)))
        }
    };
    let mode = WriteMode { destination_rdb_version: dest_version, single_database: cx.dest.is_cluster() };
    let progress = |done: u64| observer.snapshot_progress(done, total.max(done));
    let started = Instant::now();
    let summary = match framing {
        SnapshotFraming::Length(n) => {
            let input = (&mut link.reader).take(n);
            let (summary, rest) = full_sync::load(input, cx.limits, cx.dbs, mode, out, progress)
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
            let (summary, _) = full_sync::load(&mut link.reader, cx.limits, cx.dbs, mode, out, progress)
                .await
                .map_err(err("copying the snapshot"))?;
            link.expect_eof_mark(&mark).await.map_err(err("copying the snapshot"))?;
            summary
        }
    };
    if let Some(pipe) = pipe.as_mut() {
        let mut marker = Vec::new();
        crate::resp::encode_command(&mut marker, &["SELECT".to_string(), cx.dbs.first().to_string()]);
        crate::resp::encode_command(
            &mut marker,
            &["SET".to_string(), shard.marker_key(cx), marker_value(replid, offset, 0)],
        );
        pipe.send(&marker, Shape::Strict(2), summary.keys + 1).await.map_err(err("writing the destination"))?;
        pipe.drain().await.map_err(err("writing the destination"))?;
    }
    tracing::info!(
        job_id = %plan.job_id,
        shard = %shard.name,
        keys = summary.keys,
        big_keys = summary.big_keys,
        expired_skipped = summary.expired_skipped,
        rdb_version = summary.rdb_version,
        secs = started.elapsed().as_secs_f64(),
        "snapshot copied"
    );
    Ok(link)
}

/// The keys of the selected databases on the source now.
pub async fn source_keys(source: &ConnectionSpec, dbs: &DbSelection) -> Result<u64> {
    let mut c = Conn::open(source).await?;
    let info = c.info("keyspace").await?;
    Ok(keyspace(&info).into_iter().filter(|(d, _)| dbs.contains(*d)).map(|(_, k)| k).sum())
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
        let loading = StoredPosition::Loading { full_sync: true, relay: None, relay_failed: false };
        assert_eq!(resume_point(Some(loading), None), None);
        assert_eq!(resume_point(None, Some((id, 5, 0))), None);
    }

    #[test]
    fn stored_positions_round_trip_as_json() {
        let p = StoredPosition::At { replid: "c".repeat(40), offset: 7, db: 2 };
        assert_eq!(serde_json::from_str::<StoredPosition>(&serde_json::to_string(&p).unwrap()).unwrap(), p);
        let l = StoredPosition::Loading { full_sync: true, relay: None, relay_failed: true };
        assert_eq!(serde_json::from_str::<StoredPosition>(&serde_json::to_string(&l).unwrap()).unwrap(), l);
    }

    #[test]
    fn a_cluster_shards_checkpoint_is_named_by_its_slots() {
        assert_eq!(position_key(""), "position");
        assert_eq!(position_key("0-5460"), "position/0-5460");
    }
}
