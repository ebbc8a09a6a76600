//! Change tracking of one 100,000-row transaction to NATS (Debezium JSON): while small
//! transactions on another table commit before and after it, one `INSERT ... SELECT` inserts
//! 100,000 rows; a consumer reading the subscription's stream gets every row exactly once, in
//! insertion order, with no other event between the transaction's first and last (and side rows
//! on both sides of it), each row carrying the transaction's GTID (the one the source reports for
//! it, `@@last_gtid`) and its place in it (Debezium's `total_order`) across the parts it is sent
//! in, each side row its own; and the peak memory of `dts serve` after it is about what a
//! transaction a fifth of its size took (the stream sends a large transaction in parts).

mod sdk_script;
mod tracking_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dts_bus::{Consumer, MessageKind, StartAt};
use dts_test_support::DtsServer;
use mysql_async::prelude::Queryable;
use serde_json::Value;
use tracking_support::{Bus, Tracking};

const ROWS: i64 = 100_000;
/// Characters of each row's `pad` column.
const PAD: usize = 600;

/// The server's peak resident memory so far (`VmHWM`), in bytes.
fn peak_rss(server: &DtsServer) -> u64 {
    let pid = server.pid().expect("dts serve runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kb * 1024
}

/// Reads the stream's events (heartbeats left out) as `(id, value, value bytes)` until `done`
/// holds for them; panics after 90 s.
async fn read_until(
    consumer: &mut Consumer,
    t: &Tracking,
    done: impl Fn(&[(String, Value, usize)]) -> bool,
) -> Vec<(String, Value, usize)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut got = Vec::new();
    while !done(&got) {
        assert!(Instant::now() < deadline, "events missing: {} read\n{}", got.len(), t.server.log());
        for d in consumer.next_batch(1024, Duration::from_millis(500)).await.expect("read the stream") {
            if d.kind == Some(MessageKind::Heartbeat) {
                continue;
            }
            let v: Value = serde_json::from_slice(d.payload.as_deref().expect("a row has a value")).expect("JSON");
            got.push((d.id, v, d.payload.map_or(0, |p| p.len())));
        }
    }
    got
}

fn table(v: &Value) -> &str {
    v["source"]["table"].as_str().unwrap_or_default()
}

