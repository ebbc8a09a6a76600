//! The Redis connector with Redis Cluster on either side, against throwaway clusters: cluster to
//! a cluster of another shape, standalone to cluster, cluster to database 0 of a standalone
//! server (with a shard's FLUSHALL), a crash continuing every shard, a source failover, and the
//! precheck's topology item.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dts_core::{Checker, ConsistencyChecker, DatabaseSelection, MigrationPlan, ObjectSelection, Position, StreamMode};
use dts_redis::RedisConnector;
use support::{MemoryCheckpoints, start};
mod support;

use dts_test_support::RedisServer;
use dts_test_support::redis::{ClusterClient, RedisClient, RedisCluster, key_slot};

/// A job between the cluster or server at `source` and the one at `dest`, under this file's job id.
fn plan(source: u16, dest: u16, dbs: &[u32]) -> MigrationPlan {
    MigrationPlan { job_id: "dts-redis-cluster-test".into(), ..support::plan(source, dest, dbs, None) }
}

/// Keys of every type spread over all slots, written through the cluster client.
fn fill_cluster(c: &mut ClusterClient, tag: &str, strings: usize) {
    for i in 0..strings {
        c.run(&["SET".to_string(), format!("{tag}:s:{i}"), format!("value-{i}")]);
    }
    for i in 0..20 {
        c.run(&["RPUSH".to_string(), format!("{tag}:list:{i}"), "a".into(), "b".into(), i.to_string()]);
        c.run(&["HSET".to_string(), format!("{tag}:hash:{i}"), "f".into(), i.to_string(), "g".into(), "x".into()]);
        c.run(&["ZADD".to_string(), format!("{tag}:zset:{i}"), "1.5".into(), "a".into(), "-2".into(), "b".into()]);
        c.run(&["SADD".to_string(), format!("{tag}:set:{i}"), "a".into(), "b".into(), i.to_string()]);
        c.run(&["SET".to_string(), format!("{tag}:ttl:{i}"), "v".into(), "EX".into(), "3600".into()]);
        c.run(&["XADD".to_string(), format!("{tag}:stream:{i}"), "1-1".into(), "f".into(), "v".into()]);
    }
    let mut big = vec!["RPUSH".to_string(), format!("{tag}:biglist")];
    big.extend((0..3000).map(|i| format!("item-{i}")));
    c.run(&big);
}

/// Writes after the snapshot on every shard: overwrites, deletes, counters, TTLs, a transaction
/// on one slot.
fn change_cluster(cluster: &RedisCluster, c: &mut ClusterClient, tag: &str) {
    for i in 0..300 {
        c.run(&["SET".to_string(), format!("{tag}:s:{i}"), format!("changed-{i}")]);
        c.run(&["INCR".to_string(), format!("{tag}:n:{}", i % 7)]);
    }
    for i in 300..400 {
        c.run(&["DEL".to_string(), format!("{tag}:s:{i}")]);
    }
    for i in 0..20 {
        c.run(&["LPUSH".to_string(), format!("{tag}:list:{i}"), "z".into()]);
        c.run(&["HDEL".to_string(), format!("{tag}:hash:{i}"), "g".into()]);
        c.run(&["PEXPIRE".to_string(), format!("{tag}:set:{i}"), "7200000".into()]);
    }
    let mut t = cluster.client_for("{tx}");
    t.run(&["MULTI"]);
    t.run(&["INCR", "{tx}:a"]);
    t.run(&["SET", "{tx}:b", "1"]);
    t.run(&["DEL", "{tx}:a", "{tx}:c"]);
    t.run(&["EXEC"]);
}

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn shards(p: &Position) -> Vec<String> {
    match p {
        Position::Redis(r) => r.shards.keys().cloned().collect(),
        other => panic!("not a Redis position: {other:?}"),
    }
}

