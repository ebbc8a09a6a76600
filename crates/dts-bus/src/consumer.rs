//! Reading a subscription back: by consumer group (NATS durable consumer, Kafka consumer
//! group) or from a source time, with de-duplication by message id, the group's position and
//! lag, rewinding a group to a time, and deleting a group or a whole subscription.
//!
//! Contract: [`Consumer::next_batch`] yields messages in stream order (per partition on Kafka),
//! each id at most once within the de-duplication window; [`Consumer::commit`] acknowledges
//! everything yielded so far, and a group reopened later resumes right after it. A Kafka group
//! consumer also loads the ids of the messages just before its committed position into its
//! window when it opens, so a re-publish that lands after a consumer restart is still dropped.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use crate::config::BusConfig;
use crate::error::BusError;
use crate::kafka::{KafkaBus, KafkaConsumer};
use crate::message::MessageKind;
use crate::nats::{NatsBus, NatsConsumer};

/// Ids remembered by default for de-duplication.
pub const DEDUP_WINDOW: usize = 100_000;

/// Where a consumer starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// Where the group's acknowledgements left it (a new group: the oldest retained event).
    Group(String),
    /// The first retained event whose source time is at or after this (ms since the epoch);
    /// no group, nothing acknowledged.
    Time(i64),
    /// The oldest retained event, no group.
    Beginning,
}

/// One message read from the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    /// NATS subject, or Kafka topic.
    pub subject: String,
    /// Kafka partition (0 on NATS).
    pub partition: i32,
    /// NATS stream sequence, or Kafka offset.
    pub sequence: u64,
    pub kind: Option<MessageKind>,
    pub key: Option<Bytes>,
    /// `None` for a tombstone.
    pub payload: Option<Bytes>,
    pub source_ts_ms: i64,
}

/// A group's position in one partition (NATS: the stream as partition 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPosition {
    pub partition: i32,
    /// The last acknowledged sequence or offset; `None` before the first acknowledgement.
    pub acked: Option<u64>,
    /// One past the last stored sequence or offset.
    pub end: u64,
    /// Messages stored after the acknowledged one.
    pub lag: u64,
    /// Source time of the last acknowledged message.
    pub source_ts_ms: Option<i64>,
}

/// A consumer group's position: what the API dialects show as its consumption checkpoint
/// (the oldest partition's source time) and its unconsumed count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPosition {
    pub group: String,
    pub partitions: Vec<PartitionPosition>,
}

impl GroupPosition {
    pub fn lag(&self) -> u64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }

    /// Source time up to which every partition is consumed (the oldest of them).
    pub fn source_ts_ms(&self) -> Option<i64> {
        self.partitions.iter().map(|p| p.source_ts_ms).min().flatten()
    }
}

/// The retained events of a subscription (`BeginTimestamp`/`EndTimestamp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub messages: u64,
    pub first_ts_ms: Option<i64>,
    pub last_ts_ms: Option<i64>,
}

/// The ids of the last `capacity` messages.
#[derive(Debug, Clone)]
pub struct Dedup {
    seen: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
    dropped: u64,
}

impl Dedup {
    pub fn new(capacity: usize) -> Self {
        Self { seen: HashSet::new(), order: VecDeque::new(), capacity, dropped: 0 }
    }

