//! The snapshot relay: when it is safe, the destination loads the source's RDB itself, as a
//! replica of dts for the snapshot only, instead of executing a command per key (loading an RDB
//! costs a Redis server about half the CPU of executing the same keys as commands: no lookup per
//! write, and the keyspace is sized up front by the RDB's `RESIZEDB`). dts stays the source's
//! replica throughout: the command stream after the snapshot is applied by `apply` as always.
//!
//! When (otherwise the snapshot is copied as commands, `full_sync`, unchanged):
//! - the source shard is a standalone server and so is the destination, reached without TLS
//!   (the destination's replica link to dts is plain TCP);
//! - every database is selected and `DstOverwrite` is off: a replica's full sync empties the
//!   whole destination, which is what the command path does then (`FLUSHALL`) too;
//! - the destination reads the source's RDB version (`rdb_version_of` both `redis_version`s);
//! - the destination is a master with no `masterauth` of its own (a password to put back after
//!   a crash would have to be kept in dts's store);
//! - `ExternParams` `SnapshotRelay` is not false, and no relay of this snapshot failed on the
//!   destination before (`RedisError::Relay`: the next attempt copies it as commands, which
//!   names, e.g., a module type the destination lacks);
//! - and at run time: the destination allows `CONFIG SET` and `REPLICAOF`, and connects back
//!   and authenticates within 10 s, with `capa eof` for a diskless snapshot. These are checked
//!   before any byte of the snapshot is consumed, so a refusal falls back to commands within the
//!   same attempt.
//!
//! How: dts listens on an ephemeral port of the local address of its own connection to the
//! destination (the address the destination reaches it at), checkpoints the shard as `Loading`
//! with a [`RelayRecord`] (that address and the destination's `masteruser`, `masterauth` and
//! `repl-diskless-load`), sets `masterauth` to a one-time token, `masteruser` empty and
//! `repl-diskless-load on-empty-db` (an empty destination parses the RDB as it arrives instead of
//! writing it to its disk first; one that is not empty still loads from disk), sends
//! `REPLICAOF <addr> <port>`, answers the handshake and forwards the snapshot (`relay_master`),
//! acknowledging the source once a second while the destination loads, until `INFO` says
//! `master_link_status:up`, `master_sync_in_progress:0` and `loading:0`. Then `REPLICAOF NO ONE`,
//! the settings put back, the record cleared, the marker written as after the command path's
//! snapshot, and the stream continues from the same `(replid, offset)`.
//!
//! Correctness:
//! - Data: the destination's full sync is Redis's own load of the very RDB the source sent, with
//!   the source's replication id and offset, so it then holds the source's dataset at `offset`,
//!   where dts's stream continues (`At { replid, offset, db 0 }`, as after the command path).
//! - Expired keys: a replica loads keys whose TTL already passed (Redis 7.0 `rdbLoad` drops them
//!   only on a master) and leaves their expiry to its master. Once promoted it expires them
//!   itself: reads, `EXISTS`, `SCAN` (hence the consistency check) treat them as absent at once,
//!   active expiry removes them, and the source's `DEL` for each arrives in the stream. Expiry
//!   times are absolute (as with `RESTORE ... ABSTTL`): nothing expired comes back.
//! - Never a replica forever: the record is checkpointed before any setting changes. An error
//!   puts the destination back at once; a crash (kill -9) is put back by [`recover`] when the
//!   shard's replication starts again (before anything else) and by the job's release: if the
//!   destination is a replica of the recorded address it gets `REPLICAOF NO ONE` (after any
//!   load in progress), and the recorded settings are set again. The shard is `Loading`
//!   throughout, so a restart makes a fresh full resync.
//! - Only the destination: one connection, from its IP, with the token (`relay_master`).
//!
//! Progress (keys copied / total, total from the source's `INFO keyspace`): the keys the
//! destination holds (its `INFO keyspace`, which counts the keys loaded so far while it loads),
//! read four times a second from the first byte forwarded to the end of the load. A destination
//! that loads from its disk (not empty, or `repl-diskless-load` unknown) shows them only once the
//! transfer is over and its load begins.