/// Inserts `rows` rows into `big.<table>` in one statement (one transaction).
fn insert_rows(table: &str, rows: i64) -> String {
    format!(
        "INSERT INTO big.{table} (id, n, pad) SELECT seq, seq * 3, REPEAT(CHAR(65 + seq % 26), {PAD}) \
         FROM big.seq_1_to_{rows}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_row_transaction_reaches_nats_exactly_once_in_order_and_contiguous_with_bounded_memory() {
    let setup = "CREATE DATABASE big;
                 CREATE TABLE big.t (id INT PRIMARY KEY, n BIGINT NOT NULL, pad VARCHAR(1000) NOT NULL) ENGINE=InnoDB;
                 CREATE TABLE big.warm LIKE big.t;
                 CREATE TABLE big.side (id INT PRIMARY KEY) ENGINE=InnoDB";
    let t = tracking_support::start(Bus::nats(), "json", setup, "big").await;
    let mut consumer = Consumer::open(&t.bus.config(), &t.job, StartAt::Beginning).await.expect("open the stream");
    let at_start = peak_rss(&t.server);

    // A first transaction a fifth of the size: what publishing a large transaction in parts
    // takes is in the server's peak memory after it.
    t.src.exec(&insert_rows("warm", ROWS / 5)).await;
    let warm = read_until(&mut consumer, &t, |g| g.len() >= (ROWS / 5) as usize).await;
    assert!(warm.iter().all(|(_, v, _)| table(v) == "warm"), "only the first transaction's rows");
    let after_warm = peak_rss(&t.server);

    // Small transactions on `side` every 20 ms, from before the big one until after it.
    let done = Arc::new(AtomicBool::new(false));
    let side = {
        let (mut conn, done) = (t.src.conn().await, done.clone());
        tokio::spawn(async move {
            let mut id = 0;
            let mut after = 0;
            while after < 5 {
                id += 1;
                conn.query_drop(format!("INSERT INTO big.side VALUES ({id})")).await.expect("side insert");
                if done.load(Ordering::SeqCst) {
                    after += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            id
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut conn = t.src.conn().await;
    conn.query_drop(insert_rows("t", ROWS)).await.expect("the big insert");
    let big_gtid: String = conn.query_first("SELECT @@last_gtid").await.expect("read @@last_gtid").expect("a GTID");
    done.store(true, Ordering::SeqCst);
    let sides = side.await.expect("the side writer") as usize;

    // Every event until the last side row arrived, then nothing more.
    let got = read_until(&mut consumer, &t, |g| g.iter().filter(|(_, v, _)| table(v) == "side").count() >= sides).await;
    let elapsed = started.elapsed();
    let after_big = peak_rss(&t.server);
    assert!(consumer.next_batch(16, Duration::from_millis(500)).await.expect("read").is_empty(), "nothing more");

    let ids: HashSet<&str> = warm.iter().chain(&got).map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), warm.len() + got.len(), "each event once");
    let first = got.iter().position(|(_, v, _)| table(v) == "t").expect("the transaction's rows");
    let rows = &got[first..first + ROWS as usize];
    for (i, (_, v, _)) in rows.iter().enumerate() {
        let n = i as i64 + 1;
        assert_eq!((table(v), &v["op"], &v["after"]["id"]), ("t", &Value::from("c"), &Value::from(n)));
        assert_eq!(v["source"]["gtid"], big_gtid, "row {n}");
        assert_eq!(
            v["transaction"],
            serde_json::json!({"id": big_gtid, "total_order": n, "data_collection_order": n}),
            "row {n}"
        );
        assert_eq!(v["after"]["n"], n * 3);
        assert_eq!(v["after"]["pad"].as_str().map(str::len), Some(PAD), "row {n}");
    }
    let others: Vec<&Value> = got.iter().map(|(_, v, _)| v).filter(|v| table(v) != "t").collect();
    assert_eq!(others.len() + ROWS as usize, got.len(), "nothing but the transaction and the side rows");
    let side_ids: Vec<i64> = others.iter().map(|v| v["after"]["id"].as_i64().expect("side id")).collect();
    assert_eq!(side_ids, (1..=sides as i64).collect::<Vec<_>>(), "the side rows, in commit order");
    let mut side_gtids: Vec<&str> = others.iter().map(|v| v["source"]["gtid"].as_str().expect("a GTID")).collect();
    let warm_gtid = &warm[0].1["source"]["gtid"];
    assert!(warm.iter().all(|(_, v, _)| &v["source"]["gtid"] == warm_gtid), "one GTID for the first transaction");
    side_gtids.extend([big_gtid.as_str(), warm_gtid.as_str().expect("a GTID")]);
    side_gtids.sort_unstable();
    side_gtids.dedup();
    assert_eq!(side_gtids.len(), sides + 2, "every transaction its own GTID");
    let (before_tx, after_tx) = (first, got.len() - first - ROWS as usize);
    assert!(before_tx > 0 && after_tx > 0, "side rows on both sides of the transaction: {before_tx}, {after_tx}");

    // Holding the big transaction whole would take at least the bytes it publishes; in parts
    // it takes what the first, smaller one took.
    let published: usize = rows.iter().map(|(_, _, len)| len).sum();
    let mb = |b: u64| b >> 20;
    println!(
        "{ROWS} rows: {} MB published in {elapsed:?}; peak RSS {} MB at start, {} MB after {} rows, {} MB after {ROWS}",
        published >> 20,
        mb(at_start),
        mb(after_warm),
        ROWS / 5,
        mb(after_big)
    );
    let grown = after_big.saturating_sub(after_warm) as usize;
    assert!(
        grown < published / 8,
        "dts serve's peak memory grew by {grown} bytes more for a transaction of {published} bytes than for one \
         a fifth of its size"
    );
}
