//! The instance registry: database instances known by id (`[instances.<InstanceId>]` in the
//! config file), so that jobs can name `InstanceId` instead of an address (`cdb` access).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// One registered instance. The password's `Debug` is redacted.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceEntry {
    /// mysql, mariadb or percona.
    pub engine: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub password: String,
}

impl fmt::Debug for InstanceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceEntry")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Instances by `InstanceId`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct InstanceRegistry(pub BTreeMap<String, InstanceEntry>);

impl InstanceRegistry {
    pub fn get(&self, instance_id: &str) -> Option<&InstanceEntry> {
        self.0.get(instance_id)
    }
}
