//! Structure migration against real servers: fidelity of every object kind, selections,
//! idempotent re-runs and refusal to touch a differing destination object.

use dts_core::{ErrorClass, ObjectSelection, StructureMigrator, StructureSummary};
use dts_mysql::{MySqlConnector, strip_definer};
use dts_test_support::ServerAddr;
use std::sync::Mutex;

use crate::{databases, names, no_progress, pair, plan, show_create};

/// A database using every object kind the migration handles.
async fn create_rich_shop(src: &ServerAddr) {
    src.exec(
        "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; USE shop; \
         CREATE TABLE customers ( \
           id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
           email VARCHAR(190) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
           name_latin1 VARCHAR(100) CHARACTER SET latin1 COLLATE latin1_swedish_ci, \
           bio TEXT, tiny TINYINT, small SMALLINT DEFAULT 3, med MEDIUMINT, big BIGINT, \
           price DECIMAL(12,4) NOT NULL DEFAULT 0.0000, ratio DOUBLE, f FLOAT, \
           born DATE, seen DATETIME(6), ts TIMESTAMP NULL DEFAULT NULL, t TIME, y YEAR, \
           flags SET('a','b','c'), state ENUM('new','old') NOT NULL DEFAULT 'new', \
           raw VARBINARY(16), blobby BLOB, doc JSON, bits BIT(5), code CHAR(36) COMMENT 'the `code`', \
           UNIQUE KEY uq_email (email), KEY idx_name (name_latin1(20), big), FULLTEXT KEY ft_bio (bio) \
         ) ENGINE=InnoDB AUTO_INCREMENT=1000 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='people'; \
         CREATE TABLE orders ( \
           id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, customer_id INT UNSIGNED NOT NULL, total DECIMAL(10,2), \
           CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE \
         ) ENGINE=InnoDB; \
         CREATE TABLE events (id INT NOT NULL, happened DATE NOT NULL, PRIMARY KEY (id, happened)) \
           PARTITION BY RANGE (YEAR(happened)) (PARTITION p2023 VALUES LESS THAN (2024), \
           PARTITION p2024 VALUES LESS THAN (2025), PARTITION pmax VALUES LESS THAN MAXVALUE); \
         CREATE TABLE `we``ird name` (id INT PRIMARY KEY); \
         CREATE VIEW b_big_orders AS SELECT id, customer_id, total FROM orders WHERE total > 100; \
         CREATE SQL SECURITY INVOKER VIEW a_top_customers AS SELECT customer_id, COUNT(*) AS n FROM b_big_orders GROUP BY customer_id; \
         CREATE TRIGGER orders_bi BEFORE INSERT ON orders FOR EACH ROW SET NEW.total = IFNULL(NEW.total, 0)",
    )
    .await;
    src.exec(
        "CREATE PROCEDURE shop.add_order(IN c INT UNSIGNED, IN amount DECIMAL(10,2)) \
         BEGIN INSERT INTO orders (customer_id, total) VALUES (c, amount); SELECT LAST_INSERT_ID(); END",
    )
    .await;
    src.exec(
        "CREATE FUNCTION shop.order_count(c INT) RETURNS INT READS SQL DATA \
         RETURN (SELECT COUNT(*) FROM shop.orders WHERE customer_id = c)",
    )
    .await;
}

const TABLES: [&str; 4] = ["customers", "orders", "events", "we`ird name"];

fn q(name: &str) -> String {
    format!("`shop`.`{}`", name.replace('`', "``"))
}

