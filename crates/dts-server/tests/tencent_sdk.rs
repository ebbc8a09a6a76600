//! End-to-end tests of the Tencent Cloud API 2018-03-30 dialect as the official Tencent Cloud
//! Python SDK drives it: a real `dts serve`, throwaway MariaDB source and destination, and the
//! scripts in `tests/py/` run with the SDK venv's python.

mod sdk_script;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;
use sdk_script::{api_env, job_id_printed, python, run_script, with};

const DB: &str = "shop";
const SRC_USER: &str = "dts_src";
const SRC_PASSWORD: &str = "src-Pw-8271";
const DST_USER: &str = "dts_dst";
const DST_PASSWORD: &str = "dst-Pw-5530";

/// The test schema: indexes, a foreign key, a view, a procedure, a function and a trigger.
const SCHEMA: &[&str] = &[
    "CREATE DATABASE shop DEFAULT CHARACTER SET utf8mb4",
    "CREATE TABLE shop.customers (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        email VARCHAR(191) NOT NULL,
        name VARCHAR(100) NULL,
        created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE KEY uk_email (email),
        KEY idx_name (name)
    ) ENGINE=InnoDB",
    "CREATE TABLE shop.orders (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        customer_id INT NOT NULL,
        total DECIMAL(10,2) NOT NULL DEFAULT 0.00,
        status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new',
        note TEXT,
        KEY idx_customer_status (customer_id, status),
        CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE
    ) ENGINE=InnoDB COMMENT='orders of customers'",
    "CREATE TABLE shop.order_audit (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        order_id BIGINT NOT NULL,
        changed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        KEY idx_order (order_id)
    ) ENGINE=InnoDB",
    "CREATE VIEW shop.paid_orders AS
        SELECT o.id, c.email, o.total FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id
        WHERE o.status = 'paid'",
    "CREATE PROCEDURE shop.count_orders(IN cid INT, OUT n INT)
     BEGIN
        SELECT COUNT(*) INTO n FROM shop.orders WHERE customer_id = cid;
     END",
    "CREATE FUNCTION shop.order_total(oid BIGINT) RETURNS DECIMAL(10,2) READS SQL DATA
        RETURN (SELECT total FROM shop.orders WHERE id = oid)",
    "CREATE TRIGGER shop.orders_audit AFTER UPDATE ON shop.orders FOR EACH ROW
        INSERT INTO shop.order_audit (order_id) VALUES (NEW.id)",
    "INSERT INTO shop.customers (email, name) VALUES ('a@example.com', 'Ann'), ('b@example.com', 'Bob')",
    "INSERT INTO shop.orders (customer_id, total, status) VALUES (1, 10.50, 'paid'), (2, 3.00, 'new')",
];

/// A source with the test schema, an empty destination, and an account on each with a password.
struct Databases {
    src: MariaDb,
    dst: MariaDb,
}

async fn user_with_password(db: &MariaDb, user: &str, password: &str) {
    db.exec(&format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
         GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1' WITH GRANT OPTION"
    ))
    .await;
}

async fn databases() -> Databases {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    user_with_password(&src, SRC_USER, SRC_PASSWORD).await;
    user_with_password(&dst, DST_USER, DST_PASSWORD).await;
    for statement in SCHEMA {
        src.exec(statement).await;
    }
    Databases { src, dst }
}

fn script_env(server: &DtsServer, dbs: &Databases) -> Vec<(String, String)> {
    api_env(
        server,
        &[
            ("SRC_PORT", &dbs.src.port().to_string()),
            ("SRC_USER", SRC_USER),
            ("SRC_PASSWORD", SRC_PASSWORD),
            ("DST_PORT", &dbs.dst.port().to_string()),
            ("DST_USER", DST_USER),
            ("DST_PASSWORD", DST_PASSWORD),
            ("DB_NAME", DB),
        ],
    )
}

