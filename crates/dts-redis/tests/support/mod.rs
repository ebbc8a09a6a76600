//! What the Redis connector's integration tests share: a job's plan between two ports,
//! checkpoints in memory, an observer that records what the replication reported, and a
//! replication running in a task.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dts_core::{
    ChangeReplicator, CheckpointFuture, Checkpoints, Completion, ConnectionSpec, ConnectorError, DatabaseSelection,
    Lag, MigrationPlan, ObjectSelection, Position, ReplicationObserver, StreamMode,
};
use dts_redis::RedisConnector;

/// A server on this host, without a password.
pub fn spec(port: u16) -> ConnectionSpec {
    ConnectionSpec { host: "127.0.0.1".into(), port, ..Default::default() }
}

/// A Redis job (MigrateType 3) from the server or cluster at `source` to the one at `dest`:
/// the databases `dbs` (the whole instance when empty), with `extern_params`.
pub fn plan(source: u16, dest: u16, dbs: &[u32], extern_params: Option<&str>) -> MigrationPlan {
    let selection = if dbs.is_empty() {
        ObjectSelection::WholeInstance
    } else {
        ObjectSelection::Databases(
            dbs.iter().map(|d| DatabaseSelection { database: d.to_string(), ..Default::default() }).collect(),
        )
    };
    MigrationPlan {
        job_id: "dts-redis-test".into(),
        kind: dts_core::JobKind::Migration,
        route: dts_core::route("redis", dts_core::DeclaredTarget::Database("redis")).expect("route"),
        stages: dts_core::Stages::of_migrate_type(3),
        selection,
        source: spec(source),
        target: dts_core::Target::Database(spec(dest)),
        override_root: false,
        loop_guard: None,
        conflict_policy: Default::default(),
        extern_params: extern_params.map(str::to_string),
    }
}

#[derive(Default)]
pub struct MemoryCheckpoints(pub Mutex<HashMap<String, String>>);

impl Checkpoints for MemoryCheckpoints {
    fn get<'a>(&'a self, key: &'a str) -> CheckpointFuture<'a, Option<String>> {
        Box::pin(async move { Ok(self.0.lock().unwrap().get(key).cloned()) })
    }
    fn put<'a>(&'a self, key: &'a str, value: &'a str) -> CheckpointFuture<'a, ()> {
        Box::pin(async move {
            self.0.lock().unwrap().insert(key.to_string(), value.to_string());
            Ok(())
        })
    }
    fn scan<'a>(&'a self, prefix: &'a str) -> CheckpointFuture<'a, Vec<(String, String)>> {
        Box::pin(async move {
            let mut v: Vec<_> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            v.sort();
            Ok(v)
        })
    }
}

pub struct Observer {
    pub completion: AtomicU8,
    /// Snapshots finished (once per replication).
    pub snapshot_done: AtomicU64,
    pub caught_up: AtomicBool,
    /// The last lag reported, in seconds (-1 before any).
    pub lag_seconds: AtomicI64,
    pub applied: AtomicU64,
    pub notes: Mutex<Vec<String>>,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            completion: AtomicU8::new(0),
            snapshot_done: AtomicU64::new(0),
            caught_up: AtomicBool::new(false),
            lag_seconds: AtomicI64::new(-1),
            applied: AtomicU64::new(0),
            notes: Mutex::new(Vec::new()),
        }
    }
}

impl ReplicationObserver for Observer {
    fn progress(&self, lag: Lag) {
        if let Some(s) = lag.seconds {
            self.lag_seconds.store(s, Ordering::SeqCst);
        }
        if lag.caught_up {
            self.caught_up.store(true, Ordering::SeqCst);
        }
    }
    fn completion(&self) -> Completion {
        match self.completion.load(Ordering::SeqCst) {
            1 => Completion::WaitForSync,
            2 => Completion::Immediately,
            _ => Completion::None,
        }
    }
    fn applied(&self, n: u64) {
        self.applied.fetch_add(n, Ordering::SeqCst);
    }
    fn snapshot_finished(&self) {
        self.snapshot_done.fetch_add(1, Ordering::SeqCst);
    }
    fn note(&self, message: String) {
        self.notes.lock().unwrap().push(message);
    }
}

/// A replication running in a task, until `completion` is asked.
pub struct Running {
    pub observer: Arc<Observer>,
    pub task: tokio::task::JoinHandle<Result<Position, ConnectorError>>,
}

/// Starts `plan`'s replication from the beginning (`Position::None`) in a task.
pub fn start(plan: &MigrationPlan, ckpt: &Arc<MemoryCheckpoints>, mode: StreamMode) -> Running {
    let observer = Arc::new(Observer::default());
    let (p, c, o) = (plan.clone(), ckpt.clone(), observer.clone());
    let task = tokio::spawn(async move {
        RedisConnector::default().replicate(&p, Position::None, mode, c.as_ref(), o.as_ref()).await
    });
    Running { observer, task }
}

impl Running {
    /// Waits until the snapshot is at the destination (failing with the task's error if it ended).
    pub async fn snapshot(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.observer.snapshot_done.load(Ordering::SeqCst) == 0 {
            if self.task.is_finished() {
                let r = (&mut self.task).await.expect("task");
                panic!("the replication ended before its snapshot was done: {r:?}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for the snapshot");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks for completion (after the source's position of now) and returns the position reached.
    pub async fn complete(self) -> Position {
        self.observer.completion.store(1, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("completes")
            .expect("task")
            .expect("replicates")
    }

    /// Like a kill -9 of dts: the task is dropped wherever it is.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// The notes the replication reported so far.
    pub fn notes(&self) -> Vec<String> {
        self.observer.notes.lock().unwrap().clone()
    }
}
