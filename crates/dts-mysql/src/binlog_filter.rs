//! Which binlog events a job replays: row events of the selected tables, and DDL of the
//! selected databases (for a whole-instance job, of every database but the system schemas),
//! including CREATE/ALTER/DROP DATABASE of such a database.
//!
//! DDL is matched on its text (the statement's default database, and database names it
//! qualifies objects with): account statements (users, roles) are never replayed here, and a
//! statement that names a system schema is never replayed by a whole-instance job.

use std::collections::{HashMap, HashSet};

use dts_core::ObjectSelection;
use dts_core::selection::SYSTEM_SCHEMAS;

use crate::catalog::Catalog;

pub struct BinlogFilter {
    /// `MigrateObject` 1: databases created after the start are replicated too.
    whole_instance: bool,
    /// Database → `None` for every table, or the selected tables.
    databases: HashMap<String, Option<HashSet<String>>>,
}

fn system(db: &str) -> bool {
    SYSTEM_SCHEMAS.contains(&db.to_ascii_lowercase().as_str())
}

/// The database a `CREATE|ALTER|DROP DATABASE|SCHEMA [IF [NOT] EXISTS] name` statement names.
pub fn database_statement(sql: &str) -> Option<String> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let verb = words.first()?.to_ascii_lowercase();
    let kind = words.get(1)?.to_ascii_lowercase();
    if !matches!(verb.as_str(), "create" | "alter" | "drop") || !matches!(kind.as_str(), "database" | "schema") {
        return None;
    }
    let mut rest = &words[2..];
    while let Some(w) = rest.first()
        && matches!(w.to_ascii_lowercase().as_str(), "if" | "not" | "exists")
    {
        rest = &rest[1..];
    }
    let name = rest.first()?.trim_end_matches(';').trim_matches('`');
    (!name.is_empty()).then(|| name.to_string())
}

impl BinlogFilter {
    pub fn new(selection: &ObjectSelection, catalog: &Catalog) -> Self {
        BinlogFilter {
            whole_instance: matches!(selection, ObjectSelection::WholeInstance),
            databases: catalog
                .databases
                .iter()
                .map(|d| (d.name.clone(), if d.whole { None } else { Some(d.tables.iter().cloned().collect()) }))
                .collect(),
        }
    }

    fn database(&self, db: &str) -> bool {
        if self.whole_instance { !db.is_empty() && !system(db) } else { self.databases.contains_key(db) }
    }

    /// Whether row changes of `db.table` are applied.
    pub fn table(&self, db: &str, table: &str) -> bool {
        if self.whole_instance {
            return !system(db);
        }
        match self.databases.get(db) {
            Some(None) => true,
            Some(Some(tables)) => tables.contains(table),
            None => false,
        }
    }

    /// Whether a DDL statement (run with default database `schema`) is replayed.
    pub fn ddl(&self, schema: &str, sql: &str) -> bool {
        let lower = sql.trim_start().to_ascii_lowercase();
        let ddl = ["create ", "alter ", "drop ", "rename ", "truncate "].iter().any(|p| lower.starts_with(p));
        let account = ["create user", "drop user", "alter user", "rename user", "create role", "drop role"]
            .iter()
            .any(|p| lower.starts_with(p));
        if !ddl || account {
            return false;
        }
        if let Some(db) = database_statement(sql) {
            return self.database(&db);
        }
        let names = |d: &str| {
            let d = d.to_ascii_lowercase();
            lower.contains(&format!("`{d}`.")) || lower.contains(&format!(" {d}."))
        };
        if self.whole_instance {
            return !system(schema) && !SYSTEM_SCHEMAS.iter().any(|s| names(s));
        }
        self.databases.contains_key(schema) || self.databases.keys().any(|d| names(d))
    }

    /// The database a replayed DDL statement is about (change tracking routes it there): the one
    /// a database statement names, else the default database if it is selected, else the first
    /// selected database the statement names qualified, else the default database.
    pub fn ddl_database(&self, schema: &str, sql: &str) -> String {
        if let Some(db) = database_statement(sql) {
            return db;
        }
        if !schema.is_empty() && self.database(schema) {
            return schema.to_string();
        }
        let lower = sql.to_ascii_lowercase();
        let position = |d: &str| {
            let d = d.to_ascii_lowercase();
            [format!("`{d}`."), format!(" {d}.")].iter().filter_map(|p| lower.find(p.as_str())).min()
        };
        self.databases
            .keys()
            .filter_map(|d| position(d).map(|at| (at, d)))
            .min()
            .map_or_else(|| schema.to_string(), |(_, d)| d.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selected(whole_instance: bool) -> BinlogFilter {
        let mut databases = HashMap::new();
        databases.insert("app".to_string(), None);
        databases.insert("part".to_string(), Some(["t1".to_string()].into_iter().collect()));
        BinlogFilter { whole_instance, databases }
    }

    #[test]
    fn database_statements_name_their_database() {
        assert_eq!(database_statement("CREATE DATABASE IF NOT EXISTS `b`"), Some("b".into()));
        assert_eq!(database_statement("drop schema if exists c;"), Some("c".into()));
        assert_eq!(database_statement("ALTER DATABASE app CHARACTER SET utf8mb4"), Some("app".into()));
        assert_eq!(database_statement("CREATE TABLE database (id int)"), None);
    }

    #[test]
    fn a_ddl_statement_is_about_the_selected_database_it_names() {
        let f = selected(false);
        assert_eq!(f.ddl_database("", "ALTER TABLE app.t ADD COLUMN x INT"), "app");
        assert_eq!(f.ddl_database("", "ALTER TABLE `part`.`t1` ADD COLUMN x INT"), "part");
        assert_eq!(f.ddl_database("app", "ALTER TABLE t ADD COLUMN x INT"), "app");
        assert_eq!(f.ddl_database("other", "CREATE DATABASE shop"), "shop");
        assert_eq!(f.ddl_database("other", "ALTER TABLE t ADD COLUMN x INT"), "other");
    }

    #[test]
    fn ddl_of_selected_databases_is_replayed_and_other_ddl_is_not() {
        let f = selected(false);
        assert!(f.ddl("app", "DROP TABLE t"));
        assert!(f.ddl("", "RENAME TABLE app.a TO app.b"));
        assert!(f.ddl("other", "DROP DATABASE app"));
        assert!(!f.ddl("app", "CREATE DATABASE other"));
        assert!(!f.ddl("other", "DROP TABLE t"));
        assert!(!f.ddl("app", "CREATE USER x"));
        assert!(f.table("part", "t1") && !f.table("part", "t2") && !f.table("other", "t"));
    }

    #[test]
    fn a_whole_instance_job_follows_new_databases_but_never_system_schemas() {
        let f = selected(true);
        assert!(f.ddl("", "CREATE DATABASE fresh"));
        assert!(f.ddl("fresh", "CREATE TABLE t (id int primary key)"));
        assert!(f.table("fresh", "t"));
        assert!(!f.ddl("", "CREATE DATABASE mysql"));
        assert!(!f.ddl("mysql", "ALTER TABLE user ADD x int"));
        assert!(!f.ddl("", "ALTER TABLE mysql.user ADD x int"));
        assert!(!f.table("mysql", "user"));
    }
}
