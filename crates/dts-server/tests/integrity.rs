//! No row lost or doubled, through `dts serve` against real servers: a resumed load whose plan
//! names a table dropped on the source fails naming it (and the job can be deleted, its keys
//! restored); tables whose dotted names would collide in checkpoint keys load, resume and get
//! their own deferred keys back; a row the destination would truncate fails its chunk instead
//! of being loaded changed; an incremental job refuses tables without any key in the precheck;
//! two renames to one destination name are refused when the job is created; a consistency
//! report keeps bounded row lists with exact counts, and DescribeMigrateJobDiff pages it.

use std::time::{Duration, Instant};

use dts_api::tencent::signature::{Tc3Input, tc3_authorization};
use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

const ROWS: u64 = 150_000;

fn load_config() -> String {
    "[full_load]\nparallel = 1\nchunk_rows = 5000\nbatch_bytes = 32768\n".to_string()
}

async fn start_server(config: Option<String>) -> DtsServer {
    DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions { config_toml: config, ..Default::default() })
        .await
}

async fn count(db: &MariaDb, table: &str) -> i64 {
    let mut c = db.conn().await;
    c.query_first::<i64, _>(format!("SELECT COUNT(*) FROM {table}")).await.unwrap_or(None).unwrap_or(0)
}

async fn fingerprint(db: &MariaDb, table: &str) -> (i64, String) {
    let mut c = db.conn().await;
    let sum: Option<(String, Option<i64>)> = c.query_first(format!("CHECKSUM TABLE {table}")).await.unwrap();
    (count(db, table).await, format!("{:?}", sum.unwrap().1))
}

async fn keys(db: &MariaDb, schema: &str, table: &str) -> Vec<String> {
    let mut c = db.conn().await;
    let mut names: Vec<String> = c
        .exec(
            "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, table),
        )
        .await
        .unwrap();
    names.sort();
    names
}

