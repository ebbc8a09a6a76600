//! Replay protection for nonce-carrying signatures (Tencent v1 `Nonce`, Alibaba
//! `SignatureNonce`): a (key id, nonce) pair is accepted once within the window in which its
//! timestamp is valid (twice the allowed clock skew).
//!
//! Bounded in memory and time: an entry is a 16-byte digest of the pair (a nonce is at most
//! `limits::MAX_NONCE_BYTES` long before it gets here), kept in arrival order and dropped when
//! its window ends (amortised O(1) per request, no scan of the whole set); at most `capacity`
//! entries live at once, beyond which new pairs are refused as throttled (an old entry is never
//! evicted early, which would let its request be replayed). Only requests that passed the action
//! check and the rate limit are recorded, so the rate limit bounds what one account can add.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Entries kept at most by default: 500,000 x ~50 bytes.
pub const DEFAULT_CAPACITY: usize = 500_000;

type Key = [u8; 16];

/// What recording a nonce found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// First use within the window: recorded.
    First,
    /// Used already within the window: a replay.
    Replay,
    /// The store is at capacity: refuse as throttled, try again later.
    Full,
}

#[derive(Default)]
struct Entries {
    seen: HashSet<Key>,
    /// Every key of `seen` once, oldest first.
    order: VecDeque<(Instant, Key)>,
}

pub struct NonceCache {
    window: Duration,
    capacity: usize,
    entries: Mutex<Entries>,
}

fn key(key_id: &str, nonce: &str) -> Key {
    let mut h = Sha256::new();
    h.update((key_id.len() as u64).to_be_bytes());
    h.update(key_id.as_bytes());
    h.update(nonce.as_bytes());
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

impl NonceCache {
    pub fn new(window: Duration) -> Self {
        Self::with_capacity(window, DEFAULT_CAPACITY)
    }

    pub fn with_capacity(window: Duration, capacity: usize) -> Self {
        Self { window, capacity, entries: Mutex::new(Entries::default()) }
    }

    fn lock_expired(&self, now: Instant) -> std::sync::MutexGuard<'_, Entries> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((at, k)) = e.order.front().copied() {
            if now.duration_since(at) < self.window {
                break;
            }
            e.order.pop_front();
            e.seen.remove(&k);
        }
        e
    }

    /// Whether the pair was used within the window (records nothing).
    pub fn is_used(&self, key_id: &str, nonce: &str) -> bool {
        self.lock_expired(Instant::now()).seen.contains(&key(key_id, nonce))
    }

    /// Records the pair if it is new within the window and there is room.
    pub fn record(&self, key_id: &str, nonce: &str) -> Admission {
        let now = Instant::now();
        let mut e = self.lock_expired(now);
        let k = key(key_id, nonce);
        if e.seen.contains(&k) {
            return Admission::Replay;
        }
        if e.seen.len() >= self.capacity {
            return Admission::Full;
        }
        e.seen.insert(k);
        e.order.push_back((now, k));
        Admission::First
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock_expired(Instant::now()).seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_per_key_id() {
        let c = NonceCache::default();
        assert!(!c.is_used("a", "1"));
        assert_eq!(c.record("a", "1"), Admission::First);
        assert!(c.is_used("a", "1"));
        assert_eq!(c.record("a", "1"), Admission::Replay);
        assert_eq!(c.record("b", "1"), Admission::First);
        // The key id and nonce are separated: ("a1", "") is not ("a", "1").
        assert_eq!(c.record("a1", ""), Admission::First);
    }

    #[test]
    fn entries_expire_with_their_window_and_capacity_refuses_without_evicting() {
        let c = NonceCache::with_capacity(Duration::from_millis(50), 3);
        for n in ["1", "2", "3"] {
            assert_eq!(c.record("a", n), Admission::First);
        }
        assert_eq!(c.record("a", "4"), Admission::Full);
        assert_eq!(c.record("a", "1"), Admission::Replay, "a full store still knows its nonces");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.len(), 0);
        assert_eq!(c.record("a", "4"), Admission::First);
    }

    #[test]
    fn recording_is_constant_time_at_capacity() {
        let c = NonceCache::with_capacity(Duration::from_secs(600), 100_000);
        for i in 0..100_000 {
            c.record("a", &i.to_string());
        }
        let started = Instant::now();
        for i in 0..100_000 {
            assert_eq!(c.record("b", &i.to_string()), Admission::Full);
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
