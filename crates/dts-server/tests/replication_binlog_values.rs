//! Binlog replication (MigrateType 3 through `dts serve`) of values the binlog carries in a
//! form that only the column's type explains: negative MEDIUMINTs (decoded without their sign)
//! and BINARY(n) keys ending in 0x00 bytes (logged without them). Rows are inserted, updated
//! by key and deleted while the job replicates; the destination ends equal to the source.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;

async fn rows(db: &MariaDb) -> Vec<(String, i32, String)> {
    let mut c = db.conn().await;
    c.query("SELECT HEX(id), m, note FROM bin.k ORDER BY id").await.expect("read bin.k")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_mediumints_and_binary_keys_ending_in_zero_bytes_replicate_exactly() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(
        "CREATE DATABASE bin;
         CREATE TABLE bin.k (id BINARY(4) PRIMARY KEY, m MEDIUMINT NOT NULL, note VARCHAR(10) NOT NULL);
         INSERT INTO bin.k VALUES (x'00000001', 1, 'loaded')",
    )
    .await;
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = server.create_mysql_job("bin", 3, src.port(), dst.port(), Some("bin"), &[]);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;

    src.exec(
        "INSERT INTO bin.k VALUES (x'01000000', -1, 'a'), (x'02020000', -8388608, 'b'), (x'03030300', 8388607, 'c'),
           (x'04040404', -5, 'd');
         UPDATE bin.k SET m = -2, note = 'a2' WHERE id = x'01000000';
         UPDATE bin.k SET note = 'b2' WHERE id = x'02020000';
         DELETE FROM bin.k WHERE id = x'03030300';
         UPDATE bin.k SET m = -7 WHERE id = x'00000001'",
    )
    .await;
    let want = rows(&src).await;
    let hex: Vec<&str> = want.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(hex, ["00000001", "01000000", "02020000", "04040404"], "the source as written");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job_now = server.job(&job);
        assert_ne!(job_now["Status"], 10, "the job failed: {job_now}\n{}", server.log());
        let got = rows(&dst).await;
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "the destination differs: {got:?}, want {want:?}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
