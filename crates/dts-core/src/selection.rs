//! Which databases and tables a job covers: the whole instance, or the `DatabaseInfo` list.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Schemas that belong to the server itself and are never migrated as user data.
pub const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// One database of a selection; `tables: None` means every table of it. `rename` and
/// `table_renames` name it and its tables on the destination (Alibaba's `DbList` "name").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseSelection {
    pub database: String,
    pub tables: Option<Vec<String>>,
    pub rename: Option<String>,
    pub table_renames: BTreeMap<String, String>,
}

/// The objects a job migrates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectSelection {
    /// `MigrateObject` 1: every database but the system schemas.
    WholeInstance,
    /// `MigrateObject` 2: the parsed `DatabaseInfo`.
    Databases(Vec<DatabaseSelection>),
}

/// Why a `DatabaseInfo` string is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("DatabaseInfo is required when MigrateObject is 2")]
    Missing,
    #[error("DatabaseInfo is not a JSON array of {{\"Database\": ..., \"Table\": [...]}} objects: {0}")]
    Malformed(String),
    #[error("DatabaseInfo lists no database")]
    Empty,
    #[error("DatabaseInfo names the system schema `{0}`, which cannot be migrated")]
    SystemSchema(String),
    #[error("DatabaseInfo lists database `{0}` twice")]
    Duplicate(String),
    #[error("DatabaseInfo maps {0} to one destination name {1}")]
    RenameCollision(String, String),
    #[error("MigrateObject must be 1 (whole instance) or 2 (selected objects), got {0}")]
    BadMigrateObject(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(rename = "Database")]
    database: String,
    #[serde(rename = "Table", default)]
    table: Option<Vec<String>>,
    #[serde(rename = "Schema", default)]
    _schema: Option<serde_json::Value>,
    /// dts extension: the database's name on the destination.
    #[serde(rename = "NewDatabase", default)]
    new_database: Option<String>,
    /// dts extension: table → its name on the destination.
    #[serde(rename = "NewTables", default)]
    new_tables: BTreeMap<String, String>,
}

impl ObjectSelection {
    /// Builds the selection from `MigrateObject` and `DatabaseInfo`.
    pub fn parse(migrate_object: i64, database_info: Option<&str>) -> Result<Self, SelectionError> {
        match migrate_object {
            1 => Ok(Self::WholeInstance),
            2 => {
                let raw = database_info.filter(|s| !s.trim().is_empty()).ok_or(SelectionError::Missing)?;
                let entries: Vec<Entry> =
                    serde_json::from_str(raw).map_err(|e| SelectionError::Malformed(e.to_string()))?;
                if entries.is_empty() {
                    return Err(SelectionError::Empty);
                }
                let mut out: Vec<DatabaseSelection> = Vec::new();
                for e in entries {
                    if e.database.is_empty() {
                        return Err(SelectionError::Malformed("empty Database name".into()));
                    }
                    if SYSTEM_SCHEMAS.contains(&e.database.to_ascii_lowercase().as_str()) {
                        return Err(SelectionError::SystemSchema(e.database));
                    }
                    if out.iter().any(|d| d.database == e.database) {
                        return Err(SelectionError::Duplicate(e.database));
                    }
                    let tables = e.table.filter(|t| !t.is_empty());
                    let rename = e.new_database.filter(|n| !n.is_empty() && *n != e.database);
                    if let Some(n) = &rename
                        && SYSTEM_SCHEMAS.contains(&n.to_ascii_lowercase().as_str())
                    {
                        return Err(SelectionError::SystemSchema(n.clone()));
                    }
                    let table_renames =
                        e.new_tables.into_iter().filter(|(from, to)| !to.is_empty() && from != to).collect();
                    out.push(DatabaseSelection { database: e.database, tables, rename, table_renames });
                }
                check_targets(&out)?;
                Ok(Self::Databases(out))
            }
            other => Err(SelectionError::BadMigrateObject(other)),
        }
    }
}

