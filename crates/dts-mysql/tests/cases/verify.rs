//! The data comparison's memory follows its configuration: differing keys are settled and
//! counted in batches of `pending_keys`, the row lists keep `keep_keys` per kind, and the
//! counts stay exact however many rows differ.

use std::time::Duration;

use dts_core::CompareOptions;
use dts_mysql::compare_table;

use crate::{pair, spec};

#[tokio::test]
async fn many_differences_are_counted_exactly_while_the_kept_rows_and_pending_keys_stay_bounded() {
    let (src, dst) = pair().await;
    for db in [&src, &dst] {
        db.exec(
            "CREATE DATABASE cmp; CREATE TABLE cmp.t (id INT PRIMARY KEY, v VARCHAR(20)); \
             INSERT INTO cmp.t SELECT seq, CONCAT('v', seq) FROM cmp.seq_1_to_3000",
        )
        .await;
    }
    dst.exec(
        "DELETE FROM cmp.t WHERE id <= 1000; UPDATE cmp.t SET v = 'changed' WHERE id BETWEEN 2001 AND 2050; \
         INSERT INTO cmp.t SELECT 5000 + seq, 'extra' FROM cmp.seq_1_to_30",
    )
    .await;
    let target = ("cmp".to_string(), "t".to_string());
    let bounded = CompareOptions {
        chunk_rows: 500,
        keep_keys: 10,
        pending_keys: 100,
        settle_window: Some(Duration::from_millis(10)),
        settle_rounds: 1,
        ..CompareOptions::default()
    };
    let roomy = CompareOptions { keep_keys: 100_000, pending_keys: 100_000, ..bounded.clone() };
    let timeout = Duration::from_secs(10);
    let (s, d) = (spec(src.addr()), spec(dst.addr()));
    let small = compare_table(&s, &d, ("cmp", "t"), &target, &bounded, timeout).await.unwrap();
    let large = compare_table(&s, &d, ("cmp", "t"), &target, &roomy, timeout).await.unwrap();
    for diff in [&small, &large] {
        assert_eq!((diff.missing_count, diff.different_count, diff.extra_count), (1000, 50, 30), "{diff:?}");
    }
    assert_eq!((small.missing.len(), small.different.len(), small.extra.len()), (10, 10, 10));
    assert!(small.truncated);
    assert_eq!((large.missing.len(), large.different.len(), large.extra.len()), (1000, 50, 30));
    assert!(!large.truncated);
    assert!(small.different.iter().all(|r| r.columns == ["v"]), "{:?}", small.different);
}
