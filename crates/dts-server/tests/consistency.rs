//! The consistency check as a step of a job (`ConsistencyType`), through `dts serve` and the
//! CLI: after a full load; while replication runs under writes (no false differences) before
//! ReadyComplete; again at CompleteMigrateJob, where injected divergences are found, named in
//! ErrorInfo, listed by `dts job diff` and repaired by its SQL.

use std::time::Duration;

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

async fn source() -> MariaDb {
    let src = MariaDb::start().await;
    src.exec(
        "CREATE DATABASE cc;
         CREATE TABLE cc.a (id INT PRIMARY KEY, v INT, s VARCHAR(20), d DECIMAL(12,4), t DATETIME(6));
         INSERT INTO cc.a SELECT seq, seq % 97, CONCAT('s', seq), seq / 7, '2024-01-01 00:00:00.25' FROM cc.seq_1_to_20000;
         CREATE TABLE cc.b (k VARCHAR(10) PRIMARY KEY, n INT);
         INSERT INTO cc.b SELECT CONCAT('k', seq), seq FROM cc.seq_1_to_500;
         CREATE TABLE cc.nokey (x INT, y VARCHAR(5));
         INSERT INTO cc.nokey VALUES (1, 'a'), (1, 'a'), (2, 'b');",
    )
    .await;
    src
}

fn create(server: &DtsServer, src: &MariaDb, dst: &MariaDb, migrate_type: &str) -> String {
    server.create_mysql_job(
        "checked",
        migrate_type.parse().unwrap(),
        src.port(),
        dst.port(),
        Some("cc"),
        &["--consistency-type", "2"],
    )
}

