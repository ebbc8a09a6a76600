//! End-to-end tests of the Alibaba Cloud DTS 2020-01-01 dialect as the official Alibaba Python
//! SDKs drive it (`alibabacloud-dts20200101` with ACS3-HMAC-SHA256 and with RPC v1, and
//! `aliyun-python-sdk-dts` on `aliyun-python-sdk-core`): a real `dts serve`, throwaway MariaDB
//! servers, and the scripts `tests/py/ali_*.py`.

mod sdk_script;

use std::path::Path;
use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;
use sdk_script::{Running, api_env, job_id_printed, printed, python, run_script, with};

const SDKS: [&str; 3] = ["tea", "tea-v2", "core"];

async fn server() -> DtsServer {
    DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await
}

fn script_env(server: &DtsServer, src: &MariaDb, dst: &MariaDb, db: &str, sdk: &str) -> Vec<(String, String)> {
    api_env(
        server,
        &[
            ("SRC_PORT", &src.port().to_string()),
            ("DST_PORT", &dst.port().to_string()),
            ("DB_NAME", db),
            ("ALI_SDK", sdk),
        ],
    )
}

/// A database with a keyed table (`origin` says which side wrote a row) and an event log keyed by
/// kind and time (synchronization refuses tables without any key).
async fn create_database(db: &MariaDb, name: &str) {
    db.exec(&format!(
        "CREATE DATABASE {name};
         CREATE TABLE {name}.items (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40), origin CHAR(1) NOT NULL,
            KEY idx_v (v)) ENGINE=InnoDB;
         CREATE TABLE {name}.events (kind VARCHAR(10), at DATETIME(6), PRIMARY KEY (kind, at)) ENGINE=InnoDB;
         INSERT INTO {name}.items VALUES (1, 10, 'one', 'a'), (2, 20, NULL, 'a'), (3, 30, 'three', 'a');
         INSERT INTO {name}.events VALUES ('boot', '2026-01-01 00:00:00.123456')"
    ))
    .await;
}

async fn checksum(db: &MariaDb, table: &str) -> Option<i64> {
    let row: Option<(String, Option<i64>)> =
        db.conn().await.query_first(format!("CHECKSUM TABLE {table}")).await.expect("CHECKSUM TABLE");
    row.and_then(|r| r.1)
}

async fn count(db: &MariaDb, table: &str) -> u64 {
    db.conn().await.query_first(format!("SELECT COUNT(*) FROM {table}")).await.expect("count").unwrap_or(0)
}

