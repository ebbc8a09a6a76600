//! The consistency check of a Redis job while the source is written and replicated (a settle
//! window, as the engine passes it to the check of a running job): keys in flight are never
//! reported missing, extra or different (only, while they keep changing through every settle
//! round, as unsettled), and differences planted on the destination meanwhile are reported, each
//! by name and kind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dts_core::{CompareOptions, ConsistencyChecker, StreamMode, TableDiff};
use dts_redis::RedisConnector;
use dts_test_support::{RedisClient, RedisServer};
use support::{MemoryCheckpoints, Running, plan, start};
mod support;

/// The engine's settle window for a running job (`Engine::settle_window`: the default
/// `ready_lag_secs` of 1 s, plus 2 s) and its rounds (`CompareOptions::default`).
fn live_options() -> CompareOptions {
    CompareOptions { settle_window: Some(Duration::from_secs(3)), settle_rounds: 5, ..CompareOptions::default() }
}

fn args(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// About 3,000 keys the writer never touches (`static:*`), every type, some with TTLs, two big
/// enough to be compared in pages; and the big list the writer keeps at 6,000 elements.
fn fill_static(c: &mut RedisClient) {
    c.run(&["SELECT", "0"]);
    let mut cmds = Vec::new();
    for i in 0..1500 {
        let (k, v) = (format!("static:s:{i}"), format!("value-{i}"));
        cmds.push(if i % 10 == 0 { args(&["SET", &k, &v, "EX", "3600"]) } else { args(&["SET", &k, &v]) });
    }
    for i in 0..300 {
        let n = i.to_string();
        cmds.push(args(&["HSET", &format!("static:h:{i}"), "a", "1", "b", "2", "c", &n, "d", "x", "e", "y"]));
        cmds.push(args(&["RPUSH", &format!("static:l:{i}"), "a", "b", &n]));
        cmds.push(args(&["SADD", &format!("static:set:{i}"), "a", "b", &n]));
        cmds.push(args(&["ZADD", &format!("static:z:{i}"), "1.5", "a", "-2", "b", &n, "c"]));
    }
    let mut hash = args(&["HSET", "static:bighash"]);
    let mut list = args(&["RPUSH", "static:biglist"]);
    let mut hot = args(&["RPUSH", "hot:biglist"]);
    for i in 0..6000 {
        hash.extend(args(&[&format!("field-{i}"), &format!("value-{i}")]));
        list.extend(args(&[&format!("item-{i}")]));
        hot.extend(args(&[&format!("item-{i}")]));
    }
    cmds.extend([hash, list, hot]);
    c.pipeline(&cmds);
}

/// One round of the writer over a few hundred hot keys (`hot:*`), every kind of write:
/// overwritten strings, counters whose TTL is set again and again, hash fields,
/// capped lists, sorted sets, keys that expire within seconds, deletes and creations, and now
/// and then the big list (6,000 elements, compared in pages) pushed and trimmed.
fn hot_round(i: u64) -> Vec<Vec<Vec<u8>>> {
    let n = i.to_string();
    let mut cmds = vec![
        args(&["SET", &format!("hot:s:{}", i % 100), &n]),
        args(&["INCR", &format!("hot:n:{}", i % 50)]),
        args(&["EXPIRE", &format!("hot:n:{}", i % 50), "30"]),
        args(&["HSET", &format!("hot:h:{}", i % 50), &format!("f{}", i % 8), &n]),
        args(&["LPUSH", &format!("hot:l:{}", i % 50), &n]),
        args(&["LTRIM", &format!("hot:l:{}", i % 50), "0", "15"]),
        args(&["ZADD", &format!("hot:z:{}", i % 50), &n, &format!("m{}", i % 20)]),
        args(&["SET", &format!("hot:t:{}", i % 50), &n, "PX", &(300 + i % 1700).to_string()]),
        args(&["SET", &format!("hot:d:{}", i % 50), &n]),
        args(&["DEL", &format!("hot:d:{}", (i + 25) % 50)]),
    ];
    if i.is_multiple_of(10) {
        cmds.push(args(&["LPUSH", "hot:biglist", &n]));
        cmds.push(args(&["LTRIM", "hot:biglist", "0", "5999"]));
    }
    cmds
}

/// Writes `hot_round`s into the source as fast as one connection can, a command per round trip,
/// until stopped. (Pipelined, it outruns a debug build's replication, and a lag beyond the settle
/// window makes real differences: the window is chosen for a job that keeps up.)
struct Writer {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Writer {
    fn start(port: u16) -> Writer {
        let (stop, rounds) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let thread = std::thread::spawn({
            let (stop, rounds) = (stop.clone(), rounds.clone());
            move || {
                let mut c = RedisClient::connect(port).expect("connect");
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    for cmd in hot_round(i) {
                        c.run(&cmd);
                    }
                    i += 1;
                    rounds.store(i, Ordering::SeqCst);
                }
            }
        });
        Writer { stop, rounds, thread }
    }

    fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::SeqCst)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the writer");
    }
}

