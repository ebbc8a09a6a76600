//! Two-way synchronization's meeting point: the local changes each direction's reader saw, by
//! server and row, so that the other direction's applier can settle a conflict by commit time
//! (see `dts_core::ConflictArbiter`). One registry per two-way instance (its loop guard), shared
//! by the two jobs' tasks in this process; bounded by age (10 minutes) and size (200,000
//! rows, the oldest forgotten first), expired in recording order at amortised O(1) per record.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a local change is remembered: far longer than a change takes to cross.
const KEEP: Duration = Duration::from_secs(600);
/// Rows remembered at most; beyond it the oldest are forgotten first.
const CAPACITY: usize = 200_000;

type RowKey = (String, String);

/// The rows, and the order they were recorded in (one entry per record; an entry whose row was
/// recorded again later is stale and skipped when it leaves the front).
struct Rows {
    /// Commit time and the sequence number of the row's latest entry in `order`.
    latest: HashMap<RowKey, (u32, u64)>,
    order: VecDeque<(Instant, u64, RowKey)>,
    next_seq: u64,
    keep: Duration,
    capacity: usize,
}

impl Rows {
    fn new(keep: Duration, capacity: usize) -> Self {
        Self { latest: HashMap::new(), order: VecDeque::new(), next_seq: 0, keep, capacity: capacity.max(1) }
    }

    /// Drops entries past `keep`, and the oldest while over capacity: each entry leaves once,
    /// so a record costs amortised O(1).
    fn expire(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.order.front() {
            let old = now.duration_since(*at) >= self.keep;
            if !old && self.order.len() <= self.capacity {
                break;
            }
            let (_, seq, key) = self.order.pop_front().expect("front exists");
            if self.latest.get(&key).is_some_and(|(_, last)| *last == seq) {
                self.latest.remove(&key);
            }
        }
    }

    fn record(&mut self, key: RowKey, commit_ts: u32, now: Instant) {
        let seq = self.next_seq;
        match self.latest.get_mut(&key) {
            Some(e) if commit_ts < e.0 => return,
            Some(e) => *e = (commit_ts, seq),
            None => {
                self.latest.insert(key.clone(), (commit_ts, seq));
            }
        }
        self.next_seq += 1;
        self.order.push_back((now, seq, key));
        self.expire(now);
    }
}

pub struct LocalChanges {
    rows: Mutex<Rows>,
    /// When each server's reader last found its stream idle (all read).
    idle: Mutex<HashMap<String, Instant>>,
}

impl Default for LocalChanges {
    fn default() -> Self {
        Self::with_bounds(KEEP, CAPACITY)
    }
}

impl LocalChanges {
    fn with_bounds(keep: Duration, capacity: usize) -> Self {
        Self { rows: Mutex::new(Rows::new(keep, capacity)), idle: Mutex::new(HashMap::new()) }
    }

    pub fn mark_idle(&self, server: &str) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).insert(server.to_string(), Instant::now());
    }

    pub fn idle_since(&self, server: &str, since: Instant) -> bool {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).get(server).is_some_and(|at| *at > since)
    }

    pub fn record(&self, server: &str, row: &str, commit_ts: u32) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.record((server.to_string(), row.to_string()), commit_ts, Instant::now());
    }

    /// The commit time of the row's latest local change, while it is remembered.
    pub fn commit_time(&self, server: &str, row: &str) -> Option<u32> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.expire(Instant::now());
        rows.latest.get(&(server.to_string(), row.to_string())).map(|(t, _)| *t)
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

    #[test]
    fn the_registry_forgets_by_age_and_by_size_without_rescanning() {
        let c = LocalChanges::with_bounds(Duration::from_millis(40), 1_000);
        c.record("a", "r", 1);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.commit_time("a", "r"), None, "expired by age");
        let c = LocalChanges::with_bounds(Duration::from_secs(600), 100_000);
        let started = Instant::now();
        for i in 0..400_000u32 {
            c.record("a", &i.to_string(), i);
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let rows = c.rows.lock().unwrap();
        assert!(rows.latest.len() <= 100_000 && rows.order.len() <= 100_000);
        drop(rows);
        assert_eq!(c.commit_time("a", "0"), None, "the oldest went first");
        assert_eq!(c.commit_time("a", "399999"), Some(399_999));
        // A row recorded again is not forgotten because its first entry leaves the front.
        let c = LocalChanges::with_bounds(Duration::from_secs(600), 2);
        c.record("a", "x", 1);
        c.record("a", "y", 1);
        c.record("a", "x", 2);
        assert_eq!(c.commit_time("a", "x"), Some(2));
    }
}