/// Two source objects never land on one destination name: within a database, two tables
/// renamed to one name, or a table renamed to the name of another selected one; across
/// databases, two mapped to one destination database, unless both list their tables and no two
/// of those tables meet there (a whole database's tables are not known before the job runs).
fn check_targets(list: &[DatabaseSelection]) -> Result<(), SelectionError> {
    let quoted = |d: &str, t: &str| format!("`{d}`.`{t}`");
    let mut by_database: BTreeMap<String, Vec<&DatabaseSelection>> = BTreeMap::new();
    for d in list {
        let target = d.rename.clone().unwrap_or_else(|| d.database.clone());
        by_database.entry(target).or_default().push(d);
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        let listed = d.tables.iter().flatten().map(String::as_str);
        for table in listed.chain(d.table_renames.keys().map(String::as_str)) {
            let to = d.table_renames.get(table).map_or(table, String::as_str);
            match seen.get(to) {
                Some(other) if *other != table => {
                    return Err(SelectionError::RenameCollision(
                        format!("tables {} and {}", quoted(&d.database, other), quoted(&d.database, table)),
                        format!("`{to}`"),
                    ));
                }
                _ => {
                    seen.insert(to, table);
                }
            }
        }
    }
    for (target, sources) in by_database {
        let [first, rest @ ..] = sources.as_slice() else { continue };
        for other in rest {
            let collide = |a: &DatabaseSelection, b: &DatabaseSelection| -> Option<String> {
                let (Some(ta), Some(tb)) = (&a.tables, &b.tables) else { return Some(String::new()) };
                let name = |d: &DatabaseSelection, t: &str| d.table_renames.get(t).cloned().unwrap_or_else(|| t.into());
                ta.iter().map(|t| name(a, t)).find(|n| tb.iter().any(|u| name(b, u) == *n))
            };
            if let Some(table) = collide(first, other) {
                let what = format!("databases `{}` and `{}`", first.database, other.database);
                let to = if table.is_empty() { format!("`{target}`") } else { quoted(&target, &table) };
                return Err(SelectionError::RenameCollision(what, to));
            }
        }
    }
    Ok(())
}

/// A collision-free key of a database object's name parts, for checkpoint, chunk and conflict
/// keys: each part length-prefixed (`4:db.x|3:t.y`), so names containing dots, `#`, `|` or `:`
/// can never make two objects' keys equal (`a.b`+`c` and `a`+`b.c` differ).
pub fn object_key(parts: &[&str]) -> String {
    parts.iter().map(|p| format!("{}:{p}", p.len())).collect::<Vec<_>>().join("|")
}

impl ObjectSelection {
    fn entry(&self, database: &str) -> Option<&DatabaseSelection> {
        match self {
            Self::WholeInstance => None,
            Self::Databases(list) => list.iter().find(|d| d.database == database),
        }
    }

    /// The destination's name of a source database.
    pub fn target_database(&self, database: &str) -> String {
        self.entry(database).and_then(|d| d.rename.clone()).unwrap_or_else(|| database.to_string())
    }

    /// The destination's `(database, table)` of a source table.
    pub fn target(&self, database: &str, table: &str) -> (String, String) {
        let t = self.entry(database).and_then(|d| d.table_renames.get(table).cloned()).unwrap_or_else(|| table.into());
        (self.target_database(database), t)
    }

    /// Whether anything is renamed on the destination.
    pub fn renames(&self) -> bool {
        match self {
            Self::WholeInstance => false,
            Self::Databases(list) => list.iter().any(|d| d.rename.is_some() || !d.table_renames.is_empty()),
        }
    }

