//! Typed change-log positions: where a consistent snapshot was taken, where a change stream
//! starts or resumes. Each family owns its variant; the engine stores and hands back the tagged
//! [`Position`] without ever looking inside it.

use std::collections::BTreeMap;
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

/// A PostgreSQL WAL position per database: a job that spans several databases has one
/// replication slot (and so one confirmed LSN) in each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsnPosition {
    /// Database name → LSN (the 64-bit `XXXXXXXX/XXXXXXXX` value).
    pub databases: BTreeMap<String, u64>,
}

impl fmt::Display for LsnPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            self.databases.iter().map(|(db, lsn)| format!("{db}@{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)).collect();
        f.write_str(&parts.join(","))
    }
}

/// Where one Redis replication stream stands: the master's replication id and the offset of
/// the last byte processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationOffset {
    pub replid: String,
    pub offset: i64,
}

/// A Redis position: one replication offset per shard (`""` for a standalone source; a cluster
/// source has one per master, keyed by its node id or address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisPosition {
    pub shards: BTreeMap<String, ReplicationOffset>,
}

impl fmt::Display for RedisPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .shards
            .iter()
            .map(|(shard, o)| {
                if shard.is_empty() {
                    format!("{}:{}", o.replid, o.offset)
                } else {
                    format!("{shard}={}:{}", o.replid, o.offset)
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A position in a source's change log, tagged with its family. The engine persists it as JSON
/// and hands it back to the family that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// No position: the source has no change log (binlog off), or the stream has not started.
    None,
    Binlog(BinlogPosition),
    Lsn(LsnPosition),
    Redis(RedisPosition),
}

impl Position {
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Binlog(p) => write!(f, "binlog {p}"),
            Self::Lsn(p) => write!(f, "lsn {p}"),
            Self::Redis(p) => write!(f, "redis {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_as_tagged_json() {
        let all = [
            Position::None,
            Position::Binlog(BinlogPosition { file: "bin.000002".into(), offset: 4, gtid: Some("0-1-9".into()) }),
            Position::Lsn(LsnPosition { databases: [("app".to_string(), 0x1_0000_0028)].into() }),
            Position::Redis(RedisPosition {
                shards: [(String::new(), ReplicationOffset { replid: "ab".repeat(20), offset: 1234 })].into(),
            }),
        ];
        for p in all {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Position>(&json).unwrap(), p, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Position::Binlog(BinlogPosition { file: "f".into(), offset: 9, gtid: None }))
                .unwrap(),
            r#"{"kind":"binlog","file":"f","offset":9}"#
        );
        assert_eq!(
            Position::Lsn(LsnPosition { databases: [("d".to_string(), 0x1_0000_0028)].into() }).to_string(),
            "lsn d@1/28"
        );
    }
}
