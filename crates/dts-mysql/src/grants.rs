//! Privileges of the connected user as listed by `SHOW GRANTS FOR CURRENT_USER()`: parsing the
//! global and database-level grants, and finding which required privileges are missing.

use std::collections::BTreeSet;

use crate::definition::quote_ident;

/// One privilege a migration needs, with the names servers use for it.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    /// Shown to the operator when missing.
    pub name: &'static str,
    /// Any of these grants satisfies the requirement (MariaDB 10.5+ renamed some).
    pub accepted: &'static [&'static str],
    /// Only an `ON *.*` grant counts (replication privileges).
    pub global_only: bool,
}

const fn plain(name: &'static str, accepted: &'static [&'static str]) -> Requirement {
    Requirement { name, accepted, global_only: false }
}

pub const SELECT: Requirement = plain("SELECT", &["SELECT"]);
pub const SHOW_VIEW: Requirement = plain("SHOW VIEW", &["SHOW VIEW"]);
pub const REPLICATION_SLAVE: Requirement = Requirement {
    name: "REPLICATION SLAVE",
    accepted: &["REPLICATION SLAVE", "REPLICATION REPLICA"],
    global_only: true,
};
pub const REPLICATION_CLIENT: Requirement = Requirement {
    name: "REPLICATION CLIENT",
    accepted: &["REPLICATION CLIENT", "BINLOG MONITOR", "REPLICATION SLAVE ADMIN"],
    global_only: true,
};

/// Destination privileges needed to create the structure.
pub const STRUCTURE: [Requirement; 9] = [
    plain("CREATE", &["CREATE"]),
    plain("ALTER", &["ALTER"]),
    plain("DROP", &["DROP"]),
    plain("INDEX", &["INDEX"]),
    plain("CREATE VIEW", &["CREATE VIEW"]),
    plain("CREATE ROUTINE", &["CREATE ROUTINE"]),
    plain("ALTER ROUTINE", &["ALTER ROUTINE"]),
    plain("TRIGGER", &["TRIGGER"]),
    plain("REFERENCES", &["REFERENCES"]),
];

/// Destination privileges needed to write rows.
pub const DATA: [Requirement; 3] =
    [plain("INSERT", &["INSERT"]), plain("UPDATE", &["UPDATE"]), plain("DELETE", &["DELETE"])];

/// Privileges held at one level (`*.*` or one database pattern).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PrivilegeSet {
    all: bool,
    names: BTreeSet<String>,
}

impl PrivilegeSet {
    fn holds(&self, req: &Requirement) -> bool {
        self.all || req.accepted.iter().any(|a| self.names.contains(*a))
    }

    fn add(&mut self, privileges: &str) {
        for p in split_top_level(privileges) {
            let p = p.trim().to_ascii_uppercase();
            if p.contains('(') {
                continue; // column-level: does not cover whole objects
            }
            if p == "ALL" || p == "ALL PRIVILEGES" {
                self.all = true;
            } else if !p.is_empty() {
                self.names.insert(p);
            }
        }
    }
}

/// The grants of one user: global, plus database-level ones keyed by their (LIKE) pattern.
/// Table-, column- and routine-level grants and role grants are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    global: PrivilegeSet,
    databases: Vec<(String, PrivilegeSet)>,
}

impl Grants {
    /// Parses the lines of `SHOW GRANTS`.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Self {
        let mut grants = Grants::default();
        for line in lines {
            let line = line.as_ref().trim();
            if !line.to_ascii_uppercase().starts_with("GRANT ") {
                continue;
            }
            let body = &line["GRANT ".len()..];
            let Some(on) = find_top_level(body, " ON ") else { continue };
            let (privileges, target) = (&body[..on], body[on + " ON ".len()..].trim_start());
            match parse_target(target) {
                Some(Target::Global) => grants.global.add(privileges),
                Some(Target::Database(pattern)) => match grants.databases.iter_mut().find(|(p, _)| *p == pattern) {
                    Some((_, set)) => set.add(privileges),
                    None => {
                        let mut set = PrivilegeSet::default();
                        set.add(privileges);
                        grants.databases.push((pattern, set));
                    }
                },
                None => {}
            }
        }
        grants
    }

    /// Whether the user holds `req` for `database` (or globally, when `database` is `None`).
    pub fn holds(&self, req: &Requirement, database: Option<&str>) -> bool {
        if self.global.holds(req) {
            return true;
        }
        match database {
            Some(db) if !req.global_only => {
                self.databases.iter().any(|(pattern, set)| like_match(pattern, db) && set.holds(req))
            }
            _ => false,
        }
    }

    /// The missing privileges, one entry per requirement: `INSERT` when missing for every
    /// database (or globally), `INSERT on `a`, `b`` when missing for some. Empty when all held.
    pub fn missing(&self, required: &[Requirement], databases: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for req in required {
            if req.global_only || databases.is_empty() {
                if !self.holds(req, None) {
                    out.push(req.name.to_string());
                }
                continue;
            }
            let lacking: Vec<&String> = databases.iter().filter(|db| !self.holds(req, Some(db))).collect();
            if lacking.len() == databases.len() {
                out.push(req.name.to_string());
            } else if !lacking.is_empty() {
                let names: Vec<String> = lacking.iter().map(|d| quote_ident(d)).collect();
                out.push(format!("{} on {}", req.name, names.join(", ")));
            }
        }
        out
    }
}