fn assert_same(a: &[(String, String, u64, bool)], b: &[(String, String, u64, bool)]) {
    assert_eq!(a.len(), b.len(), "{} keys on the source, {} on the destination", a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x, y, "key {}", x.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_copied_into_a_cluster_of_another_shape_with_writes_on_every_shard() {
    let (source, dest) = (RedisCluster::start(3), RedisCluster::start(2));
    let mut c = source.cluster_client();
    fill_cluster(&mut c, "k", 2000);
    let plan = plan(source.port(), dest.port(), &[0]);
    let report = RedisConnector::default().check(&plan, &|_, _| {}).await;
    assert!(report.passed(), "{report:#?}");
    let topology = report.items.iter().find(|i| i.name == "Topology").expect("Topology item");
    assert!(topology.description.contains("a cluster of 3 masters"), "{topology:?}");
    let mut bad = plan.clone();
    bad.selection = ObjectSelection::Databases(vec![
        DatabaseSelection { database: "0".into(), ..Default::default() },
        DatabaseSelection { database: "3".into(), ..Default::default() },
    ]);
    let report = RedisConnector::default().check(&bad, &|_, _| {}).await;
    assert!(report.items.iter().any(|i| i.name == "Topology" && i.is_failed()), "{report:#?}");

    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    assert_eq!(run.observer.snapshot_done.load(Ordering::SeqCst), 1, "the snapshot finishes once, for every shard");
    change_cluster(&source, &mut c, "k");
    let o = run.observer.clone();
    wait_until("the shards to catch up", 30, || o.caught_up.load(Ordering::SeqCst)).await;
    let reached = run.complete().await;
    assert_eq!(shards(&reached), vec!["0-5460", "10923-16383", "5461-10922"]);
    assert_same(&source.snapshot(), &dest.snapshot());
    let keys = ckpt.0.lock().unwrap().keys().filter(|k| k.starts_with("position/")).count();
    assert_eq!(keys, 3, "one checkpoint per shard");
    // The consistency check reads every master of both clusters.
    let connector = RedisConnector::default();
    assert_eq!(connector.tables(&plan).await.unwrap(), vec![("0".to_string(), String::new())]);
    let options = dts_core::CompareOptions::default();
    let diff = connector.compare(&plan, "0", "", &options).await.unwrap();
    assert!(diff.consistent(), "{diff:#?}");
    assert_eq!(diff.source_rows as usize, source.snapshot().len());
    let mut d = dest.cluster_client();
    d.run(&["DEL", "k:s:1"]);
    d.run(&["SET", "extra", "1"]);
    d.run(&["HSET", "k:hash:3", "f", "changed"]);
    let diff = connector.compare(&plan, "0", "", &options).await.unwrap();
    assert_eq!((diff.missing_count, diff.extra_count, diff.different_count), (1, 1, 1), "{diff:#?}");
    let repair = connector.repair_sql(&plan, &diff, 100).await.unwrap();
    assert!(repair.iter().any(|l| l.starts_with("RESTORE \"k:s:1\"")), "{repair:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_source_is_copied_into_a_cluster() {
    let source = RedisServer::start();
    let dest = RedisCluster::start(3);
    let mut s = source.client();
    for i in 0..1500 {
        s.run(&["SET".to_string(), format!("s:{i}"), i.to_string()]);
    }
    s.run(&["RPUSH", "list", "a", "b"]);
    s.run(&["HSET", "hash", "f", "v"]);
    s.run(&["XADD", "stream", "1-1", "f", "v"]);
    s.run(&["XGROUP", "CREATE", "stream", "g1", "0"]);
    s.run(&["SET", "ttl", "v", "EX", "3600"]);
    s.run(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=dtslib\nredis.register_function('dtsf', function(keys, args) return 1 end)",
    ]);
    let mut big = vec!["ZADD".to_string(), "bigzset".into()];
    for i in 0..3000 {
        big.push(format!("{}", i as f64 / 7.0));
        big.push(format!("m{i}"));
    }
    s.run(&big);
    let plan = plan(source.port(), dest.port(), &[0]);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    // Multi-key commands across slots are split; a transaction across slots is applied command
    // by command; scripts arrive as their effects.
    s.run(&["MSET", "m:a", "1", "m:b", "2", "m:c", "3"]);
    s.run(&["DEL", "s:1", "s:2", "s:3", "s:4"]);
    s.run(&["MULTI"]);
    s.run(&["INCR", "counter"]);
    s.run(&["LPUSH", "list", "z"]);
    s.run(&["SET", "s:10", "x"]);
    s.run(&["EXEC"]);
    s.run(&[
        "EVAL",
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], 5)",
        "2",
        "lua:a",
        "lua:b",
        "x",
    ]);
    s.run(&["XADD", "stream", "2-1", "f", "w"]);
    s.run(&["XREADGROUP", "GROUP", "g1", "c1", "COUNT", "1", "STREAMS", "stream", ">"]);
    s.run(&["ZINCRBY", "bigzset", "100", "m5"]);
    s.run(&["MSETNX", "nx:a", "1", "nx:b", "2"]);
    let reached = run.complete().await;
    assert_eq!(shards(&reached), vec![""]);
    assert_same(&s.snapshot(0), &dest.snapshot());
    for (port, _) in dest.masters() {
        let mut m = RedisClient::connect(port).unwrap();
        assert_eq!(m.run(&["FUNCTION", "LIST"]).list().len(), 1, "the function library is on every master");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_a_destination_slot_through_ask_while_it_moves_and_moved_after() {
    let source = RedisServer::start();
    let dest = RedisCluster::start(3);
    let mut s = source.client();
    s.run(&["SET", "foo", "old"]);
    s.run(&["RPUSH", "{foo}list", "a"]);
    let plan = plan(source.port(), dest.port(), &[0]);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    let slot = key_slot(b"foo");
    let owner = dest.cluster_client().port_of(b"foo");
    let target = dest.masters().into_iter().map(|(p, _)| p).find(|p| *p != owner).unwrap();
    // While the slot moves: a key the old owner holds is written there, a new key is asked for
    // at the new owner (ASKING).
    dest.migrate_slot(slot, target, false);
    s.run(&["SET", "foo", "during"]);
    s.run(&["SET", "{foo}new", "1"]);
    s.run(&["RPUSH", "{foo}list", "b"]);
    let o = run.observer.clone();
    wait_until("the writes to arrive", 30, || o.applied.load(Ordering::SeqCst) >= 3).await;
    dest.migrate_slot(slot, target, true);
    // The slot moved: dts's writer learns it from MOVED.
    s.run(&["SET", "foo", "after"]);
    s.run(&["INCR", "{foo}n"]);
    s.run(&["DEL", "{foo}new"]);
    s.run(&["SET", "bar", "elsewhere"]);
    run.complete().await;
    assert_same(&s.snapshot(0), &dest.snapshot());
    assert_eq!(RedisClient::connect(target).unwrap().run(&["GET", "foo"]).text(), "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_source_is_copied_into_database_0_of_a_standalone_server() {
    let source = RedisCluster::start(3);
    let dest = RedisServer::start();
    let mut c = source.cluster_client();
    fill_cluster(&mut c, "k", 1000);
    let plan = plan(source.port(), dest.port(), &[]);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    change_cluster(&source, &mut c, "k");
    // FLUSHALL on one master empties only that shard's slots, on the source and the destination.
    let (first, _) = source.masters()[0];
    RedisClient::connect(first).unwrap().run(&["FLUSHALL"]);
    for i in 0..50 {
        c.run(&["SET".to_string(), format!("after:{i}"), i.to_string()]);
    }
    run.complete().await;
    let mut d = dest.client();
    assert_same(&source.snapshot(), &d.snapshot(0));
    assert!(d.snapshot(0).iter().any(|(k, ..)| key_slot(k.as_bytes()) > 5460), "other shards' keys stay");
    let markers = d.run(&["KEYS", "dts:applied-offset:*"]).list().len();
    assert_eq!(markers, 3, "one marker per shard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_cluster_replication_continues_every_shard_without_a_full_resync() {
    let source = RedisCluster::start(3);
    let dest = RedisServer::start();
    let mut c = source.cluster_client();
    fill_cluster(&mut c, "k", 500);
    // One counter per shard.
    let counters: Vec<String> = [0u16, 5461, 10923]
        .iter()
        .map(|lo| {
            (0..)
                .map(|i| format!("counter:{i}"))
                .find(|k| key_slot(k.as_bytes()) >= *lo && key_slot(k.as_bytes()) < lo + 5461)
                .unwrap()
        })
        .collect();
    let plan = plan(source.port(), dest.port(), &[0]);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    let writer = std::thread::spawn({
        let mut c = source.cluster_client();
        let counters = counters.clone();
        move || {
            for i in 0..1500 {
                for k in &counters {
                    c.run(&["INCR", k]);
                }
                c.run(&["RPUSH".to_string(), "log:{a}".to_string(), i.to_string()]);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    run.crash().await;
    for round in 0..3 {
        let run = start(&plan, &ckpt, StreamMode::Continuous);
        tokio::time::sleep(Duration::from_millis(400 + round * 100)).await;
        let notes = run.notes();
        run.crash().await;
        let resumed = notes.iter().filter(|n| n.contains("without a full resync")).count();
        assert_eq!(resumed, 3, "every shard continued its stream (+CONTINUE): {notes:?}");
        assert!(!notes.iter().any(|n| n.contains("full resync:")), "{notes:?}");
    }
    writer.join().unwrap();
    let run = start(&plan, &ckpt, StreamMode::Continuous);
    run.complete().await;
    let mut d = dest.client();
    for k in &counters {
        assert_eq!(d.run(&["GET", k]).text(), "1500", "each INCR of {k} applied exactly once");
    }
    assert_eq!(d.run(&["LLEN", "log:{a}"]).int(), 1500);
    assert_same(&source.snapshot(), &d.snapshot(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_of_a_source_master_continues_its_shard_on_the_promoted_replica() {
    let source = RedisCluster::start_with_replicas(3);
    let dest = RedisServer::start();
    let mut c = source.cluster_client();
    fill_cluster(&mut c, "k", 300);
    let plan = plan(source.port(), dest.port(), &[0]);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    change_cluster(&source, &mut c, "k");
    let o = run.observer.clone();
    wait_until("the shards to catch up", 30, || o.caught_up.load(Ordering::SeqCst)).await;
    let promoted = source.failover(0);
    // The old master, now a replica, dropped dts's link: the replication fails (transient) and
    // the engine would start it again.
    let ended = tokio::time::timeout(Duration::from_secs(30), run.task).await.expect("ends").expect("task");
    let e = ended.expect_err("the demoted master closed the link");
    assert_eq!(e.class, dts_core::ErrorClass::Transient, "{e:?}");
    let mut c = source.cluster_client();
    for i in 0..100 {
        c.run(&["SET".to_string(), format!("after:{i}"), i.to_string()]);
    }
    let run = start(&plan, &ckpt, StreamMode::Continuous);
    let o = run.observer.clone();
    wait_until("every shard to resume", 30, || o.notes.lock().unwrap().len() >= 3).await;
    let notes = run.notes();
    assert!(
        notes.iter().any(|n| n.starts_with("shard 0-5460:") && n.contains("without a full resync")),
        "the promoted replica ({promoted}) continued the shard: {notes:?}"
    );
    assert!(!notes.iter().any(|n| n.contains("full resync:")), "{notes:?}");
    run.complete().await;
    assert_same(&source.snapshot(), &dest.client().snapshot(0));
}
