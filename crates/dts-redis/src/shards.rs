//! A Redis job's replication as a whole: the source's topology (a standalone server is one
//! shard; a Redis Cluster has one shard per master, read from `CLUSTER NODES`), one replication
//! per shard run concurrently (each with its own replica link, destination writer and
//! checkpoint), and what the engine sees of them together: progress summed, lag of the slowest
//! shard, the snapshot finished once every shard's is, one position with every shard.
//!
//! A cluster source is found again through the nodes seen before (`cluster/nodes`), so a job
//! whose configured node failed over or died still reaches every shard's current master; a
//! shard's checkpoint is named by its slots, so the master promoted in a failover continues it.
//! A shard that fails fails the whole replication (the others stop where they are, their
//! positions checkpointed); the engine's retry starts every shard again, each from its own
//! checkpoint.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;

use dts_core::{
    Checkpoints, Completion, ConnectionSpec, ConnectorError, ErrorClass, Lag, MigrationPlan, Position, RedisPosition,
    ReplicationObserver, ReplicationOffset, StreamMode,
};

use crate::dbs::DbSelection;
use crate::dest::Dest;
use crate::rdb::RdbLimits;
use crate::settings::RedisSettings;
use crate::slots::ranges_name;
use crate::sync::{POSITION_KEY, Shard, SyncContext, err, replicate_shard};
use crate::topology::{Topology, discover, spec_at};

/// The checkpoint of a cluster source's node addresses (seeds for finding it again).
pub const NODES_KEY: &str = "cluster/nodes";

/// What the shards report, combined for the engine's observer.
pub struct Shared<'a> {
    inner: &'a dyn ReplicationObserver,
    state: Mutex<State>,
}

struct State {
    snapshot: Vec<(u64, u64)>,
    lags: Vec<Option<Lag>>,
    ready: Vec<bool>,
    any_snapshot: bool,
    finished: bool,
}

impl<'a> Shared<'a> {
    pub fn new(inner: &'a dyn ReplicationObserver, shards: usize) -> Shared<'a> {
        let state = State {
            snapshot: vec![(0, 0); shards],
            lags: vec![None; shards],
            ready: vec![false; shards],
            any_snapshot: false,
            finished: false,
        };
        Shared { inner, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One shard's observer: notes carry the shard's name; progress and lag go through [`Shared`].
pub struct ShardObserver<'a> {
    shared: &'a Shared<'a>,
    index: usize,
    prefix: String,
}

impl<'a> ShardObserver<'a> {
    pub fn new(shared: &'a Shared<'a>, index: usize, name: &str) -> ShardObserver<'a> {
        let prefix = if name.is_empty() { String::new() } else { format!("shard {name}: ") };
        ShardObserver { shared, index, prefix }
    }

    /// The shard's destination holds its data (`snapshot`: after a snapshot; otherwise the
    /// stream continued). Once every shard is ready and one of them loaded a snapshot, the
    /// engine hears that the snapshot is finished.
    pub fn ready(&self, snapshot: bool) {
        let mut s = self.shared.lock();
        s.ready[self.index] = true;
        s.any_snapshot |= snapshot;
        if s.any_snapshot && !s.finished && s.ready.iter().all(|r| *r) {
            s.finished = true;
            drop(s);
            self.shared.inner.snapshot_finished();
        }
    }
}

impl ReplicationObserver for ShardObserver<'_> {
    fn progress(&self, lag: Lag) {
        let combined = {
            let mut s = self.shared.lock();
            s.lags[self.index] = Some(lag);
            combine(&s.lags)
        };
        self.shared.inner.progress(combined);
    }

    fn completion(&self) -> Completion {
        self.shared.inner.completion()
    }

    fn applied(&self, changes: u64) {
        self.shared.inner.applied(changes);
    }

    fn snapshot_progress(&self, done: u64, total: u64) {
        let (done, total) = {
            let mut s = self.shared.lock();
            s.snapshot[self.index] = (done, total);
            s.snapshot.iter().fold((0, 0), |(d, t), (a, b)| (d + a, t + b))
        };
        self.shared.inner.snapshot_progress(done, total);
    }

    fn snapshot_finished(&self) {
        self.ready(true);
    }

    fn note(&self, message: String) {
        self.shared.inner.note(format!("{}{message}", self.prefix));
    }
}

/// The lag of all shards: bytes behind summed, seconds of the slowest, caught up when every
/// shard is (a shard that has not reported yet is not).
fn combine(lags: &[Option<Lag>]) -> Lag {
    let known: Vec<&Lag> = lags.iter().flatten().collect();
    Lag {
        seconds: known.iter().filter_map(|l| l.seconds).max(),
        behind: known.iter().map(|l| l.behind).sum::<Option<u64>>(),
        caught_up: known.len() == lags.len() && known.iter().all(|l| l.caught_up),
    }
}

/// The selection of a job with a cluster on either side: database 0 only.
fn cluster_selection(dbs: DbSelection, source_is_cluster: bool) -> Result<DbSelection, ConnectorError> {
    match dbs {
        DbSelection::Only(list) if list != [0] => Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            "a Redis Cluster has database 0 only: select database 0 (DatabaseInfo [{\"Database\":\"0\"}])",
            "",
        )),
        DbSelection::All if !source_is_cluster => Ok(DbSelection::All),
        _ => Ok(DbSelection::Only(vec![0])),
    }
}

