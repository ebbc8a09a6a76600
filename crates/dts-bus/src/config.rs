//! Where the change bus is and how long it keeps events: the `[change_bus]` settings.

use std::time::Duration;

/// How long and how much a subscription's stream or topic keeps, and how long NATS remembers
/// message ids to drop re-publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this are dropped (default 24 h).
    pub max_age: Duration,
    /// At most this many bytes per subscription, oldest dropped first (default 8 GiB).
    pub max_bytes: i64,
    /// NATS: a message whose id was published within this window is dropped (default 2 min,
    /// NATS's own default). The server keeps every id of the window in memory (about 100 bytes
    /// each), so the window covers a publisher restart, not days; re-publishes older than it
    /// are dropped by the consumer's de-duplication instead.
    pub duplicate_window: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self { max_age: Duration::from_secs(24 * 3600), max_bytes: 8 << 30, duplicate_window: Duration::from_secs(120) }
    }
}

/// A NATS JetStream bus.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://host:port` (or a comma-separated list).
    pub url: String,
    /// First subject token and stream-name prefix (default `dts`).
    pub prefix: String,
    pub retention: Retention,
    /// Publishes whose acknowledgement is outstanding at once (default 4096).
    pub max_in_flight: usize,
    /// How long to wait for one acknowledgement or API answer (default 10 s).
    pub timeout: Duration,
    /// How long to wait for the first connection (default 5 s).
    pub connect_timeout: Duration,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "dts".into(),
            retention: Retention::default(),
            max_in_flight: 4096,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A Kafka bus.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap: String,
    /// Topic prefix: a subscription's topic is `<prefix>.<subscription>` (default `dts`).
    pub prefix: String,
    /// Partitions of a new topic (default 1: one global order, as Alibaba's consumers expect;
    /// with more, order holds per key).
    pub partitions: i32,
    pub replication: i32,
    pub retention: Retention,
    /// How long to wait for acknowledgements, metadata and group operations (default 30 s).
    pub timeout: Duration,
    /// Consumer `session.timeout.ms` (default 6000: groups re-join in seconds).
    pub session_timeout_ms: u32,
    /// Further librdkafka properties (`security.protocol`, `sasl.*`, `compression.type`).
    pub properties: Vec<(String, String)>,
}

impl KafkaConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            prefix: "dts".into(),
            partitions: 1,
            replication: 1,
            retention: Retention::default(),
            timeout: Duration::from_secs(30),
            session_timeout_ms: 6000,
            properties: Vec::new(),
        }
    }
}

/// The configured bus.
#[derive(Debug, Clone)]
pub enum BusConfig {
    Nats(NatsConfig),
    Kafka(KafkaConfig),
}

impl BusConfig {
    pub fn prefix(&self) -> &str {
        match self {
            Self::Nats(c) => &c.prefix,
            Self::Kafka(c) => &c.prefix,
        }
    }

    pub fn retention(&self) -> &Retention {
        match self {
            Self::Nats(c) => &c.retention,
            Self::Kafka(c) => &c.retention,
        }
    }
}