async fn wait_rows(dst: &MariaDb, table: &str, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(dst, table).await < at_least {
        assert!(Instant::now() < deadline, "the full load did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_keys(dst: &MariaDb, schema: &str, table: &str, expected: &[&str], server: &DtsServer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while keys(dst, schema, table).await != expected {
        assert!(
            Instant::now() < deadline,
            "keys of `{schema}`.`{table}`: {:?}, expected {expected:?}\n{}",
            keys(dst, schema, table).await,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Tencent action signed with TC3, as the SDKs send it; `Response` or the error's `Code`.
async fn call(server: &DtsServer, action: &str, params: &Value) -> Result<Value, String> {
    let host = server.endpoint();
    let body = serde_json::to_vec(params).unwrap();
    let now = chrono::Utc::now();
    let (timestamp, date) = (now.timestamp().to_string(), now.format("%Y-%m-%d").to_string());
    let input = Tc3Input {
        method: "POST",
        query: "",
        content_type: "application/json",
        host: &host,
        payload: &body,
        unsigned_payload: false,
        timestamp: &timestamp,
        date: &date,
        service: "dts",
    };
    let authorization = tc3_authorization(server.secret_id(), server.secret_key(), &input);
    let reply: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{host}"))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", action)
        .header("X-TC-Version", dts_api::tencent::VERSION)
        .header("X-TC-Timestamp", &timestamp)
        .header("X-TC-Region", "ap-guangzhou")
        .header("Authorization", authorization)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = reply["Response"].clone();
    match response["Error"]["Code"].as_str() {
        Some(code) => Err(format!("{code}: {}", response["Error"]["Message"])),
        None => Ok(response),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_load_whose_table_was_dropped_on_the_source_fails_naming_it_and_can_be_deleted() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(&format!(
        "CREATE DATABASE gone;
         CREATE TABLE gone.items (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(60) NOT NULL, KEY k_k (k));
         INSERT INTO gone.items SELECT seq, seq % 1000, REPEAT(CHAR(65 + seq % 26), 60) FROM gone.seq_1_to_{ROWS};
         CREATE TABLE gone.zz (id INT PRIMARY KEY, v INT);
         INSERT INTO gone.zz VALUES (1, 1), (2, 2);
         ANALYZE TABLE gone.items;"
    ))
    .await;
    let mut server = start_server(Some(load_config())).await;
    let job = server.create_mysql_job("gone", 2, src.port(), dst.port(), Some("gone"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    // Killed between the plan (items first, zz last) and the end of the load.
    wait_rows(&dst, "gone.items", ROWS as i64 / 10).await;
    server.kill();
    assert!(count(&dst, "gone.items").await < ROWS as i64, "killed mid-load");
    assert_eq!(keys(&dst, "gone", "items").await, ["PRIMARY"], "the load deferred the secondary key");
    src.exec("DROP TABLE gone.zz").await;
    server.restart().await;

    let failed = server.wait_job(&job, "Failed", |j| j["Status"] == 10).await;
    let errors = failed["ErrorInfo"].to_string();
    assert!(errors.contains("`gone`.`zz`") && errors.contains("no longer exist"), "{errors}\n{}", server.log());
    assert!(server.is_running(), "dts is still up:\n{}", server.log());
    assert!(!server.log().contains("panicked"), "{}", server.log());
    // The failed job released what it held (its deferred key), and Delete removes it.
    wait_keys(&dst, "gone", "items", &["PRIMARY", "k_k"], &server).await;
    server.cli_ok(&["job", "delete", &job]);
    assert!(!server.cli(&["job", "show", &job]).status.success(), "the deleted job is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_a_dot_b_c_and_a_b_dot_c_load_resume_and_get_their_own_keys_back() {
    const N: u64 = 60_000;
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(&format!(
        "CREATE DATABASE a; CREATE DATABASE `a.b`;
         CREATE TABLE a.`b.c` (id BIGINT PRIMARY KEY, k INT NOT NULL, w CHAR(40) NOT NULL, KEY k_two (k), KEY k_w (w));
         INSERT INTO a.`b.c` SELECT seq, seq % 100, REPEAT('w', 40) FROM a.seq_1_to_{N};
         CREATE TABLE `a.b`.c (id BIGINT PRIMARY KEY, k INT NOT NULL, v CHAR(40) NOT NULL, KEY k_one (k));
         INSERT INTO `a.b`.c SELECT seq, seq % 7, REPEAT('v', 40) FROM a.seq_1_to_{N};
         ANALYZE TABLE a.`b.c`, `a.b`.c;"
    ))
    .await;
    let mut server = start_server(Some(load_config())).await;

    // Two source objects mapped to one destination name are refused when the job is created.
    let endpoint = |db: &MariaDb| json!({"Ip": "127.0.0.1", "Port": db.port(), "User": "root", "Password": ""});
    let mut dst_info = endpoint(&dst);
    dst_info["Region"] = "ap-guangzhou".into();
    let colliding = json!({
        "JobName": "collide",
        "MigrateOption": {"RunMode": 1, "MigrateType": 2, "MigrateObject": 2},
        "SrcDatabaseType": "mariadb", "SrcAccessType": "extranet", "SrcInfo": endpoint(&src),
        "DstDatabaseType": "mariadb", "DstAccessType": "cdb", "DstInfo": dst_info,
        "DatabaseInfo": r#"[{"Database": "a", "NewDatabase": "x"}, {"Database": "a.b", "NewDatabase": "x"}]"#,
    });
    let refused = call(&server, "CreateMigrateJob", &colliding).await.expect_err("colliding renames are refused");
    assert!(refused.starts_with("InvalidParameter") && refused.contains("`x`"), "{refused}");

    // The whole instance: both tables, whose `db.table#n` chunk ids and `db.table` deferred-key
    // records were the same text.
    let job = server.create_mysql_job("dotted", 2, src.port(), dst.port(), None, &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    // `a`.`b.c` is planned first: killed once some of its chunks are recorded done.
    wait_rows(&dst, "a.`b.c`", N as i64 / 3).await;
    server.kill();
    assert!(count(&dst, "`a.b`.c").await < N as i64, "killed before the second table was loaded");
    server.restart().await;
    server.wait_status(&job, 9).await;

    for t in ["a.`b.c`", "`a.b`.c"] {
        assert_eq!(fingerprint(&src, t).await, fingerprint(&dst, t).await, "{t}\n{}", server.log());
    }
    assert_eq!(keys(&dst, "a", "b.c").await, ["PRIMARY", "k_two", "k_w"]);
    assert_eq!(keys(&dst, "a.b", "c").await, ["PRIMARY", "k_one"]);
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("full load starts") && !l.contains("resumed=0")),
        "the load resumed from its chunk checkpoints:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_destination_would_truncate_fails_its_chunk_instead_of_being_loaded_changed() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(&format!(
        "CREATE DATABASE narrow;
         CREATE TABLE narrow.items (id BIGINT PRIMARY KEY, c CHAR(60) NOT NULL);
         INSERT INTO narrow.items SELECT seq, REPEAT(CHAR(65 + seq % 26), 60) FROM narrow.seq_1_to_{ROWS};
         ANALYZE TABLE narrow.items;"
    ))
    .await;
    let mut server = start_server(Some(load_config())).await;
    let job = server.create_mysql_job("narrow", 2, src.port(), dst.port(), Some("narrow"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    wait_rows(&dst, "narrow.items", ROWS as i64 / 10).await;
    server.kill();
    // While dts is down the destination table (its structure already migrated, and not compared
    // again by the resumed load) gets a column too narrow for the source's values.
    dst.exec("DELETE FROM narrow.items; ALTER TABLE narrow.items MODIFY c VARCHAR(10) NOT NULL").await;
    server.restart().await;

    let failed = server.wait_job(&job, "Failed", |j| j["Status"] == 10).await;
    let errors = failed["ErrorInfo"].to_string();
    assert!(errors.contains("`narrow`.`items`") && errors.contains("data truncated"), "{errors}\n{}", server.log());
    assert_eq!(count(&dst, "narrow.items").await, 0, "no truncated row was loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_job_refuses_tables_without_any_key_in_the_precheck_and_a_full_one_warns() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(
        "CREATE DATABASE k;
         CREATE TABLE k.keyed (id INT PRIMARY KEY, v INT);
         CREATE TABLE k.coded (code VARCHAR(10) NOT NULL, UNIQUE KEY (code));
         CREATE TABLE k.log (at DATETIME, what TEXT);
         INSERT INTO k.log VALUES (NOW(), 'a'), (NOW(), 'a');",
    )
    .await;
    let server = start_server(None).await;
    let incremental = server.create_mysql_job("keyless-3", 3, src.port(), dst.port(), Some("k"), &[]);
    let out = server.cli(&["job", "check", &incremental]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let line = stdout.lines().find(|l| l.contains("primary_keys")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("FAIL") && line.contains("`k`.`log`") && !line.contains("coded"), "{stdout}");
    assert!(stdout.contains("add a primary key") && stdout.contains("exclude"), "{stdout}");
    assert_eq!(server.job(&incremental)["Status"], 5);

    let full = server.create_mysql_job("keyless-2", 2, src.port(), dst.port(), Some("k"), &[]);
    let stdout = server.cli_ok(&["job", "check", &full]);
    let line = stdout.lines().find(|l| l.contains("primary_keys")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("warn") && line.contains("`k`.`log`"), "{stdout}");
    server.cli_ok(&["job", "start", &full]);
    server.wait_status(&full, 9).await;
    assert_eq!(count(&dst, "k.log").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistency_report_keeps_bounded_rows_with_exact_counts_and_describe_pages_it() {
    const MISSING: i64 = 12_000;
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(&format!(
        "CREATE DATABASE diffs;
         CREATE TABLE diffs.t1 (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO diffs.t1 SELECT seq, CONCAT('v', seq) FROM diffs.seq_1_to_{MISSING};
         CREATE TABLE diffs.t2 (id INT PRIMARY KEY, v INT);
         INSERT INTO diffs.t2 VALUES (1, 1), (2, 2);
         CREATE TABLE diffs.t3 (id INT PRIMARY KEY);
         INSERT INTO diffs.t3 VALUES (1);"
    ))
    .await;
    let server = start_server(None).await;
    let job = server.create_mysql_job("diffs", 3, src.port(), dst.port(), Some("diffs"), &["--consistency-type", "2"]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;
    dst.exec("DELETE FROM diffs.t1; UPDATE diffs.t2 SET v = 9 WHERE id = 2").await;
    server.cli_ok(&["job", "complete", &job]);
    server.wait_status(&job, 9).await;

    let first = call(&server, "DescribeMigrateJobDiff", &json!({"JobId": job, "Limit": 2})).await.unwrap();
    assert_eq!((first["TotalCount"].as_u64(), first["Tables"].as_array().map(Vec::len)), (Some(3), Some(2)), "{first}");
    let second =
        call(&server, "DescribeMigrateJobDiff", &json!({"JobId": job, "Offset": 2, "Limit": 2})).await.unwrap();
    assert_eq!(second["Tables"].as_array().map(Vec::len), Some(1), "{second}");
    let tables: Vec<Value> =
        [&first, &second].iter().flat_map(|r| r["Tables"].as_array().cloned().unwrap_or_default()).collect();
    let t1 = tables.iter().find(|t| t["Table"] == "t1").unwrap_or_else(|| panic!("{tables:?}"));
    assert_eq!(t1["MissingCount"], MISSING, "the count is exact: {t1}");
    assert_eq!(t1["Missing"].as_array().map(Vec::len), Some(1000), "the list is capped");
    assert_eq!(t1["Truncated"], true);
    assert_eq!(first["Truncated"], true);
    let t2 = tables.iter().find(|t| t["Table"] == "t2").unwrap();
    assert_eq!((t2["DifferentCount"].as_u64(), t2["Truncated"].as_bool()), (Some(1), Some(false)), "{t2}");

    // The repair statements are paged too.
    let total = first["RepairSqlTotalCount"].as_u64().unwrap();
    assert!(total > 1000, "{total}");
    let sql =
        call(&server, "DescribeMigrateJobDiff", &json!({"JobId": job, "RepairSqlOffset": 5, "RepairSqlLimit": 10}))
            .await
            .unwrap();
    assert_eq!(sql["RepairSql"].as_array().map(Vec::len), Some(10));
    let too_many = call(&server, "DescribeMigrateJobDiff", &json!({"JobId": job, "Limit": 101})).await;
    assert!(too_many.as_ref().is_err_and(|e| e.starts_with("InvalidParameter")), "{too_many:?}");

    // `dts job diff` joins the pages.
    let out = server.cli(&["job", "diff", &job]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{MISSING} missing on the destination")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_keys_survive_a_stop_and_a_restart_while_the_destination_is_down_and_come_back_after() {
    let (src, mut dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(&format!(
        "CREATE DATABASE held;
         CREATE TABLE held.items (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(60) NOT NULL, KEY k_k (k), KEY k_c (c));
         INSERT INTO held.items SELECT seq, seq % 1000, REPEAT(CHAR(65 + seq % 26), 60) FROM held.seq_1_to_{ROWS};
         ANALYZE TABLE held.items;"
    ))
    .await;
    let mut server = start_server(Some(load_config())).await;
    let job = server.create_mysql_job("held", 2, src.port(), dst.port(), Some("held"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    wait_rows(&dst, "held.items", ROWS as i64 / 10).await;
    assert_eq!(keys(&dst, "held", "items").await, ["PRIMARY"], "the load deferred the secondary keys");
    // The destination goes down mid-load; the job is stopped meanwhile, so its release (the only
    // record of the dropped keys is in its checkpoints) cannot run; dts restarts too.
    dst.kill();
    server.cli_ok(&["job", "stop", &job]);
    server.wait_job(&job, "Failed", |j| j["Status"] == 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    dst.restart().await;
    wait_keys(&dst, "held", "items", &["PRIMARY", "k_c", "k_k"], &server).await;
}