use std::time::Duration;

use dts_core::{ConnectionSpec, ConnectorError, ReplicationObserver};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::conn::{Conn, info_field, keyspace, server_error};
use crate::dbs::DbSelection;
use crate::dest::Dest;
use crate::error::{RedisError, Result};
use crate::relay_master::{RelayListener, RelayReplica};
use crate::replica::{ReplicaLink, SnapshotFraming, send_ack};
use crate::resp::Reply;
use crate::shards::ShardObserver;
use crate::stream::marker_value;
use crate::sync::{Shard, StoredPosition, SyncContext, err, load_position, rdb_version_of, save_position};

/// The prefix of the one-time `masterauth` token.
const TOKEN_PREFIX: &str = "dts-relay-";
/// How long the destination has to connect back and finish its handshake.
const CONNECT_BACK: Duration = Duration::from_secs(10);
/// How long the destination may show no sign of syncing or loading after the snapshot was
/// forwarded.
const NO_PROGRESS: Duration = Duration::from_secs(60);
/// How long putting the destination back waits for a load in progress to finish.
const LOAD_WAIT: Duration = Duration::from_secs(600);
/// How often the destination's state is read once the snapshot is forwarded (its load ends
/// within a few of these: a diskless load has parsed nearly everything by then).
const POLL: Duration = Duration::from_millis(20);
/// The destination settings the relay replaces, with the value it sets (`masterauth`: the
/// token). A setting the destination does not know is left alone (`masterauth` must exist).
const SETTINGS: [(&str, &str); 3] = [("masteruser", ""), ("masterauth", ""), ("repl-diskless-load", "on-empty-db")];
/// How often the destination's key count is read for progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A relay that may be live on the destination, checkpointed before it changes anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayRecord {
    /// Where dts listened: the destination's `master_host`/`master_port` while it is a replica
    /// of the relay.
    pub host: String,
    pub port: u16,
    /// The destination's settings before the relay.
    pub saved: Vec<(String, String)>,
}

/// Why a snapshot does not go through the relay, from the job alone (`None`: it may).
pub fn plan_refusal(
    enabled: bool,
    shard: &Shard,
    dest: &Dest,
    dbs: &DbSelection,
    overwrite: bool,
    failed_before: bool,
) -> Option<&'static str> {
    if !enabled {
        Some("ExternParams SnapshotRelay is false")
    } else if shard.slots.is_some() {
        Some("the source is a cluster")
    } else if !matches!(dest, Dest::Standalone(_)) {
        Some("the destination is a cluster")
    } else if dest.spec().tls != dts_core::TlsMode::Disabled {
        Some("the destination is reached over TLS, and the relay's link to it would not be")
    } else if !dbs.is_all() {
        Some("only some databases are selected")
    } else if overwrite {
        Some("DstOverwrite keeps the destination's keys")
    } else if failed_before {
        Some("a relay of this snapshot failed on the destination before")
    } else {
        None
    }
}

/// Why a snapshot does not go through the relay, from the servers (`None`: it may).
pub fn server_refusal(
    source_rdb: u16,
    destination_rdb: u16,
    destination_role: &str,
    saved: &[(String, String)],
) -> Option<String> {
    if destination_rdb < source_rdb {
        Some(format!("the destination reads RDB version {destination_rdb}, the source writes {source_rdb}"))
    } else if destination_role != "master" {
        Some(format!("the destination is a {destination_role}, not a master"))
    } else if saved.iter().any(|(name, value)| name == "masterauth" && !value.is_empty()) {
        Some("the destination has a masterauth of its own".to_string())
    } else {
        None
    }
}

