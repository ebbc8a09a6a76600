//! Which binlog events a job replays: row events of the selected tables, and DDL by the objects
//! the statement names (never by the logging session's default database alone).
//!
//! A DDL statement is read with `sql_tokens` in the logging session's `sql_mode` (quotes,
//! backslashes, comments and executable comments as the server read them), and the objects it
//! names are resolved against the session's default database:
//! - tables, views and sequences (CREATE/ALTER/DROP/RENAME/TRUNCATE, `CREATE TABLE .. LIKE`,
//!   `ALTER TABLE .. RENAME TO`, `EXCHANGE PARTITION .. WITH TABLE`, `CREATE|DROP INDEX .. ON`,
//!   `CREATE TRIGGER .. ON`): each must be a selected table; a statement naming only unselected
//!   ones is skipped, one naming both is refused (`Decision::Refuse`: replaying it would change
//!   objects the job does not own, skipping it would lose a change to one it does);
//! - routines and events: replayed only for a wholly selected database (a table-level job
//!   migrates none);
//! - `DROP TRIGGER`, which names no table: replayed when its database is wholly selected, or
//!   when the trigger is known to belong to a selected table (the source's triggers when the
//!   stream opened, and those created since);
//! - CREATE/ALTER/DROP DATABASE: a selected database (for a whole instance: any but the system
//!   schemas); dropping a database of which only some tables are selected is refused;
//! - account statements (users, roles, grants, passwords), UDFs (`SONAME`), servers,
//!   tablespaces and anything not recognised: never replayed.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use dts_core::selection::SYSTEM_SCHEMAS;
use dts_core::{ConnectorError, ObjectSelection};

use crate::catalog::{self, Catalog};
use crate::connection::Session;
use crate::definer::{Program, ProgramKind};
use crate::definition::qualified;
use crate::sql_tokens::{Dialect, Token, tokenize};

/// What to do with a logged DDL statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Replay it; `without_schema` for database statements, which run with no default
    /// database (it may not exist).
    Replay { without_schema: bool },
    /// Not the job's: leave the destination alone.
    Skip,
    /// It names objects of the job and objects that are not: stop with this explanation.
    Refuse(String),
}

pub struct BinlogFilter {
    /// `MigrateObject` 1: databases created after the start are replicated too.
    whole_instance: bool,
    /// Database → `None` for every table, or the selected tables.
    databases: HashMap<String, Option<HashSet<String>>>,
    /// Triggers of partially selected databases: `(database, trigger)` → table.
    triggers: Mutex<HashMap<(String, String), String>>,
}

fn system(db: &str) -> bool {
    SYSTEM_SCHEMAS.contains(&db.to_ascii_lowercase().as_str())
}

/// What a statement names.
#[derive(Debug, PartialEq, Eq)]
enum Named {
    Database {
        verb: Verb,
        name: String,
    },
    /// Table-like objects as `(database, name)`.
    Tables(Vec<(String, String)>),
    /// A trigger created on a table: `(database, trigger)` and the table.
    NewTrigger {
        trigger: (String, String),
        table: (String, String),
    },
    DroppedTrigger(String, String),
    /// Routines or events of these databases.
    Programs(Vec<String>),
    /// Accounts, server-level objects, or not DDL at all.
    NotReplayed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Create,
    Alter,
    Drop,
}

/// A cursor over a statement's tokens.
struct Cursor<'a> {
    tokens: &'a [Token],
    at: usize,
    schema: &'a str,
}

impl<'a> Cursor<'a> {
    fn peek_is(&self, kw: &str) -> bool {
        self.tokens.get(self.at).is_some_and(|t| t.is(kw))
    }

