//! Heartbeats on an idle source: when no event went out for an interval, the publisher sends a
//! heartbeat event carrying the source's current position and time, so consumers see that the
//! subscription is alive and can tell their lag in time even when nothing changes.

use std::time::Duration;

use dts_core::Position;
use dts_core::change::{ChangeEvent, ChangeKind};

/// Decides when a heartbeat is due.
#[derive(Debug, Clone)]
pub struct HeartbeatClock {
    interval_ms: i64,
    last_sent_ms: Option<i64>,
}

impl HeartbeatClock {
    pub fn new(interval: Duration) -> Self {
        Self { interval_ms: interval.as_millis().max(1) as i64, last_sent_ms: None }
    }

    /// Notes that an event went out at `now_ms` (any event resets the idle timer).
    pub fn observe(&mut self, now_ms: i64) {
        self.last_sent_ms = Some(now_ms);
    }

    /// The heartbeat to publish at `now_ms`, if the source has been idle for the interval
    /// (the first call always yields one). `position` is where the source stands.
    pub fn due(&mut self, now_ms: i64, position: &Position, server_id: u32) -> Option<ChangeEvent> {
        if self.last_sent_ms.is_some_and(|t| now_ms - t < self.interval_ms) {
            return None;
        }
        self.last_sent_ms = Some(now_ms);
        Some(ChangeEvent {
            position: position.clone(),
            index: 0,
            timestamp_ms: now_ms,
            server_id,
            transaction: None,
            kind: ChangeKind::Heartbeat,
        })
    }

    /// How long until the next heartbeat may be due.
    pub fn wait(&self, now_ms: i64) -> Duration {
        match self.last_sent_ms {
            None => Duration::ZERO,
            Some(t) => Duration::from_millis((t + self.interval_ms - now_ms).max(0) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_come_only_after_an_idle_interval() {
        let mut c = HeartbeatClock::new(Duration::from_secs(1));
        let p = Position::None;
        assert!(c.due(10_000, &p, 1).is_some(), "first call");
        assert!(c.due(10_500, &p, 1).is_none());
        c.observe(10_900);
        assert!(c.due(11_500, &p, 1).is_none(), "an event reset the timer");
        assert_eq!(c.wait(11_500), Duration::from_millis(400));
        let hb = c.due(11_900, &p, 7).expect("idle for 1 s");
        assert_eq!((hb.timestamp_ms, hb.server_id, hb.kind), (11_900, 7, ChangeKind::Heartbeat));
    }
}
