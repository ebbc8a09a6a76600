//! Parallel apply through `dts serve`: a MigrateType 3 job with 4 apply lanes under concurrent
//! writers that fight over the same rows and unique values, case-insensitive keys, and
//! foreign keys whose ON DELETE / ON UPDATE actions cascade (changes InnoDB does not log);
//! after CompleteMigrateJob every table is equal to the source.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

async fn checksums(db: &MariaDb, tables: &[&str]) -> Vec<(String, Option<i64>)> {
    let mut c = db.conn().await;
    c.query(format!("CHECKSUM TABLE {}", tables.join(", "))).await.unwrap()
}

const TABLES: [&str; 7] =
    ["app.acct", "app.names", "app.parent", "app.child", "app.grandchild", "app.nullchild", "app.plain"];

async fn source() -> MariaDb {
    let src = MariaDb::start().await;
    src.exec(
        "CREATE DATABASE app;
         CREATE TABLE app.acct (id INT PRIMARY KEY, code INT NOT NULL, bal BIGINT NOT NULL, UNIQUE KEY (code));
         INSERT INTO app.acct SELECT seq, seq, 1000 FROM app.seq_1_to_200;
         CREATE TABLE app.names (name VARCHAR(20) PRIMARY KEY, n INT) COLLATE utf8mb4_general_ci;
         INSERT INTO app.names SELECT CONCAT('name', seq), seq FROM app.seq_1_to_50;
         CREATE TABLE app.parent (id INT PRIMARY KEY, note VARCHAR(20));
         CREATE TABLE app.child (id INT PRIMARY KEY, pid INT,
           FOREIGN KEY (pid) REFERENCES app.parent (id) ON DELETE CASCADE ON UPDATE CASCADE);
         CREATE TABLE app.grandchild (id INT PRIMARY KEY, cid INT,
           FOREIGN KEY (cid) REFERENCES app.child (id) ON DELETE CASCADE);
         CREATE TABLE app.nullchild (id INT PRIMARY KEY, pid INT,
           FOREIGN KEY (pid) REFERENCES app.parent (id) ON DELETE SET NULL ON UPDATE SET NULL);
         INSERT INTO app.parent SELECT seq, 'p' FROM app.seq_1_to_100;
         INSERT INTO app.child SELECT seq, seq % 100 + 1 FROM app.seq_1_to_300;
         INSERT INTO app.grandchild SELECT seq, seq % 300 + 1 FROM app.seq_1_to_600;
         INSERT INTO app.nullchild SELECT seq, seq % 100 + 1 FROM app.seq_1_to_200;
         CREATE TABLE app.plain (id INT PRIMARY KEY, v INT);",
    )
    .await;
    src
}

/// Runs statements; one that fails (a deadlock between writers, a duplicate) is rolled back:
/// whatever the source ends with is what the destination must end with.
async fn attempt(c: &mut mysql_async::Conn, sql: String) {
    if c.query_drop(sql).await.is_err() {
        c.query_drop("ROLLBACK").await.unwrap();
    }
}