    fn eat(&mut self, kw: &str) -> bool {
        let hit = self.peek_is(kw);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn eat_punct(&mut self, p: char) -> bool {
        let hit = self.tokens.get(self.at) == Some(&Token::Punct(p));
        if hit {
            self.at += 1;
        }
        hit
    }

    /// `IF EXISTS` / `IF NOT EXISTS`.
    fn eat_if_exists(&mut self) {
        if self.eat("IF") {
            self.eat("NOT");
            self.eat("EXISTS");
        }
    }

    /// `[db.]name`, the database defaulting to the session's.
    fn name(&mut self) -> Option<(String, String)> {
        let first = self.tokens.get(self.at)?.name()?.to_string();
        self.at += 1;
        if self.tokens.get(self.at) == Some(&Token::Punct('.'))
            && let Some(second) = self.tokens.get(self.at + 1).and_then(Token::name)
        {
            self.at += 2;
            return Some((first, second.to_string()));
        }
        Some((self.schema.to_string(), first))
    }

    /// `name {, name}`.
    fn names(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Some(n) = self.name() {
            out.push(n);
            if !self.eat_punct(',') {
                break;
            }
        }
        out
    }

    /// Skips to just after the next top-level (not parenthesised) keyword `kw`.
    fn skip_past(&mut self, kw: &str) -> bool {
        let mut depth = 0usize;
        while let Some(t) = self.tokens.get(self.at) {
            self.at += 1;
            match t {
                Token::Punct('(') => depth += 1,
                Token::Punct(')') => depth = depth.saturating_sub(1),
                t if depth == 0 && t.is(kw) => return true,
                _ => {}
            }
        }
        false
    }

    fn rest(&self) -> &'a [Token] {
        &self.tokens[self.at.min(self.tokens.len())..]
    }

    /// The clauses between CREATE/ALTER and the object kind: `OR REPLACE`, `TEMPORARY`,
    /// `ALGORITHM = x`, `DEFINER = user`, `SQL SECURITY x`, `UNIQUE`, `ONLINE`, ...
    fn skip_header(&mut self) {
        loop {
            if self.eat("OR") {
                self.eat("REPLACE");
            } else if self.eat("ALGORITHM") || self.eat("LOCK") {
                self.eat_punct('=');
                self.at += 1;
            } else if self.eat("DEFINER") {
                self.eat_punct('=');
                let current = self.peek_is("CURRENT_USER");
                self.at += 1;
                if current && self.eat_punct('(') {
                    self.eat_punct(')');
                } else if self.eat_punct('@') {
                    self.at += 1;
                }
            } else if self.eat("SQL") {
                self.eat("SECURITY");
                self.at += 1;
            } else if ["TEMPORARY", "UNIQUE", "FULLTEXT", "SPATIAL", "ONLINE", "OFFLINE", "IGNORE", "AGGREGATE"]
                .iter()
                .any(|k| self.peek_is(k))
            {
                self.at += 1;
            } else {
                return;
            }
        }
    }
}

