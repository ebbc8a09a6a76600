//! Precheck items against real servers.

use dts_core::{CheckOutcome, Checker, ObjectSelection};
use dts_mysql::MySqlConnector;
use dts_test_support::MariaDbOptions;
use std::sync::Mutex;

use crate::{databases, item, no_progress, pair, pair_with, plan};

const SHOP: &str = "CREATE DATABASE shop; \
    CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(50)); \
    CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_id INT, KEY (customer_id)); \
    CREATE VIEW shop.named AS SELECT id, name FROM shop.customers";

fn failed_found(report: &dts_core::CheckReport, name: &str) -> String {
    match &item(report, name).outcome {
        CheckOutcome::Failed { found, .. } => found.clone(),
        other => panic!("{name} should have failed, got {other:?} in {report:#?}"),
    }
}

#[tokio::test]
async fn precheck_passes_between_two_fresh_servers_for_structure_and_incremental_migration() {
    let (src, dst) = pair().await;
    src.exec(SHOP).await;
    let calls = Mutex::new(Vec::new());
    let progress = |done, total| calls.lock().unwrap().push((done, total));
    for migrate_type in [1, 3] {
        let p = plan(src.addr(), dst.addr(), migrate_type, databases(&[("shop", None)]));
        let report = MySqlConnector::new().check(&p, &progress).await;
        assert!(report.passed(), "{report:#?}");
        for i in &report.items {
            match &i.outcome {
                // The view is SQL SECURITY DEFINER: the report says it is created with invoker rights.
                CheckOutcome::Warning { detail } if i.name == "definers" => {
                    assert!(detail.contains("view `shop`.`named`"), "{detail}")
                }
                other => assert_eq!(other, &CheckOutcome::Passed, "{report:#?}"),
            }
        }
        let expected = if migrate_type == 3 { 15 } else { 9 };
        assert_eq!(report.items.len(), expected);
    }
    let report =
        MySqlConnector::new().check(&plan(src.addr(), dst.addr(), 3, ObjectSelection::WholeInstance), &progress).await;
    assert!(report.passed(), "{report:#?}");
    for name in [
        "binlog_enabled",
        "binlog_format",
        "binlog_row_image",
        "server_id",
        "binlog_compress",
        "binlog_row_value_options",
        "version",
    ] {
        assert_eq!(item(&report, name).outcome, CheckOutcome::Passed);
    }
    let calls = calls.lock().unwrap();
    assert_eq!(calls.last(), Some(&(15, 15)));
}

#[tokio::test]
async fn precheck_names_selected_databases_and_tables_missing_on_the_source() {
    let (src, dst) = pair().await;
    src.exec(SHOP).await;
    let sel = databases(&[("nope", None), ("shop", Some(&["customers", "ghost"]))]);
    let report = MySqlConnector::new().check(&plan(src.addr(), dst.addr(), 2, sel), &no_progress()).await;
    let found = failed_found(&report, "source_objects");
    assert!(found.contains("`nope`") && found.contains("`shop`.`ghost`"), "{found}");
    assert!(!found.contains("customers"));
    assert_eq!(item(&report, "destination_conflicts").outcome, CheckOutcome::Passed);
}

