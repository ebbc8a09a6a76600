//! MigrateType 2 through `dts serve`: structure and data copied, equal to the source row by
//! row, and a `kill -9` of the server in the middle of the full load followed by a restart
//! that resumes from the chunk checkpoints.

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

async fn table_fingerprint(db: &MariaDb, table: &str) -> (i64, String) {
    let mut c = db.conn().await;
    let count: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {table}")).await.unwrap();
    let sum: Option<(String, Option<i64>)> = c.query_first(format!("CHECKSUM TABLE {table}")).await.unwrap();
    (count.unwrap(), format!("{:?}", sum.unwrap().1))
}

const ROWS: u64 = 120_000;

async fn source() -> MariaDb {
    let src = MariaDb::start().await;
    src.exec(&format!(
        "CREATE DATABASE bulk;
         CREATE TABLE bulk.items (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(60) NOT NULL, note TEXT, KEY k_k (k));
         INSERT INTO bulk.items SELECT seq, seq % 1000, REPEAT(CHAR(65 + seq % 26), 60), IF(seq % 7 = 0, NULL, CONCAT('n\\'', seq)) FROM bulk.seq_1_to_{ROWS};
         CREATE TABLE bulk.nokey (a INT, b VARCHAR(20));
         INSERT INTO bulk.nokey SELECT seq % 10, 'dup' FROM bulk.seq_1_to_500;
         CREATE TABLE bulk.audit (id INT AUTO_INCREMENT PRIMARY KEY, item BIGINT);
         INSERT INTO bulk.audit (item) VALUES (1), (2);
         CREATE TRIGGER bulk.items_ai AFTER INSERT ON bulk.items FOR EACH ROW INSERT INTO bulk.audit (item) VALUES (NEW.id);
         ANALYZE TABLE bulk.items;"
    ))
    .await;
    src
}

fn config() -> String {
    "[full_load]\nparallel = 2\nchunk_rows = 5000\nbatch_bytes = 32768\n".to_string()
}

fn create_job(server: &DtsServer, src: &MariaDb, dst: &MariaDb) -> String {
    let job = server.create_mysql_job("bulk", 2, src.port(), dst.port(), Some("bulk"), &[]);
    server.cli_ok(&["job", "check", &job]);
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_migration_copies_every_row_and_shows_its_steps() {
    let (src, dst) = tokio::join!(source(), MariaDb::start());
    let server = DtsServer::start(
        env!("CARGO_BIN_EXE_dts").as_ref(),
        DtsServerOptions { config_toml: Some(config()), ..Default::default() },
    )
    .await;
    let job = create_job(&server, &src, &dst);
    server.cli_ok(&["job", "start", &job]);
    let done = server.wait_job(&job, "Success", |j| j["Status"] == 9).await;
    let steps: Vec<&str> =
        done["Detail"]["StepInfo"].as_array().unwrap().iter().map(|s| s["StepId"].as_str().unwrap()).collect();
    assert_eq!(steps, ["Prepare", "StructureMigration", "FullDataMigration"]);
    assert!(done["Detail"]["StepInfo"].as_array().unwrap().iter().all(|s| s["Status"] == 1), "{done}");
    for t in ["bulk.items", "bulk.nokey", "bulk.audit"] {
        assert_eq!(table_fingerprint(&src, t).await, table_fingerprint(&dst, t).await, "{t}");
    }
    assert_eq!(table_fingerprint(&dst, "bulk.items").await.0, ROWS as i64);
    // The trigger is there, created after the rows (the load did not fire it), with its key.
    let mut c = dst.conn().await;
    let trig: Option<String> = c
        .query_first("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'bulk'")
        .await
        .unwrap();
    assert_eq!(trig.as_deref(), Some("items_ai"));
    let mut s = src.conn().await;
    let create = |row: Option<(String, String)>| row.unwrap().1;
    assert_eq!(
        create(s.query_first("SHOW CREATE TABLE bulk.items").await.unwrap()),
        create(c.query_first("SHOW CREATE TABLE bulk.items").await.unwrap()),
        "the deferred secondary key is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_the_full_load_resumes_from_the_chunk_checkpoints() {
    let (src, dst) = tokio::join!(source(), MariaDb::start());
    let mut server = DtsServer::start(
        env!("CARGO_BIN_EXE_dts").as_ref(),
        DtsServerOptions { config_toml: Some(config()), ..Default::default() },
    )
    .await;
    let job = create_job(&server, &src, &dst);
    server.cli_ok(&["job", "start", &job]);
    // The load takes well under a second: the kill comes as soon as the destination holds a
    // tenth of the rows (polled every 5 ms), not from the API's progress (polled every 100 ms).
    let mut d = dst.conn().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let n: Option<i64> = d.query_first("SELECT COUNT(*) FROM bulk.items").await.unwrap_or(None);
        if n.unwrap_or(0) >= ROWS as i64 / 10 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the full load did not start");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill();
    let copied_before = table_fingerprint(&dst, "bulk.items").await.0;
    assert!(copied_before > 0 && copied_before < ROWS as i64, "killed mid-load: {copied_before} rows copied");
    server.restart().await;
    server.wait_job(&job, "Success after the restart", |j| j["Status"] == 9).await;
    for t in ["bulk.items", "bulk.nokey", "bulk.audit"] {
        assert_eq!(table_fingerprint(&src, t).await, table_fingerprint(&dst, t).await, "{t}");
    }
    let log = server.log();
    let resumed = log
        .lines()
        .filter(|l| l.contains("full load starts"))
        .filter_map(|l| {
            l.split("resumed=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0);
    assert!(resumed > 0, "the restarted load skipped the chunks done before the kill:\n{log}");
}