/// The objects `sql` (logged with default database `schema`) names.
fn named(schema: &str, tokens: &[Token]) -> Named {
    let mut c = Cursor { tokens, at: 1, schema };
    let Some(first) = tokens.first() else { return Named::NotReplayed };
    let verb = if first.is("CREATE") {
        Verb::Create
    } else if first.is("ALTER") {
        Verb::Alter
    } else if first.is("DROP") {
        Verb::Drop
    } else if first.is("RENAME") {
        if !(c.eat("TABLE") || c.eat("TABLES")) {
            return Named::NotReplayed; // RENAME USER
        }
        c.eat_if_exists();
        let mut out = Vec::new();
        while let Some(from) = c.name() {
            out.push(from);
            if !c.skip_past("TO") {
                break;
            }
            let Some(to) = c.name() else { break };
            out.push(to);
            if !c.eat_punct(',') {
                break;
            }
        }
        return Named::Tables(out);
    } else if first.is("TRUNCATE") {
        c.eat("TABLE");
        return c.name().map_or(Named::NotReplayed, |n| Named::Tables(vec![n]));
    } else {
        return Named::NotReplayed;
    };
    c.skip_header();
    let Some(kind) = tokens.get(c.at).and_then(|t| match t {
        Token::Word(w) => Some(w.to_ascii_uppercase()),
        _ => None,
    }) else {
        return Named::NotReplayed;
    };
    c.at += 1;
    match kind.as_str() {
        "DATABASE" | "SCHEMA" => {
            c.eat_if_exists();
            match c.tokens.get(c.at).and_then(Token::name) {
                Some(name) => Named::Database { verb, name: name.to_string() },
                // `ALTER DATABASE CHARACTER SET ...`: the default database.
                None if verb == Verb::Alter && !schema.is_empty() => Named::Database { verb, name: schema.to_string() },
                None => Named::NotReplayed,
            }
        }
        "TABLE" | "TABLES" | "VIEW" | "SEQUENCE" => {
            c.eat_if_exists();
            if verb == Verb::Drop {
                return Named::Tables(c.names());
            }
            let Some(object) = c.name() else { return Named::NotReplayed };
            let mut out = vec![object];
            if kind == "TABLE" && verb == Verb::Create {
                // `CREATE TABLE t LIKE s` / `CREATE TABLE t (LIKE s)`: the table it copies.
                c.eat_punct('(');
                if c.eat("LIKE")
                    && let Some(like) = c.name()
                {
                    out.push(like);
                }
            }
            if kind == "TABLE" && verb == Verb::Alter {
                // Other tables it moves to or swaps with: RENAME [TO|AS], WITH TABLE.
                let mut i = c.at;
                while i < tokens.len() {
                    let t = &tokens[i];
                    let follows = t.is("RENAME") || (t.is("TABLE") && tokens[i - 1].is("WITH"));
                    i += 1;
                    if !follows {
                        continue;
                    }
                    let mut n = Cursor { tokens, at: i, schema };
                    if t.is("RENAME") {
                        if ["COLUMN", "INDEX", "KEY", "CONSTRAINT"].iter().any(|k| n.peek_is(k)) {
                            continue;
                        }
                        let _ = n.eat("TO") || n.eat("AS");
                    }
                    if let Some(other) = n.name() {
                        out.push(other);
                    }
                    i = n.at;
                }
            }
            Named::Tables(out)
        }
        "INDEX" | "KEY" => {
            if c.skip_past("ON") {
                c.name().map_or(Named::NotReplayed, |t| Named::Tables(vec![t]))
            } else {
                Named::NotReplayed
            }
        }
        "TRIGGER" => {
            c.eat_if_exists();
            let Some(trigger) = c.name() else { return Named::NotReplayed };
            if verb == Verb::Drop {
                return Named::DroppedTrigger(trigger.0, trigger.1);
            }
            if !c.skip_past("ON") {
                return Named::NotReplayed;
            }
            let Some(table) = c.name() else { return Named::NotReplayed };
            // An unqualified table is in the trigger's database.
            let table =
                if c.tokens.get(c.at - 2) == Some(&Token::Punct('.')) { table } else { (trigger.0.clone(), table.1) };
            Named::NewTrigger { trigger, table }
        }
        "PROCEDURE" | "FUNCTION" | "EVENT" | "PACKAGE" => {
            c.eat("BODY");
            c.eat_if_exists();
            let Some((db, _)) = c.name() else { return Named::NotReplayed };
            // A loadable function (`CREATE FUNCTION f RETURNS INTEGER SONAME 'x.so'`) loads a
            // library into the destination server: never.
            if c.rest().iter().any(|t| t.is("SONAME")) {
                return Named::NotReplayed;
            }
            Named::Programs(vec![db])
        }
        _ => Named::NotReplayed,
    }
}

