//! Change tracking to Kafka across crashes: a subscription (Tencent SDK) publishing Debezium JSON
//! to a tansu broker; `dts serve` is killed with SIGKILL in the middle of a burst of inserts,
//! updates and deletes and restarted on the same data directory; a consumer group read with
//! `dts subscribe tail --group` (which drops re-published messages by id) sees every change
//! exactly once, in order per key, and nothing more. Changes made while `dts` is down in two
//! different seconds reach Kafka together after a restart, so only their source times tell
//! them apart: `dts subscribe tail --from` the later second reads exactly the later ones.

mod burst;
mod sdk_script;
mod tracking_support;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dts_test_support::MariaDb;
use mysql_async::prelude::Queryable;
use serde_json::Value;
use tracking_support::{Bus, changes};

const KEYS: i64 = 24;
const ROUNDS: i64 = 16;
/// Rows written while `dts` is down, in each of two seconds.
const DOWN_ROWS: i64 = 5;

/// The burst: `KEYS` rows inserted with v = 0, then `ROUNDS` rounds updating every row to the
/// round number (half of each round as one multi-row transaction, half as single statements),
/// 25 ms apart, then the even keys deleted in one transaction. Returns when it ended.
async fn burst(src: &MariaDb) -> Instant {
    let mut conn = src.conn().await;
    burst::insert_and_update(&mut conn, KEYS, ROUNDS).await;
    let mut tx = conn.start_transaction(Default::default()).await.expect("begin");
    for k in (0..KEYS).step_by(2) {
        tx.query_drop(format!("DELETE FROM track.items WHERE id = {}", 100 + k)).await.expect("delete");
    }
    tx.commit().await.expect("commit");
    Instant::now()
}

/// A row change of a tail line as `(key, op, v)`: `v` of the image after it (before it for a
/// delete); tombstones and heartbeats are not row changes.
fn row_change(l: &Value) -> Option<(i64, String, i64)> {
    let op = l["value"]["op"].as_str()?;
    let image = if op == "d" { &l["value"]["before"] } else { &l["value"]["after"] };
    Some((l["key"]["id"].as_i64()?, op.to_string(), image["v"].as_i64()?))
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_subscription_reaches_a_consumer_group_exactly_once_in_key_order_across_kill_9_restarts() {
    let setup = "CREATE DATABASE track;
                 CREATE TABLE track.items (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB";
    let mut t = tracking_support::start(Bus::kafka().await, "json", setup, "track").await;

    // SIGKILL while the burst is being published, then a restart on the same data directory.
    let server = &mut t.server;
    let killer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.kill();
        let killed = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart().await;
        killed
    };
    let (written, killed) = tokio::join!(burst(&t.src), killer);
    assert!(killed < written, "dts was killed only after the burst ended; make the burst longer");

    // Down again: rows in one second, then rows in a later one; they reach Kafka together after
    // the restart.
    t.server.kill();
    let mut conn = t.src.conn().await;
    for i in 0..DOWN_ROWS {
        conn.query_drop(format!("INSERT INTO track.items VALUES ({}, -1)", 200 + i)).await.expect("insert");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = unix_secs();
    for i in 0..DOWN_ROWS {
        conn.query_drop(format!("INSERT INTO track.items VALUES ({}, -2)", 300 + i)).await.expect("insert");
    }
    t.server.restart().await;

    // The group reads everything: each burst change, a tombstone after each delete, the rows
    // written while dts was down; a second run of the group finds nothing left.
    let deletes = KEYS / 2;
    let expected = KEYS * (ROUNDS + 1) + deletes + deletes + 2 * DOWN_ROWS;
    let limit = expected.to_string();
    let lines = t.tail(&["--group", &t.sub, "--limit", &limit, "--idle-exit", "30"]);
    let got = changes(&lines);
    assert_eq!(got.len() as i64, expected, "every change once: {lines:#?}\n{}", t.server.log());
    let rest = t.tail(&["--group", &t.sub, "--idle-exit", "5"]);
    assert!(changes(&rest).is_empty(), "the group read a change twice: {rest:#?}");

    let ids: HashSet<&str> = got.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids.len(), got.len(), "the group saw a message id twice");
    let mut per_key: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    for (key, op, v) in got.iter().filter_map(|l| row_change(l)) {
        per_key.entry(key).or_default().push((op, v));
    }
    assert_eq!(per_key.len() as i64, KEYS + 2 * DOWN_ROWS, "{per_key:?}");
    for k in 0..KEYS {
        let mut want: Vec<(String, i64)> = vec![("c".into(), 0)];
        want.extend((1..=ROUNDS).map(|r| ("u".to_string(), r)));
        if k % 2 == 0 {
            want.push(("d".into(), ROUNDS));
        }
        assert_eq!(per_key[&(100 + k)], want, "key {}: each change exactly once, in order", 100 + k);
    }
    for i in 0..DOWN_ROWS {
        assert_eq!(per_key[&(200 + i)], [("c".to_string(), -1)]);
        assert_eq!(per_key[&(300 + i)], [("c".to_string(), -2)]);
    }
    let tombstones: Vec<i64> = got
        .iter()
        .filter(|l| l["kind"] == "tombstone")
        .map(|l| {
            assert!(l["value"].is_null(), "a tombstone has no value: {l}");
            l["key"]["id"].as_i64().expect("a tombstone's key")
        })
        .collect();
    assert_eq!(tombstones, (0..KEYS).step_by(2).map(|k| 100 + k).collect::<Vec<_>>());

    // From the later second, by source time: exactly the rows written in it, in order.
    let from = later.to_string();
    let lines = t.tail(&["--from", &from, "--idle-exit", "3"]);
    let rows: Vec<(i64, String, i64)> = changes(&lines).into_iter().filter_map(row_change).collect();
    let want: Vec<(i64, String, i64)> = (0..DOWN_ROWS).map(|i| (300 + i, "c".to_string(), -2)).collect();
    assert_eq!(rows, want, "the rows of the later second only: {lines:#?}");
}