/// Names of the objects of one kind in `DB`, sorted.
async fn names(conn: &mut mysql_async::Conn, sql: &str) -> Vec<String> {
    conn.exec::<String, _, _>(sql, (DB,)).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `SHOW CREATE <kind> DB.name`, the column holding the definition.
async fn show_create(conn: &mut mysql_async::Conn, kind: &str, name: &str, column: &str) -> String {
    let sql = format!("SHOW CREATE {kind} `{DB}`.`{name}`");
    let row: mysql_async::Row = conn
        .query_first(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"));
    row.get_opt::<Option<String>, _>(column)
        .unwrap_or_else(|| panic!("{sql}: no column {column}"))
        .unwrap_or_else(|e| panic!("{sql}: column {column}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: column {column} is NULL (missing privileges?)"))
}

/// Every table, view, routine and trigger of `DB` with its `SHOW CREATE` text.
async fn structure(db: &MariaDb) -> BTreeMap<String, String> {
    let mut conn = db.conn().await;
    let kinds = [
        (
            "TABLE",
            "Create Table",
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
        ),
        ("VIEW", "Create View", "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY 1"),
        (
            "PROCEDURE",
            "Create Procedure",
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'PROCEDURE' ORDER BY 1",
        ),
        (
            "FUNCTION",
            "Create Function",
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION' ORDER BY 1",
        ),
        (
            "TRIGGER",
            "SQL Original Statement",
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1",
        ),
    ];
    let mut out = BTreeMap::new();
    for (kind, column, list) in kinds {
        for name in names(&mut conn, list).await {
            let text = show_create(&mut conn, kind, &name, column).await;
            out.insert(format!("{kind} {name}"), text);
        }
    }
    let _ = conn.disconnect().await;
    out
}

async fn row_count(db: &MariaDb, table: &str) -> u64 {
    let mut conn = db.conn().await;
    let n: u64 = conn
        .query_first(format!("SELECT COUNT(*) FROM `{DB}`.`{table}`"))
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
        .expect("a count");
    let _ = conn.disconnect().await;
    n
}

/// The destination has every object of the source with the same definition, and no rows.
async fn assert_structure_migrated(dbs: &Databases) {
    let (src, dst) = tokio::join!(structure(&dbs.src), structure(&dbs.dst));
    assert_eq!(src.len(), 7, "the source schema should have 3 tables, a view, 2 routines and a trigger: {src:#?}");
    assert_eq!(
        src.keys().collect::<Vec<_>>(),
        dst.keys().collect::<Vec<_>>(),
        "the destination should have exactly the source's objects"
    );
    // Tables are re-created verbatim; views, routines and triggers lose their source DEFINER and
    // belong to the account dts writes with, as in Tencent Cloud DTS, and views and routines run
    // with their invoker's rights (never dts's).
    let without_security = |sql: &str| {
        sql.replace("SQL SECURITY DEFINER", " ")
            .replace("SQL SECURITY INVOKER", " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let source_definer = "DEFINER=`root`@`127.0.0.1`";
    let destination_definer = format!("DEFINER=`{DST_USER}`@`127.0.0.1`");
    for (object, definition) in &src {
        let expected = if object.starts_with("TABLE ") {
            definition.clone()
        } else {
            assert!(definition.contains(source_definer), "{object} on the source: {definition}");
            definition.replace(source_definer, &destination_definer)
        };
        let found = dst.get(object).unwrap_or_else(|| panic!("{object} is missing on the destination"));
        assert_eq!(without_security(&expected), without_security(found), "{object} on the destination differs");
        let invoker =
            object.starts_with("VIEW ") || object.starts_with("PROCEDURE ") || object.starts_with("FUNCTION ");
        assert_eq!(found.contains("SQL SECURITY INVOKER"), invoker, "{object}: {found}");
    }
    for table in ["customers", "orders", "order_audit"] {
        assert_eq!(row_count(&dbs.dst, table).await, 0, "a structure migration copies no rows ({table})");
    }
    assert_eq!(row_count(&dbs.src, "orders").await, 2, "the source keeps its rows");
}

async fn lifecycle(sign_method: &str) {
    let (dbs, python) = tokio::join!(databases(), python());
    let server = DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await;
    let env = with(script_env(&server, &dbs), &[("SIGN_METHOD", sign_method), ("MODE", "full")]);
    let stdout = run_script(&python, "lifecycle.py", &env, &server).await;
    assert!(job_id_printed(&stdout).starts_with("dts-"), "a 2018-03-30 JobId looks like dts-...:\n{stdout}");
    assert_structure_migrated(&dbs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_drives_a_structure_migration_from_create_to_success() {
    lifecycle("TC3-HMAC-SHA256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_with_v1_hmacsha256_over_get_drives_the_same_lifecycle() {
    lifecycle("HmacSHA256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_documented_error_codes() {
    let (dbs, python) = tokio::join!(databases(), python());
    let server = DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await;
    let (other_id, other_key) = server.create_key("other");
    assert_ne!(other_id, server.secret_id(), "dts key create should make a new SecretId");
    let env = with(script_env(&server, &dbs), &[("OTHER_SECRET_ID", &other_id), ("OTHER_SECRET_KEY", &other_key)]);
    run_script(&python, "negative.py", &env, &server).await;
    let dst_databases: Vec<String> = dbs.dst.conn().await.query("SHOW DATABASES").await.expect("SHOW DATABASES");
    assert!(
        !dst_databases.iter().any(|d| d == DB),
        "no job was started, so the destination has no {DB}: {dst_databases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_kill_9_of_the_server() {
    let (dbs, python) = tokio::join!(databases(), python());
    let mut server = DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await;
    let env = script_env(&server, &dbs);
    let stdout =
        run_script(&python, "lifecycle.py", &with(env.clone(), &[("MODE", "create-and-check")]), &server).await;
    let job_id = job_id_printed(&stdout);

    server.kill();
    assert!(
        std::net::TcpStream::connect(server.endpoint()).is_err(),
        "nothing should listen on {} after kill -9",
        server.endpoint()
    );
    server.restart().await;

    run_script(&python, "lifecycle.py", &with(env, &[("MODE", "resume"), ("JOB_ID", &job_id)]), &server).await;
    assert_structure_migrated(&dbs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_drives_an_incremental_migration_to_success_with_equal_data() {
    let (dbs, python) = tokio::join!(databases(), python());
    let server = DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await;
    let marker = server.data_dir().join("writes-done");
    let env = with(
        script_env(&server, &dbs),
        &[("MODE", "incremental"), ("WAIT_FILE", marker.to_str().expect("utf-8 path"))],
    );
    let writes = async {
        for i in 0..12 {
            dbs.src
                .exec(&format!(
                    "INSERT INTO shop.customers (email, name) VALUES ('c{i}@example.com', 'C{i}');
                     INSERT INTO shop.orders (customer_id, total, note) VALUES (1, {i}.25, 'n{i}');
                     UPDATE shop.orders SET total = total + 1, status = 'paid' WHERE id = 2;
                     DELETE FROM shop.orders WHERE id = 1"
                ))
                .await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        std::fs::write(&marker, b"done").expect("write the marker");
    };
    let (stdout, ()) = tokio::join!(run_script(&python, "lifecycle.py", &env, &server), writes);
    assert!(job_id_printed(&stdout).starts_with("dts-"));
    for table in ["customers", "orders", "order_audit"] {
        let sql = format!("CHECKSUM TABLE {DB}.{table}");
        let a: Option<(String, Option<i64>)> = dbs.src.conn().await.query_first(&sql).await.unwrap();
        let b: Option<(String, Option<i64>)> = dbs.dst.conn().await.query_first(&sql).await.unwrap();
        assert_eq!(a.map(|r| r.1), b.map(|r| r.1), "{table} differs after Success");
    }
    assert_eq!(row_count(&dbs.src, "customers").await, 14);
    assert_eq!(row_count(&dbs.dst, "customers").await, 14);
}
