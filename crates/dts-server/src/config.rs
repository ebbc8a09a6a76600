//! Server configuration: defaults, then the TOML file, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
