//! The instance registry: database instances known by id (`[instances.<InstanceId>]` in the
//! config file), so that jobs can name `InstanceId` instead of an address (`cdb` access).
//!
//! An entry belongs to one account (`account`, default `default`) or to all (`shared = true`);
//! [`InstanceRegistry::get_for`] shows another account's entry to no one, exactly as if the id
//! were unknown, so its stored credentials serve only its owner.

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
    /// The account whose jobs may name this instance (`default` when not given).
    #[serde(default)]
    pub account: Option<String>,
    /// Every account's jobs may name it.
    #[serde(default)]
    pub shared: bool,
}

impl InstanceEntry {
    /// Whether jobs of `account` may name this instance.
    pub fn visible_to(&self, account: &str) -> bool {
        self.shared || self.account.as_deref().unwrap_or(crate::AccountId::DEFAULT) == account
    }
}

impl fmt::Debug for InstanceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceEntry")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("account", &self.account)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// Instances by `InstanceId`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct InstanceRegistry(pub BTreeMap<String, InstanceEntry>);

impl InstanceRegistry {
    /// The entry `instance_id` if jobs of `account` may name it; another account's entry is
    /// `None`, as an unknown id is.
    pub fn get_for(&self, account: &str, instance_id: &str) -> Option<&InstanceEntry> {
        self.0.get(instance_id).filter(|e| e.visible_to(account))
    }
}
