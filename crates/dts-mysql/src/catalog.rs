//! What a selection covers on a server: its databases, tables, views, routines and triggers,
//! read from `information_schema` with bound parameters (never spliced names).

use std::collections::{BTreeMap, BTreeSet};

use dts_core::selection::SYSTEM_SCHEMAS;
use dts_core::{ConnectorError, ObjectSelection};

use crate::connection::Session;
use crate::definition::{qualified, quote_ident};

/// One selected database that exists on the source, with the objects it contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedDatabase {
    pub name: String,
    /// The whole database is selected (views and routines go with it).
    pub whole: bool,
    /// Base tables, sorted by name (only the listed ones when not `whole`).
    pub tables: Vec<String>,
    /// Views, sorted by name (empty when not `whole`).
    pub views: Vec<String>,
}

/// The resolved selection on the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Selected databases present on the source, in selection order (name order for a
    /// whole instance).
    pub databases: Vec<SelectedDatabase>,
    /// Selected objects absent from the source, as `` `db` `` or `` `db`.`t` ``.
    pub missing: Vec<String>,
}

/// Binds a list of names as `?, ?, ...`.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Catalog {
    /// Reads the selection from the source. Read-only.
    pub async fn read(source: &mut Session, selection: &ObjectSelection) -> Result<Catalog, ConnectorError> {
        let present: Vec<String> = source
            .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME", "listing databases")
            .await?;
        let wanted: Vec<(String, Option<Vec<String>>)> = match selection {
            ObjectSelection::WholeInstance => present
                .iter()
                .filter(|d| !SYSTEM_SCHEMAS.contains(&d.to_ascii_lowercase().as_str()))
                .map(|d| (d.clone(), None))
                .collect(),
            ObjectSelection::Databases(list) => list.iter().map(|d| (d.database.clone(), d.tables.clone())).collect(),
        };
        let mut catalog = Catalog::default();
        let existing: Vec<String> =
            wanted.iter().filter(|(d, _)| present.contains(d)).map(|(d, _)| d.clone()).collect();
        for (db, _) in wanted.iter().filter(|(d, _)| !present.contains(d)) {
            catalog.missing.push(quote_ident(db));
        }
        let relations = relations(source, &existing).await?;
        for (db, tables) in wanted.into_iter().filter(|(d, _)| existing.contains(d)) {
            let all = relations.get(&db).cloned().unwrap_or_default();
            let base: Vec<String> = all.iter().filter(|(_, v)| !v).map(|(n, _)| n.clone()).collect();
            let views: Vec<String> = all.iter().filter(|(_, v)| *v).map(|(n, _)| n.clone()).collect();
            let selected = match tables {
                None => SelectedDatabase { name: db, whole: true, tables: base, views },
                Some(listed) => {
                    let mut chosen = Vec::new();
                    for t in listed {
                        if base.contains(&t) {
                            if !chosen.contains(&t) {
                                chosen.push(t);
                            }
                        } else {
                            catalog.missing.push(qualified(&db, &t));
                        }
                    }
                    chosen.sort();
                    SelectedDatabase { name: db, whole: false, tables: chosen, views: Vec::new() }
                }
            };
            catalog.databases.push(selected);
        }
        Ok(catalog)
    }

    pub fn database_names(&self) -> Vec<String> {
        self.databases.iter().map(|d| d.name.clone()).collect()
    }

    /// Every selected table and view as `(database, name)`.
    pub fn relations(&self) -> Vec<(String, String)> {
        self.databases
            .iter()
            .flat_map(|d| d.tables.iter().chain(d.views.iter()).map(|t| (d.name.clone(), t.clone())))
            .collect()
    }
}

/// Tables and views of `databases`: database → sorted `(name, is_view)`. Sequences and
/// temporary tables are left out.
pub async fn relations(
    session: &mut Session,
    databases: &[String],
) -> Result<BTreeMap<String, Vec<(String, bool)>>, ConnectorError> {
    let mut out: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    if databases.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA IN ({}) ORDER BY TABLE_SCHEMA, TABLE_NAME",
        placeholders(databases.len())
    );
    let rows: Vec<(String, String, String)> = session.exec(&sql, databases.to_vec(), "listing tables").await?;
    for (db, name, kind) in rows {
        let is_view = match kind.as_str() {
            "VIEW" => true,
            "BASE TABLE" | "SYSTEM VERSIONED" => false,
            _ => continue,
        };
        out.entry(db).or_default().push((name, is_view));
    }
    Ok(out)
}

/// Stored routines of a database as sorted `(name, "PROCEDURE" | "FUNCTION")`.
pub async fn routines(session: &mut Session, database: &str) -> Result<Vec<(String, String)>, ConnectorError> {
    session
        .exec(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') \
             ORDER BY ROUTINE_TYPE DESC, ROUTINE_NAME",
            vec![database.to_string()],
            "listing routines",
        )
        .await
}

/// Triggers of a database as `(name, table)`, in per-table firing order so that re-creating
/// them in this order keeps `ACTION_ORDER`.
pub async fn triggers(session: &mut Session, database: &str) -> Result<Vec<(String, String)>, ConnectorError> {
    session
        .exec(
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = ? \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
            vec![database.to_string()],
            "listing triggers",
        )
        .await
}

/// Base tables of `databases` without a primary key, as `(database, table)`.
/// Tables of `databases` with no key a row can be told apart by: no primary key and no unique
/// key whose columns are all NOT NULL. Their rows are matched by every column, so a change
/// applied twice (a re-read transaction after a crash) duplicates a row nothing can detect.
pub async fn tables_without_any_key(
    session: &mut Session,
    databases: &[String],
) -> Result<BTreeSet<(String, String)>, ConnectorError> {
    if databases.is_empty() {
        return Ok(BTreeSet::new());
    }
    let sql = format!(
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME FROM information_schema.TABLES t \
         WHERE t.TABLE_SCHEMA IN ({}) AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') \
           AND NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS s \
             JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA \
              AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME \
             WHERE s.TABLE_SCHEMA = t.TABLE_SCHEMA AND s.TABLE_NAME = t.TABLE_NAME AND s.NON_UNIQUE = 0 \
             GROUP BY s.INDEX_NAME HAVING SUM(c.IS_NULLABLE = 'YES') = 0)",
        placeholders(databases.len())
    );
    let rows: Vec<(String, String)> = session.exec(&sql, databases.to_vec(), "listing tables without keys").await?;
    Ok(rows.into_iter().collect())
}

pub async fn tables_without_primary_key(
    session: &mut Session,
    databases: &[String],
) -> Result<BTreeSet<(String, String)>, ConnectorError> {
    if databases.is_empty() {
        return Ok(BTreeSet::new());
    }
    let sql = format!(
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME FROM information_schema.TABLES t \
         LEFT JOIN information_schema.TABLE_CONSTRAINTS c \
           ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME \
          AND c.CONSTRAINT_TYPE = 'PRIMARY KEY' \
         WHERE t.TABLE_SCHEMA IN ({}) AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') \
           AND c.CONSTRAINT_NAME IS NULL",
        placeholders(databases.len())
    );
    let rows: Vec<(String, String)> = session.exec(&sql, databases.to_vec(), "listing primary keys").await?;
    Ok(rows.into_iter().collect())
}
