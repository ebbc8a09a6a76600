//! Integration tests of the MySQL-family connector against throwaway MariaDB servers: the
//! precheck items, the structure migration, the full load, the data comparison and the binlog
//! position of a time, one fresh source/destination pair per test.

#[path = "cases/full_load.rs"]
mod full_load;
#[path = "cases/precheck.rs"]
mod precheck;
#[path = "cases/start_time.rs"]
mod start_time;
#[path = "cases/structure.rs"]
mod structure;
#[path = "cases/verify.rs"]
mod verify;

use dts_core::{CheckItem, CheckReport, ConnectionSpec, DatabaseSelection, MigrationPlan, ObjectSelection};
use dts_test_support::{MariaDb, MariaDbOptions, ServerAddr};
use mysql_async::prelude::Queryable;

pub fn spec(addr: &ServerAddr) -> ConnectionSpec {
    ConnectionSpec {
        host: addr.host.clone(),
        port: addr.port,
        user: addr.user.clone(),
        password: addr.password.clone(),
        ..Default::default()
    }
}

pub fn plan(
    source: &ServerAddr,
    destination: &ServerAddr,
    migrate_type: i64,
    selection: ObjectSelection,
) -> MigrationPlan {
    MigrationPlan {
        job_id: "dts-test".into(),
        kind: dts_core::JobKind::Migration,
        route: dts_core::route("mariadb", dts_core::DeclaredTarget::Database("mariadb")).expect("route"),
        stages: dts_core::Stages::of_migrate_type(migrate_type),
        selection,
        source: spec(source),
        target: dts_core::Target::Database(spec(destination)),
        override_root: false,
        loop_guard: None,
        conflict_policy: Default::default(),
        extern_params: None,
    }
}

/// The destination of a plan, to change it.
pub fn destination(p: &mut MigrationPlan) -> &mut ConnectionSpec {
    match &mut p.target {
        dts_core::Target::Database(d) => d,
        dts_core::Target::ChangeBus(_) => panic!("a plan with a destination database"),
    }
}

/// `[{db, tables}]` as a selection.
pub fn databases(list: &[(&str, Option<&[&str]>)]) -> ObjectSelection {
    ObjectSelection::Databases(
        list.iter()
            .map(|(db, tables)| DatabaseSelection {
                database: db.to_string(),
                tables: tables.map(|t| t.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            })
            .collect(),
    )
}

/// A source and a destination, both with the binlog on.
pub async fn pair() -> (MariaDb, MariaDb) {
    tokio::join!(MariaDb::start(), MariaDb::start())
}

/// A source started with the given options, and a default destination.
pub async fn pair_with(source: MariaDbOptions) -> (MariaDb, MariaDb) {
    tokio::join!(MariaDb::start_with(source), MariaDb::start())
}

pub fn item<'a>(report: &'a CheckReport, name: &str) -> &'a CheckItem {
    report.items.iter().find(|i| i.name == name).unwrap_or_else(|| panic!("no item {name} in {report:#?}"))
}

/// Column `column` of the first row of a `SHOW CREATE ...` statement.
pub async fn show_create(addr: &ServerAddr, sql: &str, column: usize) -> String {
    let mut c = addr.conn().await;
    let row: mysql_async::Row = c.query_first(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).expect(sql);
    let value: String = row.get(column).expect("column");
    let _ = c.disconnect().await;
    value
}

/// Names from a one-column query.
pub async fn names(addr: &ServerAddr, sql: &str) -> Vec<String> {
    let mut c = addr.conn().await;
    let out: Vec<String> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.disconnect().await;
    out
}

pub fn no_progress() -> impl Fn(u64, u64) + Send + Sync {
    |_, _| {}
}
