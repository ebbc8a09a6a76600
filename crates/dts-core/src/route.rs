//! Which connector family runs a job: the one table of database engine names both API dialects
//! accept, and the one function that maps a job's (source engine, target) to a family and a
//! target kind. Adding a family is one edit here (its engine names get `Some(family)`), and
//! one line where the engine picks connectors.

use std::fmt;

/// Database families a connector exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatabaseFamily {
    /// mysql, mariadb, percona (and cynosdbmysql / PolarDB as a destination).
    MySql,
    /// redis (standalone and cluster).
    Redis,
    /// postgresql.
    Postgres,
}

impl DatabaseFamily {
    /// The family's name in checkpoint scopes, logs and positions (`mysql`, `redis`, `postgres`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MySql => "mysql",
            Self::Redis => "redis",
            Self::Postgres => "postgres",
        }
    }

    /// The port an endpoint without one is reached on.
    pub fn default_port(self) -> u16 {
        match self {
            Self::MySql => 3306,
            Self::Redis => 6379,
            Self::Postgres => 5432,
        }
    }

    /// The user an endpoint without one connects as (Redis: none, the `default` user).
    pub fn default_user(self) -> &'static str {
        match self {
            Self::MySql => "root",
            Self::Redis => "",
            Self::Postgres => "postgres",
        }
    }

    /// What the family's connector can do, as declared here (the API's preview of a job's
    /// steps); each connector's `capabilities()` must equal it (tested in the family's crate).
    pub fn capabilities(self) -> crate::connector::Capabilities {
        use crate::connector::{Capabilities, SnapshotMode};
        match self {
            Self::MySql => Capabilities {
                structure: true,
                snapshot: SnapshotMode::Chunked,
                two_way: true,
                ddl_in_stream: true,
                consistency_check: true,
            },
            Self::Redis => Capabilities {
                structure: false,
                snapshot: SnapshotMode::InStream,
                two_way: false,
                ddl_in_stream: false,
                consistency_check: true,
            },
            Self::Postgres => Capabilities {
                structure: true,
                snapshot: SnapshotMode::Chunked,
                two_way: false,
                ddl_in_stream: false,
                consistency_check: true,
            },
        }
    }

    /// The family of an engine name of either dialect (`SrcDatabaseType` `mariadb`, Alibaba
    /// `MariaDB`), if dts runs that family today.
    pub fn of(engine: &str) -> Option<Self> {
        engine_entry(engine).and_then(|e| e.family)
    }
}

impl fmt::Display for DatabaseFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One database engine either cloud names.
#[derive(Debug, Clone, Copy)]
pub struct EngineName {
    /// Tencent `SrcDatabaseType`/`DstDatabaseType` value (lower case), if Tencent names it.
    pub tencent: Option<&'static str>,
    /// Alibaba `*EndpointEngineName` value, if Alibaba names it.
    pub alibaba: Option<&'static str>,
    /// The family that runs it here; `None`: a known engine dts does not move yet.
    pub family: Option<DatabaseFamily>,
}

const fn name(
    tencent: Option<&'static str>,
    alibaba: Option<&'static str>,
    family: Option<DatabaseFamily>,
) -> EngineName {
    EngineName { tencent, alibaba, family }
}

use DatabaseFamily::{MySql, Redis};

/// Every engine name of both dialects. The one place that says which engines dts runs.
pub const ENGINES: &[EngineName] = &[
    name(Some("mysql"), Some("MySQL"), Some(MySql)),
    name(Some("mariadb"), Some("MariaDB"), Some(MySql)),
    name(Some("percona"), None, Some(MySql)),
    name(Some("cynosdbmysql"), Some("PolarDB"), Some(MySql)),
    name(Some("redis"), Some("Redis"), Some(Redis)),
    name(Some("postgresql"), Some("PostgreSQL"), None),
    name(Some("mongodb"), Some("MongoDB"), None),
    name(Some("sqlserver"), Some("MSSQL"), None),
];

/// The table entry of an engine name of either dialect (case-insensitive).
pub fn engine_entry(engine: &str) -> Option<&'static EngineName> {
    ENGINES.iter().find(|e| {
        e.tencent.is_some_and(|t| t.eq_ignore_ascii_case(engine))
            || e.alibaba.is_some_and(|a| a.eq_ignore_ascii_case(engine))
    })
}

/// The engine names of the Tencent dialect, in table order.
pub fn tencent_engines() -> impl Iterator<Item = &'static str> {
    ENGINES.iter().filter_map(|e| e.tencent)
}

/// The engine names of the Alibaba dialect that dts runs, in table order.
pub fn supported_alibaba_engines() -> impl Iterator<Item = &'static str> {
    ENGINES.iter().filter(|e| e.family.is_some()).filter_map(|e| e.alibaba)
}

/// The engine names of the Tencent dialect that dts runs, in table order.
pub fn supported_tencent_engines() -> impl Iterator<Item = &'static str> {
    ENGINES.iter().filter(|e| e.family.is_some()).filter_map(|e| e.tencent)
}