/// What became of a snapshot offered to the relay.
pub(crate) enum Outcome {
    /// The destination holds the snapshot and is a master again.
    Loaded(ReplicaLink),
    /// Not a byte of the snapshot was consumed: copy it as commands.
    NotUsed(ReplicaLink),
}

/// One relay of one shard's snapshot.
pub(crate) struct Relay<'a> {
    cx: &'a SyncContext<'a>,
    shard: &'a Shard,
    observer: &'a ShardObserver<'a>,
    /// dts's own connection to the destination (its local address is where the relay listens).
    dest: Conn,
    saved: Vec<(String, String)>,
}

fn new_token() -> String {
    let bytes: [u8; 20] = rand::random();
    let mut token = TOKEN_PREFIX.to_string();
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    token
}

async fn redis_version(conn: &mut Conn) -> Result<String> {
    let info = conn.info("server").await?;
    Ok(info_field(&info, "redis_version").unwrap_or("0").to_string())
}

/// A setting's value (`None`: the server has no such setting).
async fn config_get(conn: &mut Conn, name: &str) -> Result<Option<String>> {
    match conn.ok(&["CONFIG", "GET", name]).await? {
        Reply::Array(Some(v)) if v.len() == 2 => Ok(Some(v[1].text().unwrap_or_default())),
        Reply::Array(Some(v)) if v.is_empty() => Ok(None),
        _ => Err(RedisError::Protocol(format!("CONFIG GET {name} answered something other than a pair"))),
    }
}

/// The keys the destination holds (every database).
async fn key_count(conn: &mut Conn) -> Result<u64> {
    Ok(keyspace(&conn.info("keyspace").await?).into_iter().map(|(_, k)| k).sum())
}

/// Whether the destination is a replica of the relay at `record`, from `INFO replication`.
fn replica_of(replication: &[(String, String)], record: &RelayRecord) -> bool {
    info_field(replication, "role") == Some("slave")
        && info_field(replication, "master_host") == Some(record.host.as_str())
        && info_field(replication, "master_port") == Some(record.port.to_string().as_str())
}

/// `args`, waiting while the destination answers `-LOADING` (at most [`LOAD_WAIT`]).
async fn after_loading(dest: &mut Conn, args: &[&str]) -> Result<()> {
    let deadline = Instant::now() + LOAD_WAIT;
    loop {
        match dest.call(args).await? {
            Reply::Error(e) if e.starts_with(b"LOADING") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Reply::Error(e) => return Err(server_error(args, &e)),
            _ => return Ok(()),
        }
    }
}

/// Puts the destination back: no longer a replica of the relay at `record` (after a load in
/// progress), its settings as recorded. Idempotent; returns whether it was still a replica.
async fn put_back(dest: &mut Conn, record: &RelayRecord) -> Result<bool> {
    let replication = dest.info("replication").await?;
    let was_replica = replica_of(&replication, record);
    if was_replica {
        after_loading(dest, &["REPLICAOF", "NO", "ONE"]).await?;
    }
    for (name, value) in &record.saved {
        after_loading(dest, &["CONFIG", "SET", name, value]).await?;
    }
    Ok(was_replica)
}

/// Puts the destination back after a relay a crash left behind (see the module docs), when the
/// shard's checkpoint `key` records one; returns a note for the job's detail.
pub async fn recover(
    checkpoints: &dyn dts_core::Checkpoints,
    key: &str,
    dest: &ConnectionSpec,
    job_id: &str,
) -> Result<Option<String>, ConnectorError> {
    let Some(StoredPosition::Loading { full_sync, relay: Some(record), relay_failed }) =
        load_position(checkpoints, key).await?
    else {
        return Ok(None);
    };
    const UNDO: &str = "putting the destination back after an interrupted snapshot relay";
    let mut conn = Conn::open(dest).await.map_err(err(UNDO))?;
    let was_replica = put_back(&mut conn, &record).await.map_err(err(UNDO))?;
    save_position(checkpoints, key, &StoredPosition::Loading { full_sync, relay: None, relay_failed }).await?;
    let addr = format!("{}:{}", record.host, record.port);
    tracing::warn!(job_id, relay = %addr, was_replica, "an interrupted snapshot relay was undone: the destination is a master with its settings restored");
    Ok(Some(if was_replica {
        format!(
            "the destination was left a replica of dts's snapshot relay ({addr}) by an interruption: REPLICAOF NO ONE, masterauth/masteruser restored"
        )
    } else {
        "an interrupted snapshot relay was undone: masterauth/masteruser restored on the destination".to_string()
    }))
}

