//! The DDL a replicating job replays is decided by the objects a statement names: not by the
//! source session's default database, never for tables the job does not select, never for
//! accounts however the statement is written; a statement naming both selected and unselected
//! tables stops the job with a clear error instead of changing what it does not own.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

async fn count(db: &MariaDb, sql: &str) -> i64 {
    let mut c = db.conn().await;
    c.query_first::<i64, _>(sql).await.unwrap().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_ddl_naming_selected_tables_is_replayed_and_mixed_ddl_stops_the_job() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1);
         CREATE DATABASE part; CREATE TABLE part.t1 (id INT PRIMARY KEY); CREATE TABLE part.t3 (id INT PRIMARY KEY);
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY);",
    )
    .await;
    dst.exec("CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY); INSERT INTO other.t VALUES (7)").await;
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = server.create_mysql_job("filter", 3, src.port(), dst.port(), Some("app,part.t1"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;

    let mut c = src.conn().await;
    for sql in [
        "USE app",
        // Names a database the job does not select, from a selected default database.
        "DROP TABLE other.t",
        "USE part",
        // Tables of a partially selected database that the job does not select.
        "ALTER TABLE t3 ADD COLUMN x INT",
        "CREATE TABLE t4 (id INT PRIMARY KEY)",
        "CREATE INDEX i3 ON t3 (id)",
        // Accounts, however written.
        "CREATE OR REPLACE USER 'evil1'@'%'",
        "CREATE /* hidden */ USER\n  'evil2'@'%'",
        "/*!100000 CREATE USER 'evil3'@'%' */",
        "CREATE USER 'evil4'@'%'",
        "DROP  USER 'evil4'@'%'",
        // What the job does own is replayed.
        "ALTER TABLE t1 ADD COLUMN y INT",
        "USE other",
        "ALTER TABLE app.t ADD COLUMN c INT",
        "INSERT INTO app.t (id, c) VALUES (2, 2)",
    ] {
        c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // The destination has an account of its own that a replayed DROP USER would remove.
    dst.exec("CREATE USER 'evil4'@'%'").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&dst, "SELECT COUNT(*) FROM app.t").await < 2 {
        assert!(Instant::now() < deadline, "the change after the DDL never arrived: {}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&dst, "SELECT COUNT(*) FROM other.t").await, 1, "other.t survives with its row");
    assert_eq!(count(&dst, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'part'").await, 1);
    assert_eq!(
        count(
            &dst,
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'part' AND COLUMN_NAME = 'y'"
        )
        .await,
        1,
        "DDL of a selected table of a partially selected database is replayed"
    );
    assert_eq!(
        count(&dst, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND COLUMN_NAME = 'c'")
            .await,
        1,
        "DDL naming a selected table from another default database is replayed"
    );
    assert_eq!(count(&dst, "SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'evil%'").await, 1, "only evil4, ours");
    assert_eq!(server.job(&job)["Status"], 8, "the job goes on");

    // One statement renaming a selected table into a database the job does not select.
    c.query_drop("USE app").await.unwrap();
    c.query_drop("RENAME TABLE t TO other.moved").await.unwrap();
    let failed = server.wait_job(&job, "the refused DDL", |j| j["Status"] == 10 || j["Status"] == 5).await;
    let errors = failed["ErrorInfo"].to_string();
    assert!(errors.contains("names tables the job replicates"), "{errors}");
    assert!(errors.contains("`other`.`moved`"), "{errors}");
    assert_eq!(count(&dst, "SELECT COUNT(*) FROM app.t").await, 2, "the selected table stays where it was");
}
