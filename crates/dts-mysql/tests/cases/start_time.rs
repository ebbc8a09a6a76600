//! Change tracking from a start time: the binlog position of a time, found across binlog files,
//! opens a stream that yields exactly the transactions committed from that time on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dts_core::change::{ChangeKind, Value};
use dts_core::{ChangeSource, ChangeStream, ErrorClass};
use dts_mysql::MySqlConnector;
use dts_test_support::MariaDb;

use crate::{databases, plan};

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// The ids of the rows the stream yields until it has been idle for a while.
async fn ids(stream: &mut impl ChangeStream) -> Vec<i64> {
    let mut out = Vec::new();
    while let Some(batch) = stream.next_batch(100, Duration::from_secs(2)).await.expect("the stream reads") {
        for e in batch.events {
            if let ChangeKind::Row(r) = e.kind
                && let Some(Value::Int(id)) = r.after.as_ref().and_then(|a| a.first())
            {
                out.push(*id);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_at_the_position_of_a_time_yields_exactly_the_transactions_committed_from_then() {
    let src = MariaDb::start().await;
    src.exec("CREATE DATABASE st; CREATE TABLE st.t (id INT PRIMARY KEY) ENGINE=InnoDB").await;
    src.exec("INSERT INTO st.t VALUES (1)").await;
    src.exec("FLUSH BINARY LOGS").await;
    src.exec("INSERT INTO st.t VALUES (2)").await;
    // The start time is the next whole second: row 2 is older, rows 3 and 4 are of it.
    let t = now_secs() + 1;
    let into_second = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1000 - into_second) + 20)).await;
    src.exec("INSERT INTO st.t VALUES (3); INSERT INTO st.t VALUES (4)").await;
    src.exec("FLUSH BINARY LOGS").await;
    src.exec("INSERT INTO st.t VALUES (5)").await;

    let plan = plan(src.addr(), src.addr(), 3, databases(&[("st", None)]));
    let connector = MySqlConnector::default();
    let at = connector.position_at(&plan, t).await.expect("a position for a time inside the binlog");
    let mut stream = connector.changes(&plan, at.clone()).await.expect("a stream at that position");
    assert_eq!(ids(&mut stream).await, [3, 4, 5], "from {at}");

    // A time after everything: the end of the binlog (only what comes next).
    let end = connector.position_at(&plan, now_secs() + 1).await.expect("the end");
    let mut stream = connector.changes(&plan, end).await.expect("a stream at the end");
    src.exec("INSERT INTO st.t VALUES (6)").await;
    assert_eq!(ids(&mut stream).await, [6]);

    // A time before the oldest binlog file was begun cannot be served.
    let err = connector.position_at(&plan, 1_000_000_000).await.expect_err("a time before the binlog");
    assert_eq!(err.class, ErrorClass::NeedsOperator, "{err:?}");
    assert!(err.summary.contains("does not reach back"), "{}", err.summary);
}