/// The view, routine or trigger a `CREATE`/`ALTER` statement defines (with its default database
/// `schema`), read in the logged `sql_mode`: replay gives it invoker rights (`definer`).
pub fn program(schema: &str, sql: &str, sql_mode: Option<u64>) -> Option<Program> {
    let tokens = tokenize(sql, Dialect::of_sql_mode(sql_mode));
    if !(tokens.first()?.is("CREATE") || tokens.first()?.is("ALTER")) {
        return None;
    }
    let mut c = Cursor { tokens: &tokens, at: 1, schema };
    c.skip_header();
    let kind = match &tokens.get(c.at)? {
        t if t.is("VIEW") => ProgramKind::View,
        t if t.is("PROCEDURE") => ProgramKind::Procedure,
        t if t.is("FUNCTION") => ProgramKind::Function,
        t if t.is("TRIGGER") => ProgramKind::Trigger,
        _ => return None,
    };
    c.at += 1;
    c.eat_if_exists();
    let (db, name) = c.name()?;
    Some(Program { kind, db, name })
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
            triggers: Mutex::new(HashMap::new()),
        }
    }

    /// The filter of a selection on the source: its catalog, and the triggers of the
    /// databases only some tables of which are selected.
    pub async fn read(source: &mut Session, selection: &ObjectSelection) -> Result<Self, ConnectorError> {
        let catalog = Catalog::read(source, selection).await?;
        let filter = BinlogFilter::new(selection, &catalog);
        let mut known = HashMap::new();
        for d in catalog.databases.iter().filter(|d| !d.whole) {
            for (trigger, table) in catalog::triggers(source, &d.name).await? {
                known.insert((d.name.clone(), trigger), table);
            }
        }
        *filter.triggers.lock().unwrap_or_else(|p| p.into_inner()) = known;
        Ok(filter)
    }

    fn database(&self, db: &str) -> bool {
        if self.whole_instance { !db.is_empty() && !system(db) } else { self.databases.contains_key(db) }
    }

    fn whole_database(&self, db: &str) -> bool {
        if self.whole_instance { !db.is_empty() && !system(db) } else { matches!(self.databases.get(db), Some(None)) }
    }

    /// Whether row changes of `db.table` are applied.
    pub fn table(&self, db: &str, table: &str) -> bool {
        if self.whole_instance {
            return !db.is_empty() && !system(db);
        }
        match self.databases.get(db) {
            Some(None) => true,
            Some(Some(tables)) => tables.contains(table),
            None => false,
        }
    }

    /// What to do with a DDL statement logged with default database `schema` under
    /// `sql_mode`.
    pub fn ddl(&self, schema: &str, sql: &str, sql_mode: Option<u64>) -> Decision {
        let tokens = tokenize(sql, Dialect::of_sql_mode(sql_mode));
        let replay = Decision::Replay { without_schema: false };
        let objects = match named(schema, &tokens) {
            Named::NotReplayed => return Decision::Skip,
            Named::Database { verb, name } => {
                if !self.database(&name) {
                    return Decision::Skip;
                }
                if verb == Verb::Drop && !self.whole_database(&name) {
                    return Decision::Refuse(format!(
                        "DROP DATABASE `{name}`: the job selects only some of its tables, and dropping it \
                         on the destination would drop tables the job does not own"
                    ));
                }
                return Decision::Replay { without_schema: true };
            }
            Named::Programs(dbs) => {
                return if dbs.iter().all(|d| self.whole_database(d)) { replay } else { Decision::Skip };
            }
            Named::DroppedTrigger(db, trigger) => {
                let mut known = self.triggers.lock().unwrap_or_else(|p| p.into_inner());
                let table = known.remove(&(db.clone(), trigger));
                let ours = self.whole_database(&db) || table.is_some_and(|t| self.table(&db, &t));
                return if ours { replay } else { Decision::Skip };
            }
            Named::NewTrigger { trigger, table } => {
                if self.table(&table.0, &table.1) && trigger.0 == table.0 {
                    self.triggers.lock().unwrap_or_else(|p| p.into_inner()).insert(trigger, table.1.clone());
                }
                vec![table]
            }
            Named::Tables(objects) => objects,
        };
        let (ours, others): (Vec<_>, Vec<_>) = objects.iter().partition(|(db, t)| self.table(db, t));
        match (ours.is_empty(), others.is_empty()) {
            (true, _) => Decision::Skip,
            (false, true) => replay,
            (false, false) => Decision::Refuse(format!(
                "a DDL statement names tables the job replicates ({}) and tables it does not ({}); \
                 run it on the destination by hand for the replicated ones and resume the job",
                list(&ours),
                list(&others)
            )),
        }
    }

    /// The database a replayed DDL statement is about (change tracking routes it there): the one
    /// a database statement names, else the first selected database among the objects it names
    /// (by the same tokenizer as [`BinlogFilter::ddl`]), else the default database.
    pub fn ddl_database(&self, schema: &str, sql: &str, sql_mode: Option<u64>) -> String {
        let tokens = tokenize(sql, Dialect::of_sql_mode(sql_mode));
        let named_dbs: Vec<String> = match named(schema, &tokens) {
            Named::Database { name, .. } => return name,
            Named::Tables(objects) => objects.into_iter().map(|(d, _)| d).collect(),
            Named::NewTrigger { table, .. } => vec![table.0],
            Named::DroppedTrigger(db, _) => vec![db],
            Named::Programs(dbs) => dbs,
            Named::NotReplayed => Vec::new(),
        };
        named_dbs.iter().find(|d| !d.is_empty() && self.database(d)).cloned().unwrap_or_else(|| schema.to_string())
    }
}

