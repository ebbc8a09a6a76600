//! Redis Cluster's key space: the slot of a key (CRC16/XMODEM of the key, or of its `{hash tag}`,
//! modulo 16384), slot ranges and their names, and `CLUSTER NODES` read into masters with the
//! slots each serves and a slot → node map.
//!
//! The slot function is Redis' own (`keyHashSlot` in `cluster.c`): the hash tag is the part
//! between the first `{` and the first `}` after it, when that part is not empty. Tested against
//! Redis' reference values (`CLUSTER KEYSLOT`).

use crate::error::{RedisError, Result};

/// Slots of a Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), as Redis computes it.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS as u16
}

/// Inclusive slot ranges, in order.
pub type SlotRanges = Vec<(u16, u16)>;

/// A shard's name from its slots (`0-5460`, `0-100,200-300`, `7`): what its checkpoint is
/// keyed by, so a replica promoted in its place finds the same position.
pub fn ranges_name(ranges: &[(u16, u16)]) -> String {
    let parts: Vec<String> =
        ranges.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    parts.join(",")
}

/// Whether `slot` is in `ranges`.
pub fn in_ranges(ranges: &[(u16, u16)], slot: u16) -> bool {
    ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
}

/// One node of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    /// Host as the cluster announces it (empty: the node does not know its own address).
    pub host: String,
    pub port: u16,
    pub master: bool,
    /// `fail` (not `fail?`): the cluster agreed the node is down.
    pub failed: bool,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    /// The slots a master serves (migrating/importing markers left out).
    pub ranges: SlotRanges,
}

impl NodeInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The nodes of a `CLUSTER NODES` reply.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<NodeInfo>> {
    let mut nodes = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 8 {
            return Err(RedisError::Protocol(format!("a CLUSTER NODES line of {} fields", fields.len())));
        }
        let addr = fields[1].split(['@', ',']).next().unwrap_or_default();
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| RedisError::Protocol(format!("a CLUSTER NODES address {addr:?}")))?;
        let flags: Vec<&str> = fields[2].split(',').collect();
        let mut ranges = SlotRanges::new();
        for s in &fields[8..] {
            if s.starts_with('[') {
                continue;
            }
            let (a, b) = match s.split_once('-') {
                Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
                None => (s.parse::<u16>(), s.parse::<u16>()),
            };
            match (a, b) {
                (Ok(a), Ok(b)) if a <= b && (b as usize) < SLOTS => ranges.push((a, b)),
                _ => return Err(RedisError::Protocol(format!("a CLUSTER NODES slot range {s:?}"))),
            }
        }
        ranges.sort_unstable();
        nodes.push(NodeInfo {
            id: fields[0].to_string(),
            host,
            port,
            master: flags.contains(&"master"),
            failed: flags.contains(&"fail"),
            master_id: (fields[3] != "-").then(|| fields[3].to_string()),
            ranges,
        });
    }
    Ok(nodes)
}

/// Which node serves each slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    /// `host:port` of every master that serves a slot.
    pub addrs: Vec<String>,
    /// Per slot, the index into `addrs` (`u16::MAX`: nobody).
    owner: Vec<u16>,
}

const NOBODY: u16 = u16::MAX;

impl SlotMap {
    /// The map of the masters among `nodes` (a failed master serves nothing).
    pub fn of(nodes: &[NodeInfo]) -> SlotMap {
        let mut map = SlotMap { addrs: Vec::new(), owner: vec![NOBODY; SLOTS] };
        for n in nodes.iter().filter(|n| n.master && !n.failed && !n.ranges.is_empty()) {
            let index = map.index_of(&n.addr());
            for &(a, b) in &n.ranges {
                for s in a..=b {
                    map.owner[s as usize] = index;
                }
            }
        }
        map
    }

    fn index_of(&mut self, addr: &str) -> u16 {
        match self.addrs.iter().position(|a| a == addr) {
            Some(i) => i as u16,
            None => {
                self.addrs.push(addr.to_string());
                (self.addrs.len() - 1) as u16
            }
        }
    }

    /// The node serving `slot`.
    pub fn node(&self, slot: u16) -> Option<&str> {
        let i = *self.owner.get(slot as usize)?;
        (i != NOBODY).then(|| self.addrs[i as usize].as_str())
    }

    /// The index into `addrs` of the node serving `slot`.
    pub fn index(&self, slot: u16) -> Option<usize> {
        let i = *self.owner.get(slot as usize)?;
        (i != NOBODY).then_some(i as usize)
    }

    /// After `MOVED slot addr`: `addr` serves `slot` now.
    pub fn moved(&mut self, slot: u16, addr: &str) {
        let index = self.index_of(addr);
        if let Some(o) = self.owner.get_mut(slot as usize) {
            *o = index;
        }
    }

    /// Slots nobody serves.
    pub fn uncovered(&self) -> usize {
        self.owner.iter().filter(|&&o| o == NOBODY).count()
    }
}

/// `MOVED <slot> <addr>` or `ASK <slot> <addr>` of an error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    Moved { slot: u16, addr: String },
    Ask { slot: u16, addr: String },
}

/// Reads a redirection out of an error reply, if it is one.
pub fn parse_redirect(reply: &[u8]) -> Option<Redirect> {
    let text = std::str::from_utf8(reply).ok()?;
    let mut parts = text.split_whitespace();
    let kind = parts.next()?;
    let slot = parts.next()?.parse().ok()?;
    let addr = parts.next()?.to_string();
    match kind {
        "MOVED" => Some(Redirect::Moved { slot, addr }),
        "ASK" => Some(Redirect::Ask { slot, addr }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_reference_values() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag is no tag; only the first `{` counts.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn cluster_nodes_give_masters_their_slots_and_skip_migration_markers() {
        let text = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,host3 master - 0 1426238318243 3 connected 10923-16383 [93-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-100 101 102-5460
";
        let nodes = parse_cluster_nodes(text).unwrap();
        assert_eq!(nodes.len(), 4);
        assert!(!nodes[0].master);
        assert_eq!(nodes[0].master_id.as_deref(), Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"));
        assert_eq!(nodes[2].ranges, vec![(10923, 16383)]);
        assert_eq!(nodes[2].addr(), "127.0.0.1:30003");
        assert_eq!(nodes[3].ranges, vec![(0, 100), (101, 101), (102, 5460)]);
        let map = SlotMap::of(&nodes);
        assert_eq!(map.uncovered(), 0);
        assert_eq!(map.node(12182), Some("127.0.0.1:30003"));
        assert_eq!(map.node(0), Some("127.0.0.1:30001"));
        assert_eq!(ranges_name(&nodes[3].ranges), "0-100,101,102-5460");
        let mut map = map;
        map.moved(0, "127.0.0.1:30002");
        assert_eq!(map.node(0), Some("127.0.0.1:30002"));
    }

    #[test]
    fn redirections_are_read_from_error_replies() {
        assert_eq!(
            parse_redirect(b"MOVED 3999 127.0.0.1:6381"),
            Some(Redirect::Moved { slot: 3999, addr: "127.0.0.1:6381".into() })
        );
        assert_eq!(
            parse_redirect(b"ASK 7 10.0.0.2:7000"),
            Some(Redirect::Ask { slot: 7, addr: "10.0.0.2:7000".into() })
        );
        assert_eq!(parse_redirect(b"ERR wrong"), None);
    }
}
