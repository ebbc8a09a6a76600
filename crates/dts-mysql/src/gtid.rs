//! MariaDB GTID positions: the state `domain-server-seq,...` (one entry per replication
//! domain) that replication carries in its checkpoints, advanced by the binlog's GTID events
//! (type 162, which `mysql_common` does not decode: 8 bytes sequence number, 4 bytes domain id,
//! little-endian; the server id is in the event header). A checkpoint whose binlog file is gone
//! from the source (purged, or a failover to a server with other file names) resumes by GTID.

use std::collections::BTreeMap;
use std::fmt;

/// MariaDB's GTID event type code.
pub const MARIADB_GTID_EVENT: u8 = 162;

/// The last GTID per domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidState {
    domains: BTreeMap<u32, (u32, u64)>,
}

impl GtidState {
    /// Parses `0-1-42,1-7-3`; malformed entries are skipped.
    pub fn parse(s: &str) -> GtidState {
        let mut out = GtidState::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            if let (Some(d), Some(sv), Some(n), None) = (it.next(), it.next(), it.next(), it.next())
                && let (Ok(d), Ok(sv), Ok(n)) = (d.parse(), sv.parse(), n.parse())
            {
                out.domains.insert(d, (sv, n));
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Records a GTID event's raw data (after the header) logged by `server_id`.
    pub fn apply_event(&mut self, data: &[u8], server_id: u32) {
        if data.len() < 12 {
            return;
        }
        let seq = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
        let domain = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        self.domains.insert(domain, (server_id, seq));
    }
}

impl fmt::Display for GtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.domains.iter().map(|(d, (s, n))| format!("{d}-{s}-{n}")).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gtid_event_advances_its_domain_and_the_state_round_trips_as_text() {
        let mut s = GtidState::parse("0-1-41,2-9-7");
        let mut data = 42u64.to_le_bytes().to_vec();
        data.extend_from_slice(&0u32.to_le_bytes());
        data.push(0);
        s.apply_event(&data, 5);
        assert_eq!(s.to_string(), "0-5-42,2-9-7");
        assert!(GtidState::parse("junk").is_empty());
        assert_eq!(GtidState::parse(&s.to_string()), s);
    }
}
