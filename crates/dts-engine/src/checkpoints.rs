//! A job's checkpoints as the engine and its connectors use them: the engine's own keys (under
//! `engine/`), and each connector's scope (every key prefixed with its family's name), all read
//! and written off the async runtime's threads (SQLite calls block).

use std::sync::Arc;

use dts_core::{CheckpointFuture, Checkpoints, ConnectorError, ErrorClass, Position};
use dts_store::{Store, StoreError};

/// Set once a job's full load started: its destination tables are the load's now (secondary
/// keys may be deferred), so the structure is not compared again.
pub const LOAD_STARTED: &str = "engine/load_started";
/// Where the job's change stream starts (a [`Position`] as JSON): the full load's snapshot
/// position, or the source's position when an incremental-only job first started.
pub const STREAM_START: &str = "engine/stream_start";
/// Set when a job's incremental (or tracking) step begins: its earlier steps are complete.
pub const REPLICATING: &str = "engine/replicating";
/// Set once a replicating job's consistency check (before ReadyComplete) has run.
pub const CONSISTENCY_CHECKED: &str = "engine/consistency_checked";
/// Where change tracking has published up to (a [`Position`] as JSON): the bus acknowledged
/// every event before it.
pub const TRACKING_POSITION: &str = "engine/tracking_position";

/// Runs a store call on the blocking pool.
pub async fn blocking<T: Send + 'static>(store: &Arc<Store>, f: impl FnOnce(&Store) -> T + Send + 'static) -> T {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn checkpoint_error(e: StoreError) -> ConnectorError {
    ConnectorError::new(ErrorClass::Fatal, "cannot read or write the job's checkpoints", e.to_string())
}

/// A job's checkpoints under one prefix (a connector's scope, or the engine's keys with an
/// empty prefix).
#[derive(Clone)]
pub struct ScopedCheckpoints {
    store: Arc<Store>,
    job_id: String,
    prefix: String,
}

impl ScopedCheckpoints {
    /// The scope of `family`'s connector (`mysql/...`).
    pub fn family(store: &Arc<Store>, job_id: &str, family: dts_core::DatabaseFamily) -> Self {
        Self { store: store.clone(), job_id: job_id.to_string(), prefix: format!("{}/", family.as_str()) }
    }

    /// The engine's own keys (full key names, see the constants).
    pub fn engine(store: &Arc<Store>, job_id: &str) -> Self {
        Self { store: store.clone(), job_id: job_id.to_string(), prefix: String::new() }
    }

    pub async fn has(&self, key: &str) -> bool {
        matches!(self.get(key).await, Ok(Some(_)))
    }

    pub async fn position(&self, key: &str) -> Result<Option<Position>, ConnectorError> {
        match self.get(key).await? {
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| ConnectorError::new(ErrorClass::Fatal, "a stored position cannot be read", e.to_string())),
            None => Ok(None),
        }
    }

    /// Records that something happened (the value is the time).
    pub async fn put_flag(&self, key: &str) -> Result<(), ConnectorError> {
        self.put(key, &dts_store::now_string()).await
    }

    pub async fn put_position(&self, key: &str, position: &Position) -> Result<(), ConnectorError> {
        let json = serde_json::to_string(position)
            .map_err(|e| ConnectorError::new(ErrorClass::Fatal, "cannot serialize a position", e.to_string()))?;
        self.put(key, &json).await
    }
}

impl Checkpoints for ScopedCheckpoints {
    fn get<'a>(&'a self, key: &'a str) -> CheckpointFuture<'a, Option<String>> {
        let (job, key) = (self.job_id.clone(), format!("{}{key}", self.prefix));
        Box::pin(
            async move { blocking(&self.store, move |s| s.checkpoint(&job, &key)).await.map_err(checkpoint_error) },
        )
    }

    fn put<'a>(&'a self, key: &'a str, value: &'a str) -> CheckpointFuture<'a, ()> {
        let (job, key, value) = (self.job_id.clone(), format!("{}{key}", self.prefix), value.to_string());
        Box::pin(async move {
            blocking(&self.store, move |s| s.put_checkpoint(&job, &key, &value)).await.map_err(checkpoint_error)
        })
    }

    fn scan<'a>(&'a self, prefix: &'a str) -> CheckpointFuture<'a, Vec<(String, String)>> {
        let (job, scope) = (self.job_id.clone(), self.prefix.clone());
        let full = format!("{scope}{prefix}");
        Box::pin(async move {
            let rows = blocking(&self.store, move |s| s.checkpoints(&job, &full)).await.map_err(checkpoint_error)?;
            Ok(rows.into_iter().map(|(k, v)| (k[scope.len()..].to_string(), v)).collect())
        })
    }
}