enum Target {
    Global,
    Database(String),
}

/// `*.*` → global; `` `db`.* `` or `db.*` → a database pattern; anything else (tables,
/// `PROCEDURE ...`, `PROXY`) → `None`.
fn parse_target(target: &str) -> Option<Target> {
    if target.starts_with("*.*") {
        return Some(Target::Global);
    }
    let (db, rest) = if let Some(stripped) = target.strip_prefix('`') {
        let mut name = String::new();
        let mut chars = stripped.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if chars.peek().map(|(_, c)| *c) == Some('`') {
                    chars.next();
                    name.push('`');
                } else {
                    end = Some(i + 1);
                    break;
                }
            } else {
                name.push(c);
            }
        }
        (name, &stripped[end?..])
    } else {
        let dot = target.find('.')?;
        let name = &target[..dot];
        if name.contains(' ') {
            return None;
        }
        (name.to_string(), &target[dot..])
    };
    rest.starts_with(".*").then_some(Target::Database(db))
}

/// SQL `LIKE` matching as used by database-level grants (`%`, `_`, `\` escapes).
fn like_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('%') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('_') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Splits on commas outside parentheses and backquotes.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '`' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Position of `needle` outside parentheses and backquotes (case-insensitive, ASCII).
fn find_top_level(s: &str, needle: &str) -> Option<usize> {
    let upper = s.to_ascii_uppercase();
    let (mut depth, mut quoted) = (0i32, false);
    for (i, c) in s.char_indices() {
        match c {
            '`' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            _ if !quoted && depth == 0 && upper[i..].starts_with(needle) => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_all_privileges_hold_everything() {
        let g = Grants::parse(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]);
        assert!(g.missing(&STRUCTURE, &["d".into()]).is_empty());
        assert!(g.missing(&[REPLICATION_SLAVE, REPLICATION_CLIENT], &[]).is_empty());
    }

    #[test]
    fn usage_only_misses_everything() {
        let g = Grants::parse(&["GRANT USAGE ON *.* TO `weak`@`%` IDENTIFIED BY PASSWORD '*ABC'"]);
        assert_eq!(g.missing(&[SELECT, SHOW_VIEW], &["d".into()]), vec!["SELECT", "SHOW VIEW"]);
    }

    #[test]
    fn database_grants_count_only_for_matching_databases() {
        let g = Grants::parse(&[
            "GRANT USAGE ON *.* TO `u`@`%`",
            "GRANT SELECT, SHOW VIEW ON `shop`.* TO `u`@`%`",
            "GRANT SELECT (`a`, `b`), INSERT ON `other`.* TO `u`@`%`",
            "GRANT ALL PRIVILEGES ON `app\\_%`.* TO `u`@`%`",
            "GRANT SELECT ON `x`.`t` TO `u`@`%`",
        ]);
        assert!(g.missing(&[SELECT, SHOW_VIEW], &["shop".into(), "app_1".into()]).is_empty());
        assert_eq!(g.missing(&[SELECT], &["shop".into(), "other".into()]), vec!["SELECT on `other`"]);
        assert!(g.holds(&DATA[0], Some("other")));
        assert!(!g.holds(&SELECT, Some("appx1")));
        assert!(!g.holds(&SELECT, Some("x")));
        assert_eq!(g.missing(&[REPLICATION_SLAVE], &["app_1".into()]), vec!["REPLICATION SLAVE"]);
    }

    #[test]
    fn mariadb_binlog_monitor_counts_as_replication_client() {
        let g = Grants::parse(&["GRANT SELECT, RELOAD, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO `r`@`%`"]);
        assert!(g.missing(&[SELECT, REPLICATION_SLAVE, REPLICATION_CLIENT], &[]).is_empty());
    }
}
