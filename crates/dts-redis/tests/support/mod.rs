//! What the Redis connector's integration tests share: checkpoints in memory and an observer
//! that records what the replication reported.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use dts_core::{CheckpointFuture, Checkpoints, Completion, Lag, ReplicationObserver};

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

#[derive(Default)]
pub struct Observer {
    pub completion: AtomicU8,
    /// Snapshots finished (once per replication).
    pub snapshot_done: AtomicU64,
    pub caught_up: AtomicBool,
    pub applied: AtomicU64,
    pub notes: Mutex<Vec<String>>,
}

impl ReplicationObserver for Observer {
    fn progress(&self, lag: Lag) {
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
