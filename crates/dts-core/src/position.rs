//! Typed change-log positions: where a consistent snapshot was taken, where replication
//! resumes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A MySQL-family binlog position, with the GTID state at that point when the server has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub offset: u64,
    /// MariaDB `domain-server-seq` list (e.g. `0-1-42`) or a MySQL GTID set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)?;
        if let Some(g) = &self.gtid {
            write!(f, " (gtid {g})")?;
        }
        Ok(())
    }
}

/// A position in a source's change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// The source has no change log (binlog off): the snapshot has no position.
    None,
    Binlog(BinlogPosition),
}
