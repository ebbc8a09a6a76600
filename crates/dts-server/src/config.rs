//! Server configuration: defaults, then the TOML file, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use dts_core::InstanceRegistry;
use serde::Deserialize;

/// The TOML file (`dts serve --config FILE`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    /// HTTPS: the PEM certificate chain and private key (both, or neither for plain HTTP).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Regions accepted in `X-TC-Region`; default: Tencent's public regions.
    pub regions: Option<Vec<String>>,
    #[serde(default)]
    pub limits: Limits,
    /// Full-load tuning.
    #[serde(default)]
    pub full_load: FullLoad,
    /// Replication tuning.
    #[serde(default)]
    pub replication: Replication,
    /// `[instances.<InstanceId>]` engine, host, port, user, password.
    #[serde(default)]
    pub instances: InstanceRegistry,
    /// Where change tracking publishes.
    #[serde(default)]
    pub change_bus: ChangeBus,
}

/// `[change_bus]`: the bus change-tracking jobs publish to (NATS JetStream at 127.0.0.1:4222
/// unless told), the format of their events and how long the bus keeps them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangeBus {
    /// `nats` or `kafka`.
    pub kind: String,
    /// NATS: `nats://host:port` (or a comma-separated list).
    pub url: String,
    /// Kafka: `host:port[,host:port...]`.
    pub bootstrap: String,
    /// Subject and topic prefix (`<prefix>.<subscription>...`).
    pub prefix: String,
    /// `json` (Debezium-compatible, the default) or `avro` (Alibaba's Record).
    pub format: String,
    /// Debezium JSON: a tombstone after each delete.
    pub tombstones: bool,
    /// How long events are kept, in hours.
    pub retention_hours: u64,
    /// At most this many bytes per subscription (oldest dropped first).
    pub retention_bytes: i64,
    /// NATS: re-published ids are dropped within this window, in seconds.
    pub duplicate_window_secs: u64,
    /// Kafka: partitions of a new topic (1 keeps one global order).
    pub partitions: i32,
    /// A heartbeat on an idle source at most this often, in seconds.
    pub heartbeat_secs: u64,
}

impl Default for ChangeBus {
    fn default() -> Self {
        let r = dts_bus::Retention::default();
        Self {
            kind: "nats".into(),
            url: "nats://127.0.0.1:4222".into(),
            bootstrap: "127.0.0.1:9092".into(),
            prefix: "dts".into(),
            format: "json".into(),
            tombstones: true,
            retention_hours: r.max_age.as_secs() / 3600,
            retention_bytes: r.max_bytes,
            duplicate_window_secs: r.duplicate_window.as_secs(),
            partitions: 1,
            heartbeat_secs: 5,
        }
    }
}

impl ChangeBus {
    /// The bus and the sink's options, validated.
    pub fn settings(&self) -> anyhow::Result<(dts_bus::BusConfig, dts_bus::SinkOptions)> {
        let retention = dts_bus::Retention {
            max_age: Duration::from_secs(self.retention_hours.max(1) * 3600),
            max_bytes: self.retention_bytes.max(1 << 20),
            duplicate_window: Duration::from_secs(self.duplicate_window_secs.max(1)),
        };
        dts_bus::naming::check_name("prefix", &self.prefix).context("[change_bus] prefix")?;
        let bus = match self.kind.as_str() {
            "nats" => {
                let mut c = dts_bus::NatsConfig::new(self.url.clone());
                c.prefix = self.prefix.clone();
                c.retention = retention;
                dts_bus::BusConfig::Nats(c)
            }
            "kafka" => {
                let mut c = dts_bus::KafkaConfig::new(self.bootstrap.clone());
                c.prefix = self.prefix.clone();
                c.retention = retention;
                c.partitions = self.partitions.max(1);
                dts_bus::BusConfig::Kafka(c)
            }
            other => anyhow::bail!("[change_bus] kind `{other}` is not nats or kafka"),
        };
        let format = dts_bus::Format::parse(&self.format)
            .with_context(|| format!("[change_bus] format `{}` is not json or avro", self.format))?;
        let options = dts_bus::SinkOptions {
            format,
            tombstones: self.tombstones,
            heartbeat_interval: Duration::from_secs(self.heartbeat_secs.max(1)),
        };
        Ok((bus, options))
    }
}

/// Request rate limits per account and action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub requests_per_second: u32,
    pub describe_requests_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { requests_per_second: 20, describe_requests_per_second: 50 }
    }
}

/// `[full_load]`: parallel pipelines, rows per checkpointed chunk, bytes per INSERT, and
/// whether the destination binlogs the loaded rows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FullLoad {
    pub parallel: usize,
    pub chunk_rows: u64,
    pub batch_bytes: usize,
    pub write_binlog: bool,
    pub defer_secondary_indexes: bool,
    pub load_data: bool,
}

impl Default for FullLoad {
    fn default() -> Self {
        let d = dts_mysql::FullLoadSettings::default();
        Self {
            parallel: d.parallel,
            chunk_rows: d.chunk_rows,
            batch_bytes: d.batch_bytes,
            write_binlog: d.write_binlog,
            defer_secondary_indexes: d.defer_secondary_indexes,
            load_data: d.load_data,
        }
    }
}

impl FullLoad {
    pub fn settings(&self) -> dts_mysql::FullLoadSettings {
        dts_mysql::FullLoadSettings {
            parallel: self.parallel.clamp(1, 64),
            chunk_rows: self.chunk_rows.max(1000),
            batch_bytes: self.batch_bytes.clamp(16 << 10, 64 << 20),
            write_binlog: self.write_binlog,
            defer_secondary_indexes: self.defer_secondary_indexes,
            load_data: self.load_data,
        }
    }
}

/// `[replication]`: destination sessions applying independent transactions in parallel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Replication {
    pub apply_lanes: usize,
}

impl Default for Replication {
    fn default() -> Self {
        Self { apply_lanes: dts_mysql::ReplicationSettings::default().apply_lanes }
    }
}

impl Replication {
    pub fn settings(&self) -> dts_mysql::ReplicationSettings {
        dts_mysql::ReplicationSettings { apply_lanes: self.apply_lanes.clamp(1, 32) }
    }
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}
