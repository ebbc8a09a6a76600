//! Server versions as reported by `SELECT VERSION()`: the family (MariaDB versus MySQL and
//! Percona) and the numeric `major.minor.patch` used to compare source and destination.

use std::fmt;

/// The two incompatible lines of the MySQL family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    /// MySQL and Percona Server (which reports a MySQL version).
    MySql,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::MariaDb => "MariaDB",
            Flavor::MySql => "MySQL/Percona",
        })
    }
}

/// A parsed `VERSION()` string, e.g. `10.11.19-MariaDB-log` or `8.0.36-28`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    pub flavor: Flavor,
    pub number: (u32, u32, u32),
    pub raw: String,
}

impl ServerVersion {
    /// Parses a version string; missing parts count as 0. The `5.5.5-` prefix that old
    /// replication-compatibility MariaDB handshakes carry is dropped.
    pub fn parse(raw: &str) -> ServerVersion {
        let is_mariadb = raw.to_ascii_lowercase().contains("mariadb");
        let text = if is_mariadb { raw.strip_prefix("5.5.5-").unwrap_or(raw) } else { raw };
        let numeric: &str = text.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
        let mut parts = numeric.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let number = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        ServerVersion { flavor: if is_mariadb { Flavor::MariaDb } else { Flavor::MySql }, number, raw: raw.to_string() }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.number;
        write!(f, "{} {a}.{b}.{c}", self.flavor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_and_mysql_versions_parse_to_numbers_and_family() {
        let m = ServerVersion::parse("10.11.19-MariaDB-log");
        assert_eq!((m.flavor, m.number), (Flavor::MariaDb, (10, 11, 19)));
        let old = ServerVersion::parse("5.5.5-10.6.2-MariaDB");
        assert_eq!((old.flavor, old.number), (Flavor::MariaDb, (10, 6, 2)));
        let p = ServerVersion::parse("8.0.36-28");
        assert_eq!((p.flavor, p.number), (Flavor::MySql, (8, 0, 36)));
        assert!(ServerVersion::parse("10.11.2-MariaDB").number < m.number);
        assert_eq!(m.to_string(), "MariaDB 10.11.19");
    }
}