/// The shards of a source topology.
pub fn shards_of(source: &ConnectionSpec, topology: &Topology) -> Vec<Shard> {
    match topology {
        Topology::Standalone => vec![Shard { name: String::new(), source: source.clone(), slots: None }],
        Topology::Cluster(view) => view
            .masters()
            .into_iter()
            .map(|m| Shard {
                name: ranges_name(&m.ranges),
                source: spec_at(source, &m.host, m.port),
                slots: Some(m.ranges.clone()),
            })
            .collect(),
    }
}

async fn known_nodes(checkpoints: &dyn Checkpoints) -> Result<Vec<String>, ConnectorError> {
    Ok(checkpoints.get(NODES_KEY).await?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
}

/// The source's topology, found through the configured node or the nodes seen before.
pub async fn source_topology(plan: &MigrationPlan, checkpoints: &dyn Checkpoints) -> Result<Topology, ConnectorError> {
    let known = known_nodes(checkpoints).await?;
    let topology = discover(&plan.source, &known).await.map_err(err("reading the source's topology"))?;
    if let Topology::Cluster(view) = &topology {
        let mut addrs = view.addrs();
        addrs.extend(known.into_iter().filter(|a| !view.addrs().contains(a)));
        addrs.truncate(64);
        let value = serde_json::to_string(&addrs).unwrap_or_else(|_| "[]".into());
        checkpoints.put(NODES_KEY, &value).await?;
    }
    Ok(topology)
}

/// The source servers whose settings a job changes: the standalone server or every master.
pub async fn source_servers(plan: &MigrationPlan, checkpoints: &dyn Checkpoints) -> Vec<ConnectionSpec> {
    match source_topology(plan, checkpoints).await {
        Ok(t) => shards_of(&plan.source, &t).into_iter().map(|s| s.source).collect(),
        Err(_) => vec![plan.source.clone()],
    }
}

/// Replicates every shard of the plan's source into its destination (see the module docs).
pub async fn replicate(
    plan: &MigrationPlan,
    checkpoints: &dyn Checkpoints,
    observer: &dyn ReplicationObserver,
    limits: RdbLimits,
    mode: StreamMode,
) -> Result<Position, ConnectorError> {
    let settings = RedisSettings::parse(plan.extern_params.as_deref()).map_err(err("ExternParams"))?;
    let mut dbs = DbSelection::of(plan)?;
    let source = source_topology(plan, checkpoints).await?;
    let dest = Dest::discover(plan.destination()?).await.map_err(err("reading the destination's topology"))?;
    for (side, healthy) in [
        ("source", if let Topology::Cluster(v) = &source { v.state_ok && v.slot_map().uncovered() == 0 } else { true }),
        (
            "destination",
            if let Dest::Cluster { view, .. } = &dest {
                view.state_ok && view.slot_map().uncovered() == 0
            } else {
                true
            },
        ),
    ] {
        if !healthy {
            return Err(ConnectorError::new(
                ErrorClass::Transient,
                format!("the {side} cluster is not serving every slot (cluster_state is not ok)"),
                "",
            ));
        }
    }
    if source.is_cluster() || dest.is_cluster() {
        dbs = cluster_selection(dbs, source.is_cluster())?;
    }
    let shards = shards_of(&plan.source, &source);
    let servers: Vec<ConnectionSpec> = shards.iter().map(|s| s.source.clone()).collect();
    if let Some(note) = crate::source_config::apply(plan, &servers, checkpoints).await? {
        observer.note(note);
    }
    // A new job whose source is a cluster: empty the destination once for all shards, so no
    // shard's snapshot has to remove its slots' keys one by one.
    let mut emptied = false;
    if source.is_cluster() && !settings.overwrite && checkpoints.scan(&format!("{POSITION_KEY}/")).await?.is_empty() {
        dest.empty(&dbs).await.map_err(err("emptying the destination"))?;
        emptied = true;
    }
    tracing::info!(job_id = %plan.job_id, source = %source.describe(), destination = if dest.is_cluster() { "a cluster" } else { "standalone" }, shards = shards.len(), "replicating");
    let shared = Shared::new(observer, shards.len());
    let observers: Vec<ShardObserver<'_>> =
        shards.iter().enumerate().map(|(i, s)| ShardObserver::new(&shared, i, &s.name)).collect();
    let cx = SyncContext { plan, checkpoints, limits, dbs: &dbs, settings: &settings, dest: &dest, emptied };
    let runs: Vec<ShardFuture<'_>> = shards
        .iter()
        .zip(&observers)
        .map(|(s, o)| Box::pin(replicate_shard(&cx, s, o, mode)) as ShardFuture<'_>)
        .collect();
    let reached = try_join_all(runs).await?;
    if let Some(note) = crate::source_config::restore(plan, &servers, checkpoints).await? {
        observer.note(note);
    }
    let shards = shards
        .iter()
        .zip(reached)
        .map(|(s, (replid, offset))| (s.name.clone(), ReplicationOffset { replid, offset }))
        .collect();
    Ok(Position::Redis(RedisPosition { shards }))
}

/// A future that fails with the connector's error.
type Fallible<'a, T> = Pin<Box<dyn Future<Output = Result<T, ConnectorError>> + Send + 'a>>;
type ShardFuture<'a> = Fallible<'a, (String, i64)>;

/// Runs every future on this task until all succeed (their outputs in order) or one fails (the
/// others are dropped).
async fn try_join_all<T>(futures: Vec<Fallible<'_, T>>) -> Result<Vec<T>, ConnectorError> {
    let mut futures: Vec<Option<_>> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in futures.iter_mut().zip(out.iter_mut()) {
            let Some(f) = slot else { continue };
            match f.as_mut().poll(cx) {
                Poll::Ready(Ok(v)) => {
                    *result = Some(v);
                    *slot = None;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => pending = true,
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(Ok(())) }
    })
    .await?;
    Ok(out.into_iter().map(|v| v.expect("every future finished")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_of_shards_is_the_slowest_and_caught_up_only_when_all_are() {
        let a = Lag { seconds: Some(1), behind: Some(10), caught_up: false };
        let b = Lag { seconds: Some(0), behind: Some(0), caught_up: true };
        assert_eq!(combine(&[Some(a), Some(b)]), Lag { seconds: Some(1), behind: Some(10), caught_up: false });
        assert!(!combine(&[Some(b), None]).caught_up);
        assert!(combine(&[Some(b), Some(b)]).caught_up);
    }

    #[test]
    fn a_cluster_takes_database_0_only() {
        assert_eq!(cluster_selection(DbSelection::All, true).unwrap(), DbSelection::Only(vec![0]));
        assert_eq!(cluster_selection(DbSelection::All, false).unwrap(), DbSelection::All);
        assert_eq!(cluster_selection(DbSelection::Only(vec![0]), false).unwrap(), DbSelection::Only(vec![0]));
        assert!(cluster_selection(DbSelection::Only(vec![0, 3]), true).is_err());
    }
}