/// Where a job's data goes, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredTarget<'a> {
    /// A database of this engine name.
    Database(&'a str),
    /// The change bus (change tracking).
    ChangeBus,
}

/// Where a job's data goes, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Database(DatabaseFamily),
    ChangeBus,
}

/// A job's route: the family that reads the source and what it writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub family: DatabaseFamily,
    pub target: TargetKind,
}

/// Why a route does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Neither dialect has this engine name.
    #[error("`{0}` is not a database engine name")]
    UnknownEngine(String),
    /// A known engine dts does not move yet.
    #[error("`{0}` is not supported by this dts version")]
    Unsupported(String),
    /// Both ends are supported, but not together (e.g. MySQL to Redis).
    #[error("moving data from `{0}` to `{1}` is not supported")]
    Mismatch(String, String),
}

impl RouteError {
    /// The engine names dts runs, for error messages (`mysql, mariadb, percona`).
    pub fn supported_tencent() -> String {
        supported_tencent_engines().collect::<Vec<_>>().join(", ")
    }

    pub fn supported_alibaba() -> String {
        supported_alibaba_engines().collect::<Vec<_>>().join(", ")
    }
}

fn family_of(engine: &str) -> Result<DatabaseFamily, RouteError> {
    let entry = engine_entry(engine).ok_or_else(|| RouteError::UnknownEngine(engine.to_string()))?;
    entry.family.ok_or_else(|| RouteError::Unsupported(engine.to_string()))
}

/// The one routing function: the family that runs a job from `source` to `target`. Both API
/// dialects validate their engine fields through it; the engine picks the connector by it.
pub fn route(source: &str, target: DeclaredTarget<'_>) -> Result<Route, RouteError> {
    let family = family_of(source)?;
    let target = match target {
        DeclaredTarget::ChangeBus if family != MySql => {
            return Err(RouteError::Mismatch(source.to_string(), "the change bus".to_string()));
        }
        DeclaredTarget::ChangeBus => TargetKind::ChangeBus,
        DeclaredTarget::Database(dst) => {
            let to = family_of(dst)?;
            if to != family {
                return Err(RouteError::Mismatch(source.to_string(), dst.to_string()));
            }
            TargetKind::Database(to)
        }
    };
    Ok(Route { family, target })
}

/// Checks one engine name on its own (a field validated before its pair is known).
pub fn check_engine(engine: &str) -> Result<DatabaseFamily, RouteError> {
    family_of(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_family_engines_route_to_each_other_in_either_dialects_spelling() {
        for (src, dst) in
            [("mysql", "mariadb"), ("MariaDB", "MySQL"), ("percona", "cynosdbmysql"), ("mysql", "PolarDB")]
        {
            assert_eq!(
                route(src, DeclaredTarget::Database(dst)),
                Ok(Route { family: DatabaseFamily::MySql, target: TargetKind::Database(DatabaseFamily::MySql) }),
                "{src} -> {dst}"
            );
        }
    }

    #[test]
    fn change_tracking_routes_a_source_family_to_the_bus() {
        assert_eq!(
            route("MySQL", DeclaredTarget::ChangeBus),
            Ok(Route { family: DatabaseFamily::MySql, target: TargetKind::ChangeBus })
        );
    }

    #[test]
    fn redis_routes_to_redis_only_and_not_to_the_bus() {
        assert_eq!(
            route("redis", DeclaredTarget::Database("Redis")),
            Ok(Route { family: DatabaseFamily::Redis, target: TargetKind::Database(DatabaseFamily::Redis) })
        );
        assert!(matches!(route("redis", DeclaredTarget::Database("mysql")), Err(RouteError::Mismatch(..))));
        assert!(matches!(route("Redis", DeclaredTarget::ChangeBus), Err(RouteError::Mismatch(..))));
    }

    #[test]
    fn unknown_unsupported_and_mismatched_engines_are_told_apart() {
        assert_eq!(route("oracle", DeclaredTarget::ChangeBus), Err(RouteError::UnknownEngine("oracle".into())));
        assert_eq!(route("mongodb", DeclaredTarget::ChangeBus), Err(RouteError::Unsupported("mongodb".into())));
        assert_eq!(
            route("mysql", DeclaredTarget::Database("sqlserver")),
            Err(RouteError::Unsupported("sqlserver".into()))
        );
    }

    #[test]
    fn every_engine_has_a_name_in_at_least_one_dialect_and_names_are_unique() {
        let (mut tencent, mut alibaba) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        for e in ENGINES {
            assert!(e.tencent.is_some() || e.alibaba.is_some());
            if let Some(n) = e.tencent {
                assert!(tencent.insert(n.to_ascii_lowercase()), "{n} twice");
            }
            if let Some(n) = e.alibaba {
                assert!(alibaba.insert(n.to_ascii_lowercase()), "{n} twice");
            }
        }
        assert_eq!(RouteError::supported_tencent(), "mysql, mariadb, percona, cynosdbmysql, redis");
    }
}
