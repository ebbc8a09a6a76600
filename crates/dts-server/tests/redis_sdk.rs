//! A Redis -> Redis synchronization driven by the official Tencent Cloud Python SDK against a
//! real `dts serve` and throwaway `redis-server`s: MigrateType 3 with the Redis ExternParams,
//! ReadyComplete under writes, a kill -9 of dts mid-stream (the stream continues with
//! `+CONTINUE`, every command applied once), CompleteMigrateJob, Success, equal data.

mod sdk_script;

use std::path::Path;
use std::time::Duration;

use dts_test_support::{DtsServer, DtsServerOptions, RedisClient, RedisServer};
use sdk_script::{Running, api_env, python};

const DST_PASSWORD: &str = "dst-Redis-Pw-77";

fn fill(c: &mut RedisClient, db: u32, n: usize) {
    c.run(&["SELECT".to_string(), db.to_string()]);
    let mut cmds = Vec::new();
    for i in 0..n {
        cmds.push(vec![b"SET".to_vec(), format!("s{i}").into_bytes(), format!("value-{i}").into_bytes()]);
        if i % 10 == 0 {
            cmds.push(vec![b"EXPIRE".to_vec(), format!("s{i}").into_bytes(), b"3600".to_vec()]);
        }
    }
    cmds.push(vec![b"HSET".to_vec(), b"h".to_vec(), b"f".to_vec(), b"v".to_vec()]);
    cmds.push(vec![b"ZADD".to_vec(), b"z".to_vec(), b"1".to_vec(), b"m".to_vec()]);
    cmds.push(vec![b"RPUSH".to_vec(), b"l".to_vec(), b"a".to_vec()]);
    c.pipeline(&cmds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tencent_sdk_synchronizes_redis_through_a_kill_of_dts_to_success() {
    let source = RedisServer::start();
    let dest = RedisServer::start_with(&["--requirepass", DST_PASSWORD]);
    let mut s = source.client();
    fill(&mut s, 0, 5000);
    fill(&mut s, 3, 2000);
    fill(&mut s, 1, 100);
    let backlog_before = s.run(&["CONFIG", "GET", "repl-backlog-size"]).list()[1].text();
    let mut server = DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await;
    let done = tempfile::NamedTempFile::new().expect("temp file").into_temp_path();
    let done_path = done.to_path_buf();
    std::fs::remove_file(&done_path).expect("remove");
    let env = api_env(
        &server,
        &[
            ("SRC_PORT", &source.port().to_string()),
            ("DST_PORT", &dest.port().to_string()),
            ("DST_PASSWORD", DST_PASSWORD),
            ("WRITES_DONE", done_path.to_str().expect("utf-8 path")),
        ],
    );
    let py = python().await;
    let mut script = Running::start(&py, "redis_migration.py", &env);
    script.wait_line("READY", Duration::from_secs(200), &server).await;
    assert_eq!(
        s.run(&["CONFIG", "GET", "repl-backlog-size"]).list()[1].text(),
        (64u64 << 20).to_string(),
        "ReplBacklogSize is set on the source for the job"
    );
    // Writes while the job replicates, with dts killed (-9) in the middle of them.
    let port = source.port();
    let writer = std::thread::spawn(move || {
        let mut c = RedisClient::connect(port).expect("connect");
        for round in 0..40 {
            let mut cmds = Vec::new();
            for db in [0u32, 3, 1] {
                cmds.push(vec![b"SELECT".to_vec(), db.to_string().into_bytes()]);
                for i in 0..50 {
                    cmds.push(vec![b"INCR".to_vec(), b"counter".to_vec()]);
                    cmds.push(vec![b"HINCRBY".to_vec(), b"h".to_vec(), b"n".to_vec(), b"1".to_vec()]);
                    cmds.push(vec![b"LPUSH".to_vec(), b"l".to_vec(), format!("{round}-{i}").into_bytes()]);
                    cmds.push(vec![b"DEL".to_vec(), format!("s{}", round * 50 + i).into_bytes()]);
                }
            }
            c.pipeline(&cmds);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart().await;
    tokio::task::spawn_blocking(move || writer.join().expect("writer")).await.expect("join");
    std::fs::write(&done_path, b"done").expect("write the phase file");
    let stdout = script.finish(&server).await;
    let mut d = dest.client();
    d.run(&["AUTH", DST_PASSWORD]);
    for db in [0, 3] {
        let (a, b) = (s.snapshot(db), d.snapshot(db));
        assert_eq!(a.len(), b.len(), "database {db}");
        assert_eq!(a, b, "database {db}");
    }
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["GET", "counter"]).text(), "2000", "every INCR applied once across the kill");
    d.run(&["SELECT", "1"]);
    assert_eq!(d.run(&["DBSIZE"]).int(), 0, "database 1 was not selected");
    assert_eq!(s.run(&["CONFIG", "GET", "repl-backlog-size"]).list()[1].text(), backlog_before, "restored at the end");
    let log = server.log();
    assert!(log.contains("+CONTINUE"), "the restarted dts continued the stream:\n{log}");
    let job = server.job(&sdk_script::job_id_printed(&stdout));
    let notes = job["Detail"]["Notes"].to_string();
    assert!(notes.contains("without a full resync"), "the detail tells of the resume: {notes}");
    assert!(notes.contains("source settings restored"), "the detail tells of the restore: {notes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alibaba_sdk_redis_sync_task_is_suspended_and_resumed_without_losing_writes() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let mut s = source.client();
    fill(&mut s, 0, 1000);
    fill(&mut s, 2, 100);
    let server = DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await;
    let phase = server.data_dir().join("phase");
    std::fs::write(&phase, "").expect("phase file");
    let env = api_env(
        &server,
        &[
            ("SRC_PORT", &source.port().to_string()),
            ("DST_PORT", &dest.port().to_string()),
            ("SRC_USER", ""),
            ("DST_USER", ""),
            ("DB_NAME", "0"),
            ("ENGINE", "Redis"),
            ("ALI_SDK", "tea"),
            ("MODE", "sync"),
            ("PHASE_FILE", phase.to_str().expect("utf-8 path")),
        ],
    );
    let py = python().await;
    let mut script = Running::start(&py, "ali_lifecycle.py", &env);
    script.wait_line("READY", Duration::from_secs(200), &server).await;
    let mut d = dest.client();
    let wait_equal = |s: &mut RedisClient, d: &mut RedisClient| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if s.snapshot(0) == d.snapshot(0) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "database 0 did not converge");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    s.run(&["SELECT", "0"]);
    s.run(&["INCRBY", "counter", "5"]);
    wait_equal(&mut s, &mut d);

    std::fs::write(&phase, "suspend").expect("phase");
    script.wait_line("SUSPENDED", Duration::from_secs(60), &server).await;
    for _ in 0..100 {
        s.run(&["INCR", "counter"]);
    }
    s.run(&["DEL", "s1"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["GET", "counter"]).text(), "5", "a suspended task applies nothing");

    std::fs::write(&phase, "suspend resume").expect("phase");
    script.wait_line("RESUMED", Duration::from_secs(60), &server).await;
    s.run(&["INCR", "counter"]);
    wait_equal(&mut s, &mut d);
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["GET", "counter"]).text(), "106", "the writes made while suspended arrived once");
    d.run(&["SELECT", "2"]);
    assert_eq!(d.run(&["DBSIZE"]).int(), 0, "DbList selected database 0 only");

    std::fs::write(&phase, "suspend resume stop").expect("phase");
    script.wait_line("STOPPED", Duration::from_secs(60), &server).await;
    script.finish(&server).await;
    assert!(server.log().contains("+CONTINUE"), "the resumed task continued the stream");
}
