//! The applier's folded path (changes collapsed per key inside one destination transaction,
//! deletes batched, updates of changed columns only) through `dts serve` against real servers:
//! a commit group that inserts, updates and deletes one key and re-inserts another ends equal to
//! the source; a table with a secondary unique key whose values move between rows still ends
//! equal; a kill -9 of dts in the middle of a burst of such transactions re-applies to the same
//! result.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

const TABLES: [&str; 3] = ["app.t", "app.c", "app.u"];

async fn source() -> MariaDb {
    let src = MariaDb::start().await;
    src.exec(
        "CREATE DATABASE app;
         CREATE TABLE app.t (id INT PRIMARY KEY, k INT NOT NULL, w VARCHAR(40), KEY (k));
         INSERT INTO app.t SELECT seq, seq, CONCAT('row ', seq) FROM app.seq_1_to_2000;
         CREATE TABLE app.c (a INT, b INT, v INT, PRIMARY KEY (a, b));
         INSERT INTO app.c SELECT seq % 50, seq, seq FROM app.seq_1_to_500;
         CREATE TABLE app.u (id INT PRIMARY KEY, code INT NOT NULL, v INT, UNIQUE KEY (code));
         INSERT INTO app.u SELECT seq, seq, seq FROM app.seq_1_to_100;",
    )
    .await;
    src
}

async fn checksums(db: &MariaDb) -> Vec<String> {
    let mut c = db.conn().await;
    let rows: Vec<(String, Option<i64>)> = c.query(format!("CHECKSUM TABLE {}", TABLES.join(", "))).await.unwrap();
    rows.into_iter().map(|(t, s)| format!("{t}={s:?}")).collect()
}

/// Waits until every table's checksum on the destination equals the source's.
async fn wait_equal(src: &MariaDb, dst: &MariaDb, server: &DtsServer) {
    let want = checksums(src).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = checksums(dst).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "destination {got:?} never equalled source {want:?}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ready(src: &MariaDb, dst: &MariaDb) -> (DtsServer, String) {
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = server.create_mysql_job("net", 3, src.port(), dst.port(), Some("app"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;
    (server, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_folded_in_one_commit_group_end_equal_to_the_source() {
    let (src, dst) = tokio::join!(source(), MariaDb::start());
    let (server, _job) = ready(&src, &dst).await;
    src.exec(
        "START TRANSACTION;
         INSERT INTO app.t VALUES (5000, 1, 'new');
         UPDATE app.t SET k = k + 1 WHERE id = 5000;
         UPDATE app.t SET k = k + 1 WHERE id = 5000;
         UPDATE app.t SET w = 'thrice' WHERE id = 5000;
         DELETE FROM app.t WHERE id = 5000;
         DELETE FROM app.t WHERE id = 5;
         INSERT INTO app.t VALUES (5, 55, 're-inserted');
         UPDATE app.t SET id = 7000 WHERE id = 6;
         DELETE FROM app.t WHERE id = 8;
         UPDATE app.t SET id = 8 WHERE id = 9;
         UPDATE app.t SET w = 'changed' WHERE id = 10;
         UPDATE app.t SET w = 'row 10' WHERE id = 10;
         UPDATE app.t SET w = NULL, k = 0 WHERE id BETWEEN 100 AND 120;
         DELETE FROM app.t WHERE id BETWEEN 1000 AND 1600;
         DELETE FROM app.c WHERE a = 1 AND b = 1;
         INSERT INTO app.c VALUES (1, 1, -1);
         UPDATE app.c SET v = v * 2 WHERE a = 2;
         DELETE FROM app.c WHERE a = 3;
         UPDATE app.u SET code = -1 WHERE id = 1;
         UPDATE app.u SET code = 1 WHERE id = 2;
         UPDATE app.u SET code = 2 WHERE id = 1;
         DELETE FROM app.u WHERE id = 3;
         INSERT INTO app.u VALUES (300, 3, 0);
         COMMIT;",
    )
    .await;
    // Small transactions that touch the same keys again, back to back (one commit group).
    let mut c = src.conn().await;
    for i in 0..300 {
        let id = 200 + (i % 40);
        c.query_drop(format!(
            "START TRANSACTION;
             UPDATE app.t SET k = k + 1 WHERE id = {id};
             UPDATE app.t SET w = 'round {i}' WHERE id = {id} + 1;
             DELETE FROM app.t WHERE id = {id} + 2;
             INSERT INTO app.t VALUES ({id} + 2, {i}, 'again');
             COMMIT;"
        ))
        .await
        .unwrap();
    }
    drop(c);
    wait_equal(&src, &dst, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_burst_of_batched_transactions_re_applies_to_the_same_result() {
    let (src, dst) = tokio::join!(source(), MariaDb::start());
    let (mut server, job) = ready(&src, &dst).await;
    // sysbench's oltp_write_only shape: two updates, a delete and the re-insert of that key.
    let writer = {
        let opts = src.addr().opts();
        tokio::spawn(async move {
            let mut c = mysql_async::Conn::new(opts).await.unwrap();
            for i in 0u64..4000 {
                let id = 1 + (i * 7919) % 2000;
                let other = 1 + (i * 104_729) % 2000;
                let gone = 1 + (i * 1_299_709) % 2000;
                c.query_drop(format!(
                    "START TRANSACTION;
                     UPDATE app.t SET k = k + 1 WHERE id = {id};
                     UPDATE app.t SET w = 'w{i}' WHERE id = {other};
                     DELETE FROM app.t WHERE id = {gone};
                     INSERT INTO app.t VALUES ({gone}, {i}, 'again {i}');
                     UPDATE app.c SET v = v + 1 WHERE a = {i} % 50;
                     COMMIT;"
                ))
                .await
                .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().await;
    writer.await.unwrap();
    wait_equal(&src, &dst, &server).await;
    assert_eq!(server.job(&job)["Status"], 8, "the job is still replicating");
    // What the catch-up applied is shown in the job's detail.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = server.job(&job);
        if shown["Detail"]["AppliedChanges"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no applied changes shown: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
