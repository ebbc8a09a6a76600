//! The write burst the change-tracking crash tests run on `track.items (id, v, ...)` of a
//! throwaway MariaDB: inserts, then rounds of updates in transactions and single statements.

use std::time::Duration;

use mysql_async::prelude::Queryable;

/// `keys` rows (ids from 100) inserted with v = 0, then `rounds` rounds updating every row to the
/// round number: half of each round as one multi-row transaction, half as single statements,
/// 25 ms apart (long enough for a kill to land inside it).
pub async fn insert_and_update(conn: &mut mysql_async::Conn, keys: i64, rounds: i64) {
    for k in 0..keys {
        conn.query_drop(format!("INSERT INTO track.items (id, v) VALUES ({}, 0)", 100 + k)).await.expect("insert");
    }
    for r in 1..=rounds {
        let mut tx = conn.start_transaction(Default::default()).await.expect("begin");
        for k in 0..keys / 2 {
            tx.query_drop(format!("UPDATE track.items SET v = {r} WHERE id = {}", 100 + k)).await.expect("update");
        }
        tx.commit().await.expect("commit");
        for k in keys / 2..keys {
            conn.query_drop(format!("UPDATE track.items SET v = {r} WHERE id = {}", 100 + k)).await.expect("update");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
