//! Two-way synchronization's meeting point: the local changes each direction's reader saw, by
//! server and row, so that the other direction's applier can settle a conflict by commit time
//! (see `dts_core::ConflictArbiter`). One registry per two-way instance (its loop guard), shared
//! by the two jobs' tasks in this process; bounded by age and size.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries older than this are forgotten once the registry is large.
const KEEP: Duration = Duration::from_secs(600);
const PRUNE_AT: usize = 200_000;

#[derive(Default)]
pub struct LocalChanges {
    rows: Mutex<HashMap<(String, String), (u32, Instant)>>,
    /// When each server's reader last found its stream idle (all read).
    idle: Mutex<HashMap<String, Instant>>,
}

impl LocalChanges {
    pub fn mark_idle(&self, server: &str) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).insert(server.to_string(), Instant::now());
    }

    pub fn idle_since(&self, server: &str, since: Instant) -> bool {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).get(server).is_some_and(|at| *at > since)
    }

    pub fn record(&self, server: &str, row: &str, commit_ts: u32) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rows.len() >= PRUNE_AT {
            rows.retain(|_, (_, at)| at.elapsed() < KEEP);
        }
        let e = rows.entry((server.to_string(), row.to_string())).or_insert((commit_ts, Instant::now()));
        if commit_ts >= e.0 {
            *e = (commit_ts, Instant::now());
        }
    }

    pub fn commit_time(&self, server: &str, row: &str) -> Option<u32> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.get(&(server.to_string(), row.to_string())).map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_local_change_of_a_row_is_kept_per_server() {
        let c = LocalChanges::default();
        c.record("a:1", "db.t:1", 100);
        c.record("a:1", "db.t:1", 90);
        c.record("b:2", "db.t:1", 120);
        assert_eq!(c.commit_time("a:1", "db.t:1"), Some(100));
        assert_eq!(c.commit_time("b:2", "db.t:1"), Some(120));
        assert_eq!(c.commit_time("a:1", "db.t:2"), None);
    }
}