impl<'a> Relay<'a> {
    /// The relay for this shard's snapshot when it is safe (see the module docs), `None`
    /// otherwise.
    pub(crate) async fn prepare(
        cx: &'a SyncContext<'a>,
        shard: &'a Shard,
        observer: &'a ShardObserver<'a>,
        failed_before: bool,
    ) -> Result<Option<Relay<'a>>, ConnectorError> {
        let job_id = &cx.plan.job_id;
        let settings = cx.settings;
        if let Some(why) =
            plan_refusal(settings.snapshot_relay, shard, cx.dest, cx.dbs, settings.overwrite, failed_before)
        {
            if failed_before {
                return Ok(Self::refused(cx, shard, observer, why));
            }
            tracing::info!(job_id = %job_id, shard = %shard.name, reason = why, "the snapshot is copied as commands (no relay)");
            return Ok(None);
        }
        let mut source = Conn::open(&shard.source).await.map_err(err("connecting to the source"))?;
        let source_rdb = rdb_version_of(&redis_version(&mut source).await.map_err(err("reading the source"))?);
        let mut dest = Conn::open(cx.dest.spec()).await.map_err(err("connecting to the destination"))?;
        let dest_rdb = rdb_version_of(&redis_version(&mut dest).await.map_err(err("reading the destination"))?);
        let replication = dest.info("replication").await.map_err(err("reading the destination"))?;
        let role = info_field(&replication, "role").unwrap_or("unknown").to_string();
        let mut saved = Vec::new();
        for (name, _) in SETTINGS {
            match config_get(&mut dest, name).await {
                Ok(Some(value)) => saved.push((name.to_string(), value)),
                Ok(None) if name != "masterauth" => {}
                Ok(None) => return Ok(Self::refused(cx, shard, observer, "the destination has no masterauth setting")),
                Err(e) => {
                    let why = format!("the destination does not allow CONFIG GET {name} ({e})");
                    return Ok(Self::refused(cx, shard, observer, &why));
                }
            }
        }
        if let Some(why) = server_refusal(source_rdb, dest_rdb, &role, &saved) {
            tracing::info!(job_id = %job_id, shard = %shard.name, reason = %why, "the snapshot is copied as commands (no relay)");
            return Ok(None);
        }
        Ok(Some(Relay { cx, shard, observer, dest, saved }))
    }

    fn refused(cx: &SyncContext<'_>, shard: &Shard, observer: &ShardObserver<'_>, why: &str) -> Option<Relay<'a>> {
        tracing::warn!(job_id = %cx.plan.job_id, shard = %shard.name, reason = why, "the snapshot relay was not used: the snapshot is copied as commands");
        observer.note(format!("snapshot relay not used ({why}): the snapshot is copied as commands"));
        None
    }

    async fn save(&self, relay: Option<RelayRecord>, relay_failed: bool) -> Result<(), ConnectorError> {
        let p = StoredPosition::Loading { full_sync: true, relay, relay_failed };
        save_position(self.cx.checkpoints, &self.shard.checkpoint_key(), &p).await
    }

    /// Relays the snapshot that follows `FULLRESYNC (replid, offset)`, whose framing line was
    /// read; `total` is the source's key count.
    pub(crate) async fn run(
        mut self,
        mut link: ReplicaLink,
        framing: &SnapshotFraming,
        (replid, offset): (&str, i64),
        total: u64,
    ) -> Result<Outcome, ConnectorError> {
        let started = std::time::Instant::now();
        let (local, dest_ip) = (self.dest.sockets.0.ip(), self.dest.sockets.1.ip());
        let listener = match RelayListener::bind(local, dest_ip).await {
            Ok(l) => l,
            Err(e) => {
                Self::refused(self.cx, self.shard, self.observer, &format!("listening on {local}: {e}"));
                return Ok(Outcome::NotUsed(link));
            }
        };
        let record = RelayRecord { host: local.to_string(), port: listener.addr().port(), saved: self.saved.clone() };
        self.save(Some(record.clone()), false).await?;
        let token = new_token();
        let replica = match self.engage(&record, &token, &listener, framing).await {
            Ok(r) => r,
            Err(e) => {
                put_back(&mut self.dest, &record).await.map_err(err("putting the destination back"))?;
                self.save(None, false).await?;
                Self::refused(self.cx, self.shard, self.observer, &e.to_string());
                return Ok(Outcome::NotUsed(link));
            }
        };
        let job_id = &self.cx.plan.job_id;
        let addr = listener.addr();
        tracing::info!(job_id = %job_id, shard = %self.shard.name, relay = %addr, replica = %replica.peer(), "snapshot relay: the destination is loading the source's snapshot from dts");
        self.observer.note(format!(
            "snapshot relay: the destination loads the source's snapshot itself as a replica of dts ({addr}); until the load ends its masterauth is a one-time token, masteruser empty and repl-diskless-load on-empty-db (then restored: {})",
            describe(&record.saved)
        ));
        let mut progress = Progress { observer: self.observer, total, reported: 0 };
        let loaded = self.transfer(replica, &mut link, framing, (replid, offset), &record, &mut progress).await;
        let (keys, bytes) = match loaded {
            Ok(done) => done,
            Err(e) => {
                let on_destination = matches!(e, RedisError::Relay(_));
                let undone = put_back(&mut self.dest, &record).await;
                self.save(if undone.is_ok() { None } else { Some(record) }, on_destination).await?;
                return Err(e.into_connector("relaying the snapshot"));
            }
        };
        drop(listener);
        put_back(&mut self.dest, &record).await.map_err(err("putting the destination back after the relay"))?;
        self.save(None, false).await?;
        self.write_marker(replid, offset).await.map_err(err("writing the destination"))?;
        self.observer.snapshot_progress(keys, total.max(keys));
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(job_id = %job_id, shard = %self.shard.name, keys, bytes, secs,
            "snapshot relayed: the destination loaded the snapshot itself (relay)");
        self.observer.note(format!(
            "snapshot relay: the destination loaded the snapshot itself ({keys} keys, {:.1} MiB in {secs:.1} s); REPLICAOF NO ONE, its settings restored",
            bytes as f64 / (1024.0 * 1024.0)
        ));
        Ok(Outcome::Loaded(link))
    }

    /// Sets the token, makes the destination a replica of the relay and answers its handshake.
    async fn engage(
        &mut self,
        record: &RelayRecord,
        token: &str,
        listener: &RelayListener,
        framing: &SnapshotFraming,
    ) -> Result<RelayReplica> {
        for (name, value) in &record.saved {
            let Some((_, preset)) = SETTINGS.iter().find(|(n, _)| n == name) else { continue };
            let wanted = if name == "masterauth" { token } else { preset };
            if value != wanted {
                self.dest.ok(&["CONFIG", "SET", name, wanted]).await?;
            }
        }
        let port = record.port.to_string();
        self.dest.ok(&["REPLICAOF", &record.host, &port]).await?;
        let replica = listener.accept(token, Instant::now() + CONNECT_BACK).await?;
        if !replica.reads(framing) {
            return Err(RedisError::Operator("the destination does not read a diskless (EOF-framed) snapshot".into()));
        }
        Ok(replica)
    }

    /// Forwards the snapshot and waits until the destination loaded it; returns its key count
    /// and the bytes forwarded.
    async fn transfer(
        &mut self,
        mut replica: RelayReplica,
        link: &mut ReplicaLink,
        framing: &SnapshotFraming,
        (replid, offset): (&str, i64),
        record: &RelayRecord,
        progress: &mut Progress<'_>,
    ) -> Result<(u64, u64)> {
        replica.start_full_resync(replid, offset, framing).await?;
        // The destination's key count on a connection of its own while the bytes flow (a
        // diskless load parses them as they arrive); dropped, mid-command or not, with it.
        let mut watch = Conn::open(self.cx.dest.spec()).await?;
        let bytes = tokio::select! {
            sent = replica.forward(&mut link.reader, framing) => sent?,
            never = progress.watch(&mut watch) => match never {},
        };
        drop(watch);
        let mut last_ack: Option<Instant> = None;
        let mut idle_since: Option<Instant> = None;
        let mut last_progress: Option<Instant> = None;
        loop {
            if replica.closed().await {
                return Err(RedisError::Relay("the destination closed its replica link before it had loaded".into()));
            }
            let replication = self.dest.info("replication").await?;
            let persistence = self.dest.info("persistence").await?;
            if !replica_of(&replication, record) {
                return Err(RedisError::Relay("the destination stopped being a replica of dts during the load".into()));
            }
            let is = |info: &[(String, String)], name: &str, value: &str| info_field(info, name) == Some(value);
            let loading = is(&persistence, "loading", "1") || is(&persistence, "async_loading", "1");
            let syncing = is(&replication, "master_sync_in_progress", "1");
            if is(&replication, "master_link_status", "up") && !loading && !syncing {
                break;
            }
            if loading && last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                progress.keys(key_count(&mut self.dest).await?);
                last_progress = Some(Instant::now());
            }
            if loading || syncing {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() > NO_PROGRESS {
                return Err(RedisError::Relay("the destination neither synced nor loaded the snapshot".into()));
            }
            // The source hears from its replica while the destination loads (a Redis master
            // drops a silent replica after repl-timeout).
            if last_ack.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                send_ack(&mut link.writer, offset).await?;
                last_ack = Some(Instant::now());
            }
            tokio::time::sleep(POLL).await;
        }
        Ok((key_count(&mut self.dest).await?, bytes))
    }

    /// The shard's marker, as the command path writes it after its snapshot.
    async fn write_marker(&mut self, replid: &str, offset: i64) -> Result<()> {
        self.dest.ok(&["SELECT".to_string(), self.cx.dbs.first().to_string()]).await?;
        self.dest.ok(&["SET".to_string(), self.shard.marker_key(self.cx), marker_value(replid, offset, 0)]).await?;
        Ok(())
    }
}

