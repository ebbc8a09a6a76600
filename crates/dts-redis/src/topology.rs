//! What a Redis endpoint is: a standalone server, or one node of a Redis Cluster, in which case
//! the cluster's masters and the slots each serves are read from `CLUSTER NODES` of the first
//! node that answers (the endpoint itself, then nodes seen before, so a job whose configured
//! node failed over or died still finds its cluster).

use dts_core::ConnectionSpec;

use crate::conn::{Conn, info_field, parse_info};
use crate::error::{RedisError, Result};
use crate::slots::{NodeInfo, SlotMap, parse_cluster_nodes};

/// A Redis endpoint's topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    Standalone,
    Cluster(ClusterView),
}

/// A cluster as one of its nodes sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub nodes: Vec<NodeInfo>,
    /// `cluster_state:ok` on the node asked.
    pub state_ok: bool,
}

impl ClusterView {
    /// The masters that serve slots, in slot order.
    pub fn masters(&self) -> Vec<&NodeInfo> {
        let mut m: Vec<&NodeInfo> =
            self.nodes.iter().filter(|n| n.master && !n.failed && !n.ranges.is_empty()).collect();
        m.sort_by_key(|n| n.ranges[0]);
        m
    }

    pub fn slot_map(&self) -> SlotMap {
        SlotMap::of(&self.nodes)
    }

    /// Every node's address (for finding the cluster again later).
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(NodeInfo::addr).collect()
    }
}

impl Topology {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Standalone => "standalone".into(),
            Self::Cluster(c) => format!("a cluster of {} masters", c.masters().len()),
        }
    }
}

/// `spec` with another host and port (same user, password and TLS).
pub fn spec_at(spec: &ConnectionSpec, host: &str, port: u16) -> ConnectionSpec {
    ConnectionSpec { host: host.to_string(), port, ..spec.clone() }
}

/// `spec` at `host:port`.
pub fn spec_at_addr(spec: &ConnectionSpec, addr: &str) -> Result<ConnectionSpec> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| RedisError::Protocol(format!("a node address {addr:?}")))?;
    Ok(spec_at(spec, host, port))
}

/// The topology behind `spec`; when `spec` does not answer, each of `known` (`host:port` of
/// nodes seen before) is asked in turn. The first error is returned when nobody answers.
pub async fn discover(spec: &ConnectionSpec, known: &[String]) -> Result<Topology> {
    let mut first_error = None;
    let mut candidates = vec![spec.clone()];
    for addr in known {
        if let Ok(s) = spec_at_addr(spec, addr)
            && !candidates.iter().any(|c| c.host == s.host && c.port == s.port)
        {
            candidates.push(s);
        }
    }
    for candidate in &candidates {
        match discover_at(candidate).await {
            Ok(t) => return Ok(t),
            Err(e @ (RedisError::Auth(_) | RedisError::Operator(_))) => return Err(e),
            Err(e) => {
                tracing::debug!(node = %format!("{}:{}", candidate.host, candidate.port), error = %e, "node did not answer");
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(RedisError::Closed))
}

async fn discover_at(spec: &ConnectionSpec) -> Result<Topology> {
    let mut conn = Conn::open(spec).await?;
    of_conn(&mut conn, &spec.host).await
}

/// The topology of the server behind `conn` (`host`: how dts reached it, for a node that does
/// not know its own address).
pub async fn of_conn(conn: &mut Conn, host: &str) -> Result<Topology> {
    let info = conn.info("cluster").await?;
    if info_field(&info, "cluster_enabled") != Some("1") {
        return Ok(Topology::Standalone);
    }
    let text = conn.ok(&["CLUSTER", "NODES"]).await?.text().unwrap_or_default();
    let mut nodes = parse_cluster_nodes(&text)?;
    for n in &mut nodes {
        if n.host.is_empty() {
            n.host = host.to_string();
        }
    }
    let state = conn.ok(&["CLUSTER", "INFO"]).await?.text().unwrap_or_default();
    let state_ok = info_field(&parse_info(&state), "cluster_state") == Some("ok");
    Ok(Topology::Cluster(ClusterView { nodes, state_ok }))
}
