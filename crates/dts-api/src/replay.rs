//! Replay protection for v1 signatures: a (SecretId, Nonce) pair is accepted once within the
//! window in which its timestamp is valid (twice the allowed clock skew, kept a little longer).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct NonceCache {
    window: Duration,
    seen: Mutex<HashMap<(String, String), Instant>>,
}

impl NonceCache {
    pub fn new(window: Duration) -> Self {
        Self { window, seen: Mutex::new(HashMap::new()) }
    }

    /// True the first time a pair is seen within the window.
    pub fn first_use(&self, secret_id: &str, nonce: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 1024 {
            seen.retain(|_, at| now.duration_since(*at) < self.window);
        }
        let key = (secret_id.to_string(), nonce.to_string());
        match seen.get(&key) {
            Some(at) if now.duration_since(*at) < self.window => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
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
    fn a_nonce_is_accepted_once_per_secret_id() {
        let c = NonceCache::default();
        assert!(c.first_use("a", "1"));
        assert!(!c.first_use("a", "1"));
        assert!(c.first_use("b", "1"));
        let short = NonceCache::new(Duration::from_millis(0));
        assert!(short.first_use("a", "1"));
        assert!(short.first_use("a", "1"));
    }
}
