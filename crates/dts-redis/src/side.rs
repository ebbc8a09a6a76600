//! One side of a read-only comparison: a standalone server, or every master of a Redis Cluster
//! with the slot map that says which of them holds a key (the consistency check scans every
//! master and reads each key where its slot lives).

use bytes::Bytes;
use dts_core::ConnectionSpec;

use crate::conn::Conn;
use crate::error::Result;
use crate::resp::Reply;
use crate::slots::{SlotMap, key_slot};
use crate::topology::{Topology, of_conn, spec_at_addr};

/// Connections to every server that holds keys.
pub struct Side {
    /// The standalone server, or each master in the order of `map.addrs`.
    pub conns: Vec<Conn>,
    map: Option<SlotMap>,
}

impl Side {
    pub async fn open(spec: &ConnectionSpec) -> Result<Side> {
        let mut first = Conn::open(spec).await?;
        match of_conn(&mut first, &spec.host).await? {
            Topology::Standalone => Ok(Side { conns: vec![first], map: None }),
            Topology::Cluster(view) => {
                let map = view.slot_map();
                let mut conns = Vec::with_capacity(map.addrs.len());
                for addr in &map.addrs {
                    conns.push(Conn::open(&spec_at_addr(spec, addr)?).await?);
                }
                Ok(Side { conns, map: Some(map) })
            }
        }
    }

    fn index(&self, key: &[u8]) -> usize {
        self.map.as_ref().and_then(|m| m.index(key_slot(key))).unwrap_or(0)
    }

    /// The connection to the server holding `key`.
    pub fn conn_for(&mut self, key: &[u8]) -> &mut Conn {
        let i = self.index(key);
        &mut self.conns[i]
    }

    /// `SELECT db` on every connection.
    pub async fn select(&mut self, db: &str) -> Result<()> {
        for c in &mut self.conns {
            c.ok(&["SELECT", db]).await?;
        }
        Ok(())
    }

    /// `keys` grouped by the server holding them: `(index into conns, positions in keys)`.
    pub fn groups(&self, keys: &[Bytes]) -> Vec<(usize, Vec<usize>)> {
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.conns.len()];
        for (i, k) in keys.iter().enumerate() {
            groups[self.index(k)].push(i);
        }
        groups.into_iter().enumerate().filter(|(_, p)| !p.is_empty()).collect()
    }

    /// `command key` for each of `keys`, pipelined per server; the replies in `keys`' order.
    pub async fn each_key(&mut self, command: &'static [u8], keys: &[Bytes]) -> Result<Vec<Reply>> {
        let mut out = vec![Reply::Bulk(None); keys.len()];
        for (node, positions) in self.groups(keys) {
            let cmds: Vec<Vec<Bytes>> =
                positions.iter().map(|&i| vec![Bytes::from_static(command), keys[i].clone()]).collect();
            for (i, r) in positions.into_iter().zip(self.conns[node].pipeline(&cmds).await?) {
                out[i] = r;
            }
        }
        Ok(out)
    }
}