fn list(objects: &[&(String, String)]) -> String {
    objects
        .iter()
        .map(|(d, t)| if d.is_empty() { format!("`{t}`") } else { qualified(d, t) })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_BACKSLASH_ESCAPES: u64 = 0x0010_0000;

    fn selected(whole_instance: bool) -> BinlogFilter {
        let mut databases = HashMap::new();
        databases.insert("app".to_string(), None);
        databases.insert("part".to_string(), Some(["t1".to_string(), "t2".to_string()].into_iter().collect()));
        let triggers =
            Mutex::new([(("part".to_string(), "on_t1".to_string()), "t1".to_string())].into_iter().collect());
        BinlogFilter { whole_instance, databases, triggers }
    }

    fn replays(f: &BinlogFilter, schema: &str, sql: &str) -> bool {
        matches!(f.ddl(schema, sql, None), Decision::Replay { .. })
    }

    fn refused(f: &BinlogFilter, schema: &str, sql: &str) -> bool {
        matches!(f.ddl(schema, sql, None), Decision::Refuse(_))
    }

    #[test]
    fn ddl_is_decided_by_the_objects_it_names_not_the_default_database() {
        let f = selected(false);
        assert!(replays(&f, "app", "DROP TABLE t"));
        assert!(!replays(&f, "app", "DROP TABLE other.t"), "USE app; DROP TABLE other.t");
        assert!(!replays(&f, "app", "DROP TABLE `other` . `t`"));
        assert!(replays(&f, "other", "DROP TABLE app.t"));
        assert!(!replays(&f, "other", "DROP TABLE t"));
        assert!(replays(&f, "", "RENAME TABLE app.a TO app.b"));
        assert!(refused(&f, "app", "RENAME TABLE a TO other.a"), "moving a table out of the selection");
        assert!(refused(&f, "app", "DROP TABLE IF EXISTS a, other.b"));
        assert!(!replays(&f, "app", "DROP TABLE other.a, other.b"));
        assert!(refused(&f, "app", "ALTER TABLE t RENAME TO other.t"));
        assert!(replays(&f, "app", "ALTER TABLE t RENAME COLUMN a TO b"));
        assert!(refused(&f, "app", "ALTER TABLE t EXCHANGE PARTITION p WITH TABLE other.x"));
        assert!(refused(&f, "app", "CREATE TABLE t2 LIKE other.t"));
        assert!(replays(&f, "app", "TRUNCATE t"));
        assert!(!replays(&f, "app", "TRUNCATE TABLE other.t"));
        assert!(replays(&f, "x", "CREATE UNIQUE INDEX i ON app.t (a)"));
        assert!(!replays(&f, "app", "CREATE INDEX i ON other.t (a)"));
        assert!(!replays(&f, "app", "DROP INDEX i ON other.t"));
        assert!(replays(
            &f,
            "app",
            "CREATE OR REPLACE ALGORITHM=MERGE DEFINER=`u`@`%` SQL SECURITY DEFINER VIEW v AS SELECT 1"
        ));
        assert!(!replays(&f, "app", "CREATE VIEW other.v AS SELECT * FROM app.t"));
        assert!(!replays(&f, "app", "DROP VIEW IF EXISTS other.v"));
    }

    #[test]
    fn a_ddl_statement_is_about_the_selected_database_it_names() {
        let f = selected(false);
        assert_eq!(f.ddl_database("", "ALTER TABLE app.t ADD COLUMN x INT", None), "app");
        assert_eq!(f.ddl_database("", "ALTER TABLE `part`.`t1` ADD COLUMN x INT", None), "part");
        assert_eq!(f.ddl_database("app", "ALTER TABLE t ADD COLUMN x INT", None), "app");
        assert_eq!(f.ddl_database("other", "CREATE DATABASE shop", None), "shop");
        assert_eq!(f.ddl_database("other", "ALTER TABLE t ADD COLUMN x INT", None), "other");
    }

    #[test]
    fn a_table_level_job_replays_ddl_of_its_tables_only() {
        let f = selected(false);
        assert!(replays(&f, "part", "ALTER TABLE t1 ADD c int"));
        assert!(!replays(&f, "part", "ALTER TABLE t3 ADD c int"));
        assert!(!replays(&f, "part", "CREATE TABLE t3 (id int)"));
        assert!(!replays(&f, "part", "DROP TABLE t3"));
        assert!(refused(&f, "part", "DROP TABLE t1, t3"));
        assert!(replays(&f, "part", "RENAME TABLE t1 TO t2"));
        assert!(refused(&f, "part", "RENAME TABLE t1 TO t3"));
        assert!(!replays(&f, "part", "CREATE INDEX i ON t3 (a)"));
        assert!(replays(
            &f,
            "part",
            "CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON t1 FOR EACH ROW SET @a = 1"
        ));
        assert!(!replays(&f, "part", "CREATE TRIGGER tr3 BEFORE INSERT ON t3 FOR EACH ROW SET @a = 1"));
        assert!(replays(&f, "part", "DROP TRIGGER tr"), "created on a selected table in the stream");
        assert!(replays(&f, "part", "DROP TRIGGER IF EXISTS on_t1"), "known from the source's catalog");
        assert!(!replays(&f, "part", "DROP TRIGGER tr3"));
        assert!(!replays(&f, "part", "CREATE PROCEDURE p() SELECT 1"), "a table-level job migrates no routines");
        assert!(replays(&f, "app", "CREATE DEFINER=`u`@`%` PROCEDURE p() SELECT 1"));
        assert!(!replays(&f, "app", "CREATE FUNCTION f RETURNS INTEGER SONAME 'evil.so'"));
        assert!(refused(&f, "", "DROP DATABASE part"));
        assert!(replays(&f, "", "ALTER DATABASE part CHARACTER SET utf8mb4"));
    }

    #[test]
    fn database_statements_decide_by_the_database_they_name() {
        let f = selected(false);
        assert_eq!(f.ddl("other", "DROP DATABASE app", None), Decision::Replay { without_schema: true });
        assert_eq!(f.ddl("app", "CREATE DATABASE other", None), Decision::Skip);
        assert_eq!(f.ddl("app", "create schema if not exists `app`", None), Decision::Replay { without_schema: true });
        assert!(replays(&f, "app", "CREATE TABLE `database` (id int)"));
        assert!(
            replays(&f, "app", "CREATE TABLE t (a varchar(9), CHECK (a LIKE b))"),
            "LIKE in an expression names no table"
        );
    }

    #[test]
    fn account_statements_are_never_replayed_however_written() {
        let f = selected(true);
        for sql in [
            "CREATE USER x",
            "CREATE OR REPLACE USER x@'%'",
            "DROP  USER x",
            "drop\nuser\tx",
            "CREATE /* a comment */ USER x",
            "/*!80000 CREATE USER x */",
            "ALTER USER x IDENTIFIED BY 'p'",
            "RENAME USER a TO b",
            "GRANT ALL ON *.* TO x",
            "REVOKE ALL ON *.* FROM x",
            "SET PASSWORD FOR x = PASSWORD('p')",
            "CREATE ROLE r",
            "DROP ROLE IF EXISTS r",
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h')",
        ] {
            assert_eq!(f.ddl("app", sql, None), Decision::Skip, "{sql}");
        }
    }

    #[test]
    fn quotes_and_comments_are_read_in_the_logged_sql_mode() {
        let f = selected(false);
        // Under NO_BACKSLASH_ESCAPES, `other.t` inside the second string is not a name.
        let sql = r"ALTER TABLE app.t COMMENT 'x\', COMMENT 'DROP TABLE other.t'";
        assert!(matches!(f.ddl("app", sql, Some(NO_BACKSLASH_ESCAPES)), Decision::Replay { .. }));
        assert!(!replays(&f, "app", "DROP /* TABLE app.t */ TABLE other.t"));
        assert!(!replays(&f, "app", "DROP TABLE /*!32312 IF EXISTS*/ `other`.`t`"));
        assert!(replays(&f, "other", "DROP TABLE -- other.t\n app.t"));
        assert!(!replays(&f, "app", "DROP TABLE \"other\".t"), "a string is no name; the server refuses it anyway");
        assert!(!matches!(f.ddl("app", "DROP TABLE \"other\".t", Some(4)), Decision::Replay { .. }));
    }

    #[test]
    fn the_program_a_statement_defines_is_found_past_its_header() {
        let v = "CREATE OR REPLACE ALGORITHM=UNDEFINED DEFINER=`u`@`%` SQL SECURITY DEFINER VIEW `d`.`v` AS SELECT 1";
        assert_eq!(program("x", v, None), Some(Program { kind: ProgramKind::View, db: "d".into(), name: "v".into() }));
        let p = "CREATE DEFINER=CURRENT_USER() PROCEDURE IF NOT EXISTS p() SELECT 1";
        assert_eq!(
            program("app", p, None),
            Some(Program { kind: ProgramKind::Procedure, db: "app".into(), name: "p".into() })
        );
        assert_eq!(program("app", "DROP VIEW v", None), None);
        assert_eq!(program("app", "CREATE TABLE v (id int)", None), None);
    }

    #[test]
    fn a_whole_instance_job_follows_new_databases_but_never_system_schemas() {
        let f = selected(true);
        assert!(replays(&f, "", "CREATE DATABASE fresh"));
        assert!(replays(&f, "fresh", "CREATE TABLE t (id int primary key)"));
        assert!(f.table("fresh", "t"));
        assert!(!replays(&f, "", "CREATE DATABASE mysql"));
        assert!(!replays(&f, "mysql", "ALTER TABLE user ADD x int"));
        assert!(!replays(&f, "", "ALTER TABLE mysql.user ADD x int"));
        assert!(refused(&f, "app", "RENAME TABLE t TO mysql.t"));
        assert!(!replays(&f, "", "CREATE TABLE t (id int)"), "no default database");
        assert!(!f.table("mysql", "user"));
    }
}
