//! Jobs: identity, ownership, kind and the migration spec as the user declared it.
//!
//! The spec keeps the cloud API's vocabulary (MigrateType, MigrateObject, ...) because those
//! numbers are the contract users script against; passwords are never part of it (the store
//! keeps them encrypted beside the spec).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// `dts-` followed by 8 lowercase letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The account that owns API keys and jobs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub String);

impl AccountId {
    pub const DEFAULT: &'static str = "default";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a job does. A migration ends (by itself, or at cut-over); a synchronization replicates
/// into a database for as long as it lives; change tracking publishes the source's changes to
/// the change bus for as long as it lives (it has no destination database, never catches up
/// to a cut-over and never completes). The store keeps the kind in its own column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Migration,
    Synchronization,
    ChangeTracking,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [Self::Migration, Self::Synchronization, Self::ChangeTracking];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Migration => "migration",
            Self::Synchronization => "synchronization",
            Self::ChangeTracking => "change_tracking",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the job's change stream runs until an operator stops it (no cut-over, no
    /// deadline on retrying a source outage).
    pub fn runs_forever(self) -> bool {
        matches!(self, Self::Synchronization | Self::ChangeTracking)
    }
}

/// Two-way synchronization: what happens when both sides changed a row before either change
/// crossed over (Alibaba `Reserve` `{"conflictPolicy": ...}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictPolicy {
    /// The change committed later wins on both sides (ties: the server whose address sorts first).
    #[default]
    LaterCommitWins,
    /// The arriving change always wins.
    Overwrite,
    /// The destination's row is kept.
    Ignore,
    /// The job stops for an operator.
    TaskFailed,
}

impl ConflictPolicy {
    pub const NAMES: [&'static str; 4] = ["LaterCommitWins", "Overwrite", "Ignore", "TaskFailed"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "latercommitwins" => Self::LaterCommitWins,
            "overwrite" => Self::Overwrite,
            "ignore" => Self::Ignore,
            "taskfailed" => Self::TaskFailed,
            _ => return None,
        })
    }
}

/// Which steps a job runs. Tencent's `MigrateType` names three combinations; Alibaba's
/// `StructureInitialization`/`DataInitialization`/`DataSynchronization` flags name any of them,
/// e.g. the incremental-only reverse job of a two-way synchronization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stages {
    pub structure: bool,
    pub full_data: bool,
    pub incremental: bool,
}

impl Stages {
    /// The stages of a Tencent `MigrateType` (1, 2 or 3).
    pub fn of_migrate_type(migrate_type: i64) -> Self {
        Self { structure: true, full_data: migrate_type >= 2, incremental: migrate_type >= 3 }
    }

    /// The closest `MigrateType` (what the Tencent dialect shows).
    pub fn migrate_type(self) -> i64 {
        if self.incremental {
            3
        } else if self.full_data {
            2
        } else {
            1
        }
    }
}

/// `MigrateOption.ConsistencyParams`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyParams {
    pub select_rows_per_table: Option<i64>,
    pub tables_select_all: Option<i64>,
    pub tables_select_count: Option<i64>,
}

/// `MigrateOption`, with the API's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateOptions {
    /// 1 immediately, 2 at `expect_time`.
    pub run_mode: i64,
    /// `yyyy-mm-dd hh:mm:ss`, server local time (UTC).
    pub expect_time: Option<String>,
    /// 1 structure, 2 structure + full data, 3 structure + full + incremental.
    pub migrate_type: i64,
    /// 1 whole instance, 2 the databases/tables of `DatabaseInfo`.
    pub migrate_object: i64,
    pub consistency_type: Option<i64>,
    pub is_override_root: Option<i64>,
    pub extern_params: Option<String>,
    pub consistency_params: Option<ConsistencyParams>,
}

impl MigrateOptions {
    /// `ExternParams` `{"startAfterCheck": true}`: the engine starts the job as soon as its
    /// precheck passes (Tencent's `ActivateSubscribe` is one call from configuration to running).
    pub fn starts_after_check(&self) -> bool {
        self.extern_params
            .as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .is_some_and(|v| v["startAfterCheck"] == serde_json::Value::Bool(true))
    }
}

/// One side of a job as declared (`SrcInfo`/`DstInfo` plus type and access type), minus the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    pub database_type: String,
    pub access_type: String,
    pub ip: Option<String>,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub instance_id: Option<String>,
    pub region: Option<String>,
    /// Every other declared field (VpcId, Supplier, ReadOnly, ...), echoed back unchanged.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A tag on a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: Option<String>,
}

/// Everything a user declares about a migration job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationSpec {
    pub name: String,
    pub options: MigrateOptions,
    pub source: EndpointSpec,
    pub destination: EndpointSpec,
    /// `DatabaseInfo` exactly as given (a JSON string); parse with [`crate::ObjectSelection`].
    pub database_info: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub src_node_type: Option<String>,
    /// `SrcInfoMulti`, passwords removed.
    #[serde(default)]
    pub src_info_multi: Vec<EndpointSpec>,
    /// Explicit stages; `None` means those of `options.migrate_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Stages>,
    /// Two-way synchronization: the replication session id both directions' appliers write
    /// with, and whose transactions both directions' readers drop, so no change echoes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_guard: Option<u32>,
    /// Two-way synchronization's conflict rule.
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
    /// Start the job when its precheck passes (Alibaba's `autoStartModulesAfterConfig`, and
    /// StartDtsJob during the precheck); cleared when it fires.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_start: bool,
}

impl MigrationSpec {
    /// The steps this job runs.
    pub fn stages(&self) -> Stages {
        self.stages.unwrap_or_else(|| Stages::of_migrate_type(self.options.migrate_type))
    }
}
