//! A data dir written by the previous release (schema 3: checkpoints keyed `full_load/...` and
//! `incremental/...`, no release queue) is opened by this one, and its jobs resume: one in
//! ReadyComplete keeps replicating, one killed in the middle of its full load finishes it.
//!
//! The old data dir is built for real: this release runs the two jobs against real servers,
//! is killed with SIGKILL, and its store is rewritten to the previous release's layout and
//! schema version (the inverse of the migration) before the restart.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

const ROWS: u64 = 120_000;

async fn fingerprint(db: &MariaDb, table: &str) -> (i64, String) {
    let mut c = db.conn().await;
    let count: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {table}")).await.unwrap();
    let sum: Option<(String, Option<i64>)> = c.query_first(format!("CHECKSUM TABLE {table}")).await.unwrap();
    (count.unwrap(), format!("{:?}", sum.unwrap().1))
}

/// The previous release's layout: keys without their scope, the engine's keys under their old
/// names, no `deleted` column, no release queue, schema version 3.
fn downgrade(data_dir: &std::path::Path) {
    let conn = rusqlite::Connection::open(data_dir.join("dts.db")).expect("open the store");
    conn.execute_batch(
        "DELETE FROM job_checkpoints WHERE key IN ('engine/load_started', 'engine/stream_start');
         UPDATE job_checkpoints SET key = 'incremental/started' WHERE key = 'engine/replicating';
         UPDATE job_checkpoints SET key = 'incremental/consistency_checked' WHERE key = 'engine/consistency_checked';
         UPDATE job_checkpoints SET key = 'incremental/complete_mode' WHERE key = 'engine/complete_mode';
         UPDATE job_checkpoints SET key = substr(key, 7) WHERE substr(key, 1, 6) = 'mysql/';
         UPDATE job_checkpoints SET key = replace(replace(key, '4:bulk|5:items', 'bulk.items'), '4:live|1:t', 'live.t'),
           value = replace(replace(value, '4:bulk|5:items', 'bulk.items'), '4:live|1:t', 'live.t');
         DROP TABLE job_releases;
         ALTER TABLE jobs DROP COLUMN deleted;
         PRAGMA user_version = 3;",
    )
    .expect("rewrite the store as the previous release wrote it");
    let old_keys: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM job_checkpoints WHERE key LIKE 'full_load/%' OR key = 'incremental/position'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(old_keys > 0, "the old layout has the jobs' checkpoints");
    // The previous release named chunks `db.table#n` and deferred keys `deferred/db.table`.
    let old_names: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM job_checkpoints WHERE key = 'full_load/deferred/bulk.items' \
             OR key LIKE 'full_load/done/bulk.items#%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(old_names > 1, "the old names are in the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_store_written_by_the_previous_release_resume_after_the_upgrade() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(&format!(
        "CREATE DATABASE live;
         CREATE TABLE live.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO live.t VALUES (1, 'a'), (2, 'b');
         CREATE DATABASE bulk;
         CREATE TABLE bulk.items (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(60) NOT NULL, KEY k_k (k));
         INSERT INTO bulk.items SELECT seq, seq % 1000, REPEAT(CHAR(65 + seq % 26), 60) FROM bulk.seq_1_to_{ROWS};"
    ))
    .await;
    let config = "[full_load]\nparallel = 2\nchunk_rows = 5000\nbatch_bytes = 32768\n".to_string();
    let mut server = DtsServer::start(
        env!("CARGO_BIN_EXE_dts").as_ref(),
        DtsServerOptions { config_toml: Some(config), ..Default::default() },
    )
    .await;
    let live = server.create_mysql_job("live", 3, src.port(), dst.port(), Some("live"), &[]);
    server.cli_ok(&["job", "check", &live]);
    server.cli_ok(&["job", "start", &live]);
    server.wait_status(&live, 8).await;
    src.exec("INSERT INTO live.t VALUES (3, 'before the upgrade')").await;

    let bulk = server.create_mysql_job("bulk", 2, src.port(), dst.port(), Some("bulk"), &[]);
    server.cli_ok(&["job", "check", &bulk]);
    server.cli_ok(&["job", "start", &bulk]);
    let mut d = dst.conn().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: Option<i64> = d.query_first("SELECT COUNT(*) FROM bulk.items").await.unwrap_or(None);
        if n.unwrap_or(0) >= ROWS as i64 / 10 {
            break;
        }
        assert!(Instant::now() < deadline, "the full load did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let copied = fingerprint(&dst, "bulk.items").await.0;
    assert!(copied > 0 && copied < ROWS as i64, "killed mid-load: {copied} rows copied");

    downgrade(server.data_dir());
    src.exec("INSERT INTO live.t VALUES (4, 'while dts was down'); UPDATE live.t SET v = 'changed' WHERE id = 1;")
        .await;
    server.restart().await;

    server.wait_status(&bulk, 9).await;
    assert_eq!(fingerprint(&src, "bulk.items").await, fingerprint(&dst, "bulk.items").await);
    let mut keys: Vec<String> = d
        .query("SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'bulk'")
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys, ["PRIMARY", "k_k"], "the key deferred under its old name came back");
    src.exec("INSERT INTO live.t VALUES (5, 'after the upgrade')").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while fingerprint(&src, "live.t").await != fingerprint(&dst, "live.t").await {
        assert!(Instant::now() < deadline, "the ReadyComplete job did not resume:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.job(&live)["Status"], 8);
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("full load starts") && !l.contains("resumed=0")),
        "the upgraded load resumed from the old chunk checkpoints:\n{log}"
    );
}