fn check_step(job: &serde_json::Value) -> serde_json::Value {
    job["Detail"]["StepInfo"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["StepId"] == "ConsistencyCheck"))
        .cloned()
        .unwrap_or_else(|| panic!("no ConsistencyCheck step: {job}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_migration_with_a_full_check_ends_with_a_passed_check_step() {
    let (src, dst) = tokio::join!(source(), MariaDb::start());
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = create(&server, &src, &dst, "2");
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    let done = server.wait_status(&job, 9).await;
    assert_eq!(check_step(&done)["Status"], 1, "the check step passed: {done}");
    assert_eq!(done["ErrorInfo"].as_array().map(Vec::len), Some(0), "{done}");
    let diff = server.cli_ok(&["job", "diff", &job]);
    assert!(diff.contains("`cc`.`a`: equal (20000 rows)") && diff.contains("`cc`.`nokey`: equal (3 rows)"), "{diff}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_check_reports_no_false_difference_and_the_final_check_finds_and_repairs_divergence() {
    let (src, dst) = tokio::join!(source(), MariaDb::start());
    // A replicating job refuses tables without any key (see the precheck's `primary_keys`).
    src.exec("DROP TABLE cc.nokey").await;
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = create(&server, &src, &dst, "3");
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    // Writes all through the load, the catch-up and the live check: rows 1..20000 keep changing.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut conn = src.conn().await;
        tokio::spawn(async move {
            let mut i: u64 = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let id = 100 + (i * 7919) % 19_000;
                conn.query_drop(format!(
                    "UPDATE cc.a SET v = v + 1, s = CONCAT('w', {i}) WHERE id = {id};
                     INSERT INTO cc.a VALUES ({}, 1, 'new', 1.5, NOW(6)) ON DUPLICATE KEY UPDATE v = v + 1;
                     UPDATE cc.b SET n = n + 1 WHERE k = 'k{}'",
                    100_000 + i % 5000,
                    1 + i % 500
                ))
                .await
                .expect("write");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            i
        })
    };
    let ready = server.wait_status(&job, 8).await;
    let step = check_step(&ready);
    assert_eq!(step["Status"], 1, "the live check found no difference while rows kept changing: {ready}");
    assert_eq!(ready["ErrorInfo"].as_array().map(Vec::len), Some(0), "{ready}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 50, "the writer kept writing during the check ({writes} rounds)");

    // Divergences on rows nobody writes: a missing, an extra and a different row.
    dst.exec(
        "DELETE FROM cc.a WHERE id = 5; INSERT INTO cc.a VALUES (99, 0, 'dup', 0, NULL) ON DUPLICATE KEY UPDATE s = 'changed';
         INSERT INTO cc.b VALUES ('zzz', 1); UPDATE cc.a SET d = d + 0.0001 WHERE id = 7;",
    )
    .await;
    server.cli_ok(&["job", "complete", &job]);
    let done = server.wait_status(&job, 9).await;
    assert_eq!(check_step(&done)["Status"], 2, "the final check found the divergence: {done}");
    let errors = done["ErrorInfo"].to_string();
    assert!(errors.contains("`cc`.`a`") && errors.contains("`cc`.`b`"), "{errors}");

    let file = server.data_dir().join("repair.sql");
    let out = server.cli(&["job", "diff", &job, "--repair-sql", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "diff exits 1 when tables differ:\n{text}");
    assert!(text.contains("1 missing on the destination: id=5"), "{text}");
    assert!(text.contains("id=99 [s]") && text.contains("id=7 [d]"), "{text}");
    assert!(text.contains("1 extra on the destination: k=zzz"), "{text}");
    let sql = std::fs::read_to_string(&file).unwrap();
    dst.exec(&sql).await;
    for t in ["cc.a", "cc.b"] {
        let q = format!("CHECKSUM TABLE {t}");
        let a: Option<(String, Option<i64>)> = src.conn().await.query_first(&q).await.unwrap();
        let b: Option<(String, Option<i64>)> = dst.conn().await.query_first(&q).await.unwrap();
        assert_eq!(a.map(|r| r.1), b.map(|r| r.1), "{t} after the repair SQL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_check_compares_the_requested_fractions_of_tables_and_rows() {
    let (src, dst) = tokio::join!(source(), MariaDb::start());
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let endpoint =
        |db: &MariaDb| serde_json::json!({"Ip": "127.0.0.1", "Port": db.port(), "User": "root", "Password": ""});
    let mut dst_info = endpoint(&dst);
    dst_info["Region"] = "ap-guangzhou".into();
    let request = serde_json::json!({
        "JobName": "sampled",
        "MigrateOption": {"RunMode": 1, "MigrateType": 2, "MigrateObject": 2, "ConsistencyType": 3,
            "ConsistencyParams": {"TablesSelectAll": 34, "TablesSelectCount": 34, "SelectRowsPerTable": 50}},
        "SrcDatabaseType": "mariadb", "SrcAccessType": "extranet", "SrcInfo": endpoint(&src),
        "DstDatabaseType": "mariadb", "DstAccessType": "cdb", "DstInfo": dst_info,
        "DatabaseInfo": "[{\"Database\": \"cc\"}]",
    });
    let file = server.data_dir().join("create.json");
    std::fs::write(&file, request.to_string()).unwrap();
    let job = server.cli_ok(&["job", "create", "--request", file.to_str().unwrap()]).trim().to_string();
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    let done = server.wait_status(&job, 9).await;
    assert_eq!(check_step(&done)["Status"], 1, "{done}");
    let diff: serde_json::Value = serde_json::from_str(&server.cli_ok(&["job", "diff", &job, "--json"])).unwrap();
    assert_eq!(diff["Mode"], "sampled", "{diff}");
    let tables = diff["Tables"].as_array().unwrap();
    // 3 tables: 34% of them (one) compared on half of its rows, 34% (one more) by row count.
    assert_eq!(tables.len(), 2, "{diff}");
    let sample = tables.iter().find(|t| t["Comparison"]["sample"]["percent"] == 50).unwrap_or_else(|| panic!("{diff}"));
    let count = tables.iter().find(|t| t["Comparison"] == "count").unwrap_or_else(|| panic!("{diff}"));
    assert_ne!(sample["Table"], count["Table"]);
    if sample["Table"] == "a" {
        // 20,000 rows in 10,000-row chunks: one of the two chunks, about half of the rows.
        let rows = sample["SourceRows"].as_u64().unwrap();
        assert!((5_000..=15_000).contains(&rows), "{sample}");
    }
}