#[tokio::test]
async fn structure_migration_reproduces_every_object_kind_identically_and_a_rerun_skips_everything() {
    let (src, dst) = pair().await;
    create_rich_shop(src.addr()).await;
    let p = plan(src.addr(), dst.addr(), 1, databases(&[("shop", None)]));
    let calls = Mutex::new(Vec::new());
    let progress = |done, total| calls.lock().unwrap().push((done, total));
    let summary = MySqlConnector::new().migrate_structure(&p, &progress).await.expect("migrate");
    assert_eq!(
        summary,
        StructureSummary { databases: 1, tables: 4, views: 2, routines: 2, triggers: 1, skipped: 0, accounts: 0 }
    );
    assert_eq!(calls.lock().unwrap().last(), Some(&(10, 10)));

    let (s, d) = (src.addr(), dst.addr());
    assert_eq!(
        show_create(s, "SHOW CREATE DATABASE shop", 1).await,
        show_create(d, "SHOW CREATE DATABASE shop", 1).await
    );
    for t in TABLES {
        let sql = format!("SHOW CREATE TABLE {}", q(t));
        assert_eq!(show_create(s, &sql, 1).await, show_create(d, &sql, 1).await, "{t}");
    }
    let customers = show_create(d, "SHOW CREATE TABLE shop.customers", 1).await;
    for needle in ["AUTO_INCREMENT=1000", "FULLTEXT KEY `ft_bio`", "CHARACTER SET latin1", "COLLATE utf8mb4_bin"] {
        assert!(customers.contains(needle), "{needle} in {customers}");
    }
    assert!(show_create(d, "SHOW CREATE TABLE shop.orders", 1).await.contains("FOREIGN KEY"));
    assert!(show_create(d, "SHOW CREATE TABLE shop.events", 1).await.contains("PARTITION BY RANGE"));
    for (sql, column) in [
        ("SHOW CREATE VIEW shop.b_big_orders", 1),
        ("SHOW CREATE VIEW shop.a_top_customers", 1),
        ("SHOW CREATE PROCEDURE shop.add_order", 2),
        ("SHOW CREATE FUNCTION shop.order_count", 2),
        ("SHOW CREATE TRIGGER shop.orders_bi", 2),
    ] {
        let (a, b) = (show_create(s, sql, column).await, show_create(d, sql, column).await);
        // Views and routines are created with invoker rights (dts's login is their definer).
        assert_eq!(without_security(&strip_definer(&a)), without_security(&strip_definer(&b)), "{sql}");
        assert_eq!(b.contains("SQL SECURITY INVOKER"), !sql.contains("TRIGGER"), "{sql}: {b}");
    }
    assert!(show_create(d, "SHOW CREATE VIEW shop.a_top_customers", 1).await.contains("SQL SECURITY INVOKER"));

    // The migrated objects work.
    dst.exec("INSERT INTO shop.customers (email) VALUES ('a@b'); CALL shop.add_order(1000, 150)").await;
    assert_eq!(names(d, "SELECT CAST(shop.order_count(1000) AS CHAR)").await, vec!["1"]);

    // Re-running creates nothing and skips every object.
    let again = MySqlConnector::new().migrate_structure(&p, &no_progress()).await.expect("rerun");
    assert_eq!(again, StructureSummary { skipped: 10, ..StructureSummary::default() });
}

#[tokio::test]
async fn whole_instance_structure_migration_copies_user_databases_and_no_system_schema() {
    let (src, dst) = pair().await;
    src.exec(
        "CREATE DATABASE alpha; CREATE TABLE alpha.a (id INT PRIMARY KEY); \
         CREATE DATABASE beta CHARACTER SET latin1; CREATE TABLE beta.b (id INT PRIMARY KEY, s VARCHAR(10)); \
         CREATE VIEW beta.bv AS SELECT s FROM beta.b; \
         CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'; GRANT SELECT, INSERT ON alpha.* TO 'app'@'%'; \
         GRANT SELECT (s) ON beta.b TO 'app'@'%'; CREATE USER 'ro'@'10.%' IDENTIFIED BY 'x'; \
         GRANT SELECT ON *.* TO 'ro'@'10.%' WITH GRANT OPTION",
    )
    .await;
    let p = plan(src.addr(), dst.addr(), 1, ObjectSelection::WholeInstance);
    let summary = MySqlConnector::new().migrate_structure(&p, &no_progress()).await.expect("migrate");
    assert_eq!(
        summary,
        StructureSummary { databases: 2, tables: 2, views: 1, routines: 0, triggers: 0, skipped: 0, accounts: 2 }
    );
    for who in ["'app'@'%'", "'ro'@'10.%'"] {
        let grants = |addr| async move { names(addr, &format!("SHOW GRANTS FOR {who}")).await };
        assert_eq!(grants(src.addr()).await, grants(dst.addr()).await, "grants of {who}");
        let create = format!("SHOW CREATE USER {who}");
        assert_eq!(show_create(src.addr(), &create, 0).await, show_create(dst.addr(), &create, 0).await);
    }
    // root is not touched without IsOverrideRoot, and a re-run changes nothing.
    let again = MySqlConnector::new().migrate_structure(&p, &no_progress()).await.expect("rerun");
    assert_eq!((again.skipped, again.accounts, again.tables), (5, 2, 0));
    let schemas = names(dst.addr(), "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1").await;
    assert!(schemas.contains(&"alpha".to_string()) && schemas.contains(&"beta".to_string()), "{schemas:?}");
    assert_eq!(
        show_create(src.addr(), "SHOW CREATE DATABASE beta", 1).await,
        show_create(dst.addr(), "SHOW CREATE DATABASE beta", 1).await
    );
    assert_eq!(
        show_create(src.addr(), "SHOW CREATE TABLE beta.b", 1).await,
        show_create(dst.addr(), "SHOW CREATE TABLE beta.b", 1).await
    );
}

