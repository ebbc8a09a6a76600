//! The change bus as the engine's `ChangeSink` on NATS JetStream: a batch is readable once
//! `publish` returned, a batch published again after a crash is not stored twice, a
//! subscription that leaves out DDL or DML publishes only the rest, heartbeats go out on an idle
//! source at most once per interval, a restart that sends a heartbeat before re-publishing what
//! the stream holds gets its duplicates acknowledged, and an unreachable bus is a transient
//! error.

use std::time::Duration;

use dts_bus::{BusConfig, BusSink, Consumer, Format, MessageKind, NatsConfig, SinkOptions, StartAt};
use dts_core::change::{ChangeKind, RowOp};
use dts_core::{
    BusTarget, ChangeBatch, ChangeSink, ConnectionSpec, DatabaseFamily, ErrorClass, JobKind, MigrationPlan,
    ObjectSelection, Route, Stages, Target, TargetKind,
};
use dts_test_support::NatsServer;

use crate::fixtures::*;

fn plan(job: &str, extern_params: Option<&str>) -> MigrationPlan {
    MigrationPlan {
        job_id: job.into(),
        kind: JobKind::ChangeTracking,
        route: Route { family: DatabaseFamily::MySql, target: TargetKind::ChangeBus },
        stages: Stages { structure: false, full_data: false, incremental: true },
        selection: ObjectSelection::WholeInstance,
        source: ConnectionSpec::default(),
        target: Target::ChangeBus(BusTarget { subscription: job.into() }),
        override_root: false,
        loop_guard: None,
        conflict_policy: Default::default(),
        extern_params: extern_params.map(str::to_string),
    }
}

fn batch() -> ChangeBatch {
    let events = vec![
        event(100, 0, None, kv_row(RowOp::Insert, 1, "a")),
        event(100, 1, None, kv_row(RowOp::Insert, 2, "b")),
        event(200, 0, None, ChangeKind::Commit),
        event(300, 0, None, ChangeKind::Ddl { database: "app".into(), statement: "ALTER TABLE kv ADD x INT".into() }),
        event(400, 0, None, kv_row(RowOp::Update, 1, "c")),
        event(500, 0, None, ChangeKind::Commit),
    ];
    ChangeBatch { events, end: Some(binlog(500)) }
}

/// 256 MiB per stream (JetStream reserves `max_bytes` on disk for file streams).
fn nats(server: &NatsServer) -> BusConfig {
    let mut c = NatsConfig::new(server.url());
    c.retention.max_bytes = 256 << 20;
    BusConfig::Nats(c)
}

fn sink(server: &NatsServer, heartbeat: Duration) -> BusSink {
    let options = SinkOptions { format: Format::DebeziumJson, tombstones: true, heartbeat_interval: heartbeat };
    BusSink::new(nats(server), options)
}

async fn kinds(server: &NatsServer, job: &str) -> Vec<MessageKind> {
    let mut c = Consumer::open_with_window(&nats(server), job, StartAt::Beginning, 0).await.expect("open");
    let mut out = Vec::new();
    loop {
        let got = c.next_batch(100, Duration::from_millis(400)).await.expect("read");
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().filter_map(|d| d.kind));
    }
}

#[tokio::test]
async fn a_published_batch_is_stored_once_even_when_published_again_after_a_crash() {
    let server = NatsServer::start();
    let plan = plan("dts-sink1", None);
    sink(&server, Duration::from_secs(60)).publish(&plan, &batch()).await.expect("publish");
    // A restarted process re-reads from its checkpoint and publishes the same events again.
    sink(&server, Duration::from_secs(60)).publish(&plan, &batch()).await.expect("publish again");
    let want = [MessageKind::Insert, MessageKind::Insert, MessageKind::Ddl, MessageKind::Update];
    assert_eq!(kinds(&server, "dts-sink1").await, want, "no consumer-side de-duplication here");
}

/// Events after `batch()`'s: one insert and its commit.
fn later() -> ChangeBatch {
    let events = vec![event(600, 0, None, kv_row(RowOp::Insert, 3, "d")), event(700, 0, None, ChangeKind::Commit)];
    ChangeBatch { events, end: Some(binlog(700)) }
}

#[tokio::test]
async fn a_restart_whose_first_heartbeat_is_new_still_re_publishes_the_stored_events_as_duplicates() {
    let server = NatsServer::start();
    let plan = plan("dts-sink2", None);
    sink(&server, Duration::from_secs(60)).publish(&plan, &batch()).await.expect("publish");
    // The engine's restart after a kill: a heartbeat first (a new id, so it is stored), then the
    // events after its checkpoint, which the stream already holds, then new ones.
    let restarted = sink(&server, Duration::from_secs(60));
    restarted.heartbeat(&plan, Some(&binlog(100))).await.expect("heartbeat");
    restarted.publish(&plan, &batch()).await.expect("the stored events are acknowledged as duplicates");
    restarted.publish(&plan, &later()).await.expect("new events after them");
    let want = [
        MessageKind::Insert,
        MessageKind::Insert,
        MessageKind::Ddl,
        MessageKind::Update,
        MessageKind::Heartbeat,
        MessageKind::Insert,
    ];
    assert_eq!(kinds(&server, "dts-sink2").await, want);
}

#[tokio::test]
async fn a_subscription_without_ddl_or_without_dml_publishes_only_the_other() {
    let server = NatsServer::start();
    let s = sink(&server, Duration::from_secs(60));
    let no_ddl = plan("dts-dml", Some(r#"{"subscriptionDataType":{"ddl":false,"dml":true}}"#));
    let no_dml = plan("dts-ddl", Some(r#"{"subscriptionDataType":{"ddl":true,"dml":false}}"#));
    s.publish(&no_ddl, &batch()).await.expect("publish");
    s.publish(&no_dml, &batch()).await.expect("publish");
    assert_eq!(kinds(&server, "dts-dml").await, [MessageKind::Insert, MessageKind::Insert, MessageKind::Update]);
    assert_eq!(kinds(&server, "dts-ddl").await, [MessageKind::Ddl]);
}

#[tokio::test]
async fn heartbeats_go_out_on_an_idle_source_at_most_once_per_interval() {
    let server = NatsServer::start();
    let s = sink(&server, Duration::from_millis(300));
    let plan = plan("dts-hb", None);
    for _ in 0..4 {
        s.heartbeat(&plan, Some(&binlog(700))).await.expect("heartbeat");
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    s.heartbeat(&plan, None).await.expect("heartbeat");
    assert_eq!(kinds(&server, "dts-hb").await, [MessageKind::Heartbeat, MessageKind::Heartbeat]);
}

#[tokio::test]
async fn an_unreachable_bus_is_a_transient_error_and_the_next_publish_reconnects() {
    let mut server = NatsServer::start();
    let s = sink(&server, Duration::from_secs(60));
    let plan = plan("dts-down", None);
    s.publish(&plan, &batch()).await.expect("publish");
    server.kill();
    let e = s.publish(&plan, &batch()).await.expect_err("the bus is down");
    assert_eq!(e.class, ErrorClass::Transient, "{e:?}");
    server.restart();
    let mut last = None;
    for _ in 0..50 {
        match s.publish(&plan, &batch()).await {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.is_none(), "no publish after the bus came back: {last:?}");
    assert_eq!(kinds(&server, "dts-down").await.len(), 4, "the stream kept its events, re-publishes dropped");
}
