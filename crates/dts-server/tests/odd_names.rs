//! Names and strings with backquotes, quotes, backslashes, dots and non-ASCII survive a whole
//! migration (structure, accounts, full load, replication) between servers whose global
//! `sql_mode` has `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES`: every literal and identifier dts
//! builds means the same on both ends.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb, MariaDbOptions};
use mysql_async::prelude::Queryable;

const DB: &str = "we`ird.db'\\\u{fc}";
const TABLE: &str = "t`a'b\\c.\u{fc}";
const COLUMN: &str = "c`o'l\\.\u{fc}";
const USER: &str = "o'brien\\\u{fc}";

fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A string literal under `NO_BACKSLASH_ESCAPES` (the test sessions' mode).
fn nbe(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn first_bytes(db: &MariaDb, sql: &str, params: Vec<String>) -> Vec<Option<Vec<u8>>> {
    let mut c = db.conn().await;
    c.exec(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_quotes_backslashes_dots_and_non_ascii_migrate_under_no_backslash_escapes_and_ansi_quotes() {
    let modes = |m: &str| MariaDbOptions { extra_args: vec![format!("--sql-mode={m}")], ..MariaDbOptions::default() };
    let (src, dst) = tokio::join!(
        MariaDb::start_with(modes("NO_BACKSLASH_ESCAPES,ANSI_QUOTES,STRICT_TRANS_TABLES")),
        MariaDb::start_with(modes("NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES")),
    );
    let (db, t, col) = (ident(DB), ident(TABLE), ident(COLUMN));
    let value = "a\\b'c \u{fc} \"q\"";
    src.exec(&format!(
        "CREATE DATABASE {db};
         CREATE TABLE {db}.{t} (id INT PRIMARY KEY, {col} VARCHAR(40)) COMMENT {comment};
         INSERT INTO {db}.{t} VALUES (1, {v});
         CREATE VIEW {db}.{view} AS SELECT {col} FROM {db}.{t};
         CREATE PROCEDURE {db}.{proc}() SELECT {v};
         CREATE DATABASE plain;
         CREATE USER {user}@'%' IDENTIFIED BY {pw};
         GRANT SELECT ON plain.* TO {user}@'%';",
        comment = nbe("it's a \\ back\\slash \u{fc}"),
        v = nbe(value),
        view = ident("v'\u{fc}"),
        proc = ident("p\\\u{fc}"),
        user = nbe(USER),
        pw = nbe("p\\w'd"),
    ))
    .await;
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = server.create_mysql_job("odd", 3, src.port(), dst.port(), None, &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;

    src.exec(&format!(
        "INSERT INTO {db}.{t} VALUES (2, {v}); ALTER TABLE {db}.{t} COMMENT {c}; INSERT INTO {db}.{t} VALUES (3, {v});",
        v = nbe(value),
        c = nbe("later \\ '\u{fc}'"),
    ))
    .await;
    let rows = format!("SELECT CAST({col} AS BINARY) FROM {db}.{t} ORDER BY id");
    let deadline = Instant::now() + Duration::from_secs(60);
    while first_bytes(&dst, &rows, vec![]).await.len() < 3 {
        assert!(Instant::now() < deadline, "the replicated rows never arrived: {}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let on_source = first_bytes(&src, &rows, vec![]).await;
    assert_eq!(on_source[0].as_deref(), Some(value.as_bytes()));
    assert_eq!(first_bytes(&dst, &rows, vec![]).await, on_source, "the rows' bytes are the source's");

    let comment =
        "SELECT CAST(TABLE_COMMENT AS BINARY) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";
    let names = vec![DB.to_string(), TABLE.to_string()];
    let expected = first_bytes(&src, comment, names.clone()).await;
    assert_eq!(expected[0].as_deref(), Some("later \\ '\u{fc}'".as_bytes()));
    assert_eq!(first_bytes(&dst, comment, names).await, expected, "the comment is the source's");

    let routine = "SELECT CAST(ROUTINE_DEFINITION AS BINARY) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?";
    let expected = first_bytes(&src, routine, vec![DB.to_string()]).await;
    assert_eq!(expected.len(), 1);
    assert_eq!(
        first_bytes(&dst, routine, vec![DB.to_string()]).await,
        expected,
        "the procedure's body is the source's"
    );
    let view = "SELECT CAST(TABLE_NAME AS BINARY) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?";
    assert_eq!(first_bytes(&dst, view, vec![DB.to_string()]).await, vec![Some("v'\u{fc}".as_bytes().to_vec())]);

    let account = "SELECT CAST(authentication_string AS BINARY) FROM mysql.user WHERE User = ? AND Host = '%'";
    let expected = first_bytes(&src, account, vec![USER.to_string()]).await;
    assert_eq!(expected.len(), 1);
    assert_eq!(first_bytes(&dst, account, vec![USER.to_string()]).await, expected, "the account and its password");
    let mut login = mysql_async::Conn::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(dst.port())
            .user(Some(USER))
            .pass(Some("p\\w'd"))
            .prefer_socket(false),
    )
    .await
    .expect("the migrated account logs in on the destination with its password");
    let grants: Vec<String> = login.query("SHOW GRANTS").await.unwrap();
    assert!(grants.iter().any(|g| g.contains("SELECT ON `plain`.*")), "{grants:?}");
    assert_eq!(server.job(&job)["Status"], 8);
}
