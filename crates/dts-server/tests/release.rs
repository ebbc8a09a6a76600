//! What a job holds on the destination does not outlive the job: secondary keys deferred by a
//! full load are added back when the job is stopped mid-load, before the checkpoints that are
//! their only record are cleared; a fresh start after that works as a first one.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

const ROWS: u64 = 150_000;

async fn keys(db: &MariaDb) -> Vec<String> {
    let mut c = db.conn().await;
    let mut names: Vec<String> = c
        .query("SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'bulk'")
        .await
        .unwrap();
    names.sort();
    names
}

async fn rows(db: &MariaDb) -> i64 {
    let mut c = db.conn().await;
    c.query_first::<i64, _>("SELECT COUNT(*) FROM bulk.items").await.unwrap_or(None).unwrap_or(0)
}

async fn wait_rows(dst: &MariaDb, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows(dst).await < at_least {
        assert!(Instant::now() < deadline, "the full load did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_secondary_keys_come_back_when_a_load_is_stopped_mid_way() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(&format!(
        "CREATE DATABASE bulk;
         CREATE TABLE bulk.items (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(60) NOT NULL, KEY k_k (k), KEY k_c (c));
         INSERT INTO bulk.items SELECT seq, seq % 1000, REPEAT(CHAR(65 + seq % 26), 60) FROM bulk.seq_1_to_{ROWS};"
    ))
    .await;
    let config = "[full_load]\nparallel = 1\nchunk_rows = 5000\nbatch_bytes = 32768\n".to_string();
    let server = DtsServer::start(
        env!("CARGO_BIN_EXE_dts").as_ref(),
        DtsServerOptions { config_toml: Some(config), ..Default::default() },
    )
    .await;
    let job = server.create_mysql_job("bulk", 2, src.port(), dst.port(), Some("bulk"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    wait_rows(&dst, ROWS as i64 / 10).await;
    assert_eq!(keys(&dst).await, ["PRIMARY"], "the load deferred the secondary keys");
    server.cli_ok(&["job", "stop", &job]);
    server.wait_status(&job, 10).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while keys(&dst).await != ["PRIMARY", "k_c", "k_k"] {
        assert!(
            Instant::now() < deadline,
            "the stopped job's deferred keys were not restored: {:?}\n{}",
            keys(&dst).await,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rows(&dst).await < ROWS as i64, "stopped mid-load");

    // Started afresh (the operator cleared the destination first, as the precheck asks): the
    // new run defers the keys again and ends with them, and every row.
    dst.exec("DROP DATABASE bulk").await;
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 9).await;
    assert_eq!(keys(&dst).await, ["PRIMARY", "k_c", "k_k"]);
    assert_eq!(rows(&dst).await, ROWS as i64);
}
