//! TLS to Redis against throwaway `redis-server`s that speak TLS on a port of their own (their
//! plain port serves only the test's own client): a TLS source and destination replicate the
//! snapshot and the stream, and the consistency check reads both over TLS; a TLS source feeds
//! the snapshot relay of a plain destination; a certificate from another CA, a plain port and a
//! CA that is not PEM are refused as needing an operator, a plain port is retried as a
//! handshake that timed out, all in dts's words.

use std::sync::Arc;
use std::time::Duration;

use dts_core::{
    CompareOptions, ConnectionSpec, ConsistencyChecker, ErrorClass, MigrationPlan, Position, StreamMode, TlsMode,
};
use dts_redis::RedisConnector;
use dts_test_support::{RedisClient, RedisServer};
use support::{MemoryCheckpoints, plan, start};
mod support;

fn ca_of(server: &RedisServer) -> String {
    std::fs::read_to_string(&server.tls_files().expect("a TLS server").ca).expect("read the CA")
}

/// `server`'s TLS port with `tls`.
fn over_tls(server: &RedisServer, tls: TlsMode) -> ConnectionSpec {
    ConnectionSpec {
        host: "127.0.0.1".into(),
        port: server.tls_port().expect("a TLS server"),
        tls,
        ..Default::default()
    }
}

fn with_ends(mut plan: MigrationPlan, source: ConnectionSpec, dest: ConnectionSpec) -> MigrationPlan {
    plan.source = source;
    plan.target = dts_core::Target::Database(dest);
    plan
}

fn fill(c: &mut RedisClient, tag: &str, n: usize) {
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
    for i in 0..n {
        cmds.push(vec![b"SET".to_vec(), format!("{tag}:s{i}").into_bytes(), format!("v{i}").into_bytes()]);
    }
    for (k, f) in [("hash", "HSET"), ("set", "SADD"), ("list", "RPUSH")] {
        let mut cmd = vec![f.as_bytes().to_vec(), format!("{tag}:{k}").into_bytes()];
        for i in 0..200 {
            cmd.push(format!("m{i}").into_bytes());
            if f == "HSET" {
                cmd.push(format!("v{i}").into_bytes());
            }
        }
        cmds.push(cmd);
    }
    cmds.push(vec![b"ZADD".to_vec(), format!("{tag}:z").into_bytes(), b"1.5".to_vec(), b"a".to_vec()]);
    cmds.push(vec![
        b"SET".to_vec(),
        format!("{tag}:ttl").into_bytes(),
        b"v".to_vec(),
        b"EX".to_vec(),
        b"3600".to_vec(),
    ]);
    c.pipeline(&cmds);
}

fn assert_same(source: &mut RedisClient, dest: &mut RedisClient) {
    let (a, b) = (source.snapshot(0), dest.snapshot(0));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len(), "{} keys on the source, {} on the destination", a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "key {}", x.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_source_and_a_tls_destination_replicate_the_snapshot_and_the_stream_and_compare_equal() {
    let (source, dest) = (RedisServer::start_tls(&[]), RedisServer::start_tls(&[]));
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, "a", 2000);
    let tls_source = over_tls(&source, TlsMode::VerifyFull { ca: Some(ca_of(&source)) });
    let plan = with_ends(plan(0, 0, &[], None), tls_source, over_tls(&dest, TlsMode::Required));
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    fill(&mut s, "b", 500);
    s.run(&["INCR", "counter"]);
    s.run(&["DEL", "a:s7"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let notes = run.notes();
    assert!(matches!(run.complete().await, Position::Redis(_)));
    assert_same(&mut s, &mut d);
    assert!(!notes.iter().any(|n| n.contains("relay")), "a TLS destination is not relayed to: {notes:?}");
    let diff = RedisConnector::default().compare(&plan, "0", "", &CompareOptions::default()).await.expect("compare");
    assert!(diff.consistent(), "{diff:?}");
    assert_eq!(diff.source_rows, s.run(&["DBSIZE"]).int() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_source_feeds_the_snapshot_relay_of_a_plain_destination() {
    let (source, dest) = (RedisServer::start_tls(&[]), RedisServer::start());
    let (mut s, mut d) = (source.client(), dest.client());
    fill(&mut s, "a", 3000);
    let tls_source = over_tls(&source, TlsMode::VerifyFull { ca: Some(ca_of(&source)) });
    let plain_dest = ConnectionSpec { host: "127.0.0.1".into(), port: dest.port(), ..Default::default() };
    let plan = with_ends(plan(0, 0, &[], None), tls_source, plain_dest);
    let ckpt = Arc::new(MemoryCheckpoints::default());
    let mut run = start(&plan, &ckpt, StreamMode::Continuous);
    run.snapshot().await;
    s.run(&["INCR", "counter"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let notes = run.notes();
    run.complete().await;
    assert!(notes.iter().any(|n| n.contains("snapshot relay")), "{notes:?}");
    assert_same(&mut s, &mut d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_cas_certificate_or_a_ca_that_is_not_pem_needs_an_operator_and_a_plain_port_times_out() {
    let (source, other, dest) = (RedisServer::start_tls(&[]), RedisServer::start_tls(&[]), RedisServer::start());
    let plain_dest = ConnectionSpec { host: "127.0.0.1".into(), port: dest.port(), ..Default::default() };
    let plain_port_as_tls =
        ConnectionSpec { host: "127.0.0.1".into(), port: source.port(), tls: TlsMode::Required, ..Default::default() };
    let not_pem = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
    let cases = [
        (
            "another CA",
            over_tls(&source, TlsMode::VerifyFull { ca: Some(ca_of(&other)) }),
            ErrorClass::NeedsOperator,
            "TLS handshake failed",
        ),
        (
            "no PEM",
            over_tls(&source, TlsMode::VerifyFull { ca: Some(not_pem.into()) }),
            ErrorClass::NeedsOperator,
            "CA",
        ),
        // A plain Redis port never answers a TLS hello; that could be a slow network too, so it
        // is retried, saying what to check.
        ("the plain port", plain_port_as_tls, ErrorClass::Transient, "does the port speak TLS?"),
    ];
    for (what, source_spec, class, says) in cases {
        let plan = with_ends(plan(0, 0, &[], None), source_spec, plain_dest.clone());
        let ckpt = Arc::new(MemoryCheckpoints::default());
        let run = start(&plan, &ckpt, StreamMode::Continuous);
        let e = tokio::time::timeout(Duration::from_secs(30), run.task)
            .await
            .unwrap_or_else(|_| panic!("{what}: the replication did not give up"))
            .expect("task")
            .expect_err(what);
        assert_eq!(e.class, class, "{what}: {e:?}");
        assert!(e.summary.contains(says), "{what}: {}", e.summary);
    }
    assert_eq!(dest.client().run(&["DBSIZE"]).int(), 0, "nothing was copied");
}