/// Transfers between random accounts, a hot row everybody updates, and the unique code of an
/// account moved to a new row (delete, then insert with the same code).
async fn writer(src: &MariaDb, worker: u64, until: Instant) -> u64 {
    let mut c = src.conn().await;
    let mut n = 0u64;
    let mut rng = worker * 7919 + 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    while Instant::now() < until {
        let (a, b) = (next() % 200 + 1, next() % 200 + 1);
        attempt(
            &mut c,
            format!(
                "START TRANSACTION;
             UPDATE app.acct SET bal = bal - 1 WHERE id = {a};
             UPDATE app.acct SET bal = bal + 1 WHERE id = {b};
             UPDATE app.acct SET bal = bal + {worker} WHERE id = 1;
             COMMIT;
             INSERT INTO app.plain VALUES ({id}, {worker}) ON DUPLICATE KEY UPDATE v = v + 1",
                id = next() % 500
            ),
        )
        .await;
        if n % 10 == worker % 10 {
            // The code of account `a` moves to a fresh row: the unique value changes rows.
            let fresh = 1_000_000 + worker * 100_000 + n;
            attempt(
                &mut c,
                format!(
                    "SET @code = NULL; START TRANSACTION;
                     SELECT code INTO @code FROM app.acct WHERE id = {a} FOR UPDATE;
                     DELETE FROM app.acct WHERE id = {a};
                     INSERT INTO app.acct VALUES ({fresh}, @code, 5);
                     COMMIT"
                ),
            )
            .await;
            // The same name in another case replaces it (the key compares case-insensitively).
            let k = next() % 50 + 1;
            let name = if n.is_multiple_of(2) { format!("NAME{k}") } else { format!("name{k}") };
            attempt(
                &mut c,
                format!(
                    "START TRANSACTION; DELETE FROM app.names WHERE name = '{name}'; \
                     INSERT INTO app.names VALUES ('{name}', {n}); COMMIT"
                ),
            )
            .await;
        }
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_lanes_keep_every_row_in_source_order_and_repeat_cascading_foreign_keys() {
    let (src, dst) = tokio::join!(source(), MariaDb::start());
    let options =
        DtsServerOptions { config_toml: Some("[replication]\napply_lanes = 4\n".into()), ..Default::default() };
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), options).await;
    let job = server.create_mysql_job("lanes", 3, src.port(), dst.port(), Some("app"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;

    // Writers race over the same rows while the parents' cascades run beside them.
    let until = Instant::now() + Duration::from_secs(8);
    let writers = futures::future::join_all((1..=4).map(|w| writer(&src, w, until)));
    let cascades = async {
        let mut c = src.conn().await;
        for p in 1..=30 {
            // ON DELETE CASCADE (children and their grandchildren) and SET NULL.
            c.query_drop(format!("DELETE FROM app.parent WHERE id = {p}")).await.unwrap();
            // ON UPDATE CASCADE: the children follow the parent's new key.
            c.query_drop(format!("UPDATE app.parent SET id = id + 1000, note = 'moved' WHERE id = {}", p + 50))
                .await
                .unwrap();
            // With the session's checks off the source does not cascade: neither may dts.
            c.query_drop(format!(
                "SET foreign_key_checks = 0; DELETE FROM app.parent WHERE id = {}; SET foreign_key_checks = 1",
                p + 30
            ))
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let (counts, ()) = tokio::join!(writers, cascades);
    let written: u64 = counts.iter().sum();
    assert!(written > 200, "the writers ran {written} rounds");

    // The lanes are separate destination sessions: 4 lanes and the control session.
    let mut d = dst.conn().await;
    let sessions: Vec<(i64,)> = d
        .query(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Daemon' AND ID <> CONNECTION_ID()",
        )
        .await
        .unwrap();
    let list: Vec<(i64, String, Option<String>)> =
        d.query("SELECT ID, COMMAND, STATE FROM information_schema.PROCESSLIST").await.unwrap();
    assert!(sessions[0].0 >= 5, "dts keeps {} sessions on the destination: {list:?}\n{}", sessions[0].0, server.log());

    server.cli_ok(&["job", "complete", &job]);
    let done = server.wait_status(&job, 9).await;
    assert!(done["Detail"]["StepInfo"].as_array().unwrap().iter().all(|s| s["Status"] == 1), "{done}");
    let (a, b) = (checksums(&src, &TABLES).await, checksums(&dst, &TABLES).await);
    assert_eq!(a, b, "every table equal after {written} writer rounds");
    let children: Vec<(i64, i64)> = d
        .query("SELECT (SELECT COUNT(*) FROM app.child WHERE pid <= 30), (SELECT COUNT(*) FROM app.child WHERE pid > 1000)")
        .await
        .unwrap();
    assert_eq!(children[0].0, 0, "children of deleted parents were deleted on the destination too");
    assert!(children[0].1 > 0, "children followed their parent's new key");
    let orphans: Vec<(i64,)> = d.query("SELECT COUNT(*) FROM app.child WHERE pid BETWEEN 31 AND 60").await.unwrap();
    assert!(orphans[0].0 > 0, "a delete made without checks on the source did not cascade on the destination");
}