#[tokio::test]
async fn precheck_fails_when_a_selected_table_already_exists_on_the_destination() {
    let (src, dst) = pair().await;
    src.exec(SHOP).await;
    dst.exec("CREATE DATABASE shop; CREATE TABLE shop.orders (x INT)").await;
    let report = MySqlConnector::new()
        .check(&plan(src.addr(), dst.addr(), 2, databases(&[("shop", None)])), &no_progress())
        .await;
    assert_eq!(failed_found(&report, "destination_conflicts"), "`shop`.`orders`");
    match &item(&report, "destination_conflicts").outcome {
        CheckOutcome::Failed { expected, .. } => assert_eq!(expected, "no table of the selection on the destination"),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn precheck_for_incremental_migration_fails_when_the_source_binlog_is_off() {
    let (src, dst) = pair_with(MariaDbOptions { log_bin: false, ..MariaDbOptions::default() }).await;
    src.exec(SHOP).await;
    let p = plan(src.addr(), dst.addr(), 3, databases(&[("shop", None)]));
    let report = MySqlConnector::new().check(&p, &no_progress()).await;
    assert_eq!(failed_found(&report, "binlog_enabled"), "log_bin = OFF");
    assert_eq!(item(&report, "source_connectivity").outcome, CheckOutcome::Passed);
    // A structure-only migration does not look at the binlog.
    let p = plan(src.addr(), dst.addr(), 1, databases(&[("shop", None)]));
    let report = MySqlConnector::new().check(&p, &no_progress()).await;
    assert!(report.passed(), "{report:#?}");
    assert!(report.items.iter().all(|i| !i.name.starts_with("binlog")));
}

#[tokio::test]
async fn precheck_lists_the_privileges_a_usage_only_destination_user_lacks() {
    let (src, dst) = pair().await;
    src.exec(SHOP).await;
    dst.exec("CREATE USER 'weak'@'%' IDENTIFIED BY 'weakpw'; GRANT USAGE ON *.* TO 'weak'@'%'").await;
    let mut p = plan(src.addr(), dst.addr(), 2, databases(&[("shop", None)]));
    crate::destination(&mut p).user = "weak".into();
    crate::destination(&mut p).password = "weakpw".into();
    let report = MySqlConnector::new().check(&p, &no_progress()).await;
    assert_eq!(item(&report, "destination_connectivity").outcome, CheckOutcome::Passed);
    let found = failed_found(&report, "destination_privileges");
    for privilege in ["CREATE", "ALTER", "INDEX", "CREATE VIEW", "TRIGGER", "REFERENCES", "INSERT"] {
        assert!(found.contains(privilege), "{privilege} in {found}");
    }
    assert_eq!(item(&report, "source_privileges").outcome, CheckOutcome::Passed);

    // Database-level grants on the selected database are enough.
    dst.exec("GRANT ALL PRIVILEGES ON `shop`.* TO 'weak'@'%'").await;
    let report = MySqlConnector::new().check(&p, &no_progress()).await;
    assert_eq!(item(&report, "destination_privileges").outcome, CheckOutcome::Passed, "{report:#?}");
}

#[tokio::test]
async fn precheck_reports_a_wrong_destination_password_without_revealing_it() {
    let (src, dst) = pair().await;
    src.exec(SHOP).await;
    let mut p = plan(src.addr(), dst.addr(), 3, databases(&[("shop", None)]));
    crate::destination(&mut p).password = "hunter2-very-secret".into();
    let report = MySqlConnector::new().check(&p, &no_progress()).await;
    let found = failed_found(&report, "destination_connectivity");
    assert!(found.contains("access denied"), "{found}");
    assert!(!format!("{report:?}").contains("hunter2"), "{report:#?}");
    assert!(failed_found(&report, "destination_privileges").starts_with("not checked"));
    assert!(failed_found(&report, "destination_conflicts").starts_with("not checked"));
    assert_eq!(item(&report, "source_objects").outcome, CheckOutcome::Passed);
    assert_eq!(item(&report, "binlog_enabled").outcome, CheckOutcome::Passed);

    // A refused connection is reported as such.
    crate::destination(&mut p).port = dts_test_support::free_port();
    let report = MySqlConnector::new().check(&p, &no_progress()).await;
    assert!(failed_found(&report, "destination_connectivity").contains("connection refused"), "{report:#?}");
}

#[tokio::test]
async fn precheck_warns_about_selected_tables_without_a_primary_key() {
    let (src, dst) = pair().await;
    src.exec(SHOP).await;
    src.exec("CREATE TABLE shop.audit (at DATETIME, what TEXT); CREATE TABLE shop.tags (tag VARCHAR(20) NOT NULL, UNIQUE KEY (tag))")
        .await;
    let report = MySqlConnector::new()
        .check(&plan(src.addr(), dst.addr(), 2, databases(&[("shop", None)])), &no_progress())
        .await;
    assert!(report.passed(), "{report:#?}");
    match &item(&report, "primary_keys").outcome {
        CheckOutcome::Warning { detail } => {
            assert!(detail.contains("`shop`.`audit`") && detail.contains("`shop`.`tags`"), "{detail}");
            assert!(!detail.contains("customers"));
        }
        other => panic!("expected a warning, got {other:?}"),
    }
    assert!(item(&report, "primary_keys").hint.is_some());
}

#[tokio::test]
async fn an_incremental_precheck_refuses_tables_without_any_key_and_names_the_fix() {
    let (src, dst) = pair().await;
    src.exec(SHOP).await;
    src.exec(
        "CREATE TABLE shop.audit (at DATETIME, what TEXT); \
         CREATE TABLE shop.tags (tag VARCHAR(20) NOT NULL, UNIQUE KEY (tag)); \
         CREATE TABLE shop.maybe (code VARCHAR(20) NULL, UNIQUE KEY (code))",
    )
    .await;
    let report = MySqlConnector::new()
        .check(&plan(src.addr(), dst.addr(), 3, databases(&[("shop", None)])), &no_progress())
        .await;
    assert!(!report.passed(), "{report:#?}");
    let found = failed_found(&report, "primary_keys");
    assert!(found.contains("`shop`.`audit`") && found.contains("`shop`.`maybe`"), "{found}");
    assert!(!found.contains("tags") && !found.contains("customers"), "a unique NOT NULL key is a key: {found}");
    let hint = item(&report, "primary_keys").hint.clone().unwrap_or_default();
    assert!(hint.contains("add a primary key") && hint.contains("exclude"), "{hint}");

    // Without the keyless tables the same job passes (the unique NOT NULL key is enough).
    let report = MySqlConnector::new()
        .check(&plan(src.addr(), dst.addr(), 3, databases(&[("shop", Some(&["customers", "tags"]))])), &no_progress())
        .await;
    assert!(report.passed(), "{report:#?}");
}
