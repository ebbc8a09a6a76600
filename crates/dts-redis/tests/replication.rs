//! The Redis connector against throwaway `redis-server`s: the snapshot and the command stream
//! of every type with TTLs, transactions, a flushed database, resuming without a full resync,
//! a backlog overrun, source settings, the precheck and the consistency check; the snapshot
//! relay (the destination loading the RDB itself), when it is not used, and crashes during it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dts_core::{Checker, ConsistencyChecker, MigrationPlan, Position, ReleaseReason, Releaser, StreamMode};
use dts_redis::RedisConnector;
use support::{MemoryCheckpoints, plan, start};
mod support;

use dts_test_support::{RedisClient, RedisServer};

fn args(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Every type, small and large encodings, some with TTLs, in database `db`.
fn fill(c: &mut RedisClient, db: u32, tag: &str) {
    c.run(&["SELECT".to_string(), db.to_string()]);
    let mut cmds = vec![
        args(&["SET", &format!("{tag}:s"), "hello"]),
        args(&["SET", &format!("{tag}:int"), "12345"]),
        args(&["SET", &format!("{tag}:ttl"), "v", "EX", "3600"]),
        args(&["SET", &format!("{tag}:long"), &"x".repeat(20_000)]),
        args(&["RPUSH", &format!("{tag}:list"), "a", "b", "c"]),
        args(&["SADD", &format!("{tag}:iset"), "1", "2", "3"]),
        args(&["SADD", &format!("{tag}:set"), "a", "b"]),
        args(&["ZADD", &format!("{tag}:zset"), "1.5", "a", "-2", "b", "inf", "c"]),
        args(&["HSET", &format!("{tag}:hash"), "f1", "v1", "f2", "v2"]),
        args(&["PFADD", &format!("{tag}:hll"), "a", "b", "c"]),
        args(&["XADD", &format!("{tag}:stream"), "1-1", "f", "v"]),
        args(&["XADD", &format!("{tag}:stream"), "2-1", "f", "w"]),
        args(&["XGROUP", "CREATE", &format!("{tag}:stream"), "g1", "0"]),
        args(&["XREADGROUP", "GROUP", "g1", "c1", "COUNT", "1", "STREAMS", &format!("{tag}:stream"), ">"]),
        args(&["PEXPIRE", &format!("{tag}:hash"), "7200000"]),
    ];
    let big_list: Vec<String> = (0..3000).map(|i| format!("item-{i}")).collect();
    let mut l = args(&["RPUSH", &format!("{tag}:biglist")]);
    l.extend(big_list.iter().map(|s| s.as_bytes().to_vec()));
    cmds.push(l);
    let mut h = args(&["HSET", &format!("{tag}:bighash")]);
    for i in 0..3000 {
        h.push(format!("field-{i}").into_bytes());
        h.push(format!("value-{i}").into_bytes());
    }
    cmds.push(h);
    let mut z = args(&["ZADD", &format!("{tag}:bigzset")]);
    for i in 0..3000 {
        z.push(format!("{}", i as f64 / 7.0).into_bytes());
        z.push(format!("m{i}").into_bytes());
    }
    cmds.push(z);
    c.pipeline(&cmds);
}

fn assert_same(source: &mut RedisClient, dest: &mut RedisClient, db: u32) {
    let a = source.snapshot(db);
    let b = dest.snapshot(db);
    assert!(!a.is_empty() || b.is_empty());
    assert_eq!(a.len(), b.len(), "database {db}: {} keys on the source, {} on the destination", a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "database {db}, key {}", x.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_with_ttls_arrives_through_the_snapshot_and_the_stream() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    fill(&mut s, 3, "c");
    fill(&mut s, 1, "unselected");
    s.run(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=dtslib\nredis.register_function('dtsf', function(keys, args) return 1 end)",
    ]);
    let plan = plan(source.port(), dest.port(), &[0, 3], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    // Changes after the snapshot: every type again, a transaction, a key that expires, deletes.
    fill(&mut s, 0, "b");
    s.run(&["SELECT", "0"]);
    s.run(&["MULTI"]);
    s.run(&["INCR", "counter"]);
    s.run(&["LPUSH", "a:list", "z"]);
    s.run(&["HDEL", "a:hash", "f1"]);
    s.run(&["EXEC"]);
    s.run(&["DEL", "a:s"]);
    s.run(&["SET", "short", "v", "PX", "100"]);
    s.run(&["ZINCRBY", "a:bigzset", "100", "m5"]);
    s.run(&["SELECT", "3"]);
    s.run(&[
        "EVAL",
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], 5)",
        "2",
        "c:lua",
        "c:n",
        "x",
    ]);
    s.run(&["SELECT", "1"]);
    s.run(&["SET", "unselected:later", "1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reached = run.complete().await;
    assert!(matches!(reached, Position::Redis(_)));
    assert_same(&mut s, &mut d, 0);
    assert_same(&mut s, &mut d, 3);
    d.run(&["SELECT", "1"]);
    assert_eq!(d.run(&["DBSIZE"]).int(), 0, "an unselected database stays empty");
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["GET", "counter"]).text(), "1");
    assert_eq!(d.run(&["EXISTS", "short"]).int(), 0, "an expired key is not resurrected");
    assert!(d.run(&["PTTL", "a:ttl"]).int() > 3_500_000);
    assert_eq!(d.run(&["FUNCTION", "LIST"]).list().len(), 1, "the function library was copied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushdb_of_a_selected_database_and_flushall_stay_within_the_selection() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    fill(&mut s, 2, "b");
    let plan = plan(source.port(), dest.port(), &[0, 2], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    d.run(&["SELECT", "5"]);
    d.run(&["SET", "not-ours", "1"]);
    s.run(&["SELECT", "2"]);
    s.run(&["FLUSHDB"]);
    s.run(&["SET", "after-flush", "1"]);
    s.run(&["FLUSHALL"]);
    s.run(&["SELECT", "0"]);
    s.run(&["SET", "after-flushall", "1"]);
    run.complete().await;
    assert_same(&mut s, &mut d, 0);
    assert_same(&mut s, &mut d, 2);
    d.run(&["SELECT", "5"]);
    assert_eq!(d.run(&["GET", "not-ours"]).text(), "1", "FLUSHALL of the source empties only the selected databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replication_continues_the_stream_and_applies_each_command_once() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    // Non-idempotent commands while dts is killed at arbitrary points.
    let writer = std::thread::spawn({
        let port = source.port();
        move || {
            let mut c = RedisClient::connect(port).unwrap();
            for i in 0..3000 {
                c.run(&["INCR", "counter"]);
                c.run(&["RPUSH", "log", &i.to_string()]);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    run.crash().await;
    let mut resumed = 0;
    for round in 0..3 {
        let run = start(&plan, &ckpt, StreamMode::Continuous);
        tokio::time::sleep(Duration::from_millis(200 + round * 100)).await;
        let notes = run.observer.notes.lock().unwrap().clone();
        resumed += notes.iter().filter(|n| n.contains("without a full resync")).count();
        assert!(!notes.iter().any(|n| n.contains("full resync:")), "{notes:?}");
        run.crash().await;
    }
    writer.join().unwrap();
    let run = start(&plan, &ckpt, StreamMode::Continuous);
    run.complete().await;
    assert!(resumed >= 3, "every restart continued the stream (+CONTINUE)");
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["GET", "counter"]).text(), "3000", "each INCR applied exactly once");
    assert_eq!(d.run(&["LLEN", "log"]).int(), 3000);
    assert_same(&mut s, &mut d, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_overrun_forces_a_full_resync_that_is_reported() {
    let source = RedisServer::start_with(&["--repl-backlog-size", "16384"]);
    let dest = RedisServer::start();
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    run.crash().await;
    s.run(&["SELECT", "0"]);
    for i in 0..100 {
        s.run(&["SET", &format!("k{i}"), &"v".repeat(1000)]);
    }
    s.run(&["DEL", "a:s"]);
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    let o = run.observer.clone();
    run.snapshot().await;
    let notes = o.notes.lock().unwrap().clone();
    assert!(notes.iter().any(|n| n.contains("full resync")), "{notes:?}");
    run.complete().await;
    assert_same(&mut s, &mut d, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extern_params_change_the_source_for_the_job_and_are_put_back() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let mut s = source.client();
    let before = s.run(&["CONFIG", "GET", "repl-backlog-size"]).list()[1].text();
    let plan = plan(
        source.port(),
        dest.port(),
        &[],
        Some(
            r#"{"ClientOutputBufferHardLimit":512,"ClientOutputBufferSoftLimit":256,"ClientOutputBufferPersistTime":90,"ReplBacklogSize":32,"ReplTimeout":120}"#,
        ),
    );
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    let o = run.observer.clone();
    run.snapshot().await;
    assert_eq!(s.run(&["CONFIG", "GET", "repl-backlog-size"]).list()[1].text(), (32u64 << 20).to_string());
    assert_eq!(s.run(&["CONFIG", "GET", "repl-timeout"]).list()[1].text(), "120");
    let limits = s.run(&["CONFIG", "GET", "client-output-buffer-limit"]).list()[1].text();
    assert!(limits.contains(&format!("slave {} {} 90", 512u64 << 20, 256u64 << 20)), "{limits}");
    run.complete().await;
    assert_eq!(s.run(&["CONFIG", "GET", "repl-backlog-size"]).list()[1].text(), before, "restored at the end");
    let notes = o.notes.lock().unwrap().clone();
    assert!(notes.iter().any(|n| n.contains("restored")), "{notes:?}");
    RedisConnector::default().release(&plan, ReleaseReason::Ended, ckpt.as_ref()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_precheck_refuses_a_destination_with_keys_and_a_user_without_psync() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    d.run(&["SET", "already", "here"]);
    s.run(&["ACL", "SETUSER", "reader", "on", ">secret-pass", "~*", "+@all", "-psync", "-sync"]);
    let mut p = plan(source.port(), dest.port(), &[], None);
    p.source.user = "reader".into();
    p.source.password = "secret-pass".into();
    let report = RedisConnector::default().check(&p, &|_, _| {}).await;
    let failed: Vec<&str> = report.items.iter().filter(|i| i.is_failed()).map(|i| i.name.as_str()).collect();
    assert_eq!(failed, vec!["ReplicationAllowed", "TargetEmpty"], "{report:#?}");
    p.source.password = "wrong".into();
    let report = RedisConnector::default().check(&p, &|_, _| {}).await;
    assert!(report.items.iter().any(|i| i.name == "SourceConnection" && i.is_failed()));
    let ok = plan(source.port(), dest.port(), &[], Some(r#"{"DstOverwrite":true}"#));
    let report = RedisConnector::default().check(&ok, &|_, _| {}).await;
    assert!(report.passed(), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consistency_check_names_missing_extra_and_different_keys() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    let plan = plan(source.port(), dest.port(), &[0], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    start(&plan, &ckpt, StreamMode::SnapshotOnly).task.await.unwrap().unwrap();
    let c = RedisConnector::default();
    let dbs = c.tables(&plan).await.unwrap();
    assert_eq!(dbs, vec![("0".to_string(), String::new())]);
    let options = dts_core::CompareOptions::default();
    let diff = c.compare(&plan, "0", "", &options).await.unwrap();
    assert!(diff.consistent(), "{diff:#?}");
    d.run(&["SELECT", "0"]);
    d.run(&["DEL", "a:list"]);
    d.run(&["SET", "extra", "1"]);
    d.run(&["HSET", "a:bighash", "field-7", "changed"]);
    d.run(&["PERSIST", "a:ttl"]);
    let diff = c.compare(&plan, "0", "", &options).await.unwrap();
    assert_eq!((diff.missing_count, diff.extra_count, diff.different_count), (1, 1, 2), "{diff:#?}");
    let repair = c.repair_sql(&plan, &diff, 100).await.unwrap();
    assert!(repair.iter().any(|l| l.starts_with("DEL \"extra\"")), "{repair:?}");
    assert!(repair.iter().any(|l| l.starts_with("RESTORE \"a:list\"")), "{repair:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_the_destination_refuses_stops_the_replication_instead_of_losing_it() {
    let source = RedisServer::start();
    let dest = RedisServer::start_with(&["--rename-command", "LPUSH", ""]);
    let (mut s, mut d) = (source.client(), dest.client());
    s.run(&["SET", "before", "1"]);
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    s.run(&["MULTI"]);
    s.run(&["SET", "with-it", "1"]);
    s.run(&["LPUSH", "l", "a"]);
    s.run(&["EXEC"]);
    let result = tokio::time::timeout(Duration::from_secs(30), run.task).await.expect("ends").expect("task");
    let e = result.expect_err("the destination cannot run LPUSH");
    assert_eq!(e.class, dts_core::ErrorClass::NeedsOperator, "{e:?}");
    assert!(e.summary.contains("refused"), "{e:?}");
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["EXISTS", "with-it"]).int(), 0, "the refused batch was applied as a whole or not at all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_snapshot_copies_it_again_without_stale_keys() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    s.run(&["SELECT", "0"]);
    let cmds: Vec<Vec<Vec<u8>>> = (0..60_000)
        .map(|i| vec![b"SET".to_vec(), format!("k{i}").into_bytes(), format!("v{i}-{}", "x".repeat(1000)).into_bytes()])
        .collect();
    s.pipeline(&cmds);
    // The command path's crash (the relay's has its own test).
    let plan = plan(source.port(), dest.port(), &[], Some(r#"{"SnapshotRelay":false}"#));
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let run = start(&plan, &ckpt, StreamMode::Continuous);
    // Crash once the destination has part of the snapshot.
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.run(&["DBSIZE"]).int() < 1_000 {
        assert!(Instant::now() < deadline && !run.task.is_finished(), "the snapshot did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.crash().await;
    let loading = ckpt.0.lock().unwrap().get("position").cloned().unwrap_or_default();
    assert!(loading.contains("full_sync"), "crashed mid-snapshot: {loading}");
    // Keys deleted meanwhile must not survive on the destination.
    for i in 0..100 {
        s.run(&["DEL", &format!("k{i}")]);
    }
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    run.complete().await;
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["DBSIZE"]).int(), 59_900 + 1, "every key of the source (and dts's marker), no stale one");
    for i in (0..100).step_by(7) {
        assert_eq!(d.run(&["EXISTS", &format!("k{i}")]).int(), 0, "k{i} was deleted on the source");
    }
    for i in (100..60_000).step_by(997) {
        assert_eq!(d.run(&["GET", &format!("k{i}")]).text(), format!("v{i}-{}", "x".repeat(1000)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_restart_is_ridden_out_and_the_data_stays_equal() {
    let (mut source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    s.run(&["INCR", "counter"]);
    // A clean restart: SHUTDOWN SAVE writes the data and the replication id into dump.rdb.
    let _ = s.cmd(&["SHUTDOWN", "SAVE"]);
    source.restart();
    let e = tokio::time::timeout(Duration::from_secs(30), run.task).await.expect("ends").expect("task");
    let e = e.expect_err("the link to the source is lost");
    assert!(e.is_transient(), "a lost source is retried: {e:?}");
    let mut s = source.client();
    s.run(&["INCR", "counter"]);
    // The engine retries: a new attempt continues (or, if the source cannot, copies again).
    let run = start(&plan, &ckpt, StreamMode::Continuous);
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.complete().await;
    assert_same(&mut s, &mut d, 0);
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["GET", "counter"]).text(), "2");
}

fn info(c: &mut RedisClient, section: &str, field: &str) -> String {
    c.info_field(section, field).unwrap_or_default()
}

fn config(c: &mut RedisClient, name: &str) -> String {
    c.run(&["CONFIG", "GET", name]).list()[1].text()
}

/// Fills database 0 with `n` keys of about 1 KiB (a snapshot that takes a moment to relay).
fn fill_many(c: &mut RedisClient, n: usize) {
    c.run(&["SELECT", "0"]);
    let cmds: Vec<Vec<Vec<u8>>> = (0..n)
        .map(|i| vec![b"SET".to_vec(), format!("k{i}").into_bytes(), format!("v{i}-{}", "x".repeat(1000)).into_bytes()])
        .collect();
    c.pipeline(&cmds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_instance_is_loaded_by_the_destination_through_the_relay_then_each_command_applies_once() {
    let source = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let dest = RedisServer::start();
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    fill(&mut s, 2, "b");
    s.run(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=dtslib\nredis.register_function('dtsf', function(keys, args) return 1 end)",
    ]);
    // A key whose TTL passed before the snapshot, still in the source's keyspace (no active
    // expiry, never read), so the RDB may hold it: the destination must not bring it back.
    s.run(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    s.run(&["SELECT", "0"]);
    s.run(&["SET", "gone", "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    d.run(&["CONFIG", "SET", "masteruser", "operator"]);
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    let notes = run.observer.notes.lock().unwrap().clone();
    assert!(notes.iter().any(|n| n.contains("the destination loaded the snapshot itself")), "{notes:?}");
    assert_eq!(info(&mut d, "replication", "role"), "master", "a master again after the relay");
    // (A master takes a new replication id when its first replica connects.)
    assert_eq!(
        info(&mut d, "replication", "master_replid2"),
        info(&mut s, "replication", "master_replid"),
        "the destination was a replica of the source's stream (through dts)"
    );
    assert_eq!(config(&mut d, "masterauth"), "", "masterauth restored");
    assert_eq!(config(&mut d, "masteruser"), "operator", "masteruser restored");
    assert_eq!(config(&mut d, "repl-diskless-load"), "disabled", "repl-diskless-load restored");
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["EXISTS", "gone"]).int(), 0, "an expired key is not resurrected");
    assert!(d.run(&["PTTL", "a:ttl"]).int() > 3_500_000, "TTLs arrive");
    assert_eq!(d.run(&["FUNCTION", "LIST"]).list().len(), 1, "the function library was loaded");
    // The stream after the relay: non-idempotent commands, each applied once.
    s.run(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    let mut cmds = Vec::new();
    for i in 0..500 {
        cmds.push(args(&["INCR", "counter"]));
        cmds.push(args(&["RPUSH", "a:list", &i.to_string()]));
    }
    s.pipeline(&cmds);
    s.run(&["DEL", "a:s"]);
    s.run(&["SELECT", "2"]);
    s.run(&["HINCRBY", "b:hash", "n", "7"]);
    s.run(&["SET", "short", "v", "PX", "100"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.complete().await;
    assert_same(&mut s, &mut d, 0);
    assert_same(&mut s, &mut d, 2);
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["GET", "counter"]).text(), "500", "each INCR applied once");
    assert_eq!(d.run(&["LLEN", "a:list"]).int(), 503);
    d.run(&["SELECT", "2"]);
    assert_eq!(d.run(&["EXISTS", "short"]).int(), 0);
    let saved = ckpt.0.lock().unwrap().get("position").cloned().unwrap_or_default();
    assert!(!saved.contains("relay"), "no relay left in the checkpoint: {saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_selecting_some_databases_or_turning_the_relay_off_copies_the_snapshot_as_commands() {
    let source = RedisServer::start();
    let mut s = source.client();
    fill(&mut s, 0, "a");
    fill(&mut s, 1, "b");
    for (dbs, params) in [
        (&[0u32][..], None),
        (&[][..], Some(r#"{"SnapshotRelay":false}"#)),
        (&[][..], Some(r#"{"DstOverwrite":true}"#)),
    ] {
        let dest = RedisServer::start();
        let mut d = dest.client();
        let plan = plan(source.port(), dest.port(), dbs, params);
        let ckpt = Arc::new(MemoryCheckpoints::default());
        let run = start(&plan, &ckpt, StreamMode::SnapshotOnly);
        let observer = run.observer.clone();
        run.task.await.unwrap().unwrap();
        let notes = observer.notes.lock().unwrap().clone();
        assert!(!notes.iter().any(|n| n.contains("relay")), "{dbs:?} {params:?}: {notes:?}");
        assert_eq!(
            info(&mut d, "replication", "master_replid2"),
            "0".repeat(40),
            "{dbs:?} {params:?}: the destination was never a replica"
        );
        assert_same(&mut s, &mut d, 0);
        if dbs.is_empty() {
            assert_same(&mut s, &mut d, 1);
        } else {
            d.run(&["SELECT", "1"]);
            assert_eq!(d.run(&["DBSIZE"]).int(), 0, "database 1 was not selected");
        }
    }
}

/// Starts a whole-instance job and kills it (drops its task) while the destination is a replica
/// of its relay, syncing or loading.
async fn crash_mid_relay(plan: &MigrationPlan, ckpt: &Arc<MemoryCheckpoints>, d: &mut RedisClient) {
    let run = start(plan, ckpt, StreamMode::Continuous);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let syncing = info(d, "replication", "master_sync_in_progress") == "1";
        if info(d, "replication", "role") == "slave" && (syncing || info(d, "persistence", "loading") == "1") {
            break;
        }
        assert!(Instant::now() < deadline && !run.task.is_finished(), "the relay did not start");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    run.crash().await;
    let saved = ckpt.0.lock().unwrap().get("position").cloned().unwrap_or_default();
    assert!(saved.contains("relay") && saved.contains("full_sync"), "the relay is recorded: {saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_relay_leaves_the_destination_a_master_with_equal_data_after_the_restart() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    fill_many(&mut s, 60_000);
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    crash_mid_relay(&plan, &ckpt, &mut d).await;
    assert_eq!(info(&mut d, "replication", "role"), "slave", "the crash left the destination a replica of dts");
    for i in 0..100 {
        s.run(&["DEL", &format!("k{i}")]);
    }
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    let notes = run.observer.notes.lock().unwrap().clone();
    assert!(notes.iter().any(|n| n.contains("left a replica of dts's snapshot relay")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("the destination loaded the snapshot itself")), "{notes:?}");
    s.run(&["SET", "after", "1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.complete().await;
    assert_eq!(info(&mut d, "replication", "role"), "master");
    assert_eq!(config(&mut d, "masterauth"), "");
    d.run(&["SELECT", "0"]);
    assert_eq!(d.run(&["DBSIZE"]).int(), 59_900 + 1 + 1, "every key of the source (and dts's marker), no stale one");
    assert_same(&mut s, &mut d, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_a_job_that_crashed_during_the_relay_makes_the_destination_a_master_again() {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    fill_many(&mut s, 60_000);
    d.run(&["CONFIG", "SET", "masteruser", "operator"]);
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    crash_mid_relay(&plan, &ckpt, &mut d).await;
    RedisConnector::default().release(&plan, ReleaseReason::Ended, ckpt.as_ref()).await.unwrap();
    assert_eq!(info(&mut d, "replication", "role"), "master");
    assert_eq!(config(&mut d, "masterauth"), "");
    assert_eq!(config(&mut d, "masteruser"), "operator");
    let saved = ckpt.0.lock().unwrap().get("position").cloned().unwrap_or_default();
    assert!(!saved.contains("relay"), "{saved}");
    // Idempotent.
    RedisConnector::default().release(&plan, ReleaseReason::Ended, ckpt.as_ref()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_refuses_replicaof_gets_the_snapshot_as_commands_in_the_same_attempt() {
    let source = RedisServer::start();
    let dest = RedisServer::start_with(&["--rename-command", "REPLICAOF", ""]);
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let run = start(&plan, &ckpt, StreamMode::SnapshotOnly);
    let observer = run.observer.clone();
    run.task.await.unwrap().unwrap();
    let notes = observer.notes.lock().unwrap().clone();
    assert!(notes.iter().any(|n| n.contains("snapshot relay not used")), "{notes:?}");
    assert_eq!(config(&mut d, "masterauth"), "", "the token is gone again");
    assert_eq!(info(&mut d, "replication", "role"), "master");
    assert_same(&mut s, &mut d, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_cannot_load_the_relayed_snapshot_gets_it_as_commands_on_the_next_attempt() {
    let source = RedisServer::start();
    let dest = RedisServer::start_with(&["--enable-protected-configs", "yes"]);
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, 0, "a");
    // Not empty (left by an earlier attempt), so it loads from its disk; and a working directory
    // that no longer exists: the destination cannot write the snapshot.
    d.run(&["SET", "stale", "1"]);
    let gone = std::env::temp_dir().join(format!("dts-relay-gone-{}-{}", std::process::id(), dest.port()));
    std::fs::create_dir_all(&gone).unwrap();
    d.run(&["CONFIG", "SET", "dir", gone.to_str().unwrap()]);
    std::fs::remove_dir(&gone).unwrap();
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let run = start(&plan, &ckpt, StreamMode::SnapshotOnly);
    let e = tokio::time::timeout(Duration::from_secs(60), run.task).await.expect("ends").expect("task");
    let e = e.expect_err("the destination cannot load the snapshot");
    assert!(e.is_transient() && e.summary.contains("relayed snapshot"), "{e:?}");
    assert_eq!(info(&mut d, "replication", "role"), "master", "put back at once");
    assert_eq!(config(&mut d, "masterauth"), "");
    // The engine's retry: commands this time.
    let run = start(&plan, &ckpt, StreamMode::SnapshotOnly);
    let observer = run.observer.clone();
    run.task.await.unwrap().unwrap();
    let notes = observer.notes.lock().unwrap().clone();
    assert!(notes.iter().any(|n| n.contains("failed on the destination before")), "{notes:?}");
    assert_same(&mut s, &mut d, 0);
}