#[tokio::test]
async fn table_list_selection_copies_only_the_listed_tables_and_their_triggers() {
    let (src, dst) = pair().await;
    src.exec(
        "CREATE DATABASE app; USE app; \
         CREATE TABLE t1 (id INT PRIMARY KEY, n INT); CREATE TABLE t2 (id INT PRIMARY KEY); \
         CREATE TABLE t3 (id INT PRIMARY KEY, n INT); CREATE VIEW v1 AS SELECT id FROM t1; \
         CREATE TRIGGER t1_bi BEFORE INSERT ON t1 FOR EACH ROW SET NEW.n = 1; \
         CREATE TRIGGER t3_bi BEFORE INSERT ON t3 FOR EACH ROW SET NEW.n = 3; \
         CREATE PROCEDURE p() SELECT 1",
    )
    .await;
    let p = plan(src.addr(), dst.addr(), 2, databases(&[("app", Some(&["t1", "t2"]))]));
    let summary = MySqlConnector::new().migrate_structure(&p, &no_progress()).await.expect("migrate");
    assert_eq!(
        summary,
        StructureSummary { databases: 1, tables: 2, views: 0, routines: 0, triggers: 1, skipped: 0, accounts: 0 }
    );
    let d = dst.addr();
    assert_eq!(
        names(d, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='app' ORDER BY 1").await,
        ["t1", "t2"]
    );
    assert_eq!(
        names(d, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='app'").await,
        ["t1_bi"]
    );
    assert!(
        names(d, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='app'").await.is_empty()
    );
}

#[tokio::test]
async fn a_differing_table_on_the_destination_stops_the_migration_for_an_operator() {
    let (src, dst) = pair().await;
    src.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.a (id INT PRIMARY KEY); CREATE TABLE shop.orders (id INT PRIMARY KEY)",
    )
    .await;
    dst.exec("CREATE DATABASE shop; CREATE TABLE shop.orders (id BIGINT PRIMARY KEY)").await;
    let p = plan(src.addr(), dst.addr(), 1, databases(&[("shop", None)]));
    let err = MySqlConnector::new().migrate_structure(&p, &no_progress()).await.expect_err("must refuse");
    assert_eq!(err.class, ErrorClass::NeedsOperator);
    assert!(err.summary.contains("table `shop`.`orders`"), "{}", err.summary);
    // Nothing was dropped or changed on the destination.
    assert!(show_create(dst.addr(), "SHOW CREATE TABLE shop.orders", 1).await.contains("bigint"));
}

#[tokio::test]
async fn override_root_copies_the_source_root_accounts_but_never_the_login_of_dts() {
    let (src, dst) = pair().await;
    src.exec("ALTER USER 'root'@'localhost' IDENTIFIED BY 'src-root-pw'").await;
    let mut p = plan(src.addr(), dst.addr(), 2, ObjectSelection::WholeInstance);
    let create = "SHOW CREATE USER 'root'@'localhost'";
    let summary = MySqlConnector::new().migrate_structure(&p, &no_progress()).await.expect("without override");
    assert_eq!(summary.accounts, 0);
    assert_ne!(show_create(src.addr(), create, 0).await, show_create(dst.addr(), create, 0).await);
    p.override_root = true;
    let summary = MySqlConnector::new().migrate_structure(&p, &no_progress()).await.expect("with override");
    assert!(summary.accounts >= 1, "the source's root accounts but root@127.0.0.1, dts's own login: {summary:?}");
    assert_eq!(show_create(src.addr(), create, 0).await, show_create(dst.addr(), create, 0).await);
    dst.conn().await.disconnect().await.expect("dts can still log in to the destination");
}

/// A definition without `SQL SECURITY DEFINER|INVOKER`, whitespace runs as one space.
fn without_security(sql: &str) -> String {
    sql.replace("SQL SECURITY DEFINER", " ")
        .replace("SQL SECURITY INVOKER", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