/// Polls until both tables have the same checksum; panics after `timeout`.
async fn wait_equal(a: &MariaDb, b: &MariaDb, tables: &[String], timeout: Duration, server: &DtsServer) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut differ = Vec::new();
        for t in tables {
            if checksum(a, t).await != checksum(b, t).await {
                differ.push(t.clone());
            }
        }
        if differ.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{differ:?} still differ after {timeout:?}; server log:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_alibaba_sdk_drives_a_migration_to_finished_with_equal_data() {
    let (src, dst, python) = tokio::join!(MariaDb::start(), MariaDb::start(), python());
    let server = server().await;
    for sdk in SDKS {
        let db = format!("shop_{}", sdk.replace('-', "_"));
        create_database(&src, &db).await;
        let env = with(script_env(&server, &src, &dst, &db, sdk), &[("MODE", "migration")]);
        let stdout = run_script(&python, "ali_lifecycle.py", &env, &server).await;
        assert!(job_id_printed(&stdout).starts_with("dts-"));
        for table in ["items", "events"] {
            let t = format!("{db}.{table}");
            assert_eq!(checksum(&src, &t).await, checksum(&dst, &t).await, "{t} differs after {sdk}'s migration");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_alibaba_requests_get_the_documented_errors_from_each_sdk() {
    let (src, dst, python) = tokio::join!(MariaDb::start(), MariaDb::start(), python());
    let server = server().await;
    for sdk in SDKS {
        run_script(&python, "ali_negative.py", &script_env(&server, &src, &dst, "shop", sdk), &server).await;
    }
}

/// Writes `n` rows from id `from`, then updates and deletes some of them, one autocommit
/// statement at a time.
async fn write_rows(db: &MariaDb, table: &str, from: i64, n: i64, origin: char, pause: Duration) {
    let mut conn = db.conn().await;
    for i in 0..n {
        let id = from + 2 * i;
        conn.query_drop(format!("INSERT INTO {table} VALUES ({id}, {i}, 'n{i}', '{origin}')")).await.expect("insert");
        if i % 3 == 1 {
            conn.query_drop(format!("UPDATE {table} SET v = v + 100, note = NULL WHERE id = {}", id - 2))
                .await
                .expect("update");
        }
        if i % 7 == 6 {
            conn.query_drop(format!("DELETE FROM {table} WHERE id = {}", id - 4)).await.expect("delete");
        }
        tokio::time::sleep(pause).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_synchronization_replicates_writes_pauses_when_suspended_and_resumes_without_loss() {
    let (src, dst, python) = tokio::join!(MariaDb::start(), MariaDb::start(), python());
    let server = server().await;
    create_database(&src, "sync").await;
    let phase = server.data_dir().join("phase");
    std::fs::write(&phase, "").unwrap();
    let env = with(
        script_env(&server, &src, &dst, "sync", "tea"),
        &[("MODE", "sync"), ("PHASE_FILE", phase.to_str().expect("utf-8 path"))],
    );
    let mut script = Running::start(&python, "ali_lifecycle.py", &env);
    script.wait_line("READY", Duration::from_secs(120), &server).await;
    let job_id = job_id_printed(&script.stdout());
    let tables = ["sync.items".to_string(), "sync.events".to_string()];

    // The Tencent dialect sees the same job, replicating.
    let job = server.job(&job_id);
    assert!(matches!(job["Status"].as_i64(), Some(7 | 8)), "the Tencent view of {job_id}: {job}");

    write_rows(&src, "sync.items", 100, 40, 'a', Duration::from_millis(20)).await;
    src.exec("INSERT INTO sync.events VALUES ('w', NOW(6))").await;
    wait_equal(&src, &dst, &tables, Duration::from_secs(30), &server).await;

    std::fs::write(&phase, "suspend").unwrap();
    script.wait_line("SUSPENDED", Duration::from_secs(60), &server).await;
    let before = count(&dst, "sync.items").await;
    write_rows(&src, "sync.items", 1000, 30, 'a', Duration::from_millis(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&dst, "sync.items").await, before, "a suspended task must not apply changes");

    std::fs::write(&phase, "suspend resume").unwrap();
    script.wait_line("RESUMED", Duration::from_secs(60), &server).await;
    write_rows(&src, "sync.items", 2000, 20, 'a', Duration::from_millis(10)).await;
    wait_equal(&src, &dst, &tables, Duration::from_secs(60), &server).await;

    std::fs::write(&phase, "suspend resume stop").unwrap();
    script.wait_line("STOPPED", Duration::from_secs(60), &server).await;
    script.finish(&server).await;
    wait_equal(&src, &dst, &tables, Duration::from_secs(5), &server).await;
    assert_eq!(count(&dst, "sync.items").await, count(&src, "sync.items").await);
}

/// Row images in `db`'s binlog that dts applied (logged with another server id than the
/// server's own) for rows whose `origin` is `own`: changes that came back where they started.
/// Also returns how many row images dts applied in all.
fn echoed_rows(db: &MariaDb, own: char) -> (usize, usize) {
    let out = std::process::Command::new("mariadb-binlog")
        .args(["--read-from-remote-server", "-h127.0.0.1", "-uroot", "-v", "--base64-output=decode-rows"])
        .arg(format!("-P{}", db.port()))
        .args(["--to-last-log", "binlog.000001"])
        .output()
        .expect("run mariadb-binlog");
    assert!(out.status.success(), "mariadb-binlog failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let own_id = format!(" server id {} ", db.server_id());
    let (mut applied_by_dts, mut echoed, mut total) = (false, 0, 0);
    for line in text.lines() {
        if line.starts_with('#') && line.contains(" server id ") {
            applied_by_dts = !line.contains(&own_id);
        } else if applied_by_dts && line.starts_with("###   @4=") {
            total += 1;
            if line.trim_end().ends_with(&format!("'{own}'")) {
                echoed += 1;
            }
        }
    }
    (echoed, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_way_synchronization_converges_under_writes_on_both_sides_and_echoes_nothing() {
    let (a, b, python) = tokio::join!(MariaDb::start(), MariaDb::start(), python());
    let server = server().await;
    create_database(&a, "bothways").await;
    let phase = server.data_dir().join("phase");
    std::fs::write(&phase, "").unwrap();
    let env = with(
        script_env(&server, &a, &b, "bothways", "core"),
        &[("MODE", "twoway"), ("PHASE_FILE", phase.to_str().expect("utf-8 path"))],
    );
    let mut script = Running::start(&python, "ali_lifecycle.py", &env);
    script.wait_line("READY", Duration::from_secs(180), &server).await;
    let reverse = printed(&script.stdout(), "REVERSE_JOB_ID=");
    assert!(reverse.starts_with("dts-"), "{reverse}");

    // 60 s of writes on both sides, on disjoint keys: even ids on A, odd ids on B.
    let started = Instant::now();
    let (rows_a, rows_b) = (1200, 1200);
    tokio::join!(
        write_rows(&a, "bothways.items", 10_000, rows_a, 'a', Duration::from_millis(45)),
        write_rows(&b, "bothways.items", 10_001, rows_b, 'b', Duration::from_millis(45)),
    );
    let wrote_for = started.elapsed();
    let tables = ["bothways.items".to_string()];
    wait_equal(&a, &b, &tables, Duration::from_secs(60), &server).await;
    println!("two-way: wrote {rows_a} + {rows_b} rows in {wrote_for:?}; converged");

    let (echo_a, applied_a) = echoed_rows(&a, 'a');
    let (echo_b, applied_b) = echoed_rows(&b, 'b');
    println!("row images dts applied: on A {applied_a} (echoed {echo_a}), on B {applied_b} (echoed {echo_b})");
    assert!(applied_a > 0 && applied_b > 0, "both directions should have applied changes");
    assert_eq!((echo_a, echo_b), (0, 0), "changes came back to the side that made them");

    // Conflicts: both directions paused, the same rows changed on both sides, 1.2 s apart; after
    // the resume both sides hold the later change (rows 900-909: B's, rows 910-919: A's).
    a.exec("INSERT INTO bothways.items SELECT seq, 0, 'c', 'a' FROM bothways.seq_900_to_919").await;
    wait_equal(&a, &b, &tables, Duration::from_secs(30), &server).await;
    std::fs::write(&phase, "suspend").unwrap();
    script.wait_line("SUSPENDED", Duration::from_secs(60), &server).await;
    tokio::join!(
        a.exec("UPDATE bothways.items SET v = 1 WHERE id BETWEEN 900 AND 909"),
        b.exec("UPDATE bothways.items SET v = 3 WHERE id BETWEEN 910 AND 919"),
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    tokio::join!(
        b.exec("UPDATE bothways.items SET v = 2 WHERE id BETWEEN 900 AND 909"),
        a.exec("UPDATE bothways.items SET v = 4 WHERE id BETWEEN 910 AND 919"),
    );
    std::fs::write(&phase, "suspend resume").unwrap();
    script.wait_line("RESUMED", Duration::from_secs(60), &server).await;
    wait_equal(&a, &b, &tables, Duration::from_secs(60), &server).await;
    for db in [&a, &b] {
        let later: Vec<(i64, i64)> = db
            .conn()
            .await
            .query("SELECT v, COUNT(*) FROM bothways.items WHERE id BETWEEN 900 AND 919 GROUP BY v ORDER BY v")
            .await
            .unwrap();
        assert_eq!(later, vec![(2, 10), (4, 10)], "the later commit wins on both sides");
    }
    let forward_id = job_id_printed(&script.stdout());
    let count = |id: &str| server.job(id)["Detail"]["ConflictCount"].as_u64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut conflicts = count(&forward_id) + count(&reverse);
    while conflicts < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        conflicts = count(&forward_id) + count(&reverse);
    }
    println!("conflicts settled: {conflicts}");
    assert!(conflicts >= 20, "each of the 20 rows conflicted in at least one direction: {conflicts}");

    std::fs::write(&phase, "suspend resume stop").unwrap();
    script.wait_line("STOPPED", Duration::from_secs(60), &server).await;
    script.finish(&server).await;
    assert_eq!(checksum(&a, "bothways.items").await, checksum(&b, "bothways.items").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_created_through_the_tencent_dialect_is_listed_renamed_suspended_and_resumed_through_the_alibaba_one() {
    let (src, dst, python) = tokio::join!(MariaDb::start(), MariaDb::start(), python());
    let server = server().await;
    create_database(&src, "crossing").await;
    let job = server.create_mysql_job("made-by-tencent", 3, src.port(), dst.port(), Some("crossing"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;
    let phase = server.data_dir().join("phase");
    std::fs::write(&phase, "").unwrap();
    let env = with(
        script_env(&server, &src, &dst, "crossing", "tea"),
        &[("MODE", "tencent-job"), ("JOB_ID", &job), ("PHASE_FILE", phase.to_str().expect("utf-8 path"))],
    );
    let mut script = Running::start(&python, "ali_lifecycle.py", &env);
    script.wait_line("SUSPENDED", Duration::from_secs(60), &server).await;
    assert_eq!(server.job(&job)["Status"], 13, "the Tencent view of a suspended job");
    write_rows(&src, "crossing.items", 500, 20, 'a', Duration::from_millis(5)).await;
    std::fs::write(&phase, "resume").unwrap();
    script.wait_line("RESUMED", Duration::from_secs(60), &server).await;
    script.finish(&server).await;
    let shown = server.job(&job);
    assert_eq!(shown["JobName"], "renamed-through-alibaba", "{shown}");
    server.wait_status(&job, 8).await;
    server.cli_ok(&["job", "complete", &job]);
    server.wait_status(&job, 9).await;
    for t in ["crossing.items", "crossing.events"] {
        assert_eq!(checksum(&src, t).await, checksum(&dst, t).await, "{t} after resume and completion");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_list_that_renames_a_database_and_a_table_is_synchronized_under_the_new_names() {
    let (src, dst, python) = tokio::join!(MariaDb::start(), MariaDb::start(), python());
    let server = server().await;
    create_database(&src, "ren").await;
    src.exec("CREATE TABLE ren.child (id INT PRIMARY KEY, item INT, FOREIGN KEY (item) REFERENCES ren.items (id))")
        .await;
    src.exec("INSERT INTO ren.child VALUES (1, 1), (2, 2)").await;
    let phase = server.data_dir().join("phase");
    std::fs::write(&phase, "").unwrap();
    let db_list = r#"{"ren": {"name": "ren_new", "all": false, "Table": {"items": {"name": "items_new", "all": true},
        "events": {"name": "events", "all": true}, "child": {"name": "child", "all": true}}}}"#;
    let env = with(
        script_env(&server, &src, &dst, "ren", "tea-v2"),
        &[("MODE", "sync"), ("DB_LIST", db_list), ("PHASE_FILE", phase.to_str().expect("utf-8 path"))],
    );
    let mut script = Running::start(&python, "ali_lifecycle.py", &env);
    script.wait_line("READY", Duration::from_secs(120), &server).await;
    write_rows(&src, "ren.items", 100, 30, 'a', Duration::from_millis(5)).await;
    src.exec("INSERT INTO ren.events VALUES ('later', NOW(6)); UPDATE ren.child SET item = 3 WHERE id = 2").await;
    let pairs = [("ren.items", "ren_new.items_new"), ("ren.events", "ren_new.events"), ("ren.child", "ren_new.child")];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut equal = true;
        for (s, d) in pairs {
            equal &= checksum(&src, s).await == checksum(&dst, d).await && checksum(&dst, d).await.is_some();
        }
        if equal {
            break;
        }
        assert!(Instant::now() < deadline, "renamed tables did not converge; server log:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let create: Option<(String, String)> =
        dst.conn().await.query_first("SHOW CREATE TABLE ren_new.child").await.unwrap();
    assert!(create.unwrap().1.contains("REFERENCES `items_new` (`id`)"), "the foreign key follows the rename");
    let old: Vec<String> = dst.conn().await.query("SHOW DATABASES LIKE 'ren'").await.unwrap();
    assert!(old.is_empty(), "nothing is written under the source's database name");
    std::fs::write(&phase, "suspend resume stop").unwrap();
    script.wait_line("STOPPED", Duration::from_secs(60), &server).await;
    script.finish(&server).await;
}

async fn item_v(db: &MariaDb) -> i64 {
    let v: Option<i64> = db.conn().await.query_first("SELECT v FROM policy.items WHERE id = 1").await.unwrap();
    v.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_ignore_conflict_policy_each_side_keeps_its_own_change_and_the_conflicts_are_counted() {
    let (a, b, python) = tokio::join!(MariaDb::start(), MariaDb::start(), python());
    let server = server().await;
    create_database(&a, "policy").await;
    let phase = server.data_dir().join("phase");
    std::fs::write(&phase, "").unwrap();
    let env = with(
        script_env(&server, &a, &b, "policy", "tea"),
        &[("MODE", "twoway"), ("CONFLICT_POLICY", "Ignore"), ("PHASE_FILE", phase.to_str().expect("utf-8 path"))],
    );
    let mut script = Running::start(&python, "ali_lifecycle.py", &env);
    script.wait_line("READY", Duration::from_secs(180), &server).await;
    let reverse = printed(&script.stdout(), "REVERSE_JOB_ID=");
    std::fs::write(&phase, "suspend").unwrap();
    script.wait_line("SUSPENDED", Duration::from_secs(60), &server).await;
    a.exec("UPDATE policy.items SET v = 100 WHERE id = 1").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    b.exec("UPDATE policy.items SET v = 200 WHERE id = 1").await;
    std::fs::write(&phase, "suspend resume").unwrap();
    script.wait_line("RESUMED", Duration::from_secs(60), &server).await;
    let forward = job_id_printed(&script.stdout());
    let count = |id: &str| server.job(id)["Detail"]["ConflictCount"].as_u64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&forward) + count(&reverse) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(count(&forward) + count(&reverse), 2, "one conflict in each direction");
    assert_eq!((item_v(&a).await, item_v(&b).await), (100, 200), "Ignore keeps each destination's own row");
    std::fs::write(&phase, "suspend resume stop").unwrap();
    script.wait_line("STOPPED", Duration::from_secs(60), &server).await;
    script.finish(&server).await;
}