    /// Records `id`; `false` when it is in the window already (a duplicate). Empty ids (messages
    /// not written by dts) are always fresh.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.capacity == 0 || id.is_empty() {
            return true;
        }
        if self.seen.contains(id) {
            self.dropped += 1;
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Duplicates dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A reader of one subscription.
pub enum Consumer {
    Nats(Box<NatsConsumer>),
    Kafka(Box<KafkaConsumer>),
}

impl Consumer {
    pub async fn open(config: &BusConfig, subscription: &str, start: StartAt) -> Result<Self, BusError> {
        Self::open_with_window(config, subscription, start, DEDUP_WINDOW).await
    }

    /// As [`Consumer::open`], remembering `dedup_window` ids (0: no de-duplication).
    pub async fn open_with_window(
        config: &BusConfig,
        subscription: &str,
        start: StartAt,
        dedup_window: usize,
    ) -> Result<Self, BusError> {
        match config {
            BusConfig::Nats(c) => {
                Ok(Self::Nats(Box::new(NatsBus::connect(c).await?.consumer(subscription, start, dedup_window).await?)))
            }
            BusConfig::Kafka(c) => Ok(Self::Kafka(Box::new(
                KafkaBus::connect(c).await?.consumer(subscription, start, dedup_window).await?,
            ))),
        }
    }

    /// Up to `max` new messages, waiting at most `wait`; empty when there is nothing new.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        match self {
            Self::Nats(c) => c.next_batch(max, wait).await,
            Self::Kafka(c) => c.next_batch(max, wait).await,
        }
    }

    /// Acknowledges everything yielded so far.
    pub async fn commit(&mut self) -> Result<(), BusError> {
        match self {
            Self::Nats(c) => c.commit().await,
            Self::Kafka(c) => c.commit().await,
        }
    }

    /// The group's position, for a group consumer.
    pub async fn position(&self) -> Result<Option<GroupPosition>, BusError> {
        match self {
            Self::Nats(c) => c.position().await,
            Self::Kafka(c) => c.position().await,
        }
    }

    pub fn duplicates_dropped(&self) -> u64 {
        match self {
            Self::Nats(c) => c.duplicates_dropped(),
            Self::Kafka(c) => c.duplicates_dropped(),
        }
    }
}

/// A group's position and lag, without joining it.
pub async fn group_position(config: &BusConfig, subscription: &str, group: &str) -> Result<GroupPosition, BusError> {
    match config {
        BusConfig::Nats(c) => NatsBus::connect(c).await?.group_position(subscription, group).await,
        BusConfig::Kafka(c) => KafkaBus::connect(c).await?.group_position(subscription, group).await,
    }
}

/// Moves a group to the first retained event at or after `t_ms` (source time). The group must
/// have no running consumer (Kafka refuses otherwise). Returns per partition the sequence or
/// offset it will read next.
pub async fn rewind_group(
    config: &BusConfig,
    subscription: &str,
    group: &str,
    t_ms: i64,
) -> Result<Vec<(i32, u64)>, BusError> {
    match config {
        BusConfig::Nats(c) => Ok(vec![(0, NatsBus::connect(c).await?.rewind_group(subscription, group, t_ms).await?)]),
        BusConfig::Kafka(c) => KafkaBus::connect(c).await?.rewind_group(subscription, group, t_ms).await,
    }
}

/// Deletes a consumer group (its position is lost); `Ok` when it did not exist.
pub async fn delete_group(config: &BusConfig, subscription: &str, group: &str) -> Result<(), BusError> {
    match config {
        BusConfig::Nats(c) => NatsBus::connect(c).await?.delete_group(subscription, group).await,
        BusConfig::Kafka(c) => KafkaBus::connect(c).await?.delete_group(group).await,
    }
}

/// Deletes a subscription's stream (NATS) or topic (Kafka), its events and groups with it;
/// `Ok` when there is none.
pub async fn delete_subscription(config: &BusConfig, subscription: &str) -> Result<(), BusError> {
    match config {
        BusConfig::Nats(c) => NatsBus::connect(c).await?.delete_stream(subscription).await,
        BusConfig::Kafka(c) => KafkaBus::connect(c).await?.delete_topic(subscription).await,
    }
}

/// The retained events' count and source-time range.
pub async fn window(config: &BusConfig, subscription: &str) -> Result<Window, BusError> {
    match config {
        BusConfig::Nats(c) => NatsBus::connect(c).await?.window(subscription).await,
        BusConfig::Kafka(c) => KafkaBus::connect(c).await?.window(subscription).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_drops_ids_seen_within_its_window_only() {
        let mut d = Dedup::new(2);
        assert!(d.insert("a"));
        assert!(d.insert("b"));
        assert!(!d.insert("a"));
        assert!(d.insert("c"), "evicts a");
        assert!(d.insert("a"), "a left the window");
        assert!(d.insert(""));
        assert!(d.insert(""));
        assert_eq!(d.dropped(), 1);
    }
}
