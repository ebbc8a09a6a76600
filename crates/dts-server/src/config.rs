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
    /// Regions accepted in `X-TC-Region`; default: Tencent's public regions.
    pub regions: Option<Vec<String>>,
    #[serde(default)]
    pub limits: Limits,
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

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}
