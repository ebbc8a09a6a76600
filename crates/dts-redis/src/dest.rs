//! The destination of a Redis job: one standalone server, or a Redis Cluster (its masters read
//! from `CLUSTER NODES`), and what a full resync does to it before a snapshot: empty the
//! selected databases (a standalone source's snapshot replaces everything), or remove only the
//! keys of one source shard's slots (a cluster source's shard is copied again while the other
//! shards' keys stay, and dts's markers are never removed).

use bytes::Bytes;
use dts_core::ConnectionSpec;

use crate::cluster::ClusterWriter;
use crate::conn::Conn;
use crate::dbs::DbSelection;
use crate::error::{RedisError, Result};
use crate::slots::{in_ranges, key_slot};
use crate::stream::MARKER_PREFIX;
use crate::topology::{ClusterView, Topology, discover, spec_at};

/// Keys per SCAN page while purging slots.
const PURGE_PAGE: &str = "1000";

/// A job's destination.
#[derive(Debug, Clone)]
pub enum Dest {
    Standalone(ConnectionSpec),
    Cluster { spec: ConnectionSpec, view: ClusterView },
}

impl Dest {
    /// What `spec` is.
    pub async fn discover(spec: &ConnectionSpec) -> Result<Dest> {
        Ok(match discover(spec, &[]).await? {
            Topology::Standalone => Dest::Standalone(spec.clone()),
            Topology::Cluster(view) => Dest::Cluster { spec: spec.clone(), view },
        })
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    /// The configured endpoint.
    pub fn spec(&self) -> &ConnectionSpec {
        match self {
            Self::Standalone(s) | Self::Cluster { spec: s, .. } => s,
        }
    }

    /// Every server that holds keys: the standalone server, or each master.
    pub fn servers(&self) -> Vec<ConnectionSpec> {
        match self {
            Self::Standalone(s) => vec![s.clone()],
            Self::Cluster { spec, view } => view.masters().iter().map(|m| spec_at(spec, &m.host, m.port)).collect(),
        }
    }

    /// A writer to the cluster (`strict`: a full load, where any error reply fails).
    pub fn cluster_writer(&self, strict: bool) -> Option<ClusterWriter> {
        match self {
            Self::Standalone(_) => None,
            Self::Cluster { spec, view } => Some(ClusterWriter::new(spec, &view.nodes, strict)),
        }
    }

    /// Empties the selected databases before a standalone source's snapshot (a cluster holds
    /// database 0 only: every master's).
    pub async fn empty(&self, dbs: &DbSelection) -> Result<()> {
        match self {
            Self::Standalone(spec) => {
                let mut c = Conn::open(spec).await?;
                match dbs {
                    DbSelection::All => {
                        c.ok(&["FLUSHALL"]).await?;
                    }
                    DbSelection::Only(list) => {
                        for d in list {
                            c.ok(&["SELECT".to_string(), d.to_string()]).await?;
                            c.ok(&["FLUSHDB"]).await?;
                        }
                    }
                }
            }
            Self::Cluster { .. } => {
                for s in self.servers() {
                    Conn::open(&s).await?.ok(&["FLUSHDB"]).await?;
                }
            }
        }
        Ok(())
    }

    /// Removes the keys of database 0 whose slot is in `ranges` from every server, dts's
    /// markers excepted; returns how many. Used before a cluster source's shard is copied again
    /// and for that shard's `FLUSHALL`/`FLUSHDB`.
    pub async fn purge_slots(&self, ranges: &[(u16, u16)]) -> Result<u64> {
        let mut removed = 0;
        for s in self.servers() {
            let mut c = Conn::open(&s).await?;
            c.ok(&["SELECT", "0"]).await?;
            let mut cursor = Bytes::from_static(b"0");
            loop {
                let page = c.ok(&[&b"SCAN"[..], &cursor, b"COUNT", PURGE_PAGE.as_bytes()]).await?;
                let mut parts = page
                    .array()
                    .filter(|v| v.len() == 2)
                    .ok_or_else(|| RedisError::Protocol("a SCAN reply that is not [cursor, keys]".into()))?;
                let keys = parts.pop().and_then(|k| k.array()).unwrap_or_default();
                cursor = parts.pop().and_then(|c| c.bytes().cloned()).unwrap_or_default();
                let doomed: Vec<Vec<Bytes>> = keys
                    .into_iter()
                    .filter_map(|k| k.bytes().cloned())
                    .filter(|k| !k.starts_with(MARKER_PREFIX.as_bytes()) && in_ranges(ranges, key_slot(k)))
                    .map(|k| vec![Bytes::from_static(b"UNLINK"), k])
                    .collect();
                if !doomed.is_empty() {
                    for r in c.pipeline(&doomed).await? {
                        if let crate::resp::Reply::Error(e) = r {
                            return Err(crate::conn::server_error(&["UNLINK"], &e));
                        }
                    }
                    removed += doomed.len() as u64;
                }
                if cursor.as_ref() == b"0" || cursor.is_empty() {
                    break;
                }
            }
        }
        Ok(removed)
    }
}