    /// Whether a table of a database keeps its name (its database may still be renamed).
    pub fn table_renamed(&self, database: &str, table: &str) -> bool {
        self.entry(database).is_some_and(|d| d.table_renames.contains_key(table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_level_database_info_parses_into_databases_and_tables() {
        let sel =
            ObjectSelection::parse(2, Some(r#"[{"Database":"db1","Table":["t1","t2"]},{"Database":"db2"}]"#)).unwrap();
        assert_eq!(
            sel,
            ObjectSelection::Databases(vec![
                DatabaseSelection {
                    database: "db1".into(),
                    tables: Some(vec!["t1".into(), "t2".into()]),
                    ..Default::default()
                },
                DatabaseSelection { database: "db2".into(), tables: None, ..Default::default() },
            ])
        );
    }

    #[test]
    fn renamed_databases_and_tables_map_to_their_destination_names() {
        let sel = ObjectSelection::parse(
            2,
            Some(r#"[{"Database":"a","NewDatabase":"a2","Table":["t","u"],"NewTables":{"t":"t2"}},{"Database":"b"}]"#),
        )
        .unwrap();
        assert!(sel.renames());
        assert_eq!(sel.target("a", "t"), ("a2".to_string(), "t2".to_string()));
        assert_eq!(sel.target("a", "u"), ("a2".to_string(), "u".to_string()));
        assert_eq!(sel.target("b", "x"), ("b".to_string(), "x".to_string()));
        assert!(!ObjectSelection::parse(2, Some(r#"[{"Database":"b"}]"#)).unwrap().renames());
    }

    #[test]
    fn two_objects_renamed_to_one_destination_name_are_refused() {
        let refused = |info: &str| ObjectSelection::parse(2, Some(info)).unwrap_err();
        assert_eq!(
            refused(r#"[{"Database":"a","Table":["t","u"],"NewTables":{"t":"v","u":"v"}}]"#),
            SelectionError::RenameCollision("tables `a`.`t` and `a`.`u`".into(), "`v`".into())
        );
        assert_eq!(
            refused(r#"[{"Database":"a","Table":["t","u"],"NewTables":{"t":"u"}}]"#),
            SelectionError::RenameCollision("tables `a`.`t` and `a`.`u`".into(), "`u`".into())
        );
        assert_eq!(
            refused(r#"[{"Database":"a","NewDatabase":"x"},{"Database":"b","NewDatabase":"x"}]"#),
            SelectionError::RenameCollision("databases `a` and `b`".into(), "`x`".into())
        );
        assert_eq!(
            refused(r#"[{"Database":"a","NewDatabase":"b","Table":["t"]},{"Database":"b","Table":["t"]}]"#),
            SelectionError::RenameCollision("databases `a` and `b`".into(), "`b`.`t`".into())
        );
        // Disjoint tables may share a destination database; a swap of names is no collision.
        assert!(
            ObjectSelection::parse(
                2,
                Some(r#"[{"Database":"a","NewDatabase":"x","Table":["t"]},{"Database":"b","NewDatabase":"x","Table":["u"]}]"#)
            )
            .is_ok()
        );
        assert!(
            ObjectSelection::parse(2, Some(r#"[{"Database":"a","Table":["t","u"],"NewTables":{"t":"u","u":"t"}}]"#))
                .is_ok()
        );
    }

    #[test]
    fn object_keys_of_names_with_separators_never_collide() {
        assert_eq!(object_key(&["db.x", "t.y"]), "4:db.x|3:t.y");
        assert_ne!(object_key(&["a.b", "c"]), object_key(&["a", "b.c"]));
        assert_ne!(object_key(&["a|1:b", "c"]), object_key(&["a", "b|1:c"]));
    }

    #[test]
    fn whole_instance_ignores_database_info() {
        assert_eq!(ObjectSelection::parse(1, Some("junk")).unwrap(), ObjectSelection::WholeInstance);
    }

    #[test]
    fn bad_database_info_is_rejected_with_a_reason() {
        assert_eq!(ObjectSelection::parse(2, None), Err(SelectionError::Missing));
        assert_eq!(ObjectSelection::parse(2, Some("[]")), Err(SelectionError::Empty));
        assert!(matches!(ObjectSelection::parse(2, Some("{db1}")), Err(SelectionError::Malformed(_))));
        assert_eq!(
            ObjectSelection::parse(2, Some(r#"[{"Database":"mysql"}]"#)),
            Err(SelectionError::SystemSchema("mysql".into()))
        );
        assert_eq!(
            ObjectSelection::parse(2, Some(r#"[{"Database":"a"},{"Database":"a"}]"#)),
            Err(SelectionError::Duplicate("a".into()))
        );
        assert_eq!(ObjectSelection::parse(3, None), Err(SelectionError::BadMigrateObject(3)));
    }
}