/// A source and a destination with the static keys copied, replication running and caught up
/// while the writer writes.
struct Live {
    source: RedisServer,
    dest: RedisServer,
    run: Running,
    writer: Writer,
}

async fn live() -> Live {
    let (source, dest) = (RedisServer::start(), RedisServer::start());
    fill_static(&mut source.client());
    let plan = plan(source.port(), dest.port(), &[], None);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    let writer = Writer::start(source.port());
    // Ready as the engine decides it for a job (`ready_lag_secs`: at most 1 s behind), under writes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(0..=1).contains(&run.observer.lag_seconds.load(Ordering::SeqCst)) || writer.rounds() < 500 {
        assert!(!run.task.is_finished(), "the replication ended");
        assert!(Instant::now() < deadline, "the replication did not catch up under writes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Live { source, dest, run, writer }
}

impl Live {
    /// Compares database 0 with the engine's live options, checking that the writer went on
    /// writing meanwhile and the replication on running.
    async fn compare(&self) -> TableDiff {
        let plan = plan(self.source.port(), self.dest.port(), &[], None);
        let before = self.writer.rounds();
        let diff = RedisConnector::default().compare(&plan, "0", "", &live_options()).await.expect("compares");
        let during = self.writer.rounds() - before;
        assert!(during >= 500, "the writer wrote only {during} rounds during the check");
        assert!(!self.run.task.is_finished(), "the replication ended during the check");
        diff
    }

    async fn end(self) {
        self.writer.stop();
        self.run.crash().await;
    }
}

/// Keys reported as still changing must be keys the writer writes.
fn assert_unsettled_are_hot(diff: &TableDiff) {
    assert!(diff.unsettled.iter().all(|k| k.starts_with("hot:")), "a key not written was unsettled: {diff:#?}");
    assert_eq!(diff.unsettled_count as usize, diff.unsettled.len(), "{diff:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_flight_under_writes_are_never_reported_missing_extra_or_different() {
    let live = live().await;
    let diff = live.compare().await;
    live.end().await;
    assert_eq!((diff.missing_count, diff.extra_count, diff.different_count), (0, 0, 0), "{diff:#?}");
    assert!(diff.consistent(), "{diff:#?}");
    assert!(diff.source_rows >= 3000, "every static key was compared: {diff:#?}");
    // Keys still changing after the last settle round are only unsettled (`TableDiff::unsettled`).
    assert_unsettled_are_hot(&diff);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differences_planted_on_the_destination_under_writes_are_reported_by_name_and_kind() {
    let live = live().await;
    let mut d = live.dest.client();
    d.run(&["SELECT", "0"]);
    // Keys the writer never touches: with and without TTLs, small and compared in pages.
    d.run(&["SET", "static:s:7", "planted"]);
    d.run(&["SET", "static:s:30", "planted", "KEEPTTL"]);
    d.run(&["PEXPIRE", "static:s:20", "600000"]);
    d.run(&["HSET", "static:bighash", "field-9", "planted"]);
    d.run(&["DEL", "static:h:5"]);
    d.run(&["DEL", "static:s:40"]);
    d.run(&["SET", "planted:extra", "1"]);
    let diff = live.compare().await;
    live.end().await;
    let names = |rows: &[dts_core::DiffRow]| -> BTreeMap<String, Vec<String>> {
        rows.iter().map(|r| (r.key.clone(), r.columns.clone())).collect()
    };
    assert_eq!((diff.missing_count, diff.extra_count, diff.different_count), (2, 1, 4), "{diff:#?}");
    assert_eq!(names(&diff.missing), BTreeMap::from([("static:h:5".into(), vec![]), ("static:s:40".into(), vec![])]));
    assert_eq!(names(&diff.extra), BTreeMap::from([("planted:extra".into(), vec![])]));
    assert_eq!(
        names(&diff.different),
        BTreeMap::from([
            ("static:bighash".into(), vec!["value".into()]),
            ("static:s:20".into(), vec!["ttl".into()]),
            ("static:s:30".into(), vec!["value".into()]),
            ("static:s:7".into(), vec!["value".into()]),
        ])
    );
    assert_unsettled_are_hot(&diff);
}
