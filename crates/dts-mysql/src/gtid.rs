//! GTIDs of the binlog: MariaDB's GTID state `domain-server-seq,...` (one entry per replication
//! domain) that replication carries in its checkpoints, advanced by the binlog's GTID events
//! (type 162, which `mysql_common` does not decode: 8 bytes sequence number, 4 bytes domain id,
//! 1 byte of flags, little-endian; the server id is in the event header), and one transaction's
//! own GTID ([`Gtid`]) in its source's notation, MariaDB's or MySQL's (`uuid:n`, or
//! `uuid:tag:n` for MySQL 8.4's tagged GTIDs). A checkpoint whose binlog file is gone from the
//! source (purged, or a failover to a server with other file names) resumes by GTID.

use std::collections::BTreeMap;
use std::fmt;

/// MariaDB's GTID event type code.
pub const MARIADB_GTID_EVENT: u8 = 162;
/// MySQL's GTID event (`GTID_LOG_EVENT`): the next transaction has a GTID.
pub const MYSQL_GTID_EVENT: u8 = 33;
/// MySQL's anonymous GTID event: the next transaction has none (`gtid_mode` OFF).
pub const MYSQL_ANONYMOUS_GTID_EVENT: u8 = 34;
/// MySQL 8.4's tagged GTID event (`GTID_TAGGED_LOG_EVENT`).
pub const MYSQL_TAGGED_GTID_EVENT: u8 = 42;

/// MariaDB's GTID event flag `FL_STANDALONE`: the event group is one statement without
/// BEGIN/COMMIT (DDL); without it the GTID event stands for the group's BEGIN.
const MARIADB_FL_STANDALONE: u8 = 1;

/// One transaction's GTID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gtid {
    /// MariaDB `domain-server-seq`.
    MariaDb { domain: u32, server: u32, seq: u64 },
    /// MySQL `uuid:n` (`sid` the source server's UUID), `uuid:tag:n` with a tag.
    MySql { sid: [u8; 16], tag: Option<String>, gno: u64 },
}

impl Gtid {
    /// The GTID of a MariaDB GTID event's raw data (after the header) logged by `server_id`, and
    /// whether its event group is a standalone statement (no BEGIN/COMMIT). `None` when the
    /// data is too short.
    pub fn from_mariadb_event(data: &[u8], server_id: u32) -> Option<(Gtid, bool)> {
        let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
        let standalone = data.get(12).is_some_and(|f| f & MARIADB_FL_STANDALONE != 0);
        Some((Gtid::MariaDb { domain, server: server_id, seq }, standalone))
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::MariaDb { domain, server, seq } => write!(f, "{domain}-{server}-{seq}"),
            Gtid::MySql { sid, tag, gno } => {
                for (i, b) in sid.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                write!(f, ":{gno}")
            }
        }
    }
}

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

    /// Records a MariaDB transaction's GTID (MySQL GTIDs have no place in this state).
    pub fn apply(&mut self, gtid: &Gtid) {
        if let &Gtid::MariaDb { domain, server, seq } = gtid {
            self.domains.insert(domain, (server, seq));
        }
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
        s.apply(&Gtid::from_mariadb_event(&data, 5).expect("a GTID event").0);
        assert_eq!(s.to_string(), "0-5-42,2-9-7");
        assert!(GtidState::parse("junk").is_empty());
        assert_eq!(GtidState::parse(&s.to_string()), s);
    }

    #[test]
    fn a_mariadb_gtid_event_gives_its_transactions_gtid_and_whether_it_stands_alone() {
        let mut data = 42u64.to_le_bytes().to_vec();
        data.extend_from_slice(&3u32.to_le_bytes());
        data.push(0);
        let (gtid, standalone) = Gtid::from_mariadb_event(&data, 7).expect("a GTID");
        assert_eq!((gtid.to_string(), standalone), ("3-7-42".to_string(), false));
        data[12] = MARIADB_FL_STANDALONE | 0x08;
        assert_eq!(Gtid::from_mariadb_event(&data, 7).map(|g| g.1), Some(true));
        assert_eq!(Gtid::from_mariadb_event(&data[..11], 7), None);
    }

    #[test]
    fn a_mysql_gtid_is_written_as_its_server_uuid_then_tag_then_number() {
        let sid: [u8; 16] = core::array::from_fn(|i| (i as u8) * 17);
        let gtid = Gtid::MySql { sid, tag: None, gno: 23 };
        assert_eq!(gtid.to_string(), "00112233-4455-6677-8899-aabbccddeeff:23");
        let tagged = Gtid::MySql { sid, tag: Some("blue".into()), gno: 1 };
        assert_eq!(tagged.to_string(), "00112233-4455-6677-8899-aabbccddeeff:blue:1");
    }
}
