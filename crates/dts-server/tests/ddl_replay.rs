//! Replayed DDL runs as the source ran it: in the source session's `sql_mode`, character set and
//! default database, as exactly one statement. A source user with ALTER on one replicated table
//! cannot make dts run other SQL on the destination.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

async fn comment(db: &MariaDb, table: &str) -> String {
    let mut c = db.conn().await;
    let (schema, name) = table.split_once('.').unwrap();
    let found: Option<String> = c
        .exec_first(
            "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, name),
        )
        .await
        .unwrap();
    found.unwrap_or_default()
}

async fn databases(db: &MariaDb) -> Vec<String> {
    let mut c = db.conn().await;
    c.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ddl_statement_logged_under_no_backslash_escapes_is_replayed_as_one_statement_with_the_same_meaning() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(
        "CREATE DATABASE inj; CREATE TABLE inj.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO inj.t VALUES (1, 'a');",
    )
    .await;
    dst.exec("CREATE DATABASE other; CREATE TABLE other.keep (id INT PRIMARY KEY)").await;
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = server.create_mysql_job("inj", 3, src.port(), dst.port(), Some("inj"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;

    // One session of the source: NO_BACKSLASH_ESCAPES makes `'x\'` a whole string, so this is
    // one ALTER with two COMMENT clauses. Read with backslash escapes, it is three statements.
    let mut c = src.conn().await;
    c.query_drop("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'").await.unwrap();
    c.query_drop("ALTER TABLE inj.t COMMENT 'x\\', COMMENT '; DROP DATABASE other; -- '").await.unwrap();
    c.query_drop("SET SESSION sql_mode = DEFAULT").await.unwrap();
    // A latin1 session's DDL with a non-ASCII literal keeps its meaning too.
    c.query_drop("SET NAMES latin1").await.unwrap();
    c.query_drop("ALTER TABLE inj.t ADD COLUMN w VARCHAR(10) DEFAULT 'caf\u{e9}'").await.unwrap();
    c.query_drop("SET NAMES utf8mb4").await.unwrap();
    c.query_drop("INSERT INTO inj.t (id, v) VALUES (2, 'after the DDL')").await.unwrap();

    let expected = comment(&src, "inj.t").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut d = dst.conn().await;
        let rows: Option<i64> = d.query_first("SELECT COUNT(*) FROM inj.t").await.unwrap();
        if rows == Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "the change after the DDL never arrived: {}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(comment(&dst, "inj.t").await, expected, "the destination has the source's comment");
    assert!(databases(&dst).await.contains(&"other".to_string()), "a database the job does not select survives");
    let default = |db: &MariaDb| {
        let addr = db.addr().clone();
        async move {
            let mut c = mysql_async::Conn::new(addr.opts()).await.unwrap();
            let v: Option<Vec<u8>> = c.query_first("SELECT HEX(w) FROM inj.t WHERE id = 1").await.unwrap();
            v
        }
    };
    let (on_source, on_destination) = (default(&src).await, default(&dst).await);
    assert!(on_source.is_some());
    assert_eq!(on_destination, on_source, "the latin1 session's literal means the same bytes on both");
    assert_eq!(server.job(&job)["Status"], 8, "the job goes on");
}
