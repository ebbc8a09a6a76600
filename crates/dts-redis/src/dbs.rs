//! Which logical databases of the source a job copies: every one (`MigrateObject` 1 or an
//! empty `DatabaseInfo`), or the numbers `DatabaseInfo` names (`[{"Database":"0"},{"Database":"3"}]`).
//! Database numbers keep their number on the destination (a cluster destination has only 0).

use dts_core::{ConnectorError, ErrorClass, MigrationPlan, ObjectSelection};

/// The most logical databases a Redis server can be configured with that dts accepts.
pub const MAX_DATABASES: u32 = 1 << 16;

/// The selected databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbSelection {
    All,
    Only(Vec<u32>),
}

impl DbSelection {
    pub fn of(plan: &MigrationPlan) -> Result<DbSelection, ConnectorError> {
        match &plan.selection {
            ObjectSelection::WholeInstance => Ok(DbSelection::All),
            ObjectSelection::Databases(list) if list.is_empty() => Ok(DbSelection::All),
            ObjectSelection::Databases(list) => {
                let mut dbs = Vec::new();
                for d in list {
                    let n: u32 = d.database.parse().ok().filter(|n| *n < MAX_DATABASES).ok_or_else(|| {
                        ConnectorError::new(
                            ErrorClass::NeedsOperator,
                            format!(
                                "`{}` is not a Redis database number",
                                d.database.chars().take(40).collect::<String>()
                            ),
                            "",
                        )
                    })?;
                    let renamed = d.rename.as_ref().is_some_and(|r| r != &d.database) || !d.table_renames.is_empty();
                    if d.tables.as_ref().is_some_and(|t| !t.is_empty()) || renamed {
                        return Err(ConnectorError::new(
                            ErrorClass::NeedsOperator,
                            "Redis databases are copied whole, under their own number: DatabaseInfo takes only Database",
                            "",
                        ));
                    }
                    dbs.push(n);
                }
                dbs.sort_unstable();
                dbs.dedup();
                Ok(DbSelection::Only(dbs))
            }
        }
    }

    pub fn contains(&self, db: u32) -> bool {
        match self {
            Self::All => true,
            Self::Only(list) => list.binary_search(&db).is_ok(),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }

    /// The selected databases among `existing` (all of them for `All`).
    pub fn among(&self, existing: impl IntoIterator<Item = u32>) -> Vec<u32> {
        existing.into_iter().filter(|d| self.contains(*d)).collect()
    }

    /// The lowest selected database (where dts keeps its applied-offset marker).
    pub fn first(&self) -> u32 {
        match self {
            Self::All => 0,
            Self::Only(list) => list.first().copied().unwrap_or(0),
        }
    }
}