/// Keys copied while a relay runs: the destination's key count (see the module docs).
struct Progress<'a> {
    observer: &'a ShardObserver<'a>,
    total: u64,
    reported: u64,
}

impl Progress<'_> {
    fn keys(&mut self, keys: u64) {
        if keys > self.reported {
            self.reported = keys;
            self.observer.snapshot_progress(keys, self.total.max(keys));
        }
    }

    /// Reports the destination's key count every [`PROGRESS_EVERY`] until dropped (a failed
    /// read ends the reports, not the relay).
    async fn watch(&mut self, conn: &mut Conn) -> std::convert::Infallible {
        loop {
            match key_count(conn).await {
                Ok(keys) => self.keys(keys),
                Err(_) => std::future::pending::<()>().await,
            }
            tokio::time::sleep(PROGRESS_EVERY).await;
        }
    }
}

/// Settings as `name value; ...` for notes (the token never appears: these are the saved ones).
fn describe(settings: &[(String, String)]) -> String {
    let list: Vec<String> =
        settings.iter().map(|(n, v)| if v.is_empty() { format!("{n} \"\"") } else { format!("{n} {v}") }).collect();
    list.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(slots: bool) -> Shard {
        Shard { name: String::new(), source: ConnectionSpec::default(), slots: slots.then(|| vec![(0u16, 100u16)]) }
    }

    #[test]
    fn only_a_whole_standalone_instance_without_overwrite_goes_through_the_relay() {
        let standalone = Dest::Standalone(ConnectionSpec::default());
        let all = DbSelection::All;
        assert_eq!(plan_refusal(true, &shard(false), &standalone, &all, false, false), None);
        assert!(plan_refusal(false, &shard(false), &standalone, &all, false, false).unwrap().contains("SnapshotRelay"));
        assert!(plan_refusal(true, &shard(true), &standalone, &all, false, false).is_some());
        assert!(plan_refusal(true, &shard(false), &standalone, &DbSelection::Only(vec![0]), false, false).is_some());
        assert!(plan_refusal(true, &shard(false), &standalone, &all, true, false).unwrap().contains("DstOverwrite"));
        assert!(plan_refusal(true, &shard(false), &standalone, &all, false, true).is_some());
        let tls = Dest::Standalone(ConnectionSpec { tls: dts_core::TlsMode::Required, ..Default::default() });
        assert!(plan_refusal(true, &shard(false), &tls, &all, false, false).unwrap().contains("TLS"));
    }

    #[test]
    fn the_destination_must_read_the_rdb_be_a_master_and_have_no_masterauth() {
        let empty = vec![("masteruser".to_string(), String::new()), ("masterauth".to_string(), String::new())];
        assert_eq!(server_refusal(10, 10, "master", &empty), None);
        assert_eq!(server_refusal(10, 11, "master", &empty), None);
        assert!(server_refusal(11, 10, "master", &empty).unwrap().contains("RDB version 10"));
        assert!(server_refusal(10, 10, "slave", &empty).is_some());
        let with_auth = vec![("masteruser".to_string(), "u".to_string()), ("masterauth".to_string(), "pw".to_string())];
        assert!(server_refusal(10, 10, "master", &with_auth).unwrap().contains("masterauth"));
        let user_only = vec![("masteruser".to_string(), "u".to_string()), ("masterauth".to_string(), String::new())];
        assert_eq!(server_refusal(10, 10, "master", &user_only), None);
    }

    #[test]
    fn a_destination_is_a_replica_of_the_relay_only_at_its_address() {
        let record = RelayRecord { host: "127.0.0.1".into(), port: 4000, saved: Vec::new() };
        let info = |role: &str, port: &str| {
            crate::conn::parse_info(&format!("role:{role}\r\nmaster_host:127.0.0.1\r\nmaster_port:{port}\r\n"))
        };
        assert!(replica_of(&info("slave", "4000"), &record));
        assert!(!replica_of(&info("slave", "4001"), &record));
        assert!(!replica_of(&info("master", "4000"), &record));
    }

    #[test]
    fn tokens_are_one_time_and_recognisable() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 40);
    }

    #[test]
    fn relay_records_round_trip_in_the_loading_checkpoint_and_old_ones_still_read() {
        let record =
            RelayRecord { host: "10.0.0.1".into(), port: 40_000, saved: vec![("masterauth".into(), String::new())] };
        let p = StoredPosition::Loading { full_sync: true, relay: Some(record), relay_failed: false };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<StoredPosition>(&json).unwrap(), p);
        let old: StoredPosition = serde_json::from_str(r#"{"full_sync":true}"#).unwrap();
        assert_eq!(old, StoredPosition::Loading { full_sync: true, relay: None, relay_failed: false });
        let plain = serde_json::to_string(&old).unwrap();
        assert_eq!(plain, r#"{"full_sync":true}"#);
    }
}
